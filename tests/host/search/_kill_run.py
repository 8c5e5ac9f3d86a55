"""Subprocess entry for the counted kill/resume test: a fresh search, or ``--resume`` when the run directory exists."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from edgeprune.host.search.options import SearchOptions  # noqa: E402
from edgeprune.host.search.run import run_search
from tests.doubles.fake_task import FakeTask  # noqa: E402
from tests.doubles.synthetic_evaluator import SyntheticEvaluator  # noqa: E402


class PhasedEvaluator(SyntheticEvaluator):
    """The stand-in evaluator in the real evaluator's phases (fine-tune, export, load + measure), each taking
    ``delay_s``; the phase under way is noted in ``phase_file`` so a test can tell where a kill landed."""

    def __init__(self, delay_s: float, phase_file: Path, export_dir: Path) -> None:
        super().__init__()
        self.phase_delay_s = delay_s
        self.phase_file = phase_file
        self.export_dir = export_dir

    def _phase(self, name: str) -> None:
        self.phase_file.write_text(name)
        time.sleep(self.phase_delay_s)

    def prepare(self, config):
        self._phase("fine-tune")
        self._phase("export")
        out = self.export_dir / config.digest()[:16]
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.tflite.tmp").write_bytes(config.digest().encode())
        (out / "model.tflite.tmp").replace(out / "model.tflite")  # as export_model: whole or absent
        result = super().evaluate(config)
        return SimpleNamespace(config=config, result=result, quality=SimpleNamespace(value=result.value("quality")))

    def measure_prepared(self, prepared):
        self._phase("load+measure")
        self.phase_file.write_text("store-write")
        return prepared.result

    def evaluate(self, config):
        self._phase("baseline")
        return super().evaluate(config)


def main() -> None:
    import torch

    torch.set_num_threads(1)
    run_dir, strategy, budget, delay = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    ev = PhasedEvaluator(delay, run_dir.parent / f"{run_dir.name}.phase", run_dir.parent / f"{run_dir.name}.exports")
    # No global cache: a measurement killed before its store write is measured again on resume, as in an
    # uninterrupted run (a cache hit would be free and let the budget buy one more config).
    opts = SearchOptions(strategy=strategy, budget=budget, out=str(run_dir), host_energy=False, max_acc_drop=30.0,
                         use_cache=False, seed=7)
    resume = run_dir.exists()
    (run_dir.parent / f"{run_dir.name}.phase").write_text("start-up")
    run_search(None if resume else opts, resume=run_dir if resume else None, task=FakeTask(),
               evaluator_factory=lambda t, o, d: ev)
    (run_dir.parent / f"{run_dir.name}.phase").write_text("finished")
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
