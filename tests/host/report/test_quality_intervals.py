"""Every quality figure a search prints carries its interval; every drop is paired against FP32; one point is named.

A search over a task whose windows are known end to end (synthetic evaluator, real store, confirmation stage,
report): the terminal table fits 120 columns, front.csv and report.html carry the intervals, and the named best
point is the same everywhere.
"""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace

import numpy as np
from doubles.fake_task import FakeTask
from doubles.synthetic_evaluator import SyntheticEvaluator

from edgeprune.host.report import generate_report
from edgeprune.host.report.load import load_run
from edgeprune.host.search.confirm import CONFIRM_META
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import EvalCache, RunStore
from edgeprune.host.search.types import QUALITY
from edgeprune.host.tasks.base import Quality

N = 189
FP32 = {split: (np.random.default_rng(seed).random(N) < 0.8).astype(float) for split, seed in (("val", 1), ("test", 2))}


def _windows(acc: float, split: str, digest: str) -> list[float]:
    """Per-window 1/0 of a model ``0.8 - acc`` worse than FP32: it loses that many of FP32's right windows."""
    out = FP32[split].copy()
    lose = int(round(max(0.0, 0.8 - acc) * N))
    rng = np.random.default_rng(int(digest[:8], 16))
    out[rng.choice(np.flatnonzero(out == 1), min(lose, int(out.sum())), replace=False)] = 0.0
    return out.tolist()


class WindowTask(FakeTask):
    """FakeTask plus an FP32 model scored window by window."""

    test_sealed = False

    def baseline(self) -> object:
        return "fp32"

    def evaluate_model(self, model: object, split: str) -> Quality:
        assert not (split == "test" and self.test_sealed), "test read while sealed"
        return Quality(float(FP32[split].mean()), None, "accuracy", {"n": N}, samples=FP32[split].tolist())


class WindowEvaluator(SyntheticEvaluator):
    def __init__(self, task: WindowTask) -> None:
        super().__init__()
        self.task = task

    def evaluate(self, config):
        result = super().evaluate(config)
        samples = _windows(result.value(QUALITY), "val", result.digest)
        result.figures[QUALITY] = result.figures[QUALITY].__class__(float(np.mean(samples)), "accuracy", "tflm")
        result.samples = {"val": samples}
        result.artifacts = {"dir": "unused"}
        return result

    def prepare(self, config):
        result = self.evaluate(config)
        return SimpleNamespace(config=config, result=result, quality=Quality(result.value(QUALITY), None, "accuracy"))

    def measure_prepared(self, prepared):
        return prepared.result

    def rescore(self, result, split):
        assert not (split == "test" and self.task.test_sealed)
        s = result.samples.get(split) or _windows(result.value(QUALITY), split, result.digest)
        return Quality(float(np.mean(s)), None, "accuracy", {}, samples=s)

    def test_quality(self, result):
        return self.rescore(result, "test")


def test_search_prints_intervals_pairs_drops_and_names_one_point(tmp_path):
    from rich.console import Console

    from edgeprune.host.report.console import final_table

    task = WindowTask()
    ev = WindowEvaluator(task)
    opts = SearchOptions(strategy="uniform", budget=8, out=str(tmp_path / "run"), host_energy=False, max_acc_drop=10.0)
    res = run_search(opts, task=task, evaluator_factory=lambda t, o, d: ev, cache=EvalCache(tmp_path / "c.sqlite"),
                     write_report=generate_report)

    with RunStore.open_existing(res.run_dir) as store:
        conf = store.get_meta(CONFIRM_META)
        tests = store.get_meta("test_quality")
    assert conf is not None and conf["points"], (conf, [(e.seq, e.feasible, e.reason) for e in load_run(res.run_dir).evaluations])
    run = load_run(res.run_dir)
    assert run.best is not None and run.best.digest == conf["named"]
    assert run.best.digest in tests, "the named point is scored on test"

    buf = io.StringIO()
    final_table(res, Console(file=buf, width=400, force_terminal=False))
    out = buf.getvalue()
    table = out[: out.index("[lo,hi] =")]
    assert max(len(line.rstrip()) for line in table.splitlines()) <= 120, table
    assert "val acc %" in table and "instructions [qemu]" in out and "flash [build]" in out
    assert "named best" in table
    rows = [ln for ln in table.splitlines() if ln.strip()[:1].isdigit() or ln.strip().startswith("base")]
    assert rows and all(ln.count("[") >= 2 for ln in rows), "every row's val score and drop have intervals"
    assert f"best point #{run.best.seq}" in out and "(paired)" in out and "95 % interval" in out
    assert "  test: drop " in out and "limit" in out.split("  test: drop ")[1].splitlines()[0]

    with open(res.run_dir / "front.csv", newline="") as f:
        front = list(csv.DictReader(f))
    assert front and all(r["quality_lo"] and r["val_drop_hi"] and r["test_drop"] for r in front)
    for r in front:
        assert float(r["quality_lo"]) <= float(r["quality"]) <= float(r["quality_hi"])
    html = (res.run_dir / "report.html").read_text()
    assert "Named best point" in html and "val drop vs FP32, pp (paired)" in html and "189 windows" in html
