"""The results table of the studies (quality, sparsity, params, MACs, latency, energy, flash, RAM),
every cell with its source, as rows of text shared by the terminal (rich) and the HTML report."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table
from rich.text import Text

from edgeprune.host.search.store import StoredEvaluation
from edgeprune.host.search.types import (
    ENERGY_UJ,
    FLASH_BYTES,
    HOST_ENERGY_UJ,
    LATENCY_COUNT,
    LATENCY_MS,
    MACS,
    PARAMS,
    QUALITY,
    RAM_BYTES,
    SPARSITY,
    FigureRecord,
)

COLUMNS: tuple[tuple[str, str], ...] = (
    (QUALITY, "quality"),
    (SPARSITY, "sparsity"),
    (PARAMS, "params"),
    (MACS, "MACs"),
    (LATENCY_COUNT, "latency (count)"),
    (LATENCY_MS, "latency ms"),
    (ENERGY_UJ, "energy µJ"),
    (HOST_ENERGY_UJ, "host µJ"),
    (FLASH_BYTES, "flash KiB"),
    (RAM_BYTES, "RAM KiB"),
)


def fmt_figure(name: str, fig: FigureRecord | None) -> str:
    """``value unit [source]`` with bytes shown in KiB; ``—`` when absent."""
    if fig is None or not math.isfinite(fig.value):
        return "—" if fig is None else f"absent [{fig.source}]"
    v = fig.value
    if name in (FLASH_BYTES, RAM_BYTES):
        return f"{v / 1024:.1f} [{fig.source}]"
    if name == LATENCY_COUNT:
        return f"{v:,.0f} {fig.unit} [{fig.source}]"
    if name in (PARAMS, MACS):
        return f"{v:,.0f} [{fig.source}]"
    if name == SPARSITY:
        return f"{100 * v:.1f}% [{fig.source}]"
    if name == QUALITY:
        return f"{v:.4g} {fig.unit} [{fig.source}]"
    return f"{v:.4g} [{fig.source}]"


def header(metric: str) -> list[str]:
    """Quality is selected on the validation split; the test figure is measured once, after the search."""
    cols = [f"val {metric}" if k == QUALITY else label for k, label in COLUMNS]
    return ["#", "strategy", "origin", *cols[:1], f"test {metric} (once, at the end)", *cols[1:], "count/MAC", "verdict"]


def per_mac(ev: StoredEvaluation) -> str:
    """Measured count per MAC: what the MAC proxy misses (gate arithmetic, per-op and per-step overhead)."""
    lat, macs = ev.result.figures.get(LATENCY_COUNT), ev.result.figures.get(MACS)
    if lat is None or macs is None or not (math.isfinite(lat.value) and macs.value > 0):
        return "—"
    return f"{lat.value / macs.value:.2f} [{lat.source}]"


def fmt_test(test: dict[str, Any] | None) -> str:
    if not test:
        return "—"
    return f"{float(test['value']):.4g} {test.get('metric', '')} [tflm]"


def row(label: str, ev: StoredEvaluation, test: dict[str, Any] | None = None) -> list[str]:
    figs = [fmt_figure(k, ev.result.figures.get(k)) for k, _ in COLUMNS]
    cells = [label, ev.strategy, ev.origin, figs[0], fmt_test(test), *figs[1:], per_mac(ev)]
    cells.append("feasible" if ev.feasible else ev.reason)
    return cells


def rows(
    baseline: StoredEvaluation | None, shown: list[StoredEvaluation], test: dict[str, Any] | None = None
) -> list[list[str]]:
    test = test or {}
    out = []
    if baseline is not None:
        out.append(row("baseline", baseline, test.get(baseline.digest)))
    out += [row(str(ev.seq), ev, test.get(ev.digest)) for ev in shown]
    return out


def rich_table(
    title: str,
    metric: str,
    baseline: StoredEvaluation | None,
    shown: list[StoredEvaluation],
    test: dict[str, Any] | None = None,
) -> object:
    """A ``rich.table.Table`` of ``rows``; the caller prints it with a ``rich.console.Console``."""
    table = Table(title=title, show_lines=False, header_style="bold")
    for h in header(metric):
        table.add_column(h, overflow="fold")
    for r in rows(baseline, shown, test):
        # Text, not markup: "[qemu]" must print as is, not be read as a style tag.
        table.add_row(*(Text(c) for c in r))
    return table
