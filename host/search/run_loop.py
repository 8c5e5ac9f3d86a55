"""The run loop of a claimed run directory: load the task, open the session (store, cache, evaluator, space and
its per-layer bounds), let the strategy propose until the budget is spent, then score the front on the test split,
record where the time went, and summarise.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.bench.targets import split_specs
from edgeprune.host.search.bounds import observe
from edgeprune.host.search.engines import start_parallel
from edgeprune.host.search.evaluator import HardwareEvaluator
from edgeprune.host.search.final import REFERENCE_META, reference_quality, score_front_on_test
from edgeprune.host.search.front import pareto_front
from edgeprune.host.search.objective import Constraints
from edgeprune.host.search.options import SEQUENCE_STRATEGIES, SearchOptions, board_link_options, load_task
from edgeprune.host.search.run_checks import check_baseline_limits
from edgeprune.host.search.sensitivity import search_bounds
from edgeprune.host.search.session import Outcome, SearchSession
from edgeprune.host.search.space import ConfigSpace
from edgeprune.host.search.store import EvalCache, RunStore
from edgeprune.host.search.strategies.common import StrategyContext
from edgeprune.host.search.timing import TIME_META
from edgeprune.host.search.types import Evaluator

log = logging.getLogger(__name__)

EvaluatorFactory = Callable[[Any, SearchOptions, Path], Evaluator]


@dataclass
class SearchResult:
    """What a finished (or budget-exhausted) run produced.

    Parameters
    ----------
    run_dir:
        The run directory.
    report_html:
        Path of ``report.html`` when ``run_search`` was given a ``write_report`` (the CLI's
        ``edgeprune.host.report.generate_report``); ``None`` otherwise.
    device_evaluations:
        Budget units used in total (over all resumes).
    evaluations:
        Candidates recorded (including cache hits and re-proposals).
    front_size:
        Points on the Pareto front.
    """

    run_dir: Path
    report_html: Path | None
    device_evaluations: int
    evaluations: int
    front_size: int


@dataclass
class RunCalls:
    """What ``run_search``'s caller plugs into the loop (see ``run_search`` for each).

    Parameters
    ----------
    on_outcome, on_start, on_begin, on_task_progress:
        Progress callbacks.
    task, evaluator_factory, cache, worker_factory:
        Replacements of the default task, evaluator, global cache and parallel workers (``None``: the default).
    write_report:
        ``(run_dirs) -> Path`` of the report written at the end, or ``None``.
    """

    on_outcome: Callable[[Outcome, SearchSession], None] | None = None
    on_start: Callable[[SearchOptions, Path, SearchSession], None] | None = None
    on_begin: Callable[[SearchOptions, Path, bool], None] | None = None
    on_task_progress: Callable[[str, float], None] | None = None
    task: Any = None
    evaluator_factory: EvaluatorFactory | None = None
    cache: EvalCache | None = None
    worker_factory: Any = None
    write_report: Callable[[list[Path]], Path] | None = None


def hardware_evaluator(task: Any, options: SearchOptions, run_dir: Path) -> Evaluator:
    """The default evaluator of a run: a ``HardwareEvaluator`` on the options' (first) device."""
    return HardwareEvaluator(
        task,
        split_specs(options.device)[0],  # the baseline's device; with several boards, the first
        repeats=options.repeats,
        host_energy=options.host_energy,
        pidfile=run_dir / ".qemu.pid",
        deploy_dir=run_dir / ".deploy-build",
        **({"warm_start": options.warm_start} | board_link_options(options.device) | options.evaluator_options),
    )


def run_locked(options: SearchOptions, run_dir: Path, resume: Path | None, run_strategy: Callable[[Any], None],
               calls: RunCalls) -> SearchResult:
    """Run (or resume) the search in ``run_dir``, whose lock the caller (``run_search``) holds.

    Parameters
    ----------
    options:
        The run's options (stored ones on resume).
    run_dir:
        The claimed run directory.
    resume:
        ``run_dir`` when resuming, else ``None``.
    run_strategy:
        The strategy (``strategies.get_strategy``), called with a ``StrategyContext``.
    calls:
        The caller's callbacks and replacements.
    """
    began = time.time()
    if calls.on_begin is not None:
        calls.on_begin(options, run_dir, resume is not None)
    task = calls.task if calls.task is not None else load_task(options, calls.on_task_progress)
    task_s = time.time() - began
    store = RunStore(run_dir)
    own_cache = calls.cache is None and options.use_cache
    cache = (EvalCache() if own_cache else calls.cache) if options.use_cache else None
    evaluator = (calls.evaluator_factory or hardware_evaluator)(task, options, run_dir)
    try:
        session, space = _open_session(options, run_dir, resume, task, store, cache, evaluator, calls, began, task_s)
        with session.clock.timed("workers-start"):
            parallel = start_parallel(options, session, evaluator, run_dir, calls.worker_factory)
        if parallel is None:
            # The strategy starts again from its seed; what the store holds is given back, not re-measured.
            replayed = session.replay_stored()
            if replayed:
                log.info("resume: %d stored candidates are replayed to the strategy", replayed)
        else:
            session.restore_streaks()
        ctx = StrategyContext(session, task, options.seed, run_dir / "agent", space, options.horizon, parallel)
        try:
            run_strategy(ctx)
        finally:
            if parallel is not None:
                parallel.close()
        store.set_meta("finished", time.time())
        task.test_sealed = False
        with session.clock.timed("final"):
            score_front_on_test(store, evaluator, bool(task.higher_is_better))
        used, count = store.device_evaluations(), store.count()
        workers = parallel.capacity if parallel is not None else 1
        store.set_meta(TIME_META, list(store.get_meta(TIME_META) or []) + [session.clock.segment(workers)])
    finally:
        evaluator.close()
        store.close()
        if own_cache and cache is not None:
            cache.close()
    return _summary(run_dir, used, count, calls.write_report)


def _open_session(options: SearchOptions, run_dir: Path, resume: Path | None, task: Any, store: RunStore,
                  cache: EvalCache | None, evaluator: Evaluator,
                  calls: RunCalls, began: float, task_s: float) -> tuple[SearchSession, ConfigSpace]:
    """The session and the config space of a run, with the options stored, the baseline measured and, for a
    bounded run, the per-layer bounds set from the baseline's sensitivity (``began``: the run's start, ``task_s``:
    how long the task took to load, both for the time accounting)."""
    stored = store.get_meta("options") or {}
    if resume is None or "metric" not in stored:  # a kill at start-up stores options without them
        meta = options.to_dict() | {
            "metric": task.metric,
            "higher_is_better": bool(task.higher_is_better),
            "task_name": getattr(task, "name", options.task),
            "started": stored.get("started", time.time()),
        }
        store.set_meta("options", meta)
    store.set_meta("identity", dataclasses.asdict(evaluator.identity()))
    session = SearchSession(
        evaluator,
        store,
        cache,
        strategy=options.strategy,
        budget=options.budget,
        constraints=Constraints(options.max_acc_drop, options.flash_kb, options.ram_kb),
        metric=task.metric,
        higher_is_better=bool(task.higher_is_better),
        reference_quality=reference_quality(task),
        # Host-screened proposals are free but not instant (compress + export): bound a streak.
        max_screened_streak=max(10, options.budget),
        reward_mode=options.reward,
        fidelity=options.multi_fidelity,
    )
    session.clock.started = began
    session.clock.add("task-load", task_s)
    if calls.on_outcome is not None:
        on_outcome = calls.on_outcome
        session.on_outcome = lambda o: on_outcome(o, session)
    # Selection (rewards, limits, front, best) sees validation data only; the seal makes any
    # read of the test split before the run ends an error instead of a silent leak.
    task.test_sealed = True
    store.set_meta(REFERENCE_META, session.reference_quality)
    space = ConfigSpace(
        getattr(task, "layer_names", None) or task,
        finetune_steps=options.finetune_steps,
        max_finetune_steps=options.max_finetune_steps,
        distill=options.distill,
        prune_scale=options.prune_scale,
        seed=options.seed,
        qat_steps=options.qat_steps,
        stochastic_rounding=options.stochastic_rounding,
        greedy_batch=options.greedy_batch,
        mixed_precision=options.mixed_precision,
    )
    if calls.on_start is not None:
        calls.on_start(options, run_dir, session)
    with session.clock.timed("baseline"):
        check_baseline_limits(session.ensure_baseline(space.identity()), options)
    if options.bounded:
        assert session.objective is not None
        with session.clock.timed("sensitivity"):
            space.bounds = search_bounds(task, space, session.objective, options.max_acc_drop)
        if space.bounds is not None and options.strategy not in SEQUENCE_STRATEGIES:
            session.judged.append(lambda outcome: observe(space.bounds, outcome))
    return session, space


def _summary(run_dir: Path, used: int, count: int, write_report: Callable[[list[Path]], Path] | None) -> SearchResult:
    """The finished run's ``SearchResult`` (front counted from the stored evaluations), its report written."""
    with RunStore.open_existing(run_dir) as finished:
        hib = bool((finished.get_meta("options", {}) or {}).get("higher_is_better", True))
        front = len(pareto_front(finished.evaluations(), hib))
    report = write_report([run_dir]) if write_report is not None else None
    return SearchResult(run_dir, report, used, count, front)
