"""`edgeprune export` of a regressor: the metric that fits (no argmax), why search figures differ, and
an output folder made with the user's umask."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from export_helpers import FEATURES, SEQ, synthetic_windows

from edgeprune.host.cli import main


@pytest.mark.tf
def test_regressor_export_shows_rmse_not_argmax_and_honours_umask(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path / "cache"))
    from edgeprune.host.models import StackedGRU

    torch.manual_seed(4)
    model = StackedGRU(FEATURES, [12, 8], 1, SEQ)
    config = {"input_size": FEATURES, "hidden_sizes": [12, 8], "num_outputs": 1, "seq_len": SEQ, "kind": "regressor"}
    torch.save({"config": config, "state_dict": model.state_dict()}, tmp_path / "gru.pt")
    x = synthetic_windows(120, seed=8)
    np.savez(tmp_path / "data.npz", X=x, y=x[:, -1, 0].astype(np.float32))
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(
            main, ["export", "--model", str(tmp_path / "gru.pt"), "--data", str(tmp_path / "data.npz"), "--out", str(out)]
        )
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "argmax" not in text
    assert "rmse (test)" in text and "int8 calibration" in text and "training windows" in text
    assert json.loads((out / "manifest.json").read_text())["quality"]["metric"] == "rmse"
    assert (out.stat().st_mode & 0o777) == 0o755
