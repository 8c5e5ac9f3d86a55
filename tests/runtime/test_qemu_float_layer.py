"""A float32 layer inside an int8 model (issue 30) in the real firmware under QEMU: a ConvNet with both convolutions
float32 (CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D in float: ep_convf.c) and a GRU with its second cell float32 (float
FULLY_CONNECTED and element-wise ops beside the fused int8 cell), both exported by ``export_model``, give TFLM's
bytes on M0 (soft float) and M4 (single-precision FPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeprune.export.pipeline import export_model
from edgeprune.host.models import ConvNet, StackedGRU

from .qemu_exact import qemu_mismatches

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.tf]


@pytest.fixture(scope="module")
def float_cases(tmp_path_factory) -> list[tuple[str, bytes, np.ndarray | list[np.ndarray]]]:
    tmp = tmp_path_factory.mktemp("float-layer")
    rng = np.random.default_rng(33)
    torch.manual_seed(6)
    cnn = ConvNet((8, 8), 1, [6, 8], 4).eval()
    res = export_model(cnn, rng.normal(size=(32, 8, 8, 1)).astype(np.float32), tmp / "cnn",
                       precision={"conv0": "float32", "conv1": "float32"})
    gru = StackedGRU(4, [12, 10], 3, 8).eval()
    walk = np.cumsum(rng.normal(scale=0.3, size=(64, 8, 4)), axis=1).astype(np.float32)
    res_g = export_model(gru, walk, tmp / "gru", precision={"gru1": "float32"})
    out: list[tuple[str, bytes, np.ndarray | list[np.ndarray]]] = []
    for k in range(3):
        out.append((f"cnn float conv0+conv1 {k}", res.read_tflite(),
                    rng.integers(-128, 128, res.manifest["inputs"][0]["shape"], dtype=np.int8)))
        out.append((f"gru float gru1 {k}", res_g.read_tflite(),
                    [rng.integers(-128, 128, i["shape"], dtype=np.int8) for i in res_g.manifest["inputs"]]))
    return out


@pytest.mark.parametrize("core", ["m0", "m4"])
def test_float32_layer_matches_tflm_in_qemu(core, tmp_path_factory, float_cases):
    assert qemu_mismatches(core, tmp_path_factory.mktemp(f"fw-float-{core}"), float_cases) == []
