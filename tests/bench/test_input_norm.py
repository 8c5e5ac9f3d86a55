"""Float inputs sent to the device get the exporter's folded standardisation before quantisation."""

from __future__ import annotations

import numpy as np

from edgeprune.bench.inputs import encode_input


def _manifest(norm: bool) -> dict:
    m = {"inputs": [{"name": "obs", "position": 0, "dtype": "int8", "scale": 0.05, "zero_point": 3}]}
    if norm:
        m["input_norm"] = {"input": "obs", "mean": [1.0, -2.0], "std": [2.0, 0.5]}
    return m


def test_stream_input_is_normalised_then_quantised() -> None:
    x = np.array([[3.0, -1.0], [1.0, -2.0]], dtype=np.float32)
    got = np.frombuffer(encode_input(x, _manifest(True), 0), dtype=np.int8).reshape(2, 2)
    z = (x - np.array([1.0, -2.0])) / np.array([2.0, 0.5])  # [[1, 2], [0, 0]]
    expected = np.clip(np.round(z / 0.05) + 3, -128, 127).astype(np.int8)
    assert np.array_equal(got, expected)


def test_without_norm_only_the_quantisation_applies() -> None:
    x = np.array([[0.5, -0.25]], dtype=np.float32)
    got = np.frombuffer(encode_input(x, _manifest(False), 0), dtype=np.int8)
    assert got.tolist() == [13, -2]
