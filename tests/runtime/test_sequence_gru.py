"""Sequence mode: a converter-made int8 GRU cell streamed over T steps equals a TFLM loop that carries
the hidden state with bench.qmath.requantize (the oracle defined in docs/design.md)."""

from __future__ import annotations

import numpy as np
import pytest

from .oracle import tflm_interpreter
from .rt import STATUS

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.fixture(scope="module")
def gru_cell() -> bytes:
    from .gru_cell import build_gru_cell

    return build_gru_cell(features=4, hidden=16, outputs=3, seed=0)


def tflm_sequence(buf: bytes, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from edgeprune.bench.qmath import requantize

    it = tflm_interpreter(buf)
    hin = it.get_input_details(1)["quantization_parameters"]
    hout = it.get_output_details(1)["quantization_parameters"]
    h = np.full((1, 16), hin["zero_points"][0], dtype=np.int8)
    for t in range(xs.shape[0]):
        it.set_input(xs[t : t + 1], 0)
        it.set_input(h, 1)
        it.invoke()
        y, h_out = np.array(it.get_output(0)), np.array(it.get_output(1))
        h = requantize(h_out, float(hout["scales"][0]), int(hout["zero_points"][0]),
                       float(hin["scales"][0]), int(hin["zero_points"][0]))
    return y, h_out


@pytest.mark.parametrize("steps", [1, 7, 30])
def test_sequence_matches_tflm_loop(rt, gru_cell, steps):
    rng = np.random.default_rng(steps)
    xs = rng.integers(-128, 128, size=(steps, 4), dtype=np.int8)
    y_ref, h_ref = tflm_sequence(gru_cell, xs)
    assert rt.init(gru_cell) == 0
    assert STATUS[rt.set_sequence(steps, 0, [(1, 1)])] == "OK"
    # Upload the stream in two chunks, as the device link does with large inputs.
    raw = xs.tobytes()
    half = len(raw) // 2
    assert rt.set_input(0, raw[:half], 0) == 0
    assert rt.set_input(0, raw[half:], half) == 0
    assert STATUS[rt.set_input(0, b"\0", len(raw))] == "RANGE"
    assert rt.invoke() == 0
    assert np.array_equal(rt.output(0), y_ref)
    assert np.array_equal(rt.output(1), h_ref)
    # Invoking again restarts from h = 0, so the result repeats exactly.
    assert rt.invoke() == 0
    assert np.array_equal(rt.output(0), y_ref)
    if steps > 1:
        # The state really is carried: a one-step run on the last input alone gives something else.
        y_one, _ = tflm_sequence(gru_cell, xs[-1:])
        assert not np.array_equal(y_one, y_ref)


def test_sequence_config_errors(rt, gru_cell):
    assert rt.init(gru_cell) == 0
    assert STATUS[rt.set_sequence(0, 0, [(1, 1)])] == "SEQUENCE"
    assert STATUS[rt.set_sequence(5, 0, [(0, 1)])] == "SEQUENCE"  # y[1,3] cannot feed h[1,16]
    assert STATUS[rt.set_sequence(5, 0, [(1, 0)])] == "SEQUENCE"  # the streamed input cannot be recurrent
    assert STATUS[rt.set_sequence(5, 2, [(1, 1)])] == "SEQUENCE"
    assert STATUS[rt.set_sequence(10_000_000, 0, [(1, 1)])] == "ARENA"
