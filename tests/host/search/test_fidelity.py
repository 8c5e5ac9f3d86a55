"""Multi-fidelity evaluation (issue 28, item 1): a candidate checked part-way through its fine-tuning.

The hook in ``finetune`` must not change the run it watches (a candidate that goes on ends with the weights it
would have had without a rung), a stopped candidate is stored as such (origin ``stopped``: not counted, not
feasible, never on the front), and the rung's check is the real thing: an int8 export scored in TFLM.
"""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.host.compress.finetuning import finetune
from edgeprune.host.compress.structured import prune_structured
from edgeprune.host.models import StackedGRU
from edgeprune.host.report.load import load_run
from edgeprune.host.search.fidelity import MIN_RUNG_STEPS, RungRule, rung_hook, rung_steps
from edgeprune.host.search.front import pareto_front
from edgeprune.host.search.objective import Constraints, Objective
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.rejections import rejection_summary
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import EvalCache, RunStore
from edgeprune.host.search.timing import TIME_META, run_account


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 5, 3)).astype(np.float32)
    s = x.sum(axis=1)
    return x, np.where(s.max(axis=1) > 1.0, s.argmax(axis=1), 3).astype(np.int64)


def _small() -> StackedGRU:
    torch.manual_seed(0)
    gru = StackedGRU(input_size=3, hidden_sizes=[8, 6], num_outputs=4, seq_len=5).eval()
    return prune_structured(gru, {"gru0": 0.5})[0]


def _validate(x: np.ndarray, y: np.ndarray):
    def score(model) -> float:
        with torch.no_grad():
            return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    return score


def test_a_rung_that_goes_on_leaves_the_fine_tuning_unchanged():
    x, y = _data()
    plain, hooked = _small(), _small()
    seen: list[int] = []

    def on_rung(model, step):
        seen.append(step)
        model(torch.from_numpy(x[:8]))  # the hook may use its copy freely
        torch.rand(3)  # and the global generator
        return True

    a = finetune(plain, (x, y), 60, seed=3, validate=_validate(x, y), validate_every=10, patience=100)
    b = finetune(hooked, (x, y), 60, seed=3, validate=_validate(x, y), validate_every=10, patience=100,
                 rungs=(20,), on_rung=on_rung)
    assert seen == [20] and b.stopped_at is None
    assert a.losses == b.losses and a.best_step == b.best_step
    for (name, p), q in zip(plain.state_dict().items(), hooked.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_a_rung_that_says_stop_ends_the_fine_tuning_with_the_weights_it_judged():
    x, y = _data()
    model = _small()
    judged: list[dict] = []

    def on_rung(copy, step):
        judged.append({k: v.clone() for k, v in copy.state_dict().items()})
        return False

    res = finetune(model, (x, y), 90, seed=1, validate=_validate(x, y), validate_every=10, patience=100,
                   rungs=(30,), on_rung=on_rung)
    assert res.stopped_at == 30 and res.steps == 30
    # What the rung judged (the best validated so far) is what the stopped candidate keeps.
    for name, value in model.state_dict().items():
        assert torch.equal(value, judged[0][name]), name


def test_rung_steps_skip_short_fine_tuning():
    assert rung_steps(MIN_RUNG_STEPS - 1) == ()
    assert rung_steps(360) == (120,)


class _Task(SimpleNamespace):
    """A classifier task over the arrays above, as much as the rung hook and the TFLM scoring need."""

    def evaluate(self, predict, split="val"):
        x, y = _data()
        pred = np.asarray(predict(x[:64])).argmax(1)
        return SimpleNamespace(value=float((pred == y[:64]).mean()), metric="accuracy", samples=[])


@pytest.mark.tf
@pytest.mark.slow
def test_the_rung_scores_an_int8_export_in_tflm_and_stops_what_cannot_pass():
    from edgeprune.host.compress.config import CompressionConfig

    task = _Task(kind="classifier", metric="accuracy", higher_is_better=True)
    calibration = _data()[0][:32]
    config = CompressionConfig.identity(("gru0", "gru1", "head")).__class__.from_json(
        CompressionConfig.identity(("gru0", "gru1", "head")).to_json().replace('"finetune_steps":0',
                                                                              '"finetune_steps":120'))
    objective = SimpleNamespace(drop=lambda q: 100.0 * (1.0 - q))  # a reference accuracy of 1.0
    result = SimpleNamespace(timings={}, fidelity={})
    stops: list = []
    hook = rung_hook(task, calibration, config, RungRule(objective, 1.0), result, stops)
    assert hook["rungs"] == (40,)
    assert hook["on_rung"](_small(), 40) is False  # an untrained 4-class GRU is far below 100 %
    assert stops and stops[0].step == 40 and stops[0].drop > stops[0].threshold
    assert result.fidelity["stopped"] == 1.0 and 0.0 <= result.fidelity["quality"] <= 1.0
    assert result.timings["rung-export"] > 0 and result.timings["rung-tflm"] > 0
    lenient = RungRule(SimpleNamespace(drop=lambda q: 0.0), 1.0)
    assert rung_hook(task, calibration, config, lenient, result, stops)["on_rung"](_small(), 40) is True


class _RungEvaluator(SyntheticEvaluator):
    """The synthetic evaluator with a host half whose rung stops every candidate that pruned gru0 by 60 % or more."""

    supports_rungs = True

    def prepare(self, config, rule=None):
        result = self.evaluate(config)
        result.timings = {"compress": 0.01, "finetune": 0.5, "export": 0.1, "tflm": 0.05}
        prepared = SimpleNamespace(result=result, quality=SimpleNamespace(value=result.value("quality")),
                                   stopped=None, config=config)
        if rule is not None and config.layer("gru0").prune >= 0.6:
            from edgeprune.host.search.fidelity import RungStop

            q = result.value("quality") - 0.3
            result.figures["quality"] = dataclasses.replace(result.figures["quality"], value=q)
            result.fidelity = {"step": 40.0, "steps": 120.0, "quality": q, "drop": rule.objective.drop(q),
                               "threshold": rule.threshold, "stopped": 1.0}
            prepared.stopped = RungStop(40, 120, q, rule.objective.drop(q), rule.threshold)
        return prepared

    def measure_prepared(self, prepared):
        prepared.result.timings["device"] = 0.2
        return prepared.result


@pytest.mark.parametrize("fidelity", [True, False])
def test_a_stopped_candidate_is_stored_as_stopped_never_measured(tmp_path, fake_task, fidelity):
    ev = _RungEvaluator()
    opts = SearchOptions(strategy="uniform", budget=6, out=str(tmp_path / "run"), host_energy=False,
                         max_acc_drop=30.0, multi_fidelity=fidelity)
    res = run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: ev,
                     cache=EvalCache(tmp_path / "cache.sqlite"))
    with RunStore.open_existing(res.run_dir) as store:
        rows = store.evaluations("candidate")
        front = pareto_front(store.evaluations(), True)
        segments = store.get_meta(TIME_META)
    stopped = [r for r in rows if r.origin == "stopped"]
    if not fidelity:
        assert not stopped
        return
    assert stopped, [r.origin for r in rows]
    assert all(not r.counted and not r.feasible and "stopped early at fine-tuning step 40 of 120" in r.reason
               for r in stopped)
    assert not {r.digest for r in stopped} & {p.evaluation.digest for p in front}
    # The summary counts them under one line, not once per candidate plus once for their remark.
    summary = rejection_summary(load_run(res.run_dir))
    assert [ln for ln in summary if "stopped early" in ln] == [
        f"  {len(stopped)} × stopped early at a fine-tuning rung: the int8 drop in TFLM after a third of the "
        "fine-tuning was beyond what the rest could recover (not sent to the device)"]
    assert not any("not fully fine-tuned" in ln for ln in summary), summary
    assert sum(r.counted for r in rows) == 6  # the budget is device evaluations only
    # Time accounting: every evaluated candidate has its stages, the process its own segment.
    acc = run_account(res.run_dir)
    assert len(segments) == 1 and segments[0]["wall"] > 0 and "baseline" in segments[0]["stages"]
    assert acc.candidates == len(rows)
    assert math.isclose(acc.stages["fine-tune"], 0.5 * len(rows))
    assert math.isclose(acc.stages["device"], 0.2 * sum(r.counted for r in rows))
    assert "proposal" in acc.stages and "bookkeeping" in acc.stages
    assert acc.lines()[0].startswith("time: wall")


def test_the_rule_goes_on_within_the_margin_only():
    base = SimpleNamespace(value=lambda name: 0.6)
    objective = Objective(SimpleNamespace(figures={}, value=base.value), "accuracy", True, Constraints(1.0),
                          reference_quality=0.6)
    rule = RungRule(objective, 1.0)
    assert rule.threshold == pytest.approx(4.0)
    assert rule.goes_on(0.6 - 0.039) and not rule.goes_on(0.6 - 0.041) and not rule.goes_on(math.nan)
