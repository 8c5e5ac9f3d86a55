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


def gru16_cell(work_dir: str, hidden: int = 16, features: int = 4, layers: int = 1, seed: int = 0) -> bytes:
    """A small StackedGRU's streaming step converted by the real converter to 16x8 (every activation int16, int8
    weights, int64 biases), as ``bench/scripts/mixed_precision.py gru16`` makes the weather GRU's."""
    import torch

    from edgeprune.export import precision as P
    from edgeprune.host.models.gru import StackedGRU

    torch.manual_seed(seed)
    model = StackedGRU(features, [hidden] * layers, 3, seq_len=10).eval()
    calib = np.random.default_rng(seed).normal(size=(64, 10, features)).astype(np.float32)
    tflite, _ = P.whole_model_16x8(model, calib, work_dir)
    return tflite
