"""Unstructured magnitude pruning: zero the smallest weights of a layer and keep them zero.

Masks are kept beside the model (parameter name → 0/1 tensor), not inside it, so the model stays
the canonical class the exporter understands. Zeros are still stored and multiplied by the dense
int8 kernels, so sparsity is reported on its own and never discounted from MACs or bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.compress.config import CompressionConfig, layer_names_of, per_layer
from edgeprune.host.compress.surgery import named_layers, weight_params

Masks = dict[str, torch.Tensor]


def _param_names(model: nn.Module) -> dict[int, str]:
    return {id(p): n for n, p in model.named_parameters()}


def magnitude_masks(model: nn.Module, sparsity: CompressionConfig | Mapping[str, float]) -> Masks:
    """Masks zeroing ``round(s · N)`` smallest-|w| weights of each layer (its matrices pooled).

    Pooling the three gates (and both low-rank factors) lets the layer keep weights where they
    matter most instead of forcing the same sparsity on every matrix. Biases are never masked.
    """
    names = layer_names_of(model)
    fracs = {n: float(v) for n, v in per_layer(sparsity, names, "sparsity", 0.0).items()}
    pnames = _param_names(model)
    masks: Masks = {}
    for lname, modules in named_layers(model).items():
        frac = fracs.get(lname, 0.0)
        if frac <= 0:
            continue
        params = [p for m in modules for p in weight_params(m)]
        flat = torch.cat([p.detach().abs().reshape(-1) for p in params])
        k = min(flat.numel(), math.floor(frac * flat.numel() + 0.5))
        keep = torch.ones(flat.numel())
        # Stable argsort: among equal magnitudes the earlier weight goes first, so masks are deterministic.
        order = np.argsort(flat.double().numpy(), kind="stable")
        keep[torch.as_tensor(order[:k].copy(), dtype=torch.long)] = 0.0
        offset = 0
        for p in params:
            n = p.numel()
            masks[pnames[id(p)]] = keep[offset : offset + n].reshape(p.shape).to(p.dtype)
            offset += n
    return masks


def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero the masked weights in place."""
    if not masks:
        return
    params = dict(model.named_parameters())
    missing = sorted(set(masks) - set(params))
    if missing:
        raise ConfigError(f"masks refer to parameters the model lacks: {missing[:3]}")
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask)


def weight_sparsity(model: nn.Module) -> tuple[int, int]:
    """``(zero weights, all weights)`` over the weight matrices of every named layer (biases excluded)."""
    zeros = total = 0
    for modules in named_layers(model).values():
        for m in modules:
            for p in weight_params(m):
                zeros += int((p.detach() == 0).sum())
                total += p.numel()
    return zeros, total


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of zero weights per named layer."""
    out = {}
    for lname, modules in named_layers(model).items():
        ps = [p for m in modules for p in weight_params(m)]
        total = sum(p.numel() for p in ps)
        out[lname] = sum(int((p.detach() == 0).sum()) for p in ps) / total if total else 0.0
    return out
