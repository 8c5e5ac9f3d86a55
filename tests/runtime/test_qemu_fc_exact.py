"""Random int8 FULLY_CONNECTED models in the real firmware under QEMU give TFLM's bytes on the paths the arena work
(issue 31) added: the model's bias read in place with the input zero point subtracted while widening (DSP: SSUB16,
depth a multiple of 4; M3: an int16 copy), the folded bias elsewhere (depth tails on DSP, per-channel weights, no
bias), and the short SMMULR requantisation (right shift 1-22, accumulator bounded below 2^30) or the long one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from .qemu_exact import qemu_mismatches
from .tflbuild import INT8, INT32, Graph, S

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
ACT = S.ActivationFunctionType
ACTS = [ACT.NONE, ACT.RELU, ACT.RELU6, ACT.RELU_N1_TO_1]
N_CASES = 36


def fc_case(rng: np.random.Generator, k: int) -> tuple[str, bytes, np.ndarray, bool]:
    """One random FC and its input; the flag says whether its constants allow the short requantisation."""
    batch = int(rng.integers(1, 4))
    depth = int(rng.integers(1, 40)) * 4 if k % 3 else int(rng.integers(1, 150))  # two of three: no depth tail
    rows = int(rng.integers(1, 70))
    per_channel, has_bias = k % 7 == 3, k % 5 != 4
    s_in, z_in = float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128))
    w_scale = float(rng.uniform(0.001, 0.02))
    # Output scales from large (short right shifts) to tiny (shifts beyond 22: the long requantisation).
    s_out = float(s_in * w_scale * 2.0 ** rng.uniform(-2, 26))
    if k % 6 == 5:  # power-of-two scales: the multiplier is exactly 1/2, so rounding ties are everywhere
        s_in, w_scale = 2.0**-6, 2.0**-7
        s_out = 2.0 ** (-13 + int(rng.integers(1, 12)))
    big = k % 4 == 1  # biases near the 2^30 bound of the short path, on both sides of it
    lim = 2**30 - depth * 32640 + int(rng.integers(-4096, 4096)) if big else 3000
    bias = rng.integers(-abs(lim), abs(lim), size=rows, dtype=np.int64)
    if big:
        bias[0] = lim if lim > 0 else -lim
    g = Graph()
    x = g.tensor([batch, depth], INT8, s_in, z_in)
    wq = rng.uniform(0.5, 1.5, size=rows) * w_scale if per_channel else w_scale
    w = g.tensor([rows, depth], INT8, wq, 0, data=rng.integers(-127, 128, (rows, depth), dtype=np.int8))
    inputs = [x, w]
    if has_bias:
        inputs.append(g.tensor([rows], INT32, s_in * np.atleast_1d(wq), 0,
                               data=np.clip(bias, -2**31, 2**31 - 1).astype(np.int32)))
    z_out = int(rng.integers(-128, 128))
    y = g.tensor([batch, rows], INT8, s_out, z_out)
    g.inputs, g.outputs = [x], [y]
    act = ACTS[k % len(ACTS)]
    g.op(S.BuiltinOperator.FULLY_CONNECTED, inputs, [y], fusedActivationFunction=act)
    shift = math.frexp(s_in * w_scale / s_out)[1]  # TFLM's shift of a per-tensor multiplier
    bound = (max(abs(int(v)) for v in bias) if has_bias else 0) + depth * 32640
    short = not per_channel and 1 <= -shift <= 22 and bound < 2**30
    name = f"fc{k}{' ties' if k % 6 == 5 else ''} b{batch} d{depth} r{rows} act{act} pc{int(per_channel)} bias{int(has_bias)} shift{shift}"
    return name, g.build(), rng.integers(-128, 128, (batch, depth), dtype=np.int8), short


def cases() -> list[tuple[str, bytes, np.ndarray, bool]]:
    rng = np.random.default_rng(31)
    return [fc_case(rng, k) for k in range(N_CASES)]


def test_cases_cover_both_requantisations_and_tails():
    cs = cases()
    assert sum(c[3] for c in cs) >= 8 and sum(not c[3] for c in cs) >= 8
    assert any(c[2].shape[1] % 4 for c in cs) and any("pc1" in c[0] for c in cs) and any("bias0" in c[0] for c in cs)
    assert sum(c[3] and "ties" in c[0] for c in cs) >= 3


@pytest.mark.parametrize("core", ["m3", "m4", "m33"])
def test_random_fully_connected_bit_exact(core, tmp_path):
    bad = qemu_mismatches(core, tmp_path / "pio", [(n, b, x) for n, b, x, _ in cases()])
    assert not bad, "\n".join(bad)
