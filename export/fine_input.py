"""Two-digit int8 inputs: a coarse int8 code plus its scaled rounding residual, for MLP policies.

One int8 input scale over standardised features (range ≈ ±4) gives a step of ≈0.03; the CartPole
baseline's greedy action flips for ≈2.4 % of evaluation states from that rounding alone (its states
sit 0.0014 from the decision boundary at the 1st percentile). Feeding ``[q(z), q((z − q(z))·f)]``
and a first layer ``[W, W/f]`` computes ``W·z`` to a step ``f`` times finer with the same ops
(one FULLY_CONNECTED with twice the inputs); the device just receives twice the input bytes.
The manifest's ``input_norm.fine`` records ``f``; ``bench.inputs.quantize_input`` builds the pair.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeprune.bench.errors import ExportError

if TYPE_CHECKING:
    from torch import nn


def input_grid(z: np.ndarray) -> tuple[float, int]:
    """Scale and zero point the converter derives from calibration values ``z`` (range widened to hold 0)."""
    lo = min(float(np.min(z)), 0.0)
    hi = max(float(np.max(z)), 0.0)
    scale = max(hi - lo, 1e-8) / 255.0
    return scale, int(np.clip(np.round(-128 - lo / scale), -128, 127))


def split_first_layer(model: nn.Module, fine: int) -> nn.Module:
    """A copy of an ``MLP`` taking ``[coarse, residual·fine]`` and computing ``model(coarse + residual)``."""
    import torch
    from torch import nn as tnn

    from edgeprune.host.models import LowRankLinear
    from edgeprune.host.models.mlp import MLP

    if not isinstance(model, MLP):
        raise ExportError("onnx", op=type(model).__name__, detail="fine_input applies to MLP policies only; pass fine_input=0")
    if fine < 2:
        raise ExportError("onnx", detail=f"fine_input must be 0 (off) or >= 2, got {fine}")
    out = copy.deepcopy(model).eval()
    layers: Any = out.layers
    first = layers[0]
    target = first.first if isinstance(first, LowRankLinear) else first
    wide = tnn.Linear(2 * target.in_features, target.out_features, bias=target.bias is not None)
    with torch.no_grad():
        wide.weight.copy_(torch.cat([target.weight, target.weight / fine], dim=1))
        if target.bias is not None:
            wide.bias.copy_(target.bias)
    if isinstance(first, LowRankLinear):
        first.first = wide
        first.in_features = wide.in_features
    else:
        layers[0] = wide
    return out
