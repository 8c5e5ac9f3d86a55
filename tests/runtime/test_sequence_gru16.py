"""Sequence mode with an int16 state (issue 30): ep_requantize16 equals bench.qmath.requantize16 on every int16 value,
and the converter's 16x8 GRU cell streamed over T steps in the host runtime equals TFLM run step by step with that
carry, every output byte. The two-layer cell's second state has different input and output scales, so the carry
is a real requantisation there (a plain copy gives other bytes: checked)."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from edgeprune.bench.qmath import requantize16

from .elem16_models import ALL_INT16, gru16_cell, tflm_sequence16
from .rt import STATUS

PAIRS = [(1, 1), (2, 2)]
# Equal scales (a copy), near ratios both ways, the converter's h_1 pair, large and tiny ratios, and ratios past a
# left shift of 15 and 40 (the clamped paths) and below 2^-31 (zero).
SCALE_PAIRS = [(1e-4, 1e-4), (1.9108552e-05, 1.8660437e-05), (1.8660437e-05, 1.9108552e-05), (3e-5, 7e-4),
               (7e-4, 3e-5), (0.5, 1e-6), (1.0, 2.0**-20), (1.0, 2.0**-45), (2.0**-40, 1.0), (0.013, 0.013 * 3)]


def _c_requantize16(rt, q: np.ndarray, s_from: float, s_to: float) -> np.ndarray:
    dst = ctypes.create_string_buffer(q.nbytes)
    rt.lib.ep_requantize16(q.tobytes(), dst, q.size, s_from, s_to)
    return np.frombuffer(dst.raw, dtype=np.int16)


@pytest.mark.parametrize("s_from,s_to", SCALE_PAIRS)
def test_requantize16_matches_the_host_mirror_on_every_int16(rt, s_from, s_to):
    q = ALL_INT16.reshape(-1)
    ref = requantize16(q, s_from, s_to)
    np.testing.assert_array_equal(_c_requantize16(rt, q, s_from, s_to), ref)
    # within one step of the real rescale (saturated; the high multiply and the shift each round), so neither side
    # is wrong in the same way
    want = np.clip(q.astype(np.float64) * np.float32(s_from) / np.float32(s_to), -32768, 32767)
    assert np.max(np.abs(ref - want)) < 1.0


@pytest.fixture(scope="module")
def gru16(tmp_path_factory) -> bytes:
    return gru16_cell(str(tmp_path_factory.mktemp("gru16seq") / "w16"), sizes=[16, 12])


@pytest.mark.tf
@pytest.mark.parametrize("steps", [1, 4, 12])
def test_gru16_sequence_matches_tflm_step_by_step(rt, gru16, steps):
    rng = np.random.default_rng(steps)
    assert rt.init(gru16, arena_len=1 << 21) == 0
    scales = [(rt.io(True, o).scale, rt.io(False, i).scale) for o, i in PAIRS]
    assert scales[1][0] != scales[1][1], "the test needs a pair whose carry is not a copy"
    xs = rng.integers(-25000, 25000, (steps, 1, 4)).astype(np.int16)
    ref = tflm_sequence16(gru16, xs, PAIRS)
    assert STATUS[rt.set_sequence(steps, 0, PAIRS)] == "OK"
    assert rt.set_input(0, xs.tobytes()) == 0
    assert rt.invoke() == 0
    for k, r in enumerate(ref):
        assert rt.output(k).tobytes() == r.tobytes(), f"output {k} after {steps} steps"
    if steps > 4:
        copied = tflm_sequence16(gru16, xs, PAIRS, carry=lambda v, a, b: np.asarray(v, np.int16))
        assert any(c.tobytes() != r.tobytes() for c, r in zip(copied, ref, strict=True))


@pytest.mark.tf
def test_int16_pair_of_another_size_is_refused(rt, gru16):
    """An int16 output feeds only an int16 input of its own size."""
    assert rt.init(gru16, arena_len=1 << 21) == 0
    assert STATUS[rt.set_sequence(5, 0, [(1, 2)])] == "SEQUENCE"  # h_0' [1,16] cannot feed h_1 [1,12]
