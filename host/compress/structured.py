"""Structured pruning: physically remove GRU/LSTM hidden units, MLP neurons and conv channels.

Removing unit ``j`` of recurrent layer ``i`` deletes row ``j`` of every gate's ``x_proj`` and ``h_proj``
(three for a GRU, four for an LSTM, whose cell state ``c`` loses unit ``j`` with them), column ``j`` of the
``h_proj`` (the recurrence), and column ``j`` of the next layer's ``x_proj``
(or of the ``head``). Removing neuron ``j`` of MLP layer ``i`` deletes row ``j`` of ``layers[i]`` and
column ``j`` of ``layers[i+1]``. Removing channel ``j`` of conv layer ``i`` deletes filter ``j`` and input
channel ``j`` of the next conv (or column ``j`` of the head, after global average pooling). The model that comes back is the same class with smaller shapes.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from edgeprune.host.compress.compress_errors import ConfigError, DataError
from edgeprune.host.compress.config import CompressionConfig, layer_names_of, per_layer, readout_name
from edgeprune.host.compress.data import TrainData, supervised_loss
from edgeprune.host.compress.surgery import check_model, dense_weight, select_cols, select_rows
from edgeprune.host.models import MLP, ConvNet, StackedRNN

log = logging.getLogger(__name__)

#: Training samples used for data-driven importance (enough for stable means, cheap on 2 cores).
IMPORTANCE_SAMPLES = 256


def kept_count(units: int, prune: float) -> int:
    """Units left after removing the fraction ``prune`` (rounded half up, at least one)."""
    return max(1, min(units, math.floor(units * (1.0 - prune) + 0.5)))


def _sq_rows(layer: nn.Module) -> torch.Tensor:
    return dense_weight(layer).detach().pow(2).sum(dim=1)


def _sq_cols(layer: nn.Module) -> torch.Tensor:
    return dense_weight(layer).detach().pow(2).sum(dim=0)


def l2_importance(model: nn.Module) -> dict[str, torch.Tensor]:
    """Per prunable layer, the L2 norm of every weight attached to each unit (in and out).

    That is exactly the weight mass the removal deletes, so a unit whose weights are all zero
    scores 0 and is removed first.
    """
    check_model(model)
    scores: dict[str, torch.Tensor] = {}
    if isinstance(model, StackedRNN):
        layers = list(model.layers)
        for i, layer in enumerate(layers):
            s = sum(_sq_rows(p) for p in layer.x_proj) + sum(_sq_rows(p) + _sq_cols(p) for p in layer.h_proj)  # type: ignore[union-attr]
            nxt = [*layers[i + 1].x_proj] if i + 1 < len(layers) else [model.head]  # type: ignore[union-attr]
            s = s + sum(_sq_cols(p) for p in nxt)
            scores[f"{model.PREFIX}{i}"] = torch.as_tensor(s).sqrt()
    elif isinstance(model, ConvNet):
        convs = list(model.layers)
        for i, conv in enumerate(convs):
            nxt = convs[i + 1] if i + 1 < len(convs) else model.head
            w = nxt.weight.detach()
            cols = w.pow(2).sum(dim=(0, 2, 3)) if w.ndim == 4 else w.pow(2).sum(dim=0)
            scores[f"conv{i}"] = (_sq_rows(conv) + cols).sqrt()
    else:
        assert isinstance(model, MLP)
        lins = list(model.layers)
        for i in range(len(lins) - 1):
            scores[f"fc{i}"] = (_sq_rows(lins[i]) + _sq_cols(lins[i + 1])).sqrt()
    return scores


def _unit_activations(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
    """Run ``model`` on ``x`` keeping every prunable unit's output per step (graph retained)."""
    acts: dict[str, list[torch.Tensor]] = {}
    if isinstance(model, StackedRNN):
        states = model.init_state(x.shape[0])
        y = None
        for t in range(x.shape[1]):
            y, states = model.step(x[:, t], states)
            for i, h in enumerate(model.layer_outputs(states)):
                if h.requires_grad:
                    h.retain_grad()
                acts.setdefault(f"{model.PREFIX}{i}", []).append(h)
        assert y is not None
        return y, acts
    if isinstance(model, ConvNet):
        h = x.permute(0, 3, 1, 2)
        for i, (conv, pool) in enumerate(zip(model.layers, model.pool_after, strict=True)):
            h = torch.relu(conv(h))
            if h.requires_grad:
                h.retain_grad()
            acts[f"conv{i}"] = [h]  # [B, C, H, W]: per-channel scores average over the pixels too
            if pool:
                h = nn.functional.max_pool2d(h, 2)
        h = nn.functional.avg_pool2d(h, model.final_hw)
        return model.head(torch.flatten(h, 1)), acts
    assert isinstance(model, MLP)
    last = len(model.layers) - 1
    for i, lin in enumerate(model.layers):
        x = lin(x)
        if i != last:
            x = torch.relu(x)
            if x.requires_grad:
                x.retain_grad()
            acts[f"fc{i}"] = [x]
    return x, acts


def data_importance(model: nn.Module, data: TrainData, kind: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """``"activation"``: mean ``|a|``; ``"taylor"``: mean ``|a · ∂L/∂a|`` over samples and steps."""
    check_model(model)
    if kind not in ("activation", "taylor"):
        raise ConfigError(f"data importance must be 'activation' or 'taylor', got {kind!r}")
    x, y = data.sample(IMPORTANCE_SAMPLES, seed)
    work = copy.deepcopy(model)
    work.eval()
    if kind == "activation":
        with torch.no_grad():
            _, acts = _unit_activations(work, x)
        return {n: torch.stack([_per_unit(a.abs()) for a in seq]).mean(dim=0) for n, seq in acts.items()}
    work.zero_grad()
    out, acts = _unit_activations(work, x)
    supervised_loss(out, y, data.kind).backward()
    scores = {}
    for n, seq in acts.items():
        if any(a.grad is None for a in seq):
            raise DataError(f"no gradient reached {n}; Taylor importance needs a differentiable loss")
        scores[n] = torch.stack([_per_unit((a * a.grad).abs()) for a in seq]).mean(dim=0).detach()  # type: ignore[operator]
    return scores


def _per_unit(a: torch.Tensor) -> torch.Tensor:
    """Mean over every axis but the unit (channel) axis 1: samples, and pixels of a conv map."""
    return a.transpose(0, 1).reshape(a.shape[1], -1).mean(dim=1)


def importance_scores(
    model: nn.Module, importance: str = "l2", data: TrainData | None = None, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Score of every unit of every prunable layer (higher = more important)."""
    if importance == "l2":
        return l2_importance(model)
    if data is None:
        raise DataError(f"importance={importance!r} needs training data; pass a task or (X, y), or use 'l2'")
    return data_importance(model, data, importance, seed)


def _keep_indices(score: torch.Tensor, keep: int) -> list[int]:
    # Stable sort on -score: equal scores keep the lower index, so pruning is deterministic.
    order = np.argsort(-score.double().numpy(), kind="stable")
    return sorted(int(i) for i in order[:keep])


def prune_structured(
    model: nn.Module,
    prune: CompressionConfig | Mapping[str, float],
    importance: str = "l2",
    data: TrainData | None = None,
    seed: int = 0,
) -> tuple[nn.Module, dict[str, list[int]]]:
    """Remove the least important units of each layer; returns ``(smaller copy, kept unit indices)``.

    ``prune`` maps layer names (``gru<i>``/``fc<i>``) to the fraction of units to remove, or is a
    config (its ``importance`` then overrides the argument). Scores are computed once on the input
    model, so every layer is judged against the same unpruned network.
    """
    check_model(model)
    names = layer_names_of(model)
    if isinstance(prune, CompressionConfig):
        importance = prune.importance
    fracs = {n: float(v) for n, v in per_layer(prune, names, "prune", 0.0).items()}
    ro = readout_name(names)
    if fracs.get(ro, 0.0) > 0:
        raise ConfigError(f"{ro} is the readout; its outputs cannot be pruned (use sparsity)")
    todo = {n: f for n, f in fracs.items() if f > 0}
    out = copy.deepcopy(model)
    if not todo:
        return out, {}
    scores = importance_scores(model, importance, data, seed)
    kept: dict[str, list[int]] = {}
    for name, frac in todo.items():
        score = scores[name]
        kept[name] = _keep_indices(score, kept_count(score.numel(), frac))
    if isinstance(out, StackedRNN):
        _apply_recurrent(out, kept)
    elif isinstance(out, ConvNet):
        _apply_conv(out, kept)
    else:
        assert isinstance(out, MLP)
        _apply_mlp(out, kept)
    log.debug("structured pruning kept %s", {n: len(v) for n, v in kept.items()})
    return out, kept


def _apply_recurrent(model: StackedRNN, kept: dict[str, list[int]]) -> None:
    layers = list(model.layers)
    for i, layer in enumerate(layers):
        idx = kept.get(f"{model.PREFIX}{i}")
        if idx is None:
            continue
        layer.x_proj = nn.ModuleList([select_rows(p, idx) for p in layer.x_proj])  # type: ignore[union-attr]
        layer.h_proj = nn.ModuleList([select_cols(select_rows(p, idx), idx) for p in layer.h_proj])  # type: ignore[union-attr]
        layer.hidden_size = len(idx)
        if i + 1 < len(layers):
            nxt = layers[i + 1]
            nxt.x_proj = nn.ModuleList([select_cols(p, idx) for p in nxt.x_proj])  # type: ignore[union-attr]
            nxt.input_size = len(idx)
        else:
            model.head = select_cols(model.head, idx)  # type: ignore[assignment]


def _apply_conv(model: ConvNet, kept: dict[str, list[int]]) -> None:
    convs = list(model.layers)
    for i in range(len(convs)):
        idx = kept.get(f"conv{i}")
        if idx is None:
            continue
        convs[i] = select_rows(convs[i], idx)
        if i + 1 < len(convs):
            convs[i + 1] = select_cols(convs[i + 1], idx)
        else:
            model.head = select_cols(model.head, idx)  # type: ignore[assignment]
    model.layers = nn.ModuleList(convs)


def _apply_mlp(model: MLP, kept: dict[str, list[int]]) -> None:
    lins = list(model.layers)
    for i in range(len(lins) - 1):
        idx = kept.get(f"fc{i}")
        if idx is None:
            continue
        lins[i] = select_rows(lins[i], idx)
        lins[i + 1] = select_cols(lins[i + 1], idx)
    model.layers = nn.ModuleList(lins)
