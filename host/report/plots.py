"""PNG plots of one or several runs (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.host.report.describe import describe_config
from edgeprune.host.report.load import RunData
from edgeprune.host.search.front import unique_candidates
from edgeprune.host.search.store import StoredEvaluation
from edgeprune.host.search.types import (
    ENERGY_UJ,
    FLASH_BYTES,
    LATENCY_COUNT,
    MACS,
    QUALITY,
    UNMEASURED_ORIGINS,
)

PANELS = ((LATENCY_COUNT, "latency"), (FLASH_BYTES, "flash"), (ENERGY_UJ, "energy"), (MACS, "MACs"))
DPI = 90
#: Radius in pixels of a point's hover/click area in the report's image map.
AREA_RADIUS = 6


def _plt() -> Any:
    # Deferred on purpose: matplotlib takes a second to import and only the report draws.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=DPI, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def _unit_source(runs: list[RunData], name: str) -> str:
    for run in runs:
        for ev in run.candidates():
            fig = ev.result.figures.get(name)
            if fig is not None:
                return f"{fig.unit} [{fig.source}]"
    return ""


@dataclass(frozen=True)
class PointArea:
    """Where one plotted candidate lies in the saved PNG, for the report's image map.

    Parameters
    ----------
    x, y:
        Pixel centre in the PNG (origin top-left, as HTML image maps count).
    title:
        The hover text: the candidate's number, origin, config in words and validation quality.
    href:
        Anchor of the candidate's row in the report (``#cand-<run>-<seq>``).
    """

    x: int
    y: int
    title: str
    href: str


def point_title(run: RunData, ev: StoredEvaluation) -> str:
    """Hover text of a plotted candidate: number, origin, config in words, validation quality, verdict."""
    q = ev.result.figures.get(QUALITY)
    qual = "—" if q is None else f"{q.value:.4g} [{q.source}]"
    verdict = "feasible" if ev.feasible else (ev.reason or "infeasible")
    where = {"host": "screened on the host", "stopped": "stopped part-way through fine-tuning"}.get(ev.origin, ev.origin)
    return (f"#{ev.seq} ({where}): {describe_config(ev.result.config_json, ev.result.layers)}; "
            f"val {run.metric} {qual}; {verdict}")


def _finite(evs: list[StoredEvaluation], name: str) -> list[tuple[StoredEvaluation, float, float]]:
    """The candidates that have both the plotted figure and quality (a host-screened one has no latency)."""
    out = []
    for e in evs:
        x, y = e.result.value(name), e.result.value(QUALITY)
        if math.isfinite(x) and math.isfinite(y):
            out.append((e, x, y))
    return out


def _groups(run: RunData) -> list[tuple[str, list[StoredEvaluation], dict[str, Any]]]:
    """Every evaluated candidate of a run, in the groups the plot draws differently."""
    front = {p.evaluation.digest for p in run.front}
    cands = [e for e in unique_candidates(run.evaluations) if e.result.error is None]
    host = [e for e in cands if e.origin in UNMEASURED_ORIGINS]
    measured = [e for e in cands if e.origin not in UNMEASURED_ORIGINS]
    return [
        ("feasible", [e for e in measured if e.feasible and e.digest not in front],
         {"marker": "o", "facecolors": "none", "alpha": 0.7, "s": 18}),
        ("infeasible", [e for e in measured if not e.feasible], {"marker": "x", "alpha": 0.6, "s": 20}),
        ("screened on host, not measured", host, {"marker": "s", "facecolors": "none", "alpha": 0.5, "s": 16}),
    ]


def plot_front(runs: list[RunData], path: Path) -> Path:
    """Quality against measured latency, flash, energy and the MAC proxy (see ``plot_front_mapped``)."""
    return plot_front_mapped(runs, path)[0]


def plot_front_mapped(runs: list[RunData], path: Path) -> tuple[Path, list[PointArea]]:
    """Every evaluated candidate against each cost, the front joined and labelled with its numbers.

    Feasible candidates are hollow circles, infeasible ones ×, host-screened ones (quality from TFLM, never
    measured on the device) hollow squares on the panels where they have the figure (the MAC proxy), the
    baseline a star. Returns the PNG and where each point landed, for the report's hover tooltips.
    """
    plt = _plt()
    ncols = 2
    nrows = math.ceil(len(PANELS) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.9 * nrows), squeeze=False, dpi=DPI)
    metric = runs[0].metric
    placed: list[tuple[Any, float, float, str, str]] = []
    for ax, (name, label) in zip(axes.flat, PANELS, strict=False):
        for i, run in enumerate(runs):
            color = f"C{i}"
            for kind, evs, style in _groups(run):
                pts = _finite(evs, name)
                if not pts:
                    continue
                colour = {"edgecolors": color} if style.get("facecolors") == "none" else {"color": color}
                ax.scatter([x for _, x, _ in pts], [y for _, _, y in pts], label=f"{kind} ({run.label})",
                           **style, **colour)
                placed += [(ax, x, y, point_title(run, e), f"#{run.anchor(e.seq)}") for e, x, y in pts]
            front = sorted(_finite([p.evaluation for p in run.front], name), key=lambda t: t[1])
            ax.plot([x for _, x, _ in front], [y for _, _, y in front], "o-", color=color, ms=7, mec="k", mew=0.8,
                    label=f"front ({run.label}, {len(run.front)})")
            for e, x, y in front:
                ax.annotate(f"#{e.seq}", (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7)
                placed.append((ax, x, y, "front " + point_title(run, e), f"#{run.anchor(e.seq)}"))
            if run.baseline is not None:
                base = _finite([run.baseline], name)
                ax.scatter([x for _, x, _ in base], [y for _, _, y in base], marker="*", s=140, color=color,
                           edgecolor="k", label=f"baseline ({run.label})")
        ax.set_xlabel(f"{label}: {_unit_source(runs, name)} (log scale)")
        # Costs span orders of magnitude (a 28x search puts every front point in one corner of a linear axis).
        if any(x > 0 for a, x, _, _, _ in placed if a is ax):
            ax.set_xscale("log")
        ax.set_ylabel(f"validation {metric}")
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[len(PANELS):]:
        ax.set_visible(False)
    # The legend gathers every panel's kinds: host-screened points appear only on the MAC panel.
    by_label: dict[str, Any] = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            by_label.setdefault(lab, h)
    labels, handles = list(by_label), list(by_label.values())
    # Inside the first panel, where the plot's own bounds keep it whole (a figure legend below was clipped).
    axes.flat[0].legend(handles, labels, fontsize=6, loc="best", framealpha=0.85)
    fig.suptitle(f"Every evaluated candidate: validation {metric} against each cost "
                 "(front joined and numbered, ★ baseline, × infeasible, □ screened on the host)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.canvas.draw()
    height = fig.bbox.height
    areas = []
    for ax, x, y, title, href in placed:
        px, py = ax.transData.transform((x, y))
        areas.append(PointArea(round(float(px)), round(float(height - py)), title, href))
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=DPI)
    os.replace(tmp, path)
    plt.close(fig)
    return path, areas


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
    ax.set_ylabel("best feasible reward (from validation quality)")
    ax.grid(alpha=0.3)
    if runs:
        ax.legend(fontsize=7)
    ax.set_title("Strategy comparison", fontsize=10)
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_layers(run: RunData, path: Path, top: int = 5) -> Path:
    """Per-layer prune / sparsity / rank choices of the best front configs (by reward)."""
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
