"""A candidate larger than the loading firmware's buffer is measured from a deploy build (the model in flash)
booted in its own emulator, instead of being sent (issue 16, deliverable 3)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from edgeprune.bench.link import Device
from edgeprune.bench.manifest import bare_manifest
from edgeprune.host.search.candidate import Prepared
from edgeprune.host.search.evaluator import HardwareEvaluator
from edgeprune.host.search.types import LATENCY_COUNT, EvalResult

from .conftest import bake_dir, seed_models

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
CAP = 1000  # the loading firmware pretends its buffer holds this much


class _Task:
    name = "fc64"

    def content_hash(self) -> str:
        return "fc64"

    def agreement_inputs(self, n, split):
        return np.random.default_rng(0).uniform(-1, 1, (n, 1, 64)).astype(np.float32)

    def calibration_inputs(self, n):
        return self.agreement_inputs(n, "train")


def test_a_model_over_max_model_is_measured_from_a_deploy_build(monkeypatch, tmp_path):
    real_hello = Device.hello

    def capped(self, timeout_s=None):
        hello = real_hello(self, timeout_s)
        if not hello.baked_model:
            self.last_hello = hello = dataclasses.replace(hello, max_model=CAP)
        return hello

    monkeypatch.setattr(Device, "hello", capped)
    model = seed_models().fc_square(64, seed=3)
    assert len(model) > CAP
    out_dir = bake_dir(tmp_path, model, "fc64")
    manifest = bare_manifest(model)
    prepared = Prepared(SimpleNamespace(quantize="int8"), EvalResult("{}", "fc64"), model, manifest,
                        SimpleNamespace(tflite_bytes=len(model), arena_bytes=4096), out_dir,
                        SimpleNamespace(value=0.5, metric="accuracy"))
    with HardwareEvaluator(_Task(), "qemu:m4", agreement_n=0, host_energy=False, deploy_build="never",
                           artifacts_dir=tmp_path, deploy_dir=tmp_path / "deploy", repeats=3, warmup=1) as ev:
        result = ev.measure_prepared(prepared)
        assert result.error is None, result.error
        assert result.value(LATENCY_COUNT) > 0 and result.figures[LATENCY_COUNT].unit == "instructions"
        assert ev.device.last_hello.max_model == CAP  # the loading firmware is still the session's device
    assert (out_dir / "firmware.elf").is_file() and (out_dir / "deploy.json").is_file()
