"""A self-contained ``report.html``: tables with sources and the PNG plots inlined as base64."""

from __future__ import annotations

import base64
import html
import json
import os
import time
from pathlib import Path
from typing import Any

from edgeprune.host.report import table as tbl
from edgeprune.host.report.load import RunData

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1400px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f2f2f2} td:nth-child(2),td:nth-child(3),td:last-child{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:0.5em 0} code{background:#f5f5f5;padding:0 3px}
.note{color:#555;font-size:12px}
"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _table(head: list[str], body: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><tr>{h}</tr>{rows}</table>"


def _kv(d: dict[str, Any]) -> str:
    return _table(["option", "value"], [[k, json.dumps(v) if not isinstance(v, str) else v] for k, v in d.items()])


def _failures(cands: list[Any]) -> list[str]:
    """Failed evaluations counted by kind: device faults (transient, re-measured if proposed again) and the rest."""
    from edgeprune.bench.link import FAULT_KINDS, fault_kind

    failed = [e for e in cands if e.result.error is not None]
    if not failed:
        return []
    kinds: dict[str, list[Any]] = {}
    for e in failed:
        kinds.setdefault(fault_kind(e.result.error) or "candidate (build/export/agreement)", []).append(e)
    order = [k for k in FAULT_KINDS if k in kinds] + [k for k in kinds if k not in FAULT_KINDS]
    body = [[k, str(len(kinds[k])), kinds[k][0].result.error or ""] for k in order]
    return ["<h3>Failed evaluations by kind</h3>", _table(["kind", "evaluations", "first reason"], body)]


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
        _kv(run.options),
        "<h3>Pareto front</h3>",
        _table(tbl.header(run.metric), tbl.rows(run.baseline, [p.evaluation for p in run.front], run.test_quality)),
    ]
    if best_info:
        parts += ["<h3>Best candidate (highest reward, feasible)</h3>", _kv(best_info)]
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
) -> Path:
    """Write the report atomically and return its path."""
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>Generated {time.strftime('%Y-%m-%d %H:%M:%S')}. Every number carries its source in "
        "brackets: <code>qemu</code> = instruction count under QEMU -icount (a lower bound on cycles), "
        "<code>board</code> = measured on silicon, <code>model</code> = energy from the cited per-cycle table, "
        "<code>host</code> = CodeCarbon on the host, <code>build</code> = deploy build sizes, "
        "<code>proxy</code> = computed from the model's shapes. Figures of different sources are never added.</p>",
    ]
    body += [_img(p) for p in images]
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
