"""The fixed-point rules shared by the firmware kernels and the recurrent-state handoff."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.bench.qmath import multiply_by_quantized_multiplier, quantize_multiplier, requantize


@pytest.mark.parametrize(
    ("real", "expected"),
    [
        (0.5, (1 << 30, 0)),  # 0.5 = 0.5 · 2^0
        (1.0, (1 << 30, 1)),  # 1.0 = 0.5 · 2^1
        (0.75, (3 << 29, 0)),
        (0.0, (0, 0)),
        (2.0**-40, (0, 0)),  # below 2^-31 the multiplier flushes to zero
    ],
)
def test_quantize_multiplier_known_values(real: float, expected: tuple[int, int]) -> None:
    assert quantize_multiplier(real) == expected


def test_mantissa_rounding_up_to_two_pow_31_is_renormalised() -> None:
    mant, shift = quantize_multiplier(1.0 - 2.0**-40)
    assert (mant, shift) == (1 << 30, 1)


def test_multiply_rounds_like_the_kernels() -> None:
    half = quantize_multiplier(0.5)
    # 3·0.5 = 1.5 → 2 and −3·0.5 = −1.5 → −1: the doubling high multiply rounds half up (toward +∞)
    out = multiply_by_quantized_multiplier(np.array([3, -3, 4, -4, 0]), *half)
    assert out.tolist() == [2, -1, 2, -2, 0]
    quarter = quantize_multiplier(0.25)  # (2^30, -1): the right shift rounds half away from zero
    out = multiply_by_quantized_multiplier(np.array([2, -2, 6, -6]), *quarter)
    assert out.tolist() == [1, -1, 2, -2]


def test_requantize_identity_is_a_copy() -> None:
    q = np.arange(-128, 128, dtype=np.int8)
    assert np.array_equal(requantize(q, 0.0078125, 3, 0.0078125, 3), q)


def test_requantize_matches_float_rounding_within_one_step() -> None:
    rng = np.random.default_rng(0)
    q = np.arange(-128, 128, dtype=np.int8)
    for _ in range(50):
        s_from, s_to = rng.uniform(0.002, 0.05, size=2).astype(np.float32)
        z_from, z_to = (int(v) for v in rng.integers(-20, 20, size=2))
        got = requantize(q, float(s_from), z_from, float(s_to), z_to).astype(np.int64)
        real = (q.astype(np.float64) - z_from) * float(s_from)
        ideal = np.clip(np.round(real / float(s_to)) + z_to, -128, 127)
        assert np.max(np.abs(got - ideal)) <= 1
        assert got.min() >= -128 and got.max() <= 127
