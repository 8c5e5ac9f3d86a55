from __future__ import annotations

import pytest
from doubles.fake_task import FakeTask


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch, tmp_path):
    import torch

    torch.set_num_threads(1)
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def fake_task():
    return FakeTask()
