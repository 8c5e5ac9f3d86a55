"""int4-filter CONV_2D and DEPTHWISE_CONV_2D (issue 30) on the host build give TFLM's bytes: per-channel and
per-tensor scales, 1x1 and 3x3 kernels, odd filter sizes (a half-used last byte), strides, SAME/VALID, fused ReLU."""

from __future__ import annotations

import numpy as np
import pytest

from . import tflbuild as tb
from .mixed_models import conv_int4
from .oracle import tflm_run
from .rt import STATUS

CASES = [  # depthwise, per_channel, shape, kernel, oc, stride, padding, act
    (False, True, (1, 7, 6, 5), (3, 3), 9, (1, 1), 0, 0),
    (False, False, (1, 8, 8, 1), (3, 3), 16, (1, 1), 0, 1),
    (False, True, (2, 5, 5, 3), (1, 1), 7, (1, 1), 1, 0),
    (False, True, (1, 9, 7, 16), (3, 3), 32, (2, 2), 1, 1),
    (False, False, (1, 4, 4, 13), (3, 2), 5, (1, 2), 0, 3),
    (True, True, (1, 7, 6, 5), (3, 3), 0, (1, 1), 0, 0),
    (True, False, (1, 9, 9, 8), (3, 3), 0, (2, 2), 1, 1),
    (True, True, (2, 5, 6, 3), (1, 1), 0, (1, 1), 0, 3),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{'dw' if c[0] else 'conv'}{i}" for i, c in enumerate(CASES)])
def test_conv_int4_matches_tflm(rt, case):
    depthwise, per_channel, shape, kernel, oc, stride, padding, act = case
    rng = np.random.default_rng(hash(case) % 2**32)
    buf, x = conv_int4(tb, rng, depthwise, per_channel, shape, kernel, oc, stride, padding, act, bias=oc != 7)
    ref = tflm_run(buf, [x])[0]
    st = rt.init(buf)
    assert st == 0, STATUS.get(st)
    got = rt.run([x])[0]
    np.testing.assert_array_equal(got.reshape(ref.shape), ref)
    assert len(np.unique(ref)) > 1  # the case exercised the arithmetic, not only a clamp


def test_int4_filter_is_unpacked_once_into_the_arena(rt):
    """The filter is unpacked at load: the arena grows by the int8 filter (as TFLM's does), the model by half of it."""
    rng = np.random.default_rng(4)
    buf4, x = conv_int4(tb, rng, False, True, (1, 4, 4, 32), (3, 3), 64)
    assert rt.init(buf4) == 0
    used4 = rt.lib.ep_model_arena_used(rt.model)
    filt = 64 * 3 * 3 * 32
    assert used4 >= filt
    out = rt.run([x])[0]
    assert rt.init(buf4) == 0  # a second load unpacks again from the model's packed bytes: same output
    np.testing.assert_array_equal(rt.run([x])[0], out)
