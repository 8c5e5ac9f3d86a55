"""The tune block: the last training windows, held out of fine-tuning to pick its checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.host.tasks import get_task
from edgeprune.host.tasks.base import TaskError


def test_tune_block_is_the_end_of_train_and_outside_what_fine_tuning_learns() -> None:
    task = get_task("weather-gru", ensure_baseline=False)
    fit, tune = task.tune_indices()
    train = task.data.splits["train"]
    assert len(fit) + len(tune) == len(train) and not set(fit) & set(tune)
    assert max(fit) < min(tune) < min(task.data.splits["val"])  # chronological: just before validation
    assert len(tune) == round(0.15 * len(train))
    X, _ = task.train_arrays()
    assert len(X) == len(fit) and np.array_equal(X, task.data.X[fit])
    q = task.evaluate(lambda b: np.tile(np.eye(task.num_outputs)[0], (len(b), 1)), split="tune")
    assert q.details["n"] == len(tune) and len(q.samples) == len(tune)
    with pytest.raises(TaskError):
        task.evaluate(lambda b: b, split="holdout")
