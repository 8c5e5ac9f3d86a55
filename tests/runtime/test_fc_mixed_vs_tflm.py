"""Mixed-precision kernels (issue 30) on the host build: int4-weight FULLY_CONNECTED (even and odd depths, tails
of the 8-step groups, per-tensor and per-channel, fused activations, several batches), 16x8 FULLY_CONNECTED (int64,
int32 and no bias) and QUANTIZE int8 <-> int16 give TFLM's bytes."""

from __future__ import annotations

import numpy as np
import pytest

from . import tflbuild as tb
from .mixed_models import fc_16x8, fc_int4, requant_i16
from .oracle import tflm_run
from .rt import STATUS

SHAPES = [(1, 2), (3, 8), (4, 16), (5, 7), (8, 33), (17, 30), (64, 64), (70, 256), (9, 1), (2, 6)]


def _check(rt, buf: bytes, x: np.ndarray) -> None:
    st = rt.init(buf)
    assert st == 0, STATUS.get(st)
    got = rt.run([x])[0]
    ref = tflm_run(buf, [x])[0]
    assert got.dtype == ref.dtype
    np.testing.assert_array_equal(got.reshape(ref.shape), ref)
    assert len(np.unique(ref)) > 1 or ref.size < 8  # the case exercised the arithmetic, not only a clamp


@pytest.mark.parametrize("rows,depth", SHAPES)
def test_fc_int4_matches_tflm(rt, rows, depth):
    rng = np.random.default_rng(rows * 1000 + depth)
    for act in (0, 1):
        buf, x = fc_int4(tb, rng, rows, depth, batches=1 + rows % 3, act=act, bias=bool(depth % 2 == 0 or act))
        _check(rt, buf, x)


def test_fc_int4_per_channel_refused_like_tflm(rt):
    """TFLM has no per-channel int4 FULLY_CONNECTED (its prepare fails); the runtime refuses the model at load."""
    buf, x = fc_int4(tb, np.random.default_rng(1), 8, 16, per_channel=True)
    assert STATUS.get(rt.init(buf)) == "QUANT"
    with pytest.raises(RuntimeError):
        tflm_run(buf, [x])


@pytest.mark.parametrize("rows,depth", SHAPES)
@pytest.mark.parametrize("bias", ["int64", "int32", "none"])
def test_fc_16x8_matches_tflm(rt, rows, depth, bias):
    rng = np.random.default_rng(rows * 1000 + depth + len(bias))
    for per_channel, act in ((False, 0), (True, 1)):
        buf, x = fc_16x8(tb, rng, rows, depth, batches=1 + depth % 2, per_channel=per_channel, bias=bias, act=act)
        _check(rt, buf, x)


@pytest.mark.parametrize("to_int16", [True, False])
def test_quantize_int8_int16_matches_tflm(rt, to_int16):
    rng = np.random.default_rng(3 + to_int16)
    for n in (1, 7, 64, 300):
        _check(rt, *requant_i16(tb, rng, n, to_int16))


def test_int4_weights_stay_packed(rt):
    """The runtime reads the packed bytes in place: the arena holds no unpacked copy (TFLM's does)."""
    rng = np.random.default_rng(5)
    buf, x = fc_int4(tb, rng, 256, 256)
    assert rt.init(buf) == 0
    assert rt.lib.ep_model_arena_used(rt.model) < 256 * 256 // 8
