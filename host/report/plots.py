"""PNG plots of one or several runs (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from edgeprune.host.report.front import unique_candidates
from edgeprune.host.report.load import RunData
from edgeprune.host.search.types import ENERGY_UJ, FLASH_BYTES, LATENCY_COUNT, QUALITY

PANELS = ((LATENCY_COUNT, "latency"), (FLASH_BYTES, "flash"), (ENERGY_UJ, "energy"))


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def _unit_source(runs: list[RunData], name: str) -> str:
    for run in runs:
        for ev in run.candidates():
            fig = ev.result.figures.get(name)
            if fig is not None:
                return f"{fig.unit} [{fig.source}]"
    return ""


def plot_front(runs: list[RunData], path: Path) -> Path:
    """Quality against measured latency, flash and energy; front points joined, infeasible marked ×."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.6), squeeze=False)
    metric = runs[0].metric
    for ax, (name, label) in zip(axes[0], PANELS, strict=True):
        for i, run in enumerate(runs):
            color = f"C{i}"
            feas = [e for e in unique_candidates(run.evaluations) if e.feasible]
            infeas = [e for e in unique_candidates(run.evaluations) if not e.feasible and e.result.error is None]
            ax.scatter(
                [e.result.value(name) for e in feas],
                [e.result.value(QUALITY) for e in feas],
                s=14,
                color=color,
                alpha=0.45,
            )
            ax.scatter(
                [e.result.value(name) for e in infeas],
                [e.result.value(QUALITY) for e in infeas],
                s=14,
                color=color,
                marker="x",
                alpha=0.35,
            )
            pts = sorted(run.front, key=lambda p: p.evaluation.result.value(name))
            ax.plot(
                [p.evaluation.result.value(name) for p in pts],
                [p.evaluation.result.value(QUALITY) for p in pts],
                "o-",
                color=color,
                ms=5,
                label=f"{run.label} front ({len(run.front)})",
            )
            if run.baseline is not None:
                ax.scatter(
                    [run.baseline.result.value(name)],
                    [run.baseline.result.value(QUALITY)],
                    marker="*",
                    s=120,
                    color=color,
                    edgecolor="k",
                )
        ax.set_xlabel(f"{label}: {_unit_source(runs, name)}")
        ax.set_ylabel(f"{metric} [{_unit_source(runs, QUALITY).split('[')[-1].rstrip(']')}]")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Pareto front (★ baseline, × infeasible)", fontsize=10)
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_strategies(runs: list[RunData], path: Path) -> Path:
    """Best feasible reward so far against device evaluations used, one line per run."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, run in enumerate(runs):
        used, best, xs, ys = 0, -math.inf, [], []
        for ev in run.candidates():
            if ev.counted:
                used += 1
            if ev.feasible and ev.reward is not None:
                best = max(best, ev.reward)
            if math.isfinite(best):
                xs.append(used)
                ys.append(best)
        ax.step(xs, ys, where="post", color=f"C{i}", label=run.label)
    ax.set_xlabel("device evaluations")
    ax.set_ylabel("best feasible reward")
    ax.grid(alpha=0.3)
    if runs:
        ax.legend(fontsize=7)
    ax.set_title("Strategy comparison", fontsize=10)
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_layers(run: RunData, path: Path, top: int = 5) -> Path:
    """Per-layer prune / sparsity / rank choices of the best front configs (by reward)."""
    import json

    import numpy as np

    plt = _plt()
    best = sorted(
        (p.evaluation for p in run.front),
        key=lambda e: -(e.reward if e.reward is not None else -math.inf),
    )[:top]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), squeeze=False)
    fields = (("prune", "structured prune"), ("sparsity", "sparsity"), ("rank_frac", "rank fraction (1 = dense)"))
    names: list[str] = []
    for ev in best:
        for lc in json.loads(ev.result.config_json).get("layers", []):
            if lc["name"] not in names:
                names.append(lc["name"])
    x = np.arange(len(names))
    width = 0.8 / max(1, len(best))
    for ax, (field, title) in zip(axes[0], fields, strict=True):
        for j, ev in enumerate(best):
            layers = {lc["name"]: lc for lc in json.loads(ev.result.config_json).get("layers", [])}
            vals = []
            for n in names:
                v = layers.get(n, {}).get(field)
                vals.append((1.0 if field == "rank_frac" else 0.0) if v is None else float(v))
            ax.bar(x + j * width, vals, width, color=f"C{j}", label=f"#{ev.seq} r={ev.reward:.2f}")
        ax.set_xticks(x + width * (len(best) - 1) / 2, names)
        ax.set_ylim(0, 1)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    if best:
        axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Per-layer choices of the best configs — {run.label}", fontsize=10)
    out = _save(fig, path)
    plt.close(fig)
    return out
