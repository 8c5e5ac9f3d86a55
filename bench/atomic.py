"""Atomic file writes: readers see the old file or the new one, never half of either.

The data goes to a temporary file in the same directory (same filesystem, so the rename is atomic),
is flushed to disk, then renamed over the target. A crash or ``kill -9`` mid-write leaves at most a
stray ``.<name>.<pid>.tmp`` beside it, never a truncated target. Every module that writes a file
others read back (manifests, reports, run state) uses these two functions.
"""

from __future__ import annotations

import os
from pathlib import Path


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
