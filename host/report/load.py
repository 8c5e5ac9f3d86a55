"""Reading a run directory back into memory for the report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.host.report.quality import QualityFigures, figures_of
from edgeprune.host.search.confirm import CONFIRM_META, REFERENCE_SAMPLES_META, Confirmation, ratio_score
from edgeprune.host.search.front import FrontPoint, best_candidate, pareto_front
from edgeprune.host.search.store import RunStore, StoredEvaluation
from edgeprune.host.tasks.intervals import DEFAULT_LEVEL


@dataclass
class RunData:
    """One run as the report sees it.

    Parameters
    ----------
    run_dir:
        The run directory.
    options:
        The search options stored in the run's metadata (task, target, strategy, budget, limits...).
    evaluations:
        Every stored evaluation, in order.
    baseline:
        The baseline's stored evaluation, if measured.
    front:
        The run's Pareto front.
    best:
        The one named best point (``named_best``).
    test_quality:
        Digest → test-split quality (dict), scored once after the search for the baseline and the
        front points; empty for runs that ended before that step.
    reference_quality:
        The FP32 baseline's validation quality that drops were measured from (``None``: the int8 baseline's).
    confirmation:
        The confirmation stage's outcome (``edgeprune.host.search.confirm``), ``None`` for runs before it.
    reference_samples:
        The FP32 model's per-window samples by split: what paired drops are measured against.
    """

    run_dir: Path
    options: dict[str, Any]
    evaluations: list[StoredEvaluation]
    baseline: StoredEvaluation | None
    front: list[FrontPoint]
    best: StoredEvaluation | None
    test_quality: dict[str, Any] = field(default_factory=dict)
    reference_quality: float | None = None
    confirmation: Confirmation | None = None
    reference_samples: dict[str, list[float]] = field(default_factory=dict)

    def quality(self, ev: StoredEvaluation) -> QualityFigures:
        """``ev``'s quality on both splits with intervals, and its paired drops against FP32."""
        level = self.confirmation.level if self.confirmation is not None else DEFAULT_LEVEL
        return figures_of(ev, self.metric, self.higher_is_better, self.test_quality, self.reference_samples, level)

    @property
    def label(self) -> str:
        return f"{self.options.get('strategy', '?')} ({self.run_dir.name})"

    @property
    def metric(self) -> str:
        return str(self.options.get("metric", "quality"))

    @property
    def higher_is_better(self) -> bool:
        return bool(self.options.get("higher_is_better", True))

    def anchor(self, seq: int) -> str:
        """HTML id of a candidate's row, unique across the runs of one report."""
        return f"cand-{self.run_dir.name}-{seq}"

    def candidates(self) -> list[StoredEvaluation]:
        return [e for e in self.evaluations if e.kind == "candidate"]


def load_run(run_dir: Path) -> RunData:
    """Load a run directory written by ``edgeprune search``."""
    with RunStore.open_existing(Path(run_dir)) as store:
        options = dict(store.get_meta("options", {}) or {})
        evaluations = store.evaluations()
        baseline = store.baseline()
        test_quality = dict(store.get_meta("test_quality", {}) or {})
        reference = store.get_meta("reference_quality")
        confirmed = store.get_meta(CONFIRM_META)
        samples = dict(store.get_meta(REFERENCE_SAMPLES_META) or {})
    hib = bool(options.get("higher_is_better", True))
    front = pareto_front(evaluations, hib)
    confirmation = Confirmation.from_dict(confirmed) if confirmed else None
    return RunData(
        run_dir=Path(run_dir),
        options=options,
        evaluations=evaluations,
        baseline=baseline,
        front=front,
        best=named_best(evaluations, baseline, front, confirmation),
        test_quality=test_quality,
        reference_quality=reference,
        confirmation=confirmation,
        reference_samples=samples,
    )


def named_best(evaluations: list[StoredEvaluation], baseline: StoredEvaluation | None, front: list[FrontPoint],
               confirmation: Confirmation | None) -> StoredEvaluation | None:
    """The one best point every part of the report names.

    The confirmation stage's choice when the run has one (``None`` when it confirmed nothing); for runs
    recorded before it, the front point with the largest min(instruction ratio, flash ratio), as the
    headline always chose, and for runs without a measured baseline the feasible candidate with the
    highest reward.
    """
    if confirmation is not None:
        return next((e for e in evaluations if e.digest == confirmation.named), None)
    if baseline is not None and front:
        scored = [(ratio_score(p.evaluation, baseline), -p.evaluation.seq, p.evaluation) for p in front]
        finite = [t for t in scored if math.isfinite(t[0])]
        if finite:
            return max(finite, key=lambda t: (t[0], t[1]))[2]
    return best_candidate(evaluations)
