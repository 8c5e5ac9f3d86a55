"""Fine-tuning keeps the weights that score best on held-out data, never worse than where it started."""

from __future__ import annotations

import numpy as np
import torch

from edgeprune.host.compress import CompressionConfig
from edgeprune.host.compress.compressor import compress
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

    def evaluate_model(self, model: torch.nn.Module, split: str = "test") -> Quality:
        assert split == "val"
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

