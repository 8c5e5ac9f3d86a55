"""model_data.c/.h: compiled by a real C compiler, the array holds exactly the .tflite's bytes, aligned."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from export_helpers import compile_and_dump

from edgeprune.bench.carray import c_source


@pytest.mark.parametrize("size", [1, 12, 13, 4099])
def test_array_bytes_survive_compilation(tmp_path: Path, size: int) -> None:
    blob = np.random.default_rng(size).integers(0, 256, size=size, dtype=np.uint8).tobytes()
    c_text, h_text = c_source(blob, "unit test */ with a tricky name")
    assert compile_and_dump(c_text, h_text, tmp_path) == blob
    assert hashlib.sha256(blob).hexdigest() in c_text and hashlib.sha256(blob).hexdigest() in h_text
    assert "__attribute__((aligned(16)))" in c_text


@pytest.mark.qemu
def test_array_compiles_for_cortex_m(tmp_path: Path) -> None:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.fail("arm-none-eabi-gcc not on PATH (apt-get install gcc-arm-none-eabi)")
    blob = bytes(range(256)) * 3
    c_text, h_text = c_source(blob, "cortex-m")
    (tmp_path / "model_data.c").write_text(c_text)
    (tmp_path / "model_data.h").write_text(h_text)
    obj = tmp_path / "model_data.o"
    subprocess.run([gcc, "-mcpu=cortex-m4", "-mthumb", "-std=c99", "-Wall", "-Werror", "-c",
                    str(tmp_path / "model_data.c"), "-o", str(obj)], check=True, timeout=120, capture_output=True)
    raw = tmp_path / "rodata.bin"
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "--only-section=.rodata", str(obj), str(raw)],
                   check=True, timeout=60, capture_output=True)
    assert raw.read_bytes()[: len(blob)] == blob
