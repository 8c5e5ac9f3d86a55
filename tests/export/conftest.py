"""Fixtures for the export tests: shared models, calibration data and exports.

Exports are module-scoped where several tests read the same result: each one runs the real
ONNX → onnx2tf → TFLiteConverter → TFLM chain, which takes seconds on the shared cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import synthetic_windows, trained_gru

from edgeprune.host.models import StackedGRU

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def gru_model() -> StackedGRU:
    return trained_gru([32, 24])


@pytest.fixture(scope="module")
def calibration() -> np.ndarray:
    return synthetic_windows(64, seed=5)


@pytest.fixture(scope="module")
def gru_export(gru_model: StackedGRU, calibration: np.ndarray, tmp_path_factory: pytest.TempPathFactory):
    from edgeprune.export import export_model

    out = tmp_path_factory.mktemp("gru") / "export"
    return export_model(gru_model, calibration, out, name="gru-test")


@pytest.fixture
def out_root(tmp_path: Path) -> Path:
    return tmp_path
