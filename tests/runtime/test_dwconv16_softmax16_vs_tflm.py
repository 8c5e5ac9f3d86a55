"""int16 DEPTHWISE_CONV_2D and SOFTMAX (issue 30, firmware/runtime/ep_dwconv16.c and ep_softmax16.c) on the host build
give TFLM's bytes: depthwise with depth multipliers 1-3, strides, dilation, SAME/VALID, fused activations, int64 or no
bias, per-channel and per-tensor scales, windows on both sides of the 511-tap int32 limit at the largest products;
SOFTMAX on every input difference at several input scales and betas, wide rows, and its constant tables against
TFLM's gen_lut reproduced in float32; a model as the TFLite converter's 16x8 mode writes it (depthwise, FC, SOFTMAX)."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import re

import numpy as np
import pytest

from . import tflbuild as tb
from .models16 import converter_dw_softmax_16x8, dwconv_16x8, softmax_16
from .oracle import tflm_run
from .rt import RUNTIME, STATUS

DW_CASES = [  # shape, kernel, dm, stride, padding, act, bias, per_channel, dilation
    ((1, 7, 6, 5), (3, 3), 1, (1, 1), 0, 0, "int64", True, (1, 1)),  # one 4-channel block + a tail channel
    ((1, 8, 8, 8), (3, 3), 1, (2, 2), 1, 1, "int64", False, (1, 1)),
    ((2, 5, 5, 3), (3, 3), 2, (1, 1), 0, 0, "int64", True, (1, 1)),  # depth multiplier 2, batch 2
    ((1, 6, 5, 2), (2, 3), 3, (2, 1), 0, 3, "none", True, (1, 1)),
    ((1, 9, 9, 4), (3, 3), 1, (1, 1), 0, 3, "none", True, (2, 2)),  # dilation 2
    ((1, 6, 9, 12), (5, 3), 1, (1, 2), 0, 0, "int64", False, (1, 1)),
    ((1, 4, 4, 16), (1, 1), 1, (1, 1), 1, 0, "int64", True, (1, 1)),
    ((1, 24, 24, 4), (23, 23), 1, (1, 1), 0, 0, "int64", True, (1, 1)),  # 529 taps: int64 sums
]


def _load(rt, buf: bytes) -> None:
    st = rt.init(buf)
    assert st == 0, STATUS.get(st)


@pytest.mark.parametrize("case", DW_CASES, ids=[f"dw{i}" for i in range(len(DW_CASES))])
def test_dwconv_16x8_matches_tflm(rt, case):
    shape, kernel, dm, stride, padding, act, bias, per_channel, dilation = case
    rng = np.random.default_rng(sum(shape) * 17 + dm)
    buf, x = dwconv_16x8(tb, rng, shape, kernel, dm, stride, padding, act, bias, per_channel, dilation)
    ref = tflm_run(buf, [x])[0]
    _load(rt, buf)
    got = rt.run([x])[0]
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got.reshape(ref.shape), ref)
    assert len(np.unique(ref)) > 8  # the case exercised the arithmetic, not only a clamp


@pytest.mark.parametrize("kernel", [(7, 73), (8, 64)], ids=["511taps", "512taps"])
def test_dwconv_16x8_largest_products_match_tflm(rt, kernel):
    """Every product at its extreme (+-2^22: inputs -32768/32767, filters -128/127): 511 taps is the last window
    summed in int32, 512 would wrap there and runs in int64; mixed signs give sums across the whole range."""
    rng = np.random.default_rng(kernel[1])
    kh, kw = kernel
    c = 8
    w = np.where(rng.random((1, kh, kw, c)) < 0.5, -128, 127)
    w[..., 0] = -128  # channel 0: every product 2^22 (with x = -32768), the largest sum
    buf, _ = dwconv_16x8(tb, rng, (1, kh, kw + 2, c), kernel, padding=1, w_values=w)
    x = np.where(rng.random((1, kh, kw + 2, c)) < 0.5, -32768, 32767).astype(np.int16)
    x[..., 0] = -32768
    ref = tflm_run(buf, [x])[0]
    _load(rt, buf)
    np.testing.assert_array_equal(rt.run([x])[0].reshape(ref.shape), ref)


@pytest.mark.parametrize("ratio,bias,inputs", [(1.4, [0, 50, -50, 900], 40), (2.0**20, None, 32767),
                                               (2.0**8, [2**50, -(2**50), 3, -(2**62)], 32767)],
                         ids=["multiplier-0.7", "multiplier-2^-20", "bias-2^50"])
def test_dwconv_16x8_rescale_paths_match_tflm(rt, ratio, bias, inputs):
    """The rescales the short path (the sum's high word) does not take: a multiplier of about 0.7 (TFLM's total
    shift 15), one of about 2^-20 (shift 34), biases of 2^50 and 2^62 (the shifted sum could overflow 64 bits)."""
    rng = np.random.default_rng(int(np.log2(ratio)) + 7)
    buf, _ = dwconv_16x8(tb, rng, (1, 6, 6, 4), out_ratio=ratio, bias_values=bias)
    x = rng.integers(-inputs, inputs + 1, (1, 6, 6, 4)).astype(np.int16)
    ref = tflm_run(buf, [x])[0]
    _load(rt, buf)
    np.testing.assert_array_equal(rt.run([x])[0].reshape(ref.shape), ref)
    assert len(np.unique(ref)) > 3


def test_dwconv_16x8_refusals(rt):
    """What TFLM's int16 depthwise cannot run right is refused at load: an int32 bias (TFLM reads it as int64) with
    DTYPE, a non-zero int16 zero point with QUANT."""
    rng = np.random.default_rng(3)
    buf, _ = dwconv_16x8(tb, rng, (1, 4, 4, 3), bias="int32")
    assert STATUS.get(rt.init(buf)) == "DTYPE"
    buf, _ = dwconv_16x8(tb, rng, (1, 4, 4, 3))
    model = tb.S.ModelT.InitFromObj(tb.S.Model.GetRootAsModel(bytearray(buf), 0))
    model.subgraphs[0].tensors[0].quantization.zeroPoint = [5]
    import flatbuffers

    fb = flatbuffers.Builder(1024)
    fb.Finish(model.Pack(fb), file_identifier=b"TFL3")
    assert STATUS.get(rt.init(bytes(fb.Output()))) == "QUANT"


def every_difference() -> np.ndarray:
    """Rows [-32768 + k, -32768]... as pairs whose first element lies k below the row maximum, k = 0..65535: every
    input difference the exp table sees, and sums over a whole octave for the reciprocal table."""
    k = np.arange(65536, dtype=np.int64)
    return np.stack([np.full_like(k, -32768), -32768 + k], axis=1).astype(np.int16)


@pytest.mark.parametrize("scale,beta", [(1e-4, 1.0), (2.5e-4, 1.0), (1e-3, 0.5), (3.05e-4, 2.0), (1.2e-2, 1.0)])
def test_softmax_int16_every_difference_matches_tflm(rt, scale, beta):
    x = every_difference()
    buf = softmax_16(tb, x.shape, scale, beta)
    ref = tflm_run(buf, [x])[0]
    _load(rt, buf)
    np.testing.assert_array_equal(rt.run([x])[0].reshape(ref.shape), ref)
    assert len(np.unique(ref)) > 1000


@pytest.mark.parametrize("shape", [(3, 10), (2, 1000), (1, 2, 3, 7)], ids=["10", "1000", "rank4"])
def test_softmax_int16_rows_match_tflm(rt, shape):
    rng = np.random.default_rng(shape[-1])
    for scale in (2e-4, 1.5e-3):
        x = rng.integers(-32768, 32768, shape).astype(np.int16)
        x.reshape(-1, shape[-1])[:, 0] = 32767  # sums from one dominant term ...
        x.reshape(-1, shape[-1])[-1, :] = 4096  # ... to every term equal (the largest sum)
        buf = softmax_16(tb, shape, scale)
        ref = tflm_run(buf, [x])[0]
        _load(rt, buf)
        np.testing.assert_array_equal(rt.run([x])[0].reshape(ref.shape), ref)


def test_softmax_int16_refusals(rt):
    """TFLM's int16 SOFTMAX output is Q15: another output scale is refused with QUANT; an empty tensor with SHAPE."""
    assert STATUS.get(rt.init(softmax_16(tb, (1, 8), 1e-3, out_scale=1.0 / 256))) == "QUANT"
    assert STATUS.get(rt.init(softmax_16(tb, (2, 0), 1e-3))) == "SHAPE"


def tflm_gen_lut(func, lo: float, hi: float) -> list[int]:
    """TFLM's gen_lut<float, int16_t, int16_t>(func, lo, hi, -1, 1): 512 steps, each sample biased by half the
    interpolation error at its midpoint, plus the end point; float32 arithmetic, roundf (half away from zero)."""
    f32 = np.float32

    def rnd(v) -> np.float32:
        return f32(math.copysign(math.floor(abs(float(v)) + 0.5), float(v)))

    lo32, hi32 = f32(lo), f32(hi)
    step = (hi32 - lo32) / f32(512)
    half, inv = step / f32(2), f32(65536) / f32(2)
    out = []
    for i in range(512):
        val, mid, nxt = func(lo32 + f32(i) * step), func(lo32 + f32(i) * step + half), func(lo32 + f32(i + 1) * step)
        interp = rnd((nxt * inv + rnd(val * inv)) / f32(2))
        bias = rnd((interp - rnd(mid * inv)) / f32(2))
        out.append(int(min(max(rnd(val * inv) - bias, -32768), 32767)))
    out.append(int(min(max(rnd(func(hi32) * inv), -32768), 32767)))
    return out


def test_softmax_int16_tables_are_tflm_gen_lut():
    """The runtime's constant tables equal TFLM's prepare-time ones, with the C library's expf (TFLM's std::exp)."""
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.expf.restype, libm.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    text = (RUNTIME / "ep_softmax16.c").read_text(encoding="utf-8")

    def table(name: str) -> list[int]:
        m = re.search(rf"{name}\[513\] = \{{(.*?)\}};", text, re.S)
        assert m is not None, name
        return [int(v) for v in m.group(1).replace("\n", " ").split(",") if v.strip()]

    assert table("exp_lut") == tflm_gen_lut(lambda v: np.float32(libm.expf(float(v))), -10.0, 0.0)
    assert table("recip_lut") == tflm_gen_lut(lambda v: np.float32(1) / (np.float32(1) + v), 0.0, 1.0)


@pytest.mark.tf
def test_converter_16x8_depthwise_softmax_model_matches_tflm(rt):
    """The TFLite converter's own 16x8 output (int64 biases, per-channel filter scales, Q15 softmax): two depthwise
    convolutions (multiplier 2 + ReLU, stride 2 VALID), FULLY_CONNECTED and SOFTMAX equal TFLM on random inputs."""
    buf = converter_dw_softmax_16x8()
    _load(rt, buf)
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.integers(-20000, 20000, (1, 8, 8, 4)).astype(np.int16)
        ref = tflm_run(buf, [x])[0]
        np.testing.assert_array_equal(rt.run([x])[0].reshape(ref.shape), ref)
