"""float32 CONV_2D, MAX_POOL_2D and AVERAGE_POOL_2D (issue 30: a float32 layer of an int8 CNN, firmware/runtime/
ep_convf.c) on the host build give TFLM's float bits: 1x1 and 3x3 kernels, strides, dilation, SAME/VALID, with and
without bias, fused ReLU/ReLU6/ReLU_N1_TO_1, a 576-tap window whose float sum depends on its order; pools with
windows clipped at the borders (the average divides by the taps inside)."""

from __future__ import annotations

import numpy as np
import pytest

from . import tflbuild as tb
from .mixed_models import _out
from .oracle import tflm_run
from .rt import STATUS

CONV_CASES = [  # shape, kernel, oc, stride, padding (0 SAME, 1 VALID), act, bias, dilation
    ((1, 7, 6, 5), (3, 3), 9, (1, 1), 0, 0, True, (1, 1)),
    ((1, 8, 8, 1), (3, 3), 4, (1, 1), 0, 1, True, (1, 1)),
    ((2, 5, 5, 3), (1, 1), 7, (1, 1), 1, 0, False, (1, 1)),
    ((1, 9, 7, 16), (3, 3), 12, (2, 2), 1, 3, True, (1, 1)),
    ((1, 6, 9, 4), (3, 2), 5, (1, 2), 0, 2, False, (1, 1)),
    ((1, 9, 9, 3), (3, 3), 6, (1, 1), 0, 0, True, (2, 2)),
    ((1, 5, 5, 64), (3, 3), 3, (1, 1), 0, 0, True, (1, 1)),  # 576 taps
]


def _conv(rng, shape, kernel, oc, stride, padding, act, bias, dilation) -> tuple[bytes, np.ndarray]:
    n, h, w, c = shape
    kh, kw = kernel
    oh, ow = _out(h, kh, stride[0], padding, dilation[0]), _out(w, kw, stride[1], padding, dilation[1])
    g = tb.Graph()
    x = g.tensor([n, h, w, c], tb.FLOAT32)
    ins = [x, g.tensor([oc, kh, kw, c], tb.FLOAT32, data=(rng.normal(size=(oc, kh, kw, c)) * 0.3).astype(np.float32))]
    if bias:
        ins.append(g.tensor([oc], tb.FLOAT32, data=rng.normal(size=oc).astype(np.float32)))
    y = g.tensor([n, oh, ow, oc], tb.FLOAT32)
    g.inputs, g.outputs = [x], [y]
    g.op(tb.S.BuiltinOperator.CONV_2D, ins, [y], padding=padding, strideH=stride[0], strideW=stride[1],
         dilationHFactor=dilation[0], dilationWFactor=dilation[1], fusedActivationFunction=act)
    # Mixed magnitudes: sums whose rounding depends on the order of their terms.
    xs = (rng.normal(size=shape) * 10.0 ** rng.integers(-4, 1, shape)).astype(np.float32)
    return g.build(), xs


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"conv{i}" for i in range(len(CONV_CASES))])
def test_float_conv_matches_tflm_bit_for_bit(rt, case):
    rng = np.random.default_rng(sum(case[0]) * 17 + case[2])
    buf, x = _conv(rng, *case)
    ref = tflm_run(buf, [x])[0]
    st = rt.init(buf)
    assert st == 0, STATUS.get(st)
    got = rt.run([x])[0]
    assert got.dtype == np.float32
    assert got.reshape(ref.shape).tobytes() == ref.tobytes()
    assert len(np.unique(ref)) > 8  # the case exercised the arithmetic, not only a clamp


POOL_CASES = [  # is_max, shape, window, stride, padding, act
    (True, (1, 8, 8, 4), (2, 2), (2, 2), 1, 0),
    (True, (2, 7, 5, 3), (3, 3), (2, 2), 0, 1),
    (False, (1, 4, 4, 6), (4, 4), (1, 1), 1, 0),
    (False, (1, 7, 6, 5), (3, 3), (2, 1), 0, 0),  # clipped windows: counts 4, 6, 9
    (False, (1, 9, 9, 2), (2, 3), (3, 2), 0, 3),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[f"pool{i}" for i in range(len(POOL_CASES))])
def test_float_pool_matches_tflm_bit_for_bit(rt, case):
    is_max, shape, window, stride, padding, act = case
    rng = np.random.default_rng(sum(shape) * 7 + int(is_max))
    n, h, w, c = shape
    g = tb.Graph()
    x = g.tensor(list(shape), tb.FLOAT32)
    y = g.tensor([n, _out(h, window[0], stride[0], padding), _out(w, window[1], stride[1], padding), c], tb.FLOAT32)
    g.inputs, g.outputs = [x], [y]
    code = tb.S.BuiltinOperator.MAX_POOL_2D if is_max else tb.S.BuiltinOperator.AVERAGE_POOL_2D
    g.op(code, [x], [y], padding=padding, strideH=stride[0], strideW=stride[1], filterHeight=window[0],
         filterWidth=window[1], fusedActivationFunction=act)
    buf = g.build()
    xs = (rng.normal(size=shape) * 4).astype(np.float32)
    ref = tflm_run(buf, [xs])[0]
    assert rt.init(buf) == 0
    assert rt.run([xs])[0].reshape(ref.shape).tobytes() == ref.tobytes()


def test_a_float_depthwise_conv_is_refused_at_load(rt):
    """DEPTHWISE_CONV_2D has no float kernel: refused at load with DTYPE, not run wrongly."""
    g = tb.Graph()
    x = g.tensor([1, 4, 4, 3], tb.FLOAT32)
    wt = g.tensor([1, 3, 3, 3], tb.FLOAT32, data=np.ones((1, 3, 3, 3), np.float32))
    y = g.tensor([1, 4, 4, 3], tb.FLOAT32)
    g.inputs, g.outputs = [x], [y]
    g.op(tb.S.BuiltinOperator.DEPTHWISE_CONV_2D, [x, wt], [y], padding=0, strideH=1, strideW=1, depthMultiplier=1)
    assert STATUS.get(rt.init(g.build())) == "DTYPE"
