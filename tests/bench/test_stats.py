"""Count statistics: Tukey fences, median/IQR/min, and the outlier count."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprune.bench.errors import MeasureError
from edgeprune.bench.power.ina import power_figure
from edgeprune.bench.stats import summarize_counts, tukey_filter


def test_tukey_removes_a_single_interrupt_spike() -> None:
    counts = [1000, 1002, 1001, 1003, 1000, 1002, 5000]
    s = summarize_counts(counts)
    assert s.outliers == 1 and s.n == 7
    assert s.max == 1003 and s.min == 1000
    assert s.median == pytest.approx(1001.5)
    # quartiles of all 7 runs: Q1 = 1000.5, Q3 = 1002.5, IQR = 2 -> fences 997.5 .. 1005.5
    assert s.fences == pytest.approx((997.5, 1005.5))


def test_identical_counts_under_qemu_have_zero_iqr() -> None:
    s = summarize_counts([123_456] * 10)
    assert (s.median, s.iqr, s.min, s.outliers) == (123_456, 0, 123_456, 0)


def test_fewer_than_four_runs_are_not_filtered() -> None:
    kept, fences = tukey_filter([1, 100, 10_000])
    assert kept.tolist() == [1, 100, 10_000] and fences == (-np.inf, np.inf)
    with pytest.raises(MeasureError):
        summarize_counts([])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**32 - 1), min_size=1, max_size=50))
def test_summary_invariants(counts: list[int]) -> None:
    s = summarize_counts(counts)
    assert s.min <= s.q1 <= s.median <= s.q3 <= s.max
    assert 0 <= s.outliers < max(len(counts), 1) or len(counts) == 0
    assert s.fences[0] <= s.min and s.max <= s.fences[1]


def test_ina_power_figure() -> None:
    fig = power_figure({"sensor": 2, "bus_uv": 3_300_000, "current_ua": 10_000, "power_uw": 33_000})
    assert fig.source == "board" and fig.unit == "mW" and fig.value == pytest.approx(33.0)
    assert "INA226" in fig.detail
    # no power register: V x I = 3.3 V x 5 mA = 16.5 mW
    assert power_figure({"sensor": 1, "bus_uv": 3_300_000, "current_ua": 5000, "power_uw": 0}).value == pytest.approx(16.5)


def test_one_counter_tick_is_quantisation_not_an_outlier() -> None:
    counts = [444_880] * 9 + [444_920]  # one run one SysTick tick (40 instructions) longer
    assert summarize_counts(counts).outliers == 1  # plain Tukey: IQR 0 makes any difference an outlier
    s = summarize_counts(counts, resolution=40)
    assert s.outliers == 0 and s.max == 444_920 and s.fences == (444_840, 444_920)
    assert summarize_counts([*counts, 480_000], resolution=40).outliers == 1  # a real spike still is
