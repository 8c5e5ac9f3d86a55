"""Fixtures for the device tests: firmware builds (cached per session) and QEMU boards."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgeprune.bench.paths import project_root

CORES = ["m0", "m3", "m4", "m7", "m33"]


def need_tools() -> None:
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {missing}: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm")


@pytest.fixture(scope="session")
def link_firmware():
    """Link-only firmware per core (no runtime), so protocol tests do not depend on the runtime's state."""
    from edgeprune.bench.firmware_build import build

    need_tools()
    cache: dict[str, object] = {}

    def get(core: str):
        if core not in cache:
            cache[core] = build(core, build_dir=project_root() / ".pio" / "build-link", no_runtime=True)
        return cache[core]

    return get


@pytest.fixture(scope="session")
def full_firmware():
    """The real firmware (with firmware/runtime) per core, in the default build dir."""
    from edgeprune.bench.firmware_build import build

    need_tools()
    cache: dict[str, object] = {}

    def get(core: str):
        if core not in cache:
            cache[core] = build(core)
        return cache[core]

    return get


def golden_path() -> Path:
    return project_root() / "firmware" / "tests" / "golden_frames.json"


def seed_models():
    """The runtime owner's flatbuffer builders (tests/runtime/seed_models.py): valid int8 models without TF."""
    import importlib
    import sys

    tests_dir = str(Path(__file__).resolve().parents[1])
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    return importlib.import_module("runtime.seed_models")


def tflm_output(model: bytes, x, index: int = 0) -> bytes:
    """Output ``index`` of one plain invoke in TFLM's own interpreter (PyPI tflite-micro)."""
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    from edgeprune.bench.tflm import ORACLE_ARENA_DEFAULT

    it = runtime.Interpreter.from_bytes(model, arena_size=ORACLE_ARENA_DEFAULT)
    it.set_input(x, 0)
    it.invoke()
    return np.asarray(it.get_output(index)).tobytes()


def bake_dir(tmp: Path, model: bytes, name: str, sequence: dict | None = None) -> Path:
    """An export-like folder (model.tflite, model_data.c/.h, manifest.json) written by bench/carray.py."""
    import json

    from edgeprune.bench.carray import c_source

    d = tmp / name
    d.mkdir(parents=True, exist_ok=True)
    c, h = c_source(model, name)
    (d / "model_data.c").write_text(c)
    (d / "model_data.h").write_text(h)
    (d / "model.tflite").write_bytes(model)
    (d / "manifest.json").write_text(json.dumps({"name": name, "sequence": sequence} if sequence else {"name": name}))
    return d
