"""Building ``manifest.json`` at export time (``build``) from the export graph and the .tflite's tensors.

The typed ``Manifest``, its one reader and one writer live in ``edgeprune.bench.manifest`` (measurement reads
them and may not import export); they are re-exported here so ``edgeprune.export.manifest`` keeps working.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from typing import Any

from edgeprune.bench.manifest import (
    FORMAT_VERSION,
    IoSpec,
    Manifest,
    ManifestError,
    ManifestLike,
    SequenceSpec,
    read_manifest,
    write_manifest,
)
from edgeprune.export.graph import ExportGraph
from edgeprune.export.tflite_info import ModelInfo

__all__ = [
    "FORMAT_VERSION",
    "IoSpec",
    "Manifest",
    "ManifestError",
    "ManifestLike",
    "SequenceSpec",
    "build",
    "io_entries",
    "read_manifest",
    "sequence_block",
    "tool_versions",
    "write_manifest",
]

_TOOLS = ("edgeprune", "torch", "onnx", "onnxruntime", "onnx2tf", "tensorflow", "tflite-micro", "numpy")


def tool_versions() -> dict[str, str]:
    out = {}
    for dist in _TOOLS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def io_entries(info: ModelInfo, names: list[str], output: bool) -> list[dict[str, Any]]:
    """I/O tensors in the .tflite's order (``position``), each with the user's name and quant params."""
    by_index = info.signature_outputs if output else info.signature_inputs
    order = info.outputs if output else info.inputs
    name_of = {idx: name for name, idx in by_index.items() if name in names}
    entries = []
    for pos, idx in enumerate(order):
        t = info.tensors[idx]
        entries.append(
            {
                "name": name_of.get(idx, t.name),
                "position": pos,
                "tensor": idx,
                "shape": t.shape,
                "dtype": t.dtype,
                "scale": t.scales[0] if t.scales else None,
                "zero_point": t.zero_points[0] if t.zero_points else None,
            }
        )
    return entries


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
