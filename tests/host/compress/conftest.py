"""Small models and synthetic data for the compression tests (one torch thread: the cores are shared)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeprune.host.models import MLP, StackedGRU

torch.set_num_threads(1)


@pytest.fixture
def gru() -> StackedGRU:
    torch.manual_seed(0)
    return StackedGRU(input_size=3, hidden_sizes=[8, 6], num_outputs=4, seq_len=5).eval()


@pytest.fixture
def mlp() -> MLP:
    torch.manual_seed(0)
    return MLP([4, 16, 12, 2]).eval()


@pytest.fixture
def seq_data() -> tuple[np.ndarray, np.ndarray]:
    """A learnable 4-class sequence task: the class is which feature has the largest sum over time."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 5, 3)).astype(np.float32)
    s = x.sum(axis=1)
    y = np.where(s.max(axis=1) > 1.0, s.argmax(axis=1), 3).astype(np.int64)
    return x, y
