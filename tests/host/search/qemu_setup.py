"""The small real task and evaluator settings the QEMU search tests share (kept small for CI)."""

from __future__ import annotations

from typing import Any


def small_weather_task(cell: str = "gru") -> Any:
    """The weather task with a 2 × 12 GRU (or LSTM) baseline (trains in seconds, cached after the first run)."""
    from edgeprune.host.tasks.gru_train import GRUTrainConfig
    from edgeprune.host.tasks.weather import WeatherGRUTask

    return WeatherGRUTask(GRUTrainConfig(hidden_size=12, num_layers=2, max_epochs=4, patience=2, threads=1), cell=cell)


def evaluator_options(**over: Any) -> dict[str, Any]:
    """One real deploy build per evaluator, the rest derived from it (the product default)."""
    return {"agreement_n": 2, "warmup": 1, "calibration_n": 32, "deploy_build": "baseline"} | over
