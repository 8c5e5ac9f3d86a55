"""Subprocess entry for the resume-reproduces tests: a fresh search, or ``--resume`` when the run directory exists.

argv: run_dir strategy budget max_acc_drop delay_s [cache.sqlite]. The stand-in evaluator screens on the host
like the real one (``prepare`` then ``measure_prepared``), so a tight ``max_acc_drop`` gives streaks of host
rejections; the phase under way is noted in ``<run_dir>.phase``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from edgeprune.host.search.options import SearchOptions  # noqa: E402
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import EvalCache  # noqa: E402
from tests.doubles.fake_task import FakeTask  # noqa: E402
from tests.host.search._kill_run import PhasedEvaluator  # noqa: E402


def main() -> None:
    import torch

    torch.set_num_threads(1)
    run_dir, strategy, budget = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    max_drop, delay = float(sys.argv[4]), float(sys.argv[5])
    cache = EvalCache(Path(sys.argv[6])) if len(sys.argv) > 6 else None
    phase = run_dir.parent / f"{run_dir.name}.phase"
    ev = PhasedEvaluator(delay, phase, run_dir.parent / f"{run_dir.name}.exports")
    opts = SearchOptions(strategy=strategy, budget=budget, out=str(run_dir), host_energy=False,
                         max_acc_drop=max_drop, use_cache=cache is not None, seed=3, horizon=4)
    resume = run_dir.exists()
    phase.write_text("start-up")
    res = run_search(None if resume else opts, resume=run_dir if resume else None, task=FakeTask(),
                     evaluator_factory=lambda t, o, d: ev, cache=cache)
    phase.write_text("finished")
    print(f"FINISHED {res.device_evaluations} {res.evaluations}", flush=True)


if __name__ == "__main__":
    main()
