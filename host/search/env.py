"""``edgeprune/Compress-v0``: compression as a Gymnasium environment measured on the device."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from edgeprune.host.search.objective import OBS_FEATURES
from edgeprune.host.search.session import SearchSession
from edgeprune.host.search.space import CONTINUOUS_DIM, N_DISCRETE_ACTIONS, ConfigSpace

ENV_ID = "edgeprune/Compress-v0"


class CompressEnv(gym.Env[np.ndarray, Any]):
    """Each step compresses the model with one config, measures it on the device, and rewards it.

    **Action.** ``mode="continuous"``: a ``Box(-1, 1, (4,))`` vector (the study's ``[a0, a1, a2, a3]``:
    first-layer prune, deeper-layer prune, readout sparsity, quantise iff ≥ 0.5) mapped affinely to
    ``[0, 1]`` and turned into a config by ``CompressionConfig.from_continuous``. The symmetric box
    keeps a fresh Gaussian policy centred inside the range instead of clipping half its samples to 0.
    ``mode="discrete"``: ``Discrete(16)``, one of the 16 study actions (``from_discrete``).

    **Observation.** ``Box`` of ``len(OBS_FEATURES) + 1`` float32 values describing the last
    measured candidate relative to the baseline measured on the same target: quality / baseline,
    quality drop / ``max_acc_drop``, parameter, MAC, flash and RAM ratios, measured latency ratio
    (instructions or cycles), energy ratio, feasibility flag (1 or 0), and the fraction of the
    episode elapsed. A ratio below 1 is a reduction. ``reset`` returns the baseline's own
    observation (all ratios 1, drop 0).

    **Reward.** For a feasible candidate
    ``−drop/max_acc_drop + 0.4·(1−lat/lat₀) + 0.2·(1−E/E₀) + 0.2·(1−flash/flash₀) + 0.2·(1−RAM/RAM₀)``
    (weights: ``RewardWeights``). A candidate breaking a hard constraint (quality drop, ``flash_kb``,
    ``ram_kb``) or failing to build or run gets ``−1 − overshoot`` (≤ −1) and ``info["reason"]`` says
    why; the reason is also stored with the evaluation.

    **Episode end.** ``terminated`` after ``horizon`` steps (each step is one candidate; a new
    episode starts again from the baseline). The search stops the agent when the session's
    device-evaluation budget is used up; stepping past it raises ``BudgetExhausted``.

    Parameters
    ----------
    session:
        The run's ``SearchSession`` (baseline already measured).
    task:
        The task whose model is compressed.
    mode:
        ``"continuous"`` or ``"discrete"``.
    horizon:
        Steps per episode.
    space:
        The run's ``ConfigSpace`` (default: built from ``task`` with no fine-tuning).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        session: SearchSession,
        task: Any,
        mode: str = "continuous",
        horizon: int = 4,
        space: ConfigSpace | None = None,
    ) -> None:
        super().__init__()
        if mode not in ("continuous", "discrete"):
            raise ValueError(f"mode must be 'continuous' or 'discrete', got {mode!r}")
        self.session = session
        self.task = task
        self.mode = mode
        self.horizon = int(horizon)
        self.space = space if space is not None else ConfigSpace(task)
        if mode == "continuous":
            self.action_space: spaces.Space[Any] = spaces.Box(-1.0, 1.0, shape=(CONTINUOUS_DIM,), dtype=np.float32)
        else:
            self.action_space = spaces.Discrete(N_DISCRETE_ACTIONS)
        n_obs = len(OBS_FEATURES) + 1
        self.observation_space = spaces.Box(-10.0, 10.0, shape=(n_obs,), dtype=np.float32)
        self._t = 0

    def _baseline_obs(self) -> np.ndarray:
        feats = {k: 1.0 for k in OBS_FEATURES}
        feats["drop_over_limit"] = 0.0
        return np.array([feats[k] for k in OBS_FEATURES] + [0.0], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._t = 0
        return self._baseline_obs(), {}

    def config_for(self, action: Any) -> tuple[Any, dict[str, Any]]:
        if self.mode == "continuous":
            raw = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
            vec = (raw + 1.0) / 2.0
            return self.space.continuous(vec), {"action": [float(v) for v in vec], "raw": [float(v) for v in raw]}
        a = int(np.asarray(action).reshape(-1)[0])
        return self.space.discrete(a), {"action": a}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        config, proposal = self.propose(action)
        return self.observe(self.session.evaluate(config, proposal))

    def propose(self, action: Any) -> tuple[Any, dict[str, Any]]:
        """The first half of ``step``: the config an action asks for (``PoolVecEnv`` evaluates several at once)."""
        config, proposal = self.config_for(action)
        self._t += 1
        proposal["episode_step"] = self._t
        return config, proposal

    def observe(self, outcome: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """The second half of ``step``: observation, reward, end of episode and info of an evaluated config."""
        obs = np.concatenate(
            [np.clip(outcome.verdict.observation(), -10.0, 10.0), [self._t / self.horizon]]
        ).astype(np.float32)
        terminated = self._t >= self.horizon
        info = {
            "feasible": outcome.verdict.feasible,
            "reason": outcome.verdict.reason,
            "origin": outcome.origin,
            "seq": outcome.seq,
            "digest": outcome.result.digest,
        }
        return obs, float(outcome.verdict.reward), terminated, False, info


def register() -> None:
    """Register ``edgeprune/Compress-v0`` (idempotent); ``gym.make(ENV_ID, session=..., task=...)``."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="edgeprune.host.search.env:CompressEnv")


register()
