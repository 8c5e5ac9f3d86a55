"""``run_search``: one search run from options (or a run directory to resume) to ``report.html``.

The run directory holds everything needed to continue after a crash: the options (``meta``), every
evaluation (``evaluations.sqlite``) and the strategy's state (``agent/``). A lock file keeps two
processes from writing the same run; the kernel releases it when a process dies, even by SIGKILL.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import logging
import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.bench.atomic import pid_alive
from edgeprune.bench.targets import TargetSpec, split_specs
from edgeprune.host.search.bounds import observe
from edgeprune.host.search.engines import start_parallel
from edgeprune.host.search.evaluator import HardwareEvaluator
from edgeprune.host.search.final import REFERENCE_META, reference_quality, score_front_on_test
from edgeprune.host.search.front import pareto_front
from edgeprune.host.search.objective import Constraints
from edgeprune.host.search.options import (
    SEQUENCE_STRATEGIES,
    SearchOptions,
    board_link_options,
    load_task,
)
from edgeprune.host.search.pool import check_boards
from edgeprune.host.search.sensitivity import search_bounds
from edgeprune.host.search.session import Outcome, SearchSession
from edgeprune.host.search.space import ConfigSpace
from edgeprune.host.search.store import RUN_DB_NAME, EvalCache, RunStore, StoreError, StoreFullError
from edgeprune.host.search.strategies import get_strategy
from edgeprune.host.search.strategies.common import StrategyContext
from edgeprune.host.search.timing import TIME_META
from edgeprune.host.search.types import FLASH_BYTES, MODEL_BYTES, Evaluator
from edgeprune.host.tasks.cache import file_sha256
from edgeprune.host.tasks.intervals import IntervalError, check_level
from edgeprune.host.tasks.registry import byo_kind

log = logging.getLogger(__name__)

class RunDirError(RuntimeError):
    """The run directory cannot be used (in use by another process, or not a search run)."""


class LimitError(ValueError):
    """A limit that no candidate can meet or that means something else than the user thinks."""


class DiskFullError(RunDirError):
    """The disk filled up during a run; what was stored is intact and ``--resume`` continues it."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be so the same clean-up runs (see ``interrupt_handler``)."""


class SearchInterrupted(Exception):
    """Ctrl-C or SIGTERM stopped a search; its run directory (if it got one) is kept and resumable.

    Parameters
    ----------
    run_dir:
        The run directory, or ``None`` when the search was stopped before it claimed one.
    how:
        ``"Ctrl-C"`` or ``"SIGTERM"``.
    """

    def __init__(self, run_dir: Path | None, how: str) -> None:
        self.run_dir = run_dir
        self.how = how
        if run_dir is None:
            text = f"interrupted ({how}) before the run directory was created; nothing was written"
        else:
            text = (f"interrupted ({how}); every evaluation stored so far is kept: continue with "
                    f"`edgeprune search --resume {run_dir}`")
        super().__init__(text)


def interrupt_handler() -> Callable[[int, Any], None]:
    """A SIGINT/SIGTERM handler: the first signal raises ``KeyboardInterrupt`` (``Terminated`` for SIGTERM)
    where the program is; later ones are ignored so the clean-up it starts (emulators, workers) is not cut."""
    fired: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if fired:
            log.warning("already stopping (closing the emulators and the store); `kill -9 %d` forces it, and the "
                        "run stays resumable", os.getpid())
            return
        fired.append(signum)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    return handler


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


class _RunLock:
    """``<run>/.lock`` held with ``flock`` for the whole life of a command that writes the run.

    The kernel drops the lock when the process dies, even by SIGKILL; the lock follows the file when its
    directory is renamed, so a run directory assembled under a hidden name is locked before it appears.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self.fd: int | None = None
        #: This process created the run directory (a failure before anything was measured may remove it).
        self.created = False

    def acquire(self) -> _RunLock:
        self.fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self.fd)
            self.fd = None
            raise RunDirError(f"{self.path.parent} is in use by another edgeprune process{_holder(self.path)}; "
                              "wait for it to end or pick another --out") from exc
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _holder(lock_path: Path) -> str:
    """`` (pid N)`` of the process that wrote ``lock_path``, when it says."""
    try:
        pid = lock_path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def byo_task_name(model: str) -> str:
    """What a bring-your-own run records as its task, so the stored options never contradict each other."""
    return byo_kind(model)


def _sha256(path: Path) -> str:
    return file_sha256(path)


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))


def prepare_options(options: SearchOptions) -> SearchOptions:
    """The options a new run stores: limits checked, model/data paths absolute with their SHA-256.

    Raises ``LimitError`` for a limit that is negative, zero or not a number: a negative quality
    drop would demand an improvement, and a zero-size memory limit can never be met.
    """
    try:
        check_level(options.interval_level)
    except IntervalError as exc:
        raise LimitError(f"--interval-level: {exc}") from exc
    if not _finite(options.max_acc_drop) or options.max_acc_drop < 0:
        raise LimitError(f"--max-acc-drop {options.max_acc_drop:g}: give the allowed quality loss as a number ≥ 0 "
                         "(2 = 2 pp of accuracy, or 2 % of the baseline's RMSE/return)")
    for flag, value in (("--flash-kb", options.flash_kb), ("--ram-kb", options.ram_kb)):
        if value is not None and (not _finite(value) or value <= 0):
            raise LimitError(f"{flag} {value:g}: give the board's limit in KiB, a number > 0")
    changes: dict[str, Any] = {}
    for key in ("model", "data"):
        value = getattr(options, key)
        if value is None:
            continue
        path = Path(value).expanduser().resolve()
        if not path.is_file():
            raise RunDirError(f"--{key} {value}: no such file")
        changes[key] = str(path)
        changes[f"{key}_sha256"] = _sha256(path)
    if options.model is not None:
        changes["task"] = byo_task_name(options.model)
    return dataclasses.replace(options, **changes)


def check_inputs_unchanged(options: SearchOptions, run_dir: Path) -> None:
    """Refuse to resume when the run's model or data file is gone or no longer what was measured."""
    for key in ("model", "data"):
        value, want = getattr(options, key), getattr(options, f"{key}_sha256")
        if value is None:
            continue
        path = Path(value)
        if not path.is_file():
            raise RunDirError(f"{run_dir} was started with --{key} {value}, which no longer exists; "
                              "put the file back or start a new run")
        if want is not None and _sha256(path) != want:
            raise RunDirError(f"--{key} {value} changed since {run_dir} started (sha256 {want[:12]}… then, "
                              f"{_sha256(path)[:12]}… now); restore it or start a new run with the new file")


def _holds_run(run_dir: Path) -> bool:
    """A run directory with stored options (an empty store left by a kill at start-up does not count)."""
    if not (run_dir / "evaluations.sqlite").is_file():
        return False
    with RunStore(run_dir) as store:
        return store.get_meta("options") is not None or bool(store.evaluations())


def _claim_run_dir(run_dir: Path, options: SearchOptions) -> _RunLock:
    """Make ``run_dir`` this process's run, with the options already stored, and return its held lock.

    Atomic against a second search given the same ``--out``: exactly one gets it, the other is refused in one
    line and writes nothing into it. A new directory is assembled (locked) under a hidden name and renamed into
    place, so a kill at any moment of start-up leaves either no run directory or one ``--resume`` accepts; an
    existing empty (or foreign) directory is locked first, then gets the store.
    """
    meta = options.to_dict() | {"started": time.time()}
    try:
        if run_dir.exists():
            return _claim_existing(run_dir, meta)
        return _claim_new(run_dir, meta)
    except StoreFullError as exc:
        raise DiskFullError(f"--out {run_dir}: the disk is full (SQLite: database or disk is full); free space on "
                            "it and run the command again") from exc
    except (OSError, sqlite3.Error) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        if getattr(exc, "errno", None) == errno.ENOSPC:
            raise DiskFullError(f"--out {run_dir}: the disk is full ({why}); free space on it and run the command "
                                "again") from exc
        raise RunDirError(f"--out {run_dir}: cannot write the run directory there ({why}); give a writable --out") from exc


def _claim_existing(run_dir: Path, meta: dict[str, Any]) -> _RunLock:
    lock = _RunLock(run_dir).acquire()
    try:
        if _holds_run(run_dir):
            raise RunDirError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or pick another --out")
        with RunStore(run_dir) as store:
            store.set_meta("options", meta)
    except BaseException:
        lock.release()
        raise
    return lock


def _claim_new(run_dir: Path, meta: dict[str, Any]) -> _RunLock:
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.parent.glob(f".{run_dir.name}.starting-*"):
        pid = stale.name.rpartition("-")[2]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = run_dir.parent / f".{run_dir.name}.starting-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    lock = _RunLock(tmp)
    try:
        lock.acquire()
        with RunStore(tmp) as store:
            store.set_meta("options", meta)
        try:
            # Replaces nothing but an empty directory: a run directory holds at least its lock file.
            os.rename(tmp, run_dir)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            raise RunDirError(f"--out {run_dir} was taken a moment ago by another edgeprune search"
                              f"{_holder(run_dir / '.lock')}; pick another --out (or --resume {run_dir} once "
                              "that search has stopped)") from None
    except BaseException:
        lock.release()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    lock.path = run_dir / ".lock"
    lock.created = True
    return lock


def check_baseline_limits(baseline: Any, options: SearchOptions) -> None:
    """Refuse a flash/RAM limit below what the firmware needs without any model: no candidate can meet it."""
    flash, model = baseline.figures.get(FLASH_BYTES), baseline.figures.get(MODEL_BYTES)
    if options.flash_kb is None or flash is None or model is None or not flash.detail.startswith(("deploy build", "derived")):
        return
    firmware = flash.value - model.value
    if options.flash_kb * 1024 < firmware:
        raise LimitError(f"--flash-kb {options.flash_kb:g}: the firmware without any model already takes "
                         f"{firmware / 1024:.1f} KiB of flash (the baseline {flash.value / 1024:.1f} KiB); "
                         f"give at least {firmware / 1024:.0f} KiB plus room for a model")


def default_run_dir(options: SearchOptions) -> Path:
    name = (options.task if options.model is None else Path(options.model).stem).replace(":", "_").replace("/", "_")
    return Path("runs") / f"{name}-{options.strategy}-{time.strftime('%Y%m%d-%H%M%S')}"


EvaluatorFactory = Callable[[Any, SearchOptions, Path], Evaluator]

def hardware_evaluator(task: Any, options: SearchOptions, run_dir: Path) -> Evaluator:
    return HardwareEvaluator(
        task,
        split_specs(options.device)[0],  # the baseline's device; with several boards, the first
        repeats=options.repeats,
        host_energy=options.host_energy,
        pidfile=run_dir / ".qemu.pid",
        deploy_dir=run_dir / ".deploy-build",
        **(board_link_options(options.device) | options.evaluator_options),
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
    worker_factory: Any = None,
    write_report: Callable[[list[Path]], Path] | None = None,
) -> SearchResult:
    """Run (or resume) a search; returns what it produced.

    ``resume``: a run directory from an earlier, interrupted call; its stored options are used and
    the strategy continues from its last saved state. ``on_begin(options, run_dir, resumed)`` is
    called before anything slow (task loading may train the baseline; ``on_task_progress`` follows
    it), ``on_start``/``on_outcome`` drive a progress display. ``task``/``evaluator_factory``/``cache`` replace the defaults (``get_task``,
    ``HardwareEvaluator``, the global cache under ``cache_dir()``). ``worker_factory`` (picklable
    ``(slot, device) -> Evaluator``) replaces ``pool.HardwareWorkers`` for ``workers`` > 1 or Ray.
    ``write_report(run_dirs) -> Path`` writes the run's report at the end (the CLI passes
    ``edgeprune.host.report.generate_report``; the report layer sits above the search, so the search only calls it).
    """
    if resume is not None:
        run_dir = Path(resume)
        # The whole store is checked here, before the task loads or an emulator boots.
        with RunStore.open_existing(run_dir) as probe:
            stored = probe.get_meta("options")
        if stored is None:
            raise RunDirError(f"{run_dir} has no stored options; it was not written by `edgeprune search`")
        options = SearchOptions.from_dict(stored)
        check_inputs_unchanged(options, run_dir)
    else:
        options = prepare_options(options or SearchOptions())
        run_dir = Path(options.out) if options.out else default_run_dir(options)
        if _holds_run(run_dir):
            raise RunDirError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or pick another --out")
    run_strategy = get_strategy(options.strategy)
    if evaluator_factory is None:
            # A typo or an unplugged board fails now, not after the baseline is trained.
        devices = split_specs(options.device)
        for device in devices:
            TargetSpec.parse(device).check()
        if len(devices) > 1 and options.ray_address is None and not TargetSpec.parse(devices[0]).is_qemu:
            check_boards(devices)
    try:
        lock = _claim_run_dir(run_dir, options) if resume is None else _RunLock(run_dir).acquire()
    except KeyboardInterrupt as exc:
        # Stopped while claiming: a run directory that got its store is resumable, otherwise nothing is there.
        claimed = run_dir if (run_dir / "evaluations.sqlite").is_file() else None
        raise SearchInterrupted(claimed, "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C") from None
    try:
        return _run_locked(options, run_dir, resume, run_strategy, on_outcome, on_start, on_begin,
                           on_task_progress, task, evaluator_factory, cache, worker_factory, write_report)
    except KeyboardInterrupt as exc:
        # Once claimed, the run directory is the user's: an interrupt never removes it.
        raise SearchInterrupted(run_dir, "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C") from None
    except (StoreFullError, OSError) as exc:
        full = isinstance(exc, StoreFullError) or getattr(exc, "errno", None) == errno.ENOSPC
        if not full:
            _discard_if_empty(lock, run_dir, exc)
            raise
        detail = "SQLite: database or disk is full" if isinstance(exc, StoreFullError) else \
            f"{exc.strerror}: {exc.filename}" if getattr(exc, "filename", None) else str(exc)
        raise DiskFullError(f"the disk holding {run_dir} is full ({detail}); free space on it, then continue with "
                            f"`edgeprune search --resume {run_dir}` (every evaluation stored so far is kept)") from exc
    except BaseException as exc:
        _discard_if_empty(lock, run_dir, exc)
        raise
    finally:
        lock.release()


def _discard_if_empty(lock: _RunLock, run_dir: Path, exc: BaseException) -> None:
    """A new run that failed before measuring anything (bad task, no device) or whose limits no candidate can
    meet leaves no directory behind; a damaged store is never removed (it may be rescued)."""
    if not lock.created or (isinstance(exc, StoreError) and exc.path in (None, run_dir / RUN_DB_NAME)):
        return
    try:
        empty = isinstance(exc, LimitError) or not _has_evaluations(run_dir)
    except StoreError:
        return
    if empty:
        shutil.rmtree(run_dir, ignore_errors=True)


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
    worker_factory: Any = None,
    write_report: Callable[[list[Path]], Path] | None = None,
) -> SearchResult:
    # The run directory's lock is held by the caller (run_search).
    began = time.time()
    if on_begin is not None:
        on_begin(options, run_dir, resume is not None)
    task = task if task is not None else load_task(options, on_task_progress)
    task_s = time.time() - began
    store = RunStore(run_dir)
    own_cache = cache is None and options.use_cache
    cache = (EvalCache() if own_cache else cache) if options.use_cache else None
    evaluator = (evaluator_factory or hardware_evaluator)(task, options, run_dir)
    try:
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
        if on_outcome is not None:
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
        )
        if on_start is not None:
            on_start(options, run_dir, session)
        with session.clock.timed("baseline"):
            check_baseline_limits(session.ensure_baseline(space.identity()), options)
        if options.bounded:
            assert session.objective is not None
            with session.clock.timed("sensitivity"):
                space.bounds = search_bounds(task, space, session.objective, options.max_acc_drop)
            if space.bounds is not None and options.strategy not in SEQUENCE_STRATEGIES:
                session.judged.append(lambda outcome: observe(space.bounds, outcome))
        with session.clock.timed("workers-start"):
            parallel = start_parallel(options, session, evaluator, run_dir, worker_factory)
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
    with RunStore.open_existing(run_dir) as finished:
        hib = bool((finished.get_meta("options", {}) or {}).get("higher_is_better", True))
        front = len(pareto_front(finished.evaluations(), hib))
    report = write_report([run_dir]) if write_report is not None else None
    return SearchResult(run_dir, report, used, count, front)
