"""Integer-only model edges: float32 -> int8 QUANTIZE (threshold search) and int8 -> float32 DEQUANTIZE (table)
give TFLM's bytes over many scales and zero points, at and next to every rounding boundary, at the
saturation ends, for -0, infinities, subnormals and huge values; the split-multiply (v6-M) build too."""

from __future__ import annotations

import numpy as np
import pytest

from .oracle import tflm_run
from .rt import STATUS, Runtime, build
from .tflbuild import FLOAT32, INT8, Graph, S

SCALES = [float(s) for s in np.geomspace(1e-6, 40.0, 9)] + [0.05, 1 / 3, 0.0078125]
ZPS = (-128, -5, 0, 77, 127)


def edge_inputs(scale: float, zp: int) -> np.ndarray:
    """Inputs near every step of round(x / s) + zp, specials and random values.

    Values with |x / s| >= 2^31 convert out of int32 range inside TFLM (undefined behaviour in C++): the x86
    oracle yields INT32_MIN, an Arm core saturates. Both give the same int8 except for zp = 0 and a positive
    overflow, where the runtime follows the Arm rule (127); that one case is left out here and checked in
    ``test_positive_overflow_saturates``."""
    ks = np.arange(-300, 300, dtype=np.float64)
    bounds = ((ks + 0.5 - zp) * scale).astype(np.float32)  # where round(x / s) + zp steps
    near = np.concatenate([bounds, np.nextafter(bounds, np.float32(np.inf)), np.nextafter(bounds, np.float32(-np.inf))])
    special = np.array([0.0, -0.0, np.inf, -np.inf, 1e38, -1e38, 3e9 * scale, -3e9 * scale, 1e-45, -1e-45, 1e-40],
                       np.float32)
    if zp == 0:
        with np.errstate(over="ignore"):
            special = special[~(special / np.float32(scale) >= 2.0**31)]
    rnd = np.random.default_rng(int(scale * 1e6) % 1000 + zp + 128).normal(0, 200 * scale, 500).astype(np.float32)
    return np.concatenate([near, special, rnd]).reshape(1, -1)


def quant_model(n: int, scale: float, zp: int) -> bytes:
    g = Graph()
    x = g.tensor([1, n], FLOAT32)
    q = g.tensor([1, n], INT8, scale, zp)
    g.inputs, g.outputs = [x], [q]
    g.op(S.BuiltinOperator.QUANTIZE, [x], [q])
    return g.build()


def dequant_model(scale: float, zp: int) -> bytes:
    g = Graph()
    q = g.tensor([1, 256], INT8, scale, zp)
    y = g.tensor([1, 256], FLOAT32)
    g.inputs, g.outputs = [q], [y]
    g.op(S.BuiltinOperator.DEQUANTIZE, [q], [y])
    return g.build()


@pytest.fixture(scope="module")
def split_rt(tmp_path_factory):
    return Runtime(build(tmp_path_factory.mktemp("edges") / "libep_split.so", ["-O2", "-DEP_QMATH_SPLIT_MUL=1"]))


@pytest.mark.parametrize("which", ["native", "split"])
def test_quantize_and_dequantize_match_tflm(rt, split_rt, which):
    r = rt if which == "native" else split_rt
    allq = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    bad = []
    seen: set[int] = set()
    for scale in SCALES:
        for zp in ZPS:
            x = edge_inputs(scale, zp)
            buf = quant_model(x.shape[1], scale, zp)
            assert STATUS[r.init(buf)] == "OK"
            got = r.run([x])[0]
            ref = tflm_run(buf, [x])[0]
            seen.update(int(v) for v in np.unique(got))
            if not np.array_equal(got, ref):
                bad.append(("quantize", scale, zp, int((got != ref).sum())))
            buf = dequant_model(scale, zp)
            assert STATUS[r.init(buf)] == "OK"
            if not np.array_equal(r.run([allq])[0].view(np.uint32), tflm_run(buf, [allq])[0].view(np.uint32)):
                bad.append(("dequantize", scale, zp))
    assert not bad, bad[:5]
    assert len(seen) == 256  # every int8 output value was produced somewhere in the sweep


@pytest.mark.parametrize("scale", [2.0**-126, 1.5e-38, 1e-39, 2.0**118 * 1.7, 2.0**119, 3e38])
def test_dequantize_at_the_exponent_ends(rt, scale):
    """Without an FPU (hosts, M3) DEQUANTIZE computes the float product in integers while every result is a normal
    float (scale's biased exponent 1..245) and keeps its table otherwise (subnormal or huge scales): both exact."""
    allq = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    for zp in (-128, 0, 127):
        buf = dequant_model(scale, zp)
        assert STATUS[rt.init(buf)] == "OK"
        assert np.array_equal(rt.run([allq])[0].view(np.uint32), tflm_run(buf, [allq])[0].view(np.uint32)), zp


def test_positive_overflow_saturates(rt):
    x = np.array([[np.inf, 1e38, 3e9 * 0.05, 2.0**31 * 0.05 * 0.999]], np.float32)
    assert STATUS[rt.init(quant_model(4, 0.05, 0))] == "OK"
    assert rt.run([x])[0].tolist() == [[127, 127, 127, 127]]


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("core", ["m0", "m3", "m4"])
def test_edges_on_device(core, tmp_path):
    # M0 runs the threshold search and the DEQUANTIZE table, M3 the search and the integer DEQUANTIZE, M4 the FPU
    # paths (truncate + exact remainder; one float multiply): all against TFLM.
    from edgeprune.bench.firmware_build import CORE_ENVS, build
    from edgeprune.bench.link import Device
    from edgeprune.bench.qemu import QemuBoard

    elf = build(CORE_ENVS[core], build_dir=tmp_path / "pio").elf
    allq = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    with QemuBoard(core, elf=elf) as board, Device.open(board.url, 30.0) as dev:
        for scale, zp in ((0.05, 0), (1 / 3, -128), (7.9e-5, 77), (40.0, 127), (1e-6, -5)):
            x = edge_inputs(scale, zp)
            buf = quant_model(x.shape[1], scale, zp)
            dev.load_model(buf)
            dev.set_input(0, x.tobytes())
            assert dev.infer(1).outputs[0] == tflm_run(buf, [x])[0].tobytes(), (core, scale, zp)
            buf = dequant_model(scale, zp)
            dev.load_model(buf)
            dev.set_input(0, allq.tobytes())
            assert dev.infer(1).outputs[0] == tflm_run(buf, [allq])[0].tobytes(), (core, scale, zp)
