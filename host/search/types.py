"""The records that cross the evaluator → search → store → report seam.

Everything here is plain data (JSON-serialisable through ``to_dict``/``from_dict``) so a result
measured in one run can be stored, cached and replayed in another without importing torch or TF.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

# Figure names the search and the report agree on. Values are in the unit stored beside them.
QUALITY = "quality"
LATENCY_COUNT = "latency_count"  # cycles (board) or instructions (qemu) per inference
LATENCY_MS = "latency_ms"
ENERGY_UJ = "energy_uj"  # per inference
HOST_ENERGY_UJ = "host_energy_uj"  # CodeCarbon: host energy per inference of the same model (TFLite)
FLASH_BYTES = "flash_bytes"
RAM_BYTES = "ram_bytes"
PARAMS = "params"
MACS = "macs"
SPARSITY = "sparsity"

#: Origins of candidates judged on the host without the device: ``host`` (its int8 TFLM quality already broke
#: the limit) and ``stopped`` (stopped at a multi-fidelity rung, not fully fine-tuned). Never measured, never
#: counted against the budget, never on the front.
UNMEASURED_ORIGINS: tuple[str, ...] = ("host", "stopped")
#: How the verdict of a candidate stopped at its rung begins (``fidelity.RungStop.reason``; read by the rejection
#: summary and the per-layer bounds).
STOPPED_REASON = "stopped early"
MODEL_BYTES = "model_bytes"
#: Weight bytes of the exported model as stored: int4 at half a byte, a float32 layer at 4 B (issue 30).
WEIGHT_BYTES = "weight_bytes"

# Objectives of the Pareto front: (figure name, True when larger is better). Quality's direction
# depends on the task and is filled in at run time.
COST_FIGURES = (LATENCY_COUNT, FLASH_BYTES, ENERGY_UJ)


@dataclass(frozen=True)
class FigureRecord:
    """A measured or derived number with its provenance.

    Parameters
    ----------
    value:
        The number, in ``unit``.
    unit:
        E.g. ``"instructions"``, ``"cycles"``, ``"ms"``, ``"uJ"``, ``"bytes"``, ``"accuracy"``.
    source:
        Where it comes from: ``board``, ``qemu``, ``model``, ``host``, ``tflm``, ``build``, ``proxy``.
    detail:
        Free text saying how (e.g. ``"deploy build .text+.data"``, ``"model size + arena (estimate)"``).
    """

    value: float
    unit: str
    source: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FigureRecord:
        return cls(float(d["value"]), str(d["unit"]), str(d["source"]), str(d.get("detail", "")))

    @classmethod
    def of(cls, figure: Any, detail: str = "") -> FigureRecord:
        """Copy any object with ``value``, ``unit``, ``source`` (e.g. ``bench.figures.Figure``)."""
        return cls(
            float(figure.value),
            str(figure.unit),
            str(figure.source),
            detail or str(getattr(figure, "detail", "") or ""),
        )


@dataclass
class EvalResult:
    """Everything measured for one candidate on one target.

    Parameters
    ----------
    config_json:
        The ``CompressionConfig`` as JSON (the exact thing that was measured).
    digest:
        ``CompressionConfig.digest()``; with task hash, target and firmware build id it keys the cache.
    figures:
        Name → ``FigureRecord`` (see the constants in this module); ``quality`` is always present
        unless ``error`` is set.
    layers:
        Per-layer choices as measured (name, kept units, sparsity, rank, ...) for the report.
    timings:
        Wall-clock seconds per stage (compress, finetune, export, measure, ...).
    error:
        Set when the candidate could not be built or run (e.g. an ``ExportError``); such a candidate
        is infeasible and the message is the recorded reason.
    artifacts:
        Where the candidate's exported files are (``dir``: folder holding ``model.tflite``,
        ``model_data.c/.h``, ``manifest.json``), so the report can export the best one.
    samples:
        Split → per-window (or per-episode) quality samples (``Quality.samples``) behind ``quality``,
        so its interval and its paired drop against the FP32 model can be computed without re-running it.
    fidelity:
        The multi-fidelity rung it passed or stopped at (``host/search/fidelity.py``): ``step``, ``steps``,
        ``quality`` (int8 TFLM validation quality there), ``drop``, ``threshold`` and ``stopped`` (1.0 or 0.0).
    """

    config_json: str
    digest: str
    figures: dict[str, FigureRecord] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    fidelity: dict[str, float] = field(default_factory=dict)

    def value(self, name: str) -> float:
        fig = self.figures.get(name)
        return math.nan if fig is None else fig.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "config_json": self.config_json,
            "digest": self.digest,
            "figures": {k: v.to_dict() for k, v in self.figures.items()},
            "layers": self.layers,
            "timings": self.timings,
            "error": self.error,
            "artifacts": self.artifacts,
            "samples": self.samples,
            **({"fidelity": self.fidelity} if self.fidelity else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalResult:
        return cls(
            config_json=d["config_json"],
            digest=d["digest"],
            figures={k: FigureRecord.from_dict(v) for k, v in d.get("figures", {}).items()},
            layers=list(d.get("layers", [])),
            timings=dict(d.get("timings", {})),
            error=d.get("error"),
            artifacts=dict(d.get("artifacts", {})),
            samples={k: [float(x) for x in v] for k, v in (d.get("samples") or {}).items()},
            fidelity={k: float(v) for k, v in (d.get("fidelity") or {}).items()},
        )


@dataclass(frozen=True)
class EvaluatorIdentity:
    """What, besides the config digest, decides whether a cached measurement still applies.

    Parameters
    ----------
    task_hash:
        ``Task.content_hash()``.
    target:
        Canonical target name, e.g. ``"qemu:m4"`` or ``"serial:cortex-m4"``.
    build_id:
        The firmware build id reported by the device's HELLO.
    """

    task_hash: str
    target: str
    build_id: str


@runtime_checkable
class Evaluator(Protocol):
    """The seam every strategy shares: one candidate config in, one measured result out.

    Implementations: ``edgeprune.host.search.evaluator.HardwareEvaluator`` (the real device path).
    """

    def identity(self) -> EvaluatorIdentity: ...

    def evaluate(self, config: Any) -> EvalResult: ...

    def close(self) -> None: ...
