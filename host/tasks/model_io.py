"""Saving and loading canonical models (``StackedGRU``, ``StackedLSTM``, ``MLP``) with the config needed to rebuild them,
and the parameter / MAC counts printed beside every baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeprune.host.tasks.base import TaskError

if TYPE_CHECKING:
    from torch import nn


def model_config(model: nn.Module) -> dict[str, Any]:
    from edgeprune.host.models import MLP, ConvNet, StackedRNN

    if isinstance(model, StackedRNN):
        return {
            "class": type(model).__name__,
            "input_size": model.input_size,
            "hidden_sizes": model.hidden_sizes,
            "num_outputs": model.num_outputs,
            "seq_len": model.seq_len,
        }
    if isinstance(model, MLP):
        return {"class": "MLP", "sizes": model.sizes}
    if isinstance(model, ConvNet):
        return {"class": "ConvNet", "input_hw": list(model.input_hw), "in_channels": model.in_channels,
                "channels": model.channels, "num_outputs": model.num_outputs, "pool_after": model.pool_after}
    raise TaskError(f"cannot save {type(model).__name__}; expected a StackedGRU, StackedLSTM, MLP or ConvNet")


def build_model(config: dict[str, Any]) -> nn.Module:
    """An untrained canonical model of the shape ``config`` describes (dense layers)."""
    from edgeprune.host.models import MLP, ConvNet, StackedGRU, StackedLSTM

    cls = config.get("class")
    if cls == "ConvNet":
        hw = config["input_hw"]
        return ConvNet((int(hw[0]), int(hw[1])), int(config["in_channels"]), [int(c) for c in config["channels"]],
                       int(config["num_outputs"]), [bool(p) for p in config["pool_after"]])
    recurrent = {"StackedGRU": StackedGRU, "StackedLSTM": StackedLSTM}
    if cls in recurrent:
        return recurrent[cls](  # type: ignore[index]
            int(config["input_size"]),
            [int(h) for h in config["hidden_sizes"]],
            int(config["num_outputs"]),
            int(config["seq_len"]),
        )
    if cls == "MLP":
        return MLP([int(s) for s in config["sizes"]])
    raise TaskError(f"unknown model class {cls!r} in saved config; expected StackedGRU, StackedLSTM, MLP or ConvNet")


def save_model(model: nn.Module, path: Path) -> None:
    import torch

    torch.save({"config": model_config(model), "state_dict": model.state_dict()}, path)


def load_model(path: Path) -> nn.Module:
    import torch

    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(blob["config"])
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model


def count_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def count_macs(model: nn.Module) -> int:
    """Multiply-accumulates of one inference (a GRU: all ``seq_len`` steps plus one readout).

    Counts the weight matrices only (biases, gate nonlinearities and element-wise products are
    O(hidden) per step and left out); ``FLOPs = 2 × MACs`` on the same basis.
    """
    from torch import nn

    from edgeprune.host.models import MLP, ConvNet, LowRankLinear, StackedRNN

    def linear_macs(layer: nn.Module) -> int:
        if isinstance(layer, LowRankLinear):
            return layer.rank * (layer.in_features + layer.out_features)
        if isinstance(layer, nn.Linear):
            return layer.in_features * layer.out_features
        raise TaskError(f"cannot count MACs of {type(layer).__name__}")

    if isinstance(model, StackedRNN):
        per_step = sum(
            linear_macs(p)
            for layer in model.layers
            for p in (*layer.x_proj, *layer.h_proj)  # type: ignore[union-attr]
        )
        # The readout runs once on the final state: a window produces one prediction.
        return int(model.seq_len * per_step + linear_macs(model.head))
    if isinstance(model, MLP):
        return int(sum(linear_macs(layer) for layer in model.layers))
    if isinstance(model, ConvNet):
        convs = sum(int(conv.weight.numel()) * h * w  # type: ignore[union-attr]
                    for conv, (h, w) in zip(model.layers, model.layer_hw(), strict=True))
        return int(convs + linear_macs(model.head))
    raise TaskError(f"cannot count MACs of {type(model).__name__}; expected a StackedGRU, StackedLSTM, MLP or ConvNet")
