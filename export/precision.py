"""Per-layer precision (issue 30): rewrite the converter's int8 flatbuffer so chosen layers run with int4-packed
weights (int8 activations) or with int16 activations and int8 weights ("16x8").

The TFLite converter emits one precision per model, so the exporter writes the mixed model itself, starting from the
int8 model (its calibrated activation ranges and int8 weights):

* ``int4`` (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D): the weights are dequantised and re-quantised to [-8, 7]
  with the scale that minimises the squared rounding error over a grid of clipping ratios (per tensor for
  FULLY_CONNECTED, whose per-channel int4 form TFLM refuses; per channel for convolutions), packed two per byte
  (:mod:`precision_pack`); the int32 bias is re-scaled to ``s_in * s_w4``.
* ``16x8`` (FULLY_CONNECTED): the op's input and output become int16 tensors (zero point 0, the int8 tensor's real
  range over 32,767 steps) and its bias int64. Where a neighbour stays int8, a QUANTIZE op converts (int8 -> int16
  before, int16 -> int8 after), so consecutive 16x8 layers pass int16 between them. A recurrent cell or convolution
  at 16x8 is not rewritten here: with every layer at 16x8 the model is the converter's whole-model 16x8
  (:func:`whole_16x8`), else its 16x8 layers are taken from that conversion (:mod:`precision_stitch`).

Which op is which layer: :func:`layer_ops` (recurrent cells by dataflow from the state inputs, feed-forward models
in execution order). The result is checked in TFLM by the caller like every export.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgeprune.bench.errors import ExportError
from edgeprune.bench.tflite_info import tflite_schema
from edgeprune.export import to_onnx, to_tflite
from edgeprune.export.graph import (
    apply_input_norm,
    check_calibration,
    fold_input_norm,
    input_norm,
    prepare,
    representative_samples,
)
from edgeprune.export.precision_pack import (
    INT4_CLIP_RATIOS,
    TFL_INT4,
    TFL_INT8,
    TFL_INT16,
    TFL_INT32,
    TFL_INT64,
    pack_int4,
)
from edgeprune.export.slim import pack_aligned

#: Precisions a layer may take (``float32`` only for a whole float model, not per layer).
PRECISIONS = ("int8", "int4", "16x8")
WEIGHTED_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
#: Scale layouts of an int4 convolution filter (``apply_precision``).
INT4_SCALES = ("channel", "tensor")
_CLIP_RATIOS = np.asarray(INT4_CLIP_RATIOS)


def _op_name(schema: Any, model: Any, op: Any) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    value = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
    return names.get(value, str(value))


def _load(tflite: bytes) -> tuple[Any, Any]:
    schema = tflite_schema()
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(tflite), 0))
    except Exception as exc:  # noqa: BLE001 - flatbuffers raises IndexError/struct.error on garbage
        raise ExportError("tflite", detail="not a TFLite flatbuffer", cause=exc) from exc
    if len(model.subgraphs or []) != 1:
        raise ExportError("tflite", detail="mixed precision rewrites single-subgraph models only")
    return schema, model


def layer_ops(tflite: bytes, layers: Sequence[tuple[str, int]], recurrent: Mapping[str, str] | None = None,
              output_names: Sequence[str] | None = None) -> dict[int, str]:
    """Operator index → config layer name for every weighted op (FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D).

    :param tflite: the int8 model
    :param layers: feed-forward models: ``(name, weighted ops)`` in execution order (a low-rank layer has 2)
    :param recurrent: streaming cells instead: graph input name → layer (``{"x_t": "gru0", "h_0": "gru0",
        "h_1": "gru1"}``) and graph output name → the layer that reads it (``{"h_0_next": "gru1",
        "h_1_next": "head"}``); an FC reading another FC's output belongs to that FC's layer (low rank)
    :param output_names: the graph outputs' names by position (the manifest's; the converter names them
        ``Identity_<n>``), default: the tensor names
    :raises ExportError: (stage ``tflite``) the ops do not match the layers given
    """
    schema, model = _load(tflite)
    sg = model.subgraphs[0]
    weighted = [i for i, op in enumerate(sg.operators) if _op_name(schema, model, op) in WEIGHTED_OPS]
    out: dict[int, str] = {}
    if recurrent is None:
        names = [name for name, n in layers for _ in range(n)]
        if len(names) != len(weighted):
            raise ExportError("tflite", detail=f"{len(weighted)} weighted ops in the model, {len(names)} expected "
                                               f"from the layers {[n for n, _ in layers]}")
        return dict(zip(weighted, names, strict=True))
    by_tensor: dict[int, str] = {}
    for pos, t in enumerate(sg.inputs):
        by_tensor[int(t)] = recurrent.get(_tensor_name(sg, int(t)), f"input{pos}")
    for pos, t in enumerate(sg.outputs):
        name = output_names[pos] if output_names is not None else _tensor_name(sg, int(t))
        if name in recurrent:
            by_tensor[int(t)] = recurrent[name]
    producer = {int(o): i for i, op in enumerate(sg.operators) for o in op.outputs}
    for i in weighted:
        src = int(sg.operators[i].inputs[0])
        if src in by_tensor:
            out[i] = by_tensor[src]
        elif producer.get(src) in out:
            out[i] = out[producer[src]]
        else:
            raise ExportError("tflite", op=f"op {i}", detail="cannot tell which layer this FULLY_CONNECTED belongs to")
    return out


def cell_layers(prefix: str, num_layers: int) -> dict[str, str]:
    """The ``recurrent`` map of :func:`layer_ops` for the exporter's streaming cell (inputs ``x_t``, ``h_i``, ``c_i``;
    outputs ``h_i_next``) of ``num_layers`` layers named ``<prefix><i>`` and a ``head``.

    :param prefix: ``"gru"`` or ``"lstm"``
    :param num_layers: recurrent layers
    """
    out = {"x_t": f"{prefix}0"}
    for i in range(num_layers):
        out[f"h_{i}"] = out[f"c_{i}"] = f"{prefix}{i}"
        out[f"h_{i}_next"] = f"{prefix}{i + 1}" if i + 1 < num_layers else "head"
    return out


def model_layer_ops(model: Any, tflite: bytes, output_names: Sequence[str]) -> dict[int, str]:
    """:func:`layer_ops` for a canonical model (``StackedGRU``/``StackedLSTM``: by dataflow; ``MLP``/``ConvNet``: its
    layers in order, a low-rank layer counting two ops). Duck-typed: export does not import the host's classes.

    :param model: the model that was exported
    :param tflite: its int8 export
    :param output_names: the graph outputs' names by position
    """
    prefix = getattr(model, "PREFIX", None)
    if prefix in ("gru", "lstm"):
        return layer_ops(tflite, [], cell_layers(prefix, len(model.layers)), output_names)

    def count(m: Any) -> int:
        return 2 if hasattr(m, "first") and hasattr(m, "second") else 1

    if prefix == "conv":
        layers = [(f"conv{i}", 1) for i in range(len(model.layers))] + [("head", count(model.head))]
    else:
        layers = [(f"fc{i}", count(m)) for i, m in enumerate(model.layers)]
    return layer_ops(tflite, layers)


def _tensor_name(sg: Any, index: int) -> str:
    name = sg.tensors[index].name
    return name.decode() if isinstance(name, bytes) else str(name or "")


def _data(model: Any, t: Any, dtype: Any) -> np.ndarray:
    return np.frombuffer(bytes(bytearray(model.buffers[t.buffer].data)), dtype=dtype)


def _set_data(schema: Any, model: Any, t: Any, raw: bytes) -> None:
    """Give ``t`` its own new buffer (a shared buffer is left to its other readers)."""
    b = schema.BufferT()
    b.data = np.frombuffer(raw, dtype=np.uint8)
    model.buffers.append(b)
    t.buffer = len(model.buffers) - 1


def _set_quant(schema: Any, t: Any, scales: np.ndarray, qdim: int = 0) -> None:
    q = schema.QuantizationParametersT()
    q.scale = [float(s) for s in np.atleast_1d(scales)]
    q.zeroPoint = [0] * len(q.scale)
    q.quantizedDimension = qdim
    t.quantization = q


def int4_scale(w: np.ndarray) -> float:
    """Scale of ``w`` (float) on the int4 grid [-8, 7] with the least squared rounding error over the clip grid."""
    peak = float(np.max(np.abs(w))) if w.size else 0.0
    if peak == 0.0:
        return 1.0
    best, best_err = peak / 7.0, np.inf
    for r in _CLIP_RATIOS:
        s = peak * r / 7.0
        err = float(np.sum((np.clip(np.round(w / s), -8, 7) * s - w) ** 2))
        if err < best_err:
            best, best_err = s, err
    return best


def _to_int4(schema: Any, model: Any, op: Any, kind: str, conv_per_tensor: bool = False) -> None:
    sg = model.subgraphs[0]
    x, w = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]]
    if w.type != TFL_INT8 or w.quantization is None:
        raise ExportError("tflite", op=kind, detail="int4 needs the int8 model's quantised weights")
    s8 = np.asarray(w.quantization.scale, dtype=np.float64)
    rows = int(w.shape[0]) if kind != "DEPTHWISE_CONV_2D" else int(w.shape[-1])
    wq = _data(model, w, np.int8).astype(np.float64).reshape(list(w.shape))
    chan_axis = 0 if kind != "DEPTHWISE_CONV_2D" else len(w.shape) - 1
    shape = [1] * wq.ndim
    shape[chan_axis] = -1
    wf = wq * (s8.reshape(shape) if s8.size > 1 else s8[0])
    if kind == "FULLY_CONNECTED" or conv_per_tensor:  # TFLM runs int4 FULLY_CONNECTED per tensor only
        s4 = np.full(rows, int4_scale(wf))
        per_chan = False
    else:
        s4 = np.array([int4_scale(np.take(wf, r, axis=chan_axis)) for r in range(rows)])
        per_chan = True
    q4 = np.clip(np.round(wf / s4.reshape(shape)), -8, 7).astype(np.int8)
    _set_data(schema, model, w, pack_int4(q4).tobytes())
    w.type = TFL_INT4
    _set_quant(schema, w, s4 if per_chan else s4[:1], qdim=chan_axis if per_chan else 0)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = sg.tensors[op.inputs[2]]
        s_in = float(x.quantization.scale[0])
        s8b = np.broadcast_to(s8, (rows,))
        b32 = _data(model, b, np.int32).astype(np.float64)
        b4 = np.round(b32 * s8b / s4)
        _set_data(schema, model, b, np.clip(b4, -(2**31), 2**31 - 1).astype(np.int32).tobytes())
        _set_quant(schema, b, s_in * (s4 if per_chan else s4[:1]))  # one scale per weight scale (12 B per row else)


def _int16_twin(schema: Any, sg: Any, index: int) -> int:
    """A new int16 tensor with the real range of the int8 tensor ``index`` (zero point 0)."""
    t = sg.tensors[index]
    s8, zp = float(t.quantization.scale[0]), int(t.quantization.zeroPoint[0])
    u = schema.TensorT()
    u.shape = list(t.shape)
    u.type = TFL_INT16
    u.buffer = 0
    name = t.name.decode() if isinstance(t.name, bytes) else str(t.name or f"t{index}")
    u.name = (name + "_i16").encode()
    _set_quant(schema, u, np.array([s8 * max(128 + zp, 127 - zp) / 32767.0]))
    sg.tensors.append(u)
    return len(sg.tensors) - 1


def _quantize_op(schema: Any, model: Any, src: int, dst: int) -> Any:
    codes = [max(int(c.builtinCode), int(c.deprecatedBuiltinCode)) for c in model.operatorCodes]
    q = schema.BuiltinOperator.QUANTIZE
    if q not in codes:
        oc = schema.OperatorCodeT()
        oc.builtinCode = q
        oc.deprecatedBuiltinCode = min(q, 127)
        oc.version = 1
        model.operatorCodes.append(oc)
        codes.append(q)
    op = schema.OperatorT()
    op.opcodeIndex = codes.index(q)
    op.inputs, op.outputs = [src], [dst]
    return op


def _to_16x8(schema: Any, model: Any, chosen: set[int]) -> None:
    sg = model.subgraphs[0]
    ops = list(sg.operators)
    consumers: dict[int, list[int]] = {}
    producer: dict[int, int] = {}
    for i, op in enumerate(ops):
        for t in op.inputs:
            consumers.setdefault(int(t), []).append(i)
        for t in op.outputs:
            producer[int(t)] = i
    graph_io = {int(t) for t in list(sg.inputs) + list(sg.outputs)}
    twin: dict[int, int] = {}
    before: dict[int, list[Any]] = {}
    after: dict[int, list[Any]] = {}
    for i in sorted(chosen):
        op = ops[i]
        for slot, t in ((0, int(op.inputs[0])), (None, int(op.outputs[0]))):
            if sg.tensors[t].type != TFL_INT8:
                raise ExportError("tflite", op="FULLY_CONNECTED", detail="16x8 needs int8 activations around the op")
            if t not in twin:
                twin[t] = _int16_twin(schema, sg, t)
                made_by_chosen = producer.get(t) in chosen
                int8_readers = [c for c in consumers.get(t, []) if c not in chosen]
                if not made_by_chosen:  # the int8 value exists: convert it once, before its first 16x8 reader
                    first = min(c for c in consumers[t] if c in chosen)
                    before.setdefault(first, []).append(_quantize_op(schema, model, t, twin[t]))
                elif int8_readers or t in graph_io:  # produced in int16: int8 readers get a converted copy
                    after.setdefault(producer[t], []).append(_quantize_op(schema, model, twin[t], t))
            if slot == 0:
                op.inputs[0] = twin[t]
            else:
                op.outputs[0] = twin[t]
        x16, w = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]]
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            b = sg.tensors[op.inputs[2]]
            x8 = sg.tensors[[t for t, u in twin.items() if u == op.inputs[0]][0]]
            ratio = float(x8.quantization.scale[0]) / float(x16.quantization.scale[0])
            b64 = np.round(_data(model, b, np.int32).astype(np.float64) * ratio).astype(np.int64)
            _set_data(schema, model, b, b64.tobytes())
            b.type = TFL_INT64
            _set_quant(schema, b, float(x16.quantization.scale[0]) * np.asarray(w.quantization.scale, np.float64))
    new_ops: list[Any] = []
    for i, op in enumerate(ops):
        new_ops += before.get(i, []) + [op] + after.get(i, [])
    sg.operators = new_ops
    # int8 I/O stays int8: a graph output written by a 16x8 op is the QUANTIZE's int8 tensor (unchanged index).


def apply_precision(tflite: bytes, precision: Mapping[int, str], int4_scales: str = "channel") -> bytes:
    """The int8 model with the ops in ``precision`` (operator index → ``int8``/``int4``/``16x8``) rewritten.

    :param tflite: the converter's int8 model
    :param precision: weighted op index → precision (ops not listed stay int8)
    :param int4_scales: ``channel`` (one int4 scale per filter of a convolution) or ``tensor`` (one per tensor: 12 B
        of flatbuffer less per output channel of the filter and of its bias, each a float scale and an int64 zero
        point; FULLY_CONNECTED is per tensor either way)
    :raises ExportError: (stage ``tflite``) an unknown precision, or one the op type has no TFLM kernel for
    """
    if int4_scales not in INT4_SCALES:
        raise ExportError("tflite", detail=f"int4_scales must be one of {INT4_SCALES}, got {int4_scales!r}")
    schema, model = _load(tflite)
    sg = model.subgraphs[0]
    sixteen: set[int] = set()
    for i, p in sorted(precision.items()):
        if p not in PRECISIONS:
            raise ExportError("tflite", op=f"op {i}", detail=f"precision {p!r} is not one of {PRECISIONS}")
        kind = _op_name(schema, model, sg.operators[i])
        if kind not in WEIGHTED_OPS:
            raise ExportError("tflite", op=kind, detail=f"op {i} has no weights; only {WEIGHTED_OPS} take a precision")
        if p == "int4":
            _to_int4(schema, model, sg.operators[i], kind, conv_per_tensor=int4_scales == "tensor")
        elif p == "16x8":
            if kind != "FULLY_CONNECTED":
                raise ExportError("tflite", op=kind, detail="16x8 is exported for FULLY_CONNECTED only")
            sixteen.add(i)
    if sixteen:
        _to_16x8(schema, model, sixteen)
    _drop_unused_buffers(model)
    return pack_aligned(schema, model)


def _drop_unused_buffers(model: Any) -> None:
    """Remove the buffers no tensor or metadata entry reads any more (the replaced int8 weights and biases)."""
    used = {0} | {int(m.buffer) for m in model.metadata or []}
    for sg in model.subgraphs:
        used |= {int(t.buffer) for t in sg.tensors}
    keep = sorted(used)
    index = {old: new for new, old in enumerate(keep)}
    model.buffers = [model.buffers[i] for i in keep]
    for sg in model.subgraphs:
        for t in sg.tensors:
            t.buffer = index[int(t.buffer)]
    for m in model.metadata or []:
        m.buffer = index[int(m.buffer)]


def whole_16x8(model: Any, precision: Mapping[str, str]) -> bool:
    """Whether ``precision`` puts every layer of a recurrent model or CNN (``StackedGRU``/``StackedLSTM``/``ConvNet``:
    its cells or convolutions and ``head``) at 16x8, so that the export is the converter's whole-model 16x8 (int16
    activations and I/O; a recurrent state carried between steps in int16). A 16x8 cell or convolution beside layers
    at other precisions is stitched from the two conversions instead (``precision_stitch``). MLPs: always False
    (their 16x8 layers are rewritten per layer).

    :param model: the model exported (duck-typed: ``PREFIX`` and ``layers``)
    :param precision: config layer → precision (layers not named are int8)
    """
    prefix = getattr(model, "PREFIX", None)
    if prefix not in ("gru", "lstm", "conv"):
        return False
    names = [f"{prefix}{i}" for i in range(len(model.layers))] + ["head"]
    return all(precision.get(n) == "16x8" for n in names)


def whole_model_16x8(model: Any, calibration: np.ndarray, work_dir: str) -> tuple[bytes, dict[str, Any] | None]:
    """The converter's own 16x8 model (every activation int16, weights int8, int16 I/O) of a canonical model, made as
    ``export_model`` makes the int8 one (input standardisation folded, same calibration samples). The flatbuffer
    alone, for measuring (``bench/scripts/mixed_precision.py``); ``export_model(..., precision=<every layer
    "16x8">)`` makes the same model of a GRU/LSTM as a verified export. Returns the flatbuffer and the input
    standardisation (``{"mean", "std"}`` or None) the caller applies before quantising.

    :param model: ``StackedGRU``/``StackedLSTM``/``MLP``
    :param calibration: float model inputs from the training split
    :param work_dir: scratch folder for onnx2tf
    """
    graph = prepare(model)
    calibration = check_calibration(graph, calibration)
    norm = input_norm(calibration) if graph.kind != "cnn" else None
    graph = prepare(fold_input_norm(model, norm))
    samples = representative_samples(graph, apply_input_norm(calibration, norm))
    onnx_bytes = to_onnx.export_onnx(graph)
    keras_model = to_tflite.onnx_to_keras(graph, onnx_bytes, work_dir)
    func = to_tflite.signature_function(graph, keras_model)
    return to_tflite.convert_tflite(graph, func, keras_model, samples, "16x8"), norm


def io_positions(tflite: bytes, input_names: Sequence[str], output_names: Sequence[str]) -> tuple[list[int], list[int]]:
    """Positions in the flatbuffer's input/output lists of the named graph inputs (placeholder names) and outputs
    (the k-th output of the frozen function is ``Identity_k``), in the order given.

    :param tflite: a converted model
    :param input_names: graph input names
    :param output_names: graph output names in the function's order
    """
    _, model = _load(tflite)
    sg = model.subgraphs[0]
    ins = [_tensor_name(sg, int(t)).split(":")[0] for t in sg.inputs]
    outs = [_tensor_name(sg, int(t)) for t in sg.outputs]
    keys = ["Identity" if k == 0 else f"Identity_{k}" for k in range(len(output_names))]
    try:
        return [ins.index(n) for n in input_names], [outs.index(k) for k in keys]
    except ValueError as exc:
        raise ExportError("tflite", detail=f"cannot bind the graph I/O names {input_names} / {output_names}") from exc


def weight_bytes(tflite: bytes) -> dict[str, int]:
    """Bytes of the weighted ops' weights by storage type (``int8``, ``int4``) and of their biases."""
    schema, model = _load(tflite)
    sg = model.subgraphs[0]
    out = {"int8": 0, "int4": 0, "bias": 0}
    seen: set[int] = set()
    for op in sg.operators:
        if _op_name(schema, model, op) not in WEIGHTED_OPS:
            continue
        for pos, t in enumerate(op.inputs[1:3], start=1):
            if t < 0 or int(t) in seen:
                continue
            seen.add(int(t))
            ten = sg.tensors[t]
            data = model.buffers[ten.buffer].data
            n = 0 if data is None else len(data)
            key = "bias" if pos == 2 else ("int4" if ten.type == TFL_INT4 else "int8")
            out[key] += n
    return out


__all__ = ["PRECISIONS", "TFL_INT32", "ExportError", "apply_precision", "int4_scale", "layer_ops", "weight_bytes"]
