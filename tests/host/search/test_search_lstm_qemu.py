"""weather-lstm through the whole loop: unit pruning → fine-tuning → int8 streaming cell (h and c carried)
→ TFLM → our runtime on QEMU M4 over the link → store → front, like the GRU."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import RunStore

from .qemu_setup import evaluator_options, small_weather_task

pytestmark = [pytest.mark.qemu, pytest.mark.tf, pytest.mark.slow]


def test_short_lstm_search_measures_pruned_lstms_on_qemu(tmp_path, monkeypatch):
    from edgeprune.host.report.load import load_run
    from edgeprune.host.search.evaluator import HardwareEvaluator

    monkeypatch.setitem(os.environ, "EDGEPRUNE_CACHE", str(tmp_path / "cache"))
    task = small_weather_task("lstm")
    assert task.name == "weather-lstm"

    def factory(t, o, d):
        return HardwareEvaluator(t, "qemu:m4", repeats=2, host_energy=False, artifacts_dir=tmp_path / "art",
                                 **evaluator_options())

    opts = SearchOptions(device="qemu:m4", task="weather-lstm", strategy="random", budget=2, out=str(tmp_path / "run"),
                         host_energy=False, max_acc_drop=50.0, finetune_steps=10, repeats=2, deploy_best=False,
                         use_cache=False)
    res = run_search(opts, task=task, evaluator_factory=factory)
    run = load_run(res.run_dir)
    base = run.baseline.result
    assert base.figures["latency_count"].source == "qemu" and base.figures["latency_count"].value > 10_000
    with RunStore.open_existing(res.run_dir) as store:
        measured = [e for e in store.evaluations() if e.kind == "candidate" and e.origin == "device"]
    assert len(measured) == 2
    pruned = 0
    for ev in measured:
        r = ev.result
        assert r.error is None, r.error
        assert r.figures["latency_count"].source == "qemu"
        assert "byte-equal to TFLM" in r.figures["quality"].detail
        manifest = json.loads((Path(r.artifacts["dir"]) / "manifest.json").read_text())
        assert manifest["kind"] == "lstm" and len(manifest["sequence"]["recurrent"]) == 4
        units = [lay.get("kept_units") or 12 for lay in r.layers if lay["name"].startswith("lstm")]
        if min(units) < 12:  # fewer units measured as fewer instructions than the 2 × 12 baseline
            pruned += 1
            assert r.figures["latency_count"].value < base.figures["latency_count"].value, (units, r.figures)
    assert pruned >= 1, "the seeded random strategy proposes unit pruning"
    assert run.front
