"""The one line a user runs a search for: how much smaller and faster the named best point is than
the uncompressed int8 model measured on the same target, and what it costs in quality against the
FP32 model (validation, which selected it; test, measured once afterwards), each with its interval."""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgeprune.host.report.load import RunData
from edgeprune.host.report.quality import QualityFigures, fmt_drop, fmt_score
from edgeprune.host.search.confirm import distinguish, verdict_text
from edgeprune.host.search.objective import DEFAULT_MAX_ACC_DROP
from edgeprune.host.search.types import FLASH_BYTES, LATENCY_COUNT, MACS, PARAMS, QUALITY


@dataclass(frozen=True)
class Headline:
    """The run's one named best point (``RunData.best``) against the baselines.

    Parameters
    ----------
    seq:
        Its row in the run store.
    latency_ratio, flash_ratio:
        int8 baseline ÷ this point, for the measured latency count (instructions on QEMU, cycles on a
        board: ``latency_unit``) and the deploy build's flash.
    params_ratio, macs_ratio:
        Baseline ÷ this point for the analytic counts (same for the FP32 and int8 baselines).
    val_quality, test_quality:
        This point's quality (test: ``None`` until scored after the search).
    reference_val, baseline_val, baseline_test:
        The FP32 baseline's validation quality (drops are measured from it) and the int8 baseline's.
    drop:
        Validation drop from the FP32 baseline, in pp for accuracy, % of the baseline otherwise.
    figures:
        Intervals of both scores and paired drops (``QualityFigures``), when the run stored samples.
    verdict:
        The confirmation stage's statement about the drop (``confirm.verdict_text``), or ``""``.
    rule:
        How the point was chosen, in words.
    limit:
        ``--max-acc-drop`` of the run (the test drop is judged against it too).
    """

    seq: int
    latency_ratio: float
    latency_unit: str
    flash_ratio: float
    params_ratio: float
    macs_ratio: float
    val_quality: float
    test_quality: float | None
    reference_val: float | None
    baseline_val: float
    baseline_test: float | None
    drop: float
    metric: str
    figures: QualityFigures | None = None
    verdict: str = ""
    rule: str = ""
    limit: float | None = None

    def lines(self) -> list[str]:
        unit = "pp" if self.metric == "accuracy" else "% of baseline"
        ref = "—" if self.reference_val is None else f"{self.reference_val:.4f}"
        f = self.figures or QualityFigures(None, None, None, None)
        val = fmt_score(f.val, self.val_quality)
        test = fmt_score(f.test, self.test_quality)
        base_test = "—" if self.baseline_test is None else f"{self.baseline_test:.4f}"
        level = f"{100 * f.val.level:.0f} %" if f.val is not None else "95 %"
        drop = fmt_drop(f.val_drop) if f.val_drop is not None else f"{self.drop:+.2f}"
        out = [
            f"best point #{self.seq} ({self.rule or 'largest min(instruction, flash) ratio on the front'}): "
            f"{times(self.latency_ratio, 'fewer', 'more')} {self.latency_unit}, "
            f"{times(self.flash_ratio, 'less', 'more')} flash than the uncompressed int8 model on this target "
            f"(params {self.params_ratio:.1f}x, MACs {self.macs_ratio:.1f}x fewer than the FP32 model)",
            f"  {self.metric} [{level} interval]: validation {val} vs FP32 {ref}, drop {drop} {unit} (paired); "
            f"test {test} (scored once after the search)"
            + (f", drop {fmt_drop(f.test_drop)} {unit} (paired)" if f.test_drop is not None else "")
            + f"; int8 baseline val {self.baseline_val:.4f} / test {base_test}",
        ]
        if self.verdict:
            out.append(f"  validation: {self.verdict}")
        if f.test_drop is not None and self.limit is not None:
            out.append(f"  test: {distinguish(f.test_drop, self.limit, 'pp' if self.metric == 'accuracy' else '%')}")
        return out


def times(ratio: float, fewer: str, more: str) -> str:
    """``"2.0x fewer"`` for a reduction ``ratio`` (baseline / point) ≥ 1, ``"1.5x more"`` below 1: a point can cost
    more than the baseline on one axis (a mixed-precision point with 4x less flash runs more instructions).

    :param ratio: baseline figure / the point's figure
    :param fewer: the word for a reduction ("fewer", "less")
    :param more: the word for an increase
    """
    if not math.isfinite(ratio) or ratio <= 0:
        return f"{ratio:.1f}x {fewer}"
    return f"{ratio:.1f}x {fewer}" if ratio >= 1 else f"{1 / ratio:.1f}x {more}"


def _ratio(base: float, value: float) -> float:
    return base / value if value > 0 and math.isfinite(base) and math.isfinite(value) else math.nan


def headline(run: RunData) -> Headline | None:
    """The headline of a run's named best point, or ``None`` without a baseline or a named point."""
    if run.baseline is None or run.best is None:
        return None
    base = run.baseline.result
    best = run.best
    r = best.result
    ref = run.reference_quality
    val = r.value(QUALITY)
    anchor = ref if ref is not None else base.value(QUALITY)
    lost = (anchor - val) if run.higher_is_better else (val - anchor)
    drop = 100.0 * lost if run.metric == "accuracy" else 100.0 * lost / (abs(anchor) or 1.0)
    test = run.test_quality.get(best.digest)
    base_test = run.test_quality.get(run.baseline.digest)
    lat = r.figures.get(LATENCY_COUNT)
    verdict, rule = "", ""
    if run.confirmation is not None:
        ev = run.confirmation.of(best.digest)
        if ev is not None:
            verdict = verdict_text(ev, run.confirmation.limit, run.confirmation.unit)
        rule = ("the cheapest candidate whose drop, shrunk towards what the run's candidates of its size lose, "
                "is within the limit")
    return Headline(
        seq=best.seq,
        latency_ratio=_ratio(base.value(LATENCY_COUNT), r.value(LATENCY_COUNT)),
        latency_unit=f"{lat.unit}" if lat is not None else "instructions",
        flash_ratio=_ratio(base.value(FLASH_BYTES), r.value(FLASH_BYTES)),
        params_ratio=_ratio(base.value(PARAMS), r.value(PARAMS)),
        macs_ratio=_ratio(base.value(MACS), r.value(MACS)),
        val_quality=val,
        test_quality=None if test is None else float(test["value"]),
        reference_val=ref,
        baseline_val=base.value(QUALITY),
        baseline_test=None if base_test is None else float(base_test["value"]),
        drop=drop,
        metric=run.metric,
        figures=run.quality(best),
        verdict=verdict,
        rule=rule,
        limit=float(run.options.get("max_acc_drop", DEFAULT_MAX_ACC_DROP)),
    )


def no_best_line(run: RunData) -> str | None:
    """Why a run names no best point although it has feasible candidates (the confirmation refused them all)."""
    if run.best is not None or run.confirmation is None or not run.confirmation.points:
        return None
    c = run.confirmation
    closest = min(c.evidence(), key=lambda p: p.shrunk)
    return (f"no candidate is confirmed within the {c.limit:g} {c.unit} limit: the closest, #{closest.seq}, drops "
            f"{closest.drop['value']:+.2f} {c.unit} on validation, {closest.shrunk:+.2f} {c.unit} once shrunk towards "
            "what candidates of its size lose; fine-tune more (--finetune-steps) or allow more (--max-acc-drop)")
