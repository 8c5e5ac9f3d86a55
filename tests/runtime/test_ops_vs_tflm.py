"""Every supported op, over random shapes/scales/zero points, byte-identical to TFLM (float ops: close)."""

from __future__ import annotations

import numpy as np
import pytest

from .oracle import tflm_run
from .rt import STATUS
from .tflbuild import FLOAT32, INT8, INT32, Graph, S

OP = S.BuiltinOperator
ACT = S.ActivationFunctionType
SEEDS = range(6)


def _q(rng, lo=0.005, hi=0.2):
    return float(rng.uniform(lo, hi)), int(rng.integers(-128, 128))


def _check(rt, buf, inputs, n_out=1, exact=True):
    ref = tflm_run(buf, inputs, n_out)
    st = rt.init(buf)
    assert st == 0, STATUS[st]
    out = rt.run(inputs)
    for r, o in zip(ref, out, strict=True):
        assert r.dtype == o.dtype and r.shape == o.shape
        if exact:
            assert np.array_equal(r, o), f"{int((r != o).sum())} of {r.size} differ"
        else:
            np.testing.assert_allclose(o, r, rtol=1e-5, atol=1e-5)
    return out


def _rand_i8(rng, shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("act", [ACT.NONE, ACT.RELU, ACT.RELU6])
def test_fully_connected_int8(rt, seed, per_channel, act):
    rng = np.random.default_rng(seed * 7 + per_channel * 3 + act)
    batch, depth, rows = int(rng.integers(1, 4)), int(rng.integers(1, 70)), int(rng.integers(1, 40))
    s_in, z_in = _q(rng)
    s_out, z_out = _q(rng, 0.01, 0.5)
    w_scale = rng.uniform(0.001, 0.02, size=rows) if per_channel else float(rng.uniform(0.001, 0.02))
    g = Graph()
    x = g.tensor([batch, depth], INT8, s_in, z_in)
    w = g.tensor([rows, depth], INT8, w_scale, 0, data=_rand_i8(rng, (rows, depth)))
    inputs = [x, w]
    if seed % 3 != 2:  # also cover the bias-less form
        b_scale = s_in * np.atleast_1d(w_scale)
        inputs.append(g.tensor([rows], INT32, b_scale, 0, data=rng.integers(-3000, 3000, size=rows, dtype=np.int32)))
    y = g.tensor([batch, rows], INT8, s_out, z_out)
    g.inputs, g.outputs = [x], [y]
    g.op(OP.FULLY_CONNECTED, inputs, [y], fusedActivationFunction=act)
    _check(rt, g.build(), [_rand_i8(rng, (batch, depth))])


@pytest.mark.parametrize("seed", SEEDS)
def test_fully_connected_rank3_keep_dims(rt, seed):
    rng = np.random.default_rng(100 + seed)
    depth, rows = int(rng.integers(4, 33)), int(rng.integers(4, 33))
    s_in, z_in = _q(rng)
    g = Graph()
    x = g.tensor([1, 3, depth], INT8, s_in, z_in)
    w = g.tensor([rows, depth], INT8, 0.01, 0, data=_rand_i8(rng, (rows, depth)))
    b = g.tensor([rows], INT32, s_in * 0.01, 0, data=rng.integers(-500, 500, size=rows, dtype=np.int32))
    y = g.tensor([1, 3, rows], INT8, *_q(rng, 0.02, 0.3))
    g.inputs, g.outputs = [x], [y]
    g.op(OP.FULLY_CONNECTED, [x, w, b], [y], keepNumDims=True)
    _check(rt, g.build(), [_rand_i8(rng, (1, 3, depth))])


BINARY = [OP.ADD, OP.SUB, OP.MUL]
SHAPES = [([2, 7], [2, 7]), ([1, 16], [1, 16]), ([3, 5], [1]), ([4, 1, 6], [5, 1]), ([2, 8], [8])]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("code", BINARY)
@pytest.mark.parametrize("shapes", SHAPES)
def test_binary_int8(rt, seed, code, shapes):
    rng = np.random.default_rng(seed * 31 + code)
    sa, sb = shapes
    out_shape = list(np.broadcast_shapes(tuple(sa), tuple(sb)))
    g = Graph()
    a = g.tensor(sa, INT8, *_q(rng, 0.002, 0.5))
    b = g.tensor(sb, INT8, *_q(rng, 0.002, 0.5))
    y = g.tensor(out_shape, INT8, *_q(rng, 0.002, 0.5))
    g.inputs, g.outputs = [a, b], [y]
    act = [ACT.NONE, ACT.RELU, ACT.RELU6][seed % 3]
    g.op(code, [a, b], [y], fusedActivationFunction=act)
    _check(rt, g.build(), [_rand_i8(rng, sa), _rand_i8(rng, sb)])


# Scales whose SUB multipliers differ between float and double quotients so that some int8 pair's output byte
# changes (found by simulating both over every pair).
SUB_QUOTIENT_SCALES = [((0.09828455746173859, 0.0592825822532177, 0.005608843639492989), (-17, 1, 10)),
                       ((0.09604888409376144, 0.0730687603354454, 0.09814825654029846), (3, 1, 2))]


@pytest.mark.parametrize("scales,zps", SUB_QUOTIENT_SCALES)
def test_sub_int8_multipliers_are_tflm_s_over_every_input_pair(rt, scales, zps):
    """TFLM (PyPI) derives SUB's multipliers from double quotients; float ones give other bytes at these scales."""
    g = Graph()
    a, b, y = (g.tensor([1, 65536], INT8, s, z) for s, z in zip(scales, zps, strict=True))
    g.inputs, g.outputs = [a, b], [y]
    g.op(OP.SUB, [a, b], [y])
    every = np.arange(-128, 128, dtype=np.int8)
    _check(rt, g.build(), [np.repeat(every, 256).reshape(1, -1), np.tile(every, 256).reshape(1, -1)])


@pytest.mark.parametrize("seed", SEEDS)
def test_quantize_dequantize_requantize(rt, seed):
    rng = np.random.default_rng(500 + seed)
    n = 64
    g = Graph()
    xf = g.tensor([1, n], FLOAT32)
    q1 = g.tensor([1, n], INT8, *_q(rng, 0.01, 0.3))
    q2 = g.tensor([1, n], INT8, *_q(rng, 0.01, 0.3))
    r = g.tensor([4, n // 4], INT8, *[g.tensors[q2].quantization.scale[0], g.tensors[q2].quantization.zeroPoint[0]])
    yf = g.tensor([4, n // 4], FLOAT32)
    g.inputs, g.outputs = [xf], [yf, q1]
    g.op(OP.QUANTIZE, [xf], [q1])
    g.op(OP.QUANTIZE, [q1], [q2])
    g.op(OP.RESHAPE, [q2], [r], newShape=[4, n // 4])
    g.op(OP.DEQUANTIZE, [r], [yf])
    x = (rng.normal(0, 10, size=(1, n))).astype(np.float32)
    x[0, :4] = [1e9, -1e9, 0.0, 0.5]
    _check(rt, g.build(), [x], n_out=2)


@pytest.mark.parametrize("seed", range(3))
def test_float_ops(rt, seed):
    rng = np.random.default_rng(900 + seed)
    depth, rows = 12, 9
    g = Graph()
    x = g.tensor([2, depth], FLOAT32)
    w = g.tensor([rows, depth], FLOAT32, data=rng.normal(size=(rows, depth)).astype(np.float32))
    b = g.tensor([rows], FLOAT32, data=rng.normal(size=rows).astype(np.float32))
    h = g.tensor([2, rows], FLOAT32)
    s = g.tensor([2, rows], FLOAT32)
    t = g.tensor([2, rows], FLOAT32)
    a = g.tensor([2, rows], FLOAT32)
    m = g.tensor([2, rows], FLOAT32)
    d = g.tensor([2, rows], FLOAT32)
    r = g.tensor([2, rows], FLOAT32)
    g.inputs, g.outputs = [x], [r]
    g.op(OP.FULLY_CONNECTED, [x, w, b], [h], fusedActivationFunction=ACT.RELU6)
    g.op(OP.LOGISTIC, [h], [s])
    g.op(OP.TANH, [h], [t])
    g.op(OP.ADD, [s, t], [a])
    g.op(OP.MUL, [a, h], [m])
    g.op(OP.SUB, [m, t], [d])
    g.op(OP.RELU, [d], [r])
    _check(rt, g.build(), [rng.normal(0, 2, size=(2, depth)).astype(np.float32)], exact=False)
