"""Fine-tuning keeps the weights that score best on held-out data, never worse than where it started."""

from __future__ import annotations

import numpy as np
import torch

from edgeprune.host.compress import CompressionConfig, compress
from edgeprune.host.models import MLP
from edgeprune.host.tasks.base import Quality


class _DriftingTask:
    """Training labels follow sign(x0); validation labels are the opposite (a labelling change)."""

    kind = "classifier"
    higher_is_better = True

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(512, 4)).astype(np.float32)
        self.y = (self.x[:, 0] > 0).astype(np.int64)
        self.xv = rng.normal(size=(256, 4)).astype(np.float32)
        self.yv = (self.xv[:, 0] <= 0).astype(np.int64)
        torch.manual_seed(0)
        self.model = MLP([4, 16, 2])
        self.calls = 0

    def baseline(self) -> MLP:
        return self.model

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x, self.y

    expected_split = "val"

    def evaluate_model(self, model: torch.nn.Module, split: str = "test") -> Quality:
        assert split == self.expected_split, f"fine-tuning read {split!r}"
        self.calls += 1
        with torch.no_grad():
            pred = model(torch.from_numpy(self.xv)).argmax(1).numpy()
        return Quality(float((pred == self.yv).mean()), None, "accuracy", {})


def test_finetuning_never_ends_below_its_starting_validation_score() -> None:
    task = _DriftingTask()
    cfg = CompressionConfig.identity(["fc0", "fc1"]).with_globals(finetune_steps=200)
    out = compress(task, cfg)
    ft = out.report["finetune"]
    scores = dict(ft["val_scores"])
    last = max(scores)
    assert 0 in scores and task.calls == len(scores)
    # training on sign(x0) drives validation (the opposite labels) down, so training stops early ...
    assert scores[last] < scores[0] and last < 200 and ft["steps"] == last
    # ... so the kept weights are the best checkpoint, and the model really carries them
    assert scores[ft["best_step"]] == max(scores.values())
    assert task.evaluate_model(out.model, "val").value == max(scores.values())


class _TunedTask(_DriftingTask):
    """A task with a ``tune`` block: checkpoints must be picked on it, never on validation."""

    expected_split = "tune"  # validation must judge candidates, not make them

    def tune_indices(self) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(400), np.arange(400, 512)


def test_checkpoints_are_picked_on_the_tune_block_when_the_task_has_one() -> None:
    task = _TunedTask()
    out = compress(task, CompressionConfig.identity(["fc0", "fc1"]).with_globals(finetune_steps=50))
    assert task.calls > 1 and out.report["finetune"]["val_scores"]
