"""An emulator that dies or is stopped mid-job is noticed at once by polling its process (not after the link's
deadline), restarted, and the job retried; one that dies on every attempt is a ``gone`` fault and the next job
gets a fresh emulator (issue 16, deliverable 2)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from edgeprune.bench.link import Device, DeviceFault
from edgeprune.bench.targets import Target

pytestmark = pytest.mark.qemu

LINK_S = 60.0  # the real default: the fault must be seen long before it
NOTICED_S = 2.0  # bound on detection (the watchdog polls every 0.1 s; a loaded host adds scheduling delay)


def _hellos_for(seconds: float):
    def job(device: Device) -> int:
        n, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            device.hello()
            n += 1
        return n

    return job


def _strike(target: Target, sig: int, after_s: float, when: list[float]) -> threading.Thread:
    assert target.board is not None and target.board.proc is not None
    pid = target.board.proc.pid

    def fire() -> None:
        time.sleep(after_s)
        when.append(time.monotonic())
        os.kill(pid, sig)

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "stopped"])
def test_a_dead_or_stopped_emulator_is_noticed_at_once_and_restarted(sig):
    target = Target("qemu:m4", link_timeout_s=LINK_S, boot_timeout_s=60.0)
    try:
        target.open()
        first_pid = target.board.proc.pid
        when: list[float] = []
        _strike(target, sig, 0.3, when)
        started = time.monotonic()
        assert target.run(_hellos_for(1.0)) > 0  # the retry on a fresh emulator succeeds
        assert [e.kind for e in target.faults] == ["gone"]
        event = target.faults[0]
        noticed = started + event.detected_s - when[0]
        assert noticed < NOTICED_S, f"noticed {noticed:.2f} s after the signal"
        assert target.board.proc.pid != first_pid
        assert target.restarts == 1
    finally:
        target.close()
        try:
            os.kill(first_pid, signal.SIGKILL)  # a stopped emulator the test left (close() already killed it)
        except (ProcessLookupError, UnboundLocalError):
            pass


def test_an_emulator_dying_on_every_attempt_is_a_gone_fault_and_the_next_job_gets_a_fresh_one():
    target = Target("qemu:m4", link_timeout_s=LINK_S, boot_timeout_s=60.0)
    original_open = target.open
    when: list[float] = []

    def open_and_doom():
        device = original_open()
        if len(when) < 2 and not any(t.is_alive() for t in threading.enumerate() if t.name == "doom"):
            t = _strike(target, signal.SIGKILL, 0.3, when)
            t.name = "doom"
        return device

    target.open = open_and_doom  # type: ignore[method-assign]
    try:
        started = time.monotonic()
        with pytest.raises(DeviceFault) as info:
            target.run(_hellos_for(1.5))
        assert info.value.kind == "gone" and info.value.attempts == 2
        assert time.monotonic() - started < 2 * (1.5 + NOTICED_S) + 30.0  # boots included, far below 2 × 60 s
        assert target.board is None  # left closed: the next job starts a fresh emulator
        assert target.run(_hellos_for(0.2)) > 0
    finally:
        target.close()
