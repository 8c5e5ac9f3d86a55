"""Quantisation-aware fine-tuning at each layer's precision (issue 30): the fake quantisation is the exporter's
(int4 scale search, per tensor for linear layers, per channel for convolutions; int16 outputs for 16x8), baking
leaves weights the exporter re-quantises without loss, and stochastic rounding is seeded, unbiased and used only
while training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeprune.export import precision as P
from edgeprune.host.compress.compressor import compress
from edgeprune.host.compress.config import CompressionConfig, LayerConfig
from edgeprune.host.compress.qat import RangeObserver, bake_weights, fake_quant, int4_scales, quantize_weight
from edgeprune.host.models import MLP, ConvNet, StackedGRU, StackedLSTM


def test_int4_scales_are_the_exporters():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(24, 40, generator=g, dtype=torch.float64)
    assert float(int4_scales(w, False)) == pytest.approx(P.int4_scale(w.numpy()), rel=1e-12)
    conv = torch.randn(6, 3, 3, 5, generator=g, dtype=torch.float64)
    per = int4_scales(conv, True).reshape(-1).numpy()
    assert np.allclose(per, [P.int4_scale(conv[c].numpy()) for c in range(6)], rtol=1e-12)


def _exporter_int4(w: np.ndarray, per_channel: bool, int8_per_channel: bool) -> np.ndarray:
    """What export.precision does to a float weight: int8 first (as the converter), then int4 of the int8 values."""
    rows = w.reshape(w.shape[0], -1)
    amax = np.abs(rows).max(axis=1, keepdims=True) if int8_per_channel else np.abs(rows).max()
    w8 = np.round(rows / (amax / 127)) * (amax / 127)
    if per_channel:
        s4 = np.array([[P.int4_scale(r)] for r in w8])
    else:
        s4 = P.int4_scale(w8)
    return np.clip(np.round(w8 / s4), -8, 7) * s4


@pytest.mark.parametrize("int8_per_channel", [True, False])
def test_baked_int4_weights_survive_the_exporters_requantisation(int8_per_channel):
    """Per-channel int8 (the CNN's export) keeps every int4 layer exact; per-tensor int8 keeps per-tensor int4
    (linear layers) exact. (A convolution exported with one int8 scale per tensor is not: its int8 step can exceed a
    small channel's int4 step before the per-channel int4 rewrite.)"""
    torch.manual_seed(1)
    model = ConvNet((6, 6), 2, [5, 7], 3)
    plan = {"conv0": "int4", "conv1": "int4", "head": "int4"}
    bake_weights(model, plan)
    layers = ((model.layers[0], True), (model.layers[1], True), (model.head, False))
    for mod, per_channel in layers if int8_per_channel else layers[2:]:
        w = mod.weight.detach().double().numpy()
        levels = [len(np.unique(r)) for r in w.reshape(w.shape[0], -1)] if per_channel else [len(np.unique(w))]
        assert max(levels) <= 16
        again = _exporter_int4(w, per_channel, int8_per_channel)
        assert np.allclose(again.reshape(w.shape), w, rtol=0, atol=1e-6 * np.abs(w).max())  # float32 weights


def test_int8_layers_stay_on_the_int8_grid_beside_int4_ones():
    torch.manual_seed(2)
    model = MLP([6, 20, 12, 3])
    bake_weights(model, {"fc1": "int4"})
    w0, w1 = model.layers[0].weight.detach(), model.layers[1].weight.detach()
    assert torch.allclose(quantize_weight(w0), w0, atol=1e-7)
    assert len(torch.unique(w1)) <= 16 < len(torch.unique(w0))


def test_16x8_output_is_fake_quantised_on_an_int16_grid():
    x = torch.linspace(-3, 5, 4001)
    err8 = (RangeObserver(bits=8)(x) - x).abs().max()
    err16 = (RangeObserver(bits=16)(x) - x).abs().max()
    assert err16 < err8 / 100
    step = 5 / 32767
    assert float(err16) <= step / 2 + 1e-7


@pytest.mark.parametrize("cls,plan", [(StackedGRU, {"gru0": "16x8"}), (StackedLSTM, {"lstm1": "16x8"}),
                                      (ConvNet, {"conv0": "16x8"})])
def test_a_16x8_cell_or_convolution_is_fake_quantised_at_int16_beside_int8(cls, plan):
    """The exporter takes a 16x8 cell (state included) or convolution from the converter's 16x8 model: its new state /
    output falls on an int16 grid (far more than 256 values), the int8 layer's on at most 256."""
    g = torch.Generator().manual_seed(1)
    with torch.random.fork_rng():  # the global RNG as the other tests of this module find it
        torch.manual_seed(0)
        model = ConvNet((8, 8), 8, [8, 8], 3) if cls is ConvNet else cls(8, [8, 8], 3, 4)
    if cls is ConvNet:
        x = torch.randn(64, 8, 8, 8, generator=g)
        with fake_quant(model, plan):
            outs = {f"conv{i}": conv(x) for i, conv in enumerate(model.layers)}
    else:
        x, h = torch.randn(4096, 8, generator=g), torch.randn(4096, 8, generator=g)
        with fake_quant(model, plan):
            outs = {f"{model.PREFIX}{i}": layer.step(x, *([h] * len(layer.STATES)))
                    for i, layer in enumerate(model.layers)}
    for name, out in outs.items():
        values = len(torch.unique(out[0] if isinstance(out, tuple) else out))
        assert (values > 1000) if plan.get(name) == "16x8" else (values <= 256), (name, values)


def test_stochastic_rounding_is_seeded_unbiased_and_only_while_training():
    w = torch.full((1, 4000), 0.3) * torch.linspace(0.9, 1.1, 4000)
    w[0, 0] = 1.27  # fixes the int8 scale at 0.01: 0.3-ish values sit between grid points
    gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    a, b = quantize_weight(w, generator=gen()), quantize_weight(w, generator=gen())
    assert torch.equal(a, b)
    assert not torch.equal(a, quantize_weight(w))
    assert float((a - w).mean().abs()) < 2e-4  # unbiased: nearest rounding's bias here is larger
    model = MLP([4, 8, 2])
    with fake_quant(model, stochastic=True, seed=3):
        model.eval()
        x = torch.randn(5, 4)
        y1, y2 = model(x), model(x)
        nearest = torch.nn.functional.linear(x, quantize_weight(model.layers[0].weight), model.layers[0].bias)
    assert torch.equal(y1, y2)
    model.train()
    with fake_quant(model, stochastic=True, seed=3):
        t1 = model.layers[0](x)
    assert not torch.allclose(t1, nearest, atol=1e-6)


def test_conv_weights_get_straight_through_gradients():
    torch.manual_seed(4)
    model = ConvNet((6, 6), 1, [4], 2)
    with fake_quant(model, {"conv0": "int4"}):
        model.train()
        model(torch.randn(3, 6, 6, 1)).sum().backward()
    assert model.layers[0].weight.grad is not None and float(model.layers[0].weight.grad.abs().sum()) > 0
    assert "forward" not in model.layers[0].__dict__  # the override is gone after the block


def test_compress_fine_tunes_at_the_configured_precision():
    torch.manual_seed(5)
    model = MLP([5, 16, 3]).eval()
    x = torch.randn(256, 5).numpy()
    y = np.asarray(torch.randint(0, 3, (256,)))
    cfg = CompressionConfig(layers=(LayerConfig("fc0", precision="int4"),), finetune_steps=6, qat=True,
                            stochastic_rounding=True, seed=1)
    out = compress(model, cfg, data=(x, y, "classifier"))
    again = compress(model, cfg, data=(x, y, "classifier"))
    w0, w1 = out.model.layers[0].weight.detach(), out.model.layers[1].weight.detach()
    assert len(torch.unique(w0)) <= 16
    assert torch.allclose(quantize_weight(w1), w1, atol=1e-7)
    assert torch.equal(w0, again.model.layers[0].weight.detach())  # seeded, stochastic rounding included
    assert out.report["export"] == {"precision": {"fc0": "int4"}}


def test_int4_conv_filters_can_share_one_scale_like_the_exporter():
    torch.manual_seed(6)
    model = ConvNet((6, 6), 2, [5], 3)
    bake_weights(model, {"conv0": "int4"}, int4_scales="tensor")
    w = model.layers[0].weight.detach().double().numpy()
    assert len(np.unique(w)) <= 16
    s = P.int4_scale(w)
    assert np.allclose(np.clip(np.round(w / s), -8, 7) * s, w, rtol=0, atol=1e-6 * np.abs(w).max())


def test_a_convnets_conv_output_is_observed_after_its_fused_relu():
    """TFLite fuses the ReLU: the int8 output spans [0, max], 255 steps of max / 255 (not of (max - min) / 255)."""
    torch.manual_seed(7)
    model = ConvNet((6, 6), 1, [4], 2)
    x = torch.randn(8, 1, 6, 6) * 3
    with fake_quant(model):
        model.eval()
        y = model.layers[0](x).detach()
    assert float(y.min()) == 0.0
    step = float(y.max()) / 255
    q = (y / step).detach()
    assert torch.allclose(q, torch.round(q), atol=1e-3)


@pytest.mark.parametrize("cls,layer", [(MLP, "fc1"), (StackedGRU, "gru1"), (ConvNet, "conv0")])
def test_a_float32_layer_gets_no_fake_quantisation(cls, layer):
    """A float32 layer runs in float on the device (export.precision_float): QAT leaves its weights and outputs exact
    and bake_weights leaves its weights as trained, while the int8 layers beside it are simulated and snapped."""
    with torch.random.fork_rng():
        torch.manual_seed(3)
        model = MLP([8, 16, 12, 3]) if cls is MLP else ConvNet((8, 8), 8, [8, 8], 3) if cls is ConvNet else \
            StackedGRU(8, [8, 8], 3, 4)
    idx = int(layer[-1])
    g = torch.Generator().manual_seed(4)
    lay = model.layers[idx]
    plain = lay(torch.randn(2, 8, 8, 8, generator=g)) if cls is ConvNet else None
    mods = [m for m in lay.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
    before = [m.weight.detach().clone() for m in mods]
    if cls is MLP:
        x = torch.randn(256, 16, generator=g)
        with fake_quant(model, {layer: "float32"}):
            got = lay(x)
        assert torch.equal(got, lay(x))
        with fake_quant(model, {layer: "float32"}):
            other = model.layers[0](torch.randn(256, 8, generator=g))
        assert len(torch.unique(other)) <= 256
    elif cls is ConvNet:
        x = torch.randn(2, 8, 8, 8, generator=g)
        with fake_quant(model, {layer: "float32"}):
            got, other = lay(x), model.layers[1](x)
        assert torch.equal(got, lay(x)) and plain is not None
        assert len(torch.unique(other)) <= 256 < len(torch.unique(got))
    else:
        x, h = torch.randn(512, 8, generator=g), torch.randn(512, 8, generator=g)
        with fake_quant(model, {layer: "float32"}):
            got = lay.step(x, h)
            other = model.layers[0].step(x, h)
        assert torch.equal(got, lay.step(x, h))
        assert len(torch.unique(other)) <= 256 < len(torch.unique(got))
    bake_weights(model, {layer: "float32"})
    assert all(torch.equal(m.weight, w) for m, w in zip(mods, before, strict=True))
    w0 = next(m for m in model.layers[1 - idx if idx < 2 else 0].modules()
              if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)).weight
    assert torch.allclose(quantize_weight(w0), w0, atol=1e-7)
