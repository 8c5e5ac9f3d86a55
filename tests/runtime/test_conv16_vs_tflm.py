"""16x8 CONV_2D, MAX_POOL_2D and AVERAGE_POOL_2D (issue 30, firmware/runtime/ep_conv16.c) on the host build give
TFLM's bytes: 1x1 and 3x3 kernels, strides, dilation, SAME/VALID, int64/int32/no bias, per-channel and per-tensor
filter scales, fused ReLU/ReLU6; clipped pool windows at the borders."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.export.precision_pack import TFL_INT16

from . import tflbuild as tb
from .mixed_models import _raw_tensor, conv_16x8, pool_16
from .oracle import tflm_run
from .rt import STATUS

CONV_CASES = [  # shape, kernel, oc, stride, padding, act, bias, per_channel, dilation
    ((1, 7, 6, 5), (3, 3), 9, (1, 1), 0, 0, "int64", True, (1, 1)),
    ((1, 8, 8, 1), (3, 3), 4, (1, 1), 0, 1, "int64", True, (1, 1)),
    ((2, 5, 5, 3), (1, 1), 7, (1, 1), 1, 0, "int32", True, (1, 1)),
    ((1, 9, 7, 16), (3, 3), 12, (2, 2), 1, 1, "none", False, (1, 1)),
    ((1, 6, 9, 4), (3, 2), 5, (1, 2), 0, 3, "int64", False, (1, 1)),
    ((1, 9, 9, 3), (3, 3), 6, (1, 1), 0, 0, "int64", True, (2, 2)),
    ((1, 5, 5, 64), (3, 3), 3, (1, 1), 0, 0, "int64", True, (1, 1)),  # 576 taps: several int32 partial-sum chunks
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"conv{i}" for i in range(len(CONV_CASES))])
def test_conv_16x8_matches_tflm(rt, case):
    shape, kernel, oc, stride, padding, act, bias, per_channel, dilation = case
    rng = np.random.default_rng(sum(shape) * 31 + oc)
    buf, x = conv_16x8(tb, rng, shape, kernel, oc, stride, padding, act, bias, per_channel, dilation)
    ref = tflm_run(buf, [x])[0]
    st = rt.init(buf)
    assert st == 0, STATUS.get(st)
    got = rt.run([x])[0]
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got.reshape(ref.shape), ref)
    assert len(np.unique(ref)) > 8  # the case exercised the arithmetic, not only a clamp


def test_conv_16x8_extreme_inputs_match_tflm(rt):
    """Every input at -32768 or 32767 and filters at +-127: the largest sums, either sign."""
    rng = np.random.default_rng(11)
    buf, _ = conv_16x8(tb, rng, (1, 6, 6, 8), (3, 3), 6, (1, 1), 0, 0, "int64", True)
    x = np.where(rng.random((1, 6, 6, 8)) < 0.5, -32768, 32767).astype(np.int16)
    ref = tflm_run(buf, [x])[0]
    assert rt.init(buf) == 0
    np.testing.assert_array_equal(rt.run([x])[0].reshape(ref.shape), ref)


POOL_CASES = [  # is_max, shape, window, stride, padding, act
    (True, (1, 8, 8, 4), (2, 2), (2, 2), 1, 0),
    (True, (2, 7, 5, 3), (3, 3), (2, 2), 0, 1),
    (False, (1, 4, 4, 6), (4, 4), (1, 1), 1, 0),  # the CNN's global average
    (False, (1, 7, 6, 5), (3, 3), (2, 1), 0, 0),  # clipped windows: counts 4, 6, 9
    (False, (1, 9, 9, 2), (2, 3), (3, 2), 0, 3),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[f"{'max' if c[0] else 'avg'}{i}" for i, c in enumerate(POOL_CASES)])
def test_pool_int16_matches_tflm(rt, case):
    is_max, shape, window, stride, padding, act = case
    rng = np.random.default_rng(sum(shape) + 7 * int(is_max))
    buf, x = pool_16(tb, rng, is_max, shape, window, stride, padding, act)
    ref = tflm_run(buf, [x])[0]
    st = rt.init(buf)
    assert st == 0, STATUS.get(st)
    np.testing.assert_array_equal(rt.run([x])[0].reshape(ref.shape), ref)


def test_conv_16x8_refusals(rt):
    """A non-zero int16 zero point (TFLM's int16 convolution takes 0) and an int16 depthwise convolution with an int32
    bias (TFLM reads it as int64) are refused at load, not run wrongly."""
    rng = np.random.default_rng(5)
    buf, _ = conv_16x8(tb, rng, (1, 4, 4, 2), (3, 3), 2)
    model = tb.S.ModelT.InitFromObj(tb.S.Model.GetRootAsModel(bytearray(buf), 0))
    model.subgraphs[0].tensors[0].quantization.zeroPoint = [3]
    import flatbuffers

    fb = flatbuffers.Builder(1024)
    fb.Finish(model.Pack(fb), file_identifier=b"TFL3")
    assert STATUS.get(rt.init(bytes(fb.Output()))) == "QUANT"
    g = tb.Graph()
    x = _raw_tensor(tb, g, [1, 4, 4, 3], TFL_INT16, 1e-3, None, "x16")
    w = g.tensor([1, 3, 3, 3], tb.INT8, 0.01, 0, data=rng.integers(-127, 128, (1, 3, 3, 3)).astype(np.int8))
    b = g.tensor([3], tb.INT32, 1e-5, 0, data=np.arange(3, dtype=np.int32))
    y = _raw_tensor(tb, g, [1, 4, 4, 3], TFL_INT16, 2e-3, None, "y16")
    g.inputs, g.outputs = [x], [y]
    g.op(tb.S.BuiltinOperator.DEPTHWISE_CONV_2D, [x, w, b], [y], padding=0, strideH=1, strideW=1, depthMultiplier=1)
    assert STATUS.get(rt.init(g.build())) == "DTYPE"
