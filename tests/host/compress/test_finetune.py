from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from edgeprune.host.compress.compress_errors import ConfigError, DataError
from edgeprune.host.compress.compressor import compress
from edgeprune.host.compress.config import CompressionConfig, LayerConfig
from edgeprune.host.compress.finetuning import finetune
from edgeprune.host.compress.qat import quantize_weight
from edgeprune.host.compress.sparsity import apply_masks, magnitude_masks
from edgeprune.host.compress.structured import prune_structured
from edgeprune.host.models import MLP, StackedGRU


class SyntheticTask:
    """The slice of the ``Task`` interface compression uses, over in-memory arrays."""

    def __init__(self, model, x, y, kind) -> None:
        self.model, self.x, self.y, self.kind = model, x, y, kind

    def baseline(self):
        return self.model

    def train_arrays(self):
        return self.x, self.y


def test_finetuning_reduces_loss_of_heavily_pruned_gru(gru, seq_data) -> None:
    small, _ = prune_structured(gru, {"gru0": 0.75, "gru1": 0.5})
    res = finetune(small, seq_data, steps=100, lr=2e-2)
    assert res.steps == 100 and len(res.losses) == 100
    assert res.final_loss < 0.8 * res.initial_loss


def test_sparsity_masks_survive_finetuning(gru, seq_data) -> None:
    model, _ = prune_structured(gru, {"gru0": 0.25})
    masks = magnitude_masks(model, {"gru0": 0.6, "gru1": 0.3, "head": 0.5})
    apply_masks(model, masks)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    finetune(model, seq_data, steps=30, lr=1e-2)  # without masks zeros would regrow...
    regrown = dict(model.named_parameters())["layers.0.x_proj.0.weight"]
    assert (regrown[masks["layers.0.x_proj.0.weight"] == 0] != 0).any()
    apply_masks(model, masks)
    finetune(model, seq_data, steps=30, lr=1e-2, masks=masks)  # ...with masks they stay zero
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert torch.all(params[name][mask == 0] == 0), name
        assert not torch.equal(params[name][mask == 1], before[name][mask == 1]), f"{name} did not train"
    zeros = sum(int((m == 0).sum()) for n, m in masks.items() if n.startswith("layers.0."))
    total = sum(m.numel() for n, m in masks.items() if n.startswith("layers.0."))
    assert zeros == round(0.6 * total)


def test_compress_keeps_sparsity_through_finetune_and_qat(gru, seq_data) -> None:
    cfg = CompressionConfig(layers=(LayerConfig("gru0", prune=0.5, sparsity=0.5), LayerConfig("head", sparsity=0.5)),
                            finetune_steps=40, qat=True)
    res = compress(gru, cfg, data=seq_data)
    assert res.report["layer_sparsity"]["gru0"] >= 0.5 and res.report["layer_sparsity"]["head"] >= 0.5
    assert res.report["finetune"]["final_loss"] < res.report["finetune"]["initial_loss"]
    # QAT leaves every weight on its per-channel int8 grid, so the exporter's PTQ of it is exact.
    for m in res.model.modules():
        if isinstance(m, torch.nn.Linear):
            assert torch.allclose(quantize_weight(m.weight), m.weight, atol=1e-6)
            assert "forward" not in m.__dict__
    assert all("step" not in layer.__dict__ for layer in res.model.layers)
    assert type(res.model) is StackedGRU


def test_quantize_weight_is_per_channel_int8() -> None:
    w = torch.tensor([[1.0, -0.5, 0.25], [0.0, 0.0, 0.0], [127.0, 63.4, -1.0]])
    q = quantize_weight(w)
    assert torch.equal(q[1], w[1]) and torch.equal(q[2], torch.tensor([127.0, 63.0, -1.0]))
    assert torch.allclose(q[0] / (1.0 / 127), torch.round(q[0] / (1.0 / 127)))


def test_distillation_on_a_policy_task(mlp) -> None:
    rng = np.random.default_rng(0)
    states = rng.normal(size=(512, 4)).astype(np.float32)
    with torch.no_grad():
        teacher_q = mlp(torch.as_tensor(states)).numpy()
    task = SyntheticTask(mlp, states, teacher_q, "policy")
    cfg = CompressionConfig.from_retain_rate(0.25, mlp, finetune_steps=150, distill=True)
    res = compress(task, cfg)
    assert res.model.sizes == [4, 8, 6, 2]
    ft = res.report["finetune"]
    assert ft["final_loss"] < 0.7 * ft["initial_loss"]


def test_distillation_on_a_classifier_task(gru, seq_data) -> None:
    teacher = StackedGRU(3, [8, 6], 4, 5).eval()
    finetune(teacher, seq_data, steps=100, lr=1e-2)
    student, _ = prune_structured(teacher, {"gru0": 0.5, "gru1": 0.5})
    res = finetune(student, seq_data, steps=80, teacher=teacher, lr=1e-2, alpha=1.0)
    assert res.final_loss < res.initial_loss


def test_compress_is_deterministic_under_seed(mlp) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = rng.integers(0, 2, size=200)
    cfg = CompressionConfig(layers=(LayerConfig("fc0", prune=0.5), LayerConfig("fc1", sparsity=0.3)),
                            finetune_steps=20, importance="taylor", seed=7)
    a, b = compress(mlp, cfg, (x, y)), compress(mlp, cfg, (x, y))
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    c = compress(mlp, cfg.with_globals(seed=8), (x, y))
    assert not all(torch.equal(sa[k], c.model.state_dict()[k]) for k in sa)
    assert a.proxies == b.proxies and a.config is cfg


def test_finetune_input_errors(mlp) -> None:
    with pytest.raises(DataError, match="samples"):
        finetune(mlp, (np.zeros((4, 4)), np.zeros(3)), steps=1)
    with pytest.raises(DataError, match="NaN"):
        finetune(mlp, (np.full((4, 4), np.nan), np.zeros(4)), steps=1)
    with pytest.raises(ConfigError, match="steps"):
        finetune(mlp, (np.zeros((4, 4)), np.zeros(4)), steps=-1)
    with pytest.raises(DataError, match="pass a task"):
        compress(mlp, CompressionConfig(finetune_steps=3))
    with pytest.raises(ConfigError, match="StackedGRU, StackedLSTM, MLP and ConvNet"):
        compress(torch.nn.Linear(2, 2), CompressionConfig())
    assert isinstance(mlp, MLP)


def test_activation_fake_quant_is_int8_with_straight_through_gradient() -> None:
    from edgeprune.host.compress.qat import RangeObserver

    obs = RangeObserver()
    x = (torch.rand(1000) * 3 - 1).requires_grad_(True)  # range ≈ [-1, 2]
    q = obs(x)
    assert len(torch.unique(q.detach())) <= 256
    scale = float((obs.hi - obs.lo) / 255)
    assert float((q - x).detach().abs().max()) <= scale / 2 + 1e-6
    assert float(obs(torch.zeros(3)).abs().max()) < 1e-6  # 0 is exactly representable
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_sequence_forward_is_the_models_forward():
    import torch

    from edgeprune.host.compress.config import CompressionConfig, LayerConfig
    from edgeprune.host.compress.finetuning import sequence_forward
    from edgeprune.host.compress.lowrank import factorise
    from edgeprune.host.models import StackedGRU

    torch.manual_seed(0)
    m = StackedGRU(3, [6, 5], 2, 7)
    x = torch.randn(4, 7, 3)
    torch.testing.assert_close(sequence_forward(m, x), m(x), rtol=0, atol=1e-6)
    cfg = CompressionConfig(layers=(LayerConfig("gru0"), LayerConfig("gru1", rank_frac=0.2), LayerConfig("head")))
    low, _ = factorise(m, cfg)  # low-rank recurrent projections take the unfused path
    torch.testing.assert_close(sequence_forward(low, x), low(x), rtol=0, atol=1e-6)


def test_fused_gru_kernel_gives_the_models_gradients_and_steps_aside_for_fake_quant():
    import torch

    from edgeprune.host.compress.finetuning import _fused_layer, sequence_forward
    from edgeprune.host.compress.qat import fake_quant
    from edgeprune.host.models import StackedGRU

    torch.manual_seed(1)
    m = StackedGRU(3, [6, 5], 2, 7)
    x = torch.randn(4, 7, 3)
    assert _fused_layer(m.layers[0], x) is not None  # dense layers take PyTorch's GRU kernel
    sequence_forward(m, x).square().sum().backward()
    fused = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    m(x).square().sum().backward()
    for n, p in m.named_parameters():
        torch.testing.assert_close(fused[n], p.grad, rtol=1e-5, atol=1e-6)
    with fake_quant(m):  # fresh range observers per block: they learn from every call
        # quantising forwards are module-level: the fused kernel would skip them
        assert _fused_layer(m.layers[0], x) is None
        reference = m(x)
    with fake_quant(m):
        torch.testing.assert_close(sequence_forward(m, x), reference, rtol=0, atol=1e-6)


def test_teacher_outputs_are_computed_once_per_teacher_and_data(gru, seq_data) -> None:
    """Candidates of one search distil from the same baseline on the same data: its outputs are computed once and
    the fine-tuned weights are bit-identical to a fine-tune that computed them afresh; another teacher (or other
    data) is computed anew."""
    from edgeprune.host.compress import finetuning

    teacher = StackedGRU(3, [8, 6], 4, 5).eval()
    calls = []
    hook = teacher.register_forward_hook(lambda *_: calls.append(1))
    student, _ = prune_structured(teacher, {"gru0": 0.5})

    def run() -> dict[str, torch.Tensor]:
        model = copy.deepcopy(student)
        finetune(model, seq_data, steps=20, teacher=teacher, lr=1e-2, alpha=0.5, seed=3)
        return model.state_dict()

    finetuning._TEACHER_MEMO.clear()
    fresh = run()
    first = len(calls)
    assert first > 0
    again = run()
    assert len(calls) == first  # nothing recomputed
    assert all(torch.equal(fresh[k], again[k]) for k in fresh)
    finetuning._TEACHER_MEMO.clear()
    assert all(torch.equal(fresh[k], v) for k, v in run().items())  # the remembered outputs were the real ones
    assert len(calls) == 2 * first
    with torch.no_grad():
        next(teacher.parameters()).add_(0.01)  # another teacher: computed anew
    run()
    assert len(calls) == 3 * first
    hook.remove()
