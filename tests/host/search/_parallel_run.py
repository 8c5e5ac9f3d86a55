"""Subprocess entry for the kill -9 test of parallel evaluation: a 2-worker random search on the stand-in
evaluator, or ``--resume`` when the run directory already holds one."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from edgeprune.host.search.options import SearchOptions  # noqa: E402
from edgeprune.host.search.run import run_search
from tests.doubles.fake_task import FakeTask  # noqa: E402
from tests.doubles.parallel_workers import SyntheticWorkers  # noqa: E402
from tests.doubles.synthetic_evaluator import SyntheticEvaluator  # noqa: E402


def main() -> None:
    run_dir, budget, delay = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    opts = SearchOptions(strategy="random", budget=budget, out=str(run_dir), host_energy=False, max_acc_drop=30.0,
                         use_cache=False, seed=3, workers=2)
    resume = (run_dir / "evaluations.sqlite").exists()
    run_search(None if resume else opts, resume=run_dir if resume else None, task=FakeTask(),
               evaluator_factory=lambda t, o, d: SyntheticEvaluator(), worker_factory=SyntheticWorkers(delay_s=delay))
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
