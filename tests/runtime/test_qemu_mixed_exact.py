"""Mixed-precision kernels (issue 30) in the real firmware under QEMU give TFLM's bytes on every core's code path:
M0 (v6-M C), M3 (C), M4/M7/M33 (DSP: int4 by mask + SXTB16 + SMLAD two rows per pass, 16x8 by SMLALD). Shapes
cover whole 8-step groups, odd groups, depth tails, odd depths and odd row counts."""

from __future__ import annotations

import numpy as np
import pytest

from . import tflbuild as tb
from .mixed_models import fc_16x8, fc_int4, requant_i16
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
    return out


@pytest.mark.parametrize("core", ["m0", "m3", "m4", "m7", "m33"])
def test_mixed_precision_kernels_match_tflm_in_qemu(core, tmp_path_factory):
    assert qemu_mismatches(core, tmp_path_factory.mktemp(f"fw-mixed-{core}"), cases()) == []
