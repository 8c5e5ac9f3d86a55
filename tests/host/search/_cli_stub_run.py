"""Subprocess entry: the real ``edgeprune`` command line (parsing, signals, error lines, exit codes) with the
search's task and evaluator replaced by the stand-ins of ``_kill_run.py`` (no training, no emulator).

Environment: ``EP_TEST_DELAY`` seconds per evaluator phase (default 0); ``EP_TEST_MAX_PAGES`` caps the run
store with SQLite's ``PRAGMA max_page_count``, so its writes fail with SQLite's own "database or disk is full"
(SQLITE_FULL), as on a full disk; ``EP_TEST_TASK_MARKER`` is a file written when the task is loaded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from edgeprune.host.search import run_loop  # noqa: E402
from edgeprune.host.search import store as store_mod  # noqa: E402
from tests.doubles.fake_task import FakeTask  # noqa: E402
from tests.host.search._kill_run import PhasedEvaluator  # noqa: E402


def _evaluator(task, options, run_dir):
    phase = run_dir.parent / f"{run_dir.name}.phase"
    return PhasedEvaluator(float(os.environ.get("EP_TEST_DELAY", "0")), phase, run_dir.parent / f"{run_dir.name}.exports")


def main() -> None:
    import torch

    torch.set_num_threads(1)
    def load_task(options, progress=None):
        marker = os.environ.get("EP_TEST_TASK_MARKER")
        if marker:
            Path(marker).write_text("task loaded")
        return FakeTask()

    run_loop.load_task = load_task
    run_loop.hardware_evaluator = _evaluator
    pages = os.environ.get("EP_TEST_MAX_PAGES")
    if pages:
        connect = store_mod._connect

        def capped(path):
            conn = connect(path)
            if Path(path).name == store_mod.RUN_DB_NAME:
                conn.execute(f"PRAGMA max_page_count={int(pages)}")
            return conn

        store_mod._connect = capped
    from edgeprune.host.cli import main as cli

    cli(sys.argv[1:], prog_name="edgeprune")


if __name__ == "__main__":
    main()
