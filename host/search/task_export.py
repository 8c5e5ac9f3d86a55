"""Export a task's model (baseline, a compression config, a search run's best, or a user's file) and
measure what int8 costs in the task's own metric. ``edgeprune export`` is a thin wrapper over this.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.bench.errors import ExportError
from edgeprune.bench.manifest import write_manifest
from edgeprune.export.pipeline import ExportResult, export_model
from edgeprune.export.policy_distill import export_distilled_policy
from edgeprune.export.verify import predict_fn
from edgeprune.host.compress import CompressionConfig
from edgeprune.host.search.ancestors import kept_beside
from edgeprune.host.search.store import RunStore
from edgeprune.host.tasks import get_task

log = logging.getLogger(__name__)

CALIBRATION_INPUTS = 512
AGREEMENT_INPUTS = 1000


class SourceError(ValueError):
    """The model to export could not be located (bad ``--run``/``--config``/``--model`` combination)."""


@dataclass
class ModelSource:
    """Which model to export and where it came from.

    Parameters
    ----------
    task:
        The ``Task`` supplying calibration inputs and the quality metric.
    model:
        The float model (canonical form) to export.
    label:
        One line saying where the model came from (goes into the manifest and the C comment).
    weights:
        int8 FULLY_CONNECTED weight scales, ``"channel"`` or ``"tensor"``: a run's best candidate keeps
        the layout its search measured (recorded in the candidate's manifest).
    """

    task: Any
    model: Any
    label: str
    weights: str = "channel"


@dataclass
class TaskExport:
    """An export plus its quality figures.

    Parameters
    ----------
    result:
        The ``ExportResult``.
    float_quality, int8_quality:
        The task's metric for the float model and for the exported model run in TFLM (``None`` if
        evaluation was skipped).
    agreement:
        Fraction of ``agreement_inputs`` where the exported model's argmax equals the float model's
        (classifiers and policies; ``None`` for regressors).
    """

    result: ExportResult
    float_quality: Any = None
    int8_quality: Any = None
    agreement: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def best_config_of_run(run_dir: Path) -> tuple[dict[str, Any], str]:
    """``(search options, best feasible candidate's config JSON)`` of an ``edgeprune search`` run."""
    options, best = _best_of_run(run_dir)
    return options, best.result.config_json


def _measured_weights(evaluation: Any) -> str:
    """The weight-scale layout of the export a search measured (``"channel"`` for older runs)."""
    art = (evaluation.result.artifacts or {}).get("dir")
    try:
        man = json.loads((Path(art) / "manifest.json").read_text()) if art else {}
    except (OSError, ValueError):
        man = {}
    return str(man.get("weight_scales") or "channel")


def _best_of_run(run_dir: Path) -> tuple[dict[str, Any], Any]:
    with RunStore.open_existing(run_dir) as store:
        options = store.get_meta("options", {}) or {}
        candidates = [e for e in store.evaluations("candidate") if e.feasible and e.reward is not None]
    if not candidates:
        raise SourceError(f"{run_dir} has no feasible candidate yet; let the search run longer or pass --config")
    best = max(candidates, key=lambda e: float(e.reward or -np.inf))
    log.info("run %s: best candidate #%d (reward %.4f)", run_dir, best.seq, best.reward)
    return options, best


def resolve_source(
    *,
    task: str | None = None,
    config: Path | None = None,
    run: Path | None = None,
    model: Path | None = None,
    data: Path | None = None,
    env: str | None = None,
) -> ModelSource:
    """Locate the model: ``--task`` baseline, ``--task`` + ``--config``, ``--run``, or ``--model`` + data/env."""
    config_json: str | None = None
    label = ""
    weights = "channel"
    if run is not None:
        if config is not None:
            raise SourceError("pass either --run or --config, not both")
        options, best = _best_of_run(Path(run))
        config_json, weights = best.result.config_json, _measured_weights(best)
        task = task or options.get("task")
        model = model or (Path(options["model"]) if options.get("model") else None)
        data = data or (Path(options["data"]) if options.get("data") else None)
        env = env or options.get("env_id") or options.get("env")
        label = f"best of run {run}"
    elif config is not None:
        config_json = Path(config).read_text()
        label = f"config {config}"
    if model is not None:
        built = get_task(None, model=model, data=data, env=env)
        label = label or f"model {model}"
    elif task:
        built = get_task(task)
        label = label or f"{task} baseline"
    else:
        raise SourceError("say what to export: --task NAME, --task NAME --config FILE, --run DIR, or --model FILE")
    float_model = built.baseline()
    if config_json is not None:
        from edgeprune.host.compress.compressor import compress

        cfg = CompressionConfig.from_json(config_json)
        start = (best.result.artifacts or {}).get("warm_start_from") if run is not None else None
        if start:
            # Fine-tuned from an earlier candidate (a warm start): the search's own model, not a re-run from the
            # baseline, which would give other weights than the ones measured.
            kept = kept_beside(Path(best.result.artifacts["dir"]))
            float_model = kept.load(cfg.digest())
            if float_model is None:
                raise SourceError(f"the best candidate of {run} was fine-tuned from candidate {start[:10]} and its "
                                  f"fine-tuned model is no longer in {kept.folder}; export it with --config "
                                  "(fine-tuned again from the baseline) instead")
        else:
            float_model = compress(built, cfg).model
        label = f"{label} ({built.name}, config {cfg.digest()[:12]})"
    return ModelSource(built, float_model.eval(), label, weights)


def export_source(
    source: ModelSource,
    out_dir: Path,
    *,
    quantize: str = "int8",
    evaluate: bool = True,
    calibration_inputs: int = CALIBRATION_INPUTS,
    distill_int8: bool = False,
    weights: str | None = None,
) -> TaskExport:
    """Export ``source.model`` with the task's calibration inputs; optionally evaluate float vs TFLM.

    ``distill_int8`` (DQN policies only): export an int8-aware student distilled from the policy
    (``policy_distill.export_distilled_policy``) instead of quantising the policy itself; the
    evaluation still compares against ``source.model``, the unmodified float policy.
    ``weights``: int8 weight-scale layout (``"channel"``/``"tensor"``); ``None`` = ``source.weights``.
    """
    import torch

    task = source.task
    calibration = task.calibration_inputs(calibration_inputs)
    name = str(task.name).replace(":", "_").replace("/", "_")
    if distill_int8:
        if task.kind != "policy" or quantize != "int8":
            raise ExportError("distill", detail="--distill-int8 is for int8 exports of DQN policies only")
        result, _ = export_distilled_policy(task, out_dir, name=f"{name}-distilled",
                                            calibration_samples=calibration_inputs)
    else:
        result = export_model(source.model, calibration, out_dir, quantize=quantize, name=name, source=source.label,
                              weights=weights or source.weights)
    out = TaskExport(result)
    if not evaluate:
        return out
    predict = predict_fn(result.read_tflite(), result.manifest)
    out.float_quality = task.evaluate_model(source.model)
    out.int8_quality = task.evaluate(predict)
    if task.kind in ("classifier", "policy"):
        x = task.agreement_inputs(AGREEMENT_INPUTS)
        with torch.no_grad():
            ref = source.model(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()
        out.agreement = float(np.mean(predict(x).argmax(axis=1) == ref.argmax(axis=1)))
        out.details["agreement_inputs"] = len(x)
    _record_quality(result, out)
    return out


def _record_quality(result: ExportResult, out: TaskExport) -> None:
    """Add the task-level figures to the written manifest (same atomic rename as the export itself)."""
    man = result.manifest
    man["quality"] = {
        "metric": getattr(out.float_quality, "metric", None),
        "float": getattr(out.float_quality, "value", None),
        "exported": getattr(out.int8_quality, "value", None),
        "agreement": out.agreement,
        **out.details,
    }
    write_manifest(result.out_dir / "manifest.json", man)
