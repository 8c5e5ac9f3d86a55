"""A candidate's export and its score in TFLM: the int8 (or float32) ``.tflite`` a device would run, chosen by
weight-scale layout, kept per (task, config) in the artifacts cache, and its quality on the validation split from
the TFLM interpreter — the device's bit-exact oracle, so this quality *is* the device's.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.bench.atomic import atomic_write_text, folder_lock
from edgeprune.bench.manifest import ManifestError, read_manifest
from edgeprune.export.manifest_build import tool_versions
from edgeprune.export.pipeline import ExportResult, export_model
from edgeprune.export.verify import predict_fn
from edgeprune.host.search.timing import Stopwatch
from edgeprune.host.tasks.base import torch_predict

#: The split every selection figure comes from; the test split is read only after a search ends.
SELECTION_SPLIT = "val"
#: Longest wait for another process exporting the same config into the artifacts cache, s.
EXPORT_LOCK_S = 1800.0
#: Written into an export folder once ``export_smallest`` has chosen its weight scales (its .tflite's SHA-256).
EXPORT_CHOSEN = "chosen.txt"

#: ``(tflite, manifest) -> Quality``: how an export is scored.
Scorer = Callable[[bytes, dict[str, Any]], Any]


def tflm_quality(task: Any, tflite: bytes, manifest: dict[str, Any], split: str = SELECTION_SPLIT) -> Any:
    """``task``'s ``Quality`` of the model ``tflite`` (with its ``manifest``) on ``split``, run in TFLM."""
    return task.evaluate(predict_fn(tflite, manifest), split=split)


def export_smallest(task: Any, model: Any, calibration: np.ndarray, out_dir: Path, quantize: str,
                    options: dict[str, Any] | None = None, watch: Stopwatch | None = None,
                    score: Scorer | None = None) -> tuple[Any, Any]:
    """Export with one weight scale per matrix unless that costs validation quality per-row scales keep.

    Per-row (per-channel) FULLY_CONNECTED scales cost 12 B of flatbuffer per output row — 74 KB of the
    2×256 weather GRU's 690 KB, a third of a 9+60-unit candidate's. So every model (the baseline
    included) is exported per-tensor first and scored in TFLM on validation; only when that score is
    below the float model's is the per-channel export made, and kept if it scores strictly better.

    Parameters
    ----------
    task:
        The ``Task`` (its ``higher_is_better`` and float-model evaluation).
    model, calibration, out_dir, quantize:
        What ``export_model`` gets; the chosen export ends up in ``out_dir``.
    options:
        Further ``export_model`` arguments the compressed model needs (``Compressed.report["export"]``).
    watch:
        Where the ``export`` and ``tflm`` times go.
    score:
        How an export is scored (default ``tflm_quality`` on the validation split).

    Returns the chosen export and its TFLM validation quality.
    """
    opts = dict(options or {})
    watch = watch or Stopwatch({})
    scorer: Scorer = score or (lambda tflite, manifest: tflm_quality(task, tflite, manifest))
    if quantize != "int8":
        with watch("export"):
            exported = export_model(model, calibration, out_dir, quantize=quantize, name="model", **opts)
        with watch("tflm"):
            return exported, scorer(exported.read_tflite(), exported.manifest)
    sign = 1.0 if task.higher_is_better else -1.0
    with watch("export"):
        exported = export_model(model, calibration, out_dir, quantize="int8", name="model", weights="tensor", **opts)
    with watch("tflm"):
        quality = scorer(exported.read_tflite(), exported.manifest)
        floating = task.evaluate(torch_predict(model), split=SELECTION_SPLIT)
    if sign * (quality.value - floating.value) >= 0:
        return exported, quality
    side = out_dir.with_name(out_dir.name + ".channel")
    with watch("export"):
        other = export_model(model, calibration, side, quantize="int8", name="model", weights="channel", **opts)
    with watch("tflm"):
        other_quality = scorer(other.read_tflite(), other.manifest)
    if sign * (other_quality.value - quality.value) <= 0:
        shutil.rmtree(side, ignore_errors=True)
        return exported, quality
    shutil.rmtree(out_dir, ignore_errors=True)
    side.rename(out_dir)
    return ExportResult(out_dir, other.manifest, other.timings), other_quality


def reuse_export(out_dir: Path) -> Any:
    """An earlier export of the same (task, config) by the same tool versions, if complete, else ``None``.

    export_model renames its output into place only when finished, so a manifest whose hash
    matches the .tflite next to it is a whole export; measuring still happens on the device.
    """
    man_path, tfl_path = out_dir / "manifest.json", out_dir / "model.tflite"
    if not (man_path.is_file() and tfl_path.is_file() and (out_dir / "model_data.c").is_file()):
        return None
    try:
        man = read_manifest(man_path)
    except ManifestError:  # unreadable or from a newer edgeprune: export again
        return None
    digest = hashlib.sha256(tfl_path.read_bytes()).hexdigest()
    if man.tflite_sha256 != digest or man.tools != tool_versions():
        return None
    return ExportResult(out_dir, man.to_dict(), {})


def export_candidate(task: Any, compressed: Any, quantize: str, calibration: np.ndarray, out_dir: Path,
                     timings: dict[str, float]) -> tuple[Any, Any]:
    """The export of a compressed candidate in ``out_dir`` (made, or reused from the cache) and its TFLM quality.

    Parameters
    ----------
    task:
        The ``Task``.
    compressed:
        The ``Compressed`` candidate (its model and ``report["export"]`` options).
    quantize:
        The config's ``quantize``.
    calibration:
        Inputs for int8 calibration.
    out_dir:
        The candidate's folder in the artifacts cache.
    timings:
        The candidate's timings: ``export``, ``tflm`` (and ``export-reused``) are added.

    :raises ExportError: the export failed
    """
    clock = time.perf_counter()
    # Another search exporting the same config would replace this folder while it is measured: the second
    # waits, then reuses the first's export.
    with folder_lock(out_dir, EXPORT_LOCK_S):
        # Only an export whose weight-scale choice was made: a kill between the per-tensor export and that
        # choice leaves a complete export a resumed run must not take for the one an unkilled run measures.
        exported = reuse_export(out_dir) if (out_dir / EXPORT_CHOSEN).is_file() else None
        if exported is None:
            exported, quality = export_smallest(task, compressed.model, calibration, out_dir, quantize,
                                                compressed.report.get("export") or {}, Stopwatch(timings))
            atomic_write_text(out_dir / EXPORT_CHOSEN, hashlib.sha256(exported.read_tflite()).hexdigest() + "\n")
        else:
            quality = None
            timings["export-reused"] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()  # export and TFLM were timed inside, each under its own key
    if quality is None:
        quality = tflm_quality(task, exported.read_tflite(), exported.manifest)
    Stopwatch(timings).add("tflm", time.perf_counter() - clock)
    return exported, quality
