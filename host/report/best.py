"""Exporting the best candidate of a run into ``<run>/best/``: the .tflite, C array, manifest and
the deploy build's flash/RAM as measured when the candidate was evaluated."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from edgeprune.host.search.store import StoredEvaluation
from edgeprune.host.search.types import FLASH_BYTES, RAM_BYTES

log = logging.getLogger(__name__)

BEST_FILES = ("model.tflite", "model_data.c", "model_data.h", "manifest.json")


def export_best(run_dir: Path, best: StoredEvaluation | None) -> dict[str, Any] | None:
    """Copy the best candidate's artifacts to ``<run>/best/`` (atomically) and describe them.

    Returns ``None`` when the run has no feasible candidate. When the artifacts are gone (the
    cache was cleared), the description says so instead of writing a partial folder.
    """
    if best is None:
        return None
    info: dict[str, Any] = {
        "seq": best.seq,
        "digest": best.digest,
        "strategy": best.strategy,
        "reward": best.reward,
        "config": json.loads(best.result.config_json),
    }
    for name in (FLASH_BYTES, RAM_BYTES):
        fig = best.result.figures.get(name)
        if fig is not None:
            info[name] = f"{fig.value:.0f} {fig.unit} [{fig.source}] {fig.detail}".strip()
    src = Path(best.result.artifacts.get("dir", ""))
    missing = [f for f in BEST_FILES if not (src / f).is_file()] if src.parts else list(BEST_FILES)
    if missing:
        info["files"] = f"not exported: {', '.join(missing)} missing under {src or '(no artifact dir)'}"
        return info
    dest = Path(run_dir) / "best"
    tmp = Path(run_dir) / "best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for f in BEST_FILES:
        shutil.copy2(src / f, tmp / f)
    for extra in ("deploy.json", "firmware.elf", "firmware.bin"):
        if (src / extra).is_file():
            shutil.copy2(src / extra, tmp / extra)
    (tmp / "config.json").write_text(best.result.config_json, encoding="utf-8")
    (tmp / "evaluation.json").write_text(json.dumps(best.result.to_dict(), indent=2), encoding="utf-8")
    if dest.exists():
        old = Path(run_dir) / "best.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)
    info["files"] = ", ".join(sorted(p.name for p in dest.iterdir()))
    info["dir"] = str(dest)
    return info
