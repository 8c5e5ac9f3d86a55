"""MLPerf Tiny KWS (DS-CNN: CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX)
matches TFLM byte for byte on random int8 inputs (host build)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.bench.reference import KWS_MACS, kws_bytes

from .oracle import tflm_interpreter
from .rt import STATUS


@pytest.fixture(scope="module")
def kws() -> bytes:
    return kws_bytes()  # shipped in bench/reference/, SHA-256 checked


def test_kws_bit_exact(rt, kws):
    st = rt.init(kws, arena_len=256 * 1024)
    assert st == 0, STATUS[st]
    assert rt.lib.ep_model_macs(rt.model) == KWS_MACS
    used = rt.lib.ep_model_arena_used(rt.model)
    assert 0 < used < 64 * 1024
    it = tflm_interpreter(kws, 200_000)
    rng = np.random.default_rng(0)
    for k in range(10):
        x = rng.integers(-128, 128, size=(1, 49, 10, 1), dtype=np.int8)
        if k == 0:
            x[:] = -128  # the all-minimum input: every window at the zero point's far end
        it.set_input(x, 0)
        it.invoke()
        ref = np.array(it.get_output(0))
        out = rt.run([x])[0]
        assert out.dtype == np.int8 and out.shape == ref.shape == (1, 12)
        assert np.array_equal(ref, out), (k, ref, out)


def test_kws_arena_too_small(rt, kws):
    assert STATUS[rt.init(kws, arena_len=8192)] == "ARENA"
