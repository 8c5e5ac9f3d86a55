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
