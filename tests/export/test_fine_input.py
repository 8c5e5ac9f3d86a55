"""Two-digit int8 inputs (``fine_input``): the pair reconstructs z finely, and the export uses it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from export_helpers import policy_mlp

from edgeprune.bench.errors import ExportError
from edgeprune.bench.inputs import quantize_input, split_float, split_int8
from edgeprune.bench.tflite_info import read_model
from edgeprune.export import export_model, predict_fn
from edgeprune.export.fine_input import input_grid, split_first_layer
from edgeprune.export.verify import ALLOWED_OPS


def test_pair_reconstructs_z_within_a_fine_step() -> None:
    z = np.random.default_rng(0).normal(size=(500, 4)).astype(np.float32)
    scale, zp = input_grid(z)
    codes = split_int8(z, scale, zp, 16).astype(np.float64)
    coarse = (codes[:, :4] - zp) * scale
    resid = (codes[:, 4:] - zp) * scale / 16
    plain = (np.clip(np.round(z / scale) + zp, -128, 127) - zp) * scale
    assert np.max(np.abs(coarse + resid - z)) <= scale / 32 + 1e-6
    assert np.max(np.abs(plain - z)) > 8 * np.max(np.abs(coarse + resid - z))
    assert np.allclose(split_float(z, scale, zp, 16)[:, :4], coarse, atol=1e-6)


def test_split_layer_computes_the_same_function() -> None:
    model = policy_mlp()
    wide = split_first_layer(model, 16)
    z = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32)
    pair = split_float(z, *input_grid(z), 16)
    with torch.no_grad():
        want = model(torch.from_numpy(z)).numpy()
        got = wide(torch.from_numpy(pair)).numpy()
    assert wide.sizes == [8, 64, 64, 2]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_split_refuses_gru() -> None:
    from export_helpers import trained_gru

    with pytest.raises(ExportError, match="MLP policies only"):
        split_first_layer(trained_gru([8]), 16)


@pytest.mark.tf
def test_fine_input_export_feeds_the_pair(tmp_path) -> None:
    model = policy_mlp()
    rng = np.random.default_rng(2)
    calib = rng.normal(scale=[1.0, 1.0, 0.1, 1.0], size=(256, 4)).astype(np.float32)
    res = export_model(model, calib, tmp_path / "fine", fine_input=16)
    man = res.manifest
    assert man["input_norm"]["fine"] == 16
    assert man["inputs"][0]["shape"] == [1, 8]
    assert set(read_model(res.read_tflite()).ops) <= ALLOWED_OPS
    assert quantize_input(calib[:3], man).shape == (3, 8)
    states = rng.normal(scale=[1.0, 1.0, 0.1, 1.0], size=(400, 4)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(states)).numpy()
    got = predict_fn(res.read_tflite(), man)(states)
    assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.97


def test_distill_rejects_unusable_states() -> None:
    from edgeprune.export.policy_distill import distill_policy

    model = policy_mlp()
    with pytest.raises(ExportError, match="states must be"):
        distill_policy(model, np.zeros((10, 3), np.float32), np.zeros((10, 4), np.float32))
    bad = np.full((512, 4), np.nan, np.float32)
    with pytest.raises(ExportError, match="NaN"):
        distill_policy(model, bad, np.zeros((10, 4), np.float32))
