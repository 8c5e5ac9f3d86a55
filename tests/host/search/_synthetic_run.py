"""Subprocess entry for the kill -9 / resume tests: a search on the analytic stand-in evaluator."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from edgeprune.host.report import generate_report  # noqa: E402
from edgeprune.host.search.options import SearchOptions  # noqa: E402
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import EvalCache  # noqa: E402
from tests.doubles.fake_task import FakeTask  # noqa: E402
from tests.doubles.synthetic_evaluator import SyntheticEvaluator  # noqa: E402


def main() -> None:
    import torch

    torch.set_num_threads(1)
    run_dir, strategy, budget, resume, cache = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
    ev = SyntheticEvaluator(delay_s=0.25)
    opts = SearchOptions(strategy=strategy, budget=budget, out=run_dir, host_energy=False, max_acc_drop=30.0)
    run_search(None if resume else opts, resume=Path(run_dir) if resume else None, task=FakeTask(),
               evaluator_factory=lambda t, o, d: ev, cache=EvalCache(Path(cache)), write_report=generate_report)


if __name__ == "__main__":
    main()
