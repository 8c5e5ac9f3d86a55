"""``get_task``: one entry point from a task name (or bring-your-own files) to a ready ``Task``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edgeprune.host.tasks.base import Progress, Task, TaskError
from edgeprune.host.tasks.byo_gru import BYOGRUTask
from edgeprune.host.tasks.digits import DigitsCNNTask
from edgeprune.host.tasks.policy import DQNTask, env_id_for
from edgeprune.host.tasks.weather import WeatherGRUTask, parse_cell, parse_name

log = logging.getLogger(__name__)

BUILTIN = ("weather-gru", "weather-gru:shuffled", "weather-lstm", "weather-lstm:shuffled", "digits-cnn", "cartpole-dqn",
           "dqn:<gymnasium env id>", "byo-gru", "byo-dqn")


def get_task(
    name_or_spec: str | dict[str, Any] | None = None,
    cache_dir: Path | None = None,
    *,
    model: Path | str | None = None,
    data: Path | str | None = None,
    env: str | None = None,
    train_config: Any = None,
    progress: Progress | None = None,
    ensure_baseline: bool = True,
) -> Task:
    """Build a task and (unless ``ensure_baseline=False``) load or train its baseline.

    ``name_or_spec``: ``"weather-gru"``, ``"weather-lstm"``, ``"cartpole-dqn"``, ``"dqn:<env-id>"``; or
    ``"byo-gru"`` with ``model=<.pt>`` (a GRU or LSTM) and ``data=<.npz>``; or ``"byo-dqn"`` with ``model=<SB3 .zip>`` and ``env=<env-id>``.
    With ``name_or_spec=None`` the kind of bring-your-own task follows from ``model``'s suffix.
    ``name_or_spec`` may also be a dict with keys ``name``/``task``, ``model``, ``data``, ``env``
    (what ``edgeprune search --model ... --env ...`` passes); explicit keyword arguments win.
    ``cache_dir`` overrides the cache root; ``train_config`` (``GRUTrainConfig`` / ``DQNTrainConfig``)
    overrides the baseline's hyper-parameters (it changes the cache key).
    """
    name: str | None
    if isinstance(name_or_spec, dict):
        unknown = set(name_or_spec) - {"name", "task", "model", "data", "env"}
        if unknown:
            raise TaskError(f"unknown task spec keys {sorted(unknown)}; expected name, model, data, env")
        name = name_or_spec.get("name") or name_or_spec.get("task")
        model = model if model is not None else name_or_spec.get("model")
        data = data if data is not None else name_or_spec.get("data")
        env = env if env is not None else name_or_spec.get("env")
    else:
        name = name_or_spec
    task = _build(name, cache_dir, model, data, env, train_config, progress)
    if ensure_baseline:
        task.baseline()
    return task


def byo_kind(model: Path | str) -> str:
    """``byo-dqn`` for an SB3 ``.zip``, ``byo-gru`` for a ``.pt``/``.pth`` (a GRU, LSTM or ConvNet); anything else is refused."""
    suffix = Path(model).suffix.lower()
    if suffix == ".zip":
        return "byo-dqn"
    if suffix in (".pt", ".pth"):
        return "byo-gru"
    raise TaskError(f"cannot tell the model kind of {model}: expected an SB3 DQN .zip or a GRU, LSTM or ConvNet .pt")


def _build(
    name: str | None,
    cache_dir: Path | None,
    model: Path | str | None,
    data: Path | str | None,
    env: str | None,
    train_config: Any,
    progress: Progress | None,
) -> Task:
    if name is None:
        if model is None:
            raise TaskError(f"give a task name ({', '.join(BUILTIN)}) or --model")
        name = byo_kind(model)
    if name.partition(":")[0] in ("weather-gru", "weather-lstm"):
        return WeatherGRUTask(train_config, cache_dir, progress, split=parse_name(name), cell=parse_cell(name))
    if name == "digits-cnn":
        return DigitsCNNTask(train_config, cache_dir, progress)
    if name == "cartpole-dqn" or name.startswith("dqn:"):
        return DQNTask(env_id_for(name), name=name, train_config=train_config, cache_root=cache_dir, progress=progress)
    if name == "byo-dqn":
        if model is None or env is None:
            raise TaskError("byo-dqn needs --model <SB3 DQN .zip> and --env <gymnasium env id>")
        return DQNTask(env, policy_zip=Path(model), cache_root=cache_dir, progress=progress)
    if name == "byo-gru":
        if model is None or data is None:
            raise TaskError("byo-gru needs --model <gru .pt> and --data <data .npz>")
        return BYOGRUTask(Path(model), Path(data), cache_dir)
    raise TaskError(f"unknown task {name!r}; expected one of {', '.join(BUILTIN)}")
