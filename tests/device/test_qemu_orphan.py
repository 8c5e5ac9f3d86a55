"""QEMU does not outlive a launcher that is killed with SIGKILL (no atexit runs then)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.qemu

CHILD = """
import sys, time
from edgeprune.bench.qemu import QemuBoard
b = QemuBoard("m3", serial="tcp")
b.start()
print(b.proc.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_qemu_dies_with_a_sigkilled_launcher() -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip().isdigit(), "launcher did not start QEMU"
        qemu_pid = int(line)
        assert _alive(qemu_pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(qemu_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(qemu_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
