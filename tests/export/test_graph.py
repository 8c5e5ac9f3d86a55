"""Which models export, and the calibration samples the converters see (no TensorFlow needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from export_helpers import synthetic_windows
from torch import nn

from edgeprune.bench.errors import ExportError
from edgeprune.export.graph import prepare, representative_samples
from edgeprune.host.models import MLP, StackedGRU


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).mean(-1))


def test_gru_is_exported_as_the_streaming_cell() -> None:
    g = prepare(StackedGRU(4, [16, 8], 3, 10))
    assert g.kind == "gru" and g.steps == 10
    assert g.input_names == ["x_t", "h_0", "h_1"]
    assert g.output_names == ["y", "h_0_next", "h_1_next"]
    assert [s.shape for s in g.inputs] == [(1, 4), (1, 16), (1, 8)]
    assert g.recurrent == [("h_0_next", "h_0"), ("h_1_next", "h_1")]


def test_mlp_has_one_input_and_no_sequence() -> None:
    g = prepare(MLP([4, 32, 2]))
    assert g.kind == "mlp" and g.steps == 1 and g.recurrent == []
    assert [s.shape for s in g.inputs] == [(1, 4)] and [s.shape for s in g.outputs] == [(1, 2)]


@pytest.mark.parametrize("model", [ConvNet(), nn.Sequential(nn.Linear(4, 4), nn.ReLU())])
def test_unsupported_models_are_refused_with_the_layer_named(model: nn.Module) -> None:
    with pytest.raises(ExportError) as info:
        prepare(model)
    assert info.value.stage == "onnx"
    assert info.value.op in {"ConvNet", "Sequential", "Conv1d", "ReLU"}


def test_a_foreign_layer_inside_a_canonical_model_is_named() -> None:
    model = MLP([4, 8, 2])
    model.layers[0] = nn.Conv1d(4, 8, 1)  # type: ignore[assignment]
    with pytest.raises(ExportError, match="Conv1d") as info:
        prepare(model)
    assert info.value.op == "Conv1d"


def test_calibration_shape_is_checked() -> None:
    g = prepare(StackedGRU(4, [8], 3, 12))
    with pytest.raises(ExportError, match=r"\[N, 12, 4\]"):
        representative_samples(g, np.zeros((5, 10, 4), np.float32))
    with pytest.raises(ExportError, match="NaN"):
        representative_samples(g, np.full((5, 12, 4), np.nan, np.float32))


def test_gru_calibration_records_the_hidden_states_the_loop_feeds_back() -> None:
    torch.manual_seed(0)
    model = StackedGRU(4, [8, 6], 3, 12).eval()
    cal = synthetic_windows(7)
    samples = representative_samples(prepare(model), cal, max_samples=10_000)
    assert len(samples) == 7 * 12
    # Step 0 of every window starts from h = 0.
    assert all(not s["h_0"].any() and not s["h_1"].any() for s in samples[:7])
    # The state recorded at step t is the float model's state after steps 0..t-1 of that window.
    with torch.no_grad():
        hs = model.init_state(1)
        for t in range(5):
            _, hs = model.step(torch.from_numpy(cal[2:3, t]), hs)
    s = samples[5 * 7 + 2]
    np.testing.assert_allclose(s["x_t"], cal[2:3, 5])
    np.testing.assert_allclose(s["h_0"], hs[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(s["h_1"], hs[1].numpy(), atol=1e-6)


def test_sample_budget_keeps_whole_windows() -> None:
    g = prepare(StackedGRU(4, [8], 3, 12))
    samples = representative_samples(g, synthetic_windows(100), max_samples=60)
    assert len(samples) == 5 * 12


@pytest.mark.parametrize(
    "make",
    [lambda: StackedGRU(4, [8, 6], 3, 12), lambda: MLP([4, 16, 2])],
)
def test_folded_input_norm_computes_the_same_function(make) -> None:
    from export_helpers import compressed_gru

    from edgeprune.export.graph import apply_input_norm, fold_input_norm, input_norm

    torch.manual_seed(0)
    for model in (make().eval(), compressed_gru()):
        if isinstance(model, MLP):
            x = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32) * [1, 2, 0.05, 3]
        else:
            x = synthetic_windows(9) * np.float32(3.0) + np.float32(1.5)
        norm = input_norm(x)
        folded = fold_input_norm(model, norm)
        with torch.no_grad():
            ref = model(torch.from_numpy(np.asarray(x, np.float32))).numpy()
            got = folded(torch.from_numpy(apply_input_norm(x, norm))).numpy()
        np.testing.assert_allclose(got, ref, atol=2e-5)
        z = apply_input_norm(x, norm).reshape(-1, 4)
        np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(z.std(0), 1, atol=1e-3)


def test_centered_q_keeps_the_greedy_action_and_drops_the_offset() -> None:
    from edgeprune.export.graph import center_outputs
    from edgeprune.host.models import LowRankLinear

    torch.manual_seed(0)
    model = MLP([4, 16, 3]).eval()
    low = LowRankLinear(16, 3, rank=2)
    model.layers[1] = low
    x = torch.randn(50, 4)
    with torch.no_grad():
        ref, got = model(x), center_outputs(model)(x)
    assert torch.equal(ref.argmax(1), got.argmax(1))
    torch.testing.assert_close(got, ref - ref.mean(1, keepdim=True), atol=1e-5, rtol=0)
