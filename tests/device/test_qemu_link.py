"""The real firmware in qemu-system-arm: boot + HELLO on every core, and the protocol's error paths."""

from __future__ import annotations

import hashlib
import struct
import time

import pytest

from edgeprune.bench import protocol as P
from edgeprune.bench.link import Device, DeviceError, FrameError
from edgeprune.bench.qemu import QemuBoard

from .conftest import CORES

pytestmark = pytest.mark.qemu


@pytest.mark.parametrize("core", CORES)
def test_builds_and_boots(core, link_firmware):
    fw = link_firmware(core)
    assert fw.text > 1000 and fw.flash_bytes <= fw.limits[0] and fw.ram_bytes <= fw.limits[1]
    with QemuBoard(core, elf=fw.elf, boot_timeout_s=20) as board, Device.open(board.url, 5) as dev:
        h = dev.hello()
        assert h.core == core and h.counter == "icount" and h.protocol == P.PROTOCOL_VERSION
        assert h.build_id == fw.build_id and h.reset_reason == "power-on" and not h.has_runtime
        assert board.boot_s is not None and board.boot_s < 20
        assert dev.power() is None  # QEMU boards have no meter: "absent"


@pytest.fixture(scope="module")
def m3(link_firmware):
    with QemuBoard("m3", elf=link_firmware("m3").elf) as board:
        yield board


def _error(dev: Device, frame: bytes) -> dict:
    dev.send_raw(b"\0" + frame)
    reply = dev.read_frame(5)
    assert reply.type == P.MSG_ERROR | P.REPLY_FLAG
    return P.ERROR.unpack(reply.payload)


def test_malformed_frames_get_errors(m3):
    with Device.open(m3.url, 5) as dev:
        dev.hello()
        bad_crc = bytearray(P.body(P.MSG_HELLO, 40))
        bad_crc[-1] ^= 0xFF
        assert _error(dev, P.cobs_encode(bytes(bad_crc)) + b"\0")["status"] == P.ST_CRC
        assert _error(dev, P.cobs_encode(P.body(P.MSG_INFER, 41, b"\1\0\0\0")[:-2]) + b"\0")["status"] == P.ST_TRUNCATED
        assert _error(dev, bytes([0x09, 1, 2]) + b"\0")["status"] == P.ST_COBS
        assert _error(dev, P.encode_frame(P.MSG_HELLO, 42, version=7))["status"] == P.ST_VERSION
        assert _error(dev, P.encode_frame(0x55, 43))["status"] == P.ST_UNKNOWN_TYPE
        assert _error(dev, P.encode_frame(P.MSG_POWER, 44, b"x"))["status"] == P.ST_BAD_LENGTH
        # Longer than any frame: dropped up to the delimiter, then one TOO_LONG answer.
        assert _error(dev, b"\x01" * (P.MAX_ENCODED + 500) + b"\0")["status"] == P.ST_TOO_LONG
        # Garbage without a delimiter, then a valid request: the leading 0x00 of request() resyncs.
        dev.send_raw(b"\x13\x37" * 50)
        assert dev.hello().board == "mps2-an385"


def test_out_of_order_and_load_errors(m3):
    with Device.open(m3.url, 5) as dev:
        dev.hello()
        dev.power()
        stale = (dev._seq - 1) & 0xFFFF
        err = _error(dev, P.encode_frame(P.MSG_POWER, stale))
        assert err["status"] == P.ST_SEQUENCE and err["detail"] == (dev._seq + 1) & 0xFFFF
        with pytest.raises(DeviceError) as e:
            dev.request(P.MSG_LOAD_CHUNK, struct.pack("<I", 0) + b"abc")
        assert e.value.name == "NO_LOAD"
        h = dev.hello()
        with pytest.raises(DeviceError) as e:
            dev.request(P.MSG_LOAD_BEGIN, P.LOAD_BEGIN.pack(size=h.max_model + 1))
        assert e.value.name == "MODEL_TOO_BIG" and e.value.detail == h.max_model
        data = (bytes(range(256)) * 8)[:2000]
        dev.request(P.MSG_LOAD_BEGIN, P.LOAD_BEGIN.pack(size=len(data), sha256=hashlib.sha256(data).digest()))
        dev.request(P.MSG_LOAD_CHUNK, struct.pack("<I", 0) + data[:1000])
        with pytest.raises(DeviceError) as e:
            dev.request(P.MSG_LOAD_CHUNK, struct.pack("<I", 500) + data[500:1000])
        assert e.value.name == "LOAD_ORDER" and e.value.detail == 1000
        with pytest.raises(DeviceError) as e:
            dev.request(P.MSG_LOAD_END)
        assert e.value.name == "LOAD_SIZE"
        # Right size, wrong bytes: the SHA-256 check refuses it before the runtime sees it.
        dev.request(P.MSG_LOAD_BEGIN, P.LOAD_BEGIN.pack(size=len(data), sha256=hashlib.sha256(data).digest()))
        bad = data[:-1] + b"\0"
        dev.request(P.MSG_LOAD_CHUNK, struct.pack("<I", 0) + bad[:1000])
        dev.request(P.MSG_LOAD_CHUNK, struct.pack("<I", 1000) + bad[1000:])
        with pytest.raises(DeviceError) as e:
            dev.request(P.MSG_LOAD_END)
        assert e.value.name == "HASH"
        # Hash verified, then the link-only firmware says it has no runtime.
        with pytest.raises(DeviceError) as e:
            dev.load_model(data)
        assert e.value.name == "NO_RUNTIME"
        with pytest.raises(DeviceError) as e:
            dev.infer(1)
        assert e.value.name == "NO_RUNTIME"


def test_reset_reboots(m3):
    with Device.open(m3.url, 5) as dev:
        h = dev.reset(wait_s=10)
        assert h.reset_reason == "software"


def test_pty_serial(link_firmware):
    with QemuBoard("m4", elf=link_firmware("m4").elf, serial="pty") as board:
        assert board.url.startswith("/dev/pts/")
        with Device.open(board.url, 5) as dev:
            assert dev.hello().board == "mps2-an386"


def test_device_timeout_is_typed(link_firmware):
    from edgeprune.bench.link import LinkTimeout

    with QemuBoard("m3", elf=link_firmware("m3").elf) as board, Device.open(board.url, 0.5) as dev:
        dev.hello()
        dev.send_raw(b"\0" + P.encode_frame(P.MSG_TEST_HANG, dev.next_seq()))
        with pytest.raises(LinkTimeout):
            dev.hello(timeout_s=0.3)


@pytest.mark.slow
def test_watchdog_recovers_hung_board(link_firmware):
    """The hang spins ~1.5e9 emulated instructions (1.5 s of -icount time) before the watchdog's NMI resets the
    board: ~25 s on a loaded 2-core machine, hence the generous deadline."""
    with QemuBoard("m3", elf=link_firmware("m3").elf) as board, Device.open(board.url, 5) as dev:
        dev.hello()
        dev.send_raw(b"\0" + P.encode_frame(P.MSG_TEST_HANG, dev.next_seq()))
        deadline = time.monotonic() + 150
        while True:
            try:
                h = dev.hello(timeout_s=1.0)
                break
            except (FrameError, Exception) as exc:  # LinkTimeout until the watchdog fires
                if time.monotonic() > deadline:
                    raise AssertionError("no watchdog reset within 150 s") from exc
        assert h.reset_reason == "watchdog"
