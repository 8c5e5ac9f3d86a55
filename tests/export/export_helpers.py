"""Small canonical models and synthetic data shared by the export tests."""

from __future__ import annotations

import shutil
import subprocess
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


DUMP_MAIN = r"""
#include <stdint.h>
#include <stdio.h>
#include "model_data.h"
int main(void) {
    if (((uintptr_t)ep_model_data) % 16u != 0u) { return 3; }
    fwrite(ep_model_data, 1, ep_model_data_len, stdout);
    return 0;
}
"""


def compile_and_dump(c_text: str, h_text: str, work: Path) -> bytes:
    """Build model_data.c with a program that writes the array to stdout; return what it wrote."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.fail("no host C compiler (gcc) on PATH; install build-essential")
    (work / "model_data.c").write_text(c_text)
    (work / "model_data.h").write_text(h_text)
    (work / "main.c").write_text(DUMP_MAIN)
    exe = work / "dump"
    subprocess.run(
        [gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-I", str(work),
         str(work / "main.c"), str(work / "model_data.c"), "-o", str(exe)],
        check=True, timeout=120, capture_output=True,
    )
    proc = subprocess.run([str(exe)], check=True, timeout=30, capture_output=True)
    return proc.stdout
