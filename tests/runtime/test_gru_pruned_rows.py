"""A pruned GRU exported with per-channel scales: whole weight rows are zero, and the converter gives those rows
a scale near 1e-8, whose multiplier the fused step's short chain cannot apply. Such a row's output is a constant
(its requantised bias), so the layer still fuses (ep_gru.c, fcq_prepare), with TFLM's bytes."""

from __future__ import annotations

import numpy as np
import pytest

from .oracle import tflm_run
from .rt import NO_FUSE, STATUS, Runtime


@pytest.mark.tf
@pytest.mark.slow
def test_zero_rows_fuse_and_match_tflm(runtime_lib, tmp_path):
    import torch

    from edgeprune.export.pipeline import export_model
    from edgeprune.host.models.gru import StackedGRU

    torch.manual_seed(5)
    model = StackedGRU(4, [32], 5, seq_len=30).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "proj" in name:
                p[[3, 17, 31]] = 0.0  # rows pruned whole, in every gate's x and h weights
    calib = np.random.default_rng(5).normal(0, 1, (48, 30, 4)).astype(np.float32)
    res = export_model(model, calib, tmp_path / "export", weights="channel")
    tflite = res.read_tflite()
    fused, unfused = Runtime(runtime_lib), Runtime(runtime_lib)
    assert STATUS[fused.init(tflite)] == "OK" and fused.num_fused == 1
    assert STATUS[unfused.init(tflite, flags=NO_FUSE)] == "OK" and unfused.num_fused == 0
    rng = np.random.default_rng(6)
    for _ in range(4):
        xs = [rng.integers(-128, 128, (1, 4), dtype=np.int8), rng.integers(-128, 128, (1, 32), dtype=np.int8)]
        want = [o.tobytes() for o in tflm_run(tflite, xs, n_outputs=2)]
        assert [o.tobytes() for o in fused.run(xs)[:2]] == want
        assert [o.tobytes() for o in unfused.run(xs)[:2]] == want
