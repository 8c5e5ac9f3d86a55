"""LOAD_MODEL + INFER in QEMU, outputs compared byte for byte with TFLM's own interpreter (tflite-micro)."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeprune.bench.link import Device
from edgeprune.bench.qemu import QemuBoard
from edgeprune.bench.reference import ad01_path
from edgeprune.bench.tflm import ORACLE_ARENA_DEFAULT

from .conftest import CORES

pytestmark = [pytest.mark.qemu, pytest.mark.tf]

MLPERF = ad01_path()  # shipped in bench/reference/, SHA-256 checked
MLPERF_SHA = "861f3de4465a176099248090583ae5b6be00bc6f0c6bac16ce3bda004a7fa9c2"


def tflm(model: bytes, x: np.ndarray) -> bytes:
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(model, arena_size=ORACLE_ARENA_DEFAULT)
    it.set_input(x, 0)
    it.invoke()
    return np.asarray(it.get_output(0)).tobytes()


def small_model() -> bytes:
    """A 64x64 int8 FULLY_CONNECTED built by the runtime owner's flatbuffer helper (no TensorFlow import)."""
    tests_dir = str(Path(__file__).resolve().parents[1])
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    return importlib.import_module("runtime.seed_models").fc_square(64, seed=3)


def run_on_device(core: str, fw, model: bytes, x: np.ndarray, n: int):
    with QemuBoard(core, elf=fw.elf) as board, Device.open(board.url, 10) as dev:
        h = dev.hello()
        assert h.has_runtime
        loaded = dev.load_model(model)
        info = dev.io_info(False, 0)
        assert info.bytes == x.nbytes
        dev.set_input(0, x.tobytes())
        res = dev.infer(n)
        return h, loaded, res


@pytest.mark.parametrize("core", CORES)
def test_small_model_matches_tflm(core, full_firmware):
    model = small_model()
    x = np.random.default_rng(1).integers(-128, 128, (1, 64), dtype=np.int8)
    h, loaded, res = run_on_device(core, full_firmware(core), model, x, 3)
    assert loaded.macs == 64 * 64 and loaded.num_outputs == 1
    assert res.outputs[0] == tflm(model, x)
    # -icount makes counts deterministic up to the SysTick phase: runs differ by at most one tick.
    assert len(res.counts) == 3 and 0 < res.min <= res.median and max(res.counts) - res.min <= math.ceil(h.counter_scale)
    assert res.unit == "instructions"


@pytest.mark.slow
@pytest.mark.parametrize("core", CORES)
def test_mlperf_ad01_matches_tflm(core, full_firmware):
    import hashlib

    model = MLPERF.read_bytes()
    assert hashlib.sha256(model).hexdigest() == MLPERF_SHA
    x = np.random.default_rng(0).standard_normal((1, 640)).astype(np.float32)
    h, loaded, res = run_on_device(core, full_firmware(core), model, x, 3)
    assert loaded.macs == 264_192
    assert res.outputs[0] == tflm(model, x)
    assert max(res.counts) - res.min <= math.ceil(h.counter_scale) and res.min > loaded.macs  # >= 1 instruction per MAC
