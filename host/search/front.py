"""The Pareto front of a run: quality against measured latency, flash and energy.

Only feasible candidates whose figures were all measured enter the front; each point keeps its
figures with their sources so ``front.json``/``front.csv`` can be read without the store.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
)

# (figure, larger is better); quality's direction comes from the run.
COSTS = (LATENCY_COUNT, FLASH_BYTES, ENERGY_UJ)
# flash/RAM: the deploy library (the objective); image_*: the measurement firmware with the model (host/search/footprint.py).
CSV_FIGURES = (QUALITY, SPARSITY, PARAMS, MACS, LATENCY_COUNT, LATENCY_MS, ENERGY_UJ, HOST_ENERGY_UJ, FLASH_BYTES, RAM_BYTES,
               "image_flash_bytes", "image_ram_bytes")


@dataclass(frozen=True)
class FrontPoint:
    """One non-dominated candidate.

    Parameters
    ----------
    evaluation:
        The stored evaluation.
    objectives:
        Values compared for dominance, quality first, all oriented so smaller is better.
    """

    evaluation: StoredEvaluation
    objectives: tuple[float, ...]


def _objectives(ev: StoredEvaluation, higher_is_better: bool) -> tuple[float, ...] | None:
    q = ev.result.value(QUALITY)
    vals = [-q if higher_is_better else q] + [ev.result.value(k) for k in COSTS]
    if not all(math.isfinite(v) for v in vals):
        return None
    return tuple(vals)


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def unique_candidates(evaluations: list[StoredEvaluation]) -> list[StoredEvaluation]:
    """First record of each config digest among candidates (re-proposals are not new points)."""
    seen: set[str] = set()
    out = []
    for ev in evaluations:
        if ev.kind != "candidate" or ev.digest in seen:
            continue
        seen.add(ev.digest)
        out.append(ev)
    return out


def pareto_front(evaluations: list[StoredEvaluation], higher_is_better: bool) -> list[FrontPoint]:
    """Non-dominated feasible candidates, sorted by quality (best first)."""
    pts = []
    for ev in unique_candidates(evaluations):
        if not ev.feasible:
            continue
        obj = _objectives(ev, higher_is_better)
        if obj is not None:
            pts.append(FrontPoint(ev, obj))
    front = [p for p in pts if not any(_dominates(o.objectives, p.objectives) for o in pts if o is not p)]
    front.sort(key=lambda p: p.objectives)
    return front


def point_dict(ev: StoredEvaluation, test: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "quality_split": "val",
        "test_quality": test,
        "seq": ev.seq,
        "strategy": ev.strategy,
        "digest": ev.digest,
        "origin": ev.origin,
        "reward": ev.reward,
        "config": json.loads(ev.result.config_json),
        "figures": {k: v.to_dict() for k, v in ev.result.figures.items()},
        "layers": ev.result.layers,
    }


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


INTERVAL_COLUMNS = ("quality_lo", "quality_hi", "val_drop", "val_drop_lo", "val_drop_hi", "test_quality_lo",
                    "test_quality_hi", "test_drop", "test_drop_lo", "test_drop_hi")


def _interval_cells(figures: Any) -> list[Any]:
    """The ``INTERVAL_COLUMNS`` of one point from its ``QualityFigures`` (blank where unknown)."""
    def pair(iv: Any) -> list[Any]:
        return ["", ""] if iv is None else [iv.lo, iv.hi]

    def triple(iv: Any) -> list[Any]:
        return ["", "", ""] if iv is None else [iv.value, iv.lo, iv.hi]

    if figures is None:
        return [""] * len(INTERVAL_COLUMNS)
    return [*pair(figures.val), *triple(figures.val_drop), *pair(figures.test), *triple(figures.test_drop)]


def write_front(run_dir: Path, front: list[FrontPoint], test: dict[str, Any] | None = None,
                quality_of: Callable[[StoredEvaluation], Any] | None = None,
                named: str | None = None) -> tuple[Path, Path]:
    """Write ``front.json`` and ``front.csv`` (value and source columns per figure).

    ``quality`` is the validation score every selection used; ``test_quality`` is the test-split score
    measured once after the search (``test``: digest → quality dict). ``quality_of`` gives each point's
    ``QualityFigures`` (95 % intervals of both scores and paired drops vs FP32, in ``INTERVAL_COLUMNS``);
    ``named`` is the digest of the run's named best point (column ``named_best``)."""
    test = {k: {kk: vv for kk, vv in v.items() if kk != "samples"} for k, v in (test or {}).items()}
    pts = [point_dict(p.evaluation, test.get(p.evaluation.digest)) for p in front]
    for pt, p in zip(pts, front, strict=True):
        cells = _interval_cells(quality_of(p.evaluation) if quality_of is not None else None)
        pt["intervals"] = {k: v for k, v in zip(INTERVAL_COLUMNS, cells, strict=True) if v != ""}
        pt["named_best"] = p.evaluation.digest == named
    json_path = run_dir / "front.json"
    _atomic_write(json_path, json.dumps({"objectives": ["quality", *COSTS], "points": pts}, indent=2))
    buf = io.StringIO()
    w = csv.writer(buf)
    header = ["seq", "strategy", "digest", "reward"]
    for k in CSV_FIGURES:
        header += [k, f"{k}_unit", f"{k}_source"]
        if k == QUALITY:
            header += ["quality_split", "test_quality", *INTERVAL_COLUMNS]
    header.append("named_best")
    w.writerow(header)
    for p in front:
        ev = p.evaluation
        row: list[Any] = [ev.seq, ev.strategy, ev.digest, ev.reward]
        for k in CSV_FIGURES:
            fig = ev.result.figures.get(k)
            row += [fig.value, fig.unit, fig.source] if fig is not None else ["", "", ""]
            if k == QUALITY:
                scored = test.get(ev.digest)
                row += ["val", "" if scored is None else scored["value"]]
                row += _interval_cells(quality_of(ev) if quality_of is not None else None)
        row.append(int(ev.digest == named))
        w.writerow(row)
    csv_path = run_dir / "front.csv"
    _atomic_write(csv_path, buf.getvalue())
    return json_path, csv_path


def best_candidate(evaluations: list[StoredEvaluation]) -> StoredEvaluation | None:
    """The feasible candidate with the highest reward (ties: earliest)."""
    feasible = [e for e in unique_candidates(evaluations) if e.feasible and e.reward is not None]
    if not feasible:
        return None
    return max(feasible, key=lambda e: (e.reward, -e.seq))
