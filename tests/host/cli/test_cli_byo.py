"""Bring-your-own models through the CLI: what `train` and `search` say about a supplied model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner

from edgeprune.host.cli import main


def _byo(folder: Path) -> tuple[str, str]:
    from edgeprune.host.tasks.gru_train import make_gru_net

    torch.manual_seed(0)
    cfg = {"input_size": 3, "hidden_sizes": [8, 8], "num_outputs": 1, "seq_len": 6, "kind": "regressor"}
    torch.save({"config": cfg, "state_dict": make_gru_net(3, 8, 2, 1).state_dict()}, folder / "gru.pt")
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", X=rng.normal(size=(60, 6, 3)).astype(np.float32),
             y=rng.normal(size=60).astype(np.float32))
    return str(folder / "gru.pt"), str(folder / "data.npz")


def test_train_on_a_supplied_model_says_it_was_evaluated_not_trained(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path / "cache"))
    model, data = _byo(tmp_path)
    res = CliRunner().invoke(main, ["train", "--model", model, "--data", data])
    assert res.exit_code == 0, res.output
    assert "evaluated, not trained" in res.output and "evaluated as given" in res.output
    assert "training time" not in res.output
    helped = CliRunner().invoke(main, ["train", "--help"])
    assert "a --model is evaluated, not trained" in helped.output.replace("\n", " ").replace("  ", " ")


def test_search_refuses_nonsensical_limits_in_one_line(tmp_path):
    for args, words in ((["--max-acc-drop", "-1"], "--max-acc-drop -1"), (["--flash-kb", "0"], "--flash-kb 0")):
        res = CliRunner().invoke(main, ["search", *args, "--out", str(tmp_path / "run")])
        assert res.exit_code == 1, res.output
        assert words in res.output and len(res.output.strip().splitlines()) == 1
        assert not (tmp_path / "run").exists()


def test_search_task_and_model_are_alternatives(tmp_path):
    model, data = _byo(tmp_path)
    res = CliRunner().invoke(main, ["search", "--task", "weather-gru", "--model", model, "--data", data])
    assert res.exit_code == 2 and "either --task or --model" in res.output
    res = CliRunner().invoke(main, ["search", "--data", data])
    assert res.exit_code == 2 and "give the model file too" in res.output


def test_search_help_promises_no_fixed_run_time():
    text = CliRunner().invoke(main, ["search", "--help"]).output.replace("\n", " ")
    assert "under 10 min" not in text and "prints an estimate" in " ".join(text.split())
