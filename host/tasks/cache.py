"""Content-addressed baseline cache: ``<cache_dir>/baselines/<key>/`` written atomically.

A baseline directory appears only complete: it is assembled in a temporary sibling and renamed into
place, so an interrupted training run leaves no half-written entry that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeprune.bench.paths import cache_dir

log = logging.getLogger(__name__)

COMPLETE_MARKER = "metrics.json"


def digest(payload: dict[str, Any]) -> str:
    """Stable short hash of a JSON-able dict (sorted keys, so field order does not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: Source folders (relative to the package root) whose code shapes a baseline or a measured candidate.
SHAPING_SOURCES = ("host/tasks", "host/models", "host/compress", "export")


def source_fingerprint(folders: tuple[str, ...] = SHAPING_SOURCES) -> str:
    """Hash of the Python sources under ``folders``: part of every cache key, so results computed by
    older code (a changed label file reader, pruning rule or exporter) are never reused.

    ``folders`` may also name single files. Only ``*.py`` files count (docs and data have their own hashes), in a stable order.
    """
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for folder in folders:
        top = root / folder
        for path in [top] if top.is_file() else sorted(top.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def baselines_root(root: Path | None = None) -> Path:
    base = Path(root) if root is not None else cache_dir()
    path = base / "baselines"
    path.mkdir(parents=True, exist_ok=True)
    return path


def lookup(key: str, root: Path | None = None) -> Path | None:
    """The cached baseline directory for ``key``, or ``None`` if absent or incomplete."""
    path = baselines_root(root) / key
    if (path / COMPLETE_MARKER).is_file():
        return path
    return None


def store(key: str, write: Callable[[Path], None], root: Path | None = None) -> Path:
    """Run ``write(tmp_dir)`` and publish ``tmp_dir`` as the entry for ``key``.

    ``write`` must create ``metrics.json`` last-or-anywhere; its presence marks the entry complete.
    If another process published the same key meanwhile, its entry is kept (same key, same content).
    """
    parent = baselines_root(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=parent))
    try:
        write(tmp)
        if not (tmp / COMPLETE_MARKER).is_file():
            raise RuntimeError(f"baseline writer for {key} produced no {COMPLETE_MARKER}")
        final = parent / key
        try:
            os.rename(tmp, final)
        except OSError:
            if (final / COMPLETE_MARKER).is_file():
                log.info("baseline %s was published concurrently; keeping the existing one", key)
                shutil.rmtree(tmp, ignore_errors=True)
                return final
            # An incomplete leftover (e.g. copied by hand) must not block publishing.
            shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON via a temporary file and rename, so readers never see a partial file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_json_default))
    os.replace(tmp, path)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
