"""What gets exported for a canonical model: the module, its named inputs/outputs, the sequence loop.

A ``StackedGRU`` or ``StackedLSTM`` is exported as its streaming single-step cell (``RecurrentStep``:
``x_t`` and the states in, ``y`` and the next states out), an ``MLP`` as is and a ``ConvNet`` on NCHW
(``ConvNCHW``; its ``inputs`` are the NHWC shapes onnx2tf makes and the device takes, and ``torch_sample``
turns an NHWC sample back into what PyTorch and onnxruntime read);
anything else is refused here, before any converter runs, so the error names the layer rather than
some operator three tools later. Calibration data for the cell is built by running the float model
over the calibration windows, so the hidden-state inputs see the values they take in real use.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeprune.bench.errors import ExportError

if TYPE_CHECKING:
    from torch import nn

# The converters see this many (x_t, h) samples at most; more barely moves the ranges and costs time.
MAX_CALIBRATION_SAMPLES = 600
#: Graph kinds that are one time step run ``steps`` times with their states fed back.
RECURRENT_KINDS = ("gru", "lstm")


@dataclass(frozen=True)
class TensorSpec:
    """A named float tensor of the exported graph.

    Parameters
    ----------
    name:
        Name in ONNX, in the .tflite signature and in the manifest.
    shape:
        Static shape, batch 1 (e.g. ``(1, 4)``).
    """

    name: str
    shape: tuple[int, ...]


@dataclass
class ExportGraph:
    """The module handed to the ONNX exporter plus how to drive it.

    Parameters
    ----------
    module:
        ``RecurrentStep`` or ``MLP`` in eval mode.
    kind:
        ``"gru"``/``"lstm"`` (streaming cell, run ``steps`` times) or ``"mlp"`` (one invocation).
    inputs, outputs:
        Named tensors in the user's order (the .tflite may order them differently; the manifest maps them).
    steps:
        Time steps per prediction (1 for an MLP).
    recurrent:
        ``(output_name, input_name)`` pairs carried from one step to the next.
    """

    module: Any
    kind: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    steps: int = 1
    recurrent: list[tuple[str, str]] = field(default_factory=list)

    def torch_sample(self, sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``sample`` as the traced module and the ONNX graph read it (a ConvNet's NHWC image as NCHW)."""
        if self.kind != "cnn":
            return sample
        return {k: np.ascontiguousarray(np.transpose(v, (0, 3, 1, 2))) for k, v in sample.items()}

    def torch_shapes(self) -> list[tuple[int, ...]]:
        """Input shapes of the traced module (NCHW for a ConvNet)."""
        if self.kind != "cnn":
            return [t.shape for t in self.inputs]
        return [(s[0], s[3], s[1], s[2]) for s in (t.shape for t in self.inputs)]

    @property
    def recurrent_cell(self) -> bool:
        return self.kind in RECURRENT_KINDS

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]


def _check_layers(model: nn.Module) -> None:
    from torch import nn

    from edgeprune.host.models import (
        ConvNCHW,
        ConvNet,
        LowRankLinear,
        RecurrentLayer,
        RecurrentStep,
        StackedRNN,
    )
    from edgeprune.host.models.mlp import MLP

    allowed = (StackedRNN, RecurrentLayer, RecurrentStep, MLP, ConvNet, ConvNCHW, nn.Conv2d, LowRankLinear, nn.Linear,
               nn.ModuleList)
    for name, sub in model.named_modules():
        if not isinstance(sub, allowed):
            raise ExportError(
                "onnx",
                op=type(sub).__name__,
                detail=f"layer {name or '<root>'!r} is not exportable; models must be StackedGRU, StackedLSTM, MLP or ConvNet "
                "built from nn.Linear / LowRankLinear (see host/models)",
            )


def prepare(model: nn.Module) -> ExportGraph:
    """Wrap a canonical model for export, or raise ``ExportError('onnx', op=...)`` naming what is unsupported."""
    from edgeprune.host.models import ConvNCHW, ConvNet, RecurrentStep, StackedRNN
    from edgeprune.host.models.mlp import MLP

    _check_layers(model)
    if isinstance(model, ConvNet):
        h, w = model.input_hw
        return ExportGraph(ConvNCHW(model).eval(), "cnn", [TensorSpec("image", (1, h, w, model.in_channels))],
                           [TensorSpec("logits", (1, model.num_outputs))])
    if isinstance(model, StackedRNN):
        states = list(zip(model.state_names, model.state_sizes, strict=True))
        inputs = [TensorSpec("x_t", (1, model.input_size))]
        inputs += [TensorSpec(name, (1, h)) for name, h in states]
        outputs = [TensorSpec("y", (1, model.num_outputs))]
        outputs += [TensorSpec(f"{name}_next", (1, h)) for name, h in states]
        recurrent = [(f"{name}_next", name) for name, _ in states]
        return ExportGraph(RecurrentStep(model).eval(), model.PREFIX, inputs, outputs, model.seq_len, recurrent)
    if isinstance(model, MLP):
        sizes = model.sizes
        return ExportGraph(model.eval(), "mlp", [TensorSpec("obs", (1, sizes[0]))], [TensorSpec("q", (1, sizes[-1]))])
    raise ExportError(
        "onnx", op=type(model).__name__, detail="only StackedGRU, StackedLSTM, MLP and ConvNet are exportable (see host/models)"
    )


def check_calibration(graph: ExportGraph, calibration: np.ndarray) -> np.ndarray:
    """Validate the calibration array's shape: ``[N, T, F]`` for a recurrent cell, ``[N, obs]`` for an MLP,
    ``[N, H, W, C]`` for a ConvNet."""
    cal = np.asarray(calibration, dtype=np.float32)
    feat = graph.inputs[0].shape[1]
    want = (graph.steps, feat) if graph.recurrent_cell else tuple(graph.inputs[0].shape[1:]) if graph.kind == "cnn" else (feat,)
    if cal.ndim != len(want) + 1 or tuple(cal.shape[1:]) != want or cal.shape[0] < 1:
        raise ExportError(
            "onnx", detail=f"calibration must have shape [N, {', '.join(map(str, want))}], got {list(cal.shape)}"
        )
    if not np.all(np.isfinite(cal)):
        raise ExportError("onnx", detail="calibration contains NaN or inf; clean the task's inputs")
    return cal


def representative_samples(
    graph: ExportGraph, calibration: np.ndarray, max_samples: int = MAX_CALIBRATION_SAMPLES
) -> list[dict[str, np.ndarray]]:
    """Float input dicts (name → ``[1, …]`` array) for calibration and parity checks.

    For a recurrent cell, the float model runs over each window and every step contributes
    ``(x_t, states_{t-1})``, including the zero state of step 0, so state scales cover what the loop feeds back.
    Whole windows are kept (deterministically spread over the calibration set) until ``max_samples``.
    """
    import torch

    cal = check_calibration(graph, calibration)
    if graph.kind in ("mlp", "cnn"):
        idx = np.linspace(0, len(cal) - 1, num=min(len(cal), max_samples)).round().astype(int)
        return [{graph.inputs[0].name: cal[i : i + 1]} for i in idx]
    n_windows = max(1, min(len(cal), max_samples // graph.steps))
    idx = np.linspace(0, len(cal) - 1, num=n_windows).round().astype(int)
    windows = torch.from_numpy(cal[idx])
    model = graph.module.model
    names = model.state_names
    samples: list[dict[str, np.ndarray]] = []
    with torch.no_grad():
        states = model.init_state(len(idx))
        for t in range(graph.steps):
            x_t = windows[:, t].numpy()
            s_np = [s.numpy() for s in states]
            for b in range(len(idx)):
                sample = {"x_t": x_t[b : b + 1]}
                sample.update({name: s[b : b + 1] for name, s in zip(names, s_np, strict=True)})
                samples.append(sample)
            _, states = model.step(windows[:, t], states)
    return samples


def torch_outputs(graph: ExportGraph, sample: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The float PyTorch module's outputs for one input dict, in ``graph.outputs`` order."""
    import torch

    torch_sample = graph.torch_sample(sample)
    args = [torch.from_numpy(torch_sample[name]) for name in graph.input_names]
    with torch.no_grad():
        out = graph.module(*args)
    outs = out if isinstance(out, tuple) else (out,)
    return [o.numpy() for o in outs]


def input_norm(calibration: np.ndarray) -> dict[str, list[float]]:
    """Per-feature ``mean``/``std`` of the calibration inputs (over samples and time steps).

    TFLite quantises the model input with one scale for all features; a feature whose range is
    small next to the others (CartPole's pole angle, ±0.05 beside a cart velocity of ±1) would get a
    handful of int8 levels. Exporting ``model((z·std) + mean)`` and feeding ``z = (x − mean)/std`` gives
    every feature a similar range; the affine map is folded into the first layer, so it costs nothing.
    """
    flat = np.asarray(calibration, dtype=np.float64).reshape(-1, calibration.shape[-1])
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def apply_input_norm(x: np.ndarray, norm: dict[str, list[float]] | None) -> np.ndarray:
    """``(x − mean)/std`` over the last axis (identity when ``norm`` is None), as float32."""
    x = np.asarray(x, dtype=np.float32)
    if norm is None:
        return x
    mean = np.asarray(norm["mean"], dtype=np.float32)
    std = np.asarray(norm["std"], dtype=np.float32)
    return ((x - mean) / std).astype(np.float32)


def _fold_into(layer: Any, mean: Any, std: Any) -> Any:
    """A copy of a Linear/LowRankLinear computing ``layer(z·std + mean)`` from ``z``."""
    import torch
    from torch import nn

    from edgeprune.host.models import LowRankLinear

    out = copy.deepcopy(layer)
    with torch.no_grad():
        if isinstance(out, LowRankLinear):
            shift = out.second.weight @ (out.first.weight @ mean)
            out.first.weight.mul_(std)
            if out.second.bias is None:
                second = nn.Linear(out.second.in_features, out.second.out_features)
                second.weight.copy_(out.second.weight)
                second.bias.zero_()
                out.second = second
            out.second.bias.add_(shift)
        else:
            shift = out.weight @ mean
            out.weight.mul_(std)
            if out.bias is None:
                lin = nn.Linear(out.in_features, out.out_features)
                lin.weight.copy_(out.weight)
                lin.bias.zero_()
                out = lin
            out.bias.add_(shift)
    return out


def fold_input_norm(model: nn.Module, norm: dict[str, list[float]] | None) -> nn.Module:
    """A copy of ``model`` taking normalised inputs ``z`` and computing ``model(z·std + mean)``."""
    import torch

    from edgeprune.host.models import StackedRNN

    if norm is None:
        return model
    mean = torch.tensor(norm["mean"], dtype=torch.float32)
    std = torch.tensor(norm["std"], dtype=torch.float32)
    folded = copy.deepcopy(model).eval()
    if isinstance(folded, StackedRNN):
        layer0: Any = folded.layers[0]
        for g in range(len(layer0.x_proj)):
            layer0.x_proj[g] = _fold_into(layer0.x_proj[g], mean, std)
    else:
        layers: Any = folded.layers
        layers[0] = _fold_into(layers[0], mean, std)
    return folded


def center_outputs(model: nn.Module) -> nn.Module:
    """A copy of an ``MLP`` whose outputs are ``Q(s, a) − mean_a Q(s, a)`` (greedy action unchanged).

    A DQN's Q-values share a large state value (CartPole: 54–113) while the action gaps that decide
    the greedy action are often < 0.02; an int8 output scale set by the Q range (≈0.23) rounds those
    gaps away (the task's baseline scored a return of 11 instead of 415). Subtracting the mean over
    actions is linear, folds into the last layer, and leaves only the advantages to quantise.
    """
    import torch

    from edgeprune.host.models import LowRankLinear

    centered = copy.deepcopy(model).eval()
    layers: Any = centered.layers
    last = layers[-1]
    target = last.second if isinstance(last, LowRankLinear) else last
    with torch.no_grad():
        # For a LowRankLinear, centring the rows of ``second`` centres the rows of second·first.
        target.weight.sub_(target.weight.mean(dim=0, keepdim=True))
        if target.bias is not None:
            target.bias.sub_(target.bias.mean())
    return centered
