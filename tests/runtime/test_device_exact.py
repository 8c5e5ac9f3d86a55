"""The core-specific kernels (DSP SIMD on M4, v6-M assembly on M0) run in the real firmware under QEMU and
give TFLM's bytes: MLPerf AD01, an FC with odd depth/rows (all tails), a GRU-like cell in sequence mode, random
CONV_2D / DEPTHWISE_CONV_2D / pool / SOFTMAX models and MLPerf KWS (DS-CNN) on random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.bench.reference import KWS_MACS, ad01_path, kws_bytes

from .oracle import tflm_interpreter, tflm_run
from .seed_models import gru_like_cell
from .test_conv_vs_tflm import _random_conv
from .tflbuild import INT8, INT32, Graph, S

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
AD01 = ad01_path()  # shipped in bench/reference/, SHA-256 checked


def odd_fc(rows: int = 67, depth: int = 83, seed: int = 5) -> bytes:
    rng = np.random.default_rng(seed)
    g = Graph()
    x = g.tensor([2, depth], INT8, 0.03, 7)
    w = g.tensor([rows, depth], INT8, rng.uniform(0.002, 0.01, rows), 0,
                 data=rng.integers(-127, 128, (rows, depth), dtype=np.int8))
    b = g.tensor([rows], INT32, 0.0001, 0, data=rng.integers(-4000, 4000, rows, dtype=np.int32))
    y = g.tensor([2, rows], INT8, 0.15, -6)
    g.inputs, g.outputs = [x], [y]
    g.op(S.BuiltinOperator.FULLY_CONNECTED, [x, w, b], [y], fusedActivationFunction=S.ActivationFunctionType.RELU)
    return g.build()


def tflm_sequence(buf: bytes, xs: np.ndarray, hidden: int) -> np.ndarray:
    from edgeprune.bench.qmath import requantize

    it = tflm_interpreter(buf)
    hq = it.get_input_details(1)["quantization_parameters"]
    oq = it.get_output_details(0)["quantization_parameters"]
    h = np.full((1, hidden), hq["zero_points"][0], np.int8)
    for t in range(xs.shape[0]):
        it.set_input(xs[t : t + 1], 0)
        it.set_input(h, 1)
        it.invoke()
        out = np.array(it.get_output(0))
        h = requantize(out, float(oq["scales"][0]), int(oq["zero_points"][0]), float(hq["scales"][0]),
                       int(hq["zero_points"][0]))
    return out


@pytest.mark.parametrize("core", ["m0", "m4"])
def test_firmware_kernels_bit_exact(core, tmp_path):
    if not AD01.exists():
        pytest.fail(f"{AD01} missing")
    from edgeprune.bench.firmware_build import CORE_ENVS, build, plan_model
    from edgeprune.bench.link import Device
    from edgeprune.bench.qemu import QemuBoard

    elf = build(CORE_ENVS[core], build_dir=tmp_path / "pio").elf
    rng = np.random.default_rng(11)
    with QemuBoard(core, elf=elf) as board, Device.open(board.url, 30.0) as dev:
        ad = AD01.read_bytes()
        x = rng.normal(0, 3, (1, 640)).astype(np.float32)
        load = dev.load_model(ad)
        assert load.macs == 264_192
        # The host planner built for this kind of core plans the device's arena to the byte (FPU: no QUANTIZE/
        # DEQUANTIZE tables; DSP: the FCs read the model's bias).
        assert load.arena_used == plan_model(ad, CORE_ENVS[core]).arena
        dev.set_input(0, x.tobytes())
        assert dev.infer(1).outputs[0] == tflm_run(ad, [x])[0].tobytes()

        fc = odd_fc()
        xf = rng.integers(-128, 128, (2, 83), dtype=np.int8)
        dev.load_model(fc)
        dev.set_input(0, xf.tobytes())
        assert dev.infer(1).outputs[0] == tflm_run(fc, [xf])[0].tobytes()

        cell = gru_like_cell(4, 8, 0)
        xs = rng.integers(-128, 128, (12, 4), dtype=np.int8)
        dev.load_model(cell)
        dev.set_sequence(12, 0, [(0, 1)])
        dev.set_input(0, xs.tobytes())
        assert dev.infer(1).outputs[0] == tflm_sequence(cell, xs, 8).tobytes()

        for seed, depthwise in [(0, False), (1, False), (2, True), (3, True), (5, False)]:
            buf, (xc,) = _random_conv(seed, depthwise)
            dev.load_model(buf)
            dev.set_input(0, xc.tobytes())
            assert dev.infer(1).outputs[0] == tflm_run(buf, [xc])[0].tobytes(), (seed, depthwise)

        kws = kws_bytes()
        assert dev.load_model(kws).macs == KWS_MACS
        for _ in range(3):
            xk = rng.integers(-128, 128, (1, 49, 10, 1), dtype=np.int8)
            dev.set_input(0, xk.tobytes())
            assert dev.infer(1).outputs[0] == tflm_run(kws, [xk])[0].tobytes()
