"""Action spaces: how a strategy's raw proposal becomes a ``CompressionConfig``.

One ``ConfigSpace`` per run wraps the config's constructors (``from_continuous``, ``from_discrete``,
``from_retain_rate``, the optimiser vector) with the run's fixed choices, so every strategy maps
proposals to configs the same way. Three choices matter for what a search finds (docs/design.md,
"Search space"):

* **Prune rates on a log scale** (``prune_scale="log"``, default): a coordinate ``u ∈ [0, 1]`` keeps
  ``MIN_KEEP ** u`` of a layer's units (u = 0.5 keeps ≈ 17 %, u = 1 keeps 3 %). Compression is
  multiplicative, so each decade of model size gets the same share of the search instead of the
  first 10× getting 90 % of it. ``"linear"`` is the studies' own mapping (the coordinate is the rate).
* **Fine-tuning sized to the cut** (``finetune_steps="auto"``): steps grow with the fraction of
  weights removed, early-stopped on the validation split (see ``auto_finetune_steps``).
* **Canonical configs**: every config is snapped to the model it produces (the prune rate to the exact
  kept-unit count, sparsity and rank to a 1 % grid), so two proposals that build the same model have
  the same digest and the second is answered from the store without using the device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from edgeprune.host.compress.config import (
    MAX_PRUNE,
    MAX_SPARSITY,
    MIN_RANK_FRAC,
    CompressionConfig,
    LayerConfig,
    allowed_precisions,
    from_vector,
    layer_names_of,
    readout_name,
    vector_knobs,
)

N_DISCRETE_ACTIONS = 16
CONTINUOUS_DIM = 4
#: ``--mixed-precision`` with PPO: the upper half of the action's ``a3`` (int8, as the study has it) split into
#: four precision levels, wider to narrower, each as (hidden layers, readout). The lower half stays float32.
PRECISION_LEVELS: tuple[tuple[str, str], ...] = (("16x8", "int8"), ("int8", "int8"), ("int4", "int8"),
                                                 ("int4", "int4"))
#: Smallest fraction of a layer's units the log-scale mapping keeps (u = 1).
MIN_KEEP = 0.03
#: Rank fractions at or above this after clipping are no factorisation at all.
RANK_NONE = 0.99
#: ``auto`` fine-tuning: ``AUTO_FT_BASE + AUTO_FT_PER_REMOVED · removed`` steps, removed ∈ [0, 1].
AUTO_FT_BASE, AUTO_FT_PER_REMOVED = 40, 360
_GRID = 100  # sparsity / rank fractions are snapped to 1/100


def auto_finetune_steps(removed: float) -> int:
    """Fine-tuning steps for a candidate that removed the fraction ``removed`` of the weights.

    Why this size: the weather GRU's training split is ~1,000 windows (16 batches of 64), so a light
    cut heals in a few epochs while a 10–30× cut needs ~30 epochs of distillation; validation
    early-stopping (``compress.finetuning``) ends it sooner when it stops helping.
    """
    removed = min(max(float(removed), 0.0), 1.0)
    return int(round(AUTO_FT_BASE + AUTO_FT_PER_REMOVED * removed))


def _widths(model: Any) -> dict[str, int] | None:
    """Units per prunable layer of a model, ``None`` when only names are known."""
    channels = getattr(model, "channels", None)
    if channels is not None:
        return {f"conv{i}": int(c) for i, c in enumerate(channels)}
    hidden = getattr(model, "hidden_sizes", None)
    if hidden is not None:
        prefix = getattr(model, "PREFIX", "gru")
        return {f"{prefix}{i}": int(h) for i, h in enumerate(hidden)}
    sizes = getattr(model, "sizes", None)
    if sizes is not None:
        return {f"fc{i}": int(s) for i, s in enumerate(list(sizes)[1:-1])}
    return None


class ConfigSpace:
    """Maps strategy proposals onto ``CompressionConfig`` for one model.

    Parameters
    ----------
    names:
        Layer names (``gru0, gru1, head`` / ``fc0, fc1, fc2``), a model or a task. With a model or a
        task the layer widths are known and configs are snapped to the model they produce.
    finetune_steps:
        Fine-tuning steps of configs built from RL actions, retain rates and vectors: an int, or
        ``"auto"`` (sized to the cut, ``auto_finetune_steps``).
    max_finetune_steps:
        Upper bound of the ``finetune_steps`` coordinate of the optimiser vector (TPE, CMA-ES, random);
        with ``finetune_steps="auto"`` that coordinate is replaced by the automatic size.
    distill:
        Whether configs distil from the baseline while fine-tuning.
    seed:
        The configs' ``seed`` (pruning ties, fine-tuning batches).
    prune_scale:
        ``"log"`` (default) or ``"linear"``: how a prune coordinate in [0, 1] becomes a rate (see above).
    qat_steps, stochastic_rounding, greedy_batch:
        The greedy strategy's precision trials (``SearchOptions``).
    mixed_precision:
        The config vector (TPE, CMA-ES, random) also chooses each layer's precision among
        ``allowed_precisions`` (``vector_knobs(..., precision=True)``); default off (every layer int8).
    """

    def __init__(
        self,
        names: Any,
        finetune_steps: int | str = 0,
        max_finetune_steps: int = 100,
        distill: bool = False,
        seed: int = 0,
        prune_scale: str = "log",
        qat_steps: int = 0,
        stochastic_rounding: bool = False,
        greedy_batch: int = 1,
        mixed_precision: bool = False,
    ) -> None:
        if prune_scale not in ("log", "linear"):
            raise ValueError(f"prune_scale must be 'log' or 'linear', got {prune_scale!r}")
        if finetune_steps != "auto" and (isinstance(finetune_steps, bool) or not isinstance(finetune_steps, int)):
            raise ValueError(f"finetune_steps must be an int or 'auto', got {finetune_steps!r}")
        self.cls = CompressionConfig
        # A task's baseline() is a deep copy of the model: take it once for names, widths and counts.
        model = names.baseline() if callable(getattr(names, "baseline", None)) else names
        self.names: tuple[str, ...] = layer_names_of(model)
        self.widths = None if isinstance(model, Sequence) else _widths(model)
        self.params = None if isinstance(model, Sequence) else _param_count(model)
        self.finetune_steps = finetune_steps
        self.max_finetune_steps = int(max_finetune_steps)
        self.distill = bool(distill)
        self.seed = int(seed)
        self.prune_scale = prune_scale
        #: Greedy precision trials: QAT fine-tuning steps (0: post-training); stochastic rounding wherever QAT runs.
        self.qat_steps = int(qat_steps)
        self.stochastic_rounding = bool(stochastic_rounding)
        #: Greedy precision trials: layers lowered together per trial.
        self.greedy_batch = int(greedy_batch)
        #: The config vector also chooses each layer's precision (``--mixed-precision``).
        self.mixed_precision = bool(mixed_precision)
        self.knobs = vector_knobs(self.names, self.max_finetune_steps, precision=self.mixed_precision)
        # The device runs convolutions in int8 only: a conv model's configs are int8 whatever the proposal.
        self.int8_only = any(n.startswith("conv") for n in self.names)
        #: Per-layer caps on each knob (``bounds.LayerBounds``), set by the search; ``None``: unbounded.
        self.bounds: Any = None

    # -- mapping ----------------------------------------------------------------------------------
    def prune_rate(self, u: float) -> float:
        """The prune rate of a coordinate ``u ∈ [0, 1]`` under this space's scale."""
        u = min(max(float(u), 0.0), 1.0)
        return 1.0 - MIN_KEEP**u if self.prune_scale == "log" else u

    def _globals(self) -> dict[str, Any]:
        steps = 0 if self.finetune_steps == "auto" else self.finetune_steps
        return {"finetune_steps": steps, "distill": self.distill, "seed": self.seed}

    def identity(self) -> Any:
        """The uncompressed model (int8 like every candidate): the baseline all ratios refer to."""
        return self.cls.identity(self.names, seed=self.seed)

    def continuous(self, action: Sequence[float]) -> Any:
        a = [float(v) for v in action]
        if len(a) == CONTINUOUS_DIM and self.bounds is not None and self.prune_scale == "log":
            ro = readout_name(self.names)
            hidden = [n for n in self.names if n != ro]
            # The agent's whole range maps into the caps (deeper layers share a1: the second layer's cap).
            a[0] = self.bounds.scale(hidden[0], "prune", a[0]) if hidden else a[0]
            a[1] = self.bounds.scale(hidden[min(1, len(hidden) - 1)], "prune", a[1]) if hidden else a[1]
            a[2] = self._bounded(f"{ro}.sparsity", a[2])
        if len(a) == CONTINUOUS_DIM:
            a[0], a[1] = self.prune_rate(a[0]), self.prune_rate(a[1])
        config = self.cls.from_continuous(a, self.names, **self._globals())
        if self.mixed_precision and config.quantize == "int8":
            config = self._at_level(config, a[3])
        return self.canonical(config)

    def _at_level(self, config: Any, a3: float) -> Any:
        """``config`` at the ``PRECISION_LEVELS`` entry that ``a3`` ∈ [0.5, 1] selects (a layer keeps int8 where
        its level's precision is not one it can run at)."""
        level = PRECISION_LEVELS[min(max(int((float(a3) - 0.5) * 2 * len(PRECISION_LEVELS)), 0),
                                     len(PRECISION_LEVELS) - 1)]
        ro = readout_name(self.names)
        layers = []
        for lc in config.layers:
            want = level[1] if lc.name == ro else level[0]
            layers.append(replace(lc, precision=want if want in allowed_precisions(lc.name) else None))
        return replace(config, layers=tuple(layers))

    def discrete(self, action: int) -> Any:
        return self.canonical(self.cls.from_discrete(int(action), self.names, **self._globals()))

    def retain(self, rate: float) -> Any:
        return self.canonical(self.cls.from_retain_rate(float(rate), self.names, **self._globals()))

    def vector_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([k.low for k in self.knobs], dtype=np.float64)
        hi = np.array([1.0 if self._is_prune(k.name) else k.high for k in self.knobs], dtype=np.float64)
        return lo, hi

    def vector_names(self) -> list[str]:
        return [k.name for k in self.knobs]

    def _is_prune(self, knob: str) -> bool:
        return knob.endswith(".prune") and self.prune_scale == "log"

    def vector(self, vec: Sequence[float]) -> Any:
        vec = [self._bounded(k.name, v) for k, v in zip(self.knobs, vec, strict=True)]
        raw = [self.prune_rate(v) if self._is_prune(k.name) else float(v) for k, v in zip(self.knobs, vec, strict=True)]
        return self.canonical(from_vector(raw, self.names, self.max_finetune_steps, seed=self.seed,
                                          precision=self.mixed_precision))

    def _bounded(self, knob: str, value: float) -> float:
        """A vector coordinate scaled into its layer's cap (``bounds.py``); unchanged without bounds."""
        layer, _, kind = knob.rpartition(".")
        if self.bounds is None or kind not in ("prune", "sparsity", "rank_frac"):
            return float(value)
        v = float(value)
        if kind == "prune":
            return self.bounds.scale(layer, "prune", v) if self.prune_scale == "log" else v
        if kind == "sparsity":
            return self.bounds.scale(layer, "sparsity", v / MAX_SPARSITY) * MAX_SPARSITY
        cut = self.bounds.scale(layer, "rank", (1.0 - v) / (1.0 - MIN_RANK_FRAC))
        rank = 1.0 - cut * (1.0 - MIN_RANK_FRAC)
        return 1.0 if rank >= RANK_NONE else rank

    # -- canonical form ---------------------------------------------------------------------------
    def removed_fraction(self, config: Any) -> float:
        """Fraction of the baseline's weights a config's structured pruning removes (0 when unknown)."""
        if self.widths is None or self.params is None:
            return max((config.layer(n).prune for n in self.names), default=0.0)
        from edgeprune.host.compress.structured import kept_count

        kept = {n: kept_count(w, config.layer(n).prune) for n, w in self.widths.items()}
        return 1.0 - _approx_params(self.params, self.widths, kept) / self.params["total"]

    def canonical(self, config: Any) -> Any:
        """``config`` snapped to the model it produces (see the module docstring)."""
        from edgeprune.host.compress.structured import kept_count

        if self.bounds is not None:
            config = self.bounds.clip(config)
        layers = []
        for lc in config.layers:
            prune = lc.prune
            if prune > 0 and self.widths is not None and lc.name in self.widths:
                w = self.widths[lc.name]
                k = kept_count(w, prune)
                prune = min(round(1.0 - k / w, 6), MAX_PRUNE) if k < w else 0.0
                if kept_count(w, prune) != k:  # the cap moved it: keep what the cap allows
                    prune = round(1.0 - kept_count(w, prune) / w, 6)
            sparsity = math.floor(lc.sparsity * _GRID + 0.5) / _GRID
            sparsity = min(sparsity, (_GRID - 1) / _GRID)
            rank = None if lc.rank_frac is None else max(1, math.floor(lc.rank_frac * _GRID + 0.5)) / _GRID
            quantize = None if self.int8_only else lc.quantize
            layers.append(LayerConfig(lc.name, prune=prune, sparsity=sparsity, rank_frac=rank, quantize=quantize,
                                      precision=lc.precision if config.quantize == "int8" else None))
        out = replace(config, layers=tuple(layers))
        if self.int8_only and out.quantize != "int8":
            out = replace(out, quantize="int8")
        if self.finetune_steps == "auto":
            removed = self.removed_fraction(out)
            compressed = removed > 0 or any(lc.sparsity > 0 or lc.rank_frac is not None for lc in out.layers)
            out = replace(out, finetune_steps=auto_finetune_steps(removed) if compressed else 0)
            if out.finetune_steps == 0 and out.qat:
                out = replace(out, qat=False)
        if self.stochastic_rounding and out.qat and not out.stochastic_rounding:
            out = replace(out, stochastic_rounding=True)
        elif out.stochastic_rounding and not out.qat:
            out = replace(out, stochastic_rounding=False)
        return out


def _param_count(model: Any) -> dict[str, Any] | None:
    """Baseline parameter counts per layer kind, for ``removed_fraction``."""
    total = sum(int(p.numel()) for p in model.parameters()) if hasattr(model, "parameters") else 0
    if total == 0:
        return None
    return {
        "total": total,
        "input": int(getattr(model, "input_size", 0) or 0),
        "outputs": int(getattr(model, "num_outputs", 0) or 0),
        "kind": "cnn" if hasattr(model, "channels") else "rnn" if hasattr(model, "hidden_sizes") else "mlp",
        "in_channels": int(getattr(model, "in_channels", 0) or 0),
        "prefix": getattr(model, "PREFIX", "gru"),
        "gates": len(getattr(getattr(model, "LAYER", None), "GATES", ())) or 3,
        "sizes": list(getattr(model, "sizes", []) or []),
    }


def _approx_params(params: dict[str, Any], widths: dict[str, int], kept: dict[str, int]) -> float:
    """Parameters left after pruning to ``kept`` units (per gate — 3 GRU, 4 LSTM — W_x, W_h and two biases)."""
    if params["kind"] == "rnn":
        n, prev = 0.0, params["input"]
        for i in range(len(widths)):
            h = kept[f"{params['prefix']}{i}"]
            n += params["gates"] * (prev * h + h * h + 2 * h)
            prev = h
        return n + prev * params["outputs"] + params["outputs"]
    if params["kind"] == "cnn":
        n, prev = 0.0, params["in_channels"]
        for i in range(len(widths)):
            c = kept[f"conv{i}"]
            n += 9 * prev * c + c
            prev = c
        return n + prev * params["outputs"] + params["outputs"]
    sizes = list(params["sizes"])
    dims = [sizes[0]] + [kept[f"fc{i}"] for i in range(len(sizes) - 2)] + [sizes[-1]]
    return float(sum(a * b + b for a, b in zip(dims[:-1], dims[1:], strict=True)))
