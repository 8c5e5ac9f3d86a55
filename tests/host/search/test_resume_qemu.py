"""Through QEMU (issue 32, items 1 and 6): two real searches start at once on a cold firmware build (a private
PlatformIO build dir both must build into), one is SIGKILLed after its first device evaluation and resumed; the
resumed store equals the other search's row by row — configs, origins, verdicts and every figure with its source
and detail (flash/RAM exactly) — and no emulator of the killed search is left running.

PPO: with this budget the agent does not update, so its actions come from its random generator alone; the
compression of each candidate reseeds torch's global generator, so the resumed agent proposes the same configs
only if measurements leave the agent's randomness alone (``session.isolated_rng``). Instruction counts of two
QEMU processes can differ by one SysTick tick (the phase of the tick, see test_eth_link); counts, the figures
derived from them and the reward are compared within two ticks, everything else exactly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeprune.host.search.store import RunStore

from .test_resume_reproduces import rows

HERE = Path(__file__).resolve().parent
pytestmark = [pytest.mark.qemu, pytest.mark.tf, pytest.mark.slow]
BUDGET = 3


def _run(run_dir: Path, resume: bool, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE / "_qemu_run.py"), str(run_dir), "ppo", str(BUDGET),
                             "1" if resume else "0", "nocache"], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


COUNTED = ("latency_count", "latency_ms", "energy_uj")


def assert_same_row(a: tuple, b: tuple) -> None:
    """``rows()`` entries equal, counts and what derives from them within two ticks of the count's resolution."""
    assert a[:7] == b[:7] and a[8] == b[8], f"\n resumed   {a}\n unkilled  {b}"
    fa, fb = {f[0]: f for f in a[9]}, {f[0]: f for f in b[9]}
    assert fa.keys() == fb.keys()
    count = fb.get("latency_count")
    res = re.search(r"resolution (\d+)", count[4]) if count else None
    tol = 2 * int(res.group(1)) / count[1] if res else 0.0
    for key in fa:
        x, y = fa[key], fb[key]
        if key in COUNTED:
            assert x[2:4] == y[2:4] and re.sub(r"\d", "", x[4]) == re.sub(r"\d", "", y[4]), (x, y)
            assert abs(x[1] - y[1]) <= tol * abs(y[1]) + 1e-9, (x, y)
        else:
            assert x == y, (x, y)
    assert (a[7] is None) == (b[7] is None) and abs((a[7] or 0) - (b[7] or 0)) <= 0.4 * tol + 1e-9, (a[7], b[7])


def _children(pid: int) -> set[int]:
    import psutil

    try:
        return {c.pid for c in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


@pytest.mark.timeout(1500)
def test_two_searches_on_a_cold_build_and_the_killed_one_resumes_to_the_same_rows(tmp_path):
    import psutil

    env = {**os.environ, "PLATFORMIO_BUILD_DIR": str(tmp_path / "pio-build")}  # cold: built by the searches
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    ref_proc, proc = _run(reference, False, env), _run(killed, False, env)
    spawned: set[int] = set()
    deadline = time.monotonic() + 900
    while True:
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no device evaluation committed in time"
        spawned |= _children(proc.pid)
        if (killed / "evaluations.sqlite").exists():
            with RunStore(killed) as store:
                if store.device_evaluations() >= 1:
                    break
        time.sleep(0.2)
    spawned |= _children(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # The emulator runs in its own process group: the resumed search ends it by its pidfile.
    resumed = _run(killed, True, env)
    out, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, out.decode(errors="replace")[-3000:]
    left = [p for p in spawned if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    for pid in left:  # end exactly what this test started, then fail
        psutil.Process(pid).kill()
    assert not left, "an emulator of the killed search outlived its resume"

    out, _ = ref_proc.communicate(timeout=900)
    assert ref_proc.returncode == 0, out.decode(errors="replace")[-3000:]
    assert (tmp_path / "pio-build" / "qemu-m4" / "firmware.elf").is_file()
    got, expected = rows(killed), rows(reference)
    for a, b in zip(got, expected, strict=False):
        assert_same_row(a, b)
    assert len(got) == len(expected)
    with RunStore(killed) as store:
        assert store.device_evaluations() == BUDGET and store.get_meta("finished") is not None
