"""Read a .tflite flatbuffer (TFLM's own schema module, no TensorFlow import): ops, tensors, I/O by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeprune.bench.errors import ExportError

_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8", 6: "bool", 17: "int4"}


@dataclass
class TensorInfo:
    """One tensor of subgraph 0.

    Parameters
    ----------
    index:
        Tensor index in the subgraph.
    name, shape, dtype:
        As stored (dtype as a numpy-style name, ``"type<N>"`` if unusual).
    scales, zero_points:
        Quantisation parameters (empty for float tensors); more than one = per-channel.
    constant:
        Whether the tensor has data in the file (weights, biases).
    nbytes:
        Bytes of that data (0 for activations).
    """

    index: int
    name: str
    shape: list[int]
    dtype: str
    scales: list[float] = field(default_factory=list)
    zero_points: list[int] = field(default_factory=list)
    constant: bool = False
    nbytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "shape": self.shape,
            "dtype": self.dtype,
            "scales": self.scales,
            "zero_points": self.zero_points,
            "constant": self.constant,
            "bytes": self.nbytes,
        }


@dataclass
class ModelInfo:
    """What the manifest and the checks need from a .tflite.

    Parameters
    ----------
    num_subgraphs:
        Subgraphs in the file (TFLM-on-device supports exactly one here).
    ops:
        Operator names in execution order.
    tensors:
        All tensors of subgraph 0.
    inputs, outputs:
        Tensor indices of the subgraph inputs/outputs, in the file's order.
    signature_inputs, signature_outputs:
        Signature name → tensor index (empty if the file has no signature).
    """

    num_subgraphs: int
    ops: list[str]
    tensors: list[TensorInfo]
    inputs: list[int]
    outputs: list[int]
    signature_inputs: dict[str, int]
    signature_outputs: dict[str, int]

    @property
    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op] = counts.get(op, 0) + 1
        return counts

    def weight_bytes(self, dtype: str) -> int:
        """Bytes of constant tensors of ``dtype`` (int8 → the quantised weights)."""
        return sum(t.nbytes for t in self.tensors if t.constant and t.dtype == dtype)

    def input_position(self, name: str) -> int:
        """Position in the subgraph's input list of the input signed ``name``."""
        return self.inputs.index(self.signature_inputs[name])

    def output_position(self, name: str) -> int:
        return self.outputs.index(self.signature_outputs[name])


def tflite_schema() -> Any:
    """The TFLite flatbuffer schema module that ships with PyPI ``tflite-micro`` (imported on first use)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


def _op_names() -> dict[int, str]:
    schema = tflite_schema()
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def read_model(tflite: bytes) -> ModelInfo:
    """Parse ``tflite`` or raise ``ExportError('tflm')`` if it is not a TFLite flatbuffer."""
    schema = tflite_schema()
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(tflite), 0))
    except Exception as exc:  # flatbuffers raises IndexError/struct.error on garbage
        raise ExportError("tflm", detail="not a TFLite flatbuffer", cause=exc) from exc
    if not model.subgraphs:
        raise ExportError("tflm", detail="the .tflite has no subgraph")
    names = _op_names()
    sg = model.subgraphs[0]
    ops = []
    for op in sg.operators or []:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        ops.append(names.get(builtin, f"BUILTIN_{builtin}") if builtin != 32 else f"CUSTOM:{_text(code.customCode)}")
    tensors = []
    for i, t in enumerate(sg.tensors or []):
        buf = model.buffers[t.buffer] if model.buffers is not None and t.buffer < len(model.buffers) else None
        data = getattr(buf, "data", None)
        nbytes = len(data) if data is not None else 0
        # Large models store data outside the flatbuffer (offset/size); count those bytes too.
        external = int(getattr(buf, "size", None) or 0)
        if external:
            nbytes = external
        q = t.quantization
        scales = [float(s) for s in (q.scale if q is not None and q.scale is not None else [])]
        zps = [int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else [])]
        shape = [int(d) for d in (t.shape if t.shape is not None else [])]
        tensors.append(
            TensorInfo(i, _text(t.name), shape, _DTYPES.get(t.type, f"type{t.type}"), scales, zps, nbytes > 0, nbytes)
        )
    sig_in: dict[str, int] = {}
    sig_out: dict[str, int] = {}
    for sig in model.signatureDefs or []:
        sig_in.update({_text(t.name): int(t.tensorIndex) for t in sig.inputs or []})
        sig_out.update({_text(t.name): int(t.tensorIndex) for t in sig.outputs or []})
    return ModelInfo(
        len(model.subgraphs),
        ops,
        tensors,
        [int(i) for i in np.asarray(sg.inputs).tolist()],
        [int(i) for i in np.asarray(sg.outputs).tolist()],
        sig_in,
        sig_out,
    )


def _frozen_output_position(name: str) -> int | None:
    """``Identity`` → 0, ``Identity_3`` → 3: how TF names a frozen function's k-th flat output."""
    if name == "Identity":
        return 0
    head, _, tail = name.rpartition("_")
    return int(tail) if head == "Identity" and tail.isdigit() else None


def bind_names(info: ModelInfo, inputs: list[tuple[str, list[int]]], outputs: list[tuple[str, list[int]]]) -> None:
    """Fill ``signature_inputs/outputs`` (name → tensor index) and check each tensor's shape.

    A converted SavedModel carries a SignatureDef; a frozen concrete function does not, but keeps the
    placeholders' names for inputs and names the k-th output ``Identity_k``. Either way every
    user name must resolve to exactly one tensor of the declared shape, or ``ExportError('tflite')``.
    """
    if not info.signature_inputs:
        for idx in info.inputs:
            info.signature_inputs[info.tensors[idx].name.split(":")[0]] = idx
    if not info.signature_outputs:
        names = [name for name, _ in outputs]
        for idx in info.outputs:
            k = _frozen_output_position(info.tensors[idx].name)
            if k is not None and k < len(names):
                info.signature_outputs[names[k]] = idx
    for (name, shape), table in [(s, info.signature_inputs) for s in inputs] + [
        (s, info.signature_outputs) for s in outputs
    ]:
        if name not in table:
            raise ExportError("tflite", op=name, detail=f"no .tflite tensor carries the name {name!r}")
        got = info.tensors[table[name]].shape
        if list(got) != list(shape):
            raise ExportError("tflite", op=name, detail=f"tensor {name!r} has shape {got}, expected {list(shape)}")
