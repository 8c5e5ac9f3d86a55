"""Fixtures for the export tests: small canonical models, synthetic calibration data, shared exports.

Exports are module-scoped where several tests read the same result: each one runs the real
ONNX → onnx2tf → TFLiteConverter → TFLM chain, which takes seconds on the shared cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgeprune.host.models import MLP, LowRankLinear, StackedGRU

torch.set_num_threads(1)

SEQ = 12
FEATURES = 4


def synthetic_windows(n: int, seed: int = 0) -> np.ndarray:
    """Smooth, weather-like sequences: a random walk per feature plus noise, ``[n, SEQ, FEATURES]``."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(scale=0.3, size=(n, SEQ, FEATURES)), axis=1)
    return (walk + rng.normal(scale=0.1, size=walk.shape)).astype(np.float32)


def trained_gru(hidden: list[int], seed: int = 0, steps: int = 60) -> StackedGRU:
    """A GRU fitted for a few steps to classify which feature ends highest (so its outputs mean something)."""
    torch.manual_seed(seed)
    model = StackedGRU(FEATURES, hidden, 3, SEQ)
    x = synthetic_windows(256, seed=seed + 1)
    y = torch.from_numpy(x[:, -1, :3].argmax(axis=1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt = torch.from_numpy(x)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), y)
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def gru_model() -> StackedGRU:
    return trained_gru([32, 24])


@pytest.fixture(scope="module")
def calibration() -> np.ndarray:
    return synthetic_windows(64, seed=5)


@pytest.fixture(scope="module")
def gru_export(gru_model: StackedGRU, calibration: np.ndarray, tmp_path_factory: pytest.TempPathFactory):
    from edgeprune.export import export_model

    out = tmp_path_factory.mktemp("gru") / "export"
    return export_model(gru_model, calibration, out, name="gru-test")


def compressed_gru() -> StackedGRU:
    """What compression produces: unequal hidden sizes, a low-rank projection, zeroed (pruned) weights."""
    model = trained_gru([20, 12], seed=3, steps=30)
    layer0 = model.layers[0]
    with torch.no_grad():
        dense = layer0.h_proj[1]
        low = LowRankLinear(dense.in_features, dense.out_features, rank=5)
        u, s, vh = torch.linalg.svd(dense.weight)
        low.first.weight.copy_(vh[:5] * s[:5, None])
        low.second.weight.copy_(u[:, :5])
        low.second.bias.copy_(dense.bias)
        layer0.h_proj[1] = low
        w = layer0.x_proj[0].weight
        w[w.abs() < w.abs().median()] = 0.0
        model.layers[1].h_proj[2].weight[3:6] = 0.0  # whole rows pruned: per-channel scale of an all-zero row
    return model.eval()


def policy_mlp() -> MLP:
    """A CartPole Q-network fitted in a second to a hand-written controller's preferences.

    Q(s, right) − Q(s, left) follows ``θ + 0.5·ω + 0.1·ẋ``, a controller that balances the pole, so
    greedy actions form a real policy with clear margins in most states and close calls in a few.
    """
    torch.manual_seed(0)
    model = MLP([4, 64, 64, 2])
    rng = np.random.default_rng(0)
    s = rng.normal(scale=[1.0, 1.0, 0.1, 1.0], size=(4096, 4)).astype(np.float32)
    pref = s[:, 2] * 10 + 0.5 * s[:, 3] + 0.1 * s[:, 1]
    q = np.stack([1.0 - pref, 1.0 + pref], axis=1).astype(np.float32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xs, qs = torch.from_numpy(s), torch.from_numpy(q)
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(xs), qs)
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture
def out_root(tmp_path: Path) -> Path:
    return tmp_path
