"""Filling in ``manifest.json`` at export time (``build``) from the export graph and the .tflite's tensors.

The manifest's typed form, its one reader and writer and its I/O entries are ``edgeprune.bench.manifest``;
this module only assembles an export's fields (graph, sizes, parity, hashes, tool versions).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from typing import Any

from edgeprune.bench.manifest import FORMAT_VERSION, io_entries
from edgeprune.bench.tflite_info import ModelInfo
from edgeprune.export.graph import ExportGraph

__all__ = ["build", "sequence_block", "tool_versions"]

_TOOLS = ("edgeprune", "torch", "onnx", "onnxruntime", "onnx2tf", "tensorflow", "tflite-micro", "numpy")


def tool_versions() -> dict[str, str]:
    out = {}
    for dist in _TOOLS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def sequence_block(graph: ExportGraph, info: ModelInfo) -> dict[str, Any] | None:
    if not graph.recurrent_cell:
        return None
    return {
        "steps": graph.steps,
        "stream_input": info.input_position(graph.input_names[0]),
        "output": info.output_position(graph.output_names[0]),
        "recurrent": [[info.output_position(o), info.input_position(i)] for o, i in graph.recurrent],
    }


def build(
    *,
    name: str,
    graph: ExportGraph,
    info: ModelInfo,
    quantize: str,
    tflite: bytes,
    onnx_bytes: bytes,
    arena: int,
    parity: dict[str, Any],
    source: str,
    norm: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    weight_dtype = "int8" if quantize == "int8" else "float32"
    return {
        "format": FORMAT_VERSION,
        "name": name,
        "source": source,
        "kind": graph.kind,
        "quantize": quantize,
        "input_names": graph.input_names,
        "output_names": graph.output_names,
        "inputs": io_entries(info, graph.input_names, output=False),
        "outputs": io_entries(info, graph.output_names, output=True),
        "sequence": sequence_block(graph, info),
        # Feed (x − mean)/std to input ``input``, then quantise with its scale/zero point.
        "input_norm": None if norm is None else {"input": graph.input_names[0], **norm},
        "ops": info.op_counts,
        "op_sequence": info.ops,
        "subgraphs": info.num_subgraphs,
        "tensors": [t.to_json() for t in info.tensors],
        "arena_bytes": arena,
        "arena_note": "smallest arena accepted by TFLM's 64-bit host build (upper bound for a 32-bit device)",
        "sizes": {
            "tflite_bytes": len(tflite),
            "weight_bytes": info.weight_bytes(weight_dtype),
            "bias_bytes": info.weight_bytes("int32"),
            "onnx_bytes": len(onnx_bytes),
        },
        "weight_bytes": info.weight_bytes(weight_dtype),
        "parity": parity,
        "hashes": {
            "tflite_sha256": hashlib.sha256(tflite).hexdigest(),
            "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        },
        "tools": tool_versions(),
    }
