"""The search machinery on its own (store, cache, budget, strategies, front, report) with an analytic
stand-in evaluator, so these run in seconds; the device path is in test_search_qemu.py."""

from __future__ import annotations

import json
import sqlite3

import pytest
from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.host.report import generate_report
from edgeprune.host.search.front import pareto_front
from edgeprune.host.search.objective import Constraints
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.run_dir import RunDirError
from edgeprune.host.search.store import EvalCache, RunStore
from edgeprune.host.search.strategies import STRATEGIES


def _run(tmp_path, fake_task, strategy, budget=6, name="run", evaluator=None, cache=None, **kw):
    ev = evaluator or SyntheticEvaluator()
    opts = SearchOptions(strategy=strategy, budget=budget, out=str(tmp_path / name), host_energy=False,
                         max_acc_drop=kw.pop("max_acc_drop", 8.0), **kw)
    res = run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: ev,
                     cache=cache or EvalCache(tmp_path / "cache.sqlite"), write_report=generate_report)
    return res, ev


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_spends_exactly_the_budget(tmp_path, fake_task, strategy):
    res, ev = _run(tmp_path, fake_task, strategy, budget=6)
    # The stand-in counts real calls: baseline + exactly the budget, never a config twice.
    assert len(ev.calls) == 7
    assert len(set(ev.calls)) == 7
    with RunStore.open_existing(res.run_dir) as store:
        rows = store.evaluations("candidate")
        assert store.device_evaluations() == 6
        assert all(r.strategy == strategy for r in rows)
        assert all(r.origin in ("device", "run") for r in rows)
        front = pareto_front(store.evaluations(), True)
    assert all(p.evaluation.feasible for p in front)
    assert res.front_size == len(front)
    assert res.report_html.is_file()
    for f in ("front.json", "front.csv", "pareto.png", "strategies.png", "layers.png"):
        assert (res.run_dir / f).is_file(), f


def test_infeasible_candidates_get_penalty_and_reason(tmp_path, fake_task):
    res, _ = _run(tmp_path, fake_task, "uniform", budget=5, flash_kb=25.0, max_acc_drop=30.0)
    with RunStore.open_existing(res.run_dir) as store:
        rows = store.evaluations("candidate")
    bad = [r for r in rows if not r.feasible]
    good = [r for r in rows if r.feasible]
    assert bad and good
    assert all("flash" in r.reason and r.reward <= -1.0 for r in bad)
    assert all(r.result.value("flash_bytes") <= 25 * 1024 for r in good)
    assert max(r.reward for r in bad) < min(r.reward for r in good)


def test_cache_hit_across_runs_is_recorded_but_not_counted(tmp_path, fake_task):
    cache = EvalCache(tmp_path / "cache.sqlite")
    _run(tmp_path, fake_task, "uniform", budget=4, name="a", cache=cache)
    ev2 = SyntheticEvaluator()
    res, _ = _run(tmp_path, fake_task, "uniform", budget=6, name="b", evaluator=ev2, cache=cache)
    with RunStore.open_existing(res.run_dir) as store:
        rows = store.evaluations()
        cand = store.evaluations("candidate")
        assert store.device_evaluations() == 6
    # The baseline and the sweep points shared with run "a" come from the cache...
    assert rows[0].kind == "baseline" and rows[0].origin == "cache"
    hits = [r for r in cand if r.origin == "cache"]
    assert hits and all(not r.counted for r in hits)
    # ...and are never measured again: run "b" measured exactly its 6 new configs.
    assert len(ev2.calls) == 6
    assert not {r.digest for r in hits} & set(ev2.calls)


def test_cache_key_includes_target_and_build(tmp_path, fake_task):
    cache = EvalCache(tmp_path / "cache.sqlite")
    _run(tmp_path, fake_task, "uniform", budget=3, name="a", cache=cache)
    ev = SyntheticEvaluator(build_id="b2")
    _run(tmp_path, fake_task, "uniform", budget=3, name="b", evaluator=ev, cache=cache)
    assert len(ev.calls) == 4  # new firmware build: nothing reused


def test_store_is_wal_full_and_refuses_reuse(tmp_path, fake_task):
    res, _ = _run(tmp_path, fake_task, "random", budget=3)
    conn = sqlite3.connect(res.run_dir / "evaluations.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with pytest.raises(RunDirError):
        _run(tmp_path, fake_task, "random", budget=3)


def test_front_json_points_are_nondominated(tmp_path, fake_task):
    res, _ = _run(tmp_path, fake_task, "random", budget=8, max_acc_drop=40.0)
    pts = json.loads((res.run_dir / "front.json").read_text())["points"]
    assert len(pts) == res.front_size >= 1
    keys = ("latency_count", "flash_bytes", "energy_uj")
    for a in pts:
        for b in pts:
            if a is b:
                continue
            better_eq = b["figures"]["quality"]["value"] >= a["figures"]["quality"]["value"] and all(
                b["figures"][k]["value"] <= a["figures"][k]["value"] for k in keys)
            strictly = b["figures"]["quality"]["value"] > a["figures"]["quality"]["value"] or any(
                b["figures"][k]["value"] < a["figures"][k]["value"] for k in keys)
            assert not (better_eq and strictly)
    for p in pts:
        assert all("source" in f for f in p["figures"].values())


def test_report_overlays_runs(tmp_path, fake_task):

    a, _ = _run(tmp_path, fake_task, "uniform", budget=3, name="a")
    b, _ = _run(tmp_path, fake_task, "random", budget=3, name="b")
    out = generate_report([a.run_dir, b.run_dir], tmp_path / "cmp")
    text = out.read_text()
    assert "data:image/png;base64," in text and "src=\"http" not in text
    assert "uniform (a)" in text and "random (b)" in text


def test_constraints_drop_units(fake_task):
    from edgeprune.host.search.objective import Objective
    from edgeprune.host.search.types import EvalResult, FigureRecord

    def res(q):
        return EvalResult("{}", "d", {"quality": FigureRecord(q, "accuracy", "qemu")})

    obj = Objective(res(0.80), "accuracy", True, Constraints(max_acc_drop=1.0))
    assert obj.drop(0.79) == pytest.approx(1.0)
    assert obj.judge(res(0.795)).feasible
    v = obj.judge(res(0.78))
    assert not v.feasible and "quality drop 2.00 > 1" in v.reason
    ret = Objective(res(200.0), "return", True, Constraints(max_acc_drop=5.0))
    assert ret.drop(190.0) == pytest.approx(5.0)


def test_registered_env_steps_through_the_session(tmp_path, fake_task):
    import gymnasium as gym
    import numpy as np

    from edgeprune.host.search.env import ENV_ID
    from edgeprune.host.search.objective import OBS_FEATURES
    from edgeprune.host.search.session import BudgetExhausted, SearchSession
    from edgeprune.host.search.space import ConfigSpace

    space = ConfigSpace(fake_task.layer_names, prune_scale="linear")  # rates as the comments say
    with RunStore(tmp_path / "r") as store:
        session = SearchSession(SyntheticEvaluator(), store, None, strategy="ppo", budget=3,
                                constraints=Constraints(5.0, flash_kb=28.5), metric="accuracy",
                                higher_is_better=True)
        session.ensure_baseline(space.identity())
        env = gym.make(ENV_ID, session=session, task=fake_task, mode="continuous", horizon=2, space=space,
                       disable_env_checker=True)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (len(OBS_FEATURES) + 1,) and env.action_space.shape == (4,)
        assert env.action_space.low.min() == -1.0
        # Light compression, int8: feasible, cheaper than the baseline.
        obs, reward, terminated, truncated, info = env.step(np.array([-0.8, -0.8, -0.8, 0.8], dtype=np.float32))  # rates 0.1, int8
        assert info["feasible"] and reward > -1.0 and not terminated
        lat = OBS_FEATURES.index("latency_ratio")
        assert 0 < obs[lat] < 1
        # float32 (a3 < 0.5): over the 28.5 KiB flash limit → penalty and the reason.
        obs, reward, terminated, _, info = env.step(np.array([-0.8, -0.8, -0.8, -0.8], dtype=np.float32))
        assert not info["feasible"] and "flash" in info["reason"] and reward <= -1.0
        assert terminated  # horizon 2
        env.reset()
        env.step(np.array([0.0, 0.0, 0.0, 0.8], dtype=np.float32))
        with pytest.raises(BudgetExhausted):
            env.step(np.array([0.2, 0.2, 0.2, 0.8], dtype=np.float32))
        assert store.device_evaluations() == 3


def test_bad_device_fails_with_one_line_and_leaves_no_run_dir(tmp_path, fake_task):
    from edgeprune.bench.targets import TargetError

    out = tmp_path / "never"
    with pytest.raises(TargetError, match="expected qemu"):
        run_search(SearchOptions(device="ttyUSB0", out=str(out)), task=fake_task)
    assert not out.exists()
