"""Shape surgery on linear-like layers and the map from config layer names to model modules."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.models import MLP, ConvNet, LowRankLinear, StackedRNN

LinearLike = nn.Linear | LowRankLinear


def _index(idx: Sequence[int]) -> torch.Tensor:
    return torch.as_tensor(list(idx), dtype=torch.long)


def select_rows(layer: nn.Module, idx: Sequence[int]) -> nn.Module:
    """A copy of ``layer`` keeping only output units ``idx`` (weight rows and bias entries)."""
    ix = _index(idx)
    with torch.no_grad():
        if isinstance(layer, LowRankLinear):
            out = LowRankLinear(layer.in_features, len(ix), layer.rank, bias=layer.second.bias is not None)
            out.first.weight.copy_(layer.first.weight)
            out.second.weight.copy_(layer.second.weight[ix])
            if layer.second.bias is not None:
                out.second.bias.copy_(layer.second.bias[ix])  # type: ignore[union-attr]
            return out
        if isinstance(layer, nn.Linear):
            lin = nn.Linear(layer.in_features, len(ix), bias=layer.bias is not None)
            lin.weight.copy_(layer.weight[ix])
            if layer.bias is not None:
                lin.bias.copy_(layer.bias[ix])
            return lin
        if isinstance(layer, nn.Conv2d):  # rows = output channels (filters)
            conv = _conv_like(layer, layer.in_channels, len(ix))
            conv.weight.copy_(layer.weight[ix])
            if layer.bias is not None:
                conv.bias.copy_(layer.bias[ix])  # type: ignore[union-attr]
            return conv
    raise ConfigError(f"cannot prune rows of {type(layer).__name__}: expected nn.Linear, LowRankLinear or nn.Conv2d")


def select_cols(layer: nn.Module, idx: Sequence[int]) -> nn.Module:
    """A copy of ``layer`` reading only input features ``idx`` (weight columns)."""
    ix = _index(idx)
    with torch.no_grad():
        if isinstance(layer, LowRankLinear):
            out = LowRankLinear(len(ix), layer.out_features, layer.rank, bias=layer.second.bias is not None)
            out.first.weight.copy_(layer.first.weight[:, ix])
            out.second.weight.copy_(layer.second.weight)
            if layer.second.bias is not None:
                out.second.bias.copy_(layer.second.bias)  # type: ignore[union-attr]
            return out
        if isinstance(layer, nn.Linear):
            lin = nn.Linear(len(ix), layer.out_features, bias=layer.bias is not None)
            lin.weight.copy_(layer.weight[:, ix])
            if layer.bias is not None:
                lin.bias.copy_(layer.bias)
            return lin
        if isinstance(layer, nn.Conv2d):  # columns = input channels
            conv = _conv_like(layer, len(ix), layer.out_channels)
            conv.weight.copy_(layer.weight[:, ix])
            if layer.bias is not None:
                conv.bias.copy_(layer.bias)  # type: ignore[union-attr]
            return conv
    raise ConfigError(f"cannot prune columns of {type(layer).__name__}: expected nn.Linear, LowRankLinear or nn.Conv2d")


def _conv_like(layer: nn.Conv2d, in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, layer.kernel_size, stride=layer.stride,  # type: ignore[arg-type]
                     padding=layer.padding, dilation=layer.dilation, bias=layer.bias is not None)  # type: ignore[arg-type]


def dense_weight(layer: nn.Module) -> torch.Tensor:
    """The ``out × in`` matrix a linear-like layer applies (a conv: ``out × (in · kh · kw)``)."""
    if isinstance(layer, LowRankLinear):
        return layer.dense_weight()
    if isinstance(layer, nn.Linear):
        return layer.weight
    if isinstance(layer, nn.Conv2d):
        return layer.weight.reshape(layer.out_channels, -1)
    raise ConfigError(f"{type(layer).__name__} is not linear-like")


def weight_params(layer: nn.Module) -> list[torch.Tensor]:
    """The weight matrices stored for a linear-like layer (both factors for ``LowRankLinear``)."""
    if isinstance(layer, LowRankLinear):
        return [layer.first.weight, layer.second.weight]
    if isinstance(layer, nn.Linear | nn.Conv2d):
        return [layer.weight]
    raise ConfigError(f"{type(layer).__name__} is not linear-like")


def check_model(model: nn.Module) -> None:
    if not isinstance(model, StackedRNN | MLP | ConvNet):
        raise ConfigError(f"compression handles StackedGRU, StackedLSTM, MLP and ConvNet, got {type(model).__name__}")


def named_layers(model: nn.Module) -> dict[str, list[nn.Module]]:
    """Config layer name → the linear-like modules it owns (GRU: x_proj r,z,n then h_proj r,z,n; LSTM: i,f,g,o)."""
    check_model(model)
    out: dict[str, list[nn.Module]] = {}
    if isinstance(model, StackedRNN):
        for i, layer in enumerate(model.layers):
            out[f"{model.PREFIX}{i}"] = [*layer.x_proj, *layer.h_proj]  # type: ignore[union-attr]
        out["head"] = [model.head]
    elif isinstance(model, MLP):
        for i, lin in enumerate(model.layers):
            out[f"fc{i}"] = [lin]
    elif isinstance(model, ConvNet):
        for i, conv in enumerate(model.layers):
            out[f"conv{i}"] = [conv]
        out["head"] = [model.head]
    return out
