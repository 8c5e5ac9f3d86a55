"""``edgeprune export``: options parse, heavy imports stay lazy, a bring-your-own GRU exports end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from export_helpers import FEATURES, SEQ, synthetic_windows, trained_gru

from edgeprune.host.cli import main


def test_help_does_not_import_tensorflow_or_torch() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from edgeprune.host.cli import main\n"
        "r = CliRunner().invoke(main, ['export', '--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert '--float32' in r.output and '--run' in r.output\n"
        "print(sorted(m for m in ('tensorflow', 'torch', 'onnx2tf') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "[]"


def test_config_without_task_is_a_usage_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text("{}")
    result = CliRunner().invoke(main, ["export", "--config", str(cfg)])
    assert result.exit_code == 2 and "--config needs --task" in result.output


def test_nothing_to_export_is_a_one_line_error() -> None:
    result = CliRunner().invoke(main, ["export", "--no-eval"])
    assert result.exit_code == 1
    assert "say what to export" in result.output


@pytest.mark.tf
@pytest.mark.qemu
def test_bring_your_own_gru_exports_from_the_cli(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path / "cache"))
    model = trained_gru([12, 8], seed=4, steps=20)
    config = {"input_size": FEATURES, "hidden_sizes": [12, 8], "num_outputs": 3, "seq_len": SEQ, "kind": "classifier"}
    torch.save({"config": config, "state_dict": model.state_dict()}, tmp_path / "gru.pt")
    x = synthetic_windows(120, seed=8)
    np.savez(tmp_path / "data.npz", X=x, y=x[:, -1, :3].argmax(axis=1).astype(np.int64))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["export", "--model", str(tmp_path / "gru.pt"), "--data", str(tmp_path / "data.npz"), "--out", str(out),
               "--deploy", str(tmp_path / "lib"), "--deploy-opt", "size"]
    )
    assert result.exit_code == 0, result.output
    assert "weight bytes" in result.output and "accuracy" in result.output
    man = json.loads((out / "manifest.json").read_text())
    assert man["sequence"]["steps"] == SEQ
    assert man["quality"]["metric"] == "accuracy"
    assert abs(man["quality"]["float"] - man["quality"]["exported"]) <= 0.05
    assert (out / "model_data.c").is_file()
    # --deploy: the C library beside it, measured (flash of the linked example, RAM with the stack high-water).
    assert "deploy flash (m4)" in result.output and "deploy RAM (m4)" in result.output
    deployed = json.loads((tmp_path / "lib" / "deploy.json").read_text())
    assert deployed["steps"] == SEQ and deployed["kernels"] == ["gru"]
    assert deployed["source_sha256"] == man["hashes"]["tflite_sha256"]
    assert deployed["prepared"] and "model prepared at export" in result.output
    # --deploy-opt size: the example's toolchain file (and the measured build) at -Os.
    toolchain = (tmp_path / "lib" / "examples" / "qemu" / "arm-none-eabi.cmake").read_text()
    assert deployed["opt"] == "size" and " -Os " in toolchain and "-O2" not in toolchain
    assert "size build" in result.output


def test_distill_int8_is_refused_for_a_gru(tmp_path) -> None:
    """--distill-int8 only makes sense for DQN policies; a GRU gets a one-line refusal, nothing written."""
    from click.testing import CliRunner

    from edgeprune.host.cli import main

    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["export", "--task", "weather-gru", "--distill-int8", "--out", str(out)])
    assert result.exit_code != 0
    assert "--distill-int8 is for int8 exports of DQN policies only" in result.output
    assert not out.exists()
