"""Low-rank factorisation of linear layers and GRU per-gate matrices by truncated SVD."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch
from torch import nn

from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.compress.config import CompressionConfig, layer_names_of, per_layer
from edgeprune.host.compress.surgery import check_model
from edgeprune.host.models import MLP, ConvNet, LowRankLinear, StackedRNN


def rank_for(out_f: int, in_f: int, rank_frac: float) -> int:
    """``ceil(rank_frac · min(out, in))``, at least 1."""
    return max(1, math.ceil(rank_frac * min(out_f, in_f) - 1e-9))


def saves_work(out_f: int, in_f: int, rank: int) -> bool:
    """A rank-``k`` pair costs ``k·(m+n)`` MACs/weights against ``m·n``: worth it iff ``k < m·n/(m+n)``."""
    return rank * (out_f + in_f) < out_f * in_f


def factorise_linear(layer: nn.Linear, rank: int) -> LowRankLinear:
    """Best rank-``rank`` approximation of ``layer`` (Eckart–Young), split as ``U√S`` and ``√S·Vᵀ``.

    The singular values are shared evenly between the factors so both have similar ranges,
    which keeps their per-channel int8 scales comparable.
    """
    if not isinstance(layer, nn.Linear):
        raise ConfigError(f"factorise_linear needs nn.Linear, got {type(layer).__name__}")
    if not 1 <= rank <= min(layer.in_features, layer.out_features):
        raise ConfigError(f"rank {rank} outside 1..{min(layer.in_features, layer.out_features)} for {layer}")
    w = layer.weight.detach().double()
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    root = s[:rank].sqrt()
    out = LowRankLinear(layer.in_features, layer.out_features, rank, bias=layer.bias is not None)
    with torch.no_grad():
        out.first.weight.copy_((root[:, None] * vh[:rank]).to(layer.weight.dtype))
        out.second.weight.copy_((u[:, :rank] * root[None, :]).to(layer.weight.dtype))
        if layer.bias is not None:
            out.second.bias.copy_(layer.bias)  # type: ignore[union-attr]
    return out


def _maybe(layer: nn.Module, frac: float, only_if_smaller: bool) -> tuple[nn.Module, int | None]:
    if not isinstance(layer, nn.Linear):
        return layer, None  # already factorised: factorising again would only lose accuracy
    k = rank_for(layer.out_features, layer.in_features, frac)
    if only_if_smaller and not saves_work(layer.out_features, layer.in_features, k):
        return layer, None
    return factorise_linear(layer, k), k


def factorise(
    model: nn.Module, rank_fracs: CompressionConfig | Mapping[str, float | None], only_if_smaller: bool = True
) -> tuple[nn.Module, dict[str, list[int | None]]]:
    """Factorise each named layer's matrices (GRU: x_proj r,z,n and h_proj r,z,n separately; a ConvNet's head only).

    Returns ``(copy, ranks)`` where ``ranks[name]`` lists the rank given to each matrix of that
    layer, ``None`` where it stayed dense (no ``rank_frac`` or no saving, see ``saves_work``).
    ``only_if_smaller=False`` factorises regardless (used to check full-rank exactness).
    """
    check_model(model)
    names = layer_names_of(model)
    fracs = per_layer(rank_fracs, names, "rank_frac")
    out = copy.deepcopy(model)
    ranks: dict[str, list[int | None]] = {}
    for name, frac in fracs.items():
        if frac is None:
            continue
        if isinstance(out, StackedRNN) and name.startswith(out.PREFIX):
            layer = out.layers[int(name[len(out.PREFIX):])]
            xs = [_maybe(p, frac, only_if_smaller) for p in layer.x_proj]  # type: ignore[union-attr]
            hs = [_maybe(p, frac, only_if_smaller) for p in layer.h_proj]  # type: ignore[union-attr]
            layer.x_proj = nn.ModuleList([m for m, _ in xs])  # type: ignore[union-attr]
            layer.h_proj = nn.ModuleList([m for m, _ in hs])  # type: ignore[union-attr]
            ranks[name] = [k for _, k in xs + hs]
        elif isinstance(out, StackedRNN | ConvNet) and name == "head":
            head, k = _maybe(out.head, frac, only_if_smaller)
            out.head = head  # type: ignore[assignment]
            ranks[name] = [k]
        elif isinstance(out, ConvNet):
            ranks[name] = [None]  # 3×3 filters stay dense: channel pruning is the structured knob of a conv
        else:
            assert isinstance(out, MLP)
            i = int(name[2:])
            new, k = _maybe(out.layers[i], frac, only_if_smaller)
            out.layers[i] = new
            ranks[name] = [k]
    return out, ranks
