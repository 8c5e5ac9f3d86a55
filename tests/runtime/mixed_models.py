"""Random single-op models of the mixed-precision kernels (issue 30): int4-weight and 16x8 FULLY_CONNECTED,
int8 <-> int16 QUANTIZE, int4-filter convolutions, and a 16x8 CNN's CONV_2D and int16 pools. ``tb`` is the
flatbuffer builder module (tests/runtime/tflbuild.py), passed in so the benchmark script can load it by path."""

from __future__ import annotations

import numpy as np

from edgeprune.export.precision_pack import TFL_INT4, TFL_INT16, TFL_INT64, pack_int4


def _raw_tensor(tb, g, shape, ttype, scales, data: bytes | None, name: str) -> int:
    """A tensor of a type tflbuild does not know (int4, int16, int64): raw bytes, symmetric quantisation."""
    t = tb.S.TensorT()
    t.shape, t.type, t.name, t.buffer = list(shape), ttype, name.encode(), 0
    q = tb.S.QuantizationParametersT()
    q.scale = [float(s) for s in np.atleast_1d(scales)]
    q.zeroPoint = [0] * len(q.scale)
    t.quantization = q
    if data is not None:
        b = tb.S.BufferT()
        b.data = np.frombuffer(data, dtype=np.uint8)
        g.buffers.append(b)
        t.buffer = len(g.buffers) - 1
    g.tensors.append(t)
    return len(g.tensors) - 1


def _weight_scales(rng, rows: int, per_channel: bool, base: float):
    return rng.uniform(0.5, 2.0, rows) * base if per_channel else base


def fc_int4(tb, rng, rows: int, depth: int, batches: int = 1, per_channel: bool = False, bias: bool = True,
            act: int = 0) -> tuple[bytes, np.ndarray]:
    """int8 input and output, int4 weights (full [-8, 7] range), int32 bias."""
    g = tb.Graph()
    s_in, zp_in = float(rng.uniform(0.01, 0.1)), int(rng.integers(-20, 20))
    x = g.tensor([batches, depth], tb.INT8, s_in, zp_in)
    w = rng.integers(-8, 8, (rows, depth))
    ws = _weight_scales(rng, rows, per_channel, float(rng.uniform(0.02, 0.2)))
    wi = _raw_tensor(tb, g, [rows, depth], TFL_INT4, ws, pack_int4(w).tobytes(), "w4")
    ins = [x, wi]
    if bias:
        ins.append(g.tensor([rows], tb.INT32, s_in * np.atleast_1d(ws), 0,
                            data=rng.integers(-3000, 3000, rows).astype(np.int32)))
    # Output scale from the sums' spread so the int8 outputs use their range (not all saturated).
    s_out = s_in * float(np.mean(ws)) * 8 * np.sqrt(depth) * 1.5
    y = g.tensor([batches, rows], tb.INT8, s_out, int(rng.integers(-10, 10)))
    g.inputs, g.outputs = [x], [y]
    g.op(tb.S.BuiltinOperator.FULLY_CONNECTED, ins, [y], fusedActivationFunction=act)
    return g.build(), rng.integers(-128, 128, (batches, depth), dtype=np.int8)


def fc_16x8(tb, rng, rows: int, depth: int, batches: int = 1, per_channel: bool = False, bias: str = "int64",
            act: int = 0) -> tuple[bytes, np.ndarray]:
    """int16 input and output (zero points 0), int8 weights, int64 / int32 / no bias."""
    g = tb.Graph()
    s_in = float(rng.uniform(1e-4, 1e-3))
    x = _raw_tensor(tb, g, [batches, depth], TFL_INT16, s_in, None, "x16")
    ws = _weight_scales(rng, rows, per_channel, float(rng.uniform(0.002, 0.02)))
    wi = g.tensor([rows, depth], tb.INT8, ws, 0, data=rng.integers(-127, 128, (rows, depth)).astype(np.int8))
    ins = [x, wi]
    bs = s_in * np.atleast_1d(ws)
    if bias == "int64":
        ins.append(_raw_tensor(tb, g, [rows], TFL_INT64, bs, rng.integers(-10**6, 10**6, rows).astype(np.int64).tobytes(), "b64"))
    elif bias == "int32":
        ins.append(g.tensor([rows], tb.INT32, bs, 0, data=rng.integers(-10**5, 10**5, rows).astype(np.int32)))
    s_out = s_in * float(np.mean(ws)) * 16384 * np.sqrt(depth) / 30000 * 127 * 1.5
    y = _raw_tensor(tb, g, [batches, rows], TFL_INT16, s_out, None, "y16")
    g.inputs, g.outputs = [x], [y]
    g.op(tb.S.BuiltinOperator.FULLY_CONNECTED, ins, [y], fusedActivationFunction=act)
    return g.build(), rng.integers(-32768, 32768, (batches, depth)).astype(np.int16)


def requant_i16(tb, rng, n: int, to_int16: bool) -> tuple[bytes, np.ndarray]:
    """QUANTIZE int8 -> int16 or int16 -> int8 with random scales."""
    g = tb.Graph()
    s8, zp8 = float(rng.uniform(0.005, 0.1)), int(rng.integers(-30, 30))
    s16 = float(rng.uniform(1e-5, 2e-3))
    t8 = g.tensor([1, n], tb.INT8, s8, zp8)
    t16 = _raw_tensor(tb, g, [1, n], TFL_INT16, s16, None, "t16")
    src, dst = (t8, t16) if to_int16 else (t16, t8)
    g.inputs, g.outputs = [src], [dst]
    g.op(tb.S.BuiltinOperator.QUANTIZE, [src], [dst])
    x = (rng.integers(-128, 128, (1, n), dtype=np.int8) if to_int16
         else rng.integers(-32768, 32768, (1, n)).astype(np.int16))
    return g.build(), x


def conv_int4(tb, rng, depthwise: bool = False, per_channel: bool = True, shape=(1, 7, 6, 5), kernel=(3, 3),
              oc: int = 9, stride=(1, 1), padding: int = 0, act: int = 0, bias: bool = True,
              bits: int = 4) -> tuple[bytes, np.ndarray]:
    """CONV_2D (or DEPTHWISE_CONV_2D, multiplier 1) with int8 input/output and an int4 filter (full [-8, 7] range,
    per-channel or per-tensor scales), int32 bias. ``padding``: 0 SAME, 1 VALID. ``bits=8``: the same values stored
    as an int8 filter (the int8 model of the same shape)."""
    n, h, w, c = shape
    kh, kw = kernel
    if depthwise:
        oc = c

    def out(size: int, k: int, s: int) -> int:
        return (size + s - 1) // s if padding == 0 else (size - k + s) // s

    oh, ow = out(h, kh, stride[0]), out(w, kw, stride[1])
    g = tb.Graph()
    s_in, zp_in = float(rng.uniform(0.01, 0.1)), int(rng.integers(-20, 20))
    x = g.tensor([n, h, w, c], tb.INT8, s_in, zp_in)
    wshape = [1, kh, kw, oc] if depthwise else [oc, kh, kw, c]
    wv = rng.integers(-8, 8, wshape)
    ws = _weight_scales(rng, oc, per_channel, float(rng.uniform(0.02, 0.2)))
    raw = pack_int4(wv).tobytes() if bits == 4 else wv.astype(np.int8).tobytes()
    wi = _raw_tensor(tb, g, wshape, TFL_INT4 if bits == 4 else tb.INT8, ws, raw, f"w{bits}")
    if per_channel and depthwise:
        g.tensors[wi].quantization.quantizedDimension = 3
    ins = [x, wi]
    if bias:
        ins.append(g.tensor([oc], tb.INT32, s_in * np.atleast_1d(ws), 0,
                            data=rng.integers(-3000, 3000, oc).astype(np.int32)))
    taps = kh * kw * (1 if depthwise else c)
    s_out = s_in * float(np.mean(ws)) * 8 * np.sqrt(taps) * 1.5
    y = g.tensor([n, oh, ow, oc], tb.INT8, s_out, int(rng.integers(-10, 10)))
    g.inputs, g.outputs = [x], [y]
    opts = dict(padding=padding, strideH=stride[0], strideW=stride[1], fusedActivationFunction=act)
    if depthwise:
        g.op(tb.S.BuiltinOperator.DEPTHWISE_CONV_2D, ins, [y], depthMultiplier=1, **opts)
    else:
        g.op(tb.S.BuiltinOperator.CONV_2D, ins, [y], **opts)
    return g.build(), rng.integers(-128, 128, (n, h, w, c), dtype=np.int8)


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
