"""int16 element-wise ops of a 16x8 recurrent cell (issue 30, firmware/runtime/ep_elem16.c) on the host build give
TFLM's bytes: LOGISTIC and TANH on every int16 input at power-of-two and general input scales, ADD/SUB/MUL on random
operands over a spread of scales (with and without a fused ReLU), and the converter's 16x8 GRU cell end to end."""

from __future__ import annotations

import numpy as np
import pytest

from . import tflbuild as tb
from .elem16_models import ALL_INT16, binary16, gru16_cell, unary16
from .oracle import tflm_run
from .rt import STATUS

OP = tb.S.BuiltinOperator
# 2^-12 and 2^-11 take TFLM's power-of-two paths (LOGISTIC only the first); the rest its integer multiplier,
# from a scale so small that every input is near 0 to one that saturates most of the domain.
ACT_SCALES = [2.0**-12, 2.0**-11, 9.56149e-05, 8.45202e-05, 3.3e-4, 1.7e-3, 2.0**-10, 3.1e-6, 0.021]


def _run(rt, buf: bytes, xs: list[np.ndarray]) -> np.ndarray:
    st = rt.init(buf, arena_len=1 << 21)
    assert st == 0, STATUS.get(st)
    return rt.run(xs)[0]


@pytest.mark.parametrize("builtin", [OP.LOGISTIC, OP.TANH], ids=["logistic", "tanh"])
@pytest.mark.parametrize("scale", ACT_SCALES)
def test_logistic_tanh_int16_every_input_matches_tflm(rt, builtin, scale):
    buf = unary16(tb, builtin, scale)
    got = _run(rt, buf, [ALL_INT16])
    ref = tflm_run(buf, [ALL_INT16])[0]
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got.reshape(ref.shape), ref)
    assert len(np.unique(ref)) > 100  # the case ran through the table, not only its saturation


@pytest.mark.parametrize("builtin", [OP.ADD, OP.SUB, OP.MUL], ids=["add", "sub", "mul"])
def test_add_sub_mul_int16_match_tflm(rt, builtin):
    rng = np.random.default_rng(int(builtin))
    n = 2048
    for case in range(12):
        s = rng.uniform(1e-5, 2e-4, 2) * (10.0 ** rng.integers(-1, 2, 2))
        s_out = float(max(s) * rng.uniform(0.6, 2.5) if builtin != OP.MUL else s[0] * s[1] * rng.uniform(5e3, 4e4))
        act = 1 if case % 4 == 3 else 0
        buf = binary16(tb, builtin, (float(s[0]), float(s[1]), s_out), n, act=act)
        xs = [rng.integers(-32768, 32768, (1, n)).astype(np.int16) for _ in range(2)]
        xs[0][0, :4] = [-32768, 32767, 0, -1]
        xs[1][0, :4] = [-32768, -32768, 32767, 1]
        got = _run(rt, buf, xs)
        ref = tflm_run(buf, xs)[0]
        np.testing.assert_array_equal(got.reshape(ref.shape), ref, err_msg=f"case {case} scales {s} {s_out} act {act}")
        assert len(np.unique(ref)) > 100


def test_int16_broadcast_and_nonzero_zero_point_are_refused(rt):
    """Shapes that broadcast (TFLM runs them; the runtime has no int16 broadcast) and int16 zero points other
    than 0 (TFLM's int16 kernels require 0) are refused at load, not run wrongly."""
    g = tb.Graph()
    from edgeprune.export.precision_pack import TFL_INT16

    from .mixed_models import _raw_tensor

    a = _raw_tensor(tb, g, [2, 8], TFL_INT16, 1e-4, None, "a")
    b = _raw_tensor(tb, g, [1, 8], TFL_INT16, 1e-4, None, "b")
    y = _raw_tensor(tb, g, [2, 8], TFL_INT16, 2e-4, None, "y")
    g.inputs, g.outputs = [a, b], [y]
    g.op(OP.ADD, [a, b], [y])
    assert STATUS.get(rt.init(g.build())) == "SHAPE"
    buf = unary16(tb, OP.TANH, 1e-4, n=8)
    bad = bytearray(buf)
    model = tb.S.ModelT.InitFromObj(tb.S.Model.GetRootAsModel(bad, 0))
    model.subgraphs[0].tensors[0].quantization.zeroPoint = [5]
    import flatbuffers

    fb = flatbuffers.Builder(1024)
    fb.Finish(model.Pack(fb), file_identifier=b"TFL3")
    assert STATUS.get(rt.init(bytes(fb.Output()))) == "QUANT"


@pytest.mark.tf
def test_converter_gru16_cell_matches_tflm_step_by_step(rt, tmp_path):
    """The converter's 16x8 GRU cell (hidden 16, one layer; FULLY_CONNECTED 16x8 with int64 biases, int16 ADD,
    SUB, MUL, LOGISTIC, TANH) runs op by op in the runtime with TFLM's bytes, its new state fed back for 12 steps."""
    buf = gru16_cell(str(tmp_path / "w16"), hidden=16)
    st = rt.init(buf)
    assert st == 0, STATUS.get(st)
    assert rt.num_fused == 0  # int16 cells run op by op
    rng = np.random.default_rng(3)
    x_shape, h_shape = tuple(rt.io(False, 0).dims[:2]), tuple(rt.io(False, 1).dims[:2])
    h = np.zeros(h_shape, np.int16)
    states = set()
    for _ in range(12):
        x = rng.integers(-25000, 25000, x_shape).astype(np.int16)
        got = rt.run([x, h])
        ref = tflm_run(buf, [x, h], n_outputs=2)
        for g_, r_ in zip(got, ref, strict=True):
            np.testing.assert_array_equal(g_.reshape(r_.shape), r_)
        h = ref[1].reshape(h_shape)
        states.add(h.tobytes())
    assert len(states) == 12
