"""PPK2 energy: the windowing arithmetic by hand, and the whole path through ppk2_api against a fake PPK2 on a pty."""

from __future__ import annotations

import numpy as np
import pytest
from doubles.ppk2_fake import FakePpk2, Segment, decoded_ua

from edgeprune.bench.power import PowerMeterError
from edgeprune.bench.power.ppk2 import Ppk2Meter, Ppk2Trace, windowed_energy


def test_windowed_energy_hand_calculation() -> None:
    # 1 kHz sampling for easy numbers: two complete windows, one cut by the end of the trace.
    current = np.array([100, 100, 500, 500, 500, 100, 800, 800, 100, 900, 900], dtype=float)
    logic = np.array([0, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1], dtype=np.uint8)
    trace = Ppk2Trace(current, logic, sample_rate_hz=1000.0, vdd_mv=3000.0)
    w = windowed_energy(trace, channel=0)
    # window 1: 3 samples x 500 uA x 3 V x 1 ms = 4.5 uJ; window 2: 2 x 800 uA x 3 V x 1 ms = 4.8 uJ
    assert w.energies_uj == pytest.approx([4.5, 4.8])
    assert w.durations_s == pytest.approx([0.003, 0.002])
    assert w.dropped == 1
    fig = w.figure(0)
    assert fig.source == "board" and fig.unit == "uJ"
    assert fig.value == pytest.approx(4.65)


def test_windowed_energy_uses_the_requested_channel() -> None:
    current = np.full(6, 1000.0)
    logic = np.array([0, 2, 2, 0, 1, 0], dtype=np.uint8)  # D1 high for 2 samples, D0 for 1
    trace = Ppk2Trace(current, logic, sample_rate_hz=1e5, vdd_mv=1000.0)
    assert windowed_energy(trace, 1).energies_uj == pytest.approx([2 * 1000 * 1.0 * 1e-5])
    assert windowed_energy(trace, 0).energies_uj == pytest.approx([1000 * 1.0 * 1e-5])
    with pytest.raises(PowerMeterError):
        windowed_energy(Ppk2Trace(current, np.zeros(6, np.uint8), 1e5, 1000.0), 0).figure(0)


def test_ppk2_meter_against_fake_device() -> None:
    idle, active = 1000.0, 5000.0
    widths = [300, 500, 400]  # samples at 100 kS/s
    wave = [Segment(1000, idle)]
    for w in widths:
        wave += [Segment(w, active, logic=0b1), Segment(700, idle)]
    with FakePpk2(wave, idle_ua=idle) as fake, Ppk2Meter(fake.port, vdd_mv=3300, settle_s=0.2) as meter:
        trace, ret = meter.capture(lambda: 42)
    assert ret == 42
    w = windowed_energy(trace, 0)
    assert w.count == len(widths) and w.dropped == 0
    expected = [n * decoded_ua(active) * 3.3 * 1e-5 for n in widths]
    assert w.energies_uj == pytest.approx(expected, rel=1e-9)
    # the decode itself is within ADC quantisation of the programmed current
    assert w.energies_uj == pytest.approx([n * active * 3.3 * 1e-5 for n in widths], rel=1e-3)
    assert 0x19 in fake.commands and 0x06 in fake.commands and 0x07 in fake.commands


def test_ppk2_meter_rejects_a_port_that_is_not_a_ppk2() -> None:
    import os
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        with pytest.raises(PowerMeterError, match="metadata"):
            Ppk2Meter(os.ttyname(slave), timeout_s=0.5).open()
    finally:
        os.close(master)
        os.close(slave)
