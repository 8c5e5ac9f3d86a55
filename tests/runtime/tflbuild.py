"""Build small single-graph TFLite flatbuffers directly (test helper).

Uses the schema's generated object API shipped in the TensorFlow wheel, loaded by file path so that
TensorFlow itself is not imported. Lets tests choose scales, zero points and shapes exactly, which the
converter does not, so every kernel can be compared with TFLM over a wide range of quantisations.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np


def _schema():
    spec = importlib.util.find_spec("tensorflow")
    assert spec is not None and spec.submodule_search_locations
    path = Path(list(spec.submodule_search_locations)[0]) / "lite" / "python" / "schema_py_generated.py"
    mspec = importlib.util.spec_from_file_location("ep_tfl_schema", path)
    assert mspec is not None and mspec.loader is not None
    mod = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(mod)
    return mod


S = _schema()

INT8, FLOAT32, INT32 = S.TensorType.INT8, S.TensorType.FLOAT32, S.TensorType.INT32
NP = {INT8: np.int8, FLOAT32: np.float32, INT32: np.int32}
OPTIONS = {
    S.BuiltinOperator.FULLY_CONNECTED: (S.BuiltinOptions.FullyConnectedOptions, S.FullyConnectedOptionsT),
    S.BuiltinOperator.ADD: (S.BuiltinOptions.AddOptions, S.AddOptionsT),
    S.BuiltinOperator.SUB: (S.BuiltinOptions.SubOptions, S.SubOptionsT),
    S.BuiltinOperator.MUL: (S.BuiltinOptions.MulOptions, S.MulOptionsT),
    S.BuiltinOperator.RESHAPE: (S.BuiltinOptions.ReshapeOptions, S.ReshapeOptionsT),
    S.BuiltinOperator.CONV_2D: (S.BuiltinOptions.Conv2DOptions, S.Conv2DOptionsT),
    S.BuiltinOperator.DEPTHWISE_CONV_2D: (S.BuiltinOptions.DepthwiseConv2DOptions, S.DepthwiseConv2DOptionsT),
    S.BuiltinOperator.AVERAGE_POOL_2D: (S.BuiltinOptions.Pool2DOptions, S.Pool2DOptionsT),
    S.BuiltinOperator.MAX_POOL_2D: (S.BuiltinOptions.Pool2DOptions, S.Pool2DOptionsT),
    S.BuiltinOperator.SOFTMAX: (S.BuiltinOptions.SoftmaxOptions, S.SoftmaxOptionsT),
}


@dataclass
class Graph:
    """Accumulates tensors/ops; ``tensor`` returns the new tensor's index."""

    tensors: list = field(default_factory=list)
    buffers: list = field(default_factory=lambda: [S.BufferT()])
    ops: list = field(default_factory=list)
    opcodes: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)

    def tensor(self, shape, dtype, scale=None, zp=0, data=None, qdim=0, name=None) -> int:
        t = S.TensorT()
        t.shape = list(shape)
        t.type = dtype
        t.name = (name or f"t{len(self.tensors)}").encode()
        if scale is not None:
            q = S.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(scale)]
            q.zeroPoint = [int(z) for z in np.broadcast_to(np.atleast_1d(zp), (len(q.scale),))]
            q.quantizedDimension = qdim
            t.quantization = q
        t.buffer = 0
        if data is not None:
            b = S.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data, dtype=NP[dtype]).tobytes(), dtype=np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, code: int, inputs, outputs, **options) -> None:
        if code not in self.opcodes:
            self.opcodes.append(code)
        o = S.OperatorT()
        o.opcodeIndex = self.opcodes.index(code)
        o.inputs = list(inputs)
        o.outputs = list(outputs)
        if code in OPTIONS:
            kind, cls = OPTIONS[code]
            opt = cls()
            for k, v in options.items():
                setattr(opt, k, v)
            o.builtinOptionsType = kind
            o.builtinOptions = opt
        self.ops.append(o)

    def build(self) -> bytes:
        m = S.ModelT()
        m.version = 3
        m.description = b"edgeprune runtime test"
        codes = []
        for c in self.opcodes:
            oc = S.OperatorCodeT()
            oc.builtinCode = c
            oc.deprecatedBuiltinCode = min(c, 127)
            oc.version = 1
            codes.append(oc)
        m.operatorCodes = codes
        sg = S.SubGraphT()
        sg.tensors = self.tensors
        sg.inputs = self.inputs
        sg.outputs = self.outputs
        sg.operators = self.ops
        sg.name = b"main"
        m.subgraphs = [sg]
        m.buffers = self.buffers
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())
