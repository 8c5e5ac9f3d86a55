"""Reading a run directory back into memory for the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.host.report.front import FrontPoint, best_candidate, pareto_front
from edgeprune.host.search.store import RunStore, StoredEvaluation


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
        The feasible candidate with the highest reward.
    test_quality:
        Digest → test-split quality (dict), scored once after the search for the baseline and the
        front points; empty for runs that ended before that step.
    reference_quality:
        The FP32 baseline's validation quality that drops were measured from (``None``: the int8 baseline's).
    """

    run_dir: Path
    options: dict[str, Any]
    evaluations: list[StoredEvaluation]
    baseline: StoredEvaluation | None
    front: list[FrontPoint]
    best: StoredEvaluation | None
    test_quality: dict[str, Any] = field(default_factory=dict)
    reference_quality: float | None = None

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
    hib = bool(options.get("higher_is_better", True))
    return RunData(
        run_dir=Path(run_dir),
        options=options,
        evaluations=evaluations,
        baseline=baseline,
        front=pareto_front(evaluations, hib),
        best=best_candidate(evaluations),
        test_quality=test_quality,
        reference_quality=reference,
    )
