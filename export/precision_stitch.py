"""16x8 for chosen recurrent cells or convolutions inside an int8/int4 model (issue 30): stitch two conversions.

Why stitch rather than rewrite: a 16x8 GRU/LSTM cell is not one op but a dozen (FULLY_CONNECTED, ADD, SUB, MUL,
LOGISTIC, TANH), each with int16 scales of its own, fixed int16 output scales for LOGISTIC/TANH and constants (the
``1 - z`` term) in int16. The converter already calibrates all of them in its whole-model 16x8 conversion, from the
same graph and the same calibration samples as the int8 one, so the chosen layers' ops and tensors are taken from
that conversion verbatim instead of re-deriving every op's int16 rules here (what ``precision._to_16x8`` does for a
lone FULLY_CONNECTED).

The two conversions are checked to correspond op for op (same op kinds, operand counts, shapes, constants) before
anything is taken over; otherwise an ``ExportError`` names the layer. At the layer's edges:

* an int8 value entering the layer is converted by a QUANTIZE int8 -> int16 (the stream input stays int8);
* a value leaving it for an int8 reader, or as a graph output, by a QUANTIZE int16 -> int8 (its int8 tensor keeps
  its index, so int8 readers are untouched);
* the layer's own carried state (``h_i``/``c_i`` in, ``h_i_next``/``c_i_next`` out) becomes int16 at both ends, so the
  recurrence keeps 16 bits between steps; the runtime's and ``TflmRunner``'s per-pair carry requantise it as int16
  (``qmath.requantize16``). The model's I/O then mixes int8 and int16 (the manifest records each entry's type).
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from edgeprune.bench.errors import ExportError
from edgeprune.export.precision import (
    WEIGHTED_OPS,
    _drop_unused_buffers,
    _load,
    _op_name,
    _quantize_op,
    _tensor_name,
    model_layer_ops,
)
from edgeprune.export.precision_pack import TFL_INT8
from edgeprune.export.slim import pack_aligned

#: Model families whose cells or convolutions take 16x8 by stitching (an MLP's 16x8 layers are rewritten per op).
STITCHED_PREFIXES = ("gru", "lstm", "conv")


def stitched_layers(model: Any, precision: Mapping[str, str]) -> set[str]:
    """The layers of ``model`` taken from the 16x8 conversion: every 16x8 layer (``head`` included) of a GRU/LSTM or
    CNN that has at least one 16x8 cell or convolution and not every layer at 16x8 (that is the converter's
    whole-model 16x8, ``precision.whole_16x8``). Empty otherwise.

    :param model: the model exported (duck-typed: ``PREFIX`` and ``layers``)
    :param precision: config layer → precision (layers not named are int8)
    """
    prefix = getattr(model, "PREFIX", None)
    if prefix not in STITCHED_PREFIXES:
        return set()
    names = [f"{prefix}{i}" for i in range(len(model.layers))] + ["head"]
    sixteen = {n for n in names if precision.get(n) == "16x8"}
    if not sixteen - {"head"} or len(sixteen) == len(names):
        return set()
    return sixteen


def _output_names(sg: Any, output_names: Sequence[str]) -> list[str]:
    """Graph output names by position: the converter names the k-th function output ``Identity_k``."""
    out = []
    for t in sg.outputs:
        name = _tensor_name(sg, int(t))
        k = 0 if name == "Identity" else int(name.rsplit("_", 1)[1]) if name.startswith("Identity_") else -1
        out.append(output_names[k] if 0 <= k < len(output_names) else name)
    return out


def _ancestors(sg: Any, tensors: Collection[int], producer: Mapping[int, int]) -> set[int]:
    todo, seen = [producer[t] for t in tensors if t in producer], set()
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        todo += [producer[int(t)] for t in sg.operators[i].inputs if int(t) in producer]
    return seen


def layer_regions(model: Any, tflite: bytes, output_names: Sequence[str]) -> dict[str, set[int]]:
    """Config layer → every op index of that layer in ``tflite`` (not only the weighted ones).

    Recurrent cells by dataflow: cell ``i`` is every op its new state (``h_i_next``, ``c_i_next``) depends on that
    the previous cell's state does not; the head, what the first output depends on beyond the last cell. CNNs in
    execution order: a convolution's layer runs to the next layer's first weighted op (its pool, a reshape).

    :param model: a ``StackedGRU``/``StackedLSTM``/``ConvNet`` (duck-typed)
    :param tflite: its int8 conversion (op indices as converted)
    :param output_names: the graph's output names in the function's order (``ExportGraph.output_names``)
    :raises ExportError: (stage ``tflite``) an op that belongs to no layer
    """
    schema, m = _load(tflite)
    sg = m.subgraphs[0]
    prefix = model.PREFIX
    n_ops = len(sg.operators)
    regions: dict[str, set[int]] = {}
    if prefix in ("gru", "lstm"):
        producer = {int(o): i for i, op in enumerate(sg.operators) for o in op.outputs}
        by_name = dict(zip(_output_names(sg, output_names), (int(t) for t in sg.outputs), strict=True))
        done: set[int] = set()
        for i in range(len(model.layers)):
            states = [t for n, t in by_name.items() if n in (f"h_{i}_next", f"c_{i}_next")]
            ops = _ancestors(sg, states, producer)
            regions[f"{prefix}{i}"] = ops - done
            done |= ops
        regions["head"] = _ancestors(sg, [by_name[output_names[0]]], producer) - done
    else:
        weighted = model_layer_ops(model, tflite, output_names)
        current = weighted[min(weighted)]
        for i in range(n_ops):
            current = weighted.get(i, current)
            regions.setdefault(current, set()).add(i)
    orphans = set(range(n_ops)) - set().union(*regions.values())
    if orphans:
        op = min(orphans)
        raise ExportError("tflite", op=f"op {op} {_op_name(schema, m, sg.operators[op])}",
                          detail="belongs to no layer of the model; cannot take a layer's ops from the 16x8 conversion")
    return regions


def _has_data(m: Any, t: Any) -> bool:
    data = m.buffers[t.buffer].data
    return data is not None and len(data) > 0


def _check_correspond(a: tuple[Any, Any], b: tuple[Any, Any], layer: str) -> None:
    (sa, ma), (sb, mb) = a, b
    ga, gb = ma.subgraphs[0], mb.subgraphs[0]

    def fail(detail: str) -> ExportError:
        return ExportError("tflite", op=layer, detail=f"{layer} at 16x8: the int8 and 16x8 conversions do not "
                                                      f"correspond ({detail}); export it at int8 or int4")

    if len(ga.operators) != len(gb.operators):
        raise fail(f"{len(ga.operators)} vs {len(gb.operators)} ops")
    for io in ("inputs", "outputs"):
        na = [_tensor_name(ga, int(t)).split(":")[0] for t in getattr(ga, io)]
        nb = [_tensor_name(gb, int(t)).split(":")[0] for t in getattr(gb, io)]
        if na != nb:
            raise fail(f"graph {io} {na} vs {nb}")
    for i, (oa, ob) in enumerate(zip(ga.operators, gb.operators, strict=True)):
        ka, kb = _op_name(sa, ma, oa), _op_name(sb, mb, ob)
        if ka != kb or len(oa.inputs) != len(ob.inputs) or len(oa.outputs) != len(ob.outputs):
            raise fail(f"op {i}: {ka} vs {kb}")
        for ta, tb in zip(list(oa.inputs) + list(oa.outputs), list(ob.inputs) + list(ob.outputs), strict=True):
            if (ta < 0) != (tb < 0):
                raise fail(f"op {i} {ka}: an optional operand present in one only")
            if ta < 0:
                continue
            xa, xb = ga.tensors[ta], gb.tensors[tb]
            if list(xa.shape) != list(xb.shape) or _has_data(ma, xa) != _has_data(mb, xb):
                raise fail(f"op {i} {ka}: operand {_tensor_name(ga, int(ta))!r} differs in shape or constness")


def _opcode(a: Any, b: Any, op: Any) -> int:
    """Index in ``a``'s operator codes of ``b``'s code for ``op`` (added when ``a`` lacks it)."""
    code = b.operatorCodes[op.opcodeIndex]
    value = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    for k, c in enumerate(a.operatorCodes):
        if max(int(c.builtinCode), int(c.deprecatedBuiltinCode)) == value:
            c.version = max(int(c.version), int(code.version))
            return k
    a.operatorCodes.append(copy.deepcopy(code))
    return len(a.operatorCodes) - 1


def _drop_unused_tensors(sg: Any) -> None:
    """Remove the tensors no op or graph I/O uses any more (the int8 originals of the stitched layer)."""
    used = {int(t) for t in list(sg.inputs) + list(sg.outputs)}
    for op in sg.operators:
        used |= {int(t) for t in list(op.inputs) + list(op.outputs) if t >= 0}
    keep = sorted(used)
    index = {old: new for new, old in enumerate(keep)}
    sg.tensors = [sg.tensors[i] for i in keep]
    sg.inputs = [index[int(t)] for t in sg.inputs]
    sg.outputs = [index[int(t)] for t in sg.outputs]
    for op in sg.operators:
        op.inputs = [index[int(t)] if t >= 0 else int(t) for t in op.inputs]
        op.outputs = [index[int(t)] for t in op.outputs]


def stitch_16x8(int8: bytes, sixteen: bytes, regions: Mapping[str, Collection[int]],
                pairs: Sequence[tuple[int, int]] = ()) -> bytes:
    """``int8`` with the ops of ``regions`` (layer → op indices) taken from ``sixteen``, the converter's whole-model
    16x8 of the same graph, joined by QUANTIZE ops (see the module).

    :param int8: the int8 conversion (possibly with int4 weights already written in place: op indices unchanged)
    :param sixteen: the 16x8 conversion of the same graph with the same calibration samples
    :param regions: the stitched layers' op indices (``layer_regions``), keyed by layer name for error messages
    :param pairs: recurrent state pairs as (graph output position, graph input position); a pair whose input only
        the stitched ops read and whose output they produce becomes int16 at both ends
    :raises ExportError: (stage ``tflite``, op = the layer) the conversions do not correspond
    """
    a, b = _load(int8), _load(sixteen)
    (schema, ma), (_, mb) = a, b
    layer = ", ".join(sorted(regions))
    _check_correspond(a, b, layer)
    ga, gb = ma.subgraphs[0], mb.subgraphs[0]
    chosen = set().union(*(set(r) for r in regions.values()))
    for i in chosen:
        if _op_name(schema, ma, ga.operators[i]) in WEIGHTED_OPS:
            w = ga.tensors[ga.operators[i].inputs[1]]
            if w.type != TFL_INT8:
                raise ExportError("tflite", op=layer, detail=f"op {i} of {layer} is not int8 in the model to stitch")
    readers: dict[int, list[int]] = {}
    producer: dict[int, int] = {}
    for i, op in enumerate(ga.operators):
        for t in op.inputs:
            if t >= 0:
                readers.setdefault(int(t), []).append(i)
        for t in op.outputs:
            producer[int(t)] = i
    # Which tensors of ``a`` correspond to which of ``b`` (same op, same slot).
    twin_b: dict[int, int] = {}
    for i in sorted(chosen):
        oa, ob = ga.operators[i], gb.operators[i]
        for ta, tb in zip(list(oa.inputs) + list(oa.outputs), list(ob.inputs) + list(ob.outputs), strict=True):
            if ta >= 0:
                twin_b[int(ta)] = int(tb)
    # State pairs that become int16 in place (the graph keeps the tensor index, name and position).
    in_place: set[int] = set()
    for out_pos, in_pos in pairs:
        t_in, t_out = int(ga.inputs[in_pos]), int(ga.outputs[out_pos])
        if t_in in twin_b and t_out in twin_b and producer.get(t_out) in chosen \
                and all(r in chosen for r in readers.get(t_in, [])):
            in_place |= {t_in, t_out}
    graph_out = {int(t) for t in ga.outputs}

    def b_tensor(tb: int) -> Any:
        t = copy.deepcopy(gb.tensors[tb])
        if _has_data(mb, t):
            ma.buffers.append(copy.deepcopy(mb.buffers[t.buffer]))
            t.buffer = len(ma.buffers) - 1
        else:
            t.buffer = 0
        return t

    def new_tensor(t: Any, suffix: str) -> int:
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name or "")
        t.name = (name + suffix).encode()
        ga.tensors.append(t)
        return len(ga.tensors) - 1

    remap: dict[int, int] = {}  # a tensor index as the stitched ops read/write it
    before: dict[int, list[Any]] = {}
    after: dict[int, list[Any]] = {}
    for ta, tb in twin_b.items():
        made_inside = producer.get(ta) in chosen
        if ta in in_place:
            original = copy.deepcopy(ga.tensors[ta])
            ga.tensors[ta] = b_tensor(tb)
            ga.tensors[ta].name = original.name
            remap[ta] = ta
            outside = [r for r in readers.get(ta, []) if r not in chosen]
            if made_inside and outside:  # int8 readers of an int16 state output get a converted copy
                v = new_tensor(original, "_i8")
                after.setdefault(producer[ta], []).append(_quantize_op(schema, ma, ta, v))
                for r in outside:
                    ga.operators[r].inputs = [v if int(t) == ta else t for t in ga.operators[r].inputs]
            continue
        if not made_inside and _has_data(ma, ga.tensors[ta]):  # a constant: below, per op
            continue
        u = new_tensor(b_tensor(tb), "_i16")
        remap[ta] = u
        if not made_inside:  # an int8 value entering the layer: convert before its first stitched reader
            first = min(r for r in readers[ta] if r in chosen)
            before.setdefault(first, []).append(_quantize_op(schema, ma, ta, u))
        elif any(r not in chosen for r in readers.get(ta, [])) or ta in graph_out:
            after.setdefault(producer[ta], []).append(_quantize_op(schema, ma, u, ta))
    constants: dict[int, int] = {}  # the 16x8 conversion's own copy of each constant (weights, int64 bias, 1 - z)
    for i in chosen:
        ob = gb.operators[i]
        op = copy.deepcopy(ob)
        op.opcodeIndex = _opcode(ma, mb, ob)
        oa = ga.operators[i]
        ins = []
        for ta, tb in zip(oa.inputs, ob.inputs, strict=True):
            if ta < 0:
                ins.append(int(ta))
            elif int(ta) in remap:
                ins.append(remap[int(ta)])
            else:
                if int(tb) not in constants:
                    constants[int(tb)] = new_tensor(b_tensor(int(tb)), "_16x8")
                ins.append(constants[int(tb)])
        op.inputs = ins
        op.outputs = [remap[int(t)] for t in oa.outputs]
        ga.operators[i] = op
    new_ops: list[Any] = []
    for i, op in enumerate(ga.operators):
        new_ops += before.get(i, []) + [op] + after.get(i, [])
    ga.operators = new_ops
    _drop_unused_tensors(ga)
    _drop_unused_buffers(ma)
    return pack_aligned(schema, ma)


__all__ = ["STITCHED_PREFIXES", "layer_regions", "stitch_16x8", "stitched_layers"]
