"""A device fault is recorded as a failed evaluation with its kind, never reused for the config, the search
goes on, and the report counts failures by kind (issue 16, deliverable 2)."""

from __future__ import annotations

from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.bench.link import DeviceFault, fault_kind
from edgeprune.host.report import generate_report
from edgeprune.host.search.objective import Constraints
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.session import SearchSession
from edgeprune.host.search.space import ConfigSpace
from edgeprune.host.search.store import EvalCache, RunStore

KINDS = ("hang", "reset", "corrupt", "wrong-build", "gone")


class FaultyEvaluator(SyntheticEvaluator):
    """Fails the given call numbers (1-based, baseline included) with a device fault of the given kind."""

    def __init__(self, faults: dict[int, str], **kw) -> None:
        super().__init__(**kw)
        self.faults = faults

    def evaluate(self, config):
        result = super().evaluate(config)
        kind = self.faults.get(len(self.calls))
        if kind is not None:
            result.figures = {}
            result.error = f"DeviceFault: {DeviceFault(kind, 'injected', 2, 1.0)}"
        return result


def test_a_stored_fault_is_not_reused_for_the_config(tmp_path, fake_task):
    space = ConfigSpace(fake_task.layer_names, prune_scale="linear")
    ev = FaultyEvaluator({2: "hang"})
    config = space.retain(0.7)
    with RunStore(tmp_path / "r") as store:
        session = SearchSession(ev, store, EvalCache(tmp_path / "c.sqlite"), strategy="random", budget=5,
                                constraints=Constraints(30.0), metric="accuracy", higher_is_better=True)
        session.ensure_baseline(space.identity())
        first = session.evaluate(config)
        assert first.origin == "device" and not first.verdict.feasible
        assert fault_kind(first.result.error) == "hang" and "hang" in first.verdict.reason
        again = session.evaluate(config)  # the fault was the device's: measured again, and now it works
        assert again.origin == "device" and again.verdict.feasible
        third = session.evaluate(config)  # a good measurement is reused as before
        assert third.origin == "run" and third.result.error is None
        assert ev.calls.count(config.digest()) == 2
        assert store.device_evaluations() == 2


def test_search_goes_on_through_every_fault_kind_and_the_report_counts_them(tmp_path, fake_task):
    faults = {n + 2: kind for n, kind in enumerate(KINDS)}  # calls 2..6; the baseline (call 1) is healthy
    ev = FaultyEvaluator(faults)
    opts = SearchOptions(strategy="random", budget=8, out=str(tmp_path / "run"), host_energy=False, max_acc_drop=30.0)
    res = run_search(opts, task=fake_task, evaluator_factory=lambda t, o, d: ev, cache=EvalCache(tmp_path / "c.sqlite"),
                     write_report=generate_report)
    with RunStore.open_existing(res.run_dir) as store:
        rows = store.evaluations("candidate")
    assert len([r for r in rows if r.counted]) == 8  # the search spent its whole budget
    recorded = sorted(fault_kind(r.result.error) for r in rows if fault_kind(r.result.error))
    assert recorded == sorted(KINDS)
    assert any(r.feasible for r in rows)
    html = res.report_html.read_text()
    section = html[html.index("Failed evaluations by kind"):]
    for kind in KINDS:
        assert f"<td>{kind}</td><td>1</td>" in section, kind
