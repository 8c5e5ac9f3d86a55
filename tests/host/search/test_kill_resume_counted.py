"""SIGKILL a search at ≥ 10 random moments, resume each time: the finished evaluations equal an uninterrupted
run's with the same seed, none measured twice, none lost, the store intact, nothing left running
(issue 16, deliverable 1)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from edgeprune.host.search.store import RunStore

HERE = Path(__file__).resolve().parent
ENTRY = HERE / "_kill_run.py"
BUDGET = 16
DELAY_S = 0.2  # per phase of a synthetic evaluation (fine-tune, export, load + measure)
KILLS = 10
STEP_TIMEOUT_S = 120.0


def _start(run_dir: Path, strategy: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ENTRY), str(run_dir), strategy, str(BUDGET), str(DELAY_S)],
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _counted(run_dir: Path) -> list:
    if not (run_dir / "evaluations.sqlite").exists():
        return []
    with RunStore(run_dir) as store:
        return [r for r in store.evaluations() if r.counted]


def _group_alive(pgid: int) -> list[int]:
    alive = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(proc.pid), "a process of the killed search is still running"


def _finished(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=STEP_TIMEOUT_S)
    text = out.decode(errors="replace")
    assert proc.returncode == 0 and "FINISHED" in text, text[-3000:]
    return text


def _evaluations(run_dir: Path) -> list[tuple[str, float | None, bool]]:
    return [(r.digest, r.reward, r.feasible) for r in _counted(run_dir)]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("strategy", ["random"])
def test_ten_random_sigkills_lose_and_repeat_nothing(tmp_path, strategy):
    started = time.monotonic()
    reference = tmp_path / "reference"
    _finished(_start(reference, strategy))
    expected = _evaluations(reference)
    assert len(expected) == BUDGET

    run_dir = tmp_path / "killed"
    rng = random.Random(16)
    moments: list[str] = []
    progress: list[int] = []
    phase_file = run_dir.parent / f"{run_dir.name}.phase"
    while len(moments) < KILLS:
        phase_file.unlink(missing_ok=True)  # absent until the new process is past its imports
        proc = _start(run_dir, strategy)
        before = len(_counted(run_dir))
        if rng.random() < 0.4:
            # Anywhere: start-up (imports, run directory, baseline), strategy set-up, or the loop.
            time.sleep(rng.uniform(0.2, 7.0))
        else:
            # Inside the loop: just after an evaluation was committed, during the next measurement or store write.
            deadline = time.monotonic() + STEP_TIMEOUT_S
            while len(_counted(run_dir)) <= before and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, DELAY_S * 3.5))
        if proc.poll() is not None:  # it finished before the kill: resume again, and kill that
            _finished(proc)
            continue
        _kill(proc)
        noted = phase_file.read_text() if phase_file.exists() else "start-up"
        moments.append(noted or "between phases")  # empty: killed while the note itself was written
        progress.append(len(_counted(run_dir)))
        # Every kill leaves a store that passes SQLite's own check.
        if (run_dir / "evaluations.sqlite").exists():
            with sqlite3.connect(run_dir / "evaluations.sqlite") as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    _finished(_start(run_dir, strategy))

    got = _evaluations(run_dir)
    digests = [d for d, _, _ in got]
    assert len(digests) == len(set(digests)), "a config was measured twice"
    assert got == expected, "the resumed run's evaluations differ from the uninterrupted run's"
    with sqlite3.connect(run_dir / "evaluations.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with RunStore(run_dir) as store:
        assert store.get_meta("finished") is not None
        assert len(store.evaluations("baseline")) == 1
    assert not list(run_dir.glob(".qemu.pid"))
    assert len(moments) >= KILLS
    phases = {p: moments.count(p) for p in sorted(set(moments))}
    # The kills must land in more than start-up: inside the evaluation loop at least once.
    assert set(phases) & {"fine-tune", "export", "load+measure", "store-write"}, phases
    sys.stderr.write(f"kills {len(moments)} by phase {phases}; evaluations at each kill {progress}; "
                     f"{time.monotonic() - started:.0f} s\n")
