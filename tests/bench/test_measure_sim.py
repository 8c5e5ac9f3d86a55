"""bench.measure.measure() through the real link against the simulated board: statistics, sources,
latency labelling, power/energy tagging, and on-device agreement (the oracle here mirrors the
simulated model; the TFLM oracle itself is exercised in the QEMU test)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from doubles.sim_device import Faults, SimConfig, SimDevice, sim_output

from edgeprune.bench.link import Device
from edgeprune.bench.measure import Measurement, measure

MODEL = b"TFL3" + bytes(range(200)) * 5
MANIFEST = {
    "inputs": [{"position": 0, "shape": [1, 8], "dtype": "int8", "scale": 0.5, "zero_point": -3}],
    "outputs": [{"position": 0, "shape": [1, 4], "dtype": "int8", "scale": 0.25, "zero_point": 1}],
}


class MirrorOracle:
    """Computes what the simulated model computes (stands in for TflmRunner, which needs a real model)."""

    def run(self, x: np.ndarray) -> np.ndarray:
        digest = hashlib.sha256(MODEL).digest() + b"\0"
        return np.frombuffer(sim_output(digest, np.asarray(x, np.int8).tobytes(), 4), dtype=np.int8).reshape(1, 4)


def _run(cfg: SimConfig, faults: Faults | None = None, **kw) -> Measurement:
    cfg.io_inputs, cfg.io_outputs = [8], [4]  # as MANIFEST
    with SimDevice(cfg, faults) as sim, Device.open(sim.port, timeout_s=3.0) as dev:
        return measure(dev, MODEL, MANIFEST, np.zeros(8, np.int8), **kw)


def test_qemu_counts_are_instructions_with_an_estimated_latency() -> None:
    m = _run(SimConfig(counter="icount", core="m4", base_count=120_000), warmup=2, repeats=10)
    assert m.count_unit == "instructions"
    assert m.figures["count"].value == 120_000 and m.figures["count"].source == "qemu"
    assert "lower bound" in m.figures["count"].detail
    lat = m.figures["latency"]
    # 120,000 instructions at the M4 reference board's 120 MHz = 1.0 ms, labelled an estimate
    assert lat.source == "qemu" and lat.value == pytest.approx(1.0) and "estimate at 120 MHz" in lat.detail
    assert m.figures["energy_model"].source == "model"
    assert m.figures["energy_model"].value == pytest.approx(120_000 * 110 * 3.3e-6)
    assert m.figures["per_mac"].value == pytest.approx(120.0)  # sim reports 1000 MACs
    assert not m.figures["power_board"].known and "no on-board power meter" in m.figures["power_board"].detail
    assert len(m.counts) == 10 and m.warmup == 2


def test_board_cycles_latency_and_ina_energy() -> None:
    cfg = SimConfig(counter="dwt", core="m4", clock_hz=80_000_000, base_count=800_000, jitter=50,
                    power=(2, 3_300_000, 12_000, 39_600))
    m = _run(cfg, repeats=20, energy_board="nucleo_l4r5zi")
    assert m.count_unit == "cycles" and m.figures["count"].source == "board"
    assert 800_000 <= m.figures["count"].value <= 800_050
    lat = m.figures["latency"]
    assert lat.source == "board" and lat.value == pytest.approx(m.stats.median / 80e6 * 1e3)
    assert m.figures["power_board"].value == pytest.approx(39.6) and m.figures["power_board"].source == "board"
    assert m.figures["energy_board_ina"].value == pytest.approx(39.6 * lat.value)
    assert "lower bound" not in m.figures["energy_model"].detail


def test_count_spikes_are_removed_and_counted() -> None:
    m = _run(SimConfig(base_count=5000, jitter=3), Faults(spike_every=10, spike_factor=4), warmup=0, repeats=30)
    assert m.stats.outliers == 3
    assert m.stats.max < 5004
    assert sum(c > 10_000 for c in m.counts) == 3


def test_sequence_block_sends_all_steps() -> None:
    manifest = dict(MANIFEST, sequence={"steps": 5, "stream_input": 0, "output": 0, "recurrent": []})
    with SimDevice(SimConfig(base_count=1000, io_inputs=[8], io_outputs=[4])) as sim, Device.open(sim.port, timeout_s=3.0) as dev:
        m = measure(dev, MODEL, manifest, np.ones(40, np.int8), warmup=0, repeats=3)
        assert m.model["steps"] == 5 and sim.steps == 5
        assert bytes(sim.inputs[0]) == bytes([1]) * 40
    assert m.figures["count"].value == 5000
    # the device reports MACs per invoke (1000); one inference is 5 invokes
    assert m.model["macs_per_inference"] == 5000 and m.figures["per_mac"].value == pytest.approx(1.0)


def test_agreement_is_measured_on_the_device() -> None:
    xs = np.random.default_rng(0).integers(-128, 128, size=(6, 8)).astype(np.int8)
    m = _run(SimConfig(), repeats=3, agreement_inputs=xs, oracle=MirrorOracle())
    assert m.agreement is not None
    assert m.agreement.n == 6 and m.agreement.byte_equal_rate.value == 1.0
    assert m.agreement.byte_equal_rate.source == "qemu" and m.agreement.mismatches == []


def test_agreement_detects_a_device_that_differs_and_computes_the_metric() -> None:
    xs = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)  # floats: quantised via manifest
    labels = np.zeros(5, dtype=np.int64)

    def accuracy(preds: np.ndarray, y: np.ndarray) -> float:
        assert preds.dtype == np.float32 and preds.shape == (5, 4)
        return float(np.mean(preds.argmax(axis=1) == y))

    m = _run(SimConfig(), Faults(flip_output=True), repeats=3, agreement_inputs=xs, agreement_labels=labels,
             metric=accuracy, metric_name="accuracy", oracle=MirrorOracle())
    a = m.agreement
    assert a is not None and a.byte_equal_rate.value == 0.0 and a.mismatches == [0, 1, 2, 3, 4]
    assert a.max_abs_diff == 1
    assert a.metric is not None and a.metric.unit == "accuracy" and 0.0 <= a.metric.value <= 1.0


def test_measurement_serialises_with_sources() -> None:
    m = _run(SimConfig(core="m3"), repeats=2)
    d = m.to_dict()
    assert d["figures"]["count"]["source"] == "qemu"
    # no cited energy row and no board clock for an M3: absent, never a made-up number
    assert d["figures"]["energy_model"]["value"] is None and d["figures"]["latency"]["value"] is None
    assert math.isnan(m.figures["latency"].value) and "absent" in m.figures["latency"].detail
    assert d["stats"]["rule"].startswith("Tukey")


def test_a_reset_during_measurement_reloads_and_redoes_the_runs() -> None:
    # the sim reboots right after the warm-up INFER, so the timed INFER finds no model
    m = _run(SimConfig(base_count=3000), Faults(reboot_after_infers=1), warmup=1, repeats=4)
    assert m.target["recovered_resets"] == 1
    assert m.counts == [3000] * 4


def test_ppk2_energy_is_windowed_around_the_timed_runs() -> None:
    from doubles.ppk2_fake import FakePpk2, Segment, decoded_ua

    from edgeprune.bench.power.ppk2 import Ppk2Meter

    wave = [Segment(500, 1000.0)]
    for _ in range(4):
        wave += [Segment(200, 6000.0, logic=1), Segment(300, 1000.0)]
    with FakePpk2(wave) as fake, Ppk2Meter(fake.port, vdd_mv=3000, settle_s=0.15) as meter:
        m = _run(SimConfig(), repeats=4, ppk2=meter)
    fig = m.figures["energy_board_ppk2"]
    assert fig.source == "board" and fig.unit == "uJ"
    assert fig.value == pytest.approx(200 * decoded_ua(6000.0) * 3.0 * 1e-5)
    assert len(fig.extra["energies_uj"]) == 4


@pytest.mark.tf
def test_a_model_tflite_cannot_run_on_the_host_keeps_its_device_figures() -> None:
    """Host energy runs the model in TensorFlow Lite, which refuses some ops TFLM runs (an int8 -> int16 QUANTIZE);
    the device's measurement stands, and the host energy says why it is missing."""
    m = _run(SimConfig(counter="icount", core="m4", base_count=50_000), warmup=0, repeats=3, host_energy_runs=2)
    assert m.stats.median > 0 and m.figures["latency"].value is not None
    host = m.figures["energy_host"]
    assert math.isnan(host.value) and host.source == "host"
    assert "TensorFlow Lite on the host cannot run this model" in host.detail
