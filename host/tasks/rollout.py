"""Seeded, batched episode rollouts of any ``predict(obs_batch) → q_values`` callable.

Episodes run in lock-step over several environment copies so ``predict`` sees one batch per time
step (fast for a torch model, and the same call shape an int8 interpreter gets). Episode ``i`` of a
rollout is reset with seed ``seeds[i]``; the greedy action is ``argmax`` over the returned values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeprune.host.tasks.base import Predict, TaskError

LOCKSTEP = 50


@dataclass
class Rollouts:
    """Results of a set of episodes.

    Parameters
    ----------
    returns:
        Undiscounted return of each episode, in seed order.
    lengths:
        Steps of each episode.
    states:
        Every observation acted on, ``[S, obs_dim]`` float32 (empty unless requested).
    """

    returns: np.ndarray
    lengths: np.ndarray
    states: np.ndarray


def make_env(env_id: str) -> Any:
    """``gymnasium.make(env_id)`` checked to have a Box observation and a Discrete action space."""
    import gymnasium as gym

    try:
        env = gym.make(env_id)
    except gym.error.Error as exc:
        raise TaskError(f"cannot make gymnasium env {env_id!r} ({exc}); expected a registered env id") from exc
    check_spaces(env_id, env.observation_space, env.action_space)
    return env


def check_spaces(env_id: str, obs_space: Any, act_space: Any) -> None:
    from gymnasium import spaces

    if not isinstance(act_space, spaces.Discrete):
        env_close = type(act_space).__name__
        raise TaskError(f"{env_id}: DQN needs a Discrete action space, got {env_close}; pick a discrete-action env")
    if not isinstance(obs_space, spaces.Box):
        raise TaskError(f"{env_id}: expected a Box observation space, got {type(obs_space).__name__}")


def run_episodes(
    env_id: str,
    predict: Predict,
    seeds: list[int],
    *,
    epsilon: float = 0.0,
    record_states: bool = False,
    rng_seed: int = 0,
    max_steps: int = 10_000,
) -> Rollouts:
    """Play one episode per seed with the greedy policy of ``predict`` (ε-greedy if ``epsilon`` > 0).

    ``max_steps`` cuts episodes of envs registered without a time limit.
    """
    rng = np.random.default_rng(rng_seed)
    returns = np.zeros(len(seeds))
    lengths = np.zeros(len(seeds), dtype=np.int64)
    states: list[np.ndarray] = []
    for start in range(0, len(seeds), LOCKSTEP):
        chunk = list(range(start, min(start + LOCKSTEP, len(seeds))))
        envs = [make_env(env_id) for _ in chunk]
        try:
            n_actions = int(envs[0].action_space.n)
            obs = {i: np.asarray(e.reset(seed=seeds[i])[0], dtype=np.float32).ravel() for i, e in zip(chunk, envs, strict=True)}
            env_of = dict(zip(chunk, envs, strict=True))
            while obs:
                ids = list(obs)
                batch = np.stack([obs[i] for i in ids])
                q = np.asarray(predict(batch))
                if q.shape != (len(ids), n_actions):
                    raise TaskError(f"predict must return [B, {n_actions}] Q-values, got {q.shape}")
                actions = np.argmax(q, axis=1)
                if epsilon > 0:
                    explore = rng.random(len(ids)) < epsilon
                    actions = np.where(explore, rng.integers(0, n_actions, len(ids)), actions)
                if record_states:
                    states.append(batch)
                for i, a in zip(ids, actions, strict=True):
                    o, r, terminated, truncated, _ = env_of[i].step(int(a))
                    returns[i] += float(r)
                    lengths[i] += 1
                    if terminated or truncated or lengths[i] >= max_steps:
                        del obs[i]
                    else:
                        obs[i] = np.asarray(o, dtype=np.float32).ravel()
        finally:
            for e in envs:
                e.close()
    stacked = np.concatenate(states).astype(np.float32) if states else np.zeros((0, 0), dtype=np.float32)
    return Rollouts(returns, lengths, stacked)
