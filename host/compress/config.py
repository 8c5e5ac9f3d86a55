"""``CompressionConfig``: what to do to each layer, frozen and hashed so evaluations can be cached.

This module imports no torch: the CLI and the search strategies build and hash configs cheaply.

Layer names: a ``StackedGRU`` has ``gru0, gru1, …`` (one per GRU layer) and ``head`` (the readout), a
``StackedLSTM`` ``lstm0, lstm1, …`` and ``head``, a ``ConvNet`` ``conv0, conv1, …`` (channels) and ``head``;
an ``MLP`` has ``fc0, fc1, …`` and its last ``fc`` is the readout. The readout's outputs are classes,
targets or Q-values, so they are never removed structurally (``prune`` must be 0 there); the readout
can still be sparsified or factorised.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from edgeprune.host.compress.compress_errors import ConfigError

QUANTIZE_MODES = ("int8", "float32")
#: Per-layer precision inside an int8 model (issue 30): int8, int4-packed weights with int8 activations, int16
#: activations with int8 weights, or float32 (the layer's ops in float, its original weights). Mirrors
#: ``edgeprune.export.precision_float.LAYER_PRECISIONS`` (tests check they agree).
PRECISIONS = ("int8", "int4", "16x8", "float32")
IMPORTANCE_KINDS = ("l2", "taylor", "activation")
#: Structured pruning ratios of the discrete action space (action % 8 indexes this).
DISCRETE_RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
#: Caps applied by the action-space constructors so every layer keeps some units and weights.
MAX_PRUNE = 0.97
MAX_SPARSITY = 0.95
#: Lower bound of ``rank_frac`` in the optimiser vector (a rank-0 factorisation computes nothing).
MIN_RANK_FRAC = 0.05
FORMAT_VERSION = 1

_NAME_RE = re.compile(r"^(gru\d+|lstm\d+|conv\d+|fc\d+|head)$")
_DIGITS = 6  # fractions are stored to 1e-6 so float noise (0.1 * 3) cannot change a digest


def _frac(value: Any, what: str, low: float, high: float, high_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{what} must be a number in [{low}, {high}{')' if high_open else ']'}, got {value!r}")
    v = round(float(value), _DIGITS)
    if v < low or v > high or (high_open and v >= high):
        raise ConfigError(f"{what} must be in [{low}, {high}{')' if high_open else ']'}, got {value!r}")
    return v


@dataclass(frozen=True)
class LayerConfig:
    """Compression of one named layer.

    Parameters
    ----------
    name:
        ``gru<i>``, ``head`` or ``fc<i>`` (see the module docstring).
    prune:
        Fraction of the layer's output units removed structurally (GRU hidden units, MLP neurons),
        in ``[0, 1)``; at least one unit is always kept. Must be 0 for the readout.
    sparsity:
        Fraction of the layer's weights (all gates pooled) zeroed by magnitude, in ``[0, 1)``.
        Dense kernels execute zeros, so this changes neither MACs nor weight bytes.
    rank_frac:
        Low-rank keep fraction in ``(0, 1]``: each weight matrix ``m × n`` becomes rank
        ``ceil(rank_frac · min(m, n))``, applied only where that rank saves work. ``None``: dense.
    quantize:
        ``None`` (inherit the global mode) or the global mode itself (int8 or float32 for the whole model).
    precision:
        ``None`` (int8) or one of ``PRECISIONS`` for this layer of an int8 model: ``"int4"`` stores its weights
        two per byte, ``"16x8"`` runs it with int16 activations (a recurrent cell's carried state too), ``"float32"``
        runs its ops in float with its float weights (no fake quantisation in QAT). A precision the device runtime
        has no kernel for is refused here, naming the layer; float32 beside a 16x8 cell or convolution by
        ``CompressionConfig``.
    """

    name: str
    prune: float = 0.0
    sparsity: float = 0.0
    rank_frac: float | None = None
    quantize: str | None = None
    precision: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError(f"layer name {self.name!r} is not one of gru<i>, lstm<i>, conv<i>, head, fc<i>")
        object.__setattr__(self, "prune", _frac(self.prune, f"{self.name}.prune", 0.0, 1.0, True))
        object.__setattr__(self, "sparsity", _frac(self.sparsity, f"{self.name}.sparsity", 0.0, 1.0, True))
        if self.rank_frac is not None:
            rf = _frac(self.rank_frac, f"{self.name}.rank_frac", 0.0, 1.0, False)
            if rf <= 0.0:
                raise ConfigError(f"{self.name}.rank_frac must be > 0 (use None for a dense layer)")
            object.__setattr__(self, "rank_frac", rf)
        if self.quantize is not None and self.quantize not in QUANTIZE_MODES:
            raise ConfigError(f"{self.name}.quantize must be one of {QUANTIZE_MODES} or None, got {self.quantize!r}")
        if self.precision == "int8":  # the default: stored as None so equal configs hash alike
            object.__setattr__(self, "precision", None)
        if self.precision is not None:
            refusal = precision_refusal(self.name, self.precision)
            if refusal:
                raise ConfigError(refusal)
        if self.name == "head" and self.prune > 0:
            raise ConfigError("head.prune must be 0: the readout's outputs are classes/targets; use head.sparsity")

    @property
    def is_identity(self) -> bool:
        return self.prune == 0 and self.sparsity == 0 and self.rank_frac is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "prune": self.prune,
            "sparsity": self.sparsity,
            "rank_frac": self.rank_frac,
            "quantize": self.quantize,
        }
        if self.precision is not None:  # absent when unset, so configs without it keep their digests
            out["precision"] = self.precision
        return out


def precision_refusal(layer: str, precision: str) -> str | None:
    """Why layer ``layer`` cannot run at ``precision`` on the device (one line naming it), or ``None``. Every
    layer kind takes every precision: a 16x8 recurrent cell or convolution beside int8/int4 layers is stitched from
    the converter's whole-model 16x8 (``export.precision_stitch``), all layers at 16x8 is that model itself.

    :param layer: config layer name (``gru0``, ``conv1``, ``fc2``, ``head``, ...)
    :param precision: one of ``PRECISIONS``
    """
    if precision not in PRECISIONS:
        return f"{layer}.precision must be one of {PRECISIONS} or None, got {precision!r}"
    return None


def float32_refusal(layers: Sequence[LayerConfig]) -> str | None:
    """The one line refusing a float32 layer beside a 16x8 recurrent cell or convolution, or ``None``: the 16x8 region
    is stitched into the plain int8 model (``export.precision_stitch``), the float32 one comes from the converter's
    selective quantisation (``export.precision_float``), and the exporter makes one or the other.

    :param layers: the configured layers
    """
    floats = [lc.name for lc in layers if lc.precision == "float32"]
    cells16 = [lc.name for lc in layers if lc.precision == "16x8" and lc.name.startswith(("gru", "lstm", "conv"))]
    if floats and cells16:
        return (f"{floats[0]}.precision='float32' cannot be exported beside {cells16[0]}.precision='16x8' (a 16x8 "
                "cell or convolution and a float32 layer in one model); use int8, int4 or 16x8 for one of them")
    return None


def allowed_precisions(layer: str) -> tuple[str, ...]:
    """The ``PRECISIONS`` layer ``layer`` can run at on the device (the search space of its precision knob).

    :param layer: config layer name
    """
    return tuple(p for p in PRECISIONS if precision_refusal(layer, p) is None)


def layer_names_of(obj: Any) -> tuple[str, ...]:
    """Layer names of a model (``StackedGRU`` → ``gru0.., head``; ``StackedLSTM`` → ``lstm0.., head``;
    ``MLP`` → ``fc0..``), a task
    (its baseline's names) or an explicit sequence of names."""
    if isinstance(obj, str):
        raise ConfigError("layer names must be a sequence of names, a model or a task, not one string")
    if isinstance(obj, Sequence):
        names = tuple(obj)
        if not names or not all(isinstance(n, str) and _NAME_RE.match(n) for n in names):
            raise ConfigError(f"layer names must be gru<i>/lstm<i>/conv<i>/head/fc<i> names, got {names!r}")
        return names
    if callable(getattr(obj, "baseline", None)):
        return layer_names_of(obj.baseline())
    layers = getattr(obj, "layers", None)
    if layers is None:
        raise ConfigError(f"cannot name the layers of {type(obj).__name__}: expected StackedGRU, MLP or a task")
    if hasattr(obj, "head"):
        prefix = getattr(obj, "PREFIX", "gru")
        return (*(f"{prefix}{i}" for i in range(len(layers))), "head")
    return tuple(f"fc{i}" for i in range(len(layers)))


def readout_name(names: Sequence[str]) -> str:
    """The layer whose outputs are the model's outputs (``head`` or the last ``fc``)."""
    if "head" in names:
        return "head"
    fcs = sorted((n for n in names if n.startswith("fc")), key=lambda n: int(n[2:]))
    if not fcs:
        raise ConfigError(f"no readout among layer names {tuple(names)!r}")
    return fcs[-1]


@dataclass(frozen=True)
class CompressionConfig:
    """Everything ``compress`` does to one model, as a hashable value.

    Parameters
    ----------
    layers:
        Per-layer ``LayerConfig``s; layers not listed are left as they are. Names must be unique.
    quantize:
        ``"int8"`` (default: the exporter's full-integer PTQ, per-channel weights, per-tensor
        activations, calibrated on training data) or ``"float32"`` (the whole model in float). Inside an int8
        model, single layers take another precision through ``LayerConfig.precision`` (float32 included).
    finetune_steps:
        Adam steps after pruning (0 = none).
    distill:
        Fine-tune towards the uncompressed model's outputs (KL on logits for classifiers,
        MSE on outputs / Q-values otherwise) mixed with the task loss.
    importance:
        Unit score for structured pruning: ``"l2"`` (weight norm, no data), ``"activation"``
        (mean |unit output| on training batches) or ``"taylor"`` (``|a · ∂L/∂a|``).
    qat:
        Fake-quantise weights/activations at each layer's precision (int8, or its ``LayerConfig.precision``;
        straight-through estimator) while fine-tuning; needs ``quantize="int8"`` and ``finetune_steps > 0``.
    stochastic_rounding:
        Round the fake-quantised weights stochastically while fine-tuning (the tinyML DQN study's rounding;
        nearest when the model is scored and baked); needs ``qat=True``. Default off.
    seed:
        Seeds pruning ties, batch sampling and fine-tuning, so a config always gives the same model.
    """

    layers: tuple[LayerConfig, ...] = ()
    quantize: str = "int8"
    finetune_steps: int = 0
    distill: bool = False
    importance: str = "l2"
    qat: bool = False
    seed: int = 0
    stochastic_rounding: bool = False
    _index: dict[str, LayerConfig] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        if not all(isinstance(lc, LayerConfig) for lc in layers):
            raise ConfigError("layers must be LayerConfig objects")
        object.__setattr__(self, "layers", layers)
        names = [lc.name for lc in layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"layer(s) configured twice: {', '.join(dup)}")
        if self.quantize not in QUANTIZE_MODES:
            raise ConfigError(f"quantize must be one of {QUANTIZE_MODES}, got {self.quantize!r}")
        mixed = [lc.name for lc in layers if lc.quantize is not None and lc.quantize != self.quantize]
        if mixed:
            raise ConfigError(
                f"per-layer precision differs from quantize={self.quantize!r} on {', '.join(mixed)}: "
                "the device runtime runs one precision per model; drop LayerConfig.quantize"
            )
        refusal = float32_refusal(layers)
        if refusal:
            raise ConfigError(refusal)
        if isinstance(self.finetune_steps, bool) or not isinstance(self.finetune_steps, int) or self.finetune_steps < 0:
            raise ConfigError(f"finetune_steps must be an int >= 0, got {self.finetune_steps!r}")
        if not isinstance(self.distill, bool) or not isinstance(self.qat, bool):
            raise ConfigError("distill and qat must be booleans")
        if self.importance not in IMPORTANCE_KINDS:
            raise ConfigError(f"importance must be one of {IMPORTANCE_KINDS}, got {self.importance!r}")
        narrowed = [lc.name for lc in layers if lc.precision not in (None, "int8")]
        if narrowed and self.quantize != "int8":
            raise ConfigError(f"{narrowed[0]}.precision needs quantize='int8' (a float32 model has one precision)")
        if self.qat and (self.quantize != "int8" or self.finetune_steps == 0):
            raise ConfigError("qat=True needs quantize='int8' and finetune_steps > 0")
        if not isinstance(self.stochastic_rounding, bool):
            raise ConfigError(f"stochastic_rounding must be a boolean, got {self.stochastic_rounding!r}")
        if self.stochastic_rounding and not self.qat:
            raise ConfigError("stochastic_rounding=True rounds fake-quantised weights while fine-tuning: it needs "
                              "qat=True (quantize='int8', finetune_steps > 0)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an int >= 0, got {self.seed!r}")
        object.__setattr__(self, "_index", {lc.name: lc for lc in layers})

    # -- access -------------------------------------------------------------------------------
    def layer(self, name: str) -> LayerConfig:
        """The config of ``name`` (an identity ``LayerConfig`` when the layer is not listed)."""
        return self._index.get(name) or LayerConfig(name)

    @property
    def is_identity(self) -> bool:
        """True when compress would return the model unchanged (quantisation happens in export)."""
        return all(lc.is_identity for lc in self.layers) and self.finetune_steps == 0

    def validate_for(self, names: Sequence[str]) -> None:
        """Raise ``ConfigError`` unless every configured layer exists and the readout is not pruned."""
        unknown = [lc.name for lc in self.layers if lc.name not in names]
        if unknown:
            raise ConfigError(f"config names layers {unknown} that the model lacks; it has {list(names)}")
        ro = readout_name(names)
        if self.layer(ro).prune > 0:
            raise ConfigError(f"{ro}.prune must be 0: it is the readout; use {ro}.sparsity instead")


    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "layers": [lc.to_dict() for lc in self.layers],
            "quantize": self.quantize,
            "finetune_steps": self.finetune_steps,
            "distill": self.distill,
            "importance": self.importance,
            "qat": self.qat,
            "seed": self.seed,
            # absent when off, so configs without it keep their digests
            **({"stochastic_rounding": True} if self.stochastic_rounding else {}),
        }

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace): equal configs give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """SHA-256 hex of ``to_json()``: the config part of the evaluation cache key."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompressionConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a JSON object, got {type(data).__name__}")
        data = dict(data)
        fmt = data.pop("format", FORMAT_VERSION)
        if fmt != FORMAT_VERSION:
            raise ConfigError(f"config format {fmt!r} is not supported (expected {FORMAT_VERSION})")
        allowed = {"layers", "quantize", "finetune_steps", "distill", "importance", "qat", "seed",
                   "stochastic_rounding"}
        extra = sorted(set(data) - allowed)
        if extra:
            raise ConfigError(f"unknown config keys {extra}; allowed: {sorted(allowed)}")
        layer_keys = {"name", "prune", "sparsity", "rank_frac", "quantize", "precision"}
        layers = []
        for item in data.pop("layers", []):
            if not isinstance(item, dict) or set(item) - layer_keys:
                raise ConfigError(f"bad layer entry {item!r}; keys allowed: {sorted(layer_keys)}")
            layers.append(LayerConfig(**item))
        return cls(layers=tuple(layers), **data)

    @classmethod
    def from_json(cls, text: str) -> CompressionConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    # -- action spaces of the studies ---------------------------------------------------------
    @classmethod
    def identity(cls, names: Any = (), **globals_: Any) -> CompressionConfig:
        return cls(layers=tuple(LayerConfig(n) for n in layer_names_of(names)) if names else (), **globals_)

    @classmethod
    def from_continuous(cls, action: Sequence[float], names: Any, **globals_: Any) -> CompressionConfig:
        """The GRU study's 4-D action ``[a0, a1, a2, a3]`` (each nominally in [0, 1]).

        ``a0``: prune rate of the first hidden layer (``gru0``/``fc0``); ``a1``: prune rate of the
        second and any deeper hidden layers; ``a2``: the readout's rate — its outputs are classes,
        so it becomes the readout's unstructured *sparsity*; ``a3``: quantise (int8) iff ``a3 ≥ 0.5``,
        else float32. Rates are clipped to ``[0, MAX_PRUNE]`` / ``[0, MAX_SPARSITY]``.
        ``names``: layer names, a model or a task. ``globals_`` set the other fields.
        """
        if len(action) != 4:
            raise ConfigError(f"continuous action needs 4 values [a0, a1, a2, a3], got {len(action)}")
        a = [float(v) for v in action]
        if any(math.isnan(v) for v in a):
            raise ConfigError(f"continuous action contains NaN: {a}")
        names_t = layer_names_of(names)
        ro = readout_name(names_t)
        hidden = [n for n in names_t if n != ro]
        layers = []
        for i, n in enumerate(hidden):
            layers.append(LayerConfig(n, prune=min(max(a[0 if i == 0 else 1], 0.0), MAX_PRUNE)))
        layers.append(LayerConfig(ro, sparsity=min(max(a[2], 0.0), MAX_SPARSITY)))
        quantize = "int8" if a[3] >= 0.5 else "float32"
        return cls(layers=tuple(layers), quantize=quantize, **globals_)

    @classmethod
    def from_discrete(cls, action: int, names: Any, **globals_: Any) -> CompressionConfig:
        """The discrete study's 16 actions: ``ratio = DISCRETE_RATIOS[action % 8]`` (0, 0.1, …, 0.7)
        and quantise iff ``action ≥ 8`` (0–7 float32, 8–15 int8).

        The ratio prunes every hidden layer structurally and sparsifies the readout.
        """
        if isinstance(action, bool) or not isinstance(action, int) or not 0 <= action <= 15:
            raise ConfigError(f"discrete action must be an int in 0..15, got {action!r}")
        ratio = DISCRETE_RATIOS[action % 8]
        names_t = layer_names_of(names)
        ro = readout_name(names_t)
        layers = [LayerConfig(n, prune=ratio) for n in names_t if n != ro]
        layers.append(LayerConfig(ro, sparsity=ratio))
        return cls(layers=tuple(layers), quantize="int8" if action >= 8 else "float32", **globals_)

    @classmethod
    def from_retain_rate(cls, rate: float, names: Any, **globals_: Any) -> CompressionConfig:
        """One knob ``r ∈ (0, 1]`` = the fraction of weights retained (Cortex-M0 DQN study).

        Hidden layers keep ``√r`` of their units (``prune = 1 − √r``): a hidden-to-hidden matrix
        shrinks in both dimensions, so it keeps ≈ ``r`` of its weights. The readout keeps ``r`` of its
        weights by magnitude (``sparsity = 1 − r``). Quantisation stays int8 unless ``globals_`` say
        otherwise. ``r = 1`` is the identity.
        """
        r = float(rate)
        if math.isnan(r) or not 0.0 < r <= 1.0:
            raise ConfigError(f"retain rate must be in (0, 1], got {rate!r}")
        names_t = layer_names_of(names)
        ro = readout_name(names_t)
        prune = min(1.0 - math.sqrt(r), MAX_PRUNE)
        layers = [LayerConfig(n, prune=prune) for n in names_t if n != ro]
        layers.append(LayerConfig(ro, sparsity=min(1.0 - r, MAX_SPARSITY)))
        return cls(layers=tuple(layers), **globals_)

    def with_globals(self, **changes: Any) -> CompressionConfig:
        return replace(self, **changes)


# -- vector encoding for black-box optimisers (TPE, CMA-ES) ------------------------------------


@dataclass(frozen=True)
class Knob:
    """One coordinate of the optimiser vector.

    Parameters
    ----------
    name:
        ``<layer>.<field>`` or a global field name.
    low, high:
        Bounds of the coordinate.
    kind:
        ``"float"``, ``"int"`` (rounded), ``"bool"`` (true iff ≥ 0.5) or ``"choice"`` (index into
        ``choices`` = ``floor(x · len(choices))``).
    choices:
        Options of a ``"choice"`` knob.
    """

    name: str
    low: float
    high: float
    kind: str = "float"
    choices: tuple[str, ...] = ()


def vector_knobs(names: Any, max_finetune_steps: int = 500, precision: bool = False) -> tuple[Knob, ...]:
    """Every searchable knob: per layer ``prune`` (not for the readout), ``sparsity``, ``rank_frac``
    (``1.0`` decodes to ``None``), with ``precision=True`` also ``precision`` (a choice among the layer's
    ``allowed_precisions``), then ``quantize``, ``finetune_steps``, ``distill``, ``importance``, ``qat``.
    """
    names_t = layer_names_of(names)
    ro = readout_name(names_t)
    knobs: list[Knob] = []
    for n in names_t:
        if n != ro:
            knobs.append(Knob(f"{n}.prune", 0.0, MAX_PRUNE))
        knobs.append(Knob(f"{n}.sparsity", 0.0, MAX_SPARSITY))
        knobs.append(Knob(f"{n}.rank_frac", MIN_RANK_FRAC, 1.0))
        if precision:
            knobs.append(Knob(f"{n}.precision", 0.0, 1.0, "choice", allowed_precisions(n)))
    knobs += [
        Knob("quantize", 0.0, 1.0, "choice", ("float32", "int8")),
        Knob("finetune_steps", 0.0, float(max_finetune_steps), "int"),
        Knob("distill", 0.0, 1.0, "bool"),
        Knob("importance", 0.0, 1.0, "choice", IMPORTANCE_KINDS),
        Knob("qat", 0.0, 1.0, "bool"),
    ]
    return tuple(knobs)


def _choice_index(x: float, n: int) -> int:
    return min(max(int(math.floor(x * n)), 0), n - 1)


def from_vector(vec: Sequence[float], names: Any, max_finetune_steps: int = 500, seed: int = 0,
                precision: bool = False) -> CompressionConfig:
    """Decode an optimiser vector (layout of ``vector_knobs``, ``precision`` as there); values are clipped to the
    bounds, ``qat`` is dropped when it cannot apply (float32 or no fine-tuning), per-layer precisions when the
    model is float32, and a float32 layer's precision (to int8) beside a 16x8 cell or convolution, so every vector is
    valid."""
    knobs = vector_knobs(names, max_finetune_steps, precision)
    if len(vec) != len(knobs):
        raise ConfigError(f"vector has {len(vec)} values, the layout needs {len(knobs)}: {[k.name for k in knobs]}")
    vals: dict[str, Any] = {}
    for k, raw in zip(knobs, vec, strict=True):
        x = float(raw)
        if math.isnan(x):
            raise ConfigError(f"vector value for {k.name} is NaN")
        x = min(max(x, k.low), k.high)
        if k.kind == "int":
            vals[k.name] = int(round(x))
        elif k.kind == "bool":
            vals[k.name] = x >= 0.5
        elif k.kind == "choice":
            vals[k.name] = k.choices[_choice_index(x, len(k.choices))]
        else:
            vals[k.name] = x
    layers = []
    for n in layer_names_of(names):
        rf = vals[f"{n}.rank_frac"]
        layers.append(
            LayerConfig(
                n,
                prune=vals.get(f"{n}.prune", 0.0),
                sparsity=vals[f"{n}.sparsity"],
                rank_frac=None if rf >= 1.0 - 1e-9 else rf,
                precision=vals.get(f"{n}.precision") if vals["quantize"] == "int8" else None,
            )
        )
    if float32_refusal(layers):  # float32 beside a 16x8 cell/convolution cannot be exported: those layers run int8
        layers = [replace(lc, precision=None) if lc.precision == "float32" else lc for lc in layers]
    steps = vals["finetune_steps"]
    qat = vals["qat"] and vals["quantize"] == "int8" and steps > 0
    return CompressionConfig(
        layers=tuple(layers),
        quantize=vals["quantize"],
        finetune_steps=steps,
        distill=vals["distill"],
        importance=vals["importance"],
        qat=qat,
        seed=seed,
    )


def to_vector(config: CompressionConfig, names: Any, max_finetune_steps: int = 500,
              precision: bool = False) -> list[float]:
    """Encode ``config`` in the layout of ``vector_knobs`` (choices map to their bin centres)."""
    knobs = vector_knobs(names, max_finetune_steps, precision)
    out: list[float] = []
    for k in knobs:
        if k.name.endswith(".precision"):
            value = config.layer(k.name.split(".", 1)[0]).precision or "int8"
            out.append((k.choices.index(value) + 0.5) / len(k.choices))
        elif "." in k.name:
            lname, fname = k.name.split(".", 1)
            v = getattr(config.layer(lname), fname)
            out.append(1.0 if v is None else float(v))
        elif k.kind == "choice":
            value = getattr(config, k.name)
            out.append((k.choices.index(value) + 0.5) / len(k.choices))
        elif k.kind == "bool":
            out.append(1.0 if getattr(config, k.name) else 0.0)
        else:
            steps = float(config.finetune_steps)
            if steps > k.high:
                raise ConfigError(f"finetune_steps={config.finetune_steps} exceeds max_finetune_steps={k.high:g}")
            out.append(steps)
    return out


def per_layer(
    knobs: CompressionConfig | Mapping[str, Any], names: Sequence[str], knob: str, default: Any = None
) -> dict[str, Any]:
    """One knob's value for every layer in ``names``, from a config or a ``{layer: value}`` mapping.

    A config is validated against ``names`` and read through ``LayerConfig.<knob>``; a mapping may
    omit layers (they get ``default``) but may not name layers the model lacks. Each transform
    (pruning, SVD, sparsity) accepts either form, so they resolve it here in one way.
    """
    if isinstance(knobs, CompressionConfig):
        knobs.validate_for(names)
        return {n: getattr(knobs.layer(n), knob) for n in names}
    unknown = sorted(set(knobs) - set(names))
    if unknown:
        raise ConfigError(f"{knob} names unknown layers {unknown}; the model has {list(names)}")
    return {n: knobs.get(n, default) for n in names}
