"""Statistics of per-run counts: median, IQR and minimum after Tukey outlier removal.

A run is an outlier when it lies below Q1 − 1.5·IQR or above Q3 + 1.5·IQR of all runs (quartiles by
linear interpolation), each fence widened by one counter step (the device's ``counter_scale``, e.g. 40
instructions per SysTick tick under QEMU) so a run one tick off identical runs counts as quantisation,
not as an outlier. The number removed is reported; with fewer than four runs nothing is removed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgeprune.bench.errors import MeasureError

TUKEY_K = 1.5


@dataclass(frozen=True)
class CountStats:
    """Summary of per-run counts after Tukey outlier removal.

    :param median: median of the kept runs
    :param q1: first quartile of the kept runs
    :param q3: third quartile of the kept runs
    :param iqr: ``q3 - q1``
    :param min: smallest kept run
    :param max: largest kept run
    :param n: runs measured
    :param outliers: runs removed by the fences
    :param fences: ``(low, high)`` Tukey fences computed on all runs
    """

    median: float
    q1: float
    q3: float
    iqr: float
    min: float
    max: float
    n: int
    outliers: int
    fences: tuple[float, float]


def tukey_filter(values: Sequence[float], k: float = TUKEY_K,
                 resolution: float = 0.0) -> tuple[np.ndarray, tuple[float, float]]:
    """Values inside ``[Q1 − k·IQR − resolution, Q3 + k·IQR + resolution]`` and the fences (no
    filtering below four values). ``resolution`` is the counter's step: a run one tick away from
    identical runs (IQR 0) is quantisation, not an outlier."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise MeasureError("no runs to summarise")
    if arr.size < 4:
        return arr, (-math.inf, math.inf)
    q1, q3 = np.percentile(arr, [25, 75])
    lo, hi = q1 - k * (q3 - q1) - resolution, q3 + k * (q3 - q1) + resolution
    return arr[(arr >= lo) & (arr <= hi)], (float(lo), float(hi))


def summarize_counts(counts: Sequence[float], k: float = TUKEY_K, resolution: float = 0.0) -> CountStats:
    """Median, IQR and minimum of ``counts`` after Tukey outlier removal (see module doc)."""
    kept, fences = tukey_filter(counts, k, resolution)
    q1, med, q3 = np.percentile(kept, [25, 50, 75])
    return CountStats(
        median=float(med),
        q1=float(q1),
        q3=float(q3),
        iqr=float(q3 - q1),
        min=float(kept.min()),
        max=float(kept.max()),
        n=len(counts),
        outliers=len(counts) - int(kept.size),
        fences=fences,
    )
