"""The bootstrap intervals behind every printed quality figure."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.host.tasks.base import Quality
from edgeprune.host.tasks.intervals import IntervalError, bootstrap, check_level, paired_drop


@pytest.mark.parametrize("p", [0.3, 0.62])
def test_accuracy_interval_covers_a_known_binomial(p: float) -> None:
    """Over many splits of 189 windows drawn with a known accuracy, the 95 % interval holds it about 95 % of
    the time (the binomial standard error at p = 0.62 is 3.5 pp, so the interval is ~±6.9 pp wide)."""
    rng = np.random.default_rng(1)
    trials, hits, widths = 400, 0, []
    for t in range(trials):
        correct = (rng.random(189) < p).astype(float)
        iv = bootstrap(correct, "accuracy", resamples=400, seed=t)
        hits += iv.contains(p)
        widths.append(iv.hi - iv.lo)
    coverage = hits / trials
    # Percentile-bootstrap coverage at n = 189 is within a point or two of nominal; 400 trials add ±2.2 pp.
    assert 0.90 <= coverage <= 0.985, coverage
    binomial_width = 2 * 1.96 * np.sqrt(p * (1 - p) / 189)
    assert abs(np.mean(widths) - binomial_width) < 0.1 * binomial_width


def test_interval_is_seeded_and_contains_the_value() -> None:
    correct = np.r_[np.ones(117), np.zeros(72)]
    a, b = bootstrap(correct, "accuracy", seed=3), bootstrap(correct, "accuracy", seed=3)
    assert a == b
    assert a.value == pytest.approx(117 / 189)
    assert a.lo < a.value < a.hi
    assert bootstrap(correct, "accuracy", seed=4) != a


def test_rmse_interval_is_the_root_of_mean_squared_errors() -> None:
    se = np.random.default_rng(0).gamma(2.0, 1.0, size=300)
    iv = bootstrap(se, "rmse")
    assert iv.value == pytest.approx(np.sqrt(se.mean()))
    assert iv.lo < iv.value < iv.hi


def test_paired_drop_is_narrower_than_the_unpaired_accuracy_interval() -> None:
    """Two models that differ on 6 of 189 windows: each accuracy is ±7 pp uncertain, their drop is not."""
    rng = np.random.default_rng(2)
    ref = (rng.random(189) < 0.62).astype(float)
    cand = ref.copy()
    flip = rng.choice(189, size=6, replace=False)
    cand[flip] = 1 - cand[flip]
    drop = paired_drop(cand, ref, "accuracy", higher_is_better=True)
    assert drop.value == pytest.approx(100 * (ref.mean() - cand.mean()))
    single = bootstrap(cand, "accuracy")
    assert (drop.hi - drop.lo) < 0.5 * 100 * (single.hi - single.lo)
    # Identical predictions: no drop and no uncertainty about it.
    same = paired_drop(ref, ref, "accuracy", higher_is_better=True)
    assert same.lo == same.hi == same.value == 0.0


def test_paired_drop_units_for_rmse_and_return() -> None:
    ref = np.full(50, 4.0)
    worse = np.full(50, 4.0 * 1.21)  # squared errors 21 % up: RMSE 10 % up
    assert paired_drop(worse, ref, "rmse", higher_is_better=False).value == pytest.approx(10.0)
    returns = np.full(100, 500.0)
    assert paired_drop(returns * 0.9, returns, "return", higher_is_better=True).value == pytest.approx(10.0)


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0, 1.5, -0.95, "high"])
def test_out_of_range_level_is_refused_in_one_line(level: object) -> None:
    with pytest.raises(IntervalError) as err:
        check_level(level)  # type: ignore[arg-type]
    assert "\n" not in str(err.value) and "0.95" in str(err.value)


def test_bad_samples_are_refused() -> None:
    with pytest.raises(IntervalError):
        bootstrap([], "accuracy")
    with pytest.raises(IntervalError):
        paired_drop([1.0, 0.0], [1.0], "accuracy", higher_is_better=True)
    with pytest.raises(IntervalError):
        bootstrap([1.0], "f1")


def test_quality_round_trips_its_samples_and_gives_an_interval() -> None:
    q = Quality(0.5, None, "accuracy", {"n": 4}, samples=[1.0, 0.0, 1.0, 0.0])
    back = Quality.from_dict(q.to_dict())
    assert back == q
    iv = back.interval()
    assert iv is not None and iv.lo <= 0.5 <= iv.hi
    assert Quality(0.5, None, "accuracy").interval() is None
