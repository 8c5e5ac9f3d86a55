"""Every quality figure of a run with its 95 % interval, and every drop against FP32 as a paired difference.

One place computes what the terminal table, ``front.csv``, the headline and ``report.html`` print, so
they cannot disagree. Intervals are seeded bootstraps over the split's windows (episodes for a policy):
see ``edgeprune.host.tasks.intervals``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edgeprune.host.search.store import StoredEvaluation
from edgeprune.host.tasks.intervals import DEFAULT_LEVEL, Interval, IntervalError, bootstrap, paired_drop

INTERVAL_NOTE = (
    "Intervals are 95 % seeded bootstraps over the split's windows (episodes for a policy). On the weather task a "
    "split holds 189 windows: one window is 0.53 pp and one accuracy is uncertain by about ±7 pp, but a drop against "
    "the FP32 model on the same windows is far less uncertain, because the windows both models get right or both get "
    "wrong cancel. A drop whose interval spans 0 is not distinguishable from no drop.")


@dataclass(frozen=True)
class QualityFigures:
    """One candidate's quality on both splits, each with its interval, and its paired drops against FP32.

    Parameters
    ----------
    val, test:
        Score intervals (``None``: no per-window samples stored, or not scored on that split).
    val_drop, test_drop:
        Paired drop intervals against the FP32 model, in the unit of ``--max-acc-drop``.
    """

    val: Interval | None
    test: Interval | None
    val_drop: Interval | None
    test_drop: Interval | None


def _score(samples: list[float] | None, metric: str, level: float) -> Interval | None:
    if not samples:
        return None
    try:
        return bootstrap(samples, metric, level=level)
    except IntervalError:
        return None


def _drop(samples: list[float] | None, ref: list[float] | None, metric: str, hib: bool,
          level: float) -> Interval | None:
    if not samples or not ref or len(samples) != len(ref):
        return None
    try:
        return paired_drop(samples, ref, metric, hib, level=level)
    except IntervalError:
        return None


def figures_of(ev: StoredEvaluation, metric: str, higher_is_better: bool, test_quality: dict[str, Any],
               reference_samples: dict[str, list[float]], level: float = DEFAULT_LEVEL) -> QualityFigures:
    """The ``QualityFigures`` of ``ev`` from what the run stored (its samples, its test score, FP32's samples)."""
    if metric not in ("accuracy", "rmse", "return"):
        return QualityFigures(None, None, None, None)
    val = ev.result.samples.get("val")
    test = (test_quality.get(ev.digest) or {}).get("samples")
    return QualityFigures(
        _score(val, metric, level), _score(test, metric, level),
        _drop(val, reference_samples.get("val"), metric, higher_is_better, level),
        _drop(test, reference_samples.get("test"), metric, higher_is_better, level),
    )


def fmt_score(iv: Interval | None, value: float | None = None) -> str:
    """``0.619 [0.550, 0.688]``; the bare value when there is no interval; ``—`` when neither is known."""
    if iv is not None:
        digits = 3 if abs(iv.value) < 10 else 1
        return iv.text(digits=digits)
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.4g}"


def fmt_drop(iv: Interval | None) -> str:
    """``+0.53 [−2.12, +3.17]`` (the unit is in the column header)."""
    if iv is None:
        return "—"
    return f"{iv.value:+.2f} [{iv.lo:+.2f}, {iv.hi:+.2f}]"


def drop_unit_short(metric: str) -> str:
    return "pp" if metric == "accuracy" else "%"
