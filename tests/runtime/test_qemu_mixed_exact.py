"""Mixed-precision kernels (issue 30) in the real firmware under QEMU give TFLM's bytes on every core's code path:
M0 (v6-M C), M3 (C), M4/M7/M33 (DSP: int4 by mask + SXTB16 + SMLAD two rows per pass, 16x8 by SMLALD). Shapes
cover whole 8-step groups, odd groups, depth tails, odd depths and odd row counts; int4-filter CONV_2D and
DEPTHWISE_CONV_2D (unpacked at load, then each core's int8 convolution path); the int16 element-wise ops
(ep_elem16.c) alone and in the converter's 16x8 GRU cell, several steps of it; and that cell (two layers) streamed
in the device's sequence mode, its int16 state carried by the device (ep_requantize16), against TFLM step by step."""

from __future__ import annotations

import numpy as np
import pytest

from . import tflbuild as tb
from .elem16_models import binary16, gru16_cell, tflm_sequence16, unary16
from .mixed_models import conv_int4, fc_16x8, fc_int4, requant_i16
from .qemu_exact import SequenceCase, qemu_mismatches

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.tf]
OP = tb.S.BuiltinOperator
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


@pytest.fixture(scope="module")
def gru16(tmp_path_factory) -> bytes:
    return gru16_cell(str(tmp_path_factory.mktemp("gru16")), hidden=16)


def elem16_cases(gru16: bytes) -> list[tuple[str, bytes, np.ndarray | list[np.ndarray]]]:
    rng = np.random.default_rng(31)
    span = np.linspace(-32768, 32767, 1024).astype(np.int16).reshape(1, -1)
    out: list[tuple[str, bytes, np.ndarray | list[np.ndarray]]] = [
        ("logistic i16", unary16(tb, OP.LOGISTIC, 9.56149e-05, n=1024), span),
        ("tanh i16 2^-11", unary16(tb, OP.TANH, 2.0**-11, n=1024), span),
        ("tanh i16", unary16(tb, OP.TANH, 8.45202e-05, n=1024), span)]
    for name, op, scales in (("add", OP.ADD, (9.6e-5, 2.7e-5, 9.6e-5)), ("sub", OP.SUB, (2.9e-5, 3.05e-5, 5.5e-5)),
                             ("mul", OP.MUL, (3.05e-5, 5.5e-5, 4.1e-5))):
        out.append((f"{name} i16", binary16(tb, op, scales, 257),
                    [rng.integers(-32768, 32768, (1, 257)).astype(np.int16) for _ in range(2)]))
    for step in range(3):
        out.append((f"gru16 cell {step}", gru16, [rng.integers(-25000, 25000, (1, 4)).astype(np.int16),
                                                  rng.integers(-30000, 30000, (1, 16)).astype(np.int16)]))
    return out


@pytest.fixture(scope="module")
def gru16_sequences(tmp_path_factory) -> list[SequenceCase]:
    """The two-layer 16x8 cell (its second state's input and output scales differ) over 1 and 9 steps."""
    buf = gru16_cell(str(tmp_path_factory.mktemp("gru16seq")), sizes=[16, 12])
    rng = np.random.default_rng(32)
    pairs = [(1, 1), (2, 2)]
    out = []
    for steps in (1, 9):
        xs = rng.integers(-25000, 25000, (steps, 1, 4)).astype(np.int16)
        out.append((f"gru16 sequence {steps}", buf, steps, pairs, xs, tflm_sequence16(buf, xs, pairs)))
    return out


@pytest.mark.parametrize("core", ["m0", "m3", "m4", "m7", "m33"])
def test_mixed_precision_kernels_match_tflm_in_qemu(core, tmp_path_factory, gru16, gru16_sequences):
    assert qemu_mismatches(core, tmp_path_factory.mktemp(f"fw-mixed-{core}"), cases() + elem16_cases(gru16),
                           gru16_sequences) == []
