"""SET_BAUD and the held-model hash (issue 16, link speed) in the real firmware: the dispatcher on the host
(tests/test_set_baud.c: grace period, confirmation, refusal), then qemu-system-arm over a pty (the host really
changes its termios rate; QEMU's UART models ignore it, so the rate is accepted and reported), and the full
firmware reporting the SHA-256 of the model it holds so the host sends a model once."""

from __future__ import annotations

import hashlib
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprune.bench import protocol as P
from edgeprune.bench.link import Device, DeviceError
from edgeprune.bench.qemu import QemuBoard

from .test_golden import _compile


def test_dispatcher_switches_reverts_and_refuses(tmp_path):
    exe = _compile(tmp_path, "test_set_baud",
                   ["tests/test_set_baud.c", "tests/host_port.c", "src/ep_frame.c", "src/ep_sha256.c", "src/ep_link.c"],
                   ["-DEP_HAVE_RUNTIME=0", "-DEP_MODEL_MAX=8192u", "-DEP_ARENA_BYTES=4096u"])
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "16 checks, 0 failures" in proc.stdout, proc.stdout


class CountingDevice(Device):
    """A Device that notes the type of every request it sends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: list[int] = []

    def request(self, type_: int, payload: bytes = b"", timeout_s: float | None = None) -> bytes:
        self.sent.append(type_)
        return super().request(type_, payload, timeout_s)


def _open(board: QemuBoard) -> CountingDevice:
    from edgeprune.bench.transports import open_port

    return CountingDevice(open_port(board.url, 5.0), 5.0, board.url)


@pytest.mark.qemu
@pytest.mark.parametrize(("core", "fastest"), [("m0", 921_600), ("m4", 2_000_000)])
def test_set_baud_in_qemu(core, fastest, link_firmware):
    """nRF51 (microbit): its UART has no 2 Mbaud setting, so the board refuses it and 921,600 is taken;
    CMSDK UART (mps2): every rate accepted. Either way the reply and a HELLO at the new rate come back."""
    with QemuBoard(core, elf=link_firmware(core).elf, serial="pty") as board, _open(board) as dev:
        dev.hello()
        assert dev.port.baudrate == P.BAUD_DEFAULT
        assert dev.negotiate_baud() == fastest
        assert dev.port.baudrate == fastest
        refused = dev.sent.count(P.MSG_SET_BAUD) - 1
        assert refused == (1 if core == "m0" else 0)
        assert dev.hello().board  # still talking at the new rate
        with pytest.raises(DeviceError) as e:
            dev.request(P.MSG_SET_BAUD, P.SET_BAUD.pack(rate=0))
        assert e.value.name == "BAD_ARG" and e.value.detail == fastest  # names the rate in use
        with pytest.raises(DeviceError) as e:
            dev.request(P.MSG_SET_BAUD, b"\1\2")
        assert e.value.name == "BAD_LENGTH"


def _seed_models():
    tests_dir = str(Path(__file__).resolve().parents[1])
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    return importlib.import_module("runtime.seed_models")


@pytest.mark.qemu
def test_hello_reports_the_held_model_and_the_host_sends_it_once(full_firmware):
    seeds = _seed_models()
    a, b = seeds.fc_square(64, seed=3), seeds.fc_square(64, seed=4)
    assert a != b
    with QemuBoard("m4", elf=full_firmware("m4").elf) as board, _open(board) as dev:
        assert dev.hello().model_sha256 is None
        first = dev.load_model(a)
        assert not dev.last_load_skipped and dev.last_load_s > 0
        assert dev.hello().model_sha256 == hashlib.sha256(a).digest()
        loads = dev.sent.count(P.MSG_LOAD_BEGIN)
        again = dev.load_model(a)
        assert dev.last_load_skipped and dev.last_load_s == 0.0 and again == first
        assert dev.sent.count(P.MSG_LOAD_BEGIN) == loads and dev.sent.count(P.MSG_LOAD_CHUNK) > 0
        dev.set_input(0, bytes(64))
        assert dev.infer(1).outputs  # the held model still runs
        dev.load_model(b)  # another model: sent
        assert not dev.last_load_skipped and dev.sent.count(P.MSG_LOAD_BEGIN) == loads + 1
        assert dev.hello().model_sha256 == hashlib.sha256(b).digest()
        dev.reset()  # a reset loses the model: HELLO says so and the next load sends it
        assert dev.hello().model_sha256 is None
        dev.load_model(b)
        assert not dev.last_load_skipped and dev.sent.count(P.MSG_LOAD_BEGIN) == loads + 2
