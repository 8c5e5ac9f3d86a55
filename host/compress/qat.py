"""Quantisation-aware fine-tuning: simulate the exporter's int8 arithmetic while training.

The exporter's TFLite conversion uses symmetric per-output-channel int8 weights (scale =
max|w|/127, zero point 0) and asymmetric per-tensor int8 activations whose range includes 0. Here
the same rounding is applied in the forward pass and skipped in the backward pass (straight-through
estimator), so the weights learn to sit where rounding costs little. Modelled activations: every
linear-like output and every GRU layer's new hidden state; sigmoid/tanh outputs have fixed int8
scales in TFLite and are not modelled. After training the weights are snapped to their int8 grid
(``bake_weights``), so the exporter's own quantisation of them is lossless.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from edgeprune.host.models import RecurrentLayer

#: EMA factor of the activation range observers (as TF's QAT default).
EMA_DECAY = 0.99


def quantize_weight(w: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric int8 rounding of ``w`` (rows = channels), back in float."""
    amax = w.detach().abs().amax(dim=1, keepdim=True)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    return torch.clamp(torch.round(w / scale), -127, 127) * scale


def _ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return x + (q - x).detach()


class RangeObserver:
    """Running min/max of one activation tensor and its asymmetric int8 fake quantisation.

    Parameters
    ----------
    decay:
        EMA factor for the range; the first batch sets the range directly.
    """

    def __init__(self, decay: float = EMA_DECAY) -> None:
        self.decay = decay
        self.lo: torch.Tensor | None = None
        self.hi: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # Ranges stay tensors: converting to Python floats on every call would dominate the step time.
        lo, hi = torch.aminmax(x.detach())
        zero = torch.zeros((), dtype=x.dtype)
        lo, hi = torch.minimum(lo, zero), torch.maximum(hi, zero)
        if self.lo is None or self.hi is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo = self.decay * self.lo + (1 - self.decay) * lo
            self.hi = self.decay * self.hi + (1 - self.decay) * hi
        scale = torch.clamp((self.hi - self.lo) / 255.0, min=1e-12)
        zero_point = torch.round(-128 - self.lo / scale)
        q = torch.clamp(torch.round(x / scale) + zero_point, -128, 127)
        return _ste(x, (q - zero_point) * scale)


@contextmanager
def fake_quant(model: nn.Module) -> Iterator[None]:
    """Within the block, every ``nn.Linear`` (incl. low-rank factors) and recurrent cell step of ``model``
    computes with fake-quantised int8 weights and activations. The overrides are instance
    attributes removed on exit, so the model's class and state dict are untouched."""
    patched: list[tuple[nn.Module, str]] = []

    def linear_forward(lin: nn.Linear, obs: RangeObserver) -> Any:
        def forward(x: torch.Tensor) -> torch.Tensor:
            return obs(F.linear(x, _ste(lin.weight, quantize_weight(lin.weight)), lin.bias))

        return forward

    def cell_step(layer: RecurrentLayer) -> Any:
        # One observer per carried state (GRU: h; LSTM: h and c): each is its own int8 tensor on the device.
        cls_step = type(layer).step
        observers = [RangeObserver() for _ in layer.STATES]

        def step(x: torch.Tensor, *state: torch.Tensor) -> Any:
            out = cls_step(layer, x, *state)  # type: ignore[operator]
            if isinstance(out, tuple):
                return tuple(obs(o) for obs, o in zip(observers, out, strict=True))
            return observers[0](out)

        return step

    try:
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.forward = linear_forward(m, RangeObserver())  # type: ignore[method-assign]
                patched.append((m, "forward"))
            elif isinstance(m, RecurrentLayer):
                m.step = cell_step(m)  # type: ignore[method-assign]
                patched.append((m, "step"))
        yield
    finally:
        for m, attr in patched:
            m.__dict__.pop(attr, None)


def bake_weights(model: nn.Module) -> None:
    """Snap every linear weight to its per-channel int8 grid (zeros stay zero, so masks survive)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(quantize_weight(m.weight))
