"""Same-shape int8 ADD/SUB large enough for the table path (ep_add.c: per-invoke rescale tables of both inputs, the
output rescale per element; DSP: four outputs per word) give TFLM's bytes: on the host build (the C path) over random
scales, zero points, every fused activation and lengths that leave a tail of 1-3 elements, and in the real firmware
under QEMU on a DSP core (M4) and on v6-M (M0)."""

from __future__ import annotations

import numpy as np
import pytest

from .oracle import tflm_run
from .qemu_exact import qemu_mismatches
from .rt import STATUS
from .tflbuild import INT8, Graph, S

OP = S.BuiltinOperator
ACT = S.ActivationFunctionType
# 512 elements is the table path's threshold; the others leave tails of 3, 1 and 2 after the blocks of four.
SHAPES = [(1, 8, 8, 8), (1, 23, 23, 3), (1, 16, 16, 32), (2, 9, 7, 9)]


def _q(rng: np.random.Generator, lo: float, hi: float) -> tuple[float, int]:
    return float(rng.uniform(lo, hi)), int(rng.integers(-128, 128))


def binary_model(rng: np.random.Generator, code: int, shape: tuple[int, ...], act: int,
                 const_b: bool, ties: bool = False) -> bytes:
    """ADD or SUB of two int8 tensors of one shape (the second a constant when `const_b`: one model input).
    `ties`: both inputs at scale s, the output at 2 s, so every odd sum of the two inputs (less their zero points)
    lands exactly halfway between two outputs and the rounding's direction decides the byte."""
    g = Graph()
    s = float(rng.uniform(0.002, 0.2))
    qa, qb, qy = ((s, int(rng.integers(-128, 128))), (s, int(rng.integers(-128, 128))),
                  (2 * s, int(rng.integers(-20, 20)))) if ties else (_q(rng, 0.002, 0.5), _q(rng, 0.002, 0.5),
                                                                     _q(rng, 0.002, 0.5))
    a = g.tensor(list(shape), INT8, *qa)
    data = rng.integers(-128, 128, size=shape, dtype=np.int8) if const_b else None
    b = g.tensor(list(shape), INT8, *qb, data=data)
    y = g.tensor(list(shape), INT8, *qy)
    g.inputs, g.outputs = ([a] if const_b else [a, b]), [y]
    g.op(code, [a, b], [y], fusedActivationFunction=act)
    return g.build()


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("code", [OP.ADD, OP.SUB])
def test_addsub_tables_host(rt, seed, code):
    rng = np.random.default_rng(3100 + seed * 2 + code)
    shape = SHAPES[seed % len(SHAPES)]
    act = [ACT.NONE, ACT.RELU, ACT.RELU6][seed % 3] if seed < 4 else ACT.NONE  # ties: negative halves unclamped
    buf = binary_model(rng, code, shape, act, const_b=False, ties=seed >= 4)
    x = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(2)]
    x[0].flat[:4] = [-128, 127, -128, 127]  # the tables' ends
    x[1].flat[:4] = [-128, -128, 127, 127]
    ref = tflm_run(buf, x)[0]
    st = rt.init(buf)
    assert st == 0, STATUS[st]
    out = rt.run(x)[0]
    assert np.array_equal(ref, out), f"{int((ref != out).sum())} of {ref.size} differ"


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("core", ["m4", "m0"])
def test_addsub_tables_firmware(core, tmp_path):
    rng = np.random.default_rng(31)
    cases = []
    for i in range(6):
        shape, code = SHAPES[i % len(SHAPES)], [OP.ADD, OP.SUB][i % 2]
        act = [ACT.NONE, ACT.RELU, ACT.RELU6][i % 3] if i < 3 else ACT.NONE
        buf = binary_model(rng, code, shape, act, const_b=True, ties=i >= 3)
        cases.append((f"{'ADD' if code == OP.ADD else 'SUB'} {shape}", buf,
                      rng.integers(-128, 128, size=shape, dtype=np.int8)))
    assert qemu_mismatches(core, tmp_path / "pio", cases) == []
