"""bench.link.Device against the simulated board on a pty: resync after garbage, timeouts, resets,
reconnects, corrupted frames and refused requests — each must surface as the documented typed error
or be recovered from."""

from __future__ import annotations

import hashlib

import pytest
from doubles.sim_device import SimConfig, SimDevice, sim_output

from edgeprune.bench import protocol as P
from edgeprune.bench.link import Device, DeviceError, FrameError, LinkTimeout

MODEL = bytes(range(256)) * 9  # 2304 bytes: three LOAD_CHUNK frames


@pytest.fixture
def sim():
    with SimDevice(SimConfig(build_id="sim-abc", io_inputs=[8], io_outputs=[4])) as s:
        yield s


def test_hello_load_infer_roundtrip(sim: SimDevice) -> None:
    with Device.open(sim.port, timeout_s=2.0) as dev:
        h = dev.hello()
        assert (h.build_id, h.core, h.counter, h.reset_reason) == ("sim-abc", "m4", "icount", "power-on")
        load = dev.load_model(MODEL)
        assert load.num_inputs == 1 and load.num_outputs == 1
        dev.set_sequence(1, 0, [])
        dev.set_input(0, bytes(range(8)))
        res = dev.infer(3)
        assert res.counts == [10_000] * 3 and res.unit == "instructions"
        assert res.outputs == [sim_output(hashlib.sha256(MODEL).digest() + b"\0", bytes(range(8)), 4)]


def test_delimited_garbage_before_every_reply_is_skipped(sim: SimDevice) -> None:
    sim.faults.garbage_before_reply = b"\x13\x37boot noise\xff\xfe\x00"
    with Device.open(sim.port, timeout_s=2.0) as dev:
        assert dev.hello().build_id == "sim-abc"
        dev.load_model(MODEL)
        assert len(dev.infer(2).counts) == 2


def test_garbage_glued_to_a_reply_costs_that_reply_only(sim: SimDevice) -> None:
    with Device.open(sim.port, timeout_s=0.5) as dev:
        dev.hello()
        sim.faults.garbage_before_reply = b"noise without a delimiter"
        with pytest.raises(LinkTimeout):
            dev.power()
        sim.faults.garbage_before_reply = b""
        assert dev.power() is None


def test_dropped_reply_times_out_then_link_recovers(sim: SimDevice) -> None:
    with Device.open(sim.port, timeout_s=0.5) as dev:
        dev.hello()
        sim.faults.drop_replies = 1
        with pytest.raises(LinkTimeout):
            dev.power()
        # the device expected seq+1 and got it: the next request works on the same link
        assert dev.power() is None


def test_corrupted_reply_is_dropped_as_a_timeout_not_misread(sim: SimDevice) -> None:
    with Device.open(sim.port, timeout_s=0.5) as dev:
        dev.hello()
        sim.faults.corrupt_replies = 1
        with pytest.raises(LinkTimeout):
            dev.hello()
        assert dev.hello().build_id == "sim-abc"


def test_reset_loses_the_model_and_reports_the_reason(sim: SimDevice) -> None:
    with Device.open(sim.port, timeout_s=2.0) as dev:
        dev.hello()
        dev.load_model(MODEL)
        h = dev.reset(wait_s=3.0)
        assert h.reset_reason == "software"
        with pytest.raises(DeviceError) as err:
            dev.infer(1)
        assert err.value.status == P.ST_NO_MODEL
        dev.load_model(MODEL)  # reload without reflashing
        assert len(dev.infer(1).counts) == 1


def test_watchdog_reboot_midway_is_visible_in_hello(sim: SimDevice) -> None:
    with Device.open(sim.port, timeout_s=2.0) as dev:
        dev.hello()
        dev.load_model(MODEL)
        sim.reboot()
        assert dev.hello().reset_reason == "watchdog"
        with pytest.raises(DeviceError, match="NO_MODEL"):
            dev.infer(1)


def test_reconnect_resynchronises_sequence_numbers(sim: SimDevice) -> None:
    with Device.open(sim.port, timeout_s=2.0) as dev:
        dev.hello()
        for _ in range(5):
            dev.power()
    # a new client starts its seq from scratch; HELLO resynchronises the device
    with Device.open(sim.port, timeout_s=2.0) as dev2:
        assert dev2.hello().build_id == "sim-abc"
        assert dev2.power() is None


def test_half_frame_left_by_a_dead_client_does_not_poison_the_next(sim: SimDevice) -> None:
    with Device.open(sim.port, timeout_s=2.0) as dev:
        frame = P.encode_frame(P.MSG_POWER, 7)
        dev.send_raw(frame[: len(frame) // 2])  # client dies mid-frame
    with Device.open(sim.port, timeout_s=2.0) as dev2:
        # The new client's leading 0x00 ends the half frame; the device's parse error for it is skipped.
        assert dev2.hello().build_id == "sim-abc"
        assert dev2.power() is None


def test_corrupted_load_chunk_is_caught_by_the_hash(sim: SimDevice) -> None:
    sim.faults.corrupt_chunk = True
    with Device.open(sim.port, timeout_s=2.0) as dev:
        dev.hello()
        with pytest.raises(DeviceError) as err:
            dev.load_model(MODEL)
        assert err.value.status == P.ST_HASH


def test_gap_in_seq_is_accepted_but_a_repeated_seq_is_refused(sim: SimDevice) -> None:
    with Device.open(sim.port, timeout_s=2.0) as dev:
        dev.hello()
        dev._seq += 5  # requests lost to link errors leave gaps: accepted
        assert dev.power() is None
        dev._seq -= 2  # a duplicate / reordered request: refused
        with pytest.raises(DeviceError) as err:
            dev.power()
        assert err.value.status == P.ST_SEQUENCE


def test_line_garbage_the_device_cannot_parse_does_not_break_the_next_request(sim: SimDevice) -> None:
    with Device.open(sim.port, timeout_s=2.0) as dev:
        dev.hello()
        dev.send_raw(b"\0\x05\x01\0")  # invalid COBS: the device answers an error with seq 0xFFFF
        assert dev.power() is None  # that error is not mistaken for the reply to POWER
        assert P.MSG_POWER in sim.requests


def test_corrupt_request_crc_is_refused_with_its_seq(sim: SimDevice) -> None:
    with Device.open(sim.port, timeout_s=2.0) as dev:
        dev.hello()
        seq = dev.next_seq()
        raw = bytearray(P.cobs_decode(P.encode_frame(P.MSG_POWER, seq)[:-1]))
        raw[-1] ^= 0xFF
        dev.send_raw(b"\0" + P.cobs_encode(bytes(raw)) + b"\0")
        frame = dev.read_reply(seq)
        assert frame.type == P.MSG_ERROR | P.REPLY_FLAG
        assert P.ERROR.unpack(frame.payload)["status"] == P.ST_CRC


def test_silent_port_times_out_quickly() -> None:
    import os
    import time
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        with Device.open(os.ttyname(slave), timeout_s=0.3) as dev:
            t0 = time.monotonic()
            with pytest.raises(LinkTimeout):
                dev.hello()
            assert time.monotonic() - t0 < 2.0
    finally:
        os.close(master)
        os.close(slave)


def test_model_too_big_is_refused_before_any_chunk() -> None:
    with SimDevice(SimConfig(max_model=1000)) as s, Device.open(s.port, timeout_s=2.0) as dev:
        dev.hello()
        with pytest.raises(DeviceError) as err:
            dev.load_model(MODEL)
        assert err.value.status == P.ST_MODEL_TOO_BIG and err.value.detail == 1000
        assert P.MSG_LOAD_CHUNK not in s.requests


def test_firmware_speaking_another_protocol_version_is_a_frame_error() -> None:
    with SimDevice(SimConfig(protocol=P.PROTOCOL_VERSION + 1)) as s, Device.open(s.port, timeout_s=2.0) as dev:
        with pytest.raises(FrameError, match="protocol"):
            dev.hello()
