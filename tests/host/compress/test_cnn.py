"""ConvNet through the compression path: NHWC in, channel pruning that removes exactly the pruned
channels (next conv's inputs or the head's columns), proxies counting MACs per output pixel, int8-only
configs in the search space."""

from __future__ import annotations

import pytest
import torch

from edgeprune.host.compress.compressor import compress
from edgeprune.host.compress.config import CompressionConfig, LayerConfig, layer_names_of
from edgeprune.host.compress.cost_proxies import proxies
from edgeprune.host.compress.structured import prune_structured
from edgeprune.host.models import ConvNet
from edgeprune.host.tasks.model_io import build_model, count_macs, model_config


@pytest.fixture
def cnn() -> ConvNet:
    torch.manual_seed(0)
    return ConvNet((8, 8), 1, [6, 8], 4).eval()


def test_nhwc_forward_and_shapes(cnn: ConvNet) -> None:
    x = torch.randn(3, 8, 8, 1)
    with torch.no_grad():
        torch.testing.assert_close(cnn(x), cnn.forward_nchw(x.permute(0, 3, 1, 2)), rtol=0, atol=0)
    assert cnn(x).shape == (3, 4) and cnn.layer_hw() == [(8, 8), (4, 4)] and cnn.final_hw == (4, 4)
    assert layer_names_of(cnn) == ("conv0", "conv1", "head")
    with pytest.raises(ValueError, match="pools do not fit"):
        ConvNet((2, 2), 1, [4, 4, 4], 2, [True, True, False])
    again = build_model(model_config(cnn))
    assert isinstance(again, ConvNet) and again.channels == [6, 8] and again.pool_after == cnn.pool_after


def test_proxies_count_macs_per_output_pixel(cnn: ConvNet) -> None:
    macs = 9 * 1 * 6 * 64 + 9 * 6 * 8 * 16 + 8 * 4
    assert proxies(cnn).macs == macs == count_macs(cnn)
    small, _ = prune_structured(cnn, {"conv0": 0.5})
    assert proxies(small).macs == 9 * 1 * 3 * 64 + 9 * 3 * 8 * 16 + 8 * 4


@pytest.mark.parametrize("layer", ["conv0", "conv1"])
def test_removing_dead_channels_changes_nothing(cnn: ConvNet, layer: str) -> None:
    i = int(layer[-1])
    dead = [1, 4]
    with torch.no_grad():
        cnn.layers[i].weight[dead] = 0
        cnn.layers[i].bias[dead] = 0
        nxt = cnn.layers[i + 1] if i + 1 < len(cnn.layers) else cnn.head
        nxt.weight[:, dead] = 0
    out, kept = prune_structured(cnn, {layer: 2 / 6 if i == 0 else 0.25})
    assert all(d not in kept[layer] for d in dead)
    assert out.channels[i] == cnn.channels[i] - 2
    x = torch.rand(2, 8, 8, 1)
    with torch.no_grad():
        torch.testing.assert_close(out(x), cnn(x), rtol=0, atol=1e-6)


def test_compress_prunes_channels_and_finetunes(cnn: ConvNet) -> None:
    rng = torch.Generator().manual_seed(0)
    x = torch.rand(128, 8, 8, 1, generator=rng)
    y = (x[:, :4].mean(dim=(1, 2, 3)) > x[:, 4:].mean(dim=(1, 2, 3))).long() + 2 * (x[..., :4, 0].mean((1, 2)) > 0.5).long()
    cfg = CompressionConfig(layers=(LayerConfig("conv0", prune=0.5), LayerConfig("conv1", prune=0.5, rank_frac=0.5),
                                    LayerConfig("head", sparsity=0.5)), finetune_steps=30)
    res = compress(cnn, cfg, data=(x.numpy(), y.numpy()))
    assert res.model.channels == [3, 4] and res.report["shape_after"] == [1, 3, 4, 4]
    assert res.report["ranks"]["conv1"] == [None]  # filters stay dense
    assert res.report["finetune"]["steps"] == 30
    assert res.report["layer_sparsity"]["head"] == pytest.approx(0.5, abs=0.07)


def test_search_space_keeps_a_conv_model_int8(cnn: ConvNet) -> None:
    from edgeprune.host.search.space import ConfigSpace

    space = ConfigSpace(cnn, finetune_steps="auto")
    assert space.int8_only
    for action in range(16):  # the discrete actions include float32 ones
        cfg = space.canonical(space.discrete(action))
        assert cfg.quantize == "int8" and all(lc.quantize is None for lc in cfg.layers)
    cfg = space.canonical(space.continuous([0.5, 0.5, 0.0, 0.0]))
    assert cfg.finetune_steps > 0 and cfg.layer("conv0").prune > 0
