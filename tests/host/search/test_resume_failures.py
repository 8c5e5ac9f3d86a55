"""What a user can do to a run's store or disk ends in one actionable line and a non-zero exit, never a
traceback (issue 32, items 2 and 3): a full disk during a search (which then resumes), a store truncated, with
junk in the middle, with a junk header, or empty — refused by ``search --resume`` before the task loads and by
``report``.

The full disk is tested twice: SQLite's own SQLITE_FULL ("database or disk is full"), raised by capping the run
store with ``PRAGMA max_page_count`` (``_cli_stub_run.py``), which runs on every machine; and a real full file
system, a small tmpfs in a private mount namespace (``unshare -rm``), where the kernel allows one (skipped where it
does not: mounting needs privileges a CI runner may lack).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import textwrap
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


FULL_TMPFS = textwrap.dedent("""
    set -u
    mount -t tmpfs -o size=8m tmpfs "$MNT" || exit 77
    head -c $((8 * 1024 * 1024 - 200 * 1024)) /dev/zero > "$MNT/filler"
    "$PY" "$STUB" search --out "$MNT/run" --strategy random --budget 4 --no-host-energy --max-acc-drop 30 \\
        --no-cache > "$OUT/1.out" 2> "$OUT/1.err"
    echo $? > "$OUT/1.rc"
    rm -f "$MNT/filler"
    "$PY" "$STUB" search --resume "$MNT/run" > "$OUT/2.out" 2> "$OUT/2.err"
    echo $? > "$OUT/2.rc"
    cp -r "$MNT/run" "$OUT/run"
""")


@pytest.mark.slow
def test_a_real_full_disk_is_one_line_then_the_run_resumes(tmp_path):
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare(1) to mount a private tmpfs")
    (tmp_path / "mnt").mkdir()
    env = {**os.environ, "MNT": str(tmp_path / "mnt"), "OUT": str(tmp_path), "PY": sys.executable, "STUB": str(ENTRY),
           "EDGEPRUNE_CACHE": str(tmp_path / "cache")}
    res = subprocess.run([unshare, "-rm", "sh", "-c", FULL_TMPFS], env=env, capture_output=True, text=True, timeout=600)
    if res.returncode == 77 or not (tmp_path / "1.rc").is_file():
        pytest.skip(f"cannot mount a tmpfs here: {(res.stderr or res.stdout).strip()[-200:]}")
    first = subprocess.CompletedProcess([], int((tmp_path / "1.rc").read_text()), (tmp_path / "1.out").read_text(),
                                        (tmp_path / "1.err").read_text())
    line = one_line_error(first)
    assert "full" in line and f"--resume {tmp_path / 'mnt' / 'run'}" in line, line
    assert (tmp_path / "2.rc").read_text().strip() == "0", (tmp_path / "2.err").read_text()[-3000:]
    with RunStore.open_existing(tmp_path / "run") as store:
        counted = [r.digest for r in store.evaluations("candidate") if r.counted]
    assert len(counted) == 4 == len(set(counted))


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


def test_damaged_evaluation_cache_is_one_line_and_leaves_no_run(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "eval_cache.sqlite").write_bytes(b"\x00junk" * 4096)
    run = tmp_path / "run"
    res = cli([arg for arg in SEARCH if arg != "--no-cache"] + ["--out", str(run)], tmp_path)
    line = one_line_error(res)
    assert f"the evaluation cache {cache / 'eval_cache.sqlite'} is damaged" in line and "--no-cache" in line, line
    assert not run.exists()  # nothing was measured: the new run directory is not left behind


def test_junk_inside_a_row_with_sound_pages_is_found_by_the_check(tmp_path, finished_run):
    """Bytes overwritten inside a row's text leave SQLite's pages valid (``integrity_check`` passes): the check
    decodes every row too."""
    import sqlite3

    from edgeprune.host.search.store import StoreCorruptError

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    with sqlite3.connect(run / "evaluations.sqlite") as conn:
        conn.execute("UPDATE evaluations SET result_json = substr(result_json, 1, 40) || '\x07#' WHERE seq = 2")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with pytest.raises(StoreCorruptError, match="evaluations.sqlite is damaged"):
        RunStore.open_existing(run)
