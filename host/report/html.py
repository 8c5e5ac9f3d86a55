"""A self-contained ``report.html``: tables with sources and the PNG plots inlined as base64."""

from __future__ import annotations

import base64
import html
import json
import os
import time
from pathlib import Path
from typing import Any

from edgeprune.bench.link import FAULT_KINDS, fault_kind
from edgeprune.host.report import table as tbl
from edgeprune.host.report.describe import LAYER_HEADER, describe_config, global_choices, layer_rows
from edgeprune.host.report.headline import headline
from edgeprune.host.report.load import RunData
from edgeprune.host.report.plots import AREA_RADIUS, PointArea
from edgeprune.host.report.quality import INTERVAL_NOTE, drop_unit_short, fmt_drop, fmt_score
from edgeprune.host.search.front import unique_candidates
from edgeprune.host.search.store import StoredEvaluation, StoreError
from edgeprune.host.search.timing import run_account
from edgeprune.host.search.types import (
    ENERGY_UJ,
    FLASH_BYTES,
    LATENCY_COUNT,
    MACS,
    QUALITY,
    UNMEASURED_ORIGINS,
)

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1400px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f2f2f2} td:nth-child(2),td:nth-child(3),td:last-child{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:0.5em 0} code{background:#f5f5f5;padding:0 3px}
.note{color:#555;font-size:12px} img.mapped{max-width:none} tr:target{background:#fff3b0}
"""


def _img(path: Path, areas: list[PointArea] | None = None) -> str:
    """The PNG inlined; with ``areas``, an image map whose points show the candidate on hover and link to its row."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    if not areas:
        return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'
    name = f"map-{path.stem}"
    spots = "".join(
        f'<area shape="circle" coords="{a.x},{a.y},{AREA_RADIUS}" href="{html.escape(a.href)}" '
        f'title="{html.escape(a.title)}" alt="{html.escape(a.title.partition(" (")[0])}">'
        # The first area under the pointer wins: front points before the others they may overlap.
        for a in sorted(areas, key=lambda a: not a.title.startswith("front "))
    )
    # No scaling (class "mapped"): image-map coordinates are in the PNG's own pixels.
    return (f'<img class="mapped" alt="{html.escape(path.name)}" usemap="#{name}" '
            f'src="data:image/png;base64,{data}"><map name="{name}">{spots}</map>')


def _table(head: list[str], body: list[list[str]], ids: list[str] | None = None) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    ids = ids or [""] * len(body)
    rows = "".join(
        (f"<tr id='{html.escape(i)}'>" if i else "<tr>") + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
        for r, i in zip(body, ids, strict=True)
    )
    return f"<table><tr>{h}</tr>{rows}</table>"


def _kv(d: dict[str, Any], head: tuple[str, str] = ("option", "value")) -> str:
    return _table(list(head), [[k, json.dumps(v) if not isinstance(v, str) else v] for k, v in d.items()])


def set_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options a user (or a default) actually set: ``None``, empty strings and empty collections left out."""
    return {k: v for k, v in options.items() if v is not None and not (isinstance(v, str | dict | list | tuple) and not v)}


def _quality(ev: StoredEvaluation) -> str:
    return tbl.fmt_figure(QUALITY, ev.result.figures.get(QUALITY))


def _best(run: RunData, info: dict[str, Any]) -> list[str]:
    """The best candidate: its quality on both splits, its config per layer, then where its files went."""
    rest = {k: v for k, v in info.items() if k != "config"}
    parts = ["<h3>Named best point</h3>"]
    ev = run.best
    if ev is not None:
        test = run.test_quality.get(ev.digest)
        q = run.quality(ev)
        unit = drop_unit_short(run.metric)
        parts.append(_table(
            ["candidate", f"val {run.metric} [95 % CI] (selected on it)", f"val drop vs FP32, {unit} (paired)",
             f"test {run.metric} [95 % CI] (once, at the end)", f"test drop vs FP32, {unit} (paired)", "config"],
            [[f"#{ev.seq}", fmt_score(q.val, ev.result.value(QUALITY)), fmt_drop(q.val_drop),
              fmt_score(q.test, None if test is None else float(test["value"])), fmt_drop(q.test_drop),
              describe_config(ev.result.config_json, ev.result.layers)]],
        ))
        head = headline(run)
        if head is not None:
            said = " ".join(line.strip() for line in head.lines()[2:])
            parts.append(f"<p>{html.escape(head.rule or 'Chosen as the front point with the largest min(instruction, flash) ratio')}. "
                         f"{html.escape(said)}</p>")
        parts.append(f"<p class='note'>{html.escape(INTERVAL_NOTE)}</p>")
    config = info.get("config")
    if config is not None:
        layers = ev.result.layers if ev is not None else None
        parts += [
            f"<p>Whole model: {html.escape(global_choices(config))}.</p>",
            _table(LAYER_HEADER, layer_rows(config, layers)),
        ]
    parts.append(_kv(rest, ("field", "value")))
    return parts


def _load_time(ev: StoredEvaluation) -> str:
    """Seconds the model took to reach the board (the link's cost), "skipped" when the board already held it."""
    load_s = (ev.result.timings or {}).get("model-load")
    if load_s is None:
        return "—"
    return "skipped (held)" if load_s == 0 else f"{load_s:.2f}"


def _candidates(run: RunData) -> list[str]:
    """Every evaluated candidate in words; the host-screened ones apart (their quality only, from TFLM)."""
    cands = [e for e in unique_candidates(run.evaluations)]
    measured = [e for e in cands if e.origin not in UNMEASURED_ORIGINS]
    host = [e for e in cands if e.origin in UNMEASURED_ORIGINS]
    front = {p.evaluation.digest for p in run.front}

    def verdict(e: StoredEvaluation) -> str:
        if e.result.error is not None:
            return f"failed: {e.result.error}"
        return ("front, " if e.digest in front else "") + ("feasible" if e.feasible else e.reason)

    parts = [
        "<h3>Every candidate measured on the device</h3>",
        _table(
            ["#", "origin", "config", f"val {run.metric}", "latency (count)", "flash KiB", "energy µJ", "load s",
             "verdict"],
            [[str(e.seq), e.origin, describe_config(e.result.config_json, e.result.layers), _quality(e),
              *(tbl.fmt_figure(k, e.result.figures.get(k)) for k in (LATENCY_COUNT, FLASH_BYTES, ENERGY_UJ)),
              _load_time(e), verdict(e)] for e in measured],
            [run.anchor(e.seq) for e in measured],
        ),
    ]
    if host:
        parts += [
            "<h3>Screened on the host (or stopped part-way through fine-tuning), never measured on the device</h3>",
            "<p class='note'>Their quality comes from the int8 model in TFLM (bit-exact with the device); they have no "
            "latency, flash or energy, so they appear only on the MAC panel of the plot.</p>",
            _table(
                ["#", "origin", "config", f"val {run.metric}", "MACs", "verdict"],
                [[str(e.seq), e.origin, describe_config(e.result.config_json, e.result.layers), _quality(e),
                  tbl.fmt_figure(MACS, e.result.figures.get(MACS)), verdict(e)] for e in host],
                [run.anchor(e.seq) for e in host],
            ),
        ]
    return parts


def _failures(cands: list[Any]) -> list[str]:
    """Failed evaluations counted by kind: device faults (transient, re-measured if proposed again) and the rest."""
    failed = [e for e in cands if e.result.error is not None]
    if not failed:
        return []
    kinds: dict[str, list[Any]] = {}
    for e in failed:
        kinds.setdefault(fault_kind(e.result.error) or "candidate (build/export/agreement)", []).append(e)
    order = [k for k in FAULT_KINDS if k in kinds] + [k for k in kinds if k not in FAULT_KINDS]
    body = [[k, str(len(kinds[k])), kinds[k][0].result.error or ""] for k in order]
    return ["<h3>Failed evaluations by kind</h3>", _table(["kind", "evaluations", "first reason"], body)]


def _time_section(run: RunData) -> list[str]:
    """Where the wall time went (``host/search/timing.py``): per stage in total and per candidate."""
    try:
        acc = run_account(run.run_dir)
    except StoreError:
        return []
    if not acc.per_candidate:
        return []
    stages = acc.ordered_stages()
    head = f"<p>{html.escape(acc.lines()[0])}</p>"
    total = _table(["stage", "total s", "mean s per candidate"],
                   [[st, f"{acc.stages.get(st, 0.0):.1f}", f"{acc.mean(st):.2f}"] for st in stages])
    per = _table(["#", "origin", *stages],
                 [[str(seq), origin, *(f"{secs.get(st, 0.0):.1f}" for st in stages)]
                  for seq, origin, secs in acc.per_candidate])
    return ["<h3>Where the time went</h3>", head, total, "<h4>Per candidate (s)</h4>", per]


def _front_rows(run: RunData) -> list[list[str]]:
    shown = [p.evaluation for p in run.front]
    if run.best is not None and run.best.digest not in {e.digest for e in shown}:
        shown.append(run.best)
    evs = ([run.baseline] if run.baseline is not None else []) + shown
    rows = tbl.rows(run, shown)
    return [[*r, describe_config(e.result.config_json, e.result.layers)] for r, e in zip(rows, evs, strict=True)]


def _run_section(run: RunData, best_info: dict[str, Any] | None) -> str:
    cands = run.candidates()
    device = sum(1 for e in cands if e.counted)
    cached = sum(1 for e in cands if e.origin == "cache")
    repeats = sum(1 for e in cands if e.origin == "run")
    feasible = sum(1 for e in cands if e.feasible)
    parts = [
        f"<h2>{html.escape(run.label)}</h2>",
        f"<p>{len(cands)} evaluations: {device} measured on the device, {cached} from the global cache, "
        f"{repeats} re-proposals answered from this run; {feasible} feasible; front of {len(run.front)}.</p>",
        "<h3>Search options (those set)</h3>",
        _kv(set_options(run.options)),
        "<h3>Pareto front</h3>",
        _table([*tbl.header(run.metric, drop_unit_short(run.metric)), "config"], _front_rows(run)),
    ]
    if best_info:
        parts += _best(run, best_info)
    parts += _candidates(run)
    parts += _time_section(run)
    parts += _failures(cands)
    infeasible = [e for e in cands if not e.feasible]
    if infeasible:
        parts += [
            "<h3>Infeasible candidates and why</h3>",
            _table(["#", "strategy", "reason"], [[str(e.seq), e.strategy, e.reason] for e in infeasible]),
        ]
    return "\n".join(parts)


def write_html(
    path: Path,
    title: str,
    runs: list[RunData],
    images: list[Path],
    best_infos: dict[str, dict[str, Any]],
    maps: dict[Path, list[PointArea]] | None = None,
) -> Path:
    """Write the report atomically and return its path (``maps``: hover areas of an image, by its path)."""
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>Generated {time.strftime('%Y-%m-%d %H:%M:%S')}. Every number carries its source in "
        "brackets: <code>qemu</code> = instruction count under QEMU -icount (a lower bound on cycles), "
        "<code>board</code> = measured on silicon, <code>model</code> = energy from the cited per-cycle table, "
        "<code>host</code> = CodeCarbon on the host, <code>build</code> = deploy build sizes, "
        "<code>proxy</code> = computed from the model's shapes, <code>tflm</code> = the int8 model in TFLM on the host. "
        "Figures of different sources are never added. Quality is on the validation split (what every selection "
        "used) unless a column says test; the test split is scored once, after the search. Hover a point of the "
        "plot for its config; click it for its row.</p>",
    ]
    body += [_img(p, (maps or {}).get(p)) for p in images]
    for run in runs:
        body.append(_run_section(run, best_infos.get(str(run.run_dir))))
    doc = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(doc, encoding="utf-8")
    os.replace(tmp, path)
    return path
