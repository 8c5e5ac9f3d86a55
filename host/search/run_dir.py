"""A search's run directory: claimed by one process at a time (``RunLock``), assembled so that a kill at any moment
of start-up leaves either nothing or a directory ``--resume`` accepts.

The run directory holds everything needed to continue after a crash: the options (``meta``), every
evaluation (``evaluations.sqlite``) and the strategy's state (``agent/``). A lock file keeps two
processes from writing the same run; the kernel releases it when a process dies, even by SIGKILL.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from edgeprune.bench.atomic import pid_alive
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.store import RunStore, StoreFullError


class RunDirError(RuntimeError):
    """The run directory cannot be used (in use by another process, or not a search run)."""


class DiskFullError(RunDirError):
    """The disk filled up during a run; what was stored is intact and ``--resume`` continues it."""


class RunLock:
    """``<run>/.lock`` held with ``flock`` for the whole life of a command that writes the run.

    The kernel drops the lock when the process dies, even by SIGKILL; the lock follows the file when its
    directory is renamed, so a run directory assembled under a hidden name is locked before it appears.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self.fd: int | None = None
        #: This process created the run directory (a failure before anything was measured may remove it).
        self.created = False

    def acquire(self) -> RunLock:
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


def holds_run(run_dir: Path) -> bool:
    """A run directory with stored options (an empty store left by a kill at start-up does not count)."""
    if not (run_dir / "evaluations.sqlite").is_file():
        return False
    with RunStore(run_dir) as store:
        return store.get_meta("options") is not None or bool(store.evaluations())


def claim_run_dir(run_dir: Path, options: SearchOptions) -> RunLock:
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


def _claim_existing(run_dir: Path, meta: dict[str, Any]) -> RunLock:
    lock = RunLock(run_dir).acquire()
    try:
        if holds_run(run_dir):
            raise RunDirError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or pick another --out")
        with RunStore(run_dir) as store:
            store.set_meta("options", meta)
    except BaseException:
        lock.release()
        raise
    return lock


def _claim_new(run_dir: Path, meta: dict[str, Any]) -> RunLock:
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.parent.glob(f".{run_dir.name}.starting-*"):
        pid = stale.name.rpartition("-")[2]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = run_dir.parent / f".{run_dir.name}.starting-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    lock = RunLock(tmp)
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


def default_run_dir(options: SearchOptions) -> Path:
    """``runs/<task or model>-<strategy>-<time>``: where a run without ``--out`` goes."""
    name = (options.task if options.model is None else Path(options.model).stem).replace(":", "_").replace("/", "_")
    return Path("runs") / f"{name}-{options.strategy}-{time.strftime('%Y%m%d-%H%M%S')}"
