"""float32 layers inside an int8 model (issue 30): the converter's own selective quantisation.

The converter calibrates the float model (``to_tflite.convert_tflite(..., calibrate_only=True)``) and then quantises
it with ``tensorflow.lite.python.convert.mlir_quantize``, told to leave the chosen layers' ops in float
(``denylisted_nodes``: the names of their output tensors), which is what ``tf.lite.experimental.QuantizationDebugger``
does. The float ops keep the ORIGINAL float weights and biases; the quantiser inserts a DEQUANTIZE (int8 -> float)
where a float op reads an int8 value and a QUANTIZE (float -> int8) where an int8 op or a graph output reads a float
one, with the ranges the int8 export calibrates. Every other op is quantised exactly as the plain int8 conversion
quantises it (same calibration, same quantiser call), so int4/16x8 rewrites of other layers still apply afterwards
(:func:`weighted_layer_ops` maps their ops in the mixed model).

Which ops a layer owns: its weighted ops by :func:`precision.model_layer_ops` (recurrent cells by dataflow from the
state inputs, feed-forward layers in order), then every other op takes the layer of the first input another op of
the graph produced, or of the graph input it reads: a GRU/LSTM cell's gates and element-wise ops, a convolution's
pool, follow their FULLY_CONNECTED / CONV_2D.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgeprune.bench.errors import ExportError
from edgeprune.export import precision as mixed
from edgeprune.export import to_tflite
from edgeprune.export.graph import ExportGraph
from edgeprune.export.precision_pack import TFL_FLOAT32, TFL_INT8
from edgeprune.export.slim import pack_aligned


def layer_of_ops(model: Any, tflite: bytes, output_names: Sequence[str]) -> dict[int, str]:
    """Operator index -> config layer of every op of ``tflite`` (a calibrated or converted model of ``model``).

    :param model: the canonical model exported (``StackedGRU``/``StackedLSTM``/``MLP``/``ConvNet``)
    :param tflite: its flatbuffer, before any QUANTIZE/DEQUANTIZE of a mixed model is inserted
    :param output_names: the graph outputs' names by position
    :raises ExportError: (stage ``tflite``) an op no layer can be found for
    """
    owner = dict(mixed.model_layer_ops(model, tflite, output_names))
    schema, fb = mixed._load(tflite)
    sg = fb.subgraphs[0]
    prefix = getattr(model, "PREFIX", None)
    by_input: dict[int, str] = {}
    if prefix in ("gru", "lstm"):
        cells = mixed.cell_layers(prefix, len(model.layers))
        by_input = {int(t): cells.get(mixed._tensor_name(sg, int(t)).split(":")[0], "") for t in sg.inputs}
    producer = {int(o): i for i, op in enumerate(sg.operators) for o in op.outputs}
    for i, op in enumerate(sg.operators):
        if i in owner:
            continue
        for t in (int(t) for t in op.inputs if t >= 0):
            if producer.get(t) in owner:
                owner[i] = owner[producer[t]]
                break
            if by_input.get(t):
                owner[i] = by_input[t]
                break
        else:
            raise ExportError("tflite", op=mixed._op_name(schema, fb, op),
                              detail=f"cannot tell which layer op {i} belongs to (for a float32 layer)")
    return owner


def float_nodes(model: Any, calibrated: bytes, output_names: Sequence[str], layers: Sequence[str]) -> list[str]:
    """Names of the output tensors of the ops of ``layers`` in ``calibrated`` (the quantiser's denylist).

    :param model: the canonical model exported
    :param calibrated: the converter's calibrated float model
    :param output_names: the graph outputs' names by position
    :param layers: config layers to keep in float32
    """
    owner = layer_of_ops(model, calibrated, output_names)
    _, fb = mixed._load(calibrated)
    sg = fb.subgraphs[0]
    missing = sorted(set(layers) - set(owner.values()))
    if missing:
        raise ExportError("tflite", detail=f"no ops of layer(s) {missing} in the converted model")
    return [mixed._tensor_name(sg, int(t)) for i, op in enumerate(sg.operators) if owner[i] in layers
            for t in op.outputs]


def convert_with_float_layers(graph: ExportGraph, func: Any, keras_model: Any, samples: list[dict[str, np.ndarray]],
                              model: Any, layers: Sequence[str], weights: str = "channel") -> tuple[bytes, bytes]:
    """The int8 model of ``model`` (int8 I/O) with the ops of ``layers`` in float32, their original weights, and the
    calibrated float model it was quantised from (for :func:`weighted_layer_ops`).

    :param graph: the export graph (``graph.prepare`` of the folded model)
    :param func: its frozen TF function (``to_tflite.signature_function``)
    :param keras_model: the onnx2tf Keras model
    :param samples: calibration samples by input name (the int8 export's)
    :param model: the canonical model (which op is which layer)
    :param layers: config layers to keep in float32
    :param weights: ``channel``/``tensor`` scales of the int8 FULLY_CONNECTED weights (as ``convert_tflite``)
    :raises ExportError: (stage ``tflite``) the converter failed or a layer has no ops
    """
    calibrated = to_tflite.convert_tflite(graph, func, keras_model, samples, "int8", weights, calibrate_only=True)
    deny = float_nodes(model, calibrated, graph.output_names, layers)
    tf = to_tflite.tensorflow()
    from tensorflow.lite.python.convert import mlir_quantize

    try:
        # The converter's own call for int8 (lite.py's _quantize), plus the denylist.
        out = mlir_quantize(calibrated, False, input_data_type=tf.int8, output_data_type=tf.int8,
                            denylisted_nodes=deny, disable_per_channel_for_dense_layers=weights == "tensor")
    except Exception as exc:  # noqa: BLE001 - the quantiser raises ConverterError, RuntimeError or ValueError
        raise ExportError("tflite", detail=f"selective quantisation of {sorted(layers)} failed", cause=exc) from exc
    return _quantize_float_outputs(bytes(out), calibrated), calibrated


def _quantize_float_outputs(tflite: bytes, calibrated: bytes) -> bytes:
    """Give every float graph output of ``tflite`` a QUANTIZE to int8 (the quantiser leaves a float output that only
    float ops read in float: an LSTM's cell state when its cell is float32). The int8 range is the output's
    calibrated one, nudged to hold 0 exactly (TFLite's asymmetric int8 activation rule)."""
    schema, fb = mixed._load(tflite)
    sg = fb.subgraphs[0]
    floats = [int(t) for t in sg.outputs if sg.tensors[int(t)].type == TFL_FLOAT32]
    if not floats:
        return tflite
    _, cal = mixed._load(calibrated)
    cal_sg = cal.subgraphs[0]
    ranges = {mixed._tensor_name(cal_sg, int(t)): cal_sg.tensors[int(t)].quantization for t in cal_sg.outputs}
    producer = {int(o): i for i, op in enumerate(sg.operators) for o in op.outputs}
    after: dict[int, Any] = {}
    for t in floats:
        name = mixed._tensor_name(sg, t)
        q = ranges.get(name)
        if q is None or q.min is None or q.max is None or len(q.min) != 1:
            raise ExportError("tflite", op=name, detail="a float graph output without a calibrated range")
        lo, hi = min(float(q.min[0]), 0.0), max(float(q.max[0]), 0.0)
        scale = (hi - lo) / 255.0 if hi > lo else 1.0
        zp = int(np.clip(np.round(-128.0 - lo / scale), -128, 127))
        f = schema.TensorT()
        f.shape, f.type, f.buffer, f.name = list(sg.tensors[t].shape), TFL_FLOAT32, 0, (name + "_f").encode()
        sg.tensors.append(f)
        fi = len(sg.tensors) - 1
        for op in sg.operators:
            op.inputs = [fi if int(x) == t else x for x in op.inputs]
            op.outputs = [fi if int(x) == t else x for x in op.outputs]
        out = sg.tensors[t]
        out.type = TFL_INT8
        mixed._set_quant(schema, out, np.array([scale]))
        out.quantization.zeroPoint = [zp]
        after[producer[t]] = mixed._quantize_op(schema, fb, fi, t)
    ops: list[Any] = []
    for i, op in enumerate(sg.operators):
        ops += [op] + ([after[i]] if i in after else [])
    sg.operators = ops
    return pack_aligned(schema, fb)


def weighted_layer_ops(model: Any, calibrated_or_int8: bytes, mixed_tflite: bytes,
                       output_names: Sequence[str]) -> dict[int, str]:
    """Weighted op index in ``mixed_tflite`` -> config layer, found through the weight tensors' names (the mixed
    model's inserted QUANTIZE/DEQUANTIZE ops move the indices and break the dataflow match of ``model_layer_ops``).

    :param model: the canonical model
    :param calibrated_or_int8: a model of it without inserted ops (the calibrated one), where layers are matched
    :param mixed_tflite: the model with float layers
    :param output_names: the graph outputs' names by position
    """
    def weight_names(tfl: bytes, ops: dict[int, str] | None) -> dict[int, str]:
        schema, fb = mixed._load(tfl)
        sg = fb.subgraphs[0]
        return {i: mixed._tensor_name(sg, int(op.inputs[1])) for i, op in enumerate(sg.operators)
                if mixed._op_name(schema, fb, op) in mixed.WEIGHTED_OPS and (ops is None or i in ops)}

    plain = mixed.model_layer_ops(model, calibrated_or_int8, output_names)
    layer_by_weight = {name: plain[i] for i, name in weight_names(calibrated_or_int8, plain).items()}
    out: dict[int, str] = {}
    for i, name in weight_names(mixed_tflite, None).items():
        if name not in layer_by_weight:
            raise ExportError("tflite", op=f"op {i}", detail=f"weight tensor {name!r} is not in the converted model")
        out[i] = layer_by_weight[name]
    return out


#: Every per-layer precision of an int8 model: the rewritten ones (``precision.PRECISIONS``) and float32 (here).
LAYER_PRECISIONS = (*mixed.PRECISIONS, "float32")
