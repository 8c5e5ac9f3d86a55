"""Ctrl-C or SIGTERM at any moment of a search keeps ``--out`` resumable and says how to resume, in one line
(issue 32, item 4). The signals go to a real ``edgeprune search`` subprocess (``_cli_stub_run.py``)."""

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
ENTRY = HERE / "_cli_stub_run.py"
BUDGET = 3


def _search(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "EDGEPRUNE_CACHE": str(tmp_path / "cache"), "EP_TEST_DELAY": "0.3"}
    return subprocess.Popen([sys.executable, str(ENTRY), "search", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_phase(proc: subprocess.Popen, phase: Path, names: tuple[str, ...], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not (phase.exists() and phase.read_text() in names):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, f"no phase {names}"
        time.sleep(0.02)


def _counted(run: Path) -> int:
    with RunStore.open_existing(run) as store:
        return store.device_evaluations()


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "moment"), [(signal.SIGINT, "baseline"), (signal.SIGTERM, "baseline"),
                                             (signal.SIGTERM, "load+measure")])
def test_interrupt_keeps_a_resumable_run_and_says_how(tmp_path, sig, moment):
    """``baseline``: before anything is stored but the options; ``load+measure``: inside the loop."""
    run, phase = tmp_path / "run", tmp_path / "run.phase"
    proc = _search(tmp_path, "--out", str(run), "--strategy", "random", "--budget", str(BUDGET), "--no-host-energy",
                   "--max-acc-drop", "30", "--no-cache")
    _wait_phase(proc, phase, (moment,))
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, (proc.returncode, err[-3000:])
    assert "Traceback" not in out + err and "Aborted" not in err, err[-3000:]
    how = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1] == (f"interrupted ({how}); every evaluation stored so far is kept: continue with "
                         f"`edgeprune search --resume {run}`"), err[-2000:]
    assert run.is_dir() and (run / "evaluations.sqlite").is_file()
    assert not list(tmp_path.glob(".run.starting-*"))
    before = _counted(run)
    assert before < BUDGET

    resumed = _search(tmp_path, "--resume", str(run))
    out, err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, err[-3000:]
    assert _counted(run) == BUDGET
