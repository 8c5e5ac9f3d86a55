"""A compressed model goes through the real exporter (ONNX → TFLite int8 → TFLM) and its proxies agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeprune.host.compress.compressor import compress
from edgeprune.host.compress.config import CompressionConfig, LayerConfig
from edgeprune.host.models import LowRankLinear, StackedGRU


@pytest.mark.tf
@pytest.mark.slow
def test_pruned_low_rank_qat_gru_exports_and_matches_proxies(tmp_path) -> None:
    from edgeprune.export.pipeline import export_model

    torch.manual_seed(0)
    model = StackedGRU(3, [16, 12], 4, 6).eval()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 6, 3)).astype(np.float32)
    s = x.sum(axis=1)
    y = np.where(s.max(axis=1) > 1.0, s.argmax(axis=1), 3).astype(np.int64)
    cfg = CompressionConfig(
        layers=(LayerConfig("gru0", prune=0.5, rank_frac=0.25), LayerConfig("gru1", prune=0.25, sparsity=0.5),
                LayerConfig("head", sparsity=0.3)),
        finetune_steps=40, qat=True,
    )
    res = compress(model, cfg, (x, y))
    assert res.model.hidden_sizes == [8, 9]
    assert isinstance(res.model.layers[0].h_proj[0], LowRankLinear)

    out = export_model(res.model, x[:64], tmp_path / "export", quantize=cfg.quantize)
    man = out.manifest
    linears = sum(isinstance(m, torch.nn.Linear) for m in res.model.modules())
    assert man["ops"]["FULLY_CONNECTED"] == linears  # every counted matrix product is one FC op
    assert man["sizes"]["weight_bytes"] + man["sizes"]["bias_bytes"] == res.proxies.weight_bytes_int8
    assert man["sequence"]["steps"] == res.proxies.steps == 6
    assert man["parity"]["tflm_argmax_agreement"] >= 0.9
