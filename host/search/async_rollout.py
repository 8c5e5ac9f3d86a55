"""PPO whose environments do not wait for each other: each worker's chain of candidates moves on as soon as its
own candidate is measured.

SB3 collects a rollout in lock step: all ``n_envs`` actions of a step are sampled together and the next step
waits for every candidate of this one. With one environment per worker, a worker that finishes its candidate
early then idles until the slowest one is done; in the demo's search (weather GRU, 2 workers) that was 62 of 450
worker-seconds (BENCHMARKS.md, issue 28). Within a rollout the policy does not change, and an environment's next
observation depends only on its own outcomes, so each environment can step on its own: ``AsyncRolloutPPO``
samples an environment's action when its previous candidate comes back, submits it at once, and hands SB3 the
same rollout buffer (``n_steps`` transitions per environment, in step order) that lock step would have filled.

Determinism: the order in which candidates come back depends on timing, so an action is not sampled from the
shared torch generator in arrival order but from its own, seeded by one draw of the run's generator per rollout
plus the environment and step numbers — the same seed proposes the same candidates however the workers are timed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.utils import obs_as_tensor

from edgeprune.host.search.session import BudgetExhausted
from edgeprune.host.search.vec_env import PoolVecEnv

#: Spreads (rollout seed, environment, step) over torch's seed range.
_ENV_STRIDE, _STEP_STRIDE = 1_000_003, 1_009


@dataclass
class _Step:
    """One environment's transition, as SB3's rollout buffer takes it (``value``/``log_prob``: policy tensors)."""

    obs: np.ndarray
    action: np.ndarray
    reward: float
    episode_start: bool
    value: torch.Tensor
    log_prob: torch.Tensor


class AsyncRolloutPPO(PPO):
    """SB3 ``PPO`` that steps each ``PoolVecEnv`` environment as soon as its own candidate is measured.

    Takes ``PPO``'s parameters. With any other environment (one worker: a plain ``CompressEnv``) it is ``PPO``.
    """

    def collect_rollouts(self, env: Any, callback: Any, rollout_buffer: Any, n_rollout_steps: int) -> bool:
        if not isinstance(env, PoolVecEnv):
            return bool(super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps))
        return _Rollout(self, env, callback, n_rollout_steps).collect(rollout_buffer)


class _Rollout:
    """One rollout of ``AsyncRolloutPPO`` over a ``PoolVecEnv``."""

    def __init__(self, model: AsyncRolloutPPO, env: PoolVecEnv, callback: Any, n_steps: int) -> None:
        self.model, self.env, self.callback, self.n_steps = model, env, callback, n_steps
        self.par = env.parallel
        self.session = env.envs[0].session
        n = env.num_envs
        assert model._last_obs is not None and model._last_episode_starts is not None
        last_obs = np.asarray(model._last_obs)  # a Box observation: one array, a row per environment
        self.obs = [last_obs[i] for i in range(n)]
        self.starts = [bool(model._last_episode_starts[i]) for i in range(n)]
        self.steps: list[list[_Step]] = [[] for _ in range(n)]
        self.out: dict[int, tuple[np.ndarray, torch.Tensor, torch.Tensor]] = {}  # env -> its action in flight
        self.blocked: dict[int, tuple[np.ndarray, torch.Tensor, torch.Tensor, Any, dict[str, Any]]] = {}
        self.ready: deque[tuple[int, Any]] = deque()
        self.stopped = False
        # One draw of the run's generator per rollout, as lock step draws once per step: reproducible from the seed.
        self.seed = int(torch.randint(0, 2**31 - 1, (1,)).item())

    def collect(self, buffer: Any) -> bool:
        model = self.model
        model.policy.set_training_mode(False)
        buffer.reset()
        self.callback.on_rollout_start()
        for i in range(self.env.num_envs):
            self._launch(i)
        while True:
            while self.ready:
                self._observe(*self.ready.popleft())
            self._retry_blocked()
            if self.ready:
                continue
            if not self.out:
                break
            for tag, outcome in self.par.wait():
                self.ready.append((int(tag), outcome))
        if self.blocked and not self.stopped:
            raise BudgetExhausted("device-evaluation budget used up")
        if self.stopped:
            return False
        self._fill(buffer)
        self.callback.update_locals(locals())
        self.callback.on_rollout_end()
        return True

    # -- one environment ------------------------------------------------------------------------------
    def _act(self, i: int) -> tuple[np.ndarray, torch.Tensor, torch.Tensor, Any]:
        """Environment ``i``'s next action from its own generator: (action, value, log-prob, action sent)."""
        model = self.model
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * _ENV_STRIDE + i * _STEP_STRIDE + len(self.steps[i]))
            with torch.no_grad():
                action, value, log_prob = model.policy(obs_as_tensor(self.obs[i][None], model.device))
        action_np = action.cpu().numpy()
        sent: Any = action_np
        if isinstance(model.action_space, spaces.Box):
            sent = np.clip(action_np, model.action_space.low, model.action_space.high)
        return action_np, value, log_prob, sent[0]

    def _launch(self, i: int) -> None:
        action, value, log_prob, sent = self._act(i)
        config, proposal = self.env.envs[i].propose(sent)
        proposal["env"] = i
        self._submit(i, action, value, log_prob, config, proposal)

    def _submit(self, i: int, action: np.ndarray, value: torch.Tensor, log_prob: torch.Tensor, config: Any,
                proposal: dict[str, Any]) -> None:
        if not self.par.can_submit() and self.session.lookup(config) is None:
            # No budget unit free for it now: it waits for what is in flight (a host-screened one frees its unit).
            self.blocked[i] = (action, value, log_prob, config, proposal)
            return
        self.out[i] = (action, value, log_prob)
        outcome = self.par.submit(config, proposal, tag=i)
        if outcome is not None:
            self.ready.append((i, outcome))

    def _retry_blocked(self) -> None:
        for i in sorted(self.blocked):
            if self.stopped or self.session.exhausted():
                return
            if self.par.can_submit():
                self._submit(i, *self.blocked.pop(i))

    def _observe(self, i: int, outcome: Any) -> None:
        model, env = self.model, self.env.envs[i]
        action, value, log_prob = self.out.pop(i)
        obs, reward, terminated, truncated, info = env.observe(outcome)
        done = terminated or truncated
        if done:
            info["terminal_observation"] = obs
            info["TimeLimit.truncated"] = truncated and not terminated
            if info["TimeLimit.truncated"]:  # bootstrapped as SB3 does (its issue 633)
                with torch.no_grad():
                    terminal = model.policy.obs_to_tensor(obs)[0]
                    reward += model.gamma * float(model.policy.predict_values(terminal)[0])  # type: ignore[arg-type]
            obs = env.reset()[0]
        if isinstance(model.action_space, spaces.Discrete):
            action = action.reshape(-1, 1)
        self.steps[i].append(_Step(self.obs[i], action, float(reward), self.starts[i], value, log_prob))
        self.obs[i], self.starts[i] = np.asarray(obs), bool(done)
        model.num_timesteps += 1
        self.callback.update_locals({"infos": [info], "dones": np.array([done])})
        if not self.callback.on_step():
            self.stopped = True
        model._update_info_buffer([info], np.array([done]))
        if len(self.steps[i]) < self.n_steps and not self.stopped:
            self._launch(i)

    # -- the buffer -------------------------------------------------------------------------------------
    def _fill(self, buffer: Any) -> None:
        """SB3's buffer, filled as lock step fills it: step by step, every environment's transition of that step."""
        model = self.model
        for t in range(self.n_steps):
            row = [self.steps[i][t] for i in range(self.env.num_envs)]
            buffer.add(np.stack([s.obs for s in row]), np.concatenate([s.action for s in row]),
                       np.array([s.reward for s in row], dtype=np.float32), np.array([s.episode_start for s in row]),
                       torch.cat([s.value for s in row]), torch.cat([s.log_prob for s in row]))
        model._last_obs = np.stack(self.obs)  # type: ignore[assignment]
        model._last_episode_starts = np.array(self.starts)
        with torch.no_grad():
            last = model.policy.predict_values(obs_as_tensor(model._last_obs, model.device))  # type: ignore[arg-type]
        buffer.compute_returns_and_advantage(last_values=last, dones=np.array(self.starts))
