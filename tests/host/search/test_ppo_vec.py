"""PPO and DQN with several workers run one environment per worker (``PoolVecEnv``; DQN steps them together, PPO
each on its own): both workers measure, the budget is spent exactly, and every environment keeps its own episode."""

from __future__ import annotations

import os
import tempfile
from collections import Counter

import pytest
from doubles.parallel_workers import SyntheticWorkers
from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import RunStore


@pytest.mark.timeout(240)
@pytest.mark.parametrize("strategy", ["ppo", "dqn"])
def test_sb3_agents_with_two_workers_measure_two_candidates_per_step(tmp_path, fake_task, caplog, strategy,
                                                                     monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
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
    # SB3's default logger makes an empty SB3-<date> folder in the temp dir per run; a search leaves nothing there
    assert list(scratch.glob("SB3-*")) == []


def _chains(run_dir):
    """Per environment, its proposals in episode order: (episode step, digest, started, finished)."""
    with RunStore(run_dir) as store:
        rows = [r for r in store.evaluations() if "env" in r.proposal]
    chains: dict[int, list] = {}
    for r in sorted(rows, key=lambda r: r.started):
        chains.setdefault(int(r.proposal["env"]), []).append((r.proposal["episode_step"], r.digest, r.started,
                                                              r.finished))
    return chains


@pytest.mark.timeout(240)
def test_ppo_environments_do_not_wait_for_each_other_and_timing_does_not_change_proposals(tmp_path, fake_task):
    """One environment's next candidate goes out as soon as its own comes back (no lock step), and which configs
    each environment proposes does not depend on how long the others' took."""
    def run(name, workers):
        opts = SearchOptions(strategy="ppo", budget=12, out=str(tmp_path / name), host_energy=False,
                             max_acc_drop=30.0, use_cache=False, seed=5, workers=2)
        run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: SyntheticEvaluator(),
                   worker_factory=workers)
        return _chains(tmp_path / name)

    uneven = run("uneven", SyntheticWorkers(delay_s=0.05, slow_s=0.6, slow_parity=0))
    even = run("even", SyntheticWorkers(delay_s=0.2))
    assert sorted(uneven) == sorted(even) == [0, 1]
    # Without lock step, some candidate started before the other environment's previous step had come back.
    overtook = [
        (env, k) for env, chain in uneven.items() for k, (_, _, started, _) in enumerate(chain) if k > 0
        for other, chain2 in uneven.items() if other != env and len(chain2) >= k and started < chain2[k - 1][3] - 0.2
    ]
    assert overtook
    # Same seed, other timings: each environment proposed the same configs in the same order.
    for env in (0, 1):
        n = min(len(uneven[env]), len(even[env]))
        assert n >= 4
        assert [d for _, d, _, _ in uneven[env][:n]] == [d for _, d, _, _ in even[env][:n]]
