"""MLPerf Tiny AD01 (QUANTIZE, 10 x FULLY_CONNECTED, DEQUANTIZE; float in/out) matches TFLM bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.bench.reference import ad01_path

from .oracle import tflm_interpreter
from .rt import STATUS

AD01 = ad01_path()  # shipped in bench/reference/, SHA-256 checked


@pytest.fixture(scope="module")
def ad01() -> bytes:
    if not AD01.exists():
        pytest.fail(f"{AD01} missing: it ships in bench/reference/")
    return AD01.read_bytes()


def test_ad01_bit_exact(rt, ad01):
    st = rt.init(ad01)
    assert st == 0, STATUS[st]
    assert rt.lib.ep_model_macs(rt.model) == 264_192  # figure published with the model
    used = rt.lib.ep_model_arena_used(rt.model)
    assert 0 < used < 64 * 1024
    it = tflm_interpreter(ad01, 300_000)
    rng = np.random.default_rng(0)
    for k in range(12):
        x = rng.normal(0, [0.5, 3.0, 30.0][k % 3], size=(1, 640)).astype(np.float32)
        it.set_input(x, 0)
        it.invoke()
        ref = np.array(it.get_output(0))
        out = rt.run([x])[0]
        assert out.dtype == np.float32 and out.shape == ref.shape
        assert np.array_equal(ref.view(np.uint32), out.view(np.uint32))


def test_ad01_arena_too_small(rt, ad01):
    assert STATUS[rt.init(ad01, arena_len=4096)] == "ARENA"
