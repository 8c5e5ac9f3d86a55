"""Build tools run so that nothing they start outlives a timeout, Ctrl-C or a SIGKILL of edgeprune."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeprune.bench.proc_group import run_in_group


def _procs_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _sleeps(marker: str) -> list[int]:
    """The `sleep <marker>` processes themselves: not the caller or `sh`, whose command lines hold the marker too,
    nor the short-lived fork of `sh` that has not yet exec'd `sleep`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")[:-1]
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if argv == [b"sleep", marker.encode()] and state != "Z":
            found.append(int(entry.name))
    return found


def _gone(marker: str, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _procs_with(marker):
            return True
        time.sleep(0.1)
    return False


def test_output_and_exit_code_come_back():
    res = run_in_group(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout_s=30)
    assert (res.returncode, res.stdout, res.stderr) == (3, "out\n", "err\n")


def test_timeout_kills_the_grandchildren_too():
    marker = "98765.4321"
    with pytest.raises(subprocess.TimeoutExpired):
        # `sleep &` is a grandchild: subprocess.run's timeout would kill sh and leave it running.
        run_in_group(["sh", "-c", f"sleep {marker} & sleep {marker}"], timeout_s=1)
    assert _gone(marker)


def test_sigkill_of_the_caller_kills_the_whole_tree(tmp_path):
    marker = "98766.4321"
    code = ("import sys; from edgeprune.bench.proc_group import run_in_group; "
            f"run_in_group(['sh', '-c', 'sleep {marker} & sleep {marker}'], timeout_s=600)")
    caller = subprocess.Popen([sys.executable, "-c", code], start_new_session=False)
    deadline = time.monotonic() + 60
    while len(_sleeps(marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_sleeps(marker)) == 2
    os.kill(caller.pid, signal.SIGKILL)
    caller.wait(timeout=10)
    assert _gone(marker)


def _procs_with_env(needle: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_killing_a_firmware_build_leaves_no_pio_behind(tmp_path):
    """The issue's case: edgeprune SIGKILLed while `pio run` compiles; pio, SCons and gcc must all go."""
    build_dir = tmp_path / "build"
    code = ("import os; from edgeprune.bench.firmware_build import build; "
            "build('qemu-m4', build_dir=os.environ['EP_TEST_BUILD_DIR'], timeout_s=600)")
    caller = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "EP_TEST_BUILD_DIR": str(build_dir)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    needle = f"PLATFORMIO_BUILD_DIR={build_dir.resolve()}".encode()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _procs_with(str(build_dir)):  # a compiler writing into it
        assert caller.poll() is None, "the build ended before it could be killed"
        time.sleep(0.05)
    assert _procs_with_env(needle), "no pio process seen"
    os.kill(caller.pid, signal.SIGKILL)
    caller.wait(timeout=10)
    deadline = time.monotonic() + 15
    while _procs_with_env(needle) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _procs_with_env(needle)
