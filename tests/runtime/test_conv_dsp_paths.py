"""The DSP cores' fast convolution paths (issue 31) give TFLM's bytes in the real firmware under QEMU: the 3x3
depthwise kernel (one assembly block per pixel and four channels, border windows gathered with the input zero
point, the zero point folded into the requantisation's rounding constant; narrow rows from a zero-point-padded strip)
and the CONV_2D pair loop for an even channel count (halfword stores; small filters widened once per invoke; the
SMULL requantisation for shifts the short form cannot take, multiplier-0 channels; constant channels, proved at load and
left out of the MACs). Random geometry: images down to 1x1 (every tap of a SAME window outside), strides
1-2, dilation 2, SAME/VALID, channel tails, every fused activation."""

from __future__ import annotations

import numpy as np
import pytest

from .oracle import tflm_run
from .qemu_exact import qemu_mismatches
from .rt import STATUS
from .test_conv_vs_tflm import ACT, OP, PAD, conv_model
from .tflbuild import INT8, INT32, Graph

SEED = 31


def wide_conv(rng: np.random.Generator, kernel: int, big: bool = False) -> tuple[bytes, np.ndarray]:
    """CONV_2D whose requantisation the short form cannot take: channels with a tiny filter scale (right shifts
    23-31) and a bias near 2^30, one channel below TFLM's 2^-31 multiplier floor (multiplier 0), the rest ordinary.
    `big`: a 1x1 filter too large to widen at once (64 x 64 on a 6x6 image: widened in chunks of rows)."""
    shape = (1, int(rng.integers(2, 7)), int(rng.integers(2, 7)), 4 * int(rng.integers(1, 5)))
    oc = 2 * int(rng.integers(2, 9))
    if big:
        shape, oc = (1, 6, 6, 64), 64
    s_in, z_in = 0.05, int(rng.integers(-20, 20))
    s_out, z_out = 0.1, int(rng.integers(-100, 100))
    w_scale = rng.uniform(0.002, 0.03, size=oc)
    tiny = rng.choice(oc, size=oc // 2, replace=False)
    w_scale[tiny] = 2.0 ** -rng.uniform(22, 30, size=tiny.size) * s_out / s_in
    w_scale[tiny[0]] = 1e-13
    bias = rng.integers(-5000, 5000, size=oc).astype(np.int64)
    bias[tiny] = rng.choice([-1, 1], size=tiny.size) * rng.integers(2**29, 2**30 + 2**28, size=tiny.size)
    g = Graph()
    x = g.tensor(list(shape), INT8, s_in, z_in)
    wshape = [oc, kernel, kernel, shape[3]]
    wt = g.tensor(wshape, INT8, w_scale, 0, data=rng.integers(-127, 128, size=wshape, dtype=np.int8), qdim=0)
    b = g.tensor([oc], INT32, s_in * w_scale, 0, data=bias.astype(np.int32))
    y = g.tensor([1, shape[1], shape[2], oc], INT8, s_out, z_out)
    g.inputs, g.outputs = [x], [y]
    g.op(OP.CONV_2D, [x, wt, b], [y], padding=PAD.SAME, strideH=1, strideW=1, dilationHFactor=1, dilationWFactor=1,
         fusedActivationFunction=ACT.NONE)
    return g.build(), rng.integers(-128, 128, shape, dtype=np.int8)


def pruned_conv(rng: np.random.Generator, shape: tuple[int, int, int, int], oc: int, kernel: int, act: int,
                dead: float) -> bytes:
    """CONV_2D with constant channels (ep_conv_init): a `dead` share of its rows pruned to zero weights, half of those
    with a bias that puts their constant output above the activation floor (a byte other than the zero point), and one
    row below TFLM's 2^-31 multiplier floor. The rest are ordinary rows."""
    c = shape[3]
    s_in, z_in = 0.05, int(rng.integers(-20, 20))
    s_out, z_out = 0.1, int(rng.integers(-128, -100)) if act != ACT.NONE else int(rng.integers(-60, 60))
    w_scale = rng.uniform(0.002, 0.03, size=oc)
    wdata = rng.integers(-127, 128, size=(oc, kernel, kernel, c), dtype=np.int8)
    bias = rng.integers(-5000, 5000, size=oc).astype(np.int64)
    rows = rng.choice(oc, size=max(1, int(dead * oc)), replace=False)
    wdata[rows] = 0
    up = rows[: rows.size // 2]
    bias[up] = rng.integers(20, 100, size=up.size) * np.round(s_out / (s_in * w_scale[up])).astype(np.int64)
    w_scale[rows[-1]] = 1e-13
    g = Graph()
    x = g.tensor(list(shape), INT8, s_in, z_in)
    wt = g.tensor([oc, kernel, kernel, c], INT8, w_scale, 0, data=wdata, qdim=0)
    b = g.tensor([oc], INT32, s_in * w_scale, 0, data=np.clip(bias, -2**31, 2**31 - 1).astype(np.int32))
    y = g.tensor([1, shape[1], shape[2], oc], INT8, s_out, z_out)
    g.inputs, g.outputs = [x], [y]
    g.op(OP.CONV_2D, [x, wt, b], [y], padding=PAD.SAME, strideH=1, strideW=1, dilationHFactor=1, dilationWFactor=1,
         fusedActivationFunction=act)
    return g.build()


def pruned_cases(rng: np.random.Generator) -> list[tuple[str, bytes, np.ndarray]]:
    """1x1 filters with many constant channels (only the live ones computed, odd live counts, an odd last pixel), one
    with too few to take that path, and a 3x3 filter (the constants written after the kernel)."""
    out = []
    acts = [ACT.RELU, ACT.NONE, ACT.RELU6]
    for i, (shape, oc, k, dead) in enumerate([((1, 5, 5, 16), 32, 1, 0.7), ((1, 4, 6, 8), 19, 1, 0.5),
                                              ((1, 3, 3, 64), 64, 1, 0.85), ((1, 6, 5, 32), 48, 1, 0.05),
                                              ((1, 5, 4, 12), 24, 3, 0.5)]):
        buf = pruned_conv(rng, shape, oc, k, acts[i % 3], dead)
        out.append((f"pruned conv{k} {shape} oc {oc} dead {dead}", buf, rng.integers(-128, 128, shape, dtype=np.int8)))
    return out


def cases() -> list[tuple[str, bytes, np.ndarray]]:
    rng = np.random.default_rng(SEED)
    acts = [ACT.NONE, ACT.RELU, ACT.RELU6]
    out = []
    for i in range(14):  # 3x3 depthwise, C >= 4 (C mod 4 tails go to the generic loop after the blocks)
        dil = (2, 2) if i % 5 == 4 else (1, 1)
        pad = PAD.SAME if i % 3 else PAD.VALID
        lo = 1 if pad == PAD.SAME else 2 * dil[0] + 1
        shape = (1, int(rng.integers(lo, 10)), int(rng.integers(lo, 10)), int(rng.integers(4, 41)))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        buf = conv_model(rng, True, i % 4 != 0, pad, stride, dil, acts[i % 3], (3, 3), shape, shape[3])
        out.append((f"dw3x3 #{i} {shape} s{stride} d{dil}", buf, rng.integers(-128, 128, shape, dtype=np.int8)))
    for i in range(10):  # CONV_2D with an even output channel count, 1x1 and 3x3, depth tails
        k = (1, 1) if i % 2 == 0 else (3, 3)
        shape = (1, int(rng.integers(3, 9)), int(rng.integers(3, 9)), int(rng.integers(1, 21)))
        oc = 2 * int(rng.integers(1, 20))
        buf = conv_model(rng, False, i % 3 != 0, PAD.SAME, (1 + i % 2, 1), (1, 1), acts[i % 3], k, shape, oc)
        out.append((f"conv{k} #{i} {shape} oc {oc}", buf, rng.integers(-128, 128, shape, dtype=np.int8)))
    for i, (c, oc) in enumerate([(8, 16), (16, 32), (32, 32), (4, 6), (64, 64)]):  # 1x1 filters widened per invoke
        shape = (1, int(rng.integers(2, 8)), int(rng.integers(2, 8)), c)
        if c == 64:  # too large to widen at once: chunks of rows, enough pixel pairs to pay for them
            shape = (1, 6, 5, c)
        buf = conv_model(rng, False, True, PAD.SAME, (1, 1), (1, 1), acts[i % 3], (1, 1), shape, oc)
        out.append((f"pointwise {c}->{oc}", buf, rng.integers(-128, 128, shape, dtype=np.int8)))
    for i in range(6):  # CONV_2D on the wide requantisation (SMULL), multiplier-0 channels
        out.append((f"wide conv #{i}", *wide_conv(rng, 1 + 2 * (i % 2))))
    out.append(("wide conv 64x64 chunked", *wide_conv(rng, 1, big=True)))
    return out + pruned_cases(rng)


def test_pruned_conv_host(rt):
    """The constant channels on the host build (the packed path; the constants written after the kernel)."""
    for name, buf, x in pruned_cases(np.random.default_rng(SEED)):
        ref = tflm_run(buf, [x])[0]
        st = rt.init(buf)
        assert st == 0, f"{name}: {STATUS[st]}"
        out = rt.run([x])[0]
        assert np.array_equal(ref, out), f"{name}: {int((ref != out).sum())} of {ref.size} differ"


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("core", ["m4", "m33"])
def test_dsp_conv_paths_bit_exact(core, tmp_path):
    bad = qemu_mismatches(core, tmp_path / "pio", cases())
    assert not bad, "\n".join(bad)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("core", ["m0", "m3"])
def test_pruned_conv_firmware(core, tmp_path):
    """The constant channels on the cores without the DSP paths (v6-M dot rows, v7-M packed pairs)."""
    bad = qemu_mismatches(core, tmp_path / "pio", pruned_cases(np.random.default_rng(SEED)))
    assert not bad, "\n".join(bad)

