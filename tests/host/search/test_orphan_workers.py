"""A search killed outright (SIGKILL of its process alone, as an OOM kill does) leaves no worker behind: the
kernel ends each worker with its parent (``bench.proc_group.die_with_parent``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .test_parallel import _inflight_rows

HERE = Path(__file__).resolve().parent


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, timeout=10)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.timeout(180)
def test_workers_die_with_a_killed_search(tmp_path):
    # Slow stand-in evaluations (90 s each): the workers are busy when their search dies, and would send their
    # result (and only then notice the dead pipe) long after the 15 s allowed below.
    entry = [sys.executable, str(HERE / "_parallel_run.py"), str(tmp_path / "run"), "6", "90"]
    proc = subprocess.Popen(entry, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            workers = [p for p in _children(proc.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
            if len(workers) >= 2:
                break
            time.sleep(0.2)
        assert len(workers) >= 2, "the search never started its two workers"
        while time.monotonic() < deadline and len(_inflight_rows(tmp_path / "run")[1]) < 2:
            time.sleep(0.2)  # a worker still starting up would leave on its own at the closed pipe
        assert len(_inflight_rows(tmp_path / "run")[1]) == 2, "the workers never got an evaluation each"
        time.sleep(1)
        os.kill(proc.pid, signal.SIGKILL)  # the search alone, not its process group
        proc.wait(timeout=30)
        end = time.monotonic() + 15
        while time.monotonic() < end and any(_alive(p) for p in workers):
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers), "a worker outlived its search"
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
