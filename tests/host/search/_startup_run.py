"""Subprocess entry for the start-up kill test: a search whose task takes forever to load."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from edgeprune.host.search.options import SearchOptions  # noqa: E402
from edgeprune.host.search.run import run_search


def main() -> None:
    run_dir, marker = Path(sys.argv[1]), Path(sys.argv[2])

    def slow_start(options, run_dir, resumed):  # stands for training the baseline
        marker.write_text("started")
        time.sleep(600)

    opts = SearchOptions(strategy="random", budget=2, out=str(run_dir), host_energy=False, max_acc_drop=30.0)
    run_search(opts, on_begin=slow_start)


if __name__ == "__main__":
    main()
