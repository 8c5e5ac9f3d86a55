"""``run_search``: one search run from options (or a run directory to resume) to its result.

Claims the run directory (``run_dir``), checks the options and the device before anything slow (``run_checks``),
runs the loop (``run_loop``) and turns what stops it into one typed error: an interrupt keeps the run resumable
(``interrupts``), a full disk says how to continue, a new run that failed before measuring anything leaves no
directory behind.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeprune.bench.targets import TargetSpec, split_specs
from edgeprune.host.search.interrupts import SearchInterrupted, Terminated
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.pool import check_boards
from edgeprune.host.search.run_checks import LimitError, check_inputs_unchanged, prepare_options
from edgeprune.host.search.run_dir import (
    DiskFullError,
    RunDirError,
    RunLock,
    claim_run_dir,
    default_run_dir,
    holds_run,
)
from edgeprune.host.search.run_loop import EvaluatorFactory, RunCalls, SearchResult, run_locked
from edgeprune.host.search.session import Outcome, SearchSession
from edgeprune.host.search.store import RUN_DB_NAME, EvalCache, RunStore, StoreError, StoreFullError
from edgeprune.host.search.strategies import get_strategy


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
    Returns the ``run_loop.SearchResult``.
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
        if holds_run(run_dir):
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
        lock = claim_run_dir(run_dir, options) if resume is None else RunLock(run_dir).acquire()
    except KeyboardInterrupt as exc:
        # Stopped while claiming: a run directory that got its store is resumable, otherwise nothing is there.
        claimed = run_dir if (run_dir / "evaluations.sqlite").is_file() else None
        raise SearchInterrupted(claimed, "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C") from None
    try:
        calls = RunCalls(on_outcome, on_start, on_begin, on_task_progress, task, evaluator_factory, cache,
                         worker_factory, write_report)
        return run_locked(options, run_dir, resume, run_strategy, calls)
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


def _discard_if_empty(lock: RunLock, run_dir: Path, exc: BaseException) -> None:
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
