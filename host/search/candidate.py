"""A candidate's host half before its export: compress the baseline by its config (+ fine-tune, checked at a rung
when the search asks), timed per stage, with the compressed model's proxy figures recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.search.ancestors import Ancestors, warm_startable
from edgeprune.host.search.result_figures import proxy_figures
from edgeprune.host.search.types import QUALITY, EvalResult, FigureRecord


@dataclass
class Prepared:
    """A candidate after the host half of its evaluation (``HardwareEvaluator.prepare``).

    Parameters
    ----------
    config:
        The ``CompressionConfig``.
    result:
        The ``EvalResult`` being filled (``error`` set when the host half failed).
    tflite, manifest, exported, out_dir:
        The verified export and where it lives.
    quality:
        The int8 model's validation quality from TFLM (a ``Quality``).
    stopped:
        A ``fidelity.RungStop`` when the candidate was stopped part-way through fine-tuning (nothing exported).
    """

    config: Any
    result: EvalResult
    tflite: bytes = b""
    manifest: dict[str, Any] = field(default_factory=dict)
    exported: Any = None
    out_dir: Path | None = None
    quality: Any = None
    stopped: Any = None


def compress_candidate(task: Any, config: Any, result: EvalResult, hook: dict[str, Any],
                       ancestors: Ancestors | None = None) -> Any:
    """``config`` applied to ``task``'s baseline (``host.compress.compressor.compress``), or ``None`` with
    ``result.error`` set when the config does not fit the model.

    Parameters
    ----------
    task, config:
        The ``Task`` and the ``CompressionConfig``.
    result:
        The candidate's ``EvalResult``: ``compress`` and ``finetune`` times (the rung's own export and TFLM
        time, already under ``rung-*``, taken out of fine-tuning) and the proxy figures go into it.
    hook:
        Further ``compress`` arguments (a rung check: ``fidelity.rung_hook``).
    ancestors:
        The task's kept fine-tuned candidates (``None``: no warm starts). A fine-tuned config starts from the
        closest one it further compresses (``result.artifacts["warm_start_from"]`` names it) and, once fully
        fine-tuned, is kept for later candidates.
    """
    clock = time.perf_counter()
    from edgeprune.host.compress.compressor import compress  # loads torch

    warm = ancestors is not None and warm_startable(task, config)
    ancestor = ancestors.closest(config) if warm and ancestors is not None else None
    start = {} if ancestor is None else {"start": (ancestor.model, ancestor.config)}
    try:
        compressed = compress(task, config, **hook, **start)
    except ConfigError as exc:
        result.error = f"ConfigError: {exc}"
        return None
    if ancestor is not None:
        result.artifacts["warm_start_from"] = ancestor.digest
    if warm and ancestors is not None and (compressed.report.get("finetune") or {}).get("stopped_at") is None:
        ancestors.keep(config, compressed.model)
    spent = time.perf_counter() - clock
    tuned = float(compressed.report.get("finetune_seconds") or 0.0)
    rungs = result.timings.get("rung-export", 0.0) + result.timings.get("rung-tflm", 0.0)
    result.timings["finetune"] = round(max(0.0, tuned - rungs), 3)
    result.timings["compress"] = round(max(0.0, spent - tuned), 3)
    proxy_figures(result, compressed)
    return compressed


def record_stop(result: EvalResult, metric: str, stop: Any) -> None:
    """Record the quality at which a ``fidelity.RungStop`` stopped the candidate (TFLM, not fully fine-tuned)."""
    result.figures[QUALITY] = FigureRecord(
        float(stop.quality), metric, "tflm",
        f"{metric} on the validation split, TFLM interpreter, of the weights at fine-tuning step "
        f"{stop.step} of {stop.steps} (stopped there: not fully fine-tuned)")
