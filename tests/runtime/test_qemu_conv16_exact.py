"""The 16x8 CNN ops (issue 30, ep_conv16.c: CONV_2D with int16 activations, int16 MAX_POOL_2D and AVERAGE_POOL_2D)
in the real firmware under QEMU give TFLM's bytes on the v6-M (M0: C row sums) and DSP (M4: SMLALD) builds: 3x3 and
1x1 kernels, a stride, int64/int32 biases, per-tensor scales, a 576-tap window, depth tails; clipped pool windows."""

from __future__ import annotations

import numpy as np
import pytest

from . import tflbuild as tb
from .mixed_models import conv_16x8, pool_16
from .qemu_exact import qemu_mismatches

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.tf]


def cases() -> list[tuple[str, bytes, np.ndarray]]:
    rng = np.random.default_rng(160)
    return [
        ("conv16 3x3 relu", *conv_16x8(tb, rng, (1, 8, 8, 1), (3, 3), 4, act=1)),
        ("conv16 3x3 s2 valid per-tensor", *conv_16x8(tb, rng, (1, 9, 7, 6), (3, 3), 5, (2, 2), 1, per_channel=False)),
        ("conv16 1x1 int32 bias", *conv_16x8(tb, rng, (1, 4, 4, 12), (1, 1), 7, bias="int32")),
        ("conv16 3x3 576 taps", *conv_16x8(tb, rng, (1, 4, 4, 64), (3, 3), 3)),
        ("maxpool16 2x2", *pool_16(tb, rng, True, (1, 8, 8, 4))),
        ("avgpool16 3x3 clipped", *pool_16(tb, rng, False, (1, 7, 6, 5), (3, 3), (2, 1), 0)),
    ]


@pytest.mark.parametrize("core", ["m0", "m4"])
def test_conv16_kernels_match_tflm_in_qemu(core, tmp_path_factory):
    assert qemu_mismatches(core, tmp_path_factory.mktemp(f"fw-conv16-{core}"), cases()) == []
