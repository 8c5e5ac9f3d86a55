from __future__ import annotations

import pytest


class FakeTask:
    """Just enough of ``Task`` for the search machinery: names, metric, hash (no data, no model)."""

    name = "fake-gru"
    kind = "classifier"
    metric = "accuracy"
    higher_is_better = True

    def __init__(self, names=("gru0", "gru1", "head")):
        self.layer_names = tuple(names)

    def content_hash(self) -> str:
        return "task-hash-1"


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch, tmp_path):
    import torch

    torch.set_num_threads(1)
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def fake_task():
    return FakeTask()
