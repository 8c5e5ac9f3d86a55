"""The report a person reads: every candidate on the plots with its config in words on hover, configs as
per-layer tables, only the options that were set, and the split named on every quality figure.

The HTML is asserted on directly (no screenshots); the plot's hover areas are checked against the PNG's pixels.
"""

from __future__ import annotations

import re
from html import unescape
from types import SimpleNamespace

import matplotlib.image as mpimg
import pytest
from doubles.fake_task import FakeTask
from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.host.report import generate_report
from edgeprune.host.report.describe import describe_config, layer_rows
from edgeprune.host.report.load import load_run
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import EvalCache
from edgeprune.host.search.types import ENERGY_UJ, FLASH_BYTES, LATENCY_COUNT, LATENCY_MS, RAM_BYTES

_DEVICE_ONLY = (LATENCY_COUNT, LATENCY_MS, ENERGY_UJ, FLASH_BYTES, RAM_BYTES)


class ScreeningEvaluator(SyntheticEvaluator):
    """The stand-in with the real evaluator's host half: ``prepare`` knows quality, params and MACs but no
    device figure, so a candidate the session screens out on the host is stored without them."""

    def prepare(self, config):
        result = SyntheticEvaluator.evaluate(self, config)
        for name in _DEVICE_ONLY:
            result.figures.pop(name, None)
        return SimpleNamespace(config=config, result=result, quality=result.figures["quality"])

    def measure_prepared(self, prepared):
        return SyntheticEvaluator.evaluate(self, prepared.config)


def test_describe_config_in_words():
    cfg = ('{"format":1,"quantize":"int8","finetune_steps":0,"distill":false,"importance":"l2","qat":false,"seed":0,'
           '"layers":[{"name":"gru0","prune":0.9,"sparsity":0.0,"rank_frac":null,"quantize":null},'
           '{"name":"gru1","prune":0.41,"sparsity":0.0,"rank_frac":null,"quantize":null},'
           '{"name":"head","prune":0.0,"sparsity":0.0,"rank_frac":null,"quantize":null}]}')
    assert describe_config(cfg, None) == "gru0 −90 % units, gru1 −41 %, int8"
    layers = [{"name": "gru0", "kept_units": 26}, {"name": "gru1", "kept_units": 151}, {"name": "head"}]
    assert describe_config(cfg, layers) == "gru0 −90 % units (26 kept), gru1 −41 % (151 kept), int8"
    other = {"quantize": "float32", "finetune_steps": 300, "distill": True, "layers": [
        {"name": "gru0", "prune": 0.0, "sparsity": 0.5, "rank_frac": 0.25},
        {"name": "head", "prune": 0.0, "sparsity": 0.0, "rank_frac": None}]}
    assert describe_config(other) == "gru0 50 % weights zeroed rank 25 %, float32, 300 fine-tuning steps distilled"
    assert describe_config({"quantize": "int8", "layers": []}) == "no layer changed, int8"
    assert layer_rows(cfg, layers) == [
        ["gru0", "90 %", "26", "—", "dense"], ["gru1", "41 %", "151", "—", "dense"], ["head", "—", "—", "—", "dense"]]


def _areas(text: str) -> list[dict[str, str]]:
    return [dict((k, unescape(v)) for k, v in re.findall(r'(\w+)="([^"]*)"', a)) for a in re.findall(r"<area [^>]*>", text)]


def _section(text: str, heading: str) -> str:
    start = text.index(f"<h3>{heading}")
    end = text.find("<h3>", start + 4)
    return text[start:] if end < 0 else text[start:end]


@pytest.fixture
def screened_run(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path / "cache"))
    # A uniform sweep under these limits has all three kinds: screened on the host (deep cuts), measured but
    # over the flash limit (shallow cuts) and feasible (in between).
    opts = SearchOptions(strategy="uniform", budget=10, out=str(tmp_path / "run"), host_energy=False,
                         max_acc_drop=10.0, flash_kb=26.0, seed=0, deploy_best=False)
    res = run_search(opts, task=FakeTask(), evaluator_factory=lambda t, o, d: ScreeningEvaluator(),
                     cache=EvalCache(tmp_path / "cache.sqlite"), write_report=generate_report)
    return res


def test_report_is_readable(screened_run):
    run = load_run(screened_run.run_dir)
    text = screened_run.report_html.read_text(encoding="utf-8")
    cands = {e.seq: e for e in run.candidates()}
    host = [e for e in cands.values() if e.origin == "host"]
    infeasible = [e for e in cands.values() if e.origin != "host" and not e.feasible]
    front = [p.evaluation for p in run.front]
    assert host and infeasible and front, "the synthetic run must have screened, infeasible and front candidates"

    # Every evaluated candidate has a row (host-screened ones apart) and a hover area linking to it.
    areas = _areas(text)
    measured = _section(text, "Every candidate measured on the device")
    screened = _section(text, "Screened on the host")
    for seq, ev in cands.items():
        anchor = f"cand-{run.run_dir.name}-{seq}"
        hits = [a for a in areas if a["href"] == f"#{anchor}"]
        assert f"id='{anchor}'" in (screened if ev.origin == "host" else measured), seq
        words = describe_config(ev.result.config_json, ev.result.layers)
        assert hits and all(words in a["title"] for a in hits), seq
        # A host-screened candidate has only the MAC proxy of the four costs: one panel, not four.
        assert len(hits) == (1 if ev.origin == "host" else 4), (seq, ev.origin, len(hits))
        assert all("val accuracy" in a["title"] for a in hits)
    for ev in infeasible:
        assert all(ev.reason in a["title"] for a in areas if a["href"].endswith(f"-{ev.seq}"))
    assert "−" in text and "% units" in text

    # The hover areas sit on the drawn points: the centre of each front marker is not background.
    png = mpimg.imread(screened_run.run_dir / "pareto.png")
    h, w = png.shape[:2]
    front_areas = [a for a in areas if a["title"].startswith("front ")]
    assert len(front_areas) == 4 * len(front)
    for a in front_areas:
        x, y, _ = (int(v) for v in a["coords"].split(","))
        assert 0 <= x < w and 0 <= y < h
        assert png[y, x, :3].min() < 0.9, (a["title"], png[y, x])

    # Configs as per-layer tables, never raw JSON.
    assert '"prune"' not in text and "{&quot;" not in text and "&quot;layers&quot;" not in text
    best = _section(text, "Named best point")
    assert "<th>layer</th><th>units removed</th><th>units kept</th>" in best
    assert describe_config(run.best.result.config_json, run.best.result.layers) in best

    # Options: what was set, nothing left at None or empty.
    options = _section(text, "Search options")
    assert "<td>flash_kb</td>" in options and "<td>budget</td>" in options
    for unset in ("ram_kb", "model", "env_id", "data", "evaluator_options"):
        assert f"<td>{unset}</td>" not in options, unset
    assert run.options.get("ram_kb") is None

    # The split is named on every quality figure: tables, best section, hover text.
    assert "<th>val accuracy [95 % CI]</th>" in _section(text, "Pareto front")
    assert "test accuracy [95 % CI] (once, at the end)" in _section(text, "Pareto front")
    assert "val accuracy [95 % CI] (selected on it)" in best and "test accuracy [95 % CI] (once, at the end)" in best
    assert "val drop vs FP32, pp (paired)" in best and "189 windows" in best
    assert "<th>val accuracy</th>" in measured and "<th>val accuracy</th>" in screened


def test_comparison_report_keeps_anchors_apart(screened_run, tmp_path):
    other = tmp_path / "again"
    opts = SearchOptions(strategy="uniform", budget=3, out=str(other), host_energy=False, max_acc_drop=8.0,
                         deploy_best=False)
    run_search(opts, task=FakeTask(), evaluator_factory=lambda t, o, d: SyntheticEvaluator(),
               cache=EvalCache(tmp_path / "cache2.sqlite"), write_report=generate_report)
    text = generate_report([screened_run.run_dir, other], tmp_path / "cmp").read_text(encoding="utf-8")
    hrefs = {a["href"] for a in _areas(text)}
    assert any(h.startswith("#cand-run-") for h in hrefs) and any(h.startswith("#cand-again-") for h in hrefs)
    for h in hrefs:
        assert f"id='{h[1:]}'" in text, h
