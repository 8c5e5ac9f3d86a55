"""Atomic file writes: readers see the old file or the new one, never half of either.

The data goes to a temporary file in the same directory (same filesystem, so the rename is atomic),
is flushed to disk, then renamed over the target. A crash or ``kill -9`` mid-write leaves at most a
stray ``.<name>.<pid>.tmp`` beside it, never a truncated target. Every module that writes a file
others read back (manifests, reports, run state) uses these two functions.

Folders that several processes write at once get a lock (``folder_lock``); temporaries a killed writer left
behind are swept by the next writer (``sweep_stale_tmp``: their names carry the writer's pid).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``.

    :param path: the file to (re)place; its directory must exist
    :param data: the whole new content
    :param fsync: flush the data to disk before the rename (a power cut then keeps the old or new file)
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8", fsync: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode(encoding), fsync=fsync)


class LockTimeout(TimeoutError):
    """Another process held a folder's lock longer than the caller would wait (the message names its pid)."""


#: How often a process waiting for a folder's lock checks it again, s.
LOCK_POLL_S = 0.2


@contextmanager
def folder_lock(folder: str | Path, timeout_s: float) -> Iterator[None]:
    """Hold the lock of ``folder`` (``flock`` on ``.<name>.lock`` beside it), waiting up to ``timeout_s`` for
    another process that holds it; the kernel releases it when its holder dies, even by SIGKILL.

    For folders that several commands build into or replace at the same time (a PlatformIO output folder, a
    deploy library in the artifacts cache): the second one waits, then finds the work done.

    :param folder: the folder to guard (need not exist yet; its parent is created)
    :param timeout_s: longest wait, s; raises :class:`LockTimeout` after it
    """
    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    fd = os.open(str(lock_path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _lock_holder(lock_path)
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"another process (pid {holder}) held {target} for over {timeout_s:g} s; "
                                      "wait for it to finish or stop it") from None
                if not waited:
                    log.info("waiting for another process (pid %s) using %s", holder, target)
                    waited = True
                time.sleep(LOCK_POLL_S)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)  # releases the flock


def _lock_holder(lock_path: Path) -> str:
    try:
        return lock_path.read_text().strip() or "?"
    except OSError:
        return "?"


def sweep_stale_tmp(parent: str | Path, prefix: str) -> int:
    """Remove ``<parent>/<prefix><pid>-*`` folders whose process is gone (left by a kill mid-write); returns how
    many. Names without a pid (written before pids were part of them) go once they are a day old.

    :param parent: the folder holding the temporaries
    :param prefix: their name up to the pid, e.g. ``.model.tmp-``
    """
    removed = 0
    try:
        entries = list(Path(parent).glob(f"{glob_escape(prefix)}*"))
    except OSError:
        return 0
    for path in entries:
        pid_text = path.name[len(prefix):].split("-", 1)[0]
        try:
            if pid_text.isdigit():
                if pid_alive(int(pid_text)):
                    continue
            elif time.time() - path.stat().st_mtime < STALE_UNOWNED_S:
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


#: Age after which a temporary whose name carries no pid is taken for abandoned, s.
STALE_UNOWNED_S = 24 * 3600.0


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters taken literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (one owned by another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
