"""The greedy precision strategy (issue 30): precision-only trials in batches, largest layers first, a lowered
precision kept only when its candidate is feasible; then a retain-rate sweep at the kept precisions."""

from __future__ import annotations

from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.host.compress.config import CompressionConfig
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import EvalCache, RunStore
from edgeprune.host.search.strategies.greedy import layer_order, trials


def test_order_and_batches():
    names = ("fc0", "fc1", "fc2")
    params = {"kind": "mlp", "sizes": [4, 64, 128, 2]}
    assert layer_order(names, params, None) == ["fc1", "fc0", "fc2"]
    assert trials(["conv0", "head", "gru1"], batch=2) == [{"head": "int4"}, {"gru1": "int4"}]


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
