"""A cheap predictor of a candidate's post-fine-tune quality drop and device cost from its config alone (issue 28,
item 2), fitted on a run's own history, with its error on held-out candidates.

Features: each layer knob's intensity (``bounds.intensity``: prune on the log scale of the kept fraction, sparsity,
rank cut), each layer's weight and activation width (``--mixed-precision``: int4 weights, 16x8, a float32 layer;
constant, so inert, in a run without per-layer precision) and whether the export is int8 — all known before
anything is compressed. Model: distance-weighted
k-nearest neighbours (``K``) in that space, which needs no tuning and no more history than a short run has.
Held-out error: leave-one-out over the run's candidates whose quality (TFLM or device: bit-exact) or instruction
count was measured; the run summary and report print it.

What it is used for: reporting only. Screening proposals on it before fine-tuning would drop a feasible candidate
whenever its error is comparable to the limit — on the default search its leave-one-out error on the quality
drop is several times the 1 pp limit (BENCHMARKS.md, "A search that costs minutes") — so no proposal is screened
and no agent (RL or other) is ever given a predicted value in place of a measured one: every reward stays measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from edgeprune.host.compress.config import CompressionConfig
from edgeprune.host.search.bounds import KINDS, intensity
from edgeprune.host.search.objective import DEFAULT_MAX_ACC_DROP, Objective, drop_unit
from edgeprune.host.search.types import LATENCY_COUNT, QUALITY

#: Neighbours averaged per prediction.
K = 3
#: A layer precision's (weight, activation) widths on one scale (bits / 32): int4 weights are half int8's, 16x8
#: activations twice int8's, a float32 layer both at 32 bits.
WIDTHS = {"int8": (0.25, 0.25), "int4": (0.125, 0.25), "16x8": (0.25, 0.5), "float32": (1.0, 1.0)}


def features(config: Any) -> np.ndarray:
    """A config's feature vector (intensity of every layer knob, every layer's weight and activation width, then
    1.0 for an int8 export)."""
    out = [intensity(kind, {"prune": lc.prune, "sparsity": lc.sparsity, "rank": lc.rank_frac}[kind])
           for lc in config.layers for kind in KINDS]
    out += [w for lc in config.layers for w in WIDTHS[lc.precision or "int8"]]
    out.append(1.0 if config.quantize == "int8" else 0.0)
    return np.asarray(out, dtype=np.float64)


def _knn(x: np.ndarray, y: np.ndarray, q: np.ndarray, k: int = K) -> float:
    d = np.sqrt(((x - q) ** 2).sum(axis=1))
    idx = np.argsort(d, kind="stable")[:k]
    w = 1.0 / (d[idx] + 1e-3)
    return float((w * y[idx]).sum() / w.sum())


@dataclass
class HeldOut:
    """Leave-one-out error of the predictor on a run's history.

    Parameters
    ----------
    n_quality, mae_quality:
        Candidates with a measured quality, and the mean absolute error of the predicted drop (the limit's unit).
    n_cost, mae_cost_pct:
        Candidates measured on the device, and the mean absolute error of the predicted instruction count, %.
    """

    n_quality: int
    mae_quality: float
    n_cost: int
    mae_cost_pct: float

    def line(self, unit: str, limit: float) -> str:
        """The run summary's line."""
        if self.n_quality < K + 1:
            return f"predictor: too few measured candidates ({self.n_quality}) for a held-out error"
        cost = (f", instructions {self.mae_cost_pct:.0f} % over {self.n_cost}" if self.n_cost > K else "")
        return (f"predictor (k-NN on the config, this run's history), leave-one-out mean abs error: quality drop "
                f"{self.mae_quality:.2f} {unit} over {self.n_quality} candidates (limit {limit:g}){cost}; "
                "reported only, no proposal is screened on it")


def held_out(rows: Sequence[Any], drop: Any) -> HeldOut:
    """Leave-one-out error over ``rows`` (stored candidates); ``drop(quality)`` → drop in the limit's unit."""
    qx, qy, cx, cy = [], [], [], []
    seen: set[str] = set()
    for row in rows:
        if getattr(row, "kind", "candidate") != "candidate" or row.origin not in ("device", "host"):
            continue
        if row.result.error is not None or row.digest in seen:
            continue
        seen.add(row.digest)
        f = features(CompressionConfig.from_json(row.result.config_json))
        q = row.result.value(QUALITY)
        if math.isfinite(q):
            qx.append(f)
            qy.append(float(drop(q)))
        c = row.result.value(LATENCY_COUNT)
        if row.origin == "device" and math.isfinite(c) and c > 0:
            cx.append(f)
            cy.append(math.log(c))
    return HeldOut(len(qy), _loo(qx, qy, lambda p, t: abs(p - t)), len(cy),
                   _loo(cx, cy, lambda p, t: 100.0 * abs(math.exp(p - t) - 1.0)))


def _loo(xs: list[np.ndarray], ys: list[float], err: Any) -> float:
    if len(ys) <= K:
        return math.nan
    x, y = np.stack(xs), np.asarray(ys)
    errors = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        errors.append(err(_knn(x[keep], y[keep], x[i]), y[i]))
    return float(np.mean(errors))


def run_line(run: Any) -> str | None:
    """The summary line of a loaded run (``report.load.RunData``), ``None`` without a reference quality."""
    if run.reference_quality is None:
        return None
    ref = SimpleNamespace(reference_quality=run.reference_quality, metric=run.metric,
                          higher_is_better=run.higher_is_better)
    limit = float(run.options.get("max_acc_drop", DEFAULT_MAX_ACC_DROP))
    return held_out(run.evaluations, lambda q: Objective.drop(ref, q)).line(drop_unit(run.metric), limit)  # type: ignore[arg-type]
