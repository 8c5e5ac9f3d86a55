"""Run a build tool so that nothing it starts outlives us, even when we are killed with SIGKILL.

``pio run`` starts SCons, which starts compilers. ``PR_SET_PDEATHSIG`` on ``pio`` alone would not
reach them (the setting is cleared in every forked child), so the command runs under a small
supervisor (``python -m edgeprune.bench.proc_group PARENT_PID -- CMD...``): it leads a new process
group, asks the kernel for SIGTERM when its parent dies, and answers that SIGTERM (or a timeout
from our side) by SIGKILLing its whole group — the tool and everything the tool started.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux ``PR_SET_PDEATHSIG``).

    Returns False when the parent is already gone (re-parented before the request took effect).
    """
    parent = os.getppid()
    _parent_death_signal(sig)
    return parent != 1 and os.getppid() == parent


def _parent_death_signal(sig: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: a timeout or exception still kills the group
        pass


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_in_group(cmd: Sequence[str], timeout_s: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Like ``subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)``, but on a
    timeout, an exception (Ctrl-C) or the death of this process the whole process tree is killed.

    Raises ``subprocess.TimeoutExpired`` after killing the tree.
    """
    wrapped = [sys.executable, "-m", "edgeprune.bench.proc_group", str(os.getpid()), "--", *cmd]
    proc = subprocess.Popen(wrapped, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except BaseException:
        _kill_group(proc.pid)
        proc.communicate(timeout=30)
        raise
    return subprocess.CompletedProcess(list(cmd), proc.returncode, out, err)


def _supervise(parent: int, cmd: list[str]) -> int:
    """The supervisor's body: we lead our process group (``start_new_session`` in ``run_in_group``)."""
    signal.signal(signal.SIGTERM, lambda *_: _kill_group(0))
    signal.signal(signal.SIGINT, lambda *_: _kill_group(0))
    _parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request above took effect
        _kill_group(0)
    try:
        child = subprocess.Popen(cmd)
    except OSError as exc:
        sys.stderr.write(f"cannot run {cmd[0]}: {exc}\n")
        return 127
    return child.wait()


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: python -m edgeprune.bench.proc_group PARENT_PID -- CMD...")
    sys.exit(_supervise(int(sys.argv[1]), sys.argv[3:]))
