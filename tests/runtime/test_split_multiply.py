"""The v6-M arithmetic (64-bit product from 16-bit halves, EP_QMATH_SPLIT_MUL) built for the host gives the
same bytes as TFLM: AD01, FC with per-channel scales, and LOGISTIC/TANH over all inputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.bench.reference import ad01_path

from .oracle import tflm_run
from .rt import STATUS, Runtime, build
from .tflbuild import INT8, Graph, S

AD01 = ad01_path()  # shipped in bench/reference/, SHA-256 checked


@pytest.fixture(scope="module")
def split_rt(tmp_path_factory):
    return Runtime(build(tmp_path_factory.mktemp("split") / "libep_split.so", ["-O2", "-DEP_QMATH_SPLIT_MUL=1"]))


def test_split_multiply_ad01_and_activations(split_rt):
    if not AD01.exists():
        pytest.fail(f"{AD01} missing")
    ad = AD01.read_bytes()
    assert STATUS[split_rt.init(ad)] == "OK"
    x = np.random.default_rng(2).normal(0, 4, (1, 640)).astype(np.float32)
    assert np.array_equal(split_rt.run([x])[0].view(np.uint32), tflm_run(ad, [x])[0].view(np.uint32))
    allx = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    for code, oq in ((S.BuiltinOperator.LOGISTIC, (1 / 256, -128)), (S.BuiltinOperator.TANH, (1 / 128, 0))):
        for scale in np.geomspace(1e-3, 1.0, 8):
            g = Graph()
            a = g.tensor([1, 256], INT8, float(scale), 5)
            b = g.tensor([1, 256], INT8, *oq)
            g.inputs, g.outputs = [a], [b]
            g.op(code, [a], [b])
            buf = g.build()
            assert split_rt.init(buf) == 0
            assert np.array_equal(split_rt.run([allx])[0], tflm_run(buf, [allx])[0])
