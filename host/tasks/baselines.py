"""Get-or-train for baselines: one code path for every task, so each cached entry has the same layout.

Entry layout (``<cache_dir>/baselines/<content hash>/``): ``model.pt`` (canonical model + config, see
``model_io``), ``metrics.json`` (params, MACs, FLOPs, val/test quality, training info, key inputs) and
any task-specific extras (e.g. ``policy.zip`` for a DQN).
"""

from __future__ import annotations

import logging
import platform
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeprune.host import __version__
from edgeprune.host.tasks import cache, model_io
from edgeprune.host.tasks.base import Task

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

TRAIN_CALLS: Counter[str] = Counter()
"""How many times each cache key was trained in this process (lets tests prove a cache hit)."""

TrainFn = Callable[[], tuple["nn.Module", dict[str, Any], dict[str, bytes]]]


def ensure_baseline(
    task: Task, key_inputs: dict[str, Any], train: TrainFn, root: Path | None = None
) -> nn.Module:
    """Load the baseline for ``key_inputs`` from the cache, or train, evaluate and publish it.

    Sets ``task.cache_path``. ``train()`` returns ``(model, info, extra_files)``.
    """
    key = cache.digest(key_inputs)
    hit = cache.lookup(key, root)
    if hit is not None:
        log.info("%s: using cached baseline %s", task.name, hit)
        task.cache_path = hit
        return model_io.load_model(hit / "model.pt")

    log.info("%s: no cached baseline (key %s); training it", task.name, key)
    TRAIN_CALLS[key] += 1
    t0 = time.monotonic()
    model, info, extra = train()
    model.eval()
    info.setdefault("train_seconds", round(time.monotonic() - t0, 2))
    quality = {split: task.evaluate_model(model, split).to_dict() for split in ("val", "test")}
    macs = model_io.count_macs(model)
    metrics = {
        "task": task.name,
        "key": key,
        "key_inputs": key_inputs,
        "metric": task.metric,
        "higher_is_better": task.higher_is_better,
        "params": model_io.count_params(model),
        "macs": macs,
        "flops": 2 * macs,
        "quality": quality,
        "training": info,
        "model": model_io.model_config(model),
        "edgeprune_version": __version__,
        "python": platform.python_version(),
        "created_unix": int(time.time()),
    }

    def write(tmp: Path) -> None:
        model_io.save_model(model, tmp / "model.pt")
        for name, blob in extra.items():
            (tmp / name).write_bytes(blob)
        cache.write_json(tmp / cache.COMPLETE_MARKER, metrics)

    task.cache_path = cache.store(key, write, root)
    log.info("%s: baseline cached at %s", task.name, task.cache_path)
    return model
