"""Naming one best point without rewarding luck: every candidate's drop with its paired interval, and a
confirmation rule that discounts drops the run's own evidence says are too good to be true.

Why a rule beyond "val drop ≤ limit": a search scores tens of candidates on one validation split (189
windows on the weather task, one window = 0.53 pp) and keeps the cheapest that looks within the limit.
Among many candidates of similar size, the one that looks best on those windows is, on average, the one
that was luckiest on them — its drop on unseen data is larger (the winner's curse).

The rule (``RULE``) is empirical Bayes over the run's own candidates:

* each scored candidate *i* has an observed validation drop ``d_i`` against the FP32 model and its
  paired bootstrap standard error ``s_i`` (``intervals.paired_drop``: same windows, so shared
  errors cancel);
* what a candidate of that size usually loses is the trend ``f(x) = a + b·x`` of ``d`` over
  ``x = log(MACs of the FP32 model / MACs of the candidate)``, fitted robustly (``fit_trend``) on every
  scored candidate of the run (host-screened ones included: they are proposals like any other, and
  leaving out those that broke the limit would bias the trend by the very selection it corrects);
* the spread of true drops around the trend is ``τ² = max(0, spread(d − f)² − median(s²))`` (what is
  left of the residuals' spread once the sampling noise is taken out);
* each feasible candidate's drop is shrunk towards the trend by its own noise:
  ``θ_i = f_i + τ² / (τ² + s_i²) · (d_i − f_i)``. A point that agrees with the FP32 model on most
  windows has a small ``s_i`` and keeps its own figure; one that disagrees on many and happened to
  come out ahead is pulled back to what its size predicts. More windows (smaller ``s_i``) shrink less.

A feasible candidate is *confirmed* when ``θ_i`` is within the limit; the named best point is the confirmed
candidate with the largest ``min(instruction ratio, flash ratio)`` against the int8 baseline, the
headline figure. The previous rule (``val drop ≤ limit`` on the point estimate, same ratio) is kept as
``POINT_RULE`` so the two can be compared on the same runs (bench/scripts/accuracy_rule.py).

Test stays sealed: everything here reads the validation split only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeprune.host.search.front import unique_candidates
from edgeprune.host.search.store import RunStore, StoredEvaluation
from edgeprune.host.search.types import FLASH_BYTES, LATENCY_COUNT, MACS, QUALITY
from edgeprune.host.tasks.intervals import DEFAULT_LEVEL, Interval, IntervalError, paired_drop

RULE = "shrunk"
POINT_RULE = "point"
RULES = (RULE, POINT_RULE)
CONFIRM_META = "confirmation"
REFERENCE_SAMPLES_META = "reference_samples"
#: Fewer scored candidates than this and the trend is not fitted (the mean drop is the prior instead).
MIN_TREND_POINTS = 6


@dataclass(frozen=True)
class PointEvidence:
    """What the validation split says about one feasible candidate.

    Parameters
    ----------
    seq, digest:
        The stored evaluation.
    ratio:
        ``min(instruction ratio, flash ratio)`` against the int8 baseline (larger = cheaper).
    drop:
        Paired validation drop against the FP32 model with its interval (``Interval.to_dict``).
    trend:
        The drop the run's candidates of this size show on average (``f`` in the module docstring).
    shrunk:
        ``θ``: the drop after shrinkage towards the trend.
    confirmed:
        ``shrunk ≤ limit``.
    """

    seq: int
    digest: str
    ratio: float
    drop: dict[str, float]
    trend: float
    shrunk: float
    confirmed: bool

    @property
    def interval(self) -> Interval:
        return Interval.from_dict(self.drop)


@dataclass
class Confirmation:
    """The outcome of the confirmation stage, stored in the run's metadata as ``confirmation``.

    Parameters
    ----------
    rule:
        ``shrunk`` (the rule in force) or ``point``.
    limit:
        ``--max-acc-drop`` in its unit.
    level:
        Two-sided level of every interval.
    unit:
        The drop's unit (``pp`` or ``%``).
    trend:
        ``a``, ``b`` of the fitted trend, ``tau`` and the number of candidates it was fitted on.
    points:
        One ``PointEvidence`` per feasible measured candidate (as dicts).
    named:
        The named best point's digest, or ``None`` when no candidate is confirmed.
    point_rule_named:
        What the previous rule (point estimate within the limit) would have named.
    """

    rule: str
    limit: float
    level: float
    unit: str
    trend: dict[str, float]
    points: list[dict[str, Any]] = field(default_factory=list)
    named: str | None = None
    point_rule_named: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Confirmation:
        return cls(str(d["rule"]), float(d["limit"]), float(d["level"]), str(d.get("unit", "pp")),
                   dict(d.get("trend") or {}), list(d.get("points") or []), d.get("named"),
                   d.get("point_rule_named"))

    def evidence(self) -> list[PointEvidence]:
        return [PointEvidence(**p) for p in self.points]

    def of(self, digest: str) -> PointEvidence | None:
        return next((p for p in self.evidence() if p.digest == digest), None)


def ratio_score(ev: StoredEvaluation, base: StoredEvaluation) -> float:
    """``min(instruction ratio, flash ratio)`` against the int8 baseline: the headline's figure."""
    def ratio(name: str) -> float:
        b, v = base.result.value(name), ev.result.value(name)
        return b / v if v > 0 and math.isfinite(b) and math.isfinite(v) else math.nan

    return min(ratio(LATENCY_COUNT), ratio(FLASH_BYTES))


def fit_trend(x: np.ndarray, d: np.ndarray, s: np.ndarray) -> tuple[float, float, float]:
    """``(a, b, τ)`` of the module docstring from sizes ``x``, drops ``d`` and their standard errors ``s``.

    Robust on purpose: a search stores candidates that collapsed (tens of pp lost), and a least-squares fit
    with a variance of residuals would let those few set both the trend and ``τ`` — ``τ`` would then dwarf
    every point's noise and nothing would be shrunk. So the slope is Theil–Sen's (median of pairwise slopes),
    the intercept the median residual, and the spread 1.4826 × the median absolute residual.
    """
    if len(d) == 0:
        return 0.0, 0.0, math.inf
    b = 0.0
    if len(d) >= MIN_TREND_POINTS and np.ptp(x) > 0:
        i, j = np.triu_indices(len(x), k=1)
        dx = x[j] - x[i]
        ok = np.abs(dx) > 1e-9
        if ok.any():
            b = float(np.median((d[j] - d[i])[ok] / dx[ok]))
    a = float(np.median(d - b * x))
    if len(d) < 3:
        return a, b, math.inf
    spread = 1.4826 * float(np.median(np.abs(d - (a + b * x))))
    tau2 = max(0.0, spread**2 - float(np.median(s**2)))
    return a, b, math.sqrt(tau2)
def shrink(d: float, s: float, trend: float, tau: float) -> float:
    """The drop pulled towards ``trend`` by its own noise ``s`` against the true spread ``tau``."""
    if not math.isfinite(tau) or s <= 0:
        return d
    weight = tau**2 / (tau**2 + s**2)
    return trend + weight * (d - trend)


def _size(ev: StoredEvaluation, base_macs: float) -> float:
    macs = ev.result.value(MACS)
    return math.log(base_macs / macs) if macs > 0 and base_macs > 0 and math.isfinite(macs) else math.nan


def confirm(evaluations: list[StoredEvaluation], baseline: StoredEvaluation | None,
            samples: dict[str, list[float]], reference: list[float], metric: str, higher_is_better: bool,
            limit: float, level: float = DEFAULT_LEVEL, fp32_macs: float | None = None) -> Confirmation:
    """Judge the front of ``evaluations`` and name one best point.

    :param evaluations: every stored evaluation of the run
    :param baseline: the stored int8 baseline (ratios are against it)
    :param samples: digest → validation per-window samples (``Quality.samples``) of scored candidates
    :param reference: the FP32 model's validation samples, same windows and order
    :param metric, higher_is_better: the task's metric and direction
    :param limit: ``--max-acc-drop``
    :param level: two-sided interval level
    :param fp32_macs: MACs of the FP32 model (default: the int8 baseline's, the same graph)
    """
    unit = "pp" if metric == "accuracy" else "%"
    out = Confirmation(RULE, float(limit), float(level), unit, {})
    if baseline is None:
        return out
    base_macs = fp32_macs if fp32_macs is not None else baseline.result.value(MACS)
    drops: dict[str, Interval] = {}
    for ev in unique_candidates(evaluations):
        got = samples.get(ev.digest)
        if got is None or len(got) != len(reference) or ev.result.error is not None:
            continue
        try:
            drops[ev.digest] = paired_drop(got, reference, metric, higher_is_better, level=level)
        except IntervalError:
            continue
    scored = [ev for ev in unique_candidates(evaluations) if ev.digest in drops]
    sizes = np.array([_size(ev, base_macs) for ev in scored], dtype=np.float64)
    keep = np.isfinite(sizes)
    d = np.array([drops[ev.digest].value for ev in scored], dtype=np.float64)[keep]
    s = np.array([drops[ev.digest].se for ev in scored], dtype=np.float64)[keep]
    a, b, tau = fit_trend(sizes[keep], d, s)
    out.trend = {"a": a, "b": b, "tau": tau, "n": int(keep.sum())}
    best: tuple[float, int, str] | None = None
    best_point: tuple[float, int, str] | None = None
    # Every feasible measured candidate, not only the front: a lucky point can dominate the honest ones
    # off the front, and they must still be there to be named when it is not confirmed.
    for ev in unique_candidates(evaluations):
        if not ev.feasible or not math.isfinite(ratio_score(ev, baseline)):
            continue
        iv = drops.get(ev.digest)
        if iv is None:
            continue
        x = _size(ev, base_macs)
        trend = a + b * x if math.isfinite(x) else float(np.mean(d)) if len(d) else iv.value
        theta = shrink(iv.value, iv.se, trend, tau)
        ratio = ratio_score(ev, baseline)
        ok = theta <= limit
        out.points.append(asdict(PointEvidence(ev.seq, ev.digest, ratio, iv.to_dict(), trend, theta, ok)))
        key = (ratio if math.isfinite(ratio) else -math.inf, -ev.seq, ev.digest)
        if ok and (best is None or key > best):
            best = key
        if iv.value <= limit and (best_point is None or key > best_point):
            best_point = key
    out.named = None if best is None else best[2]
    out.point_rule_named = None if best_point is None else best_point[2]
    return out


def distinguish(iv: Interval, limit: float, unit: str) -> str:
    """Whether a drop's interval excludes zero and the limit, in words."""
    pct = f"{100 * iv.level:.0f} %"
    if iv.lo > 0:
        zero = "a real loss (its interval is above 0)"
    elif iv.hi < 0:
        zero = "a real gain (its interval is below 0)"
    else:
        zero = "not distinguishable from no drop (its interval spans 0)"
    if iv.hi < limit:
        lim = f"within the {limit:g} {unit} limit with {pct} confidence"
    elif iv.lo > limit:
        lim = f"beyond the {limit:g} {unit} limit with {pct} confidence"
    else:
        lim = f"not distinguishable from the {limit:g} {unit} limit"
    return (f"drop {iv.value:+.2f} {unit}, {pct} interval [{iv.lo:+.2f}, {iv.hi:+.2f}]: {zero}; {lim}")


def verdict_text(ev: PointEvidence, limit: float, unit: str) -> str:
    """``distinguish`` for a point's validation drop, and its drop after shrinkage."""
    return (f"{distinguish(ev.interval, limit, unit)}; shrunk towards the run's trend ({ev.trend:+.2f} {unit} for "
            f"its size): {ev.shrunk:+.2f} {unit}")


def confirm_run(store: RunStore, samples_of: Any, reference: list[float], metric: str, higher_is_better: bool,
                limit: float, level: float = DEFAULT_LEVEL) -> Confirmation:
    """Score what lacks validation samples (``samples_of(result) -> list | None``), confirm, store the outcome."""
    evaluations = store.evaluations()
    samples: dict[str, list[float]] = {}
    for ev in unique_candidates(evaluations):
        if ev.result.error is not None or not math.isfinite(ev.result.value(QUALITY)):
            continue
        got = ev.result.samples.get("val") or samples_of(ev.result)
        if got:
            samples[ev.digest] = list(got)
    out = confirm(evaluations, store.baseline(), samples, reference, metric, higher_is_better, limit, level)
    store.set_meta(CONFIRM_META, out.to_dict())
    return out
