"""The evaluator exports every candidate with one weight scale per matrix unless per-row scales keep validation
quality that per-tensor loses (``candidate_export.export_smallest``): real exports, the score stubbed per layout."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from edgeprune.host.models import StackedGRU
from edgeprune.host.search.candidate_export import export_smallest

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def model_and_calibration():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = StackedGRU(4, [12, 8], 3, seq_len=10).eval()
    calib = np.random.default_rng(0).normal(0, 1, (32, 10, 4)).astype(np.float32)
    return model, calib


def _task_and_score(float_q: float, by_layout: dict[str, float], seen: list[str]) -> tuple[SimpleNamespace, Any]:
    def score(tflite: bytes, manifest: dict) -> SimpleNamespace:
        seen.append(manifest["weight_scales"])
        return SimpleNamespace(value=by_layout[manifest["weight_scales"]], metric="accuracy")

    task = SimpleNamespace(higher_is_better=True, evaluate=lambda predict, split: SimpleNamespace(value=float_q))
    return task, score


@pytest.mark.parametrize(
    ("float_q", "by_layout", "kept", "exports"),
    [
        (0.60, {"tensor": 0.60, "channel": 0.70}, "tensor", ["tensor"]),  # no loss: channel is never tried
        (0.60, {"tensor": 0.55, "channel": 0.58}, "channel", ["tensor", "channel"]),
        (0.60, {"tensor": 0.55, "channel": 0.55}, "tensor", ["tensor", "channel"]),  # a tie keeps the smaller
    ],
)
def test_per_tensor_unless_per_channel_keeps_quality(model_and_calibration, tmp_path, float_q, by_layout, kept,
                                                     exports):
    model, calib = model_and_calibration
    seen: list[str] = []
    out = tmp_path / "cand"
    task, score = _task_and_score(float_q, by_layout, seen)
    exported, quality = export_smallest(task, model, calib, out, "int8", score=score)
    assert seen == exports
    assert quality.value == by_layout[kept]
    assert exported.out_dir == out.resolve()
    assert json.loads((out / "manifest.json").read_text())["weight_scales"] == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cand"]  # the losing export is not left behind
