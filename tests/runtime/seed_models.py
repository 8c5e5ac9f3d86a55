"""Small valid models made with the flatbuffer builder (seeds for the fuzzer, fixtures for benches)."""

from __future__ import annotations

import numpy as np

from .tflbuild import INT8, INT32, Graph, S

OP = S.BuiltinOperator


def gru_like_cell(features: int = 4, hidden: int = 8, seed: int = 0) -> bytes:
    """x, h -> h': the exporter's op pattern (per-gate FCs on x and h, ADD, LOGISTIC, TANH, MUL, SUB)."""
    rng = np.random.default_rng(seed)
    g = Graph()
    x = g.tensor([1, features], INT8, 0.02, 3)
    h = g.tensor([1, hidden], INT8, 1 / 128, 0)

    def fc(src, depth, s_in):
        w = g.tensor([hidden, depth], INT8, 0.01, 0, data=rng.integers(-127, 128, (hidden, depth), dtype=np.int8))
        b = g.tensor([hidden], INT32, s_in * 0.01, 0, data=rng.integers(-200, 200, hidden, dtype=np.int32))
        y = g.tensor([1, hidden], INT8, 0.05, int(rng.integers(-10, 10)))
        g.op(OP.FULLY_CONNECTED, [src, w, b], [y])
        return y

    gates = []
    for _ in range(3):
        gates.append((fc(x, features, 0.02), fc(h, hidden, 1 / 128)))
    pre = []
    for a, b in gates:
        s = g.tensor([1, hidden], INT8, 0.08, 0)
        g.op(OP.ADD, [a, b], [s])
        pre.append(s)
    r = g.tensor([1, hidden], INT8, 1 / 256, -128)
    z = g.tensor([1, hidden], INT8, 1 / 256, -128)
    n = g.tensor([1, hidden], INT8, 1 / 128, 0)
    g.op(OP.LOGISTIC, [pre[0]], [r])
    g.op(OP.LOGISTIC, [pre[1]], [z])
    g.op(OP.TANH, [pre[2]], [n])
    d = g.tensor([1, hidden], INT8, 1 / 64, 0)
    g.op(OP.SUB, [h, n], [d])
    zd = g.tensor([1, hidden], INT8, 1 / 64, 0)
    g.op(OP.MUL, [z, d], [zd])
    h2 = g.tensor([1, hidden], INT8, 1 / 128, 0)
    g.op(OP.ADD, [n, zd], [h2])
    g.inputs, g.outputs = [x, h], [h2]
    return g.build()


def fc_square(n: int = 256, seed: int = 0) -> bytes:
    """One n x n int8 FULLY_CONNECTED with bias: the instructions/MAC benchmark model."""
    rng = np.random.default_rng(seed)
    g = Graph()
    x = g.tensor([1, n], INT8, 0.05, -3)
    w = g.tensor([n, n], INT8, 0.004, 0, data=rng.integers(-127, 128, (n, n), dtype=np.int8))
    b = g.tensor([n], INT32, 0.0002, 0, data=rng.integers(-5000, 5000, n, dtype=np.int32))
    y = g.tensor([1, n], INT8, 0.2, 4)
    g.inputs, g.outputs = [x], [y]
    g.op(OP.FULLY_CONNECTED, [x, w, b], [y])
    return g.build()


def _out_size(n: int, k: int, stride: int, padding: int) -> int:
    return (n + stride - 1) // stride if padding == S.Padding.SAME else (n - k) // stride + 1


def pool_2d(rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    """A random int8 MAX_POOL_2D or AVERAGE_POOL_2D and its input: every C mod 4 channel tail, the common 2x2 /
    stride-2 window, global windows (averages over more than 256 taps among them), windows clipped by SAME borders,
    fused ReLU / ReLU6."""
    code = OP.MAX_POOL_2D if rng.integers(2) else OP.AVERAGE_POOL_2D
    kind, c = int(rng.integers(3)), int(rng.integers(1, 41))
    if kind == 0:  # 2x2 / stride 2, an odd last row or column now and then (VALID drops it)
        h, w, fh, fw, sh, sw, padding = int(rng.integers(2, 11)), int(rng.integers(2, 11)), 2, 2, 2, 2, S.Padding.VALID
    elif kind == 1:  # global pool
        h, w = int(rng.integers(1, 21)), int(rng.integers(1, 21))
        fh, fw, sh, sw, padding = h, w, 1, 1, S.Padding.VALID
    else:
        h, w = int(rng.integers(2, 13)), int(rng.integers(2, 13))
        fh, fw = int(rng.integers(1, min(h, 5) + 1)), int(rng.integers(1, min(w, 5) + 1))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        padding = S.Padding.SAME if rng.integers(2) else S.Padding.VALID
    n = int(rng.integers(1, 3))
    scale, zp = float(rng.uniform(0.01, 0.3)), int(rng.integers(-128, 128))
    g = Graph()
    x = g.tensor([n, h, w, c], INT8, scale, zp)
    y = g.tensor([n, _out_size(h, fh, sh, padding), _out_size(w, fw, sw, padding), c], INT8, scale, zp)
    g.inputs, g.outputs = [x], [y]
    act = [S.ActivationFunctionType.NONE, S.ActivationFunctionType.RELU, S.ActivationFunctionType.RELU6]
    g.op(code, [x], [y], padding=padding, strideH=sh, strideW=sw, filterHeight=fh, filterWidth=fw,
         fusedActivationFunction=act[int(rng.integers(3))])
    return g.build(), rng.integers(-128, 128, (n, h, w, c), dtype=np.int8)


def conv_multiplier_above_one(rng: np.random.Generator, depthwise: bool) -> tuple[bytes, np.ndarray]:
    """A random 3x3-or-smaller SAME CONV_2D / DEPTHWISE_CONV_2D whose output scale lies below input x weight scale:
    requantisation multipliers above one (TFLM's left shift, the runtime's long path), odd depth and channel counts."""
    h, w, c = int(rng.integers(2, 9)), int(rng.integers(2, 9)), int(rng.integers(1, 40))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    oc = c if depthwise else int(rng.integers(1, 40))
    s_in, w_scale = float(rng.uniform(0.005, 0.2)), rng.uniform(0.002, 0.03, oc)
    g = Graph()
    x = g.tensor([1, h, w, c], INT8, s_in, int(rng.integers(-128, 128)))
    wshape = [1, kh, kw, oc] if depthwise else [oc, kh, kw, c]
    wt = g.tensor(wshape, INT8, w_scale, 0, data=rng.integers(-127, 128, wshape, dtype=np.int8),
                  qdim=3 if depthwise else 0)
    b = g.tensor([oc], INT32, s_in * w_scale, 0, data=rng.integers(-5000, 5000, oc, dtype=np.int32))
    y = g.tensor([1, h, w, oc], INT8, s_in * float(w_scale.min()) / float(rng.uniform(1.5, 400.0)),
                 int(rng.integers(-128, 128)))
    g.inputs, g.outputs = [x], [y]
    opts = dict(padding=S.Padding.SAME, strideH=1, strideW=1, dilationHFactor=1, dilationWFactor=1)
    if depthwise:
        g.op(OP.DEPTHWISE_CONV_2D, [x, wt, b], [y], depthMultiplier=1, **opts)
    else:
        g.op(OP.CONV_2D, [x, wt, b], [y], **opts)
    return g.build(), rng.integers(-128, 128, (1, h, w, c), dtype=np.int8)
