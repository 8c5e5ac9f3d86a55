"""Failures are typed, name their stage, and never leave an output directory that looks complete."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import synthetic_windows, trained_gru
from torch import nn

from edgeprune.export import ExportError, export_model, verify


class Conv1dModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_error_message_is_one_line_with_stage_and_cause() -> None:
    err = ExportError("onnx2tf", op="Gemm", detail="could not convert", cause=RuntimeError("boom\nmore"))
    assert str(err) == "export failed at onnx2tf [Gemm]: could not convert (RuntimeError: boom)"
    with pytest.raises(ValueError):
        ExportError("nowhere")


def test_unsupported_layer_raises_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "conv"
    with pytest.raises(ExportError) as info:
        export_model(Conv1dModel(), synthetic_windows(4), out)
    assert info.value.stage == "onnx" and info.value.op in {"Conv1dModel", "Conv1d"}
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.tf
def test_failed_late_stage_leaves_no_output_and_keeps_the_previous_one(tmp_path: Path, monkeypatch) -> None:
    """The real TFLM check fails when the device allowlist lacks FULLY_CONNECTED; nothing is half-written."""
    out = tmp_path / "export"
    out.mkdir()
    (out / "manifest.json").write_text('{"previous": true}')
    monkeypatch.setattr(verify, "ALLOWED_OPS", frozenset({"QUANTIZE", "DEQUANTIZE", "ADD"}))
    with pytest.raises(ExportError) as info:
        export_model(trained_gru([8], steps=2), synthetic_windows(8), out)
    assert info.value.stage == "tflm" and info.value.op == "FULLY_CONNECTED"
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
    assert [p.name for p in out.iterdir()] == ["manifest.json"]
    assert (out / "manifest.json").read_text() == '{"previous": true}'


@pytest.mark.tf
def test_successful_export_replaces_the_previous_directory_and_leaves_no_temporaries(tmp_path: Path) -> None:
    from export_helpers import policy_mlp

    out = tmp_path / "policy"
    out.mkdir()
    (out / "stale.txt").write_text("from an older export")
    states = np.random.default_rng(0).normal(scale=[1.0, 1.0, 0.1, 1.0], size=(64, 4)).astype(np.float32)
    result = export_model(policy_mlp(), states, out)
    assert result.out_dir == out.resolve()
    assert [p.name for p in tmp_path.iterdir()] == ["policy"]
    assert not (out / "stale.txt").exists() and (out / "model.tflite").is_file()
