"""Per-layer sensitivity of a baseline, measured once and cached: where a search's bounds start (``bounds.py``).

Each destructive knob of each layer is applied alone at intensities ``LEVELS`` (no fine-tuning) and the float
model is scored on the validation split. A knob's first cap is the highest level whose drop stays within
``SENSITIVITY_TOL`` limits of the run's (at least ``CAP_FLOOR``): fine-tuning recovers a good part of what a
cut costs before it, so this is where a candidate can still recover, not where it passes untouched.

The qualities (not the caps, which depend on the run's limit) are cached per baseline and layer names under
``cache_dir()/sensitivity``, measured with ``SENSITIVITY_SEED`` whatever the run's seed (a cut without
fine-tuning by weight norm has no randomness worth a second measurement: once per baseline). The weather GRU's
8 knobs × 4 levels took 156 and 262 s on the shared 2-core machine at load 13-14 (BENCHMARKS.md, issue 28).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgeprune.bench.atomic import atomic_write_text
from edgeprune.bench.paths import cache_dir
from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.compress.config import readout_name
from edgeprune.host.search.bounds import CAP_FLOOR, KINDS, LayerBounds, setting
from edgeprune.host.tasks.cache import digest

log = logging.getLogger(__name__)

LEVELS = (0.25, 0.5, 0.75, 1.0)
#: A knob's first cap: the highest level whose drop without fine-tuning is within this many limits.
SENSITIVITY_TOL = 10.0
#: ... and never below this many units of the drop (a 0.1 pp limit still starts somewhere).
SENSITIVITY_TOL_FLOOR = 5.0
_VERSION = "sensitivity/1"
#: The configs' seed for every run (the run's own seed made seed 1 measure again what seed 0 had cached).
SENSITIVITY_SEED = 0


def _knobs(names: tuple[str, ...]) -> list[tuple[str, str]]:
    ro = readout_name(names)
    return [(n, k) for n in names for k in KINDS if not (k == "prune" and n == ro)]


def _config(space: Any, layer: str, kind: str, level: float) -> Any:
    base = space.cls.identity(space.names, seed=SENSITIVITY_SEED)
    value = setting(kind, level)
    field = {"prune": "prune", "sparsity": "sparsity", "rank": "rank_frac"}[kind]
    layers = tuple(replace(lc, **{field: value}) if lc.name == layer else lc for lc in base.layers)
    return replace(base, layers=layers, finetune_steps=0, distill=False)


def measure(task: Any, space: Any) -> dict[str, list[float]]:
    """``"<layer>.<kind>"`` → float validation quality at each of ``LEVELS`` (NaN where the knob cannot apply)."""
    from edgeprune.host.compress.compressor import compress
    out: dict[str, list[float]] = {}
    for layer, kind in _knobs(space.names):
        qualities = []
        for level in LEVELS:
            try:
                model = compress(task, _config(space, layer, kind, level)).model
            except ConfigError:
                qualities.append(math.nan)
                continue
            qualities.append(float(task.evaluate_model(model, split="val").value))
        out[f"{layer}.{kind}"] = qualities
    return out


def _cache_path(task: Any, space: Any) -> Path:
    key = digest({"task": str(task.content_hash()), "names": list(space.names), "seed": SENSITIVITY_SEED,
                  "levels": list(LEVELS), "version": _VERSION})
    return cache_dir() / "sensitivity" / f"{key[:24]}.json"


def cached_measure(task: Any, space: Any) -> dict[str, list[float]]:
    """``measure`` from the cache, measured (and cached) on first use."""
    path = _cache_path(task, space)
    if path.is_file():
        try:
            return {k: [float(v) for v in vs] for k, vs in json.loads(path.read_text()).items()}
        except (ValueError, AttributeError, TypeError):
            log.warning("sensitivity cache %s is unreadable: measuring again", path)
    qualities = measure(task, space)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(qualities))
    return qualities


def initial_bounds(qualities: dict[str, list[float]], drop: Callable[[float], float], max_acc_drop: float) -> LayerBounds:
    """The caps a search starts from: per knob, the highest level within tolerance (``CAP_FLOOR`` at least)."""
    tol = max(SENSITIVITY_TOL * max_acc_drop, SENSITIVITY_TOL_FLOOR)
    caps: dict[str, float] = {}
    for key, qs in qualities.items():
        cap = CAP_FLOOR
        for level, q in zip(LEVELS, qs, strict=False):
            if math.isfinite(q) and drop(q) <= tol:
                cap = max(cap, level)
            else:
                break
        caps[key] = cap
    return LayerBounds(caps)


def search_bounds(task: Any, space: Any, objective: Any, max_acc_drop: float) -> LayerBounds | None:
    """The bounds a search on ``task`` starts with, or ``None`` where sensitivity cannot be measured (policies,
    whose validation is whole episodes; tasks without a validation split)."""
    if getattr(task, "kind", None) == "policy" or not callable(getattr(task, "evaluate_model", None)):
        return None
    bounds = initial_bounds(cached_measure(task, space), objective.drop, max_acc_drop)
    log.info("per-layer bounds from the baseline's sensitivity: %s", bounds.to_dict())
    return bounds
