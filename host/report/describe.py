"""A compression config in words and as a per-layer table, for labels, tooltips and the report's tables.

``describe_config`` gives one line such as ``gru0 −90 % units, gru1 −41 %, int8``; ``layer_rows`` gives the
same config as rows a reader scans by layer. Both read the stored config JSON and, when given, the
evaluator's per-layer record (``EvalResult.layers``: the exact kept-unit count of each pruned layer).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

LAYER_HEADER = ["layer", "units removed", "units kept", "weights zeroed", "low-rank keep"]


def _pct(frac: float) -> str:
    return f"{100.0 * frac:.0f} %"


def _parse(config_json: str | dict[str, Any]) -> dict[str, Any]:
    return dict(config_json) if isinstance(config_json, dict) else dict(json.loads(config_json))


def _kept(layers: Sequence[dict[str, Any]] | None) -> dict[str, int]:
    return {str(r["name"]): int(r["kept_units"]) for r in layers or () if r.get("kept_units") is not None}


def _training(cfg: dict[str, Any]) -> list[str]:
    """The fine-tuning choices in words (only those that differ from "none")."""
    words = []
    steps = int(cfg.get("finetune_steps") or 0)
    if steps:
        words.append(f"{steps} fine-tuning steps" + (" distilled" if cfg.get("distill") else ""))
    if cfg.get("qat"):
        words.append("QAT")
    return words


def describe_config(config_json: str | dict[str, Any], layers: Sequence[dict[str, Any]] | None = None) -> str:
    """One line of words for a config: each changed layer, then the precision (and fine-tuning, when set).

    ``layers`` is the evaluator's per-layer record; with it a pruned layer also says how many units it kept.
    The first prune says "units" and later ones only the percentage, so a line of several layers stays short.
    """
    cfg = _parse(config_json)
    kept = _kept(layers)
    parts: list[str] = []
    said_units = False
    for lc in cfg.get("layers", []):
        name = str(lc["name"])
        prune = float(lc.get("prune") or 0.0)
        sparsity = float(lc.get("sparsity") or 0.0)
        rank = lc.get("rank_frac")
        bits = []
        if prune > 0:
            bits.append(f"−{_pct(prune)}" + ("" if said_units else " units"))
            said_units = True
            if name in kept:
                bits[-1] += f" ({kept[name]} kept)"
        if sparsity > 0:
            bits.append(f"{_pct(sparsity)} weights zeroed")
        if rank is not None:
            bits.append(f"rank {_pct(float(rank))}")
        if lc.get("precision"):  # int4 / 16x8 (issue 30); absent means the model's precision
            bits.append(str(lc["precision"]))
        if bits:
            parts.append(f"{name} " + " ".join(bits))
    if not parts:
        parts.append("no layer changed")
    parts.append(str(cfg.get("quantize", "int8")))
    parts += _training(cfg)
    return ", ".join(parts)


def layer_rows(config_json: str | dict[str, Any], layers: Sequence[dict[str, Any]] | None = None) -> list[list[str]]:
    """The config as rows of ``LAYER_HEADER``: one per configured layer, ``—`` where nothing was done."""
    cfg = _parse(config_json)
    kept = _kept(layers)
    out = []
    for lc in cfg.get("layers", []):
        name = str(lc["name"])
        prune = float(lc.get("prune") or 0.0)
        sparsity = float(lc.get("sparsity") or 0.0)
        rank = lc.get("rank_frac")
        out.append([
            f"{name} ({lc['precision']})" if lc.get("precision") else name,
            _pct(prune) if prune > 0 else "—",
            str(kept[name]) if name in kept else "—",
            _pct(sparsity) if sparsity > 0 else "—",
            "dense" if rank is None else _pct(float(rank)),
        ])
    return out


def global_choices(config_json: str | dict[str, Any]) -> str:
    """The whole-model choices in words: precision, fine-tuning, importance score, seed."""
    cfg = _parse(config_json)
    words = [f"precision {cfg.get('quantize', 'int8')}"]
    words += _training(cfg) or ["no fine-tuning"]
    if any(float(lc.get("prune") or 0) > 0 for lc in cfg.get("layers", [])):
        words.append(f"units ranked by {cfg.get('importance', 'l2')}")
    words.append(f"seed {cfg.get('seed', 0)}")
    return ", ".join(words)
