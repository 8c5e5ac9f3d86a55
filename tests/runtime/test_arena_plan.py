"""Arena plan (issue 19): with EP_RT_INIT_CONSUME_INPUTS graph inputs end at their last reader in single-step mode
(TFLM's plan), otherwise and in sequence mode they live for the whole invoke; the planned arena of the MLPerf Tiny
models against TFLM's."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.bench.firmware_build import CONSUME_INPUTS as CONSUME
from edgeprune.bench.reference import TFLM_ARENA as TFLM_ARENA_REF_CMSIS
from edgeprune.bench.reference import mlperf_bytes

from .oracle import tflm_interpreter, tflm_run
from .rt import STATUS
from .tflbuild import INT8, INT32, Graph, S

OP = S.BuiltinOperator

# TFLM's arena_used_bytes() with the reference kernels on Cortex-M (32-bit; bench/reference/README.md).
TFLM_ARENA = {name: TFLM_ARENA_REF_CMSIS[name][0] for name in ("kws", "ic", "vww", "sww")}


@pytest.mark.parametrize("name", list(TFLM_ARENA))
def test_arena_not_larger_than_tflm(rt, name):
    """Met for KWS and SWW by the convolutions' int8 shifts (9 bytes per output channel, TFLM 8; ep_window.c): their
    activations already plan at the lower bound (the largest sum of tensors live at one op)."""
    st = rt.init(mlperf_bytes(name), arena_len=512 * 1024, flags=CONSUME)
    assert st == 0, STATUS[st]
    assert rt.lib.ep_model_arena_used(rt.model) <= TFLM_ARENA[name]


@pytest.mark.parametrize("core", ["m4", "m7", "m33"])
def test_mlperf_arena_not_larger_than_tflm_on_dsp_cores(core):
    """Every MLPerf Tiny model, AD01 included, as the device plans it (the host planner built for the core, which
    test_device_exact checks against the device): on DSP cores the FCs read the model's bias and the FPU edges keep
    no tables, so AD01 needs its activations only (TFLM: 4,816 B with reference kernels)."""
    from edgeprune.bench.firmware_build import plan_model
    from edgeprune.bench.reference import ad01_bytes

    for name in ("ad01", *TFLM_ARENA):
        tflite = ad01_bytes() if name == "ad01" else mlperf_bytes(name)
        arena = plan_model(tflite, f"qemu-{core}", flags=CONSUME).arena
        assert arena <= TFLM_ARENA_REF_CMSIS[name][0], (name, arena)


@pytest.mark.parametrize("name", list(TFLM_ARENA))
def test_consumed_inputs_plan_is_tflm_exact(rt, name):
    """The smaller plan on the real graphs (IC's residual ADDs read a block input again), inputs written per invoke."""
    buf = mlperf_bytes(name)
    st = rt.init(buf, arena_len=512 * 1024, flags=CONSUME)
    assert st == 0, STATUS[st]
    it = tflm_interpreter(buf, 400_000)
    shape = tuple(it.get_input_details(0)["shape"])
    rng = np.random.default_rng(5)
    for _ in range(2):
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        it.set_input(x, 0)
        it.invoke()
        assert np.array_equal(rt.run([x])[0], np.array(it.get_output(0)))


def _fc(g: Graph, rng, x: int, n: int, scale: float) -> int:
    w = g.tensor([n, n], INT8, 0.004, 0, data=rng.integers(-127, 128, (n, n), dtype=np.int8))
    b = g.tensor([n], INT32, scale * 0.004, 0, data=rng.integers(-3000, 3000, n, dtype=np.int32))
    y = g.tensor([1, n], INT8, 0.25, -2)
    g.op(OP.FULLY_CONNECTED, [x, w, b], [y])
    return y


def chain(n: int, residual: bool, seed: int = 0) -> bytes:
    """x -> FC -> FC -> FC (-> ADD x): with `residual` the input is read again by the last op."""
    rng = np.random.default_rng(seed)
    g = Graph()
    x = g.tensor([1, n], INT8, 0.05, -3)
    h = x
    for _ in range(3):
        h = _fc(g, rng, h, n, 0.05 if h == x else 0.25)
    if residual:
        y = g.tensor([1, n], INT8, 0.3, 1)
        g.op(OP.ADD, [h, x], [y])
        h = y
    g.inputs, g.outputs = [x], [h]
    return g.build()


def test_input_read_by_a_later_op_is_not_overwritten(rt):
    """The residual ADD reads x after two FCs whose outputs would fit in x's bytes if x ended at op 0."""
    model = chain(64, residual=True)
    st = rt.init(model, flags=CONSUME)
    assert st == 0, STATUS[st]
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.integers(-128, 128, (1, 64), dtype=np.int8)
        assert np.array_equal(rt.run([x])[0], tflm_run(model, [x])[0])


def test_default_keeps_the_inputs_for_another_invoke(rt):
    model = chain(64, residual=False)
    assert rt.init(model) == 0
    x = np.random.default_rng(4).integers(-128, 128, (1, 64), dtype=np.int8)
    ref = tflm_run(model, [x])[0]
    assert np.array_equal(rt.run([x])[0], ref)
    assert rt.invoke() == 0  # the input is not written again
    assert np.array_equal(rt.output(0), ref)
    keep = rt.lib.ep_model_arena_used(rt.model)
    assert rt.init(model, flags=CONSUME) == 0
    assert rt.lib.ep_model_arena_used(rt.model) == keep - 64  # x's bytes go to the second FC's output


def test_single_step_reuses_the_input_and_sequence_mode_keeps_it(rt):
    model = chain(64, residual=False)
    assert rt.init(model, flags=CONSUME) == 0
    single = rt.lib.ep_model_arena_used(rt.model)
    # Sequence mode: every input lives for the whole invoke, plus the staging of 3 steps of x.
    assert rt.set_sequence(3, 0, []) == 0
    seq = rt.lib.ep_model_arena_used(rt.model)
    assert seq >= single + 64 + 3 * 64
    assert rt.set_sequence(1, 0, []) == 0  # back to single-step mode: the smaller plan again
    assert rt.lib.ep_model_arena_used(rt.model) == single
    x = np.random.default_rng(2).integers(-128, 128, (1, 64), dtype=np.int8)
    assert np.array_equal(rt.run([x])[0], tflm_run(model, [x])[0])


def test_sequence_plan_that_does_not_fit_keeps_the_single_step_model(rt):
    model = chain(64, residual=False)
    assert rt.init(model, flags=CONSUME) == 0
    single = rt.lib.ep_model_arena_used(rt.model)
    st = rt.set_sequence(100_000, 0, [])
    assert STATUS[st] == STATUS[-12]  # EP_RT_ERR_ARENA
    assert rt.lib.ep_model_arena_used(rt.model) == single
    x = np.random.default_rng(3).integers(-128, 128, (1, 64), dtype=np.int8)
    assert np.array_equal(rt.run([x])[0], tflm_run(model, [x])[0])
