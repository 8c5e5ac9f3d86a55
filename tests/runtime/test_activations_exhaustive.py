"""LOGISTIC and TANH int8: all 256 inputs x many input scales and zero points, byte-identical to TFLM."""

from __future__ import annotations

import numpy as np
import pytest

from .oracle import tflm_run
from .rt import STATUS
from .tflbuild import INT8, Graph, S

ALL = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
SCALES = [float(s) for s in np.geomspace(1e-4, 2.0, 24)] + [float(s) for s in np.random.default_rng(7).uniform(1e-3, 0.5, 16)]
ZPS = (-128, -7, 0, 50, 127)


@pytest.mark.parametrize(
    "code,out_q", [(S.BuiltinOperator.LOGISTIC, (1 / 256, -128)), (S.BuiltinOperator.TANH, (1 / 128, 0))], ids=["logistic", "tanh"]
)
def test_all_inputs_all_scales(rt, code, out_q):
    mismatches = []
    seen: set[int] = set()
    for scale in SCALES:
        for zp in ZPS:
            g = Graph()
            a = g.tensor([1, 256], INT8, scale, zp)
            b = g.tensor([1, 256], INT8, *out_q)
            g.inputs, g.outputs = [a], [b]
            g.op(code, [a], [b])
            buf = g.build()
            ref = tflm_run(buf, [ALL])[0]
            st = rt.init(buf)
            assert st == 0, STATUS[st]
            out = rt.run([ALL])[0]
            seen.update(int(v) for v in np.unique(out))
            if not np.array_equal(ref, out):
                mismatches.append((scale, zp, int((ref != out).sum())))
    assert not mismatches, mismatches[:5]
    # The sweep must reach saturation on both ends and the exact midpoint, or it tests too little.
    assert {-128, 127} <= seen and len(seen) > 200


def test_wrong_output_quantisation_is_rejected(rt):
    g = Graph()
    a = g.tensor([1, 8], INT8, 0.1, 0)
    b = g.tensor([1, 8], INT8, 1 / 100, -128)
    g.inputs, g.outputs = [a], [b]
    g.op(S.BuiltinOperator.LOGISTIC, [a], [b])
    assert STATUS[rt.init(g.build())] == "QUANT"
