"""What a user can do to a run's store or disk ends in one actionable line and a non-zero exit, never a
traceback (issue 32, items 2 and 3): a full disk during a search (which then resumes), a store truncated, with
junk in the middle, with a junk header, or empty — refused by ``search --resume`` before the task loads and by
``report``.

The full disk is SQLite's own SQLITE_FULL ("database or disk is full"), raised by capping the run store with
``PRAGMA max_page_count`` (``_cli_stub_run.py``): the same error code and message a full file system gives the
store, on every machine (mounting a small tmpfs needs privileges a CI runner may not have).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprune.host.search.store import RunStore

HERE = Path(__file__).resolve().parent
ENTRY = HERE / "_cli_stub_run.py"
SEARCH = ["search", "--strategy", "random", "--budget", "4", "--no-host-energy", "--max-acc-drop", "30", "--no-cache"]


def cli(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "EDGEPRUNE_CACHE": str(tmp_path / "cache"), "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, str(ENTRY), *args], capture_output=True, text=True, timeout=300,
                          env=environ)


def one_line_error(res: subprocess.CompletedProcess) -> str:
    """The failure's stderr: one line, no traceback; returned for the message checks."""
    assert res.returncode != 0, res.stdout[-2000:]
    assert "Traceback" not in res.stderr + res.stdout, res.stderr[-3000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.mark.slow
def test_disk_full_during_a_search_is_one_line_then_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    res = cli([*SEARCH, "--out", str(run)], tmp_path, EP_TEST_MAX_PAGES="9")
    line = one_line_error(res)
    assert "database or disk is full" in line and f"--resume {run}" in line, line
    with RunStore.open_existing(run) as store:
        kept = [(r.digest, r.counted) for r in store.evaluations("candidate")]
    assert kept and sum(c for _, c in kept) < 4  # stopped part-way, what was committed is intact

    res = cli(["search", "--resume", str(run)], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    with RunStore.open_existing(run) as store:
        after = [(r.digest, r.counted) for r in store.evaluations("candidate")]
        assert store.device_evaluations() == 4
    assert after[: len(kept)] == kept
    counted = [d for d, c in after if c]
    assert len(counted) == len(set(counted))  # nothing measured twice


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])


def _junk_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    rng = random.Random(32)
    mid = len(data) // 2
    data[mid: mid + 1024] = bytes(rng.randrange(256) for _ in range(1024))
    path.write_bytes(bytes(data))


def _junk_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:100] = b"\xde\xad\xbe\xef" * 25
    path.write_bytes(bytes(data))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


DAMAGE = {"truncated": (_truncate, "damaged"), "junk in the middle": (_junk_middle, "damaged"),
          "junk header": (_junk_header, "not an SQLite store"), "zero-length": (_empty, "is empty (0 bytes)")}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    res = cli([*SEARCH, "--out", str(tmp / "run")], tmp)
    assert res.returncode == 0, res.stderr[-3000:]
    return tmp / "run"


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_store_is_refused_in_one_line_before_the_task_loads(tmp_path, finished_run, kind):
    damage, says = DAMAGE[kind]
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    db = run / "evaluations.sqlite"
    damage(db)
    before = db.read_bytes()
    marker = tmp_path / "task-loaded"

    res = cli(["search", "--resume", str(run)], tmp_path, EP_TEST_TASK_MARKER=str(marker))
    line = one_line_error(res)
    assert says in line and str(db) in line, line
    assert not marker.exists(), "the task was loaded before the store was checked"

    res = cli(["report", str(run)], tmp_path)
    line = one_line_error(res)
    assert says in line, line
    assert db.read_bytes() == before, "a refused store was written to"
