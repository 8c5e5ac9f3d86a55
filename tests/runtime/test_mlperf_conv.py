"""MLPerf Tiny KWS (DS-CNN), IC (ResNet-8), VWW (MobileNetV1 0.25) and the streaming wake-word model: CONV_2D, DEPTHWISE_CONV_2D, ADD,
AVERAGE_POOL_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX; byte-identical to TFLM on random int8 inputs (host build)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.bench.reference import MLPERF, mlperf_bytes

from .oracle import tflm_interpreter
from .rt import STATUS

# Arena bytes the runtime plans (host build; the same plan on every target). TFLM's for comparison:
# 22,772 / 54,340 / 100,660 / 15,252 (bench/reference/README.md).
ARENA_MAX = {"kws": 24 * 1024, "ic": 57 * 1024, "vww": 116 * 1024, "sww": 18 * 1024}


@pytest.mark.parametrize("name", ["kws", "ic", "vww", "sww"])
def test_mlperf_conv_bit_exact(rt, name):
    ref_model = MLPERF[name]
    buf = mlperf_bytes(name)  # shipped in bench/reference/, SHA-256 checked
    st = rt.init(buf, arena_len=512 * 1024)
    assert st == 0, STATUS[st]
    assert rt.lib.ep_model_macs(rt.model) == ref_model.macs
    assert 0 < rt.lib.ep_model_arena_used(rt.model) <= ARENA_MAX[name]
    it = tflm_interpreter(buf, 400_000)
    rng = np.random.default_rng(0)
    for k in range(4):
        x = rng.integers(-128, 128, size=ref_model.input_shape, dtype=np.int8)
        if k == 0:
            x[:] = -128  # the all-minimum input
        it.set_input(x, 0)
        it.invoke()
        ref = np.array(it.get_output(0))
        out = rt.run([x])[0]
        assert out.dtype == np.int8 and out.shape == ref.shape
        assert np.array_equal(ref, out), (k, ref, out)


def test_kws_arena_too_small(rt):
    assert STATUS[rt.init(mlperf_bytes("kws"), arena_len=8192)] == "ARENA"
