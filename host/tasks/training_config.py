"""Baseline hyper-parameters for a task name, with the few overrides the CLI exposes."""

from __future__ import annotations

import dataclasses
from typing import Any

from edgeprune.host.tasks.base import TaskError
from edgeprune.host.tasks.digits import CNNTrainConfig
from edgeprune.host.tasks.gru_train import GRUTrainConfig
from edgeprune.host.tasks.policy import DQNTrainConfig


def config_for(task: str | None, *, seed: int | None = None, timesteps: int | None = None) -> Any:
    """The default training config of ``task`` with overrides applied; ``None`` if nothing to train."""
    if task == "digits-cnn":
        if timesteps is not None:
            raise TaskError("--timesteps applies to DQN tasks only")
        return CNNTrainConfig() if seed is None else dataclasses.replace(CNNTrainConfig(), seed=seed)
    if task is not None and task.partition(":")[0] in ("weather-gru", "weather-lstm"):
        if timesteps is not None:
            raise TaskError("--timesteps applies to DQN tasks only")
        return GRUTrainConfig() if seed is None else dataclasses.replace(GRUTrainConfig(), seed=seed)
    if task is not None and (task == "cartpole-dqn" or task.startswith("dqn:")):
        cfg = DQNTrainConfig()
        if seed is not None:
            cfg = dataclasses.replace(cfg, seed=seed)
        if timesteps is not None:
            cfg = dataclasses.replace(cfg, total_timesteps=timesteps)
        return cfg
    if seed is not None or timesteps is not None:
        raise TaskError("--seed/--timesteps apply to trained tasks (weather-gru, weather-lstm, digits-cnn, cartpole-dqn, dqn:<env>)")
    return None
