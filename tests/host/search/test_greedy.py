"""The greedy precision strategy (issue 30): precision-only trials in batches, largest layers first, a lowered
precision kept only when its candidate is feasible; then a retain-rate sweep at the kept precisions."""

from __future__ import annotations

import pytest
from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.host.compress.config import CompressionConfig, LayerConfig
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.run_checks import LimitError
from edgeprune.host.search.space import ConfigSpace
from edgeprune.host.search.store import EvalCache, RunStore
from edgeprune.host.search.strategies.greedy import layer_order, trials


def test_order_and_batches():
    names = ("fc0", "fc1", "fc2")
    params = {"kind": "mlp", "sizes": [4, 64, 128, 2]}
    assert layer_order(names, params, None) == ["fc1", "fc0", "fc2"]
    assert trials(["conv0", "head", "gru1"], batch=2) == [{"conv0": "int4", "head": "int4"}, {"gru1": "int4"}]


class _RejectsHead(SyntheticEvaluator):
    """Infeasible (accuracy far off) whenever the head is int4."""

    def evaluate(self, config):
        res = super().evaluate(config)
        if config.layer("head").precision == "int4":
            res.figures["quality"] = type(res.figures["quality"])(0.0, res.figures["quality"].unit,
                                                                  res.figures["quality"].source)
        return res


def test_greedy_keeps_only_feasible_lowerings(tmp_path, fake_task):
    opts = SearchOptions(strategy="greedy", budget=5, out=str(tmp_path / "run"), host_energy=False, max_acc_drop=8.0)
    run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: _RejectsHead(),
               cache=EvalCache(tmp_path / "cache.sqlite"))
    with RunStore.open_existing(tmp_path / "run") as store:
        rows = store.evaluations("candidate")
    configs = [CompressionConfig.from_json(r.result.config_json) for r in rows]
    assert len(configs) == 5
    names = ("gru0", "gru1", "head")
    trial = [{n: c.layer(n).precision for n in names if c.layer(n).precision} for c in configs[:3]]
    assert all(c.layer(n).prune == 0 for c in configs[:3] for n in names)
    assert sorted(len(t) for t in trial) == [1, 2, 2] or sorted(len(t) for t in trial) == [1, 2, 3]
    assert not rows[[i for i, t in enumerate(trial) if "head" in t][0]].feasible
    # the sweep keeps the feasible lowerings (both GRU layers int4, the head int8) and prunes
    for c in configs[3:]:
        assert [c.layer(n).precision for n in names] == ["int4", "int4", None]
        assert any(c.layer(n).prune > 0 for n in names)


def test_qat_steps_fine_tune_each_trial_at_its_precisions(tmp_path, fake_task):
    opts = SearchOptions(strategy="greedy", budget=3, out=str(tmp_path / "run"), host_energy=False, max_acc_drop=8.0,
                         qat_steps=40, stochastic_rounding=True)
    run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: SyntheticEvaluator(),
               cache=EvalCache(tmp_path / "cache.sqlite"))
    with RunStore.open_existing(tmp_path / "run") as store:
        configs = [CompressionConfig.from_json(r.result.config_json) for r in store.evaluations("candidate")]
    assert len(configs) == 3
    for c in configs:
        assert c.qat and c.finetune_steps == 40 and c.stochastic_rounding
        assert any(lc.precision == "int4" for lc in c.layers)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"strategy": "greedy", "stochastic_rounding": True}, "--stochastic-rounding .* add --qat-steps"),
    ({"strategy": "random", "stochastic_rounding": True, "finetune_steps": 0}, "--stochastic-rounding .* drop"),
    ({"strategy": "random", "qat_steps": 10}, "--qat-steps .* --strategy greedy"),
    ({"strategy": "greedy", "qat_steps": -1}, "--qat-steps -1"),
    ({"strategy": "greedy", "greedy_batch": 0}, "--greedy-batch 0"),
    ({"strategy": "random", "greedy_batch": 3}, "--greedy-batch .* --strategy greedy"),
    ({"strategy": "dqn", "mixed_precision": True}, "--mixed-precision .* --strategy dqn has no action for it"),
    ({"strategy": "uniform", "mixed_precision": True}, "--mixed-precision .* --strategy uniform has no action"),
    ({"strategy": "greedy", "mixed_precision": True}, "--mixed-precision .* greedy searches precision by itself"),
])
def test_rounding_and_qat_options_a_run_cannot_use_are_refused_before_anything_runs(tmp_path, fake_task, kwargs,
                                                                                    message):
    ev = SyntheticEvaluator()
    opts = SearchOptions(budget=3, out=str(tmp_path / "run"), host_energy=False, **kwargs)
    with pytest.raises(LimitError, match=message) as exc:
        run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: ev)
    assert "\n" not in str(exc.value)
    assert ev.calls == [] and not (tmp_path / "run").exists()


def test_canonical_keeps_each_layers_precision_and_sets_stochastic_rounding_where_qat_runs():
    space = ConfigSpace(("gru0", "gru1", "head"), finetune_steps=20, stochastic_rounding=True)
    cfg = CompressionConfig(layers=(LayerConfig("gru0", prune=0.3, precision="int4"),), finetune_steps=20, qat=True)
    out = space.canonical(cfg)
    assert out.layer("gru0").precision == "int4" and out.stochastic_rounding
    plain = space.canonical(CompressionConfig(layers=(LayerConfig("gru0", prune=0.3),), finetune_steps=20))
    assert not plain.stochastic_rounding and not plain.qat


def test_greedy_batch_lowers_that_many_layers_per_trial(tmp_path, fake_task):
    opts = SearchOptions(strategy="greedy", budget=1, out=str(tmp_path / "run"), host_energy=False, max_acc_drop=8.0,
                         greedy_batch=3)
    run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: SyntheticEvaluator(),
               cache=EvalCache(tmp_path / "cache.sqlite"))
    with RunStore.open_existing(tmp_path / "run") as store:
        first = CompressionConfig.from_json(store.evaluations("candidate")[0].result.config_json)
    assert {lc.name: lc.precision for lc in first.layers if lc.precision} == {"gru0": "int4", "gru1": "int4",
                                                                            "head": "int4"}


@pytest.mark.parametrize("strategy", ["random", "tpe", "cmaes", "ppo"])
def test_mixed_precision_lets_strategies_choose_each_layers_precision(tmp_path, fake_task, strategy):
    """With ``mixed_precision`` the config vector carries one precision choice per layer (PPO: a precision level per
    action): over a few proposals the layers take precisions other than int8, each one the layer can run at; without
    it every layer stays int8."""
    from edgeprune.host.compress.config import allowed_precisions

    seen: dict[bool, set[str]] = {}
    for mixed in (False, True):
        out = tmp_path / f"run-{mixed}"
        opts = SearchOptions(strategy=strategy, budget=8, out=str(out), host_energy=False, max_acc_drop=8.0,
                             mixed_precision=mixed, bounded=False)
        run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: SyntheticEvaluator(),
                   cache=EvalCache(tmp_path / f"cache-{mixed}.sqlite"))
        with RunStore.open_existing(out) as store:
            configs = [CompressionConfig.from_json(r.result.config_json) for r in store.evaluations("candidate")]
        assert len(configs) >= 8
        seen[mixed] = {lc.precision or "int8" for c in configs for lc in c.layers if c.quantize == "int8"}
        assert all((lc.precision or "int8") in allowed_precisions(lc.name) for c in configs for lc in c.layers)
    assert seen[False] <= {"int8"}
    assert len(seen[True] - {"int8"}) >= 2, seen[True]


def test_ppo_action_precision_levels():
    """PPO's a3: below 0.5 float32 (the study's), above it four levels from wider to narrower; the readout keeps int8
    until the last level; without the flag the int8 half is all int8."""
    mixed = ConfigSpace(("gru0", "gru1", "head"), mixed_precision=True)
    plain = ConfigSpace(("gru0", "gru1", "head"))

    def precisions(space, a3):
        c = space.continuous([0.2, 0.2, 0.0, a3])
        return c.quantize, [c.layer(n).precision or "int8" for n in ("gru0", "gru1", "head")]

    assert precisions(mixed, 0.3) == ("float32", ["int8", "int8", "int8"])
    assert precisions(mixed, 0.55) == ("int8", ["16x8", "16x8", "int8"])
    assert precisions(mixed, 0.7) == ("int8", ["int8", "int8", "int8"])
    assert precisions(mixed, 0.8) == ("int8", ["int4", "int4", "int8"])
    assert precisions(mixed, 1.0) == ("int8", ["int4", "int4", "int4"])
    assert precisions(plain, 1.0) == ("int8", ["int8", "int8", "int8"])
