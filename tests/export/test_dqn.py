"""DQN Q-network export: greedy actions of the int8 TFLM policy agree with the float policy."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from export_helpers import policy_mlp

from edgeprune.bench.tflite_info import read_model
from edgeprune.export import export_model, predict_fn
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
    """Synthetic policy: it balances by switching action every few steps, so many visited states sit
    within int8 noise of the decision boundary (gap < 1 % of the Q range); ~97.5 % agreement is what
    per-tensor int8 allows there. The 99 % bound is checked on the real cartpole-dqn baseline below."""
    model = policy_mlp()

    def float_policy(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    calib, _ = rollouts(float_policy, 3, seed=0)
    result = export_model(model, calib, tmp_path / "dqn", name="cartpole-test")
    man = result.manifest
    assert man["sequence"] is None and man["kind"] == "mlp" and man["output_centered"] is True
    assert set(read_model(result.read_tflite()).ops) <= ALLOWED_OPS
    assert man["weight_bytes"] == 4 * 64 + 64 * 64 + 64 * 2

    states, float_returns = rollouts(float_policy, 4, seed=100)
    int8 = predict_fn(result.read_tflite(), man)
    agreement = float(np.mean(int8(states).argmax(1) == float_policy(states).argmax(1)))
    _, int8_returns = rollouts(int8, 4, seed=100)
    log.warning("DQN agreement %.4f on %d states; mean return float %.1f int8 %.1f",
                agreement, len(states), np.mean(float_returns), np.mean(int8_returns))
    assert len(states) >= 200, "the float policy should balance the pole for a while"
    assert agreement >= 0.97
    assert np.mean(int8_returns) >= 0.9 * np.mean(float_returns)


@pytest.fixture(scope="module")
def cartpole(tmp_path_factory):
    """The task's trained DQN exported once: (task, float model, export result, TFLM predictor)."""
    from edgeprune.host.tasks import get_task

    task = get_task("cartpole-dqn")
    model = task.baseline().eval()
    out = tmp_path_factory.mktemp("cartpole") / "export"
    result = export_model(model, task.calibration_inputs(512), out, name="cartpole-dqn")
    return task, model, result, predict_fn(result.read_tflite(), result.manifest)


def _agreement(cartpole) -> float:
    task, model, _, predict = cartpole
    states = task.agreement_inputs(2000)
    with torch.no_grad():
        ref = model(torch.from_numpy(states)).numpy()
    return float(np.mean(predict(states).argmax(1) == ref.argmax(1)))


@pytest.mark.slow
def test_cartpole_dqn_int8_policy_keeps_its_return(cartpole) -> None:
    task, model, result, predict = cartpole
    assert result.manifest["output_centered"] is True
    float_q, int8_q = task.evaluate_model(model), task.evaluate(predict)
    log.warning("cartpole-dqn agreement %.4f; return float %.1f int8 %.1f",
                _agreement(cartpole), float_q.value, int8_q.value)
    # Measured: float 495.4, int8 420.1 with the 24k-step policy; float 500.0, int8 338.6 with the
    # 46k-step policy trained after the baseline key gained its code hash (uncentred int8: 10.9).
    # 0.6 guards the centring; the lost 15-32 % is the known plain-PTQ gap (policy-dependent) that the
    # distilled export below closes.
    assert int8_q.value >= 0.6 * float_q.value


@pytest.fixture(scope="module")
def distilled(cartpole, tmp_path_factory):
    """The baseline distilled into an int8-aware student and exported with ``fine_input`` (policy_distill)."""
    from edgeprune.export.policy_distill import export_distilled_policy

    task = cartpole[0]
    result, _ = export_distilled_policy(task, tmp_path_factory.mktemp("distilled") / "export")
    return result, predict_fn(result.read_tflite(), result.manifest)


@pytest.mark.slow
def test_cartpole_dqn_greedy_agreement_reaches_99_percent(cartpole, distilled) -> None:
    """Plain PTQ keeps ~76 % of the greedy actions (test above); the explicit distilled export must keep
    ≥ 99 % of the **unmodified float baseline's** actions on the test split, run in TFLM."""
    task, model, _, _ = cartpole
    result, predict = distilled
    man = result.manifest
    assert man["input_norm"]["fine"] == man["distilled"]["fine_input"] > 0 and man["output_centered"] is True
    assert set(read_model(result.read_tflite()).ops) <= ALLOWED_OPS
    assert man["weight_bytes"] == 2 * 4 * 64 + 64 * 64 + 64 * 2  # same sizes; layer 0 takes the input pair
    agreement = _agreement((task, model, result, predict))
    float_q, int8_q = task.evaluate_model(model), task.evaluate(predict)
    log.warning("cartpole-dqn distilled int8: agreement %.4f; return float %.1f int8 %.1f",
                agreement, float_q.value, int8_q.value)
    assert agreement >= 0.99
    assert int8_q.value >= 0.95 * float_q.value
