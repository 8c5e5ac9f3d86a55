"""``check_agreement`` scores the device's outputs in real units, for int8 and int16 (16x8) outputs alike."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from edgeprune.bench.agreement import check_agreement


class _Device:
    """Returns a fixed output per call, as a loaded model on a device would."""

    def __init__(self, rows: list[np.ndarray]) -> None:
        self.rows = list(rows)
        self.inputs: list[bytes] = []

    def set_input(self, index: int, data: bytes) -> None:
        self.inputs.append(data)

    def infer(self, n: int) -> SimpleNamespace:
        return SimpleNamespace(outputs=[self.rows.pop(0).tobytes()])


class _Oracle:
    def __init__(self, rows: list[np.ndarray]) -> None:
        self.rows = list(rows)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.rows.pop(0)


@pytest.mark.parametrize("dtype,scale,zp", [("int8", 0.05, -3), ("int16", 0.001, 0)])
def test_metric_sees_real_values_and_mismatch_is_counted(dtype, scale, zp):
    man = {"inputs": [{"name": "x", "shape": [1, 2], "dtype": "float32"}],
           "outputs": [{"name": "y", "shape": [1, 2], "dtype": dtype, "scale": scale, "zero_point": zp}]}
    q = [np.array([40, -7], dtype=dtype), np.array([12, 30], dtype=dtype)]
    oracle = [q[0], np.array([12, 31], dtype=dtype)]
    seen = []

    def metric(preds, labels):
        seen.append(preds)
        return float(np.mean(preds))

    res = check_agreement(_Device(q), b"", man, [np.zeros(2, np.float32)] * 2, labels=None, metric=metric,
                          oracle=_Oracle(oracle), source="qemu")
    want = (np.stack(q).astype(np.float64) - zp) * scale
    np.testing.assert_allclose(seen[0], want, rtol=1e-6)
    assert res.metric is not None and res.metric.value == pytest.approx(float(want.mean()), rel=1e-6)
    assert res.n == 2 and res.mismatches == [1] and res.max_abs_diff == 1.0
    assert res.byte_equal_rate.value == 0.5
