"""The Ray engine (issue 17): a short search through a local Ray head with two worker slots, and a plain
import of the search that never loads Ray."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from doubles.parallel_workers import SyntheticWorkers
from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import RunStore

HERE = Path(__file__).resolve().parent


def test_the_search_never_imports_ray():
    code = ("import sys\n"
            "import edgeprune.host.search, edgeprune.host.search.run, edgeprune.host.search.engines\n"
            "import edgeprune.host.search.parallel, edgeprune.host.search.pool, edgeprune.host.cli.search_cmd\n"
            "assert 'ray' not in sys.modules, 'ray was imported'\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_short_search_runs_on_a_local_ray_head_with_two_slots(tmp_path, fake_task):
    ray = pytest.importorskip("ray", reason="the edgeprune[ray] extra is not installed (make setup installs it)")
    # Ray's workers import the stand-in factory by module name, as the test process does.
    path = os.pathsep.join([str(HERE.parent), str(HERE.parents[1]), str(HERE.parents[2])])
    # Ray's socket paths must fit in 107 bytes: a short temporary directory, not pytest's deep one.
    temp = tempfile.mkdtemp(prefix="ep-ray-")
    ray.init(num_cpus=2, resources={"edgeprune_m4": 2}, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": path}}, _temp_dir=temp)
    try:
        opts = SearchOptions(strategy="random", budget=6, out=str(tmp_path / "run"), host_energy=False,
                             max_acc_drop=30.0, use_cache=False, seed=3, ray_address="auto")
        run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: SyntheticEvaluator(),
                   worker_factory=SyntheticWorkers(delay_s=0.3))
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    run_search(SearchOptions(strategy="random", budget=6, out=str(tmp_path / "one"), host_energy=False,
                             max_acc_drop=30.0, use_cache=False, seed=3),
               task=fake_task, evaluator_factory=lambda t, o, d: SyntheticEvaluator())
    with RunStore(tmp_path / "run") as a, RunStore(tmp_path / "one") as b:
        on_ray = [r for r in a.evaluations() if r.counted]
        alone = [r for r in b.evaluations() if r.counted]
        assert a.inflight() == []
    assert sorted(r.digest for r in on_ray) == sorted(r.digest for r in alone) and len(on_ray) == 6
    pids = {r.result.timings["worker_pid"] for r in on_ray}
    assert len(pids) == 2 and float(os.getpid()) not in pids  # two actors, neither the driver
