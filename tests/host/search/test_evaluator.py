"""``HardwareEvaluator``'s device half on the simulated board: a fault becomes a typed failed evaluation in
bounded time and the next candidate is measured; a model over HELLO's ``max_model`` is not sent
(issue 16, deliverables 2 and 3)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from doubles.fake_task import FakeTask
from doubles.sim_device import SimConfig, SimDevice

from edgeprune.bench import protocol as P
from edgeprune.bench.link import fault_kind
from edgeprune.host.search.candidate import Prepared
from edgeprune.host.search.evaluator import HardwareEvaluator
from edgeprune.host.search.types import LATENCY_COUNT, EvalResult

MODEL = b"TFL3" + bytes(range(200)) * 5
MANIFEST = {
    "inputs": [{"position": 0, "shape": [1, 8], "dtype": "int8", "scale": 0.5, "zero_point": -3}],
    "outputs": [{"position": 0, "shape": [1, 4], "dtype": "int8", "scale": 0.25, "zero_point": 1}],
}


class _Task(FakeTask):
    def agreement_inputs(self, n, split):
        return np.zeros((n, 8), np.float32)

    def calibration_inputs(self, n):
        return np.zeros((n, 8), np.float32)


def _prepared(n: int) -> Prepared:
    quality = SimpleNamespace(value=0.5, metric="accuracy")
    exported = SimpleNamespace(tflite_bytes=len(MODEL), arena_bytes=1024)
    return Prepared(SimpleNamespace(quantize="int8"), EvalResult("{}", f"digest-{n}"), MODEL, MANIFEST, exported,
                    None, quality)


@pytest.fixture
def evaluator_on(monkeypatch, tmp_path):
    # The simulated model is not a real flatbuffer: no TFLM oracle (agreement is off anyway).
    monkeypatch.setattr("edgeprune.bench.tflm.TflmRunner.oracle", classmethod(lambda cls, t, m: None))
    made = []

    def make(sim: SimDevice) -> HardwareEvaluator:
        ev = HardwareEvaluator(_Task(), sim.port, agreement_n=0, host_energy=False, deploy_build="never",
                               artifacts_dir=tmp_path, link_timeout_s=1.0, slow_timeout_s=1.5, repeats=2, warmup=0)
        made.append(ev)
        return ev

    yield make
    for ev in made:
        ev.close()


def test_a_hang_is_a_typed_failure_in_bounded_time_and_the_next_candidate_is_measured(evaluator_on):
    cfg = SimConfig(io_inputs=[8], io_outputs=[4])
    with SimDevice(cfg) as sim:
        ev = evaluator_on(sim)
        ok = ev.measure_prepared(_prepared(0))
        assert ok.error is None and ok.value(LATENCY_COUNT) == 10_000
        sim.faults.hang_on_infer = True
        started = time.monotonic()
        failed = ev.measure_prepared(_prepared(1))
        elapsed = time.monotonic() - started
        assert fault_kind(failed.error) == "hang", failed.error
        assert elapsed < 15.0
        sim.faults.hang_on_infer = sim.faults.hung = False  # the board recovers (power-cycled by hand)
        again = ev.measure_prepared(_prepared(2))
        assert again.error is None and again.value(LATENCY_COUNT) == 10_000


def test_a_model_larger_than_the_load_buffer_is_not_sent(evaluator_on):
    cfg = SimConfig(io_inputs=[8], io_outputs=[4], max_model=len(MODEL) - 1)
    with SimDevice(cfg) as sim:
        ev = evaluator_on(sim)
        result = ev.measure_prepared(_prepared(0))
        assert result.error is not None and result.error.startswith("ModelTooBig"), result.error
        assert f"max_model {len(MODEL) - 1:,} B" in result.error
        assert fault_kind(result.error) is None  # the candidate's own: reused, not re-measured
        assert P.MSG_LOAD_BEGIN not in sim.requests
        assert ev._target.faults == []
