"""Several evaluations at once (issue 17): the same configs as one worker, worker deaths retried once, and
in-flight work re-queued after a kill -9 of the whole search."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from doubles.parallel_workers import SyntheticWorkers
from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import RunStore

HERE = Path(__file__).resolve().parent


def _options(out: Path, strategy: str = "random", budget: int = 6, **kw) -> SearchOptions:
    return SearchOptions(strategy=strategy, budget=budget, out=str(out), host_energy=False, max_acc_drop=30.0,
                         use_cache=False, seed=3, **kw)


def _counted(run_dir: Path):
    with RunStore(run_dir) as store:
        return [r for r in store.evaluations() if r.counted], store.inflight()


def _single(tmp_path, fake_task, strategy="random", budget=6):
    run_search(_options(tmp_path / "one", strategy, budget), task=fake_task,
               evaluator_factory=lambda t, o, d: SyntheticEvaluator())
    counted, _ = _counted(tmp_path / "one")
    return counted


@pytest.mark.timeout(240)
def test_two_workers_evaluate_the_same_configs_as_one(tmp_path, fake_task):
    one = _single(tmp_path, fake_task)
    run_search(_options(tmp_path / "two", workers=2), task=fake_task,
               evaluator_factory=lambda t, o, d: SyntheticEvaluator(), worker_factory=SyntheticWorkers(delay_s=0.3))
    two, inflight = _counted(tmp_path / "two")
    assert len(one) == len(two) == 6
    assert sorted(r.digest for r in two) == sorted(r.digest for r in one)
    assert {r.digest: r.reward for r in two} == {r.digest: r.reward for r in one}
    pids = {r.result.timings["worker_pid"] for r in two}
    assert len(pids) == 2 and float(os.getpid()) not in pids, pids  # two worker processes, not this one
    assert inflight == []


@pytest.mark.timeout(240)
def test_tpe_asks_a_batch_and_spends_exactly_the_budget(tmp_path, fake_task):
    run_search(_options(tmp_path / "tpe", "tpe", budget=5, workers=2), task=fake_task,
               evaluator_factory=lambda t, o, d: SyntheticEvaluator(), worker_factory=SyntheticWorkers(delay_s=0.2))
    counted, inflight = _counted(tmp_path / "tpe")
    assert len(counted) == 5 and len({r.digest for r in counted}) == 5
    assert inflight == []
    trials = {r.proposal["trial"] for r in counted}
    assert len(trials) == 5


@pytest.mark.timeout(240)
def test_a_dead_worker_costs_one_retry_then_the_evaluation_is_recorded_failed(tmp_path, fake_task):
    control = tmp_path / "control"
    control.mkdir()
    (control / "die-once").touch()
    (control / "poison").touch()
    run_search(_options(tmp_path / "run", workers=2), task=fake_task,
               evaluator_factory=lambda t, o, d: SyntheticEvaluator(),
               worker_factory=SyntheticWorkers(delay_s=0.3, control=str(control)))
    counted, inflight = _counted(tmp_path / "run")
    by_digest = {r.digest: r for r in counted}
    died_once = next(p.name.split("-", 2)[2] for p in control.glob("die-once-*"))
    poisoned = next(p.name.split("-", 1)[1] for p in control.glob("poison-*"))
    retried = by_digest[died_once]
    assert retried.result.error is None and retried.proposal["worker_tries"] == 2
    failed = by_digest[poisoned]
    assert failed.result.error.startswith("WorkerFailed:") and "died" in failed.result.error
    assert failed.proposal["worker_tries"] == 2 and not failed.feasible
    assert len(counted) == 6 and len(by_digest) == 6 and inflight == []
    # The rest were measured normally, by the replacement workers too.
    assert sum(r.result.error is None for r in counted) == 5


def _inflight_rows(run_dir: Path) -> tuple[int, list[str]]:
    db = run_dir / "evaluations.sqlite"
    if not db.exists():
        return 0, []
    try:
        with sqlite3.connect(str(db), timeout=5) as conn:
            done = conn.execute("SELECT COUNT(*) FROM evaluations WHERE counted = 1").fetchone()[0]
            rows = [r[0] for r in conn.execute("SELECT digest FROM inflight").fetchall()]
    except sqlite3.OperationalError:  # tables not there yet
        return 0, []
    return int(done), rows


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_kill_9_of_the_whole_search_requeues_its_inflight_work_once(tmp_path, fake_task):
    expected = sorted(r.digest for r in _single(tmp_path, fake_task, budget=8))
    run_dir = tmp_path / "killed"
    entry = [sys.executable, str(HERE / "_parallel_run.py"), str(run_dir), "8", "1.5"]
    proc = subprocess.Popen(entry, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done, inflight = _inflight_rows(run_dir)
        if done >= 2 and len(inflight) == 2:
            break
        assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")[-3000:]
        time.sleep(0.1)
    else:
        pytest.fail("the search never had two evaluations in flight")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    _, lost = _inflight_rows(run_dir)
    counted_before, _ = _counted(run_dir)
    assert lost and not set(lost) & {r.digest for r in counted_before}
    out = subprocess.run(entry, capture_output=True, timeout=240)
    assert out.returncode == 0, out.stdout.decode(errors="replace")[-3000:] + out.stderr.decode(errors="replace")[-3000:]
    counted, inflight = _counted(run_dir)
    digests = [r.digest for r in counted]
    assert sorted(digests) == expected  # nothing lost, nothing measured twice, the same configs as one worker
    assert set(lost) <= set(digests) and inflight == []
    assert all(r.result.error is None for r in counted)


def test_boards_with_different_builds_or_cores_are_refused_by_name():
    from doubles.sim_device import SimConfig, SimDevice

    from edgeprune.host.search.parallel import PoolError
    from edgeprune.host.search.pool import check_boards

    with SimDevice(SimConfig(build_id="sim-a")) as a, SimDevice(SimConfig(build_id="sim-a")) as b:
        check_boards([a.port, b.port])
        with SimDevice(SimConfig(build_id="sim-b")) as c:
            with pytest.raises(PoolError, match=f"board {c.port} reports build_id 'sim-b'"):
                check_boards([a.port, b.port, c.port])
        with SimDevice(SimConfig(build_id="sim-a", core="m7")) as d:
            with pytest.raises(PoolError, match=f"board {d.port} reports core"):
                check_boards([a.port, d.port])


def test_worker_counts(monkeypatch):
    from edgeprune.host.search import parallel
    from edgeprune.host.search.parallel import PoolError, parse_workers, worker_count, worker_devices

    assert parse_workers("auto") == "auto" and parse_workers("3") == 3
    with pytest.raises(PoolError):
        parse_workers("0")
    assert worker_count(4, ["qemu:m4"], True) == 4
    monkeypatch.setattr(parallel, "available_cores", lambda: 3)
    assert worker_count("auto", ["qemu:m4"], True) == 3  # one emulator per core
    assert worker_count("auto", ["/dev/a", "/dev/b"], False) == 2  # no more workers than boards
    monkeypatch.setattr(parallel, "available_cores", lambda: 1)
    assert worker_count("auto", ["/dev/a", "/dev/b"], False) == 1  # nor than cores
    assert worker_count(1, ["/dev/a", "/dev/b"], False) == 2  # several boards: one worker each
    with pytest.raises(PoolError, match="one worker per board"):
        worker_count(3, ["/dev/a", "/dev/b"], False)
    assert worker_devices("qemu:m4", 3) == ["qemu:m4"] * 3
    assert worker_devices("/dev/a,/dev/b", 2) == ["/dev/a", "/dev/b"]
