"""``PoolVecEnv``: several ``CompressEnv`` steps evaluated at once by the parallel workers, for SB3's PPO.

SB3 collects a rollout from ``n_envs`` environments in lock step; here each environment's step is one
candidate, and the candidates of a step are handed to the workers together (``ParallelEvaluations``), so
``--workers 2`` measures two candidates at a time instead of one. The observations, rewards and episode ends
are each environment's own, exactly as ``CompressEnv.step`` would give them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from edgeprune.host.search.env import CompressEnv
from edgeprune.host.search.session import BudgetExhausted


class PoolVecEnv(VecEnv):
    """``CompressEnv``s stepped together through the session's parallel evaluations.

    Parameters
    ----------
    envs:
        One ``CompressEnv`` per worker (same session, task, mode, horizon and space).
    parallel:
        The run's ``ParallelEvaluations`` (``submit`` / ``wait``).
    """

    def __init__(self, envs: Sequence[CompressEnv], parallel: Any) -> None:
        self.envs = list(envs)
        self.parallel = parallel
        self._actions: np.ndarray | None = None
        super().__init__(len(self.envs), self.envs[0].observation_space, self.envs[0].action_space)

    def reset(self) -> np.ndarray:
        obs = []
        for i, env in enumerate(self.envs):
            seed = self._seeds[i] if i < len(self._seeds) else None
            obs.append(env.reset(seed=seed)[0])
        self._reset_seeds()
        return np.stack(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        assert self._actions is not None, "step_async first"
        par, session = self.parallel, self.envs[0].session
        outcomes: dict[int, Any] = {}
        waiting: set[int] = set()
        starved = False
        for i, env in enumerate(self.envs):
            config, proposal = env.propose(self._actions[i])
            proposal["env"] = i
            if not par.can_submit() and session.lookup(config) is None:
                starved = True  # no budget left for it: what is out still gets recorded, then the run ends
                continue
            outcome = par.submit(config, proposal, tag=i)
            if outcome is None:
                waiting.add(i)
            else:
                outcomes[i] = outcome
        while waiting:
            for tag, outcome in par.wait():
                outcomes[tag] = outcome
                waiting.discard(tag)
        if starved:
            raise BudgetExhausted("device-evaluation budget used up")
        obs, rewards, dones, infos = [], [], [], []
        for i, env in enumerate(self.envs):
            o, r, terminated, truncated, info = env.observe(outcomes[i])
            done = terminated or truncated
            if done:
                info["terminal_observation"] = o
                info["TimeLimit.truncated"] = truncated and not terminated
                o = env.reset()[0]
            obs.append(o)
            rewards.append(r)
            dones.append(done)
            infos.append(info)
        return np.stack(obs), np.asarray(rewards, dtype=np.float32), np.asarray(dones), infos

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.envs[i], attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        for i in self._get_indices(indices):
            setattr(self.envs[i], attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        return [getattr(self.envs[i], method_name)(*method_args, **method_kwargs) for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
