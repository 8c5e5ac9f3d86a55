"""Quantisation-aware fine-tuning: simulate the exporter's integer arithmetic, layer by layer, while training.

The exporter's int8 model has symmetric int8 weights (scale = max|w|/127, zero point 0; per output channel by
default, per tensor where the search exports so) and asymmetric per-tensor int8 activations whose range includes 0.
A layer exported at another precision (issue 30, ``export/precision.py``) is simulated as it is written:

* ``int4``: weights on [-8, 7] with the scale of least squared rounding error over the exporter's clip ratios
  (``INT4_CLIP_RATIOS``), one scale per tensor for linear layers (TFLM's int4 FULLY_CONNECTED is per tensor), per
  output channel for convolutions; activations int8.
* ``16x8``: int8 weights, the layer's outputs int16 (zero point 0, 32,767 steps over the tensor's real range): a
  linear layer's or convolution's output, and a recurrent cell's gate pre-activations and carried state (the
  exporter takes a 16x8 cell whole from the converter's 16x8 model, its state int16 between steps).
* ``float32``: nothing simulated (the layer's ops run in float with its own weights; ``export/precision_float.py``).

The rounding is applied in the forward pass and skipped in the backward pass (straight-through estimator), so the
weights learn to sit where rounding costs little. Weight rounding is to nearest, or, with ``stochastic=True``,
stochastic while training (``floor(x + u)``, ``u ~ U[0, 1)``: the tinyML DQN study's rounding, unbiased in
expectation) and to nearest whenever the model is evaluated. Modelled activations: every linear-like or
convolution output and every recurrent layer's new state; sigmoid/tanh outputs have fixed scales in TFLite and are
not modelled. After training the weights are snapped to their grid (``bake_weights``), so the exporter's own
quantisation of them is lossless up to the int8 step it passes through.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from edgeprune.export.precision_pack import INT4_CLIP_RATIOS
from edgeprune.host.compress.surgery import named_layers
from edgeprune.host.models import ConvNet, RecurrentLayer, StackedRNN

#: EMA factor of the activation range observers (as TF's QAT default).
EMA_DECAY = 0.99
#: int8 weight layouts the exporter writes.
WEIGHT_LAYOUTS = ("channel", "tensor")


def _round(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.round(x)
    return torch.floor(x + torch.rand(x.shape, generator=generator, dtype=x.dtype))


def _rows(w: torch.Tensor, per_channel: bool) -> torch.Tensor:
    return w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)


def int4_scales(w: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """The exporter's int4 scale(s) of ``w`` (``precision.int4_scale``): per row when ``per_channel``, else one,
    shaped ``[rows, 1]`` over ``w`` flattened per output channel (or ``[1, 1]``).

    :param w: weight tensor, output channels first
    :param per_channel: one scale per output channel (convolutions) or per tensor (linear layers)
    """
    flat = _rows(w.detach(), per_channel)
    peak = flat.abs().amax(dim=1, keepdim=True)
    ratios = torch.tensor(INT4_CLIP_RATIOS, dtype=w.dtype)
    s = torch.where(peak > 0, peak, torch.ones_like(peak))[:, None, :] * ratios[None, :, None] / 7.0  # [R, K, 1]
    err = ((torch.clamp(torch.round(flat[:, None, :] / s), -8, 7) * s - flat[:, None, :]) ** 2).sum(dim=2)
    # The exporter keeps the first ratio of least error; argmin does too.
    return s[torch.arange(s.shape[0]), err.argmin(dim=1)]


def quantize_weight(w: torch.Tensor, precision: str = "int8", per_channel: bool = True,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """``w`` rounded onto the exporter's grid for ``precision``, back in float (no gradient path).

    :param w: weight tensor, output channels first (``nn.Linear`` rows, ``nn.Conv2d`` filters)
    :param precision: ``int8``/``16x8`` (int8 weights, [-127, 127]) or ``int4`` ([-8, 7], clip-searched scale)
    :param per_channel: one scale per output channel, else one per tensor
    :param generator: stochastic rounding from this generator; ``None``: round to nearest
    """
    flat = _rows(w.detach(), per_channel)
    if precision == "int4":
        scale, lo, hi = int4_scales(w, per_channel), -8, 7
    else:
        amax = flat.abs().amax(dim=1, keepdim=True)
        scale, lo, hi = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax)), -127, 127
    return (torch.clamp(_round(flat / scale, generator), lo, hi) * scale).reshape(w.shape)


def _ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return x + (q - x).detach()


class RangeObserver:
    """Running min/max of one activation tensor and its fake quantisation (asymmetric int8, or symmetric int16).

    Parameters
    ----------
    decay:
        EMA factor for the range; the first batch sets the range directly.
    bits:
        8 (asymmetric, zero point chosen from the range) or 16 (zero point 0, as TFLite's 16x8 activations).
    """

    def __init__(self, decay: float = EMA_DECAY, bits: int = 8) -> None:
        self.decay = decay
        self.bits = bits
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
        if self.bits == 16:
            scale = torch.clamp(torch.maximum(-self.lo, self.hi) / 32767.0, min=1e-12)
            return _ste(x, torch.clamp(torch.round(x / scale), -32767, 32767) * scale)
        scale = torch.clamp((self.hi - self.lo) / 255.0, min=1e-12)
        zero_point = torch.round(-128 - self.lo / scale)
        q = torch.clamp(torch.round(x / scale) + zero_point, -128, 127)
        return _ste(x, (q - zero_point) * scale)


class _WeightQuant:
    """The fake-quantised weight of one module, recomputed only when the optimiser has changed the weight (a
    recurrent layer calls its projections once per time step; the int4 scale search is the expensive part)."""

    def __init__(self, precision: str, per_channel: bool, generator: torch.Generator | None) -> None:
        self.precision, self.per_channel, self.generator = precision, per_channel, generator
        self.key: tuple[int, int, bool] | None = None
        self.q: torch.Tensor | None = None

    def __call__(self, w: torch.Tensor, training: bool) -> torch.Tensor:
        key = (w._version, w.data_ptr(), training)
        if self.q is None or key != self.key:
            gen = self.generator if training else None
            self.q, self.key = quantize_weight(w, self.precision, self.per_channel, gen), key
        return _ste(w, self.q)


def layer_precisions(model: nn.Module, precision: Mapping[str, str] | None) -> dict[int, str]:
    """``id(module)`` → precision for every ``nn.Linear``/``nn.Conv2d`` and recurrent cell of ``model`` named by a
    config layer in ``precision`` (a low-rank layer's two factors both take its precision); others are int8.

    :param model: a canonical model (``StackedGRU``/``StackedLSTM``/``MLP``/``ConvNet``)
    :param precision: config layer name → ``int8``/``int4``/``16x8``/``float32``
    """
    out: dict[int, str] = {}
    if not precision:
        return out
    for name, mods in named_layers(model).items():
        p = precision.get(name)
        if p is None:
            continue
        for top in mods:
            for m in top.modules():
                if isinstance(m, nn.Linear | nn.Conv2d):
                    out[id(m)] = p
    if isinstance(model, StackedRNN):  # the cells themselves: their carried state
        for i, cell in enumerate(model.layers):
            if f"{model.PREFIX}{i}" in precision:
                out[id(cell)] = precision[f"{model.PREFIX}{i}"]
    return out


def _bits(precision: str) -> int:
    return 16 if precision == "16x8" else 8


def _per_channel(m: nn.Module, precision: str, weights: str, int4_scales: str) -> bool:
    if precision == "int4":  # the exporter's int4 layout, whatever the int8 layout
        return isinstance(m, nn.Conv2d) and int4_scales == "channel"
    return weights == "channel"


@contextmanager
def fake_quant(model: nn.Module, precision: Mapping[str, str] | None = None, *, weights: str = "channel",
               stochastic: bool = False, seed: int = 0, int4_scales: str = "channel") -> Iterator[None]:
    """Within the block, every ``nn.Linear`` (incl. low-rank factors), ``nn.Conv2d`` and recurrent cell step of
    ``model`` computes with fake-quantised weights and activations at its layer's precision. The overrides are
    instance attributes removed on exit, so the model's class and state dict are untouched.

    :param model: the model being fine-tuned
    :param precision: config layer name → ``int8``/``int4``/``16x8`` (layers not named: int8)
    :param weights: int8 weight layout, ``channel`` or ``tensor`` (int4 follows the exporter: see the module)
    :param stochastic: stochastic weight rounding in training mode (nearest in eval mode)
    :param seed: seed of the stochastic rounding's generator
    :param int4_scales: int4 convolution filters' scales, ``channel`` or ``tensor`` (``precision.apply_precision``)
    """
    if weights not in WEIGHT_LAYOUTS or int4_scales not in WEIGHT_LAYOUTS:
        raise ValueError(f"weights and int4_scales must be one of {WEIGHT_LAYOUTS}, got {weights!r}, {int4_scales!r}")
    plan = layer_precisions(model, precision)
    gen = torch.Generator().manual_seed(seed) if stochastic else None
    patched: list[tuple[nn.Module, str]] = []

    def linear_forward(lin: nn.Linear, p: str) -> Any:
        wq, obs = _WeightQuant(p, _per_channel(lin, p, weights, int4_scales), gen), RangeObserver(bits=_bits(p))

        def forward(x: torch.Tensor) -> torch.Tensor:
            return obs(F.linear(x, wq(lin.weight, lin.training), lin.bias))

        return forward

    # A ConvNet's ReLU follows each conv and TFLite fuses it: the int8 output spans [0, max], so the range is observed
    # after it (ReLU twice is ReLU once, values and gradients).
    relu_after = {id(c) for c in model.layers} if isinstance(model, ConvNet) else set()

    def conv_forward(conv: nn.Conv2d, p: str) -> Any:
        wq, obs = _WeightQuant(p, _per_channel(conv, p, weights, int4_scales), gen), RangeObserver(bits=_bits(p))
        relu = id(conv) in relu_after

        def forward(x: torch.Tensor) -> torch.Tensor:
            y = conv._conv_forward(x, wq(conv.weight, conv.training), conv.bias)
            return obs(torch.relu(y) if relu else y)

        return forward

    def cell_step(layer: RecurrentLayer, p: str) -> Any:
        # One observer per carried state (GRU: h; LSTM: h and c): each is its own tensor on the device (int16 in a
        # 16x8 cell).
        cls_step = type(layer).step
        observers = [RangeObserver(bits=_bits(p)) for _ in layer.STATES]

        def step(x: torch.Tensor, *state: torch.Tensor) -> Any:
            out = cls_step(layer, x, *state)  # type: ignore[operator]
            if isinstance(out, tuple):
                return tuple(obs(o) for obs, o in zip(observers, out, strict=True))
            return observers[0](out)

        return step

    try:
        for m in model.modules():
            if plan.get(id(m)) == "float32":  # runs in float on the device: nothing to simulate
                continue
            if isinstance(m, nn.Linear):
                m.forward = linear_forward(m, plan.get(id(m), "int8"))  # type: ignore[method-assign]
                patched.append((m, "forward"))
            elif isinstance(m, nn.Conv2d):
                m.forward = conv_forward(m, plan.get(id(m), "int8"))  # type: ignore[method-assign]
                patched.append((m, "forward"))
            elif isinstance(m, RecurrentLayer):
                m.step = cell_step(m, plan.get(id(m), "int8"))  # type: ignore[method-assign]
                patched.append((m, "step"))
        yield
    finally:
        for m, attr in patched:
            m.__dict__.pop(attr, None)


def bake_weights(model: nn.Module, precision: Mapping[str, str] | None = None, weights: str = "channel",
                 int4_scales: str = "channel") -> None:
    """Snap every linear and convolution weight to its grid (zeros stay zero, so masks survive).

    :param model: the fine-tuned model
    :param precision, weights, int4_scales: as in :func:`fake_quant`
    """
    plan = layer_precisions(model, precision)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear | nn.Conv2d):
                p = plan.get(id(m), "int8")
                if p == "float32":  # exported with its float weights
                    continue
                m.weight.copy_(quantize_weight(m.weight, p, _per_channel(m, p, weights, int4_scales)))
