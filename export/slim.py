"""The model as the device stores it: the ``.tflite`` without what no runtime reads on the device.

``slim_tflite(tflite)`` drops tensor and subgraph names, signature definitions, the model description, the
metadata entries with their buffers (the converter's ``min_runtime_version`` and ``CONVERSION_METADATA``), the
calibration min/max, shape signatures and ``has_rank`` flags of tensors, the operator codes' versions (64-80 B of a
small CNN), and the empty buffer each activation tensor points at (they
all share buffer 0, the schema's empty sentinel), then repacks the flatbuffer with every buffer's data 16-byte
aligned, as the converter writes it (the runtime and TFLM read weights in place), and equal vectors written once. Operators, tensors, shapes, quantisation and weight bytes are untouched, so the slim
model computes the same bytes in TFLM and in the runtime (tests/export/test_deploy_library.py: byte-equal outputs). Used by the deploy
library (``edgeprune export --deploy``); the full ``model.tflite`` of an export keeps its names for tools.
"""

from __future__ import annotations

from typing import Any

import flatbuffers

from edgeprune.bench.errors import ExportError
from edgeprune.bench.tflite_info import tflite_schema

_ALIGN = 16


def pack_aligned(schema: Any, model: Any) -> bytes:
    """``model`` (a ``schema.ModelT``) packed with every buffer's data 16-byte aligned, so the C side can read weights in place."""
    original = schema.BufferT.Pack

    def pack(buf: Any, builder: Any) -> Any:
        data = None
        if buf.data is not None:
            raw = bytes(bytearray(buf.data))
            builder.StartVector(1, len(raw), _ALIGN)
            builder.head = builder.head - len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            builder.vectorNumElems = len(raw)
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        schema.BufferAddOffset(builder, buf.offset)
        schema.BufferAddSize(builder, buf.size)
        return schema.BufferEnd(builder)

    class SharingBuilder(flatbuffers.Builder):  # type: ignore[misc]
        """Equal vectors (shapes, per-tensor scales and zero points, op input lists) are written once and shared:
        flatbuffer vectors are immutable, so several tables may point at one."""

        def CreateNumpyVector(self, x: Any) -> Any:  # noqa: N802 - flatbuffers' name
            key = (x.dtype.str, x.tobytes())
            if key not in seen:
                seen[key] = super().CreateNumpyVector(x)
            return seen[key]

    seen: dict[tuple[str, bytes], Any] = {}
    builder = SharingBuilder(1024)
    schema.BufferT.Pack = pack
    try:
        root = model.Pack(builder)
    finally:
        schema.BufferT.Pack = original
    builder.Finish(root, file_identifier=b"TFL3")
    return bytes(builder.Output())


def slim_tflite(tflite: bytes) -> bytes:
    """``tflite`` without names, signatures, description and metadata; buffers kept 16-byte aligned.

    :param tflite: a TFLite flatbuffer
    :raises ExportError: (stage ``deploy``) not a flatbuffer the schema reads
    """
    schema = tflite_schema()
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(tflite), 0))
    except Exception as exc:  # noqa: BLE001 - flatbuffers raises IndexError/struct.error on garbage
        raise ExportError("deploy", detail="not a TFLite flatbuffer", cause=exc) from exc
    dropped = {int(m.buffer) for m in model.metadata or []}
    model.metadata = None
    model.signatureDefs = None
    model.description = None
    model.metadataBuffer = None
    buffers = list(model.buffers or [])
    kept = [buffers[0]] if buffers else [schema.BufferT()]
    kept[0].data = None  # buffer 0 is the schema's empty sentinel
    renumber: dict[int, int] = {}
    for sg in model.subgraphs or []:
        sg.name = None
        for t in sg.tensors or []:
            t.name = None
            t.shapeSignature = None  # dynamic-shape hints; the device has static shapes
            t.hasRank = False  # marks a ranked shape of a dynamic model; a static shape says it (runtimes ignore it)
            if t.quantization is not None:
                t.quantization.min = t.quantization.max = None  # calibration ranges; scale/zero point rule
            b = int(t.buffer)
            if b in dropped:
                raise ExportError("deploy", detail="a metadata buffer is also a tensor's data; cannot slim the model")
            data = buffers[b].data if 0 < b < len(buffers) else None
            if data is None or len(data) == 0:
                t.buffer = 0  # an activation: every one shares the empty sentinel
                continue
            if b not in renumber:
                renumber[b] = len(kept)
                kept.append(buffers[b])
            t.buffer = renumber[b]
    model.buffers = kept
    for code in model.operatorCodes or []:
        code.version = 1  # the converter's kernel-version hint: TFLM and the runtime pick kernels by op code only
    return pack_aligned(schema, model)
