"""Mixed-precision kernels (issue 30) in the real firmware under QEMU give TFLM's bytes on every core's code path:
M0 (v6-M C), M3 (C), M4/M7/M33 (DSP: int4 by mask + SXTB16 + SMLAD two rows per pass, 16x8 by SMLALD). Shapes
cover whole 8-step groups, odd groups, depth tails, odd depths and odd row counts; int4-filter CONV_2D and
DEPTHWISE_CONV_2D (unpacked at load, then each core's int8 convolution path)."""

from __future__ import annotations

import numpy as np
import pytest

from . import tflbuild as tb
from .mixed_models import conv_int4, fc_16x8, fc_int4, requant_i16
from .qemu_exact import qemu_mismatches

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
SHAPES = [(4, 8), (5, 16), (3, 24), (7, 30), (6, 33), (64, 64), (33, 130)]


def cases() -> list[tuple[str, bytes, np.ndarray]]:
    rng = np.random.default_rng(30)
    out = []
    for rows, depth in SHAPES:
        out.append((f"int4 {rows}x{depth}", *fc_int4(tb, rng, rows, depth, act=int(depth % 2))))
        out.append((f"16x8 {rows}x{depth}", *fc_16x8(tb, rng, rows, depth, per_channel=bool(rows % 2),
                                                      bias=["int64", "int32", "none"][depth % 3])))
    out.append(("quantize i8->i16", *requant_i16(tb, rng, 37, True)))
    out.append(("quantize i16->i8", *requant_i16(tb, rng, 37, False)))
    out.append(("conv int4 3x3", *conv_int4(tb, rng, False, True, (1, 6, 5, 7), (3, 3), 9, act=1)))
    out.append(("conv int4 1x1 per-tensor", *conv_int4(tb, rng, False, False, (1, 4, 4, 16), (1, 1), 6)))
    out.append(("dwconv int4 3x3 s2", *conv_int4(tb, rng, True, True, (1, 7, 7, 5), (3, 3), 0, (2, 2), 1)))
    return out


@pytest.mark.parametrize("core", ["m0", "m3", "m4", "m7", "m33"])
def test_mixed_precision_kernels_match_tflm_in_qemu(core, tmp_path_factory):
    assert qemu_mismatches(core, tmp_path_factory.mktemp(f"fw-mixed-{core}"), cases()) == []
