"""A killed-and-resumed search is the search that was not killed (issue 32, item 1).

The same command and seed run once straight through and once SIGKILLed at chosen moments — before the first
device evaluation, inside a streak of host rejections, just after a device evaluation — and resumed each time.
The two stores must hold the same rows in the same order: configs, origins, budget use, verdicts, rewards and
figures, so the best point and the reason the run stopped are the same too.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgeprune.host.search.store import RunStore

HERE = Path(__file__).resolve().parent
ENTRY = HERE / "_resume_run.py"
BUDGET = 4
DELAY_S = 0.1
STEP_TIMEOUT_S = 180.0


def _start(run_dir: Path, strategy: str, max_drop: float, cache: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ENTRY), str(run_dir), strategy, str(BUDGET), str(max_drop),
                             str(DELAY_S), str(cache)],
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=STEP_TIMEOUT_S)
    assert proc.returncode == 0 and b"FINISHED" in out, out.decode(errors="replace")[-3000:]


def _candidates(run_dir: Path) -> list:
    if not (run_dir / "evaluations.sqlite").exists():
        return []
    with RunStore(run_dir) as store:
        return store.evaluations("candidate")


def rows(run_dir: Path) -> list[tuple]:
    """Everything a row says that does not depend on the clock."""
    with RunStore(run_dir) as store:
        return [(r.seq, r.kind, r.digest, r.origin, r.counted, r.feasible, r.reason, r.reward, r.result.error,
                 sorted((k, f.value, f.unit, f.source, f.detail) for k, f in r.result.figures.items()))
                for r in store.evaluations()]


def trailing_host(cands: list) -> int:
    n = 0
    for r in reversed(cands):
        if r.origin != "host":
            break
        n += 1
    return n


Moment = tuple[str, Callable[[list], bool]]
MOMENTS: list[Moment] = [
    ("before the first device evaluation", lambda c: len(c) >= 1 and not any(r.counted for r in c)),
    ("inside a streak of host rejections", lambda c: any(r.counted for r in c) and trailing_host(c) >= 3),
    ("just after a device evaluation", lambda c: sum(r.counted for r in c) >= 2 and c[-1].counted),
]


def _kill_at(proc: subprocess.Popen, run_dir: Path, name: str, when: Callable[[list], bool]) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not when(_candidates(run_dir)):
        assert proc.poll() is None, f"the run ended before the moment '{name}': " + proc.stdout.read().decode()[-2000:]
        assert time.monotonic() < deadline, f"no moment '{name}' within {STEP_TIMEOUT_S} s"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with sqlite3.connect(run_dir / "evaluations.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("strategy", "max_drop"), [
    ("ppo", 16.0),  # stops on its streak of host rejections with half its budget unused (the case)
    ("tpe", 23.0),  # spends its budget between host rejections
])
def test_killed_and_resumed_run_is_the_unkilled_run(tmp_path, strategy, max_drop):
    reference = tmp_path / "reference"
    _finish(_start(reference, strategy, max_drop, tmp_path / "reference-cache.sqlite"))
    expected = rows(reference)
    origins = "".join(r[3][0] for r in expected if r[1] == "candidate")
    # The scenario the kills need: host rejections before the first device evaluation and a streak after one.
    assert origins.startswith("h") and "Dhhh" in origins.replace("d", "D"), origins

    killed = tmp_path / "killed"
    cache = tmp_path / "killed-cache.sqlite"
    for name, when in MOMENTS:
        _kill_at(_start(killed, strategy, max_drop, cache), killed, name, when)
    _finish(_start(killed, strategy, max_drop, cache))

    got = rows(killed)
    for i, (a, b) in enumerate(zip(got, expected, strict=False)):
        assert a == b, f"row {i} differs after the kills:\n resumed   {a}\n unkilled  {b}"
    assert len(got) == len(expected), (len(got), len(expected))
    with RunStore(killed) as a, RunStore(reference) as b:
        assert a.get_meta("finished") is not None
        assert a.device_evaluations() == b.device_evaluations()
    from edgeprune.host.report.load import load_run

    best_a, best_b = load_run(killed).best, load_run(reference).best
    assert (best_a and best_a.digest) == (best_b and best_b.digest)

    # The advice fits why the run stopped (item 7): a larger budget only for a run that spent its budget.
    from edgeprune.host.search.rejections import rejection_summary

    advice = "\n".join(rejection_summary(load_run(killed)))
    unused = BUDGET - sum(r[4] for r in expected)
    assert "quality drop over" in advice, advice
    if unused:
        assert "--budget" not in advice, advice
        assert f"with {unused} of {BUDGET} device evaluations unused" in advice, advice
    else:
        assert "spend a larger --budget" in advice, advice
