from __future__ import annotations

import pytest
import torch

from edgeprune.host.compress.compress_errors import ConfigError, DataError
from edgeprune.host.compress.compressor import compress
from edgeprune.host.compress.config import CompressionConfig, LayerConfig
from edgeprune.host.compress.data import TrainData
from edgeprune.host.compress.lowrank import factorise
from edgeprune.host.compress.structured import kept_count, prune_structured
from edgeprune.host.models import LowRankLinear, StackedGRU

DEAD = [1, 5]  # units of gru0 / fc0 whose weights the tests zero


def kill_gru_units(model: StackedGRU, layer: int, units: list[int]) -> None:
    """Zero every weight and bias into and out of ``units`` of GRU layer ``layer``."""
    gl = model.layers[layer]
    nxt = list(model.layers[layer + 1].x_proj) if layer + 1 < len(model.layers) else [model.head]
    with torch.no_grad():
        for p in gl.x_proj:
            p.weight[units] = 0
            p.bias[units] = 0
        for p in gl.h_proj:
            p.weight[units] = 0
            p.weight[:, units] = 0
            p.bias[units] = 0
        for p in nxt:
            p.weight[:, units] = 0


def states(model: StackedGRU, x: torch.Tensor) -> list[torch.Tensor]:
    hs = model.init_state(x.shape[0])
    for t in range(x.shape[1]):
        _, hs = model.step(x[:, t], hs)
    return hs


def test_kept_count() -> None:
    assert kept_count(8, 0.5) == 4 and kept_count(256, 0.25) == 192
    assert kept_count(6, 0.99) == 1 and kept_count(10, 0.0) == 10


def test_gru_shapes_as_configured(gru) -> None:
    out, kept = prune_structured(gru, {"gru0": 0.5, "gru1": 1 / 3})
    assert isinstance(out, StackedGRU) and out.hidden_sizes == [4, 4]
    assert {n: len(v) for n, v in kept.items()} == {"gru0": 4, "gru1": 4}
    l0, l1 = out.layers
    for g in range(3):
        assert l0.x_proj[g].weight.shape == (4, 3) and l0.h_proj[g].weight.shape == (4, 4)
        assert l1.x_proj[g].weight.shape == (4, 4) and l1.h_proj[g].weight.shape == (4, 4)
        assert l0.x_proj[g].bias.shape == (4,) and l1.h_proj[g].bias.shape == (4,)
    assert out.head.weight.shape == (4, 4) and out.num_outputs == 4
    assert l1.input_size == 4
    assert out(torch.randn(2, 5, 3)).shape == (2, 4)
    assert gru.hidden_sizes == [8, 6]  # input untouched


def test_half_of_gru_units_halves_layer_and_next_input() -> None:
    torch.manual_seed(1)
    model = StackedGRU(4, [16, 16], 5, 3)
    out, _ = prune_structured(model, {"gru0": 0.5})
    assert out.hidden_sizes == [8, 16]
    assert out.layers[1].x_proj[0].weight.shape == (16, 8)
    out2, _ = prune_structured(model, {"gru1": 0.5})
    assert out2.hidden_sizes == [16, 8] and out2.head.weight.shape == (5, 8)


def test_removing_zero_weight_gru_units_preserves_outputs(gru) -> None:
    kill_gru_units(gru, 0, DEAD)
    x = torch.randn(7, 5, 3)
    out, kept = prune_structured(gru, {"gru0": 2 / 8})
    assert kept["gru0"] == [0, 2, 3, 4, 6, 7]
    with torch.no_grad():
        torch.testing.assert_close(out(x), gru(x), rtol=0, atol=1e-6)
        full, small = states(gru, x), states(out, x)
        torch.testing.assert_close(small[0], full[0][:, kept["gru0"]], rtol=0, atol=1e-6)
        torch.testing.assert_close(small[1], full[1], rtol=0, atol=1e-6)
        assert torch.all(full[0][:, DEAD] == 0)


def test_removing_zero_weight_last_gru_units_preserves_outputs(gru) -> None:
    kill_gru_units(gru, 1, [0, 3, 4])
    out, kept = prune_structured(gru, {"gru1": 0.5})
    assert kept["gru1"] == [1, 2, 5]
    x = torch.randn(4, 5, 3)
    with torch.no_grad():
        torch.testing.assert_close(out(x), gru(x), rtol=0, atol=1e-6)


def test_pruning_live_units_changes_outputs(gru) -> None:
    # Guards the test above: removing units that carry weight must make a difference.
    out, _ = prune_structured(gru, {"gru0": 0.5})
    x = torch.randn(4, 5, 3)
    with torch.no_grad():
        assert not torch.allclose(out(x), gru(x), atol=1e-4)


def test_removing_dead_mlp_neurons_preserves_outputs(mlp) -> None:
    with torch.no_grad():
        mlp.layers[0].weight[DEAD] = 0
        mlp.layers[0].bias[DEAD] = 0
        mlp.layers[1].weight[:, DEAD] = 0
    out, kept = prune_structured(mlp, {"fc0": 2 / 16})
    assert out.sizes == [4, 14, 12, 2] and not set(DEAD) & set(kept["fc0"])
    x = torch.randn(9, 4)
    with torch.no_grad():
        torch.testing.assert_close(out(x), mlp(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("importance", ["activation", "taylor"])
def test_data_importance_removes_dead_neurons(mlp, importance) -> None:
    # Dead neurons: zero incoming weights and a negative bias, so ReLU outputs 0 on every input;
    # their outgoing weights are large, so weight-norm importance would keep them.
    with torch.no_grad():
        mlp.layers[0].weight[DEAD] = 0
        mlp.layers[0].bias[DEAD] = -1.0
        mlp.layers[1].weight[:, DEAD] = 10.0
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 4, generator=gen)
    data = TrainData.from_arrays(x.numpy(), torch.randn(128, 2, generator=gen).numpy(), "policy")
    _, kept = prune_structured(mlp, {"fc0": 2 / 16}, importance=importance, data=data)
    assert not set(DEAD) & set(kept["fc0"])
    _, kept_l2 = prune_structured(mlp, {"fc0": 2 / 16}, importance="l2")
    assert set(DEAD) <= set(kept_l2["fc0"])


def test_taylor_on_gru_with_classifier_data(gru, seq_data) -> None:
    kill_gru_units(gru, 0, DEAD)
    cfg = CompressionConfig(layers=(LayerConfig("gru0", prune=0.25),), importance="taylor")
    res = compress(gru, cfg, data=seq_data)
    assert res.model.hidden_sizes == [6, 6]
    x = torch.as_tensor(seq_data[0][:8])
    with torch.no_grad():
        torch.testing.assert_close(res.model(x), gru(x), rtol=0, atol=1e-6)


def test_data_importance_needs_data(mlp) -> None:
    with pytest.raises(DataError, match="needs training data"):
        prune_structured(mlp, {"fc0": 0.5}, importance="taylor")
    with pytest.raises(DataError):
        compress(mlp, CompressionConfig(layers=(LayerConfig("fc0", prune=0.5),), importance="activation"))


def test_readout_and_unknown_layers_rejected(gru, mlp) -> None:
    with pytest.raises(ConfigError, match="readout"):
        prune_structured(mlp, {"fc2": 0.5})
    with pytest.raises(ConfigError, match="unknown layers"):
        prune_structured(gru, {"fc0": 0.5})


def test_identity_config_reproduces_outputs_exactly(gru, mlp) -> None:
    x = torch.randn(3, 5, 3)
    for cfg in (CompressionConfig(), CompressionConfig.identity(gru), CompressionConfig.from_discrete(8, gru)):
        res = compress(gru, cfg)
        with torch.no_grad():
            assert torch.equal(res.model(x), gru(x))
        assert res.model is not gru
    xm = torch.randn(5, 4)
    res = compress(mlp, CompressionConfig.from_retain_rate(1.0, mlp))
    with torch.no_grad():
        assert torch.equal(res.model(xm), mlp(xm))


def test_pruning_low_rank_layers_keeps_kept_units_exact(gru) -> None:
    kill_gru_units(gru, 0, DEAD)
    lr_model, _ = factorise(gru, {"gru0": 1.0, "gru1": 1.0, "head": 1.0}, only_if_smaller=False)
    assert isinstance(lr_model.layers[0].h_proj[0], LowRankLinear)
    out, kept = prune_structured(lr_model, {"gru0": 0.25})
    assert kept["gru0"] == [0, 2, 3, 4, 6, 7]
    assert out.layers[0].h_proj[1].first.weight.shape == (8, 6)  # rank stays, columns pruned
    assert out.layers[0].h_proj[1].second.weight.shape == (6, 8)
    x = torch.randn(4, 5, 3)
    with torch.no_grad():
        torch.testing.assert_close(out(x), gru(x), rtol=0, atol=1e-5)
