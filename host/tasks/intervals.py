"""How uncertain a quality figure is: a seeded bootstrap over the windows (or episodes) it is a mean of.

On the weather task a split holds 189 windows, so one window is 0.53 pp of accuracy and the standard
error of one accuracy is about 3.5 pp: a figure without its interval invites reading luck as skill.

Two kinds of interval are given:

* ``bootstrap`` — the interval of one score (accuracy, RMSE, mean return);
* ``paired_drop`` — the interval of the drop of a candidate against a reference model scored on the
  *same* windows (or episode seeds). The pairing matters: two models that agree on most windows have
  a drop far less uncertain than either accuracy, because the windows both get right or both get
  wrong cancel out of every resample.

Both resample the per-sample contributions that ``Quality.samples`` carries: 1/0 per window for
accuracy, the squared error per window for RMSE (the statistic is the root of their mean), the
return per episode for a policy. The resampling generator is seeded, so a figure and its interval
repeat exactly from run to run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_LEVEL = 0.95
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
#: Metrics whose score is the mean of the samples; ``rmse`` is the root of the mean of squared errors.
METRICS = ("accuracy", "rmse", "return")


class IntervalError(ValueError):
    """An interval was asked for with a level, sample set or metric it cannot have."""


def check_level(level: float) -> float:
    """``level`` as a float in (0.5, 1); anything else is refused with what to give instead."""
    try:
        value = float(level)
    except (TypeError, ValueError) as exc:
        raise IntervalError(f"interval level must be a number between 0.5 and 1 (e.g. 0.95), got {level!r}") from exc
    if not 0.5 < value < 1.0:
        raise IntervalError(f"interval level must be between 0.5 and 1 exclusive (e.g. 0.95), got {level:g}")
    return value


@dataclass(frozen=True)
class Interval:
    """A figure with its two-sided bootstrap interval.

    Parameters
    ----------
    value:
        The figure on all samples (not the bootstrap mean).
    lo, hi:
        The ``level`` percentile interval of the figure over the resamples.
    level:
        Two-sided coverage, e.g. 0.95.
    n:
        Number of samples (windows or episodes) resampled.
    se:
        Standard deviation of the figure over the resamples (its bootstrap standard error).
    """

    value: float
    lo: float
    hi: float
    level: float
    n: int
    se: float

    def contains(self, x: float) -> bool:
        return self.lo <= x <= self.hi

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, float]) -> Interval:
        return cls(float(d["value"]), float(d["lo"]), float(d["hi"]), float(d["level"]), int(d["n"]),
                   float(d.get("se", math.nan)))

    def text(self, scale: float = 1.0, digits: int = 3) -> str:
        """``0.619 [0.550, 0.688]`` (``scale`` multiplies every figure, e.g. 100 for percent)."""
        v, lo, hi = (scale * x for x in (self.value, self.lo, self.hi))
        return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _check(samples: Sequence[float] | np.ndarray, metric: str) -> np.ndarray:
    if metric not in METRICS:
        raise IntervalError(f"no interval for metric {metric!r}; known: {', '.join(METRICS)}")
    arr = np.asarray(samples, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise IntervalError("no samples to resample")
    if not np.all(np.isfinite(arr)):
        raise IntervalError("samples must be finite")
    return arr


def _score(resampled: np.ndarray, metric: str) -> np.ndarray:
    """The metric of each row of resampled per-sample contributions."""
    mean = resampled.mean(axis=-1)
    return np.sqrt(mean) if metric == "rmse" else mean


def _indices(n: int, resamples: int, seed: int) -> np.ndarray:
    if resamples < 100:
        raise IntervalError(f"at least 100 bootstrap resamples are needed, got {resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(value: float, stats: np.ndarray, level: float, n: int) -> Interval:
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(stats, [tail, 100.0 - tail])
    return Interval(float(value), float(lo), float(hi), level, n, float(np.std(stats)))


def bootstrap(samples: Sequence[float] | np.ndarray, metric: str, level: float = DEFAULT_LEVEL,
              resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> Interval:
    """The percentile-bootstrap interval of ``metric`` over per-sample contributions.

    :param samples: 1/0 per window (accuracy), squared error per window (rmse), return per episode
    :param metric: ``accuracy``, ``rmse`` or ``return``
    :param level: two-sided coverage in (0.5, 1)
    :param resamples: bootstrap resamples (≥ 100)
    :param seed: seed of the resampling generator
    """
    level = check_level(level)
    arr = _check(samples, metric)
    stats = _score(arr[_indices(arr.size, resamples, seed)], metric)
    return _interval(float(_score(arr, metric)), stats, level, arr.size)


def drop_of(candidate: np.ndarray | float, reference: np.ndarray | float, metric: str,
            higher_is_better: bool) -> np.ndarray:
    """Quality lost by ``candidate`` against ``reference`` (positive = worse), in the unit of
    ``--max-acc-drop``: percentage points for accuracy, percent of the reference otherwise."""
    cand, ref = np.asarray(candidate, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    lost = ref - cand if higher_is_better else cand - ref
    if metric == "accuracy":
        return 100.0 * lost
    scale = np.where(np.abs(ref) > 1e-12, np.abs(ref), 1.0)
    return np.asarray(100.0 * lost / scale)


def paired_drop(candidate: Sequence[float] | np.ndarray, reference: Sequence[float] | np.ndarray, metric: str,
                higher_is_better: bool, level: float = DEFAULT_LEVEL, resamples: int = DEFAULT_RESAMPLES,
                seed: int = DEFAULT_SEED) -> Interval:
    """The drop of ``candidate`` against ``reference`` with its paired bootstrap interval.

    Both sample vectors must come from the same windows (or episode seeds) in the same order: every
    resample draws the same indices from both, so what the two models share cancels.

    :param candidate: per-sample contributions of the compressed model
    :param reference: per-sample contributions of the reference (the FP32 baseline) on the same samples
    :param metric: ``accuracy``, ``rmse`` or ``return``
    :param higher_is_better: the metric's direction
    :param level, resamples, seed: as in ``bootstrap``
    """
    level = check_level(level)
    cand, ref = _check(candidate, metric), _check(reference, metric)
    if cand.shape != ref.shape:
        raise IntervalError(f"paired samples differ in length: {cand.size} vs {ref.size} (not the same windows?)")
    idx = _indices(cand.size, resamples, seed)
    stats = drop_of(_score(cand[idx], metric), _score(ref[idx], metric), metric, higher_is_better)
    value = float(drop_of(_score(cand, metric), _score(ref, metric), metric, higher_is_better))
    return _interval(value, stats, level, cand.size)
