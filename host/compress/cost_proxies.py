"""Exact analytic cost proxies of a canonical model (counted from its shapes, nothing measured).

Conventions
-----------
* **MACs** are multiply-accumulates of matrix products only: a dense ``m × n`` projection costs
  ``m·n``; a ``LowRankLinear`` of rank ``k`` costs ``n·k + k·m`` (both factors). Bias adds, gate
  arithmetic and nonlinearities are *not* MACs; they are listed in ``elementwise``.
* A GRU runs as the exported streaming cell (``GRUStep``) ``T`` times per inference; the cell holds
  the readout, but the runtime evaluates it only at the last step (its earlier outputs are unused), so
  ``macs = T × Σ gate projections + head`` — the same count as ``tasks.model_io.count_macs``.
  ``macs_per_step`` is the whole cell (projections + head). An MLP runs once (``T = 1``).
* Sparsity never lowers MACs or bytes: the int8 kernels are dense and store/multiply zeros.
* ``weight_bytes_int8`` = 1 byte per weight + 4 bytes per bias (int32), the payload of an int8
  TFLite model without its per-channel scales and flatbuffer overhead; ``weight_bytes_f32`` =
  4 bytes per parameter.
* ``peak_activation_bytes`` (int8, 1 byte per element) is a planner-free upper estimate: for a GRU
  step, all graph inputs and outputs (``x_t``, every ``h_i`` and ``h_i'``, ``y``) plus the widest
  layer's intermediates (6 projection outputs, low-rank inner vectors, ``r, z, n``); for an MLP, the
  widest consecutive ``in + inner + out`` triple. TFLM's arena planner usually does better.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.compress.sparsity import weight_sparsity
from edgeprune.host.compress.surgery import check_model, named_layers, weight_params
from edgeprune.host.models import MLP, ConvNet, LowRankLinear, StackedGRU, StackedRNN


@dataclass(frozen=True)
class LayerProxy:
    """Cost of one named layer per step.

    Parameters
    ----------
    params:
        Weights + biases.
    weights, biases:
        Weight-matrix entries and bias entries.
    macs_per_step:
        Matrix-product MACs of one step (one forward for an MLP).
    zero_weights:
        Weights equal to 0 (from unstructured pruning).
    """

    params: int
    weights: int
    biases: int
    macs_per_step: int
    zero_weights: int


@dataclass(frozen=True)
class Proxies:
    """Analytic costs of one model (see the module docstring for every convention).

    Parameters
    ----------
    params:
        All parameters (weights + biases, both low-rank factors).
    macs:
        Matrix-product MACs per inference (``steps × macs_per_step``); FLOPs = ``2 × macs``.
    weight_bytes_int8, weight_bytes_f32:
        Parameter storage at int8 (+ int32 biases) and at float32.
    peak_activation_bytes:
        Upper estimate of live int8 activations at any point of one step.
    sparsity:
        Fraction of weight-matrix entries that are zero (biases excluded).
    macs_per_step, steps:
        MACs of one cell step and the number of steps per inference.
    nonzero_weights:
        Weight-matrix entries that are not zero.
    elementwise:
        Per-inference counts of non-MAC operations: ``bias_add``, ``add``, ``mul``, ``sigmoid``, ``tanh``, ``relu``.
    layers:
        Per named layer ``LayerProxy``.
    """

    params: int
    macs: int
    weight_bytes_int8: int
    weight_bytes_f32: int
    peak_activation_bytes: int
    sparsity: float
    macs_per_step: int
    steps: int
    nonzero_weights: int
    elementwise: dict[str, int] = field(default_factory=dict)
    layers: dict[str, LayerProxy] = field(default_factory=dict)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _readout(layers: dict[str, Any]) -> str:
    return "head" if "head" in layers else list(layers)[-1]


def _linear_counts(m: nn.Module) -> tuple[int, int, int, int]:
    """(weights, biases, MACs, inner width) of a linear-like module."""
    if isinstance(m, LowRankLinear):
        w = m.first.weight.numel() + m.second.weight.numel()
        b = m.second.bias.numel() if m.second.bias is not None else 0
        return w, b, m.in_features * m.rank + m.rank * m.out_features, m.rank
    if isinstance(m, nn.Linear):
        return m.weight.numel(), m.bias.numel() if m.bias is not None else 0, m.in_features * m.out_features, 0
    if isinstance(m, nn.Conv2d):  # MACs per output pixel; proxies() multiplies by the pixels
        return m.weight.numel(), m.bias.numel() if m.bias is not None else 0, m.weight.numel(), 0
    raise ConfigError(f"{type(m).__name__} is not linear-like")


def proxies(model: nn.Module, seq_len: int | None = None) -> Proxies:
    """Count parameters, MACs, bytes, peak activations and sparsity of a ``StackedGRU``/``StackedLSTM`` or ``MLP``.

    ``seq_len`` overrides the GRU's ``T`` (default ``model.seq_len``); it must be omitted for an MLP.
    """
    check_model(model)
    layers: dict[str, LayerProxy] = {}
    inner: dict[str, int] = {}
    pixels = {f"conv{i}": h * w for i, (h, w) in enumerate(model.layer_hw())} if isinstance(model, ConvNet) else {}
    for name, modules in named_layers(model).items():
        w = b = macs = k = 0
        for m in modules:
            mw, mb, mm, mk = _linear_counts(m)
            w, b, macs, k = w + mw, b + mb, macs + mm * pixels.get(name, 1), k + mk
        zeros = sum(int((p.detach() == 0).sum()) for m in modules for p in weight_params(m))
        layers[name] = LayerProxy(w + b, w, b, macs, zeros)
        inner[name] = k
    weights = sum(lp.weights for lp in layers.values())
    biases = sum(lp.biases for lp in layers.values())
    per_step = sum(lp.macs_per_step for lp in layers.values())
    ew: dict[str, int] = {"bias_add": biases}
    if isinstance(model, StackedRNN):
        steps = model.seq_len if seq_len is None else seq_len
        if steps < 1:
            raise ConfigError(f"seq_len must be >= 1, got {steps}")
        hs = model.hidden_sizes
        hsum = sum(hs)
        gates = len(model.LAYER.GATES)
        if isinstance(model, StackedGRU):
            # Per unit and step: xr+hr, xz+hz, xn+r·hn, h−n, n+z·(h−n) adds; r·hn, z·(h−n) muls.
            ew.update(add=5 * hsum, mul=2 * hsum, sigmoid=2 * hsum, tanh=hsum)
        else:
            # LSTM, per unit and step: four x+h gate adds and f·c + i·g; f·c, i·g, o·tanh(c') muls.
            ew.update(add=5 * hsum, mul=3 * hsum, sigmoid=3 * hsum, tanh=2 * hsum)
        io = model.input_size + len(model.LAYER.STATES) * 2 * hsum + model.num_outputs
        work = max(3 * gates * h + inner[f"{model.PREFIX}{i}"] for i, h in enumerate(hs))
        peak = io + max(work, inner["head"])
    elif isinstance(model, ConvNet):
        if seq_len not in (None, 1):
            raise ConfigError("a ConvNet has no sequence; call proxies(model) without seq_len")
        steps = 1
        chans = [model.in_channels, *model.channels]
        ew["relu"] = sum(c * pixels[f"conv{i}"] for i, c in enumerate(model.channels))
        # Input and output maps of each conv live together (padding taps are read, not stored).
        peak = max(chans[i] * pixels[f"conv{i}"] + chans[i + 1] * pixels[f"conv{i}"] for i in range(len(model.channels)))
    else:
        assert isinstance(model, MLP)
        if seq_len not in (None, 1):
            raise ConfigError("an MLP has no sequence; call proxies(model) without seq_len")
        steps = 1
        sizes = model.sizes
        ew["relu"] = sum(sizes[1:-1])
        peak = max(sizes[i] + sizes[i + 1] + inner[f"fc{i}"] for i in range(len(sizes) - 1))
    ew = {key: v * steps for key, v in ew.items()}
    head = layers[_readout(layers)].macs_per_step
    macs = (per_step - head) * steps + head
    zeros, total = weight_sparsity(model)
    return Proxies(
        params=weights + biases,
        macs=macs,
        weight_bytes_int8=weights + 4 * biases,
        weight_bytes_f32=4 * (weights + biases),
        peak_activation_bytes=peak,
        sparsity=zeros / total if total else 0.0,
        macs_per_step=per_step,
        steps=steps,
        nonzero_weights=total - zeros,
        elementwise=ew,
        layers=layers,
    )
