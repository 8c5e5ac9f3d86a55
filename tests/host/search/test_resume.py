"""kill -9 in the middle of a search, then ``--resume``: nothing lost, nothing measured twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeprune.host.search.store import RunStore

HERE = Path(__file__).resolve().parent


def _device_rows(run_dir: Path):
    if not (run_dir / "evaluations.sqlite").exists():
        return []
    with RunStore(run_dir) as store:
        return [r for r in store.evaluations() if r.counted]


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def kill_when(proc: subprocess.Popen, run_dir: Path, n: int, timeout_s: float = 120.0) -> None:
    """SIGKILL the process group once ``n`` device evaluations are committed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        if len(_device_rows(run_dir)) >= n:
            break
        time.sleep(0.05)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"search did not reach {n} evaluations in {timeout_s} s")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ppo", "dqn"])  # Optuna resume: test_search_qemu.py
def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path, strategy):
    run_dir, cache = tmp_path / "run", tmp_path / "cache.sqlite"
    budget = 8
    proc = _start([str(HERE / "_synthetic_run.py"), str(run_dir), strategy, str(budget), "0", str(cache)])
    kill_when(proc, run_dir, 3)
    before = _device_rows(run_dir)
    assert 3 <= len(before) < budget
    # One worker keeps no agent state of its own: the store is replayed to a strategy restarted from its seed.
    assert not list((run_dir / "agent").glob("ckpt-*"))

    res = subprocess.run([sys.executable, str(HERE / "_synthetic_run.py"), str(run_dir), strategy, str(budget), "1",
                          str(cache)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    after = _device_rows(run_dir)
    # Nothing lost: the pre-kill evaluations are still there, unchanged, in order.
    assert [(r.seq, r.digest, r.reward) for r in after[: len(before)]] == [(r.seq, r.digest, r.reward) for r in before]
    # Nothing repeated: exactly the budget was measured, each config once.
    assert len(after) == budget
    assert len({r.digest for r in after}) == budget
    with RunStore(run_dir) as store:
        assert store.get_meta("finished") is not None
    assert (run_dir / "report.html").is_file()
