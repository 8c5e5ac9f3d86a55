"""What a search does once selection is over: the reference quality drops are measured from, and
the single look at the test split, for the front points only.

Selection (rewards, limits, the front, the best candidate, fine-tuning checkpoints) uses validation
data; each front point and the baseline are scored on the test split once, after the strategy has
finished, and both figures are shown side by side, labelled.
"""

from __future__ import annotations

import logging
from typing import Any

from edgeprune.host.search.confirm import REFERENCE_SAMPLES_META, confirm_run
from edgeprune.host.search.front import pareto_front
from edgeprune.host.search.objective import DEFAULT_MAX_ACC_DROP
from edgeprune.host.search.store import RunStore
from edgeprune.host.tasks.intervals import DEFAULT_LEVEL

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


def reference_samples(task: Any, split: str) -> list[float] | None:
    """The FP32 baseline's per-window (per-episode) samples on ``split``: what paired drops are measured against."""
    try:
        quality = task.evaluate_model(task.baseline(), split)
    except (AttributeError, NotImplementedError, OSError) as exc:
        log.warning("no FP32 %s samples for paired drops: %s", split, exc)
        return None
    return None if quality.samples is None else list(quality.samples)


def confirm_front(store: RunStore, evaluator: Any, task: Any, limit: float, level: float) -> Any:
    """The confirmation stage (``edgeprune.host.search.confirm``) on validation data, before test is unsealed.

    Returns the ``Confirmation`` (also stored as the run's ``confirmation`` metadata), or ``None`` when the
    task gives no per-window samples.
    """
    ref = reference_samples(task, "val")
    if not ref:
        return None
    refs = dict(store.get_meta(REFERENCE_SAMPLES_META) or {})
    refs["val"] = ref
    store.set_meta(REFERENCE_SAMPLES_META, refs)
    rescore = getattr(evaluator, "rescore", None)

    def samples_of(result: Any) -> list[float] | None:
        if rescore is None:
            return None
        try:
            return rescore(result, "val").samples  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None

    return confirm_run(store, samples_of, ref, str(task.metric), bool(task.higher_is_better), limit, level)


def score_front_on_test(store: RunStore, evaluator: Any, higher_is_better: bool, task: Any = None) -> dict[str, Any]:
    """Score the baseline and every front point on the test split once; kept in the run's metadata
    (``test_quality``: digest → quality dict with its per-window samples). Points scored by an earlier
    (interrupted) pass are kept. With ``task``, the FP32 model's test samples are stored too (paired drops)."""
    task = task if task is not None else getattr(evaluator, "task", None)
    confirmation = None
    if task is not None:
        options = dict(store.get_meta("options") or {})
        sealed = getattr(task, "test_sealed", False)
        task.test_sealed = True  # the confirmation is selection: validation data only
        try:
            confirmation = confirm_front(store, evaluator, task,
                                         float(options.get("max_acc_drop", DEFAULT_MAX_ACC_DROP)),
                                         float(options.get("interval_level", DEFAULT_LEVEL)))
        finally:
            task.test_sealed = sealed
        refs = dict(store.get_meta(REFERENCE_SAMPLES_META) or {})
        if "test" not in refs:
            ref = reference_samples(task, "test")
            if ref:
                refs["test"] = ref
                store.set_meta(REFERENCE_SAMPLES_META, refs)

    scorer = getattr(evaluator, "test_quality", None)
    scores: dict[str, Any] = dict(store.get_meta(TEST_META) or {})
    if scorer is None:
        return scores
    evaluations = store.evaluations()
    wanted = [p.evaluation for p in pareto_front(evaluations, higher_is_better)]
    named = getattr(confirmation, "named", None)
    if named is not None and named not in {ev.digest for ev in wanted}:
        wanted += [ev for ev in evaluations if ev.digest == named][:1]
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
