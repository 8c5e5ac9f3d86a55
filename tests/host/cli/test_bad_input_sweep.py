"""Every bad input the CLI is given (issue 16, deliverable 5), swept: missing, empty, truncated and
wrong-format model and data files, wrong shapes, NaN data, impossible limits, unknown, busy, unusable and
forbidden serial ports, an unwritable --out, a run directory that is not one or comes from an older version.

Each case runs the real ``edgeprune`` entry point in-process (Click's runner, as tests/host/cli/test_cli.py) and
must exit non-zero with exactly one line on stderr that names the problem, no traceback, and nothing
half-written: no run directory (nor a hidden one being assembled) left behind.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from doubles.fake_task import FakeTask

from edgeprune.host.cli import main
from tests.host.search.test_run_options import DeployBuildEvaluator


@dataclass(frozen=True)
class Case:
    """One bad input.

    :param args: CLI arguments; ``{d}`` is the test's folder of input files
    :param says: words the one error line must hold (what is wrong, what to do)
    :param setup: extra preparation ``setup(folder, monkeypatch) -> None`` (fakes, a locked port, ...)
    """

    args: tuple[str, ...]
    says: tuple[str, ...]
    setup: Callable[[Path, pytest.MonkeyPatch], None] | None = None


def _fast_baseline(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A baseline measured in milliseconds (20,000 B of firmware around the model), for limits only a
    measured baseline can refute."""
    import edgeprune.host.search.run_loop as run_loop

    monkeypatch.setattr(run_loop, "load_task", lambda options, progress=None: FakeTask())
    monkeypatch.setattr(run_loop, "hardware_evaluator", lambda task, options, run_dir: DeployBuildEvaluator())


def _byo_files(d: Path) -> None:
    from edgeprune.host.tasks.gru_train import make_gru_net

    torch.manual_seed(0)
    cfg = {"input_size": 3, "hidden_sizes": [8, 8], "num_outputs": 1, "seq_len": 6, "kind": "regressor"}
    torch.save({"config": cfg, "state_dict": make_gru_net(3, 8, 2, 1).state_dict()}, d / "gru.pt")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 6, 3)).astype(np.float32)
    y = rng.normal(size=60).astype(np.float32)
    np.savez(d / "data.npz", X=x, y=y)
    raw = (d / "gru.pt").read_bytes()
    (d / "empty.pt").write_bytes(b"")
    (d / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    (d / "text.pt").write_text("not a model\n")
    (d / "model.tflite").write_bytes(b"")
    raw = (d / "data.npz").read_bytes()
    (d / "empty.npz").write_bytes(b"")
    (d / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    (d / "table.npz").write_text("a,b,c\n1,2,3\n")
    np.savez(d / "keys.npz", A=x)
    np.savez(d / "shape.npz", X=rng.normal(size=(60, 6, 5)).astype(np.float32), y=y)
    nan = x.copy()
    nan[3, 2, 1] = np.nan
    np.savez(d / "nan.npz", X=nan, y=y)
    np.savez(d / "int.npz", X=x.astype(np.int64), y=y)


def _older_run(d: Path) -> None:
    """A run directory as an older edgeprune wrote it: no ``proposal_json``/``counted`` columns yet."""
    old = d / "old-run"
    old.mkdir()
    with sqlite3.connect(old / "evaluations.sqlite") as conn:
        conn.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE evaluations (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                strategy TEXT NOT NULL, digest TEXT NOT NULL, config_json TEXT NOT NULL, origin TEXT NOT NULL,
                feasible INTEGER NOT NULL, reason TEXT NOT NULL, reward REAL, result_json TEXT NOT NULL,
                started REAL NOT NULL, finished REAL NOT NULL);
            INSERT INTO meta VALUES ('options', '{"strategy": "random", "budget": 3}');
        """)


def _forbid(path: Path) -> None:
    """Make ``path`` unopenable for writing: mode 000 for a user; root ignores modes, so immutable for root."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True, timeout=10, capture_output=True)
    else:
        path.chmod(0)


def _unforbid(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=False, timeout=10, capture_output=True)
    else:
        path.chmod(0o755)


CASES: dict[str, Case] = {
    # --model
    "model missing": Case(("search", "--model", "{d}/nope.pt", "--data", "{d}/data.npz"), ("--model", "does not exist")),
    "model empty": Case(("search", "--model", "{d}/empty.pt", "--data", "{d}/data.npz"), ("empty.pt", "not a torch.save'd")),
    "model truncated": Case(("search", "--model", "{d}/truncated.pt", "--data", "{d}/data.npz"), ("truncated.pt", "not a torch.save'd")),
    "model wrong format": Case(("search", "--model", "{d}/text.pt", "--data", "{d}/data.npz"), ("text.pt", "not a torch.save'd")),
    "model is a folder": Case(("search", "--model", "{d}", "--data", "{d}/data.npz"), ("--model", "is a directory")),
    "data without model": Case(("search", "--data", "{d}/data.npz"), ("give the model file too",)),
    "task and model": Case(("search", "--task", "weather-gru", "--model", "{d}/gru.pt"), ("either --task or --model",)),
    "train model missing": Case(("train", "--model", "{d}/nope.pt", "--data", "{d}/data.npz"), ("nope.pt", "not found")),
    "bench model missing": Case(("bench", "{d}/nope.tflite", "--device", "qemu:m4"), ("MODEL", "does not exist")),
    "bench model empty": Case(("bench", "{d}/model.tflite", "--device", "qemu:m4"), ("not a TFLite flatbuffer",)),
    # --data
    "data missing": Case(("search", "--model", "{d}/gru.pt", "--data", "{d}/nope.npz"), ("--data", "does not exist")),
    "data empty": Case(("search", "--model", "{d}/gru.pt", "--data", "{d}/empty.npz"), ("empty.npz", "the file is empty")),
    "data truncated": Case(("search", "--model", "{d}/gru.pt", "--data", "{d}/truncated.npz"), ("truncated.npz", "expected a numpy .npz")),
    "data wrong format": Case(("search", "--model", "{d}/gru.pt", "--data", "{d}/table.npz"), ("table.npz", "not a zip archive")),
    "data wrong arrays": Case(("search", "--model", "{d}/gru.pt", "--data", "{d}/keys.npz"), ("expected arrays 'X' and 'y'",)),
    "data wrong shape": Case(("search", "--model", "{d}/gru.pt", "--data", "{d}/shape.npz"), ("X must be [N, 6, 3]", "[60, 6, 5]")),
    "data wrong dtype": Case(("search", "--model", "{d}/gru.pt", "--data", "{d}/int.npz"), ("X must be float32",)),
    "data NaN": Case(("search", "--model", "{d}/gru.pt", "--data", "{d}/nan.npz"), ("1 NaN/inf", "clean or impute")),
    # limits
    "flash 0": Case(("search", "--flash-kb", "0"), ("--flash-kb 0", "> 0")),
    "flash 1": Case(("search", "--flash-kb", "1", "--strategy", "random"), ("--flash-kb 1", "firmware without any model"), _fast_baseline),
    "flash nan": Case(("search", "--flash-kb", "nan"), ("--flash-kb nan",)),
    "ram negative": Case(("search", "--ram-kb", "-5"), ("--ram-kb -5", "> 0")),
    "acc drop negative": Case(("search", "--max-acc-drop", "-1"), ("--max-acc-drop -1", "≥ 0")),
    "acc drop nan": Case(("search", "--max-acc-drop", "nan"), ("--max-acc-drop nan",)),
    "acc drop not a number": Case(("search", "--max-acc-drop", "one"), ("--max-acc-drop", "not a valid float")),
    "budget negative": Case(("search", "--budget", "-1"), ("--budget", "-1 is not in the range")),
    "budget zero": Case(("search", "--budget", "0"), ("--budget", "0 is not in the range")),
    "fine-tuning negative": Case(("search", "--finetune-steps", "-3"), ("--finetune-steps", "non-negative")),
    "unknown strategy": Case(("search", "--strategy", "magic"), ("--strategy", "magic")),
    "bench repeats 0": Case(("bench", "{d}/model.tflite", "--repeats", "0"), ("--repeats",)),
    # --device
    "unknown serial port": Case(("search", "--device", "/dev/ttyNOPE0"), ("/dev/ttyNOPE0 does not exist", "edgeprune bench --list")),
    "device typo": Case(("search", "--device", "qemu:m5"), ("unknown QEMU core 'm5'",)),
    "device gibberish": Case(("search", "--device", "board-please"), ("--device 'board-please'", "serial port")),
    "port busy": Case(("search", "--device", "{pty}"), ("in use by another program",)),
    "port permission denied": Case(("search", "--device", "{d}/forbidden-port"), ("permission denied", "dialout")),
    "port not a tty": Case(("search", "--device", "{d}/data.npz"), ("is not a serial port",)),
    # run directories
    "out unwritable": Case(("search", "--out", "{d}/locked/run"), ("--out", "cannot write the run directory", "writable --out")),
    "resume not a run": Case(("search", "--resume", "{d}"), ("holds no evaluations.sqlite",)),
    "resume missing": Case(("search", "--resume", "{d}/nope"), ("--resume", "does not exist")),
    "resume older version": Case(("search", "--resume", "{d}/old-run"), ("written by an older edgeprune", "start a new run")),
    "report older version": Case(("report", "{d}/old-run"), ("written by an older edgeprune",)),
    "report not a run": Case(("report", "{d}"), ("holds no evaluations.sqlite",)),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Iterator[Path]:
    d = tmp_path_factory.mktemp("bad-inputs")
    _byo_files(d)
    _older_run(d)
    (d / "locked").mkdir()
    (d / "forbidden-port").write_bytes(b"")
    for p in (d / "locked", d / "forbidden-port"):
        _forbid(p)
    yield d
    for p in (d / "locked", d / "forbidden-port"):
        _unforbid(p)


@pytest.fixture
def busy_pty() -> Iterator[str]:
    """A pty whose port another process holds with the exclusive lock pyserial takes (as another edgeprune)."""
    master, slave = os.openpty()
    fcntl.flock(slave, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_in_one_line_and_leaves_nothing(name, inputs, busy_pty, tmp_path, monkeypatch):
    case = CASES[name]
    monkeypatch.chdir(tmp_path)  # a default run directory would land here
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path / "cache"))
    if case.setup is not None:
        case.setup(inputs, monkeypatch)
    before = sorted(p.name for p in inputs.iterdir())
    args = [a.format(d=inputs, pty=busy_pty) for a in case.args]
    res = CliRunner().invoke(main, args)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code not in (0, None), (name, res.exit_code, res.output)
    assert len(lines) == 1, (name, res.stderr)
    assert lines[0].startswith("Error: ") and "Traceback" not in res.output, (name, res.output)
    for words in case.says:
        assert words in lines[0], (name, words, lines[0])
    # Nothing half-written: no run directory (default or --out), no hidden one being assembled.
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), (name, list(runs.iterdir()))
    assert sorted(p.name for p in inputs.iterdir()) == before, name
    assert not any((inputs / "locked").iterdir())


def test_the_sweep_holds_every_kind_the_issue_names():
    kinds = {"model missing", "model empty", "model truncated", "model wrong format", "data missing", "data empty",
             "data truncated", "data wrong format", "data wrong shape", "data NaN", "flash 0", "flash 1",
             "acc drop negative", "budget negative", "unknown serial port", "port busy", "port permission denied",
             "out unwritable", "resume older version"}
    assert kinds <= set(CASES)
    assert len(CASES) >= 40
