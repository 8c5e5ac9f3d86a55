"""DQN Q-network export: greedy actions of the int8 TFLM policy agree with the float policy."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from export_helpers import policy_mlp

from edgeprune.export import export_model, predict_fn
from edgeprune.export.tflite_info import read_model
from edgeprune.export.verify import ALLOWED_OPS

pytestmark = pytest.mark.tf
log = logging.getLogger(__name__)


def rollouts(policy, episodes: int, seed: int) -> tuple[np.ndarray, list[float]]:
    """Greedy CartPole episodes; returns every visited state and each episode's return."""
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    states, returns = [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            states.append(obs)
            action = int(policy(obs[None].astype(np.float32))[0].argmax())
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return np.asarray(states, dtype=np.float32), returns


def test_dqn_int8_greedy_actions_agree(tmp_path) -> None:
    model = policy_mlp()

    def float_policy(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    calib, _ = rollouts(float_policy, 3, seed=0)
    result = export_model(model, calib, tmp_path / "dqn", name="cartpole-test")
    man = result.manifest
    assert man["sequence"] is None and man["kind"] == "mlp"
    assert set(read_model(result.read_tflite()).ops) <= ALLOWED_OPS
    assert man["weight_bytes"] == 4 * 64 + 64 * 64 + 64 * 2

    states, float_returns = rollouts(float_policy, 4, seed=100)
    int8 = predict_fn(result.read_tflite(), man)
    agreement = float(np.mean(int8(states).argmax(1) == float_policy(states).argmax(1)))
    _, int8_returns = rollouts(int8, 4, seed=100)
    log.warning("DQN agreement %.4f on %d states; mean return float %.1f int8 %.1f",
                agreement, len(states), np.mean(float_returns), np.mean(int8_returns))
    assert len(states) >= 200, "the float policy should balance the pole for a while"
    assert agreement >= 0.99
