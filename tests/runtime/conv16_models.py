"""Random single-op models of a 16x8 CNN's windowed ops (issue 30): CONV_2D with int16 activations and an int8
filter, MAX_POOL_2D and AVERAGE_POOL_2D on int16. ``tb`` is the flatbuffer builder module
(tests/runtime/tflbuild.py), passed in so a benchmark script can load it by path."""

from __future__ import annotations

import numpy as np

from edgeprune.export.precision_pack import TFL_INT16, TFL_INT64

from .mixed_models import _raw_tensor


def _out(size: int, k: int, s: int, padding: int, dil: int = 1) -> int:
    eff = (k - 1) * dil + 1
    return (size + s - 1) // s if padding == 0 else (size - eff + s) // s


def conv_16x8(tb, rng, shape=(1, 7, 6, 5), kernel=(3, 3), oc: int = 9, stride=(1, 1), padding: int = 0,
              act: int = 0, bias: str = "int64", per_channel: bool = True, dilation=(1, 1)) -> tuple[bytes, np.ndarray]:
    """CONV_2D: int16 input and output (zero points 0), int8 filter (per-channel or per-tensor scales), int64 /
    int32 / no bias. ``padding``: 0 SAME, 1 VALID. Returns the model and a random int16 input."""
    n, h, w, c = shape
    kh, kw = kernel
    oh, ow = _out(h, kh, stride[0], padding, dilation[0]), _out(w, kw, stride[1], padding, dilation[1])
    g = tb.Graph()
    s_in = float(rng.uniform(1e-4, 1e-3))
    x = _raw_tensor(tb, g, [n, h, w, c], TFL_INT16, s_in, None, "x16")
    ws = rng.uniform(0.5, 2.0, oc) * 0.01 if per_channel else 0.01
    wi = g.tensor([oc, kh, kw, c], tb.INT8, ws, 0, data=rng.integers(-127, 128, (oc, kh, kw, c)).astype(np.int8))
    ins = [x, wi]
    bs = s_in * np.atleast_1d(ws)
    if bias == "int64":
        ins.append(_raw_tensor(tb, g, [oc], TFL_INT64, bs, rng.integers(-10**6, 10**6, oc).astype(np.int64).tobytes(),
                               "b64"))
    elif bias == "int32":
        ins.append(g.tensor([oc], tb.INT32, bs, 0, data=rng.integers(-10**5, 10**5, oc).astype(np.int32)))
    # Output scale from the sums' spread so the int16 outputs use their range (not all saturated).
    s_out = s_in * float(np.mean(ws)) * 16384 * np.sqrt(kh * kw * c) / 30000 * 127 * 1.5
    y = _raw_tensor(tb, g, [n, oh, ow, oc], TFL_INT16, s_out, None, "y16")
    g.inputs, g.outputs = [x], [y]
    g.op(tb.S.BuiltinOperator.CONV_2D, ins, [y], padding=padding, strideH=stride[0], strideW=stride[1],
         dilationHFactor=dilation[0], dilationWFactor=dilation[1], fusedActivationFunction=act)
    return g.build(), rng.integers(-32768, 32768, (n, h, w, c)).astype(np.int16)


def pool_16(tb, rng, is_max: bool, shape=(1, 8, 8, 4), window=(2, 2), stride=(2, 2), padding: int = 1,
            act: int = 0) -> tuple[bytes, np.ndarray]:
    """MAX_POOL_2D or AVERAGE_POOL_2D on int16 (one scale both sides, zero point 0)."""
    n, h, w, c = shape
    oh, ow = _out(h, window[0], stride[0], padding), _out(w, window[1], stride[1], padding)
    g = tb.Graph()
    s = float(rng.uniform(1e-4, 1e-3))
    x = _raw_tensor(tb, g, [n, h, w, c], TFL_INT16, s, None, "x16")
    y = _raw_tensor(tb, g, [n, oh, ow, c], TFL_INT16, s, None, "y16")
    g.inputs, g.outputs = [x], [y]
    code = tb.S.BuiltinOperator.MAX_POOL_2D if is_max else tb.S.BuiltinOperator.AVERAGE_POOL_2D
    g.op(code, [x], [y], padding=padding, strideH=stride[0], strideW=stride[1], filterHeight=window[0],
         filterWidth=window[1], fusedActivationFunction=act)
    return g.build(), rng.integers(-32768, 32768, (n, h, w, c)).astype(np.int16)
