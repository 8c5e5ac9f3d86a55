"""``compress``: the whole chain for one config — prune → SVD → sparsity → fine-tune → proxies.

Order matters: structured pruning scores units on the dense, trained weights; factorising after it
only has to approximate the units that survive; magnitude masks are computed on the final factors
(the tensors that will be stored); fine-tuning then recovers accuracy with the masks held.
Quantisation itself happens in the exporter; ``config.quantize`` rides along for it.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from edgeprune.export.policy_distill import DistillConfig, distill_policy
from edgeprune.host.compress.compress_errors import ConfigError, DataError
from edgeprune.host.compress.config import CompressionConfig, layer_names_of
from edgeprune.host.compress.cost_proxies import Proxies, proxies
from edgeprune.host.compress.data import TrainData
from edgeprune.host.compress.finetuning import finetune
from edgeprune.host.compress.lowrank import factorise
from edgeprune.host.compress.sparsity import apply_masks, layer_sparsity, magnitude_masks
from edgeprune.host.compress.structured import kept_count, l2_importance, prune_structured
from edgeprune.host.compress.surgery import check_model
from edgeprune.host.compress.warm_start import composes, relative_prune
from edgeprune.host.models import MLP, ConvNet, StackedRNN

log = logging.getLogger(__name__)


@dataclass
class Compressed:
    """Result of ``compress``.

    Parameters
    ----------
    model:
        The compressed model (same class as the input, smaller shapes), in eval mode.
    proxies:
        Its analytic costs (``proxies(model)``).
    config:
        The config that produced it.
    report:
        What was done: shapes before/after, kept units, ranks, per-layer sparsity, fine-tuning
        losses, the baseline's proxies, masks' parameter names, wall time.
    """

    model: nn.Module
    proxies: Proxies
    config: CompressionConfig
    report: dict[str, Any] = field(default_factory=dict)


def _shape(model: nn.Module) -> list[int]:
    if isinstance(model, ConvNet):
        return [model.in_channels, *model.channels, model.num_outputs]
    if isinstance(model, StackedRNN):
        return [model.input_size, *model.hidden_sizes, model.num_outputs]
    assert isinstance(model, MLP)
    return list(model.sizes)


def _validator(source: Any) -> Any:
    """Score on the task's validation split (higher is better), or None when there is none.

    Policies are excluded: their validation is whole episodes, too slow to run inside fine-tuning.
    """
    if not callable(getattr(source, "evaluate_model", None)) or getattr(source, "kind", None) == "policy":
        return None
    sign = 1.0 if getattr(source, "higher_is_better", True) else -1.0

    def validate(model: nn.Module) -> float:
        return sign * float(source.evaluate_model(model, split="val").value)

    return validate


def compress(task_or_model: Any, config: CompressionConfig, data: Any = None, *,
             rungs: Sequence[int] = (), on_rung: Callable[[nn.Module, int], bool] | None = None,
             start: tuple[nn.Module, CompressionConfig] | None = None) -> Compressed:
    """Apply ``config`` to a task's baseline (or a model) deterministically under ``config.seed``.

    ``data`` (``(X, y)``, ``(X, y, kind)``, ``TrainData`` or a task) feeds data-driven importance and
    fine-tuning; with a task it defaults to the task's training arrays, and fine-tuning keeps the
    weights that score best on the task's validation split (step 0 included). The input model is not
    modified. Raises ``ConfigError`` when the config does not fit the model, ``DataError`` when it
    needs data that was not given. ``rungs``/``on_rung``: see ``finetune`` (a search's multi-fidelity
    check, ``host/search/fidelity.py``); ignored with QAT, whose weights are only final once baked.
    """
    if not isinstance(config, CompressionConfig):
        raise ConfigError(f"config must be a CompressionConfig, got {type(config).__name__}")
    started = time.perf_counter()
    if callable(getattr(task_or_model, "baseline", None)):
        base = task_or_model.baseline()
        if data is None:
            data = task_or_model
    else:
        base = task_or_model
    check_model(base)
    names = layer_names_of(base)
    config.validate_for(names)
    needs_data = config.finetune_steps > 0 or (
        config.importance != "l2" and any(config.layer(n).prune > 0 for n in names)
    )
    td = TrainData.from_source(data) if data is not None else None
    if needs_data and td is None:
        raise DataError("this config fine-tunes or scores units on data; pass a task or data=(X, y)")

    torch.manual_seed(config.seed)
    base = base.eval()
    if start is None:
        model, kept = prune_structured(base, config, data=td, seed=config.seed)
        kept_units = {n: len(v) for n, v in kept.items()}
    else:
        model, kept_units = _prune_from(start, base, config, td)
    model, ranks = factorise(model, config)
    masks = magnitude_masks(model, config)
    apply_masks(model, masks)
    ft = None
    ft_seconds = 0.0
    if config.finetune_steps > 0:
        assert td is not None
        teacher = copy.deepcopy(base) if config.distill else None
        # A task may set its own learning rate (``finetune_lr``); the default suits the recurrent models.
        lr = getattr(task_or_model, "finetune_lr", None)
        ft_started = time.perf_counter()
        hook = {} if config.qat or on_rung is None else {"rungs": tuple(rungs), "on_rung": on_rung}
        ft = finetune(
            model, td, config.finetune_steps, teacher, masks=masks, qat=config.qat, seed=config.seed,
            precision={lc.name: lc.precision for lc in config.layers if lc.precision},
            stochastic=config.stochastic_rounding,
            validate=_validator(data), **({} if lr is None else {"lr": float(lr)}), **hook,
        )
        ft_seconds = time.perf_counter() - ft_started
    model.eval()
    int8_student = _int8_aware_policy(task_or_model, base, model, config, masks, ranks)
    if int8_student is not None:
        model, export_options = int8_student
    else:
        export_options = {}
    precision = {lc.name: lc.precision for lc in config.layers if lc.precision}
    if precision:  # int4 / 16x8 layers (issue 30) are written by the exporter
        export_options = {**export_options, "precision": precision}
    prox = proxies(model)
    report: dict[str, Any] = {
        "shape_before": _shape(base),
        "shape_after": _shape(model),
        "kept_units": kept_units,
        "ranks": ranks,
        "layer_sparsity": layer_sparsity(model),
        "masked_params": sorted(masks),
        "baseline_proxies": proxies(base).to_dict(),
        "finetune": None if ft is None else {
            "steps": ft.steps, "initial_loss": ft.initial_loss, "final_loss": ft.final_loss,
            "val_scores": ft.val_scores, "best_step": ft.best_step, "stopped_at": ft.stopped_at,
        },
        "seconds": time.perf_counter() - started,
        "finetune_seconds": ft_seconds,
        # Arguments the exporter must be given for this model (an int8-aware policy student's input split).
        "export": export_options,
    }
    log.info("compressed %s -> %s: %d params, %d MACs", report["shape_before"], report["shape_after"],
             prox.params, prox.macs)
    return Compressed(model, prox, config, report)


def _prune_from(start: tuple[nn.Module, CompressionConfig], base: nn.Module, config: CompressionConfig,
                td: TrainData | None) -> tuple[nn.Module, dict[str, int]]:
    """``config``'s structured pruning applied to an ancestor's model: each layer keeps as many units as pruning
    the baseline would (``kept_count``), chosen among the ancestor's. Returns the model and its kept unit counts."""
    start_model, start_config = start
    if not composes(start_config, config):
        raise ConfigError(f"config {config.digest()[:10]} is not a further compression of {start_config.digest()[:10]}")
    base_units = {n: int(v.numel()) for n, v in l2_importance(base).items()}
    start_units = {n: int(v.numel()) for n, v in l2_importance(start_model).items()}
    fracs: dict[str, float] = {}
    kept_units: dict[str, int] = {}
    for name, units in base_units.items():
        prune = config.layer(name).prune
        if prune <= 0:
            continue
        kept_units[name] = kept_count(units, prune)
        fracs[name] = relative_prune(units, start_units[name], kept_units[name])
    model, _ = prune_structured(start_model.eval(), fracs, importance=config.importance, data=td, seed=config.seed)
    return model, kept_units


def _search_distill() -> Any:
    # The exporter's 150-epoch schedule costs minutes per candidate; 30 epochs of 1,024 states at lr 6e-3
    # distilled CartPole's 4-64-64-2 policy into 4-16-16-2 in 27 s on a busy 2-core machine: 98.85 % int8
    # greedy agreement on 2,000 validation states in TFLM, validation return 500.0 ± 0.0.
    return replace(DistillConfig(), epochs=30, batch_size=1024, lr=6e-3)


def _int8_aware_policy(source: Any, base: nn.Module, model: nn.Module, config: CompressionConfig,
                       masks: dict[str, Any], ranks: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]] | None:
    """A DQN policy to be exported int8 with ``distill``: the pruned shape, distilled int8-aware.

    Plain int8 of a Q-network flips a quarter of its greedy actions (its layers carry the state value while
    the action gaps are tiny; export/policy_distill.py), and fine-tuning towards the float Q-values cannot
    fix what quantisation does after it. So the pruned architecture is trained as the exporter's int8-aware
    student of the baseline (``distill_policy`` with this config's seed), and exported the way it was
    trained (``center_q`` and a split fine input). The config's unstructured sparsity is then applied to the
    student by magnitude, as to any model; low-rank factors are not kept by a student trained from scratch, so
    factorised configs keep the plain path. Returns ``(student, export options)`` or ``None`` when this is not
    such a config.
    """
    if not (config.distill and config.quantize == "int8" and getattr(source, "kind", None) == "policy"):
        return None
    if not isinstance(model, MLP) or any(ranks.values()):
        return None
    if not all(callable(getattr(source, f, None)) for f in ("train_arrays", "calibration_inputs")):
        return None  # a bare model or arrays: nothing to distil from or to calibrate on
    states, _ = source.train_arrays()
    calibration = source.calibration_inputs(512)
    cfg = replace(_search_distill(), seed=config.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: a second thread only adds contention (4x slower on a busy machine)
    try:
        student = distill_policy(base, states, calibration, cfg, sizes=list(model.sizes))
    finally:
        torch.set_num_threads(threads)
    if masks:
        apply_masks(student, magnitude_masks(student, config))
    return student.eval(), {"center_q": True, "fine_input": cfg.fine_input}
