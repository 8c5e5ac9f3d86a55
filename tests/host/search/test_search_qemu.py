"""Searches on the real path: compress → export (TFLM-verified) → QEMU Cortex-M4 over the link.

One QEMU instance serves the whole module (``shared_evaluator``); the pty test starts its own board
and goes through ``--device /dev/pts/N`` exactly as a board on /dev/ttyACM0 would.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from edgeprune.host.report import generate_report
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import EvalCache, RunStore
from edgeprune.host.search.strategies import STRATEGIES

from .qemu_setup import evaluator_options, small_weather_task

pytestmark = [pytest.mark.qemu, pytest.mark.tf, pytest.mark.slow]
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    os.environ["EDGEPRUNE_CACHE"] = str(tmp_path_factory.mktemp("epcache"))
    return small_weather_task()


class _Shared:
    """Keeps one evaluator (one QEMU) alive across the module's searches: ``close`` is deferred."""

    def __init__(self, inner):
        self.inner = inner

    def identity(self):
        return self.inner.identity()

    def evaluate(self, config):
        return self.inner.evaluate(config)

    def prepare(self, config):
        return self.inner.prepare(config)

    def measure_prepared(self, prepared):
        return self.inner.measure_prepared(prepared)

    def test_quality(self, result):
        return self.inner.test_quality(result)

    def close(self):
        pass


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def shared_evaluator(task, artifacts):
    from edgeprune.host.search.evaluator import HardwareEvaluator

    ev = HardwareEvaluator(task, "qemu:m4", repeats=3, host_energy=False, artifacts_dir=artifacts,
                           **evaluator_options())
    yield ev
    ev.close()
    assert ev.board is None


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    c = EvalCache(tmp_path_factory.mktemp("cache") / "cache.sqlite")
    yield c
    c.close()


def _search(tmp_path, task, evaluator, cache, strategy, budget, name="run", **kw):
    opts = SearchOptions(device="qemu:m4", strategy=strategy, budget=budget, out=str(tmp_path / name),
                         host_energy=False, max_acc_drop=kw.pop("max_acc_drop", 50.0), finetune_steps=0,
                         max_finetune_steps=5, repeats=3, deploy_best=kw.pop("deploy_best", False), **kw)
    return run_search(opts, task=task, evaluator_factory=lambda t, o, d: _Shared(evaluator), cache=cache,
                      write_report=generate_report)


def _assert_measured_on_qemu(ev):
    figs = ev.result.figures
    assert figs["latency_count"].source == "qemu" and figs["latency_count"].unit == "instructions"
    assert figs["latency_count"].value > 1000
    assert figs["quality"].source == "qemu"
    # int8: every device output byte-equal to TFLM; float32: within the float tolerance.
    assert "validation split" in figs["quality"].detail
    assert re.search(r"byte-equal to TFLM on (2/2|[01]/2 validation inputs \(float32: others within)", figs["quality"].detail)
    assert figs["energy_uj"].source == "model" and figs["energy_uj"].value > 0
    assert figs["ram_bytes"].value > 0
    # The objective's flash is the deploy library's (measured for every candidate); the image's is beside it. The
    # library ships the model prepared at export, which can be smaller than the .tflite, so its flash is checked
    # against its own parts: the linked example's model data plus the runtime code it links.
    _assert_deploy_flash(figs["flash_bytes"])
    assert figs["image_flash_bytes"].value > figs["flash_bytes"].value > 0


def _assert_deploy_flash(flash):
    assert flash.detail.startswith("deploy library on m4"), flash.detail
    parts = re.search(r"= (\d+) model \+ (\d+) code", flash.detail)
    assert parts, flash.detail
    model, code = int(parts[1]), int(parts[2])
    assert model > 0 and code > 0 and model + code == flash.value


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_short_search_every_strategy_on_qemu(tmp_path, task, shared_evaluator, cache, strategy):
    # The default strategy also deploy-builds its best candidate (the others skip it to save CI time).
    res = _search(tmp_path, task, shared_evaluator, cache, strategy, budget=1, deploy_best=strategy == "ppo")
    with RunStore.open_existing(res.run_dir) as store:
        evs = store.evaluations()
        assert store.device_evaluations() + sum(e.origin == "cache" for e in evs if e.kind == "candidate") >= 1
    from edgeprune.host.report.load import load_run

    run = load_run(res.run_dir)
    assert run.baseline is not None
    _assert_measured_on_qemu(run.baseline)
    assert run.front, "no feasible candidate with a 50-point drop allowance"
    for p in run.front:
        assert p.evaluation.feasible
        _assert_measured_on_qemu(p.evaluation)
    assert res.report_html.is_file() and (res.run_dir / "front.csv").is_file()
    # The search ran with the test split sealed (a read would have raised); afterwards the baseline and
    # every front point were scored on it once, and the front shows both splits.
    assert task.test_sealed is False
    assert set(run.test_quality) == {run.baseline.digest} | {p.evaluation.digest for p in run.front}
    assert all(q["details"]["split"] == "test" for q in run.test_quality.values())
    header = (res.run_dir / "front.csv").read_text().splitlines()[0]
    assert "quality_split" in header and "test_quality" in header
    best = res.run_dir / "best"
    for f in ("model.tflite", "model_data.c", "model_data.h", "manifest.json", "deploy.json"):
        assert (best / f).is_file(), f
    deploy = json.loads((best / "deploy.json").read_text())
    assert deploy["digest"] == run.best.digest
    if strategy == "ppo":
        assert deploy["status"] == "built", deploy
        assert (best / "firmware.elf").is_file()
        # The deploy image holds the model: more flash than the .tflite alone.
        assert deploy["flash_bytes"] > run.best.result.value("model_bytes")
    else:
        assert deploy["status"].startswith("skipped")


def test_cache_hit_is_not_measured_again(tmp_path, task, shared_evaluator, cache):
    from edgeprune.host.search.objective import Constraints
    from edgeprune.host.search.session import SearchSession
    from edgeprune.host.search.space import ConfigSpace

    space = ConfigSpace(task)
    config = space.retain(0.6)
    outcomes = []
    for name in ("a", "b"):
        with RunStore(tmp_path / name) as store:
            s = SearchSession(_Shared(shared_evaluator), store, cache, strategy="random", budget=1,
                              constraints=Constraints(50.0), metric=task.metric, higher_is_better=True)
            s.ensure_baseline(space.identity())
            outcomes.append(s.evaluate(config))
            assert store.device_evaluations() == (1 if name == "a" else 0)
    first, second = outcomes
    assert (first.origin, second.origin) == ("device", "cache")
    assert second.result.to_dict() == first.result.to_dict()


def test_serial_pty_device_path(tmp_path, task, artifacts):
    """``--device /dev/pts/N``: the board is reached only through its serial device, like a real one."""
    from edgeprune.bench.qemu import QemuBoard

    with QemuBoard("m4", serial="pty") as board:
        assert board.url.startswith("/dev/pts/")
        opts = SearchOptions(device=board.url, strategy="uniform", budget=1, out=str(tmp_path / "pty"),
                             host_energy=False, max_acc_drop=50.0, finetune_steps=0, repeats=3,
                             evaluator_options=evaluator_options(deploy_build="always", deploy_env="qemu-m4",
                                                                 artifacts_dir=str(artifacts)))
        res = run_search(opts, task=task, cache=None, write_report=generate_report)
    with RunStore.open_existing(res.run_dir) as store:
        ident = store.get_meta("identity")
        rows = store.evaluations()
    assert ident["target"].startswith("serial:") and ident["target"].endswith("m4")
    assert [r.origin for r in rows] == ["device", "device"]
    for r in rows:
        _assert_measured_on_qemu(r)
        _assert_deploy_flash(r.result.figures["flash_bytes"])
        assert r.result.figures["image_flash_bytes"].detail.startswith("measurement image qemu-m4")


# kill -9 mid-search then --resume on QEMU: test_resume_qemu.py (row by row against an unkilled run).
