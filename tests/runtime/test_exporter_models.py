"""Models made by the real exporter (edgeprune.export: PyTorch -> ONNX -> TFLite int8) run on the runtime
byte-identically to bench.tflm.TflmRunner: 2-layer GRU and LSTM cells streamed in sequence mode and a DQN MLP
(float32 export too, within tolerance)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .rt import STATUS

pytestmark = [pytest.mark.tf, pytest.mark.slow]


def _export(model, calib, out, quantize="int8", weights="channel"):
    from edgeprune.export.pipeline import export_model

    res = export_model(model, calib, out, quantize=quantize, weights=weights)
    tflite = (out / "model.tflite").read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    return res, tflite, manifest


@pytest.mark.parametrize("cell,weights", [("gru", "channel"), ("gru", "tensor"), ("lstm", "channel"), ("lstm", "tensor")])
def test_exported_recurrent_sequence_bit_exact(rt, tmp_path, cell, weights):
    """GRU (one state per layer, fused kernel) and LSTM (h and c per layer, op by op) cells streamed."""
    import torch

    from edgeprune.bench.tflm import TflmRunner
    from edgeprune.host.models import StackedGRU, StackedLSTM

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = {"gru": StackedGRU, "lstm": StackedLSTM}[cell](4, [12, 8], 3, seq_len=10).eval()
    rng = np.random.default_rng(0)
    calib = rng.normal(0, 1, (64, 10, 4)).astype(np.float32)
    _, tflite, man = _export(model, calib, tmp_path / cell, weights=weights)
    assert man["weight_scales"] == weights and man["kind"] == cell
    assert len(man["sequence"]["recurrent"]) == (2 if cell == "gru" else 4)
    seq = man["sequence"]
    runner = TflmRunner(tflite, man)
    assert STATUS[rt.init(tflite)] == "OK"
    assert STATUS[rt.set_sequence(seq["steps"], seq["stream_input"], [tuple(p) for p in seq["recurrent"]])] == "OK"
    spec = man["inputs"][seq["stream_input"]]
    for k in range(4):
        x = rng.integers(-128, 128, (seq["steps"], *spec["shape"][1:]), dtype=np.int8)
        ref = runner.run(x)
        assert rt.set_input(seq["stream_input"], x.tobytes()) == 0
        assert rt.invoke() == 0
        assert np.array_equal(rt.output(seq["output"]), ref), k


@pytest.mark.parametrize("quantize", ["int8", "float32"])
def test_exported_mlp(rt, tmp_path, quantize):
    import torch

    from edgeprune.bench.tflm import TflmRunner
    from edgeprune.host.models.mlp import MLP

    torch.manual_seed(1)
    torch.set_num_threads(1)
    model = MLP([6, 32, 32, 3]).eval()
    rng = np.random.default_rng(1)
    calib = rng.normal(0, 1, (64, 6)).astype(np.float32)
    _, tflite, man = _export(model, calib, tmp_path / quantize, quantize)
    runner = TflmRunner(tflite, man)
    assert STATUS[rt.init(tflite)] == "OK"
    dt = np.int8 if quantize == "int8" else np.float32
    for _ in range(5):
        x = (rng.integers(-128, 128, (1, 6)) if dt == np.int8 else rng.normal(0, 1, (1, 6))).astype(dt)
        ref = runner.run(x)
        out = rt.run([x])[0]
        if dt == np.int8:
            assert np.array_equal(out, ref)
        else:
            np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels", [[8, 16], [3, 5, 7]])
def test_exported_convnet_bit_exact(rt, tmp_path, channels):
    """A ConvNet (3×3 convs, max pools, global average pool, FC) from the exporter: NHWC image in, byte-equal to TFLM."""
    import torch

    from edgeprune.bench.tflm import TflmRunner
    from edgeprune.host.models import ConvNet

    torch.manual_seed(2)
    torch.set_num_threads(1)
    model = ConvNet((8, 8), 1, channels, 10).eval()
    rng = np.random.default_rng(2)
    calib = rng.uniform(0, 1, (64, 8, 8, 1)).astype(np.float32)
    _, tflite, man = _export(model, calib, tmp_path / "cnn", weights="tensor")
    assert man["kind"] == "cnn" and man["inputs"][0]["shape"] == [1, 8, 8, 1] and man["sequence"] is None
    assert man["ops"]["CONV_2D"] == len(channels) and "AVERAGE_POOL_2D" in man["ops"]
    runner = TflmRunner(tflite, man)
    assert STATUS[rt.init(tflite)] == "OK"
    for _ in range(4):
        x = rng.integers(-128, 128, (1, 8, 8, 1), dtype=np.int8)
        assert np.array_equal(rt.run([x])[0], runner.run(x))
