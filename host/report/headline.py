"""The one line a user runs a search for: how much smaller and faster the best front point is than
the uncompressed int8 model measured on the same target, and what it costs in quality against the
FP32 model (validation, which selected it; test, measured once afterwards)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edgeprune.host.report.load import RunData
from edgeprune.host.search.types import FLASH_BYTES, LATENCY_COUNT, MACS, PARAMS, QUALITY


@dataclass(frozen=True)
class Headline:
    """The front point with the largest ``min(instruction ratio, flash ratio)``.

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

    def lines(self) -> list[str]:
        unit = "pp" if self.metric == "accuracy" else "% of baseline"
        ref = "—" if self.reference_val is None else f"{self.reference_val:.4f}"
        test = "—" if self.test_quality is None else f"{self.test_quality:.4f}"
        base_test = "—" if self.baseline_test is None else f"{self.baseline_test:.4f}"
        return [
            f"best front point #{self.seq}: {self.latency_ratio:.1f}x fewer {self.latency_unit}, "
            f"{self.flash_ratio:.1f}x less flash than the uncompressed int8 model on this target "
            f"(params {self.params_ratio:.1f}x, MACs {self.macs_ratio:.1f}x fewer than the FP32 model)",
            f"  {self.metric}: validation {self.val_quality:.4f} vs FP32 {ref} (drop {self.drop:+.2f} {unit}); "
            f"test {test} (scored once after the search) vs int8 baseline val {self.baseline_val:.4f} / test {base_test}",
        ]


def _ratio(base: float, value: float) -> float:
    return base / value if value > 0 and math.isfinite(base) and math.isfinite(value) else math.nan


def headline(run: RunData) -> Headline | None:
    """The headline of a run, or ``None`` without a baseline or a front."""
    if run.baseline is None or not run.front:
        return None
    base = run.baseline.result

    def score(ev: Any) -> float:
        r = ev.result
        return min(_ratio(base.value(LATENCY_COUNT), r.value(LATENCY_COUNT)),
                   _ratio(base.value(FLASH_BYTES), r.value(FLASH_BYTES)))

    best = max((p.evaluation for p in run.front), key=lambda ev: (score(ev), -ev.seq))
    r = best.result
    ref = run.reference_quality
    val = r.value(QUALITY)
    anchor = ref if ref is not None else base.value(QUALITY)
    lost = (anchor - val) if run.higher_is_better else (val - anchor)
    drop = 100.0 * lost if run.metric == "accuracy" else 100.0 * lost / (abs(anchor) or 1.0)
    test = run.test_quality.get(best.digest)
    base_test = run.test_quality.get(run.baseline.digest)
    lat = r.figures.get(LATENCY_COUNT)
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
    )
