"""What a user sees and what a run stores: BYO paths and hashes, limits with units and refused when
impossible, rejections explained, progress without a terminal, and start-up kills that stay resumable."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from doubles.fake_task import FakeTask
from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.run_checks import LimitError
from edgeprune.host.search.run_dir import RunDirError
from edgeprune.host.search.store import EvalCache, RunStore
from edgeprune.host.search.types import FLASH_BYTES, MODEL_BYTES, FigureRecord

HERE = Path(__file__).resolve().parent


def _byo_files(folder: Path, seed: int = 0) -> None:
    from edgeprune.host.tasks.gru_train import make_gru_net

    torch.manual_seed(seed)
    cfg = {"input_size": 3, "hidden_sizes": [8, 8], "num_outputs": 1, "seq_len": 6, "kind": "regressor"}
    torch.save({"config": cfg, "state_dict": make_gru_net(3, 8, 2, 1).state_dict()}, folder / "gru.pt")
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", X=rng.normal(size=(60, 6, 3)).astype(np.float32),
             y=rng.normal(size=60).astype(np.float32))


def _synthetic(task, options, run_dir):
    return SyntheticEvaluator()


def test_byo_run_stores_absolute_paths_and_resumes_from_elsewhere(tmp_path, monkeypatch):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    _byo_files(work)
    monkeypatch.chdir(work)
    opts = SearchOptions(model="gru.pt", data="data.npz", strategy="random", budget=2, out="run",
                         host_energy=False, max_acc_drop=50.0)
    run_search(opts, evaluator_factory=_synthetic)
    with RunStore.open_existing(work / "run") as store:
        stored = store.get_meta("options")
    # Absolute paths, their hashes, and a task that says what was searched (not the default weather-gru).
    assert stored["model"] == str(work / "gru.pt") and stored["data"] == str(work / "data.npz")
    assert len(stored["model_sha256"]) == 64 and len(stored["data_sha256"]) == 64
    assert stored["task"] == "byo-gru" and stored["metric"] == "rmse"

    monkeypatch.chdir(elsewhere)
    res = run_search(None, resume=work / "run", evaluator_factory=_synthetic)
    assert res.device_evaluations == 2

    _byo_files(work, seed=1)  # the model changed since the run started
    with pytest.raises(RunDirError, match="changed since"):
        run_search(None, resume=work / "run", evaluator_factory=_synthetic)
    (work / "gru.pt").unlink()
    with pytest.raises(RunDirError, match="no longer exists"):
        run_search(None, resume=work / "run", evaluator_factory=_synthetic)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_acc_drop": -1.0}, "--max-acc-drop -1"),
    ({"max_acc_drop": float("nan")}, "--max-acc-drop nan"),
    ({"flash_kb": 0.0}, "--flash-kb 0"),
    ({"ram_kb": -5.0}, "--ram-kb -5"),
])
def test_nonsensical_limits_are_refused_before_anything_runs(tmp_path, fake_task, kwargs, message):
    ev = SyntheticEvaluator()
    opts = SearchOptions(strategy="random", budget=3, out=str(tmp_path / "run"), host_energy=False, **kwargs)
    with pytest.raises(LimitError, match=message.replace("+", r"\+")):
        run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: ev)
    assert ev.calls == [] and not (tmp_path / "run").exists()


class DeployBuildEvaluator(SyntheticEvaluator):
    """Flash figures as a deploy build reports them: 20,000 B of firmware around the model."""

    def evaluate(self, config):
        result = super().evaluate(config)
        flash = result.figures[FLASH_BYTES].value
        result.figures[FLASH_BYTES] = FigureRecord(flash, "bytes", "build", "deploy build qemu-m4: .text+.data")
        result.figures[MODEL_BYTES] = FigureRecord(flash - 20_000, "bytes", "build", ".tflite size")
        return result


def test_flash_limit_below_the_firmware_is_refused_after_the_baseline(tmp_path, fake_task):
    ev = DeployBuildEvaluator()
    opts = SearchOptions(strategy="random", budget=5, out=str(tmp_path / "run"), host_energy=False, flash_kb=1)
    with pytest.raises(LimitError, match="firmware without any model already takes 19.5 KiB"):
        run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: ev)
    assert len(ev.calls) == 1  # the baseline only: no budget spent on a limit nothing can meet
    assert not (tmp_path / "run").exists()


def _console():
    from rich.console import Console

    buf = io.StringIO()
    return Console(file=buf, width=400, force_terminal=False), buf


def test_nothing_feasible_explains_why_with_units_and_baseline_is_not_feasible(tmp_path, fake_task):
    from edgeprune.host.report.console import ProgressDisplay, final_table

    console, buf = _console()
    display = ProgressDisplay(console)
    # Baseline flash is 30,000 B; 25 KiB is over the firmware (20,000 B) but under the baseline.
    opts = SearchOptions(strategy="random", budget=4, out=str(tmp_path / "run"), host_energy=False,
                         max_acc_drop=0.0, flash_kb=25, finetune_steps=7)
    res = run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: DeployBuildEvaluator(),
                     on_begin=display.begin, on_start=display.start, on_outcome=display.update)
    display.stop()
    final_table(res, console)
    out = buf.getvalue()
    assert "max quality drop 0 pp accuracy" in out and "flash ≤ 25 KiB" in out
    assert "over the limits: flash 29.3 KiB > 25 KiB" in out
    assert "Rejected 4 of 4 candidates:" in out
    assert "quality drop over 0 pp accuracy" in out and "--max-acc-drop" in out and "now 7" in out
    # Without a terminal: one progress line per evaluation, with the verdict's unit.
    lines = [ln for ln in out.splitlines() if "device evaluations  #" in ln]
    assert len(lines) == 4 and lines[-1].startswith("[") and "4/4 device evaluations" in lines[-1]
    assert any("pp accuracy" in ln for ln in lines)
    assert "estimate: the first device evaluation took" in out


def test_limit_units_follow_the_metric():
    from edgeprune.host.search.rejections import limit_text, reason_parts, with_units

    assert limit_text(2, "accuracy") == "2 pp accuracy"
    assert limit_text(2, "rmse") == "2 % of baseline RMSE"
    assert limit_text(2.5, "return") == "2.5 % of baseline return"
    assert with_units("quality drop 164.51 > 2; flash 3.0 KiB > 1 KiB", "rmse") == (
        "quality drop 164.51 > 2 % of baseline RMSE; flash 3.0 KiB > 1 KiB")
    assert with_units("quality drop 3.10 > 2 (int8 in TFLM; not sent)", "accuracy") == (
        "quality drop 3.10 > 2 pp accuracy (int8 in TFLM; not sent)")
    assert reason_parts("quality drop 3.10 > 2; RAM not measured (int8 in TFLM; not sent to the device)") == [
        "quality drop 3.10 > 2", "RAM not measured"]
    # A reason that already carries its unit is left alone.
    assert with_units("quality drop 3.10 > 2 pp accuracy", "accuracy") == "quality drop 3.10 > 2 pp accuracy"


def _startup_script(run_dir: Path, marker: Path) -> list[str]:
    return [sys.executable, str(HERE / "_startup_run.py"), str(run_dir), str(marker)]


def test_kill_during_start_up_leaves_a_resumable_run_or_none(tmp_path):
    """SIGKILL at the slow part of start-up (loading the task), then at random early moments."""
    cache = EvalCache(tmp_path / "cache.sqlite")
    for i, delay in enumerate([None, 0.0, 0.3, 0.8, 1.5]):
        run_dir, marker = tmp_path / f"run{i}", tmp_path / f"marker{i}"
        proc = subprocess.Popen(_startup_script(run_dir, marker), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if delay is None:
            deadline = time.monotonic() + 120
            while not marker.exists() and time.monotonic() < deadline:
                assert proc.poll() is None
                time.sleep(0.05)
            assert marker.exists()
        else:
            time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert not list(tmp_path.glob(f".run{i}.starting-*")) or not run_dir.exists()
        if not run_dir.exists():
            continue
        res = run_search(None, resume=run_dir, task=FakeTask(), evaluator_factory=_synthetic, cache=cache)
        assert res.device_evaluations == 2
        with RunStore.open_existing(run_dir) as store:
            assert store.get_meta("options")["metric"] == "accuracy"
