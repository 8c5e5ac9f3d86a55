"""Link speed (issue 16, deliverable 4): SET_BAUD to the fastest rate both ends manage, confirmed by a HELLO
at the new rate, falling back when the bridge cannot carry it; load times per rate on the simulated board; a model
the board already holds (HELLO's model_sha256) is not sent again."""

from __future__ import annotations

import sys
import time

from doubles.sim_device import SimConfig, SimDevice

from edgeprune.bench import protocol as P
from edgeprune.bench.link import BAUD_GRACE_S, Device
from edgeprune.bench.targets import Target

MODEL = bytes(range(256)) * 64  # 16 KiB


def test_a_firmware_without_set_baud_keeps_its_rate():
    with SimDevice() as sim, Device.open(sim.port, timeout_s=1.0) as dev:
        assert dev.negotiate_baud() == 115_200
        assert dev.port.baudrate == 115_200
        dev.load_model(MODEL)


def test_the_fastest_common_rate_is_negotiated_and_used():
    cfg = SimConfig(bauds=(921_600, 460_800, 230_400))
    with SimDevice(cfg) as sim, Device.open(sim.port, timeout_s=1.0) as dev:
        assert dev.negotiate_baud() == 921_600
        assert dev.port.baudrate == sim.baud == 921_600
        time.sleep(BAUD_GRACE_S + 0.2)  # confirmed: the board does not revert
        assert sim.baud == 921_600
        dev.load_model(MODEL)
        assert dev.infer(1, fetch_outputs=False).counts == [10_000]


def test_a_hello_lost_to_the_uart_switch_does_not_cost_the_rate():
    # The first HELLO at the new rate lands while the board's UART is disabled for its BRR write (CI saw it on
    # the L475 twin): asked again within the grace period, the rate holds.
    cfg = SimConfig(bauds=(921_600,), lost_after_switch=1)
    with SimDevice(cfg) as sim, Device.open(sim.port, timeout_s=1.0) as dev:
        assert dev.negotiate_baud() == 921_600
        time.sleep(BAUD_GRACE_S + 0.2)
        assert dev.port.baudrate == sim.baud == 921_600
        dev.load_model(MODEL)


def test_a_rate_the_bridge_cannot_carry_falls_back():
    cfg = SimConfig(bauds=(2_000_000, 921_600, 460_800), bridge_max_baud=460_800)
    with SimDevice(cfg) as sim, Device.open(sim.port, timeout_s=1.0) as dev:
        started = time.monotonic()
        assert dev.negotiate_baud() == 460_800
        assert time.monotonic() - started < 2 * (BAUD_GRACE_S * 1.5 + 1.0) + 2.0
        assert dev.port.baudrate == sim.baud == 460_800
        dev.load_model(MODEL)


def test_a_target_negotiates_on_open_and_finds_the_rate_again_after_a_reconnect():
    cfg = SimConfig(bauds=(921_600,))
    with SimDevice(cfg) as sim:
        target = Target(sim.port, link_timeout_s=1.0)
        try:
            target.open()
            assert target.baud == 921_600
            target._close_link()  # the host reconnects; the board still runs at 921,600
            dev = target.open()
            assert dev.port.baudrate == 921_600 and target.hello is not None
            dev.load_model(MODEL)
        finally:
            target.close()


def test_load_time_falls_with_the_rate():
    # The wall time of a load also holds the host's own overhead, which a busy machine inflates; what the rate
    # decides is the wire time the board spent receiving, and the wall time can never beat it.
    times, wire = {}, {}
    for rate in (115_200, 230_400, 460_800, 921_600):
        cfg = SimConfig(bauds=(rate,) if rate > 115_200 else (), simulate_rate=True)
        with SimDevice(cfg) as sim, Device.open(sim.port, timeout_s=5.0) as dev:
            assert dev.negotiate_baud((rate,)) == rate
            before = sim.wire_s
            dev.load_model(MODEL)
            times[rate], wire[rate] = dev.last_load_s, sim.wire_s - before
    sys.stderr.write("load of 16 KiB on the simulated board: "
                     + ", ".join(f"{r:,} baud {t:.2f} s (wire {wire[r]:.2f} s)" for r, t in times.items()) + "\n")
    for rate in times:
        assert times[rate] >= wire[rate] >= len(MODEL) * 10 / rate
    # The same frames at twice the rate take half the wire time: the load really ran at the negotiated rate.
    rates = sorted(times)
    assert all(abs(wire[a] / wire[b] - b / a) < 0.01 for a, b in zip(rates, rates[1:], strict=False)), wire


def test_a_model_the_board_holds_is_not_sent_again():
    other = bytes(reversed(MODEL))
    with SimDevice() as sim, Device.open(sim.port, timeout_s=1.0) as dev:
        first = dev.load_model(MODEL)
        assert not dev.last_load_skipped and dev.last_load_s > 0
        assert dev.load_model(MODEL) == first
        assert dev.last_load_skipped and dev.last_load_s == 0.0
        assert sim.requests.count(P.MSG_LOAD_BEGIN) == 1 and sim.requests.count(P.MSG_LOAD_END) == 1
        assert dev.infer(1, fetch_outputs=False).counts == [10_000]
        dev.load_model(other)  # another model: sent
        assert not dev.last_load_skipped and sim.requests.count(P.MSG_LOAD_BEGIN) == 2
        sim.reboot()  # the board lost what it held: the same model is sent again
        dev.load_model(other)
        assert not dev.last_load_skipped and sim.requests.count(P.MSG_LOAD_BEGIN) == 3
        dev.skip_held_model = False  # opted out: always sent
        dev.load_model(other)
        assert sim.requests.count(P.MSG_LOAD_BEGIN) == 4
