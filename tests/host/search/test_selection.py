"""Selection reads validation data only; the device budget is spent only where it can pay off."""

from __future__ import annotations

from dataclasses import dataclass

from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.host.report import generate_report
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import EvalCache, RunStore
from edgeprune.host.tasks.base import Quality


@dataclass
class _Prepared:
    config: object
    result: object
    quality: Quality


class SplitSpy(SyntheticEvaluator):
    """Records whether the task's test split was sealed at each call; has the two-stage interface."""

    def __init__(self, task) -> None:
        super().__init__()
        self.task = task
        self.sealed_at_eval: list[bool] = []
        self.tested: list[str] = []
        self.measured: list[str] = []

    def evaluate(self, config):
        self.sealed_at_eval.append(bool(getattr(self.task, "test_sealed", False)))
        result = super().evaluate(config)
        result.artifacts = {"dir": "unused"}
        return result

    def prepare(self, config):
        result = self.evaluate(config)
        return _Prepared(config, result, Quality(result.value("quality"), None, "accuracy", {"split": "val"}))

    def measure_prepared(self, prepared):
        self.measured.append(prepared.result.digest)
        return prepared.result

    def test_quality(self, result):
        assert not self.task.test_sealed, "the test split was read while sealed"
        self.tested.append(result.digest)
        return Quality(0.5, None, "accuracy", {"split": "test"})


def _run(tmp_path, task, ev, **kw):
    opts = SearchOptions(strategy="random", budget=kw.pop("budget", 5), out=str(tmp_path / "run"), host_energy=False,
                         max_acc_drop=kw.pop("max_acc_drop", 8.0), **kw)
    return run_search(opts, task=task, evaluator_factory=lambda t, o, d: ev, cache=EvalCache(tmp_path / "c.sqlite"),
                      write_report=generate_report)


def test_test_split_is_sealed_during_selection_and_scored_once_after(tmp_path, fake_task):
    ev = SplitSpy(fake_task)
    res = _run(tmp_path, fake_task, ev)
    assert ev.sealed_at_eval and all(ev.sealed_at_eval[1:])  # every candidate was judged with test sealed
    from edgeprune.host.report.load import load_run

    run = load_run(res.run_dir)
    front = {p.evaluation.digest for p in run.front}
    assert sorted(ev.tested) == sorted(front | {run.baseline.digest})  # once each, nothing else
    assert set(run.test_quality) == front | {run.baseline.digest}
    html = res.report_html.read_text()
    assert "val accuracy" in html and "test accuracy [95 % CI] (once, at the end)" in html


def test_candidates_over_the_quality_limit_cost_no_device_evaluation(tmp_path, fake_task):
    ev = SplitSpy(fake_task)
    # The synthetic accuracy falls with the cut: a 0.5 pp limit rejects most candidates on the host.
    res = _run(tmp_path, fake_task, ev, budget=3, max_acc_drop=0.5)
    with RunStore.open_existing(res.run_dir) as store:
        rows = store.evaluations("candidate")
        host = [r for r in rows if r.origin == "host"]
        assert host, "expected host-screened candidates"
        assert all(not r.counted and not r.feasible and "not sent to the device" in r.reason for r in host)
        assert store.device_evaluations() == len([r for r in rows if r.origin == "device"]) <= 3
    assert set(ev.measured).isdisjoint(r.digest for r in host)


def test_proxy_reward_follows_flops_while_measured_follows_the_device():
    from edgeprune.host.search.objective import Constraints, Objective
    from edgeprune.host.search.types import EvalResult, FigureRecord

    def result(macs, params, latency, flash):
        figs = {"quality": FigureRecord(0.6, "accuracy", "qemu"), "macs": FigureRecord(macs, "MACs", "proxy"),
                "params": FigureRecord(params, "params", "proxy"),
                "latency_count": FigureRecord(latency, "instructions", "qemu"),
                "flash_bytes": FigureRecord(flash, "bytes", "build"), "ram_bytes": FigureRecord(1000, "bytes", "build"),
                "energy_uj": FigureRecord(latency / 1000, "uJ", "model")}
        return EvalResult("{}", "d", figs)

    base = result(1000, 1000, 10_000, 100_000)
    # Unstructured sparsity as a proxy sees it: half the "FLOPs", and the dense kernel exactly as slow.
    sparse = result(500, 500, 10_000, 100_000)
    # Structured pruning: fewer MACs counted and fewer instructions measured.
    pruned = result(800, 800, 6_000, 80_000)
    proxy = Objective(base, "accuracy", True, Constraints(2.0), reward_mode="proxy")
    measured = Objective(base, "accuracy", True, Constraints(2.0))
    assert proxy.judge(sparse).reward > proxy.judge(pruned).reward
    assert measured.judge(pruned).reward > measured.judge(sparse).reward
    import pytest

    with pytest.raises(ValueError, match="proxy"):
        Objective(base, "accuracy", True, Constraints(2.0), reward_mode="flops")


def test_a_model_the_board_cannot_hold_costs_no_device_evaluation(tmp_path, fake_task):
    class TooBig(SyntheticEvaluator):
        def evaluate(self, config):
            result = super().evaluate(config)
            if 0 < config.layers[0].prune < 0.5:  # larger candidates do not fit (the baseline is measured apart)
                result.error = "ModelTooBig: model 700,000 B is larger than the board's load buffer (max_model 65,536 B)"
            return result

    ev = TooBig()
    res = _run(tmp_path, fake_task, ev, budget=3, max_acc_drop=50.0)
    with RunStore.open_existing(res.run_dir) as store:
        rows = store.evaluations("candidate")
        big = [r for r in rows if r.result.error]
        assert big and all(r.origin == "host" and not r.counted and "max_model" in r.reason for r in big)
        assert store.device_evaluations() == sum(r.origin == "device" for r in rows) == 3


def test_proxy_reward_counts_nonzero_weights_like_the_studies():
    from edgeprune.host.search.objective import Constraints, Objective, study_flops_ratio
    from edgeprune.host.search.types import EvalResult, FigureRecord

    def result(sparsity):
        figs = {"quality": FigureRecord(0.6, "accuracy", "qemu"), "macs": FigureRecord(1000, "MACs", "proxy"),
                "params": FigureRecord(1000, "params", "proxy"), "sparsity": FigureRecord(sparsity, "fraction", "proxy"),
                "latency_count": FigureRecord(10_000, "instructions", "qemu"),
                "flash_bytes": FigureRecord(100_000, "bytes", "build"), "ram_bytes": FigureRecord(1000, "bytes", "build"),
                "energy_uj": FigureRecord(10.0, "uJ", "model")}
        return EvalResult("{}", "d", figs)

    base, sparse = result(0.0), result(0.627)
    # The layer-wise study's 62.7 % sparsity: 35.97 M -> 13.42 M FLOPs with the same dense MAC count.
    assert abs(study_flops_ratio(sparse, base) - 0.373) < 1e-9
    proxy = Objective(base, "accuracy", True, Constraints(2.0), reward_mode="proxy")
    measured = Objective(base, "accuracy", True, Constraints(2.0))
    assert proxy.judge(sparse).reward > proxy.judge(base).reward + 0.4
    assert measured.judge(sparse).reward == measured.judge(base).reward
