"""Issue 32, item 7: temporaries of interrupted exports are swept, ``flash --env nope`` names the env.

(The rejection-streak advice is checked on a real stopped run in test_resume_reproduces.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgeprune.bench.atomic import sweep_stale_tmp


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def test_sweep_removes_only_temporaries_of_dead_writers(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    for name in (f".m.tmp-{dead}-abc", f".m.tmp-{alive}-def", ".m.tmp-old", ".m.tmp-young", f".other.tmp-{dead}-x"):
        (tmp_path / name).mkdir()
    old = time.time() - 2 * 24 * 3600
    os.utime(tmp_path / ".m.tmp-old", (old, old))
    assert sweep_stale_tmp(tmp_path, ".m.tmp-") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".m.tmp-{alive}-def", ".m.tmp-young",
                                                          f".other.tmp-{dead}-x"]


@pytest.mark.tf
def test_export_sweeps_what_an_interrupted_export_left(tmp_path):
    import torch

    from edgeprune.export import export_model
    from edgeprune.host.models import MLP

    torch.manual_seed(0)
    out = tmp_path / "0123456789abcdef"
    stale = tmp_path / f".{out.name}.tmp-{_dead_pid()}-k9"  # what a kill -9 mid-export leaves
    (stale / "work").mkdir(parents=True)
    export_model(MLP([4, 8, 2]), np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32), out, name="m")
    assert (out / "model.tflite").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_flash_unknown_env_is_named(tmp_path):
    exe = Path(sys.executable).with_name("edgeprune")
    res = subprocess.run([str(exe), "flash", "--env", "nope"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--env nope: no such PlatformIO env in platformio.ini" in lines[0], lines
    assert "nucleo_l4r5zi" in lines[0] and "--port" not in lines[0]


def test_parallel_resume_takes_its_streaks_from_the_store(tmp_path, fake_task):
    """Workers > 1 cannot replay (results come back in no fixed order), but the streaks still come from the
    store: a run stopped inside a streak of host rejections does not get a fresh streak on resume."""
    from edgeprune.host.search.objective import Constraints
    from edgeprune.host.search.session import SearchSession
    from edgeprune.host.search.store import RunStore
    from tests.doubles.synthetic_evaluator import SyntheticEvaluator

    ev = SyntheticEvaluator()
    base = ev.evaluate(_config(fake_task, 0.0))
    with RunStore(tmp_path / "run") as store:
        store.record(kind="baseline", strategy="random", result=base, origin="device", counted=False, feasible=True,
                     reason="", reward=None, proposal={}, started=0.0)
        origins = ["host", "device", "host", "run", "host", "host"]  # a run answer neither adds to nor ends it
        for i, origin in enumerate(origins):
            store.record(kind="candidate", strategy="random", result=ev.evaluate(_config(fake_task, 0.1 + i / 20)),
                         origin=origin, counted=origin == "device", feasible=False, reason="x", reward=-1.0,
                         proposal={}, started=0.0)
        session = SearchSession(ev, store, None, strategy="random", budget=5, constraints=Constraints(1.0),
                                metric="accuracy", higher_is_better=True, max_screened_streak=3)
        session.ensure_baseline(_config(fake_task, 0.0))
        assert not session.exhausted()
        session.restore_streaks()
        assert session.exhausted() and session.stop_reason == "host-rejections"


def _config(task, prune: float):
    from edgeprune.host.search.space import ConfigSpace

    return ConfigSpace(task.layer_names, finetune_steps=0).retain(1.0 - prune)


def test_a_store_the_strategy_does_not_reproduce_is_answered_not_measured_again(tmp_path, fake_task, caplog):
    """A store whose rows the restarted strategy does not propose again (written by an older edgeprune, or under
    another seed): the replay ends at the first difference and stored configs are still never measured twice."""
    from edgeprune.host.search.options import SearchOptions
    from edgeprune.host.search.run import run_search
    from edgeprune.host.search.store import RunStore
    from tests.doubles.synthetic_evaluator import SyntheticEvaluator

    ev = SyntheticEvaluator()
    opts = SearchOptions(strategy="random", budget=2, out=str(tmp_path / "run"), host_energy=False,
                         max_acc_drop=30.0, use_cache=False, seed=1)
    run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: ev)
    with RunStore(tmp_path / "run") as store:
        store.set_meta("options", store.get_meta("options") | {"seed": 2, "budget": 4})
    with caplog.at_level("WARNING"):
        run_search(None, resume=tmp_path / "run", task=fake_task, evaluator_factory=lambda t, o, d: ev)
    assert "resume: the strategy proposed" in caplog.text
    with RunStore(tmp_path / "run") as store:
        counted = [r.digest for r in store.evaluations("candidate") if r.counted]
    assert len(counted) == 4 == len(set(counted)) and len(set(ev.calls)) == len(ev.calls)
