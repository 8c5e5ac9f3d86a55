"""The results table of the studies (quality, sparsity, params, MACs, weight bytes, latency, energy, flash, RAM),
every cell with its source, as rows of text shared by the terminal (rich) and the HTML report."""

from __future__ import annotations

import math
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from edgeprune.host.report.load import RunData
from edgeprune.host.report.quality import drop_unit_short, fmt_drop, fmt_score
from edgeprune.host.search.rejections import baseline_verdict
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
    WEIGHT_BYTES,
    FigureRecord,
)

COLUMNS: tuple[tuple[str, str], ...] = (
    (QUALITY, "quality"),
    (SPARSITY, "sparsity"),
    (PARAMS, "params"),
    (MACS, "MACs"),
    (WEIGHT_BYTES, "weights KiB"),
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
    if name in (FLASH_BYTES, RAM_BYTES, WEIGHT_BYTES):
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


def header(metric: str, unit: str = "pp") -> list[str]:
    """The wide table (report.html, ``--wide``). Quality is selected on the validation split; the test figure is
    measured once, after the search. Every quality and drop carries its 95 % interval in brackets."""
    cols = [f"val {metric} [95 % CI]" if k == QUALITY else label for k, label in COLUMNS]
    return ["#", "strategy", "origin", *cols[:1], f"val drop vs FP32, {unit} (paired)",
            f"test {metric} [95 % CI] (once, at the end)", f"test drop vs FP32, {unit} (paired)", *cols[1:],
            "count/MAC", "verdict"]


def per_mac(ev: StoredEvaluation, tag: bool = True) -> str:
    """Measured count per MAC: what the MAC proxy misses (gate arithmetic, per-op and per-step overhead)."""
    lat, macs = ev.result.figures.get(LATENCY_COUNT), ev.result.figures.get(MACS)
    if lat is None or macs is None or not (math.isfinite(lat.value) and macs.value > 0):
        return "—"
    return f"{lat.value / macs.value:.2f}" + (f" [{lat.source}]" if tag else "")


def fmt_test(test: dict[str, Any] | None) -> str:
    if not test:
        return "—"
    return f"{float(test['value']):.4g} {test.get('metric', '')} [tflm]"


def _verdict(ev: StoredEvaluation, named: str | None) -> str:
    if named is not None and ev.digest == named:
        return "named best"
    return "feasible" if ev.feasible else ev.reason


def row(label: str, ev: StoredEvaluation, run: RunData | None = None) -> list[str]:
    """One wide row; without ``run`` the quality figures have no intervals."""
    figs = [fmt_figure(k, ev.result.figures.get(k)) for k, _ in COLUMNS]
    if run is not None:
        q = run.quality(ev)
        test = run.test_quality.get(ev.digest)
        val = fmt_score(q.val, ev.result.value(QUALITY))
        cells = [label, ev.strategy, ev.origin, val, fmt_drop(q.val_drop),
                 fmt_score(q.test, None if test is None else float(test["value"])), fmt_drop(q.test_drop)]
        named = run.best.digest if run.best is not None else None
    else:
        cells = [label, ev.strategy, ev.origin, figs[0], "—", "—", "—"]
        named = None
    return [*cells, *figs[1:], per_mac(ev), _verdict(ev, named)]


def rows(run: RunData, shown: list[StoredEvaluation]) -> list[list[str]]:
    """The baseline (as judged against the run's limits) and ``shown``, wide."""
    base = baseline_verdict(run)
    out = [row("baseline", base, run)] if base is not None else []
    return out + [row(str(ev.seq), ev, run) for ev in shown]


# The compact terminal table: what fits 120 columns. Units and sources go in the header (a cell is tagged
# only when its source differs from the column's), accuracy in percent so that drops read in pp beside it.
COMPACT = ((LATENCY_COUNT, "latency"), (FLASH_BYTES, "flash KiB"), (RAM_BYTES, "RAM KiB"))


def _column_source(name: str, evs: list[StoredEvaluation]) -> str:
    sources = [ev.result.figures[name].source for ev in evs if name in ev.result.figures]
    return max(set(sources), key=sources.count) if sources else ""


def _compact_score(iv: Any, value: float | None, metric: str) -> str:
    if metric == "accuracy":
        if iv is not None:
            return f"{100 * iv.value:.1f} [{100 * iv.lo:.1f},{100 * iv.hi:.1f}]"
        return "—" if value is None or not math.isfinite(value) else f"{100 * value:.1f}"
    return fmt_score(iv, value)


def _compact_drop(iv: Any) -> str:
    return "—" if iv is None else f"{iv.value:+.1f} [{iv.lo:.1f},{iv.hi:.1f}]"


def compact_header(run: RunData, evs: list[StoredEvaluation]) -> list[str]:
    unit = drop_unit_short(run.metric)
    q = "acc %" if run.metric == "accuracy" else run.metric
    lat = next((ev.result.figures[LATENCY_COUNT].unit for ev in evs if LATENCY_COUNT in ev.result.figures), "count")
    heads = {LATENCY_COUNT: {"instructions": "instr", "cycles": "cycles"}.get(lat, lat), FLASH_BYTES: "flash KiB",
             RAM_BYTES: "RAM KiB"}
    return ["#", f"val {q}", f"val drop {unit}", f"test {q}", f"test drop {unit}",
            *(heads[k] for k, _ in COMPACT), "per MAC", "verdict"]


def compact_legend(run: RunData, evs: list[StoredEvaluation]) -> str:
    """The line under the compact table: what the brackets are and where each cost column comes from."""
    lat = next((ev.result.figures[LATENCY_COUNT].unit for ev in evs if LATENCY_COUNT in ev.result.figures), "latency")
    labels = {LATENCY_COUNT: lat, FLASH_BYTES: "flash", RAM_BYTES: "RAM"}
    sources = ", ".join(f"{labels[k]} [{_column_source(k, evs)}]" for k, _ in COMPACT if _column_source(k, evs))
    unit = drop_unit_short(run.metric)
    return (f"[lo,hi] = 95 % interval; drops are vs the FP32 model on the same windows, in {unit} (positive = worse); "
            f"test scored once, after the search. Sources: {sources}; a cell from another source is tagged. "
            "--wide shows every column.")


def compact_rows(run: RunData, shown: list[StoredEvaluation]) -> list[list[str]]:
    base = baseline_verdict(run)
    evs = ([base] if base is not None else []) + shown
    sources = {k: _column_source(k, evs) for k, _ in COMPACT}
    named = run.best.digest if run.best is not None else None
    out = []
    for ev in evs:
        q = run.quality(ev)
        test = run.test_quality.get(ev.digest)
        cells = [
            "base" if ev.kind == "baseline" else str(ev.seq),
            _compact_score(q.val, ev.result.value(QUALITY), run.metric), _compact_drop(q.val_drop),
            _compact_score(q.test, None if test is None else float(test["value"]), run.metric),
            _compact_drop(q.test_drop),
        ]
        for k, _ in COMPACT:
            fig = ev.result.figures.get(k)
            if fig is None or not math.isfinite(fig.value):
                cells.append("—")
                continue
            text = f"{fig.value:,.0f}" if k == LATENCY_COUNT else f"{fig.value / 1024:.1f}"
            cells.append(text if fig.source == sources[k] else f"{text} [{fig.source}]")
        cells += [per_mac(ev, tag=False), _verdict(ev, named)]
        out.append(cells)
    return out


def rich_table(title: str, run: RunData, shown: list[StoredEvaluation], wide: bool = False) -> object:
    """A ``rich.table.Table`` of the run's baseline and ``shown``: compact (fits 120 columns) or ``wide``."""
    if wide:
        head, body = header(run.metric, drop_unit_short(run.metric)), rows(run, shown)
        table = Table(title=title, show_lines=False, header_style="bold")
    else:
        evs = ([run.baseline] if run.baseline is not None else []) + shown
        head, body = compact_header(run, evs), compact_rows(run, shown)
        table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False, header_style="bold",
                      caption=Text(compact_legend(run, evs)), caption_justify="left")
    for h in head:
        table.add_column(h, overflow="fold")
    for r in body:
        # Text, not markup: "[qemu]" must print as is, not be read as a style tag.
        table.add_row(*(Text(c) for c in r))
    return table
