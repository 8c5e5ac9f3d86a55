"""A board's INFER deadline follows the inferences timed on it (issue 16): a hang is noticed after a multiple
of the slowest inference seen, not after the link's default minute; an emulator keeps its defaults."""

from __future__ import annotations

import time

import pytest
from doubles.sim_device import Faults, SimConfig, SimDevice

from edgeprune.bench.link import BOARD_INFER_DEADLINE, Device, LinkTimeout
from edgeprune.bench.targets import Target
from edgeprune.host.search.options import BOARD_LINK_TIMEOUT_S, board_link_options

MODEL = bytes(range(256)) * 4


def test_the_deadline_is_derived_from_the_slowest_inference_with_a_floor():
    with SimDevice() as sim, Device.open(sim.port, timeout_s=1.0) as dev:
        dev.slow_timeout_s = 60.0
        dev.infer_deadline = (50.0, 0.5)
        assert dev.infer_timeout(1) == 60.0  # nothing timed yet: the default
        dev.load_model(MODEL)
        dev.infer(4, fetch_outputs=False)
        per_run = dev.slowest_run_s
        assert per_run is not None and 0 < per_run < 0.5
        assert dev.infer_timeout(100) == pytest.approx(max(0.5, 50 * 100 * per_run))
        assert dev.infer_timeout(1) == max(0.5, 50 * per_run)
        sim.faults.hang_on_infer = True
        started = time.monotonic()
        with pytest.raises(LinkTimeout):
            dev.infer(1, fetch_outputs=False)
        assert time.monotonic() - started < 5.0  # not the 60 s default


def test_a_board_target_derives_it_and_keeps_what_it_timed_across_reconnects():
    with SimDevice(SimConfig(), Faults()) as sim:
        target = Target(sim.port, link_timeout_s=1.0)
        try:
            dev = target.open()
            assert dev.infer_deadline == BOARD_INFER_DEADLINE and dev.slowest_run_s is None
            dev.load_model(MODEL)
            dev.infer(2, fetch_outputs=False)
            timed = dev.slowest_run_s
            target._close_link()  # the host reconnects (as after a fault)
            again = target.open()
            assert again is not dev and again.slowest_run_s == timed
            assert again.infer_timeout(3) == max(BOARD_INFER_DEADLINE[1], BOARD_INFER_DEADLINE[0] * 3 * timed)
        finally:
            target.close()


def test_search_shortens_the_link_deadline_on_boards_only():
    assert board_link_options("qemu:m4") == {}
    assert board_link_options("qemu") == {}
    assert board_link_options("/dev/ttyACM0") == {"link_timeout_s": BOARD_LINK_TIMEOUT_S}
    assert board_link_options("/dev/ttyACM0,/dev/ttyACM1") == {"link_timeout_s": BOARD_LINK_TIMEOUT_S}
