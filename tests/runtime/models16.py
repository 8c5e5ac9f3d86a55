"""Random single-op models of the int16 DEPTHWISE_CONV_2D and SOFTMAX kernels (issue 30: ep_dwconv16.c,
ep_softmax16.c). ``tb`` is the flatbuffer builder module (tests/runtime/tflbuild.py), passed in so the benchmark script
can load this file by path."""

from __future__ import annotations

import numpy as np

from edgeprune.export.precision_pack import TFL_INT16, TFL_INT64

from .mixed_models import _out, _raw_tensor


def dwconv_16x8(tb, rng, shape=(1, 7, 6, 5), kernel=(3, 3), dm: int = 1, stride=(1, 1), padding: int = 0,
                act: int = 0, bias: str = "int64", per_channel: bool = True, dilation=(1, 1),
                w_values=None, out_ratio: float | None = None, bias_values=None) -> tuple[bytes, np.ndarray]:
    """DEPTHWISE_CONV_2D: int16 input and output (zero points 0), int8 filter [1, kh, kw, c * dm] (per-channel or
    per-tensor scales), int64 / int32 / no bias. ``padding``: 0 SAME, 1 VALID. ``w_values``: the filter (default
    random in [-127, 127]); ``out_ratio``: the output scale as this multiple of input x mean filter scale (default:
    from the sums' spread); ``bias_values``: the int64 bias (default random). Returns the model and a random int16
    input."""
    n, h, w, c = shape
    kh, kw = kernel
    oc = c * dm
    oh, ow = _out(h, kh, stride[0], padding, dilation[0]), _out(w, kw, stride[1], padding, dilation[1])
    g = tb.Graph()
    s_in = float(rng.uniform(1e-4, 1e-3))
    x = _raw_tensor(tb, g, [n, h, w, c], TFL_INT16, s_in, None, "x16")
    ws = rng.uniform(0.5, 2.0, oc) * 0.01 if per_channel else 0.01
    wv = rng.integers(-127, 128, (1, kh, kw, oc)) if w_values is None else w_values
    wi = g.tensor([1, kh, kw, oc], tb.INT8, ws, 0, data=np.asarray(wv).astype(np.int8), qdim=3)
    ins = [x, wi]
    bs = s_in * np.atleast_1d(ws)
    if bias == "int64":
        bv = rng.integers(-10**6, 10**6, oc) if bias_values is None else bias_values
        ins.append(_raw_tensor(tb, g, [oc], TFL_INT64, bs, np.asarray(bv).astype(np.int64).tobytes(), "b64"))
    elif bias == "int32":
        ins.append(g.tensor([oc], tb.INT32, bs, 0, data=rng.integers(-10**5, 10**5, oc).astype(np.int32)))
    # Output scale from the sums' spread so the int16 outputs use their range (not all saturated).
    s_out = s_in * float(np.mean(ws)) * (16384 * np.sqrt(kh * kw) / 30000 * 127 * 1.5 if out_ratio is None else out_ratio)
    y = _raw_tensor(tb, g, [n, oh, ow, oc], TFL_INT16, s_out, None, "y16")
    g.inputs, g.outputs = [x], [y]
    g.op(tb.S.BuiltinOperator.DEPTHWISE_CONV_2D, ins, [y], padding=padding, strideH=stride[0], strideW=stride[1],
         depthMultiplier=dm, dilationHFactor=dilation[0], dilationWFactor=dilation[1], fusedActivationFunction=act)
    return g.build(), rng.integers(-32768, 32768, (n, h, w, c)).astype(np.int16)


def softmax_16(tb, shape, scale: float, beta: float = 1.0, out_scale: float = 1.0 / 32768) -> bytes:
    """SOFTMAX int16 -> int16 over the last dimension; TFLM's output quantisation (1/32768, zero point 0)."""
    g = tb.Graph()
    x = _raw_tensor(tb, g, list(shape), TFL_INT16, scale, None, "x16")
    y = _raw_tensor(tb, g, list(shape), TFL_INT16, out_scale, None, "y16")
    g.inputs, g.outputs = [x], [y]
    g.op(tb.S.BuiltinOperator.SOFTMAX, [x], [y], beta=beta)
    return g.build()


def converter_dw_softmax_16x8(seed: int = 0) -> bytes:
    """A model as the TFLite converter's own 16x8 mode writes it (EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_
    WEIGHTS_INT8: int64 biases, per-channel filter scales, Q15 softmax, int16 I/O): DEPTHWISE_CONV_2D multiplier 2 +
    ReLU, DEPTHWISE_CONV_2D stride 2 VALID, RESHAPE, FULLY_CONNECTED, SOFTMAX, on an 8 x 8 x 4 input."""
    import tensorflow as tf

    tf.random.set_seed(seed)
    model = tf.keras.Sequential([
        tf.keras.layers.Input((8, 8, 4), batch_size=1),
        tf.keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu"),
        tf.keras.layers.DepthwiseConv2D(3, strides=2, padding="valid"),
        tf.keras.layers.Flatten(), tf.keras.layers.Dense(10), tf.keras.layers.Softmax()])
    rng = np.random.default_rng(seed)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.normal(0, 1, (1, 8, 8, 4)).astype(np.float32)] for _ in range(20))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int16
    return conv.convert()
