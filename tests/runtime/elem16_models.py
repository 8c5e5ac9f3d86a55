"""Single-op int16 element-wise models (issue 30: the ops of a 16x8 recurrent cell): ADD, SUB, MUL, LOGISTIC and
TANH with int16 inputs and outputs at chosen scales, and a small 16x8 GRU cell from the converter. ``tb`` is the
flatbuffer builder module (tests/runtime/tflbuild.py), passed in so scripts can load it by path."""

from __future__ import annotations

import numpy as np

from edgeprune.export.precision_pack import TFL_INT16

from .mixed_models import _raw_tensor

#: Every int16 value, one row: LOGISTIC / TANH are checked on their whole input domain.
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16).reshape(1, -1)


def unary16(tb, builtin: int, s_in: float, s_out: float = 1.0 / 32768, n: int = 65536) -> bytes:
    """LOGISTIC or TANH, int16 [1, n] -> int16 [1, n], zero points 0 (TFLM's int16 kernels require them)."""
    g = tb.Graph()
    x = _raw_tensor(tb, g, [1, n], TFL_INT16, s_in, None, "x16")
    y = _raw_tensor(tb, g, [1, n], TFL_INT16, s_out, None, "y16")
    g.inputs, g.outputs = [x], [y]
    g.op(builtin, [x], [y])
    return g.build()


def binary16(tb, builtin: int, scales: tuple[float, float, float], n: int, act: int = 0) -> bytes:
    """ADD, SUB or MUL, two int16 [1, n] inputs -> int16 [1, n], zero points 0, fused activation ``act``."""
    g = tb.Graph()
    a = _raw_tensor(tb, g, [1, n], TFL_INT16, scales[0], None, "a16")
    b = _raw_tensor(tb, g, [1, n], TFL_INT16, scales[1], None, "b16")
    y = _raw_tensor(tb, g, [1, n], TFL_INT16, scales[2], None, "y16")
    g.inputs, g.outputs = [a, b], [y]
    g.op(builtin, [a, b], [y], fusedActivationFunction=act)
    return g.build()


def gru16_cell(work_dir: str, hidden: int = 16, features: int = 4, layers: int = 1, seed: int = 0,
               sizes: list[int] | None = None) -> bytes:
    """A small StackedGRU's streaming step converted by the real converter to 16x8 (every activation int16, int8
    weights, int64 biases), as ``bench/scripts/mixed_precision.py gru16`` makes the weather GRU's. ``sizes``: the
    layers' hidden sizes instead of ``layers`` x ``hidden``. Inputs x_t, h_0, h_1, ...; outputs y, h_0', h_1', ..."""
    import torch

    from edgeprune.export import precision as P
    from edgeprune.host.models.gru import StackedGRU

    torch.manual_seed(seed)
    model = StackedGRU(features, list(sizes or [hidden] * layers), 3, seq_len=10).eval()
    calib = np.random.default_rng(seed).normal(size=(64, 10, features)).astype(np.float32)
    tflite, _ = P.whole_model_16x8(model, calib, work_dir)
    return tflite


def tflm_sequence16(tflite: bytes, xs: np.ndarray, pairs: list[tuple[int, int]], carry=None) -> list[np.ndarray]:
    """TFLM run step by step over the int16 stream ``xs`` ([T, 1, F], input 0), each pair's output carried to its
    input with ``carry(value, scale_from, scale_to)`` (default ``bench.qmath.requantize16``, the device's carry);
    the states start at 0. Returns every output of the last step."""
    from edgeprune.bench.qmath import requantize16

    from .oracle import tflm_interpreter

    carry = carry or requantize16
    it = tflm_interpreter(tflite)
    n_out = len(pairs) + 1  # the readout, then each layer's new state
    s_out = {o: float(it.get_output_details(o)["quantization_parameters"]["scales"][0]) for o, _ in pairs}
    s_in = {i: float(it.get_input_details(i)["quantization_parameters"]["scales"][0]) for _, i in pairs}
    state = {i: np.zeros(it.get_input_details(i)["shape"], np.int16) for _, i in pairs}
    outs: list[np.ndarray] = []
    for x in xs:
        it.set_input(np.ascontiguousarray(x), 0)
        for i, h in state.items():
            it.set_input(h, i)
        it.invoke()
        outs = [np.array(it.get_output(k)) for k in range(n_out)]
        state = {i: carry(outs[o], s_out[o], s_in[i]).reshape(state[i].shape) for o, i in pairs}
    return outs
