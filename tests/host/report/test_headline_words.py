"""The best point's headline says "more" where the point costs more than the baseline, not "0.7x fewer"."""

from __future__ import annotations

import pytest

from edgeprune.host.report.headline import Headline, times


@pytest.mark.parametrize(("ratio", "words"), [(2.0, "2.0x fewer"), (1.0, "1.0x fewer"), (0.66, "1.5x more")])
def test_times(ratio, words):
    assert times(ratio, "fewer", "more") == words


def test_a_point_slower_than_the_baseline_is_said_to_cost_more():
    h = Headline(seq=15, latency_ratio=26_936_360 / 41_066_520, latency_unit="instructions", flash_ratio=4.04,
                 params_ratio=2.3, macs_ratio=2.3, val_quality=0.619, test_quality=0.635, reference_val=0.614,
                 baseline_val=0.598, baseline_test=0.630, drop=-0.53, metric="accuracy")
    first = h.lines()[0]
    assert "1.5x more instructions" in first and "4.0x less flash" in first and "fewer instructions" not in first
