from __future__ import annotations

import pytest
import torch

from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.compress.compressor import compress
from edgeprune.host.compress.config import CompressionConfig, LayerConfig
from edgeprune.host.compress.cost_proxies import proxies
from edgeprune.host.compress.lowrank import factorise
from edgeprune.host.models import StackedGRU


def test_gru_counts_match_hand_calculation(gru) -> None:
    # StackedGRU(F=3, hidden [8, 6], C=4, T=5); MACs of one step:
    #   gru0: x_proj 3 gates × 3·8 = 72,  h_proj 3 × 8·8 = 192  → 264
    #   gru1: x_proj 3 × 8·6 = 144,       h_proj 3 × 6·6 = 108  → 252
    #   head (in the streaming cell, but the runtime evaluates it at the last step only): 6·4 = 24
    #   per step 540; per inference 5 × 516 + 24 = 2604 (the same as tasks.model_io.count_macs)
    # biases: gru0 6·8 = 48, gru1 6·6 = 36, head 4 → 88; weights 540 → params 628
    p = proxies(gru)
    assert (p.macs_per_step, p.steps, p.macs, p.flops) == (540, 5, 2604, 5208)
    from edgeprune.host.tasks.model_io import count_macs

    assert count_macs(gru) == p.macs
    assert p.params == 628 == sum(t.numel() for t in gru.parameters())
    assert p.weight_bytes_int8 == 540 + 4 * 88 and p.weight_bytes_f32 == 4 * 628
    # Σhidden = 14 per step: adds 5·14, muls 2·14, sigmoids 2·14, tanh 14, bias adds 88; × 5 steps.
    assert p.elementwise == {"bias_add": 440, "add": 350, "mul": 140, "sigmoid": 140, "tanh": 70}
    # io: x_t 3 + h in/out 2·14 + y 4 = 35; widest layer's work 9·8 = 72.
    assert p.peak_activation_bytes == 107
    assert p.sparsity == 0.0 and p.nonzero_weights == 540
    assert proxies(gru, seq_len=30).macs == 516 * 30 + 24
    assert p.layers["gru1"].macs_per_step == 252


def test_mlp_counts_match_hand_calculation(mlp) -> None:
    # MLP [4, 16, 12, 2]: MACs 4·16 + 16·12 + 12·2 = 64 + 192 + 24 = 280; biases 16+12+2 = 30.
    p = proxies(mlp)
    assert (p.macs, p.steps, p.params) == (280, 1, 310)
    assert p.weight_bytes_int8 == 280 + 120 and p.elementwise == {"bias_add": 30, "relu": 28}
    assert p.peak_activation_bytes == 16 + 12
    with pytest.raises(ConfigError, match="no sequence"):
        proxies(mlp, seq_len=5)


def test_low_rank_factors_are_counted(gru) -> None:
    out, _ = factorise(gru, {"gru0": 0.25})
    # gru0 x_proj rank 1: 3·1 + 1·8 = 11 each → 33; h_proj rank 2: 8·2 + 2·8 = 32 each → 96.
    p = proxies(out)
    assert p.layers["gru0"].macs_per_step == 33 + 96
    assert p.macs_per_step == 129 + 252 + 24
    assert p.layers["gru0"].weights == 33 + 96 and p.layers["gru0"].biases == 48
    assert p.params == sum(t.numel() for t in out.parameters())


def test_sparsity_is_reported_not_discounted(gru) -> None:
    res = compress(gru, CompressionConfig(layers=(LayerConfig("gru1", sparsity=0.5), LayerConfig("head", sparsity=0.5))))
    p, base = res.proxies, proxies(gru)
    assert (p.macs, p.params, p.weight_bytes_int8) == (base.macs, base.params, base.weight_bytes_int8)
    assert p.layers["gru1"].zero_weights == 126 and p.layers["head"].zero_weights == 12
    assert p.sparsity == pytest.approx((126 + 12) / 540)
    assert p.nonzero_weights == 540 - 138


def test_study_baseline_figures() -> None:
    torch.manual_seed(0)
    model = StackedGRU(4, [256, 256], 5, 30)
    p = proxies(model)
    # gru0 3·(4·256 + 256·256) = 199,680; gru1 3·2·256·256 = 393,216; head 1,280 → 594,176 per step.
    # 30 steps of the gates, one readout: 30 · 592,896 + 1,280 = 17,788,160 (35.6 MFLOPs).
    assert p.macs_per_step == 594_176 and p.macs == 17_788_160
    assert p.params == 597_253
    assert abs(p.params - 596_000) / 596_000 < 0.005
    assert abs(p.flops - 36e6) / 36e6 < 0.02
    small = compress(model, CompressionConfig.from_continuous([0.5, 0.5, 0.0, 1.0], model)).proxies
    assert small.macs_per_step == 3 * (4 * 128 + 128 * 128) + 3 * 2 * 128 * 128 + 128 * 5


def test_package_api_names_are_not_shadowed_by_submodules() -> None:
    """The package exports its torch-free names only; the torch code is imported from its own module (no lazy
    re-export through a module ``__getattr__``)."""
    import types

    import edgeprune.host.compress as c
    import edgeprune.host.compress.compressor  # noqa: F401  (imports every submodule)

    assert not any(isinstance(getattr(c, name), types.ModuleType) for name in c.__all__)
    assert "__getattr__" not in vars(c) and "compress" not in c.__all__
