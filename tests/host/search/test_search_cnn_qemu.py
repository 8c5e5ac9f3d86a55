"""digits-cnn through the whole loop: channel pruning → fine-tuning → int8 ConvNet (NHWC) → TFLM → our conv
kernels on QEMU M4 over the link → store → front."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import RunStore

from .qemu_setup import evaluator_options

pytestmark = [pytest.mark.qemu, pytest.mark.tf, pytest.mark.slow]


def test_short_cnn_search_measures_pruned_convnets_on_qemu(tmp_path, monkeypatch):
    from edgeprune.host.report.load import load_run
    from edgeprune.host.search.evaluator import HardwareEvaluator
    from edgeprune.host.tasks.digits import CNNTrainConfig, DigitsCNNTask

    monkeypatch.setitem(os.environ, "EDGEPRUNE_CACHE", str(tmp_path / "cache"))
    task = DigitsCNNTask(CNNTrainConfig(channels=(8, 16), max_epochs=10, patience=10, threads=1))

    def factory(t, o, d):
        return HardwareEvaluator(t, "qemu:m4", repeats=2, host_energy=False, artifacts_dir=tmp_path / "art",
                                 **evaluator_options())

    opts = SearchOptions(device="qemu:m4", task="digits-cnn", strategy="uniform", budget=2, out=str(tmp_path / "run"),
                         host_energy=False, max_acc_drop=60.0, finetune_steps="auto", repeats=2, deploy_best=False,
                         use_cache=False)
    res = run_search(opts, task=task, evaluator_factory=factory)
    run = load_run(res.run_dir)
    base = run.baseline.result
    assert base.figures["latency_count"].source == "qemu" and base.figures["latency_count"].value > 20_000
    with RunStore.open_existing(res.run_dir) as store:
        measured = [e for e in store.evaluations() if e.kind == "candidate" and e.origin == "device"]
    assert len(measured) == 2
    for ev in measured:
        r = ev.result
        assert r.error is None, r.error
        assert json.loads(r.config_json)["quantize"] == "int8"
        assert "byte-equal to TFLM" in r.figures["quality"].detail
        manifest = json.loads((Path(r.artifacts["dir"]) / "manifest.json").read_text())
        assert manifest["kind"] == "cnn" and manifest["ops"]["CONV_2D"] == 2
        # the report's weights column: the export's weight bytes, a positive part of the model
        assert 0 < r.figures["weight_bytes"].value == manifest["weight_bytes"] < r.figures["model_bytes"].value
    deepest = min(measured, key=lambda e: sum(lay.get("kept_units") or 99 for lay in e.result.layers))
    # The most pruned candidate kept fewer channels and ran measurably fewer instructions than the baseline.
    assert deepest.result.figures["latency_count"].value < 0.8 * base.figures["latency_count"].value
    assert run.front
