"""Accuracy parity on the real task: the int8 weather GRU, run in TFLM, within 1.0 pp of the float model."""

from __future__ import annotations

import logging

import pytest

from edgeprune.export import export_model, predict_fn

pytestmark = [pytest.mark.tf, pytest.mark.slow]
log = logging.getLogger(__name__)


def test_weather_gru_int8_accuracy_within_one_point(tmp_path) -> None:
    from edgeprune.host.tasks import get_task

    task = get_task("weather-gru")
    model = task.baseline().eval()
    result = export_model(model, task.calibration_inputs(512), tmp_path / "weather", name="weather-gru")
    float_acc = task.evaluate_model(model).value
    int8_acc = task.evaluate(predict_fn(result.read_tflite(), result.manifest)).value
    log.warning("weather-gru test accuracy: float %.4f, int8 TFLM %.4f; tflite %d B", float_acc, int8_acc,
                result.tflite_bytes)
    assert abs(int8_acc - float_acc) <= 0.010
    assert result.tflite_bytes <= 1.2 * result.weight_bytes + 24 * 1024
