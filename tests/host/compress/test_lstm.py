"""The stacked LSTM through the same compression path as the GRU: exact conversion from nn.LSTM,
unit removal that deletes exactly the removed units, low-rank, fine-tuning (fused kernel and QAT), and
the streaming cell with h and c carried per layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgeprune.host.compress.compressor import compress
from edgeprune.host.compress.config import CompressionConfig, LayerConfig, layer_names_of
from edgeprune.host.compress.cost_proxies import proxies
from edgeprune.host.compress.finetuning import _fused_layer, finetune, sequence_forward
from edgeprune.host.compress.lowrank import factorise
from edgeprune.host.compress.qat import fake_quant
from edgeprune.host.compress.structured import prune_structured
from edgeprune.host.models import StackedGRU, StackedLSTM


@pytest.fixture
def lstm() -> StackedLSTM:
    torch.manual_seed(0)
    return StackedLSTM(input_size=3, hidden_sizes=[8, 6], num_outputs=4, seq_len=5).eval()


def test_converts_exactly_from_nn_lstm() -> None:
    torch.manual_seed(2)
    rnn, head = nn.LSTM(3, 7, num_layers=2, batch_first=True), nn.Linear(7, 2)
    model = StackedLSTM.from_torch_lstm(rnn, head, seq_len=6)
    x = torch.randn(4, 6, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x), head(rnn(x)[0][:, -1]), rtol=0, atol=1e-6)
    assert model.state_names == ["h_0", "c_0", "h_1", "c_1"] and model.state_sizes == [7, 7, 7, 7]
    with pytest.raises(ValueError, match="unidirectional"):
        StackedLSTM.from_torch(nn.LSTM(3, 7, bidirectional=True, batch_first=True), nn.Linear(14, 2), 6)


def test_layer_names_and_proxies_count_four_gates(lstm: StackedLSTM) -> None:
    assert layer_names_of(lstm) == ("lstm0", "lstm1", "head")
    p = proxies(lstm)
    per_step = 4 * (3 * 8 + 8 * 8) + 4 * (8 * 6 + 6 * 6)
    assert p.macs_per_step == per_step + 6 * 4
    assert p.macs == per_step * 5 + 6 * 4
    gru = StackedGRU(3, [8, 6], 4, 5)
    assert proxies(gru).macs_per_step == 3 * (3 * 8 + 8 * 8) + 3 * (8 * 6 + 6 * 6) + 6 * 4


def test_removing_dead_units_changes_nothing_and_shrinks_h_and_c(lstm: StackedLSTM) -> None:
    dead = [1, 5]
    with torch.no_grad():
        layer, nxt = lstm.layers[0], lstm.layers[1]
        for p in layer.x_proj:
            p.weight[dead] = 0
            p.bias[dead] = 0
        for p in layer.h_proj:  # a dead unit: g = tanh(0) = 0 keeps c at 0, so h = o·tanh(0) = 0
            p.weight[dead] = 0
            p.weight[:, dead] = 0
            p.bias[dead] = 0
        for p in nxt.x_proj:
            p.weight[:, dead] = 0
    x = torch.randn(3, 5, 3)
    out, kept = prune_structured(lstm, {"lstm0": 0.25})
    assert kept["lstm0"] == [0, 2, 3, 4, 6, 7]
    assert isinstance(out, StackedLSTM) and out.hidden_sizes == [6, 6]
    assert out.state_sizes == [6, 6, 6, 6]
    for g in range(4):
        assert out.layers[0].x_proj[g].weight.shape == (6, 3) and out.layers[0].h_proj[g].weight.shape == (6, 6)
        assert out.layers[1].x_proj[g].weight.shape == (6, 6)
    with torch.no_grad():
        torch.testing.assert_close(out(x), lstm(x), rtol=0, atol=1e-6)


def test_pruning_the_head_input_layer_and_low_rank(lstm: StackedLSTM) -> None:
    out, kept = prune_structured(lstm, {"lstm1": 0.5})
    assert out.hidden_sizes == [8, 3] and out.head.weight.shape == (4, 3)
    low, ranks = factorise(out, CompressionConfig(layers=(LayerConfig("lstm0", rank_frac=0.25),)))
    assert len(ranks["lstm0"]) == 8  # four gates × (x, h)
    assert low(torch.randn(2, 5, 3)).shape == (2, 4)


def test_fused_training_forward_matches_and_qat_keeps_the_cells_own_loop(lstm: StackedLSTM) -> None:
    x = torch.randn(4, 5, 3)
    assert _fused_layer(lstm.layers[0], x) is not None
    sequence_forward(lstm, x).square().sum().backward()
    fused = {n: p.grad.clone() for n, p in lstm.named_parameters()}
    lstm.zero_grad()
    lstm(x).square().sum().backward()
    for n, p in lstm.named_parameters():
        torch.testing.assert_close(fused[n], p.grad, rtol=1e-5, atol=1e-6)
    with fake_quant(lstm):
        reference = lstm(x)
    with fake_quant(lstm):
        # h and c each get their own range observer; the reordered fused loop would skip both
        assert _fused_layer(lstm.layers[0], x) is None
        torch.testing.assert_close(sequence_forward(lstm, x), reference, rtol=0, atol=1e-6)


def test_compress_prunes_and_finetunes_an_lstm(lstm: StackedLSTM, seq_data) -> None:
    cfg = CompressionConfig(layers=(LayerConfig("lstm0", prune=0.5), LayerConfig("lstm1", prune=0.5)),
                            finetune_steps=60, distill=True)
    res = compress(lstm, cfg, data=seq_data)
    assert res.model.hidden_sizes == [4, 3]
    assert res.report["shape_after"] == [3, 4, 3, 4]
    ft = res.report["finetune"]
    assert ft["steps"] == 60 and ft["final_loss"] < ft["initial_loss"]
    x = torch.randn(2, 5, 3)
    y = finetune(res.model, seq_data, 0)
    assert y.steps == 0 and res.model(x).shape == (2, 4)
