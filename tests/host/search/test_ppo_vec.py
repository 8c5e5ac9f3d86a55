"""PPO and DQN with several workers step one environment per worker together (``PoolVecEnv``): both workers measure,
the budget is spent exactly, and every environment keeps its own episode."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from doubles.parallel_workers import SyntheticWorkers
from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import RunStore


@pytest.mark.timeout(240)
@pytest.mark.parametrize("strategy", ["ppo", "dqn"])
def test_sb3_agents_with_two_workers_measure_two_candidates_per_step(tmp_path, fake_task, caplog, strategy):
    opts = SearchOptions(strategy=strategy, budget=8, out=str(tmp_path / "run"), host_energy=False, max_acc_drop=30.0,
                         use_cache=False, seed=5, workers=2)
    run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: SyntheticEvaluator(),
               worker_factory=SyntheticWorkers(delay_s=0.2))
    with RunStore(tmp_path / "run") as store:
        counted = [r for r in store.evaluations() if r.counted]
        inflight = store.inflight()
    assert len(counted) == 8 and inflight == []
    assert not any("one at a time" in m for m in caplog.messages)
    pids = {r.result.timings["worker_pid"] for r in counted}
    assert len(pids) == 2 and float(os.getpid()) not in pids
    # Two environments in lock step: each episode step is proposed by both (re-proposals answered from the
    # store are not counted, so count over every stored proposal).
    with RunStore(tmp_path / "run") as store:
        steps = Counter(r.proposal["episode_step"] for r in store.evaluations() if "episode_step" in r.proposal)
    assert steps and all(n % 2 == 0 for n in steps.values()), steps
