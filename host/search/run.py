"""``run_search``: one search run from options (or a run directory to resume) to ``report.html``.

The run directory holds everything needed to continue after a crash: the options (``meta``), every
evaluation (``evaluations.sqlite``) and the strategy's state (``agent/``). A lock file keeps two
processes from writing the same run; the kernel releases it when a process dies, even by SIGKILL.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.host.search.objective import Constraints
from edgeprune.host.search.session import Outcome, SearchSession
from edgeprune.host.search.store import EvalCache, RunStore
from edgeprune.host.search.types import Evaluator

log = logging.getLogger(__name__)

# Sized so the default search (weather GRU, QEMU Cortex-M4, PPO) ends within 10 minutes on 2 cores:
# measured 8 evaluations in 1 min 31 s (`edgeprune search --budget 8`, cached baseline, this 2-core
# machine); 20 leaves room for a loaded machine while giving PPO more than a handful of episodes.
DEFAULT_BUDGET = 20
DEFAULT_FINETUNE_STEPS = 20


class RunDirError(RuntimeError):
    """The run directory cannot be used (in use by another process, or not a search run)."""


@dataclass
class SearchOptions:
    """What to search, where to measure, and the limits.

    Parameters
    ----------
    device:
        ``qemu[:m0|m3|m4|m7|m33]``, a serial port (``/dev/ttyACM0``, ``/dev/pts/N``) or ``socket://host:port``.
    task:
        Task name (``weather-gru``, ``cartpole-dqn``) or spec understood by ``get_task``.
    model, env_id, data:
        Bring-your-own model file with its Gymnasium env id or data file (instead of ``task``).
    strategy:
        ``ppo``, ``dqn``, ``tpe``, ``cmaes``, ``random`` or ``uniform``.
    budget:
        Device evaluations (cache hits are free).
    max_acc_drop:
        Allowed quality drop (percentage points for accuracy; percent of baseline for return/RMSE).
    flash_kb, ram_kb:
        Hard limits on the deploy build's flash and RAM.
    seed:
        Seeds the strategy and the configs.
    out:
        Run directory (default ``runs/<task>-<strategy>-<time>``).
    finetune_steps:
        Fine-tuning steps of configs built from RL actions and retain rates.
    max_finetune_steps:
        Upper bound of the fine-tuning coordinate for TPE / CMA-ES / random.
    horizon:
        Candidates per RL episode.
    repeats:
        Timed inferences per candidate on the device.
    host_energy:
        Also measure host energy with CodeCarbon (source ``host``).
    use_cache:
        Consult and fill the global evaluation cache.
    deploy_best:
        Deploy-build the best candidate for the report when the evaluator did not already.
    evaluator_options:
        Extra keyword arguments for ``HardwareEvaluator`` (e.g. ``agreement_n``).
    """

    device: str = "qemu:m4"
    task: str = "weather-gru"
    model: str | None = None
    env_id: str | None = None
    data: str | None = None
    strategy: str = "ppo"
    budget: int = DEFAULT_BUDGET
    max_acc_drop: float = 2.0
    flash_kb: float | None = None
    ram_kb: float | None = None
    seed: int = 0
    out: str | None = None
    finetune_steps: int = DEFAULT_FINETUNE_STEPS
    max_finetune_steps: int = 60
    horizon: int = 4
    repeats: int = 3
    host_energy: bool = True
    use_cache: bool = True
    deploy_best: bool = True
    evaluator_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class SearchResult:
    """What a finished (or budget-exhausted) run produced.

    Parameters
    ----------
    run_dir:
        The run directory.
    report_html:
        Path of ``report.html``.
    device_evaluations:
        Budget units used in total (over all resumes).
    evaluations:
        Candidates recorded (including cache hits and re-proposals).
    front_size:
        Points on the Pareto front.
    """

    run_dir: Path
    report_html: Path
    device_evaluations: int
    evaluations: int
    front_size: int


class _RunLock:
    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> _RunLock:
        self.fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self.fd)
            raise RunDirError(f"{self.path.parent} is in use by another edgeprune process; wait for it or pick another --out") from exc
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)


def default_run_dir(options: SearchOptions) -> Path:
    name = (options.task if options.model is None else Path(options.model).stem).replace(":", "_").replace("/", "_")
    return Path("runs") / f"{name}-{options.strategy}-{time.strftime('%Y%m%d-%H%M%S')}"


def load_task(options: SearchOptions, progress: Callable[[str, float], None] | None = None) -> Any:
    """The task named by the options (trains and caches the baseline on first use)."""
    from edgeprune.host.tasks import get_task

    if options.model is not None:
        return get_task(None, model=options.model, data=options.data, env=options.env_id, progress=progress)
    return get_task(options.task, progress=progress)


EvaluatorFactory = Callable[[Any, SearchOptions, Path], Evaluator]


def hardware_evaluator(task: Any, options: SearchOptions, run_dir: Path) -> Evaluator:
    from edgeprune.host.search.evaluator import HardwareEvaluator

    return HardwareEvaluator(
        task,
        options.device,
        repeats=options.repeats,
        host_energy=options.host_energy,
        pidfile=run_dir / ".qemu.pid",
        deploy_dir=run_dir / ".deploy-build",
        **options.evaluator_options,
    )


def run_search(
    options: SearchOptions | None = None,
    *,
    resume: Path | None = None,
    on_outcome: Callable[[Outcome, SearchSession], None] | None = None,
    on_start: Callable[[SearchOptions, Path, SearchSession], None] | None = None,
    on_begin: Callable[[SearchOptions, Path, bool], None] | None = None,
    on_task_progress: Callable[[str, float], None] | None = None,
    task: Any = None,
    evaluator_factory: EvaluatorFactory | None = None,
    cache: EvalCache | None = None,
) -> SearchResult:
    """Run (or resume) a search and write its report; returns where ``report.html`` is.

    ``resume``: a run directory from an earlier, interrupted call; its stored options are used and
    the strategy continues from its last saved state. ``on_begin(options, run_dir, resumed)`` is
    called before anything slow (task loading may train the baseline; ``on_task_progress`` follows
    it), ``on_start``/``on_outcome`` drive a progress display. ``task``/``evaluator_factory``/``cache`` replace the defaults (``get_task``,
    ``HardwareEvaluator``, the global cache under ``cache_dir()``).
    """
    from edgeprune.host.search.strategies import get_strategy

    if resume is not None:
        run_dir = Path(resume)
        with RunStore.open_existing(run_dir) as probe:
            stored = probe.get_meta("options")
        if stored is None:
            raise RunDirError(f"{run_dir} has no stored options; it was not written by `edgeprune search`")
        options = SearchOptions.from_dict(stored)
    else:
        options = options or SearchOptions()
        run_dir = Path(options.out) if options.out else default_run_dir(options)
        if (run_dir / "evaluations.sqlite").exists():
            raise RunDirError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or pick another --out")
    run_strategy = get_strategy(options.strategy)
    if evaluator_factory is None:
        from edgeprune.host.search.evaluator import TargetSpec

        TargetSpec.parse(options.device)  # a typo fails now, not after the baseline is trained
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _run_locked(options, run_dir, resume, run_strategy, on_outcome, on_start, on_begin,
                           on_task_progress, task, evaluator_factory, cache)
    except BaseException:
        # A run that failed before measuring anything (bad task, no device) leaves no directory behind.
        if created and resume is None and not _has_evaluations(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _has_evaluations(run_dir: Path) -> bool:
    if not (run_dir / "evaluations.sqlite").is_file():
        return False
    with RunStore(run_dir) as store:
        return bool(store.evaluations())


def _run_locked(
    options: SearchOptions,
    run_dir: Path,
    resume: Path | None,
    run_strategy: Callable[[Any], None],
    on_outcome: Callable[[Outcome, SearchSession], None] | None,
    on_start: Callable[[SearchOptions, Path, SearchSession], None] | None,
    on_begin: Callable[[SearchOptions, Path, bool], None] | None,
    on_task_progress: Callable[[str, float], None] | None,
    task: Any,
    evaluator_factory: EvaluatorFactory | None,
    cache: EvalCache | None,
) -> SearchResult:
    from edgeprune.host.report import generate_report
    from edgeprune.host.search.space import ConfigSpace
    from edgeprune.host.search.strategies.common import StrategyContext

    with _RunLock(run_dir):
        if on_begin is not None:
            on_begin(options, run_dir, resume is not None)
        task = task if task is not None else load_task(options, on_task_progress)
        store = RunStore(run_dir)
        own_cache = cache is None and options.use_cache
        cache = (EvalCache() if own_cache else cache) if options.use_cache else None
        evaluator = (evaluator_factory or hardware_evaluator)(task, options, run_dir)
        try:
            if resume is None:
                meta = options.to_dict() | {
                    "metric": task.metric,
                    "higher_is_better": bool(task.higher_is_better),
                    "task_name": getattr(task, "name", options.task),
                    "started": time.time(),
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
            )
            if on_outcome is not None:
                session.on_outcome = lambda o: on_outcome(o, session)
            space = ConfigSpace(
                getattr(task, "layer_names", None) or task,
                finetune_steps=options.finetune_steps,
                max_finetune_steps=options.max_finetune_steps,
                seed=options.seed,
            )
            if on_start is not None:
                on_start(options, run_dir, session)
            session.ensure_baseline(space.identity())
            ctx = StrategyContext(session, task, options.seed, run_dir / "agent", space, options.horizon)
            run_strategy(ctx)
            store.set_meta("finished", time.time())
            used, count = store.device_evaluations(), store.count()
        finally:
            evaluator.close()
            store.close()
            if own_cache and cache is not None:
                cache.close()
        report = generate_report([run_dir])
    from edgeprune.host.report.load import load_run

    front = len(load_run(run_dir).front)
    return SearchResult(run_dir, report, used, count, front)
