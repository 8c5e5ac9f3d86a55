"""Warm starts in the search (issue 28, item 3): a fully fine-tuned candidate is kept in the task's artifacts folder,
and a later candidate that compresses it further starts from it — the result names which one — while a candidate
with nothing to start from, or a damaged kept entry, fine-tunes from the baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeprune.host.compress.config import CompressionConfig, LayerConfig
from edgeprune.host.models import StackedGRU
from edgeprune.host.search import pool, task_export
from edgeprune.host.search.ancestors import Ancestors, warm_startable
from edgeprune.host.search.candidate import compress_candidate
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.pool import HardwareWorkers
from edgeprune.host.search.run_loop import hardware_evaluator
from edgeprune.host.search.store import RunStore
from edgeprune.host.search.types import EvalResult


class _Task:
    """A 4-class sequence task over arrays: what ``compress`` reads of a task."""

    kind = "classifier"
    name = "seq4"

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = StackedGRU(input_size=3, hidden_sizes=[8, 6], num_outputs=4, seq_len=5).eval()
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(128, 5, 3)).astype(np.float32)
        self.y = self.x.sum(axis=1).argmax(axis=1).astype(np.int64)

    def baseline(self):
        return self.model

    def train_arrays(self):
        return self.x, self.y


def _config(gru0: float, gru1: float, steps: int = 6, qat: bool = False) -> CompressionConfig:
    return CompressionConfig(layers=(LayerConfig("gru0", prune=gru0), LayerConfig("gru1", prune=gru1)),
                             finetune_steps=steps, qat=qat)


def _prepare(task, config, ancestors) -> EvalResult:
    result = EvalResult(config.to_json(), config.digest())
    assert compress_candidate(task, config, result, {}, ancestors) is not None
    return result


def test_a_later_candidate_starts_from_the_closest_kept_one(tmp_path):
    torch.set_num_threads(1)
    task, ancestors = _Task(), Ancestors(tmp_path / "finetuned")
    first, second, third = _config(0.25, 0.0), _config(0.5, 0.0), _config(0.75, 0.5)
    assert "warm_start_from" not in _prepare(task, first, ancestors).artifacts  # nothing kept yet
    assert _prepare(task, second, ancestors).artifacts["warm_start_from"] == first.digest()
    assert _prepare(task, third, ancestors).artifacts["warm_start_from"] == second.digest()  # the closer one
    assert sorted(p.name for p in (tmp_path / "finetuned").iterdir()) == sorted(
        f"{c.digest()[:16]}{ext}" for c in (first, second, third) for ext in (".json", ".pt"))
    # A less compressed candidate has no ancestor among these; a damaged entry is skipped, not fatal.
    (tmp_path / "finetuned" / "0000000000000000.json").write_text("{not json")
    assert "warm_start_from" not in _prepare(task, _config(0.0, 0.25), ancestors).artifacts


def test_only_plain_fine_tuning_is_warm_started():
    task = _Task()
    assert warm_startable(task, _config(0.5, 0.5))
    assert not warm_startable(task, _config(0.5, 0.5, steps=0))
    assert not warm_startable(task, _config(0.5, 0.5, qat=True))
    task.kind = "policy"
    assert not warm_startable(task, _config(0.5, 0.5))


def test_the_first_kept_model_of_a_config_stays_and_loads(tmp_path):
    """The kept model is the one whose export the cache reuses, so a later evaluation of the config (another
    ancestor, other weights) does not replace it; ``edgeprune export --run`` loads it for a warm-started best."""
    ancestors = Ancestors(tmp_path / "finetuned")
    config = _config(0.5, 0.5)
    first = torch.nn.Linear(2, 2)
    ancestors.keep(config, first)
    ancestors.keep(config, torch.nn.Linear(2, 3))
    loaded = ancestors.load(config.digest())
    assert torch.equal(loaded.weight, first.weight)
    assert ancestors.load(_config(0.25, 0.5).digest()) is None



def _run_with_best(run_dir, export_dir, config, warm_from) -> None:
    result = EvalResult(config.to_json(), config.digest())
    result.artifacts = {"dir": str(export_dir), **({"warm_start_from": warm_from} if warm_from else {})}
    with RunStore(run_dir) as store:
        store.set_meta("options", {"task": "weather-gru"})
        store.record(kind="candidate", strategy="random", result=result, origin="device", counted=True, feasible=True,
                     reason="", reward=1.0, proposal={}, started=0.0)


def test_export_of_a_warm_started_best_uses_its_kept_model(tmp_path, monkeypatch):
    """``edgeprune export --run``: a best fine-tuned from an ancestor is exported from the model the search kept
    (compressing the config again from the baseline would give other weights); gone, it says what to do."""
    task = _Task()
    monkeypatch.setattr(task_export, "get_task", lambda *a, **k: task)
    config = _config(0.5, 0.5)
    export_dir = tmp_path / "artifacts" / "taskhash" / config.digest()[:16]
    kept = Ancestors(export_dir.parent / "finetuned")
    # Weights no cold compression of the config gives: what a warm start from some ancestor would have made.
    model = compress_candidate(task, config, EvalResult(config.to_json(), config.digest()), {}, None).model
    with torch.no_grad():
        model.head.weight.add_(1.0)
    kept.keep(config, model)
    _run_with_best(tmp_path / "run", export_dir, config, "a" * 64)
    source = task_export.resolve_source(run=tmp_path / "run")
    assert torch.equal(source.model.head.weight, model.head.weight)
    _run_with_best(tmp_path / "cold", export_dir, config, None)  # a cold best is compressed again, as before
    assert not torch.equal(task_export.resolve_source(run=tmp_path / "cold").model.head.weight, model.head.weight)
    for path in kept.folder.iterdir():
        path.unlink()
    with pytest.raises(task_export.SourceError, match="no longer in .*--config"):
        task_export.resolve_source(run=tmp_path / "run")



@pytest.mark.parametrize("warm", [True, False])
def test_the_run_option_reaches_every_evaluator_the_run_builds(tmp_path, monkeypatch, warm):
    """``--no-warm-start`` (``SearchOptions.warm_start``) turns warm starts off in the run's own evaluator and in
    every pool worker's, so a run can be made independent of what earlier runs kept."""
    options = SearchOptions(warm_start=warm, host_energy=False)
    assert hardware_evaluator(_Task(), options, tmp_path).warm_start is warm
    monkeypatch.setattr(pool, "load_task", lambda opts: _Task())
    assert HardwareWorkers(options.to_dict(), str(tmp_path))(0, options.device).warm_start is warm
