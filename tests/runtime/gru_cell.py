"""A streaming GRU cell converted by the real TFLite converter to full int8 (test helper; imports TF)."""

from __future__ import annotations

import numpy as np


def build_gru_cell(features: int = 4, hidden: int = 16, outputs: int = 3, seed: int = 0) -> bytes:
    """(x_t[1,F], h[1,H]) -> (y[1,C], h'[1,H]) with per-gate FCs, gate order r, z, n as nn.GRU."""
    import tensorflow as tf

    tf.random.set_seed(seed)
    rng = np.random.default_rng(seed)

    def w(i, o):
        return tf.constant(rng.normal(0, 0.5, size=(i, o)).astype(np.float32))

    def b(o):
        return tf.constant(rng.normal(0, 0.1, size=(o,)).astype(np.float32))

    wx = [w(features, hidden) for _ in range(3)]
    wh = [w(hidden, hidden) for _ in range(3)]
    bx = [b(hidden) for _ in range(3)]
    bh = [b(hidden) for _ in range(3)]
    wo, bo = w(hidden, outputs), b(outputs)

    @tf.function(input_signature=[tf.TensorSpec([1, features], tf.float32), tf.TensorSpec([1, hidden], tf.float32)])
    def step(x, h):
        r = tf.sigmoid(tf.matmul(x, wx[0]) + bx[0] + tf.matmul(h, wh[0]) + bh[0])
        z = tf.sigmoid(tf.matmul(x, wx[1]) + bx[1] + tf.matmul(h, wh[1]) + bh[1])
        n = tf.tanh(tf.matmul(x, wx[2]) + bx[2] + r * (tf.matmul(h, wh[2]) + bh[2]))
        h2 = n + z * (h - n)
        y = tf.matmul(h2, wo) + bo
        return y, h2

    def rep():
        for _ in range(64):
            yield [rng.uniform(-1.5, 1.5, size=(1, features)).astype(np.float32),
                   rng.uniform(-1, 1, size=(1, hidden)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([step.get_concrete_function()], step)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()
