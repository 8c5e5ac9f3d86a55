"""Proposals that can pass (issue 28, item 4): per-layer bounds that start from the baseline's sensitivity, move
outward on passing candidates and tighten on quality rejections, for every strategy — and a seeded sequence
(random) still evaluates the same configs with one worker or two."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from doubles.parallel_workers import SyntheticWorkers
from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.host.compress.config import CompressionConfig, LayerConfig
from edgeprune.host.search import run_loop, sensitivity
from edgeprune.host.search.bounds import (
    CAP_FLOOR,
    EXPAND,
    SHRINK,
    LaggedFeed,
    LayerBounds,
    intensity,
    setting,
)
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.space import ConfigSpace
from edgeprune.host.search.store import RunStore
from edgeprune.host.search.strategies import STRATEGIES

NAMES = ("gru0", "gru1", "head")
START = {"gru0.prune": 0.25, "gru1.prune": 0.5, "gru0.sparsity": 0.25, "gru1.sparsity": 0.25, "head.sparsity": 0.25,
         "gru0.rank": 0.25, "gru1.rank": 0.25, "head.rank": 0.25}


def _config(**prunes: float) -> CompressionConfig:
    layers = tuple(LayerConfig(n, prune=prunes.get(n, 0.0)) for n in NAMES[:2]) + (LayerConfig("head"),)
    return CompressionConfig(layers=layers)


@pytest.mark.parametrize("kind,level", [("prune", 0.4), ("sparsity", 0.7), ("rank", 0.3), ("prune", 1.0)])
def test_intensity_inverts_setting(kind, level):
    assert intensity(kind, setting(kind, level)) == pytest.approx(level, abs=1e-6)


def test_caps_move_outward_on_a_pass_and_inward_on_a_quality_rejection():
    bounds = LayerBounds(dict(START))
    light = _config(gru0=setting("prune", 0.2))
    bounds.observe(light, True)
    assert bounds.cap("gru0", "prune") == pytest.approx(0.2 + EXPAND)
    assert bounds.cap("gru1", "prune") == 0.5  # not used: no evidence about it
    heavy = _config(gru1=setting("prune", 0.45))
    bounds.observe(heavy, False)
    assert bounds.cap("gru1", "prune") == pytest.approx(0.5 * SHRINK)
    for _ in range(20):
        bounds.observe(heavy, False)
    assert bounds.cap("gru1", "prune") == CAP_FLOOR
    bounds.observe(heavy, None)  # a flash rejection says nothing about quality
    assert bounds.cap("gru1", "prune") == CAP_FLOOR


def test_every_mapping_of_the_space_stays_within_the_caps():
    space = ConfigSpace(NAMES, finetune_steps=0)
    space.bounds = LayerBounds(dict(START))
    hi = [1.0] * len(space.knobs)
    configs = [space.vector(hi), space.continuous([1.0, 1.0, 1.0, 1.0]), space.discrete(15), space.retain(0.1)]
    for config in configs:
        for lc in config.layers:
            for kind, value in (("prune", lc.prune), ("sparsity", lc.sparsity), ("rank", lc.rank_frac)):
                assert intensity(kind, value) <= space.bounds.cap(lc.name, kind) + 0.02, (config, lc, kind)
    # A vector strategy's coordinate is scaled, not clipped: half the range is half the cap.
    half = space.vector([0.5 if k.name == "gru1.prune" else 0.0 for k in space.knobs])
    assert intensity("prune", half.layer("gru1").prune) == pytest.approx(0.25, abs=0.02)


def test_the_lagged_feed_sees_outcomes_in_proposal_order_one_behind():
    bounds = LayerBounds({"gru0.prune": 0.25})
    feed = LaggedFeed(bounds)
    passed = SimpleNamespace(verdict=SimpleNamespace(feasible=True, reason=""),
                             result=SimpleNamespace(error=None, config_json=_config(gru0=setting("prune", 0.25)).to_json()))
    feed.add(1, passed)
    feed.before(2)
    assert feed.fed == 0 and bounds.cap("gru0", "prune") == 0.25  # proposal 0's outcome is not known yet
    assert feed.needed(2) == 0
    feed.add(0, passed)
    feed.before(2)
    assert feed.fed == 1 and bounds.cap("gru0", "prune") == pytest.approx(0.5)
    feed.before(3, lost=lambda i: False)
    assert feed.fed == 2


@pytest.fixture
def bounded(monkeypatch):
    """Runs of the synthetic task start from ``START`` (its stand-in has no model to measure)."""
    # Patched where the run loop looks it up (host/search/run_loop.py imports it at module top).
    monkeypatch.setattr(run_loop, "search_bounds", lambda task, space, objective, limit: LayerBounds(dict(START)))


def _options(out, strategy="random", budget=6, **kw):
    return SearchOptions(strategy=strategy, budget=budget, out=str(out), host_energy=False, max_acc_drop=6.0,
                         use_cache=False, seed=3, **kw)


@pytest.mark.timeout(240)
def test_two_workers_evaluate_the_same_bounded_configs_as_one(tmp_path, fake_task, bounded):
    run_search(_options(tmp_path / "one"), task=fake_task, evaluator_factory=lambda t, o, d: SyntheticEvaluator())
    run_search(_options(tmp_path / "two", workers=2), task=fake_task,
               evaluator_factory=lambda t, o, d: SyntheticEvaluator(), worker_factory=SyntheticWorkers(delay_s=0.2))
    with RunStore(tmp_path / "one") as one, RunStore(tmp_path / "two") as two:
        a = {r.proposal["index"]: r.digest for r in one.evaluations("candidate")}
        b = {r.proposal["index"]: r.digest for r in two.evaluations("candidate")}
    assert a == b


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_proposes_within_the_bounds_first(tmp_path, fake_task, bounded, strategy):
    run_search(_options(tmp_path / "run", strategy, budget=4), task=fake_task,
               evaluator_factory=lambda t, o, d: SyntheticEvaluator())
    with RunStore(tmp_path / "run") as store:
        first = store.evaluations("candidate")[0]
    config = CompressionConfig.from_json(first.result.config_json)
    for lc in config.layers:
        for kind, value in (("prune", lc.prune), ("sparsity", lc.sparsity), ("rank", lc.rank_frac)):
            assert intensity(kind, value) <= START.get(f"{lc.name}.{kind}", 1.0) + 0.02, (strategy, lc, kind)


def test_initial_bounds_take_the_highest_level_within_tolerance():
    qualities = {"gru0.prune": [0.60, 0.58, 0.40, 0.20], "gru1.prune": [0.30, 0.6, 0.6, 0.6],
                 "head.rank": [math.nan] * 4}
    bounds = sensitivity.initial_bounds(qualities, lambda q: 100.0 * (0.6 - q), 1.0)
    assert bounds.cap("gru0", "prune") == 0.5  # 2 pp at 0.5, 20 pp at 0.75 (tolerance 10 limits)
    assert bounds.cap("gru1", "prune") == CAP_FLOOR  # the first level already too far: the floor
    assert bounds.cap("head", "rank") == CAP_FLOOR


def test_sensitivity_is_measured_once_per_baseline_whatever_the_run_seed(fake_task):
    one, other = ConfigSpace(NAMES, seed=0), ConfigSpace(NAMES, seed=7)
    assert sensitivity._cache_path(fake_task, one) == sensitivity._cache_path(fake_task, other)
    assert sensitivity._config(other, "gru0", "prune", 0.5).seed == sensitivity.SENSITIVITY_SEED
