"""DQN policy tasks: seeded evaluation of any predict callable, small-budget training, env checks."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.host.tasks import TaskError, get_task
from edgeprune.host.tasks.policy import SPLIT_SEED_BASE, DQNTask, DQNTrainConfig
from edgeprune.host.tasks.rollout import run_episodes

SMALL = DQNTrainConfig(total_timesteps=6_000, eval_every=1_500, eval_episodes=5, learning_starts=500)


def random_predict(n_actions: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return lambda obs: rng.random((len(obs), n_actions))


def test_evaluation_is_seeded_and_split_dependent() -> None:
    task = DQNTask("CartPole-v1", eval_episodes=10)
    # A fixed linear policy (push toward the pole's lean) is deterministic given the episode seeds.
    w = np.array([[0.0, 0.0], [0.0, 0.0], [-1.0, 1.0], [-0.5, 0.5]], dtype=np.float32)

    def lean(obs: np.ndarray) -> np.ndarray:
        return obs @ w

    a, b = task.evaluate(lean, "test"), task.evaluate(lean, "test")
    assert a.value == b.value and a.std == b.std and a.metric == "return"
    assert a.details["episodes"] == 10 and a.details["seed_base"] == SPLIT_SEED_BASE["test"]
    val = task.evaluate(lean, "val")
    assert val.details["seed_base"] != a.details["seed_base"]
    rnd = task.evaluate(random_predict(2), "test")
    assert rnd.value < 40 < a.value  # the heuristic balances far longer than chance (~22)


def test_predict_must_return_one_row_of_q_values_per_state() -> None:
    task = DQNTask("CartPole-v1", eval_episodes=2)
    with pytest.raises(TaskError, match=r"\[B, 2\]"):
        task.evaluate(lambda obs: np.zeros((len(obs), 3)))
    with pytest.raises(TaskError, match="split"):
        task.evaluate(random_predict(2), "holdout")


def test_rollouts_record_states_and_honour_epsilon() -> None:
    greedy_left = lambda obs: np.tile([1.0, 0.0], (len(obs), 1))  # noqa: E731
    ro = run_episodes("CartPole-v1", greedy_left, [1, 2, 3], record_states=True)
    assert ro.states.shape == (int(ro.lengths.sum()), 4) and ro.states.dtype == np.float32
    assert np.array_equal(ro.returns, ro.lengths.astype(float))  # CartPole pays 1 per step
    noisy = run_episodes("CartPole-v1", greedy_left, [1, 2, 3], epsilon=0.5, rng_seed=0)
    assert noisy.lengths.sum() > ro.lengths.sum()  # random pushes right keep the pole up longer


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "MountainCarContinuous-v0"])
def test_continuous_action_env_is_refused(env_id: str) -> None:
    with pytest.raises(TaskError, match="Discrete action space"):
        get_task(f"dqn:{env_id}", ensure_baseline=False)


def test_unknown_env_and_task_names_are_refused() -> None:
    with pytest.raises(TaskError, match="registered env id"):
        get_task("dqn:NoSuchEnv-v9", ensure_baseline=False)
    with pytest.raises(TaskError, match="unknown task"):
        get_task("weather-transformer", ensure_baseline=False)


def test_other_discrete_envs_share_the_code_path() -> None:
    task = get_task("dqn:Acrobot-v1", ensure_baseline=False)
    assert task.name == "dqn:Acrobot-v1" and task.input_shape == (6,) and task.num_outputs == 3
    assert task.content_hash() != get_task("cartpole-dqn", ensure_baseline=False).content_hash()


@pytest.mark.slow
def test_small_budget_cartpole_dqn_far_above_random(cache_root) -> None:
    from edgeprune.host.models import MLP

    task = get_task("cartpole-dqn", train_config=SMALL)
    model = task.baseline()
    assert isinstance(model, MLP) and model.sizes == [4, 64, 64, 2]
    task.eval_episodes = 20
    trained = task.evaluate_model(model)
    rnd = task.evaluate(random_predict(2))
    assert rnd.value < 30
    assert trained.value > 3 * rnd.value, (trained, rnd)
    # Distillation arrays: visited states and the teacher's Q-values for exactly those states.
    from edgeprune.host.tasks.base import torch_predict

    teacher = torch_predict(task.baseline())
    states, q = task.train_arrays()
    assert states.shape == (20_000, 4) and q.shape == (20_000, 2)
    np.testing.assert_allclose(q[:50], teacher(states[:50]), rtol=1e-5, atol=1e-5)
    assert task.calibration_inputs(16).shape == (16, 4) and task.agreement_inputs(8).shape == (8, 4)
    assert (task.cache_path / "policy.zip").is_file()
