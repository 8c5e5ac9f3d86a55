"""Subprocess entry for the counted kill/resume test: a fresh search, or ``--resume`` when the run directory exists."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from edgeprune.host.search.run import SearchOptions, run_search  # noqa: E402
from tests.search.conftest import FakeTask  # noqa: E402
from tests.search.synthetic import SyntheticEvaluator  # noqa: E402


def main() -> None:
    import torch

    torch.set_num_threads(1)
    run_dir, strategy, budget, delay = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    ev = SyntheticEvaluator(delay_s=delay)
    # No global cache: a measurement killed before its store write is measured again on resume, as in an
    # uninterrupted run (a cache hit would be free and let the budget buy one more config).
    opts = SearchOptions(strategy=strategy, budget=budget, out=str(run_dir), host_energy=False, max_acc_drop=30.0,
                         use_cache=False, seed=7)
    resume = run_dir.exists()
    run_search(None if resume else opts, resume=run_dir if resume else None, task=FakeTask(),
               evaluator_factory=lambda t, o, d: ev)
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
