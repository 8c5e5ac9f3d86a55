"""int8 LOGISTIC/TANH run from a 256-entry table per op, filled at init: each op owns its table (several
ops with different input quantisations in one model stay TFLM-exact), and the tables are in the arena
accounting (ep_model_arena_used), so an arena one byte short of it is refused."""

from __future__ import annotations

import numpy as np

from .oracle import tflm_run
from .rt import STATUS
from .tflbuild import INT8, Graph, S

ALL = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
TABLE_BYTES = 256
# (op, input scale, input zero point): distinct parameters so shared or swapped tables would show.
ACTS = [
    (S.BuiltinOperator.LOGISTIC, 0.05, 0),
    (S.BuiltinOperator.TANH, 0.02, -30),
    (S.BuiltinOperator.LOGISTIC, 0.11, 40),
    (S.BuiltinOperator.TANH, 0.007, 5),
]


def fan_out(k: int, width: int = 256) -> bytes:
    """One int8 input feeding the first ``k`` activations of ACTS through per-op requantisations."""
    g = Graph()
    x = g.tensor([1, width], INT8, 0.05, 0)
    outs = []
    for code, scale, zp in ACTS[:k]:
        q = g.tensor([1, width], INT8, scale, zp)
        g.op(S.BuiltinOperator.QUANTIZE, [x], [q])
        out_q = (1 / 256, -128) if code == S.BuiltinOperator.LOGISTIC else (1 / 128, 0)
        y = g.tensor([1, width], INT8, *out_q)
        g.op(code, [q], [y])
        outs.append(y)
    g.inputs, g.outputs = [x], outs
    return g.build()


def test_each_op_has_its_own_exact_table(rt):
    buf = fan_out(len(ACTS))
    assert STATUS[rt.init(buf)] == "OK"
    got = rt.run([ALL])
    ref = tflm_run(buf, [ALL], n_outputs=len(ACTS))
    assert len(got) == len(ACTS)
    for g_out, r_out in zip(got, ref, strict=True):
        np.testing.assert_array_equal(g_out, r_out)
    # Distinct parameters give distinct functions: a shared table would make two outputs equal.
    assert len({o.tobytes() for o in got}) == len(ACTS)
    # Re-invoking reads the same tables (nothing at invoke time may overwrite them).
    for g_out, again in zip(got, rt.run([ALL]), strict=True):
        np.testing.assert_array_equal(g_out, again)


def test_tables_are_counted_in_the_arena(rt):
    sizes = []
    for k in (1, 2):
        assert STATUS[rt.init(fan_out(k, width=16))] == "OK"
        sizes.append(rt.lib.ep_model_arena_used(rt.model))
    # One more op adds its table plus two 16-byte activations (requantised input, output), all live at once
    # because every output is a graph output and the planner keeps those for the whole invoke.
    assert sizes[1] - sizes[0] >= TABLE_BYTES
    buf = fan_out(2, width=16)
    assert STATUS[rt.init(buf, arena_len=sizes[1])] == "OK"
    assert STATUS[rt.init(buf, arena_len=sizes[1] - 1)] == "ARENA"

