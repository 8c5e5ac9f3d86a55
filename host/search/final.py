"""What a search does once selection is over: the reference quality drops are measured from, and
the single look at the test split, for the front points only.

Selection (rewards, limits, the front, the best candidate, fine-tuning checkpoints) uses validation
data; each front point and the baseline are scored on the test split once, after the strategy has
finished, and both figures are shown side by side, labelled.
"""

from __future__ import annotations

import logging
from typing import Any

from edgeprune.host.search.store import RunStore

log = logging.getLogger(__name__)

TEST_META = "test_quality"
REFERENCE_META = "reference_quality"


def reference_quality(task: Any) -> float | None:
    """The FP32 baseline's validation score (the cached baseline's metrics), or ``None`` when unknown.

    Drops are measured from it: a user asking for "≤ 1 pp" means below their own float model.
    """
    try:
        metrics = task.baseline_metrics()
        return float(metrics["quality"]["val"]["value"])
    except (AttributeError, KeyError, TypeError, ValueError, OSError):
        return None


def score_front_on_test(store: RunStore, evaluator: Any, higher_is_better: bool) -> dict[str, Any]:
    """Score the baseline and every front point on the test split once; kept in the run's metadata
    (``test_quality``: digest → quality dict). Points scored by an earlier (interrupted) pass are kept."""
    from edgeprune.host.report.front import pareto_front

    scorer = getattr(evaluator, "test_quality", None)
    scores: dict[str, Any] = dict(store.get_meta(TEST_META) or {})
    if scorer is None:
        return scores
    evaluations = store.evaluations()
    wanted = [p.evaluation for p in pareto_front(evaluations, higher_is_better)]
    base = store.baseline()
    if base is not None:
        wanted.insert(0, base)
    for ev in wanted:
        if ev.digest in scores or "dir" not in ev.result.artifacts:
            continue
        try:
            quality = scorer(ev.result)
        except FileNotFoundError as exc:
            log.warning("no test score for %s: %s", ev.digest[:10], exc)
            continue
        scores[ev.digest] = quality.to_dict()
        store.set_meta(TEST_META, scores)
    return scores
