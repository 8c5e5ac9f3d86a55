"""Windowed int8 ops (CONV_2D, DEPTHWISE_CONV_2D, AVERAGE/MAX_POOL_2D) and SOFTMAX on random single-op models,
byte-identical to TFLM: per-channel and per-tensor filters, SAME/VALID, strides, dilation, fused ReLU/ReLU6."""

from __future__ import annotations

import numpy as np
import pytest

from .oracle import tflm_run
from .rt import STATUS
from .tflbuild import INT8, INT32, Graph, S

OP = S.BuiltinOperator
ACT = S.ActivationFunctionType
PAD = S.Padding
SEEDS = range(8)


def _q(rng, lo=0.005, hi=0.2):
    return float(rng.uniform(lo, hi)), int(rng.integers(-128, 128))


def _i8(rng, shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def _out_size(n: int, k: int, stride: int, dil: int, padding: int) -> int:
    eff = (k - 1) * dil + 1
    return (n + stride - 1) // stride if padding == PAD.SAME else (n + stride - eff) // stride


def _check(rt, buf: bytes, inputs: list[np.ndarray]) -> np.ndarray:
    ref = tflm_run(buf, inputs)[0]
    st = rt.init(buf)
    assert st == 0, STATUS[st]
    out = rt.run(inputs)[0]
    assert out.dtype == ref.dtype and out.shape == ref.shape
    assert np.array_equal(ref, out), f"{int((ref != out).sum())} of {ref.size} differ"
    return out


def conv_model(rng, depthwise: bool, per_channel: bool, padding: int, stride: tuple[int, int], dil: tuple[int, int],
               act: int, kernel: tuple[int, int], shape: tuple[int, int, int, int], oc: int, bias: bool = True) -> bytes:
    n, h, w, c = shape
    kh, kw = kernel
    oh, ow = _out_size(h, kh, stride[0], dil[0], padding), _out_size(w, kw, stride[1], dil[1], padding)
    if depthwise:
        oc = c
    s_in, z_in = _q(rng)
    w_scale = rng.uniform(0.002, 0.03, size=oc) if per_channel else float(rng.uniform(0.002, 0.03))
    g = Graph()
    x = g.tensor([n, h, w, c], INT8, s_in, z_in)
    wshape = [1, kh, kw, oc] if depthwise else [oc, kh, kw, c]
    wt = g.tensor(wshape, INT8, w_scale, 0, data=rng.integers(-127, 128, size=wshape, dtype=np.int8),
                  qdim=3 if depthwise else 0)
    ins = [x, wt]
    if bias:
        ins.append(g.tensor([oc], INT32, s_in * np.atleast_1d(w_scale), 0,
                            data=rng.integers(-5000, 5000, size=oc, dtype=np.int32)))
    y = g.tensor([n, oh, ow, oc], INT8, *_q(rng, 0.02, 0.6))
    g.inputs, g.outputs = [x], [y]
    opts = dict(padding=padding, strideH=stride[0], strideW=stride[1], dilationHFactor=dil[0], dilationWFactor=dil[1],
                fusedActivationFunction=act)
    if depthwise:
        g.op(OP.DEPTHWISE_CONV_2D, ins, [y], depthMultiplier=1, **opts)
    else:
        g.op(OP.CONV_2D, ins, [y], **opts)
    return g.build()


def _random_conv(seed: int, depthwise: bool) -> tuple[bytes, list[np.ndarray]]:
    rng = np.random.default_rng(seed * 13 + depthwise)
    shape = (int(rng.integers(1, 3)), int(rng.integers(3, 12)), int(rng.integers(3, 12)), int(rng.integers(1, 20)))
    kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dil = (1, 1) if seed % 4 else (2, 1)
    buf = conv_model(rng, depthwise, per_channel=seed % 3 != 0, padding=[PAD.SAME, PAD.VALID][seed % 2],
                     stride=(int(rng.integers(1, 3)), int(rng.integers(1, 3))), dil=dil,
                     act=[ACT.NONE, ACT.RELU, ACT.RELU6][seed % 3], kernel=kernel, shape=shape,
                     oc=int(rng.integers(1, 70)), bias=seed % 5 != 4)
    return buf, [_i8(rng, shape)]


@pytest.mark.parametrize("seed", SEEDS)
def test_conv2d_int8(rt, seed):
    _check(rt, *_random_conv(seed, False))


@pytest.mark.parametrize("seed", SEEDS)
def test_depthwise_conv2d_int8(rt, seed):
    _check(rt, *_random_conv(seed, True))


def test_conv2d_kws_shapes(rt):
    """The DS-CNN's first layer (10x4 kernel, stride 2, SAME) and a 1x1 over 64 channels (the direct path)."""
    rng = np.random.default_rng(77)
    first = conv_model(rng, False, True, PAD.SAME, (2, 2), (1, 1), ACT.RELU, (10, 4), (1, 49, 10, 1), 64)
    _check(rt, first, [_i8(rng, (1, 49, 10, 1))])
    point = conv_model(rng, False, True, PAD.SAME, (1, 1), (1, 1), ACT.RELU, (1, 1), (1, 25, 5, 64), 64)
    _check(rt, point, [_i8(rng, (1, 25, 5, 64))])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("code", [OP.AVERAGE_POOL_2D, OP.MAX_POOL_2D])
def test_pool_int8(rt, seed, code):
    rng = np.random.default_rng(seed * 17 + code)
    n, h, w, c = int(rng.integers(1, 3)), int(rng.integers(2, 14)), int(rng.integers(2, 14)), int(rng.integers(1, 80))
    fh, fw = int(rng.integers(1, min(h, 5) + 1)), int(rng.integers(1, min(w, 5) + 1))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    padding = [PAD.SAME, PAD.VALID][seed % 2]
    oh, ow = _out_size(h, fh, sh, 1, padding), _out_size(w, fw, sw, 1, padding)
    q = _q(rng, 0.01, 0.3)
    g = Graph()
    x = g.tensor([n, h, w, c], INT8, *q)
    y = g.tensor([n, oh, ow, c], INT8, *q)
    g.inputs, g.outputs = [x], [y]
    g.op(code, [x], [y], padding=padding, strideH=sh, strideW=sw, filterHeight=fh, filterWidth=fw,
         fusedActivationFunction=[ACT.NONE, ACT.RELU, ACT.RELU6][seed % 3])
    _check(rt, g.build(), [_i8(rng, (n, h, w, c))])


@pytest.mark.parametrize("seed", range(12))
def test_softmax_int8(rt, seed):
    rng = np.random.default_rng(300 + seed)
    rows, depth = int(rng.integers(1, 5)), [1, 2, 10, 12, 37, 256][seed % 6]
    s_in = float(rng.choice([rng.uniform(0.001, 0.05), rng.uniform(0.05, 1.0)]))
    beta = [1.0, 1.0, 0.5, 2.0][seed % 4]
    g = Graph()
    x = g.tensor([rows, depth], INT8, s_in, int(rng.integers(-128, 128)))
    y = g.tensor([rows, depth], INT8, 1.0 / 256.0, -128)
    g.inputs, g.outputs = [x], [y]
    g.op(OP.SOFTMAX, [x], [y], beta=beta)
    xs = _i8(rng, (rows, depth))
    if seed % 3 == 0:
        xs[:, : depth // 2] = 127  # ties at the maximum
    _check(rt, g.build(), [xs])


def _conv_graph(rng, wshape=(8, 3, 3, 4), w_scale=0.01, qdim=0, **opts) -> bytes:
    g = Graph()
    x = g.tensor([1, 6, 6, 4], INT8, 0.1, 0)
    w = g.tensor(list(wshape), INT8, w_scale, 0, data=_i8(rng, wshape), qdim=qdim)
    y = g.tensor([1, 6, 6, 8], INT8, 0.1, 0)
    g.inputs, g.outputs = [x], [y]
    g.op(OP.CONV_2D, [x, w], [y], **{"padding": PAD.SAME, "strideH": 1, "strideW": 1, **opts})
    return g.build()


def test_conv_validator_rejects_malformed(rt):
    rng = np.random.default_rng(5)
    assert STATUS[rt.init(_conv_graph(rng))] == "OK"
    assert STATUS[rt.init(_conv_graph(rng, strideH=0))] == "LIMITS"
    assert STATUS[rt.init(_conv_graph(rng, dilationWFactor=300))] == "LIMITS"
    assert STATUS[rt.init(_conv_graph(rng, padding=PAD.VALID))] == "SHAPE"  # output shape is SAME's
    assert STATUS[rt.init(_conv_graph(rng, padding=7))] == "OP"
    assert STATUS[rt.init(_conv_graph(rng, wshape=(8, 3, 3, 2)))] == "SHAPE"  # filter channels != input channels
    # per-channel scales on the wrong dimension / with the wrong count
    assert STATUS[rt.init(_conv_graph(rng, w_scale=np.full(4, 0.01), qdim=3))] == "QUANT"
    g = Graph()  # softmax output quantisation other than TFLM's
    x = g.tensor([1, 10], INT8, 0.1, 0)
    y = g.tensor([1, 10], INT8, 0.1, 0)
    g.inputs, g.outputs = [x], [y]
    g.op(OP.SOFTMAX, [x], [y], beta=1.0)
    assert STATUS[rt.init(g.build())] == "QUANT"


@pytest.mark.parametrize("fill", [None, 127, -128])
def test_avg_pool_large_windows(rt, fill):
    """Counts up to 3,600 (and every border count of a SAME 31x31 window): the division-free rounding stays exact."""
    rng = np.random.default_rng(41)
    for win, padding, out in ((60, PAD.VALID, 1), (31, PAD.SAME, 60)):
        g = Graph()
        x = g.tensor([1, 60, 60, 2], INT8, 0.05, 3)
        y = g.tensor([1, out, out, 2], INT8, 0.05, 3)
        g.inputs, g.outputs = [x], [y]
        g.op(OP.AVERAGE_POOL_2D, [x], [y], padding=padding, strideH=1, strideW=1, filterHeight=win, filterWidth=win)
        xs = _i8(rng, (1, 60, 60, 2)) if fill is None else np.full((1, 60, 60, 2), fill, np.int8)
        _check(rt, g.build(), [xs])
