"""Stage 1: PyTorch → ONNX (fixed opset, static shapes), checked, and compared with onnxruntime.

The legacy TorchScript exporter (``dynamo=False``) is used: for these graphs (Linear, sigmoid, tanh,
elementwise) it emits plain ``Gemm``/``Add``/``Mul``/``Sigmoid``/``Tanh`` with no shape-arithmetic
subgraphs, which is what onnx2tf turns into FULLY_CONNECTED and elementwise TFLite ops.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeprune.bench.errors import ExportError
from edgeprune.export.graph import ExportGraph, torch_outputs

log = logging.getLogger(__name__)

OPSET = 13
# float32 ONNX vs PyTorch: the same math in a different summation order; 1e-4 absolute is ~100x the
# observed differences on [-1, 1] states and would still catch a swapped gate or a transposed weight.
PARITY_ATOL = 1e-4


@dataclass
class OnnxResult:
    """The exported ONNX model and its parity figure.

    Parameters
    ----------
    model_bytes:
        Serialised ``ModelProto``.
    max_abs_diff:
        Largest |onnxruntime − PyTorch| over all outputs and parity samples.
    ops:
        ONNX op types with counts.
    """

    model_bytes: bytes
    max_abs_diff: float
    ops: dict[str, int]


def export_onnx(graph: ExportGraph) -> bytes:
    """Trace ``graph.module`` to ONNX bytes with the graph's input/output names; checked by ``onnx.checker``."""
    import onnx
    import torch

    args = tuple(torch.zeros(*shape) for shape in graph.torch_shapes())
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph.module,
                args,
                buf,  # type: ignore[arg-type]  # file-like objects are accepted at runtime
                input_names=graph.input_names,
                output_names=graph.output_names,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
    except Exception as exc:  # the exporter raises many unrelated types; all mean "cannot trace"
        raise ExportError("onnx", detail="torch.onnx.export could not trace the model", cause=exc) from exc
    data = buf.getvalue()
    try:
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    except Exception as exc:  # onnx raises ValidationError and InferenceError subclasses
        raise ExportError("onnx", detail="onnx.checker rejected the exported graph", cause=exc) from exc
    return data


def onnx_ops(model_bytes: bytes) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load_from_string(model_bytes).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def ort_session(model_bytes: bytes) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


def check_parity(
    graph: ExportGraph, model_bytes: bytes, samples: list[dict[str, np.ndarray]], atol: float = PARITY_ATOL
) -> float:
    """Run onnxruntime and PyTorch on ``samples``; return max abs diff or raise above ``atol``."""
    try:
        sess = ort_session(model_bytes)
    except Exception as exc:  # onnxruntime wraps loader failures in its own exception types
        raise ExportError("onnxruntime-parity", detail="onnxruntime could not load the ONNX model", cause=exc) from exc
    worst = 0.0
    for sample in samples:
        ref = torch_outputs(graph, sample)
        got = sess.run(graph.output_names, graph.torch_sample(sample))
        for name, r, g in zip(graph.output_names, ref, got, strict=True):
            diff = float(np.max(np.abs(np.asarray(g) - r)))
            if not diff <= atol:
                raise ExportError(
                    "onnxruntime-parity",
                    op=name,
                    detail=f"onnxruntime differs from PyTorch by {diff:.3g} > {atol:g} on output {name!r}",
                )
            worst = max(worst, diff)
    log.info("onnx parity: max abs diff %.3g over %d samples", worst, len(samples))
    return worst


def to_onnx(graph: ExportGraph, parity_samples: list[dict[str, np.ndarray]]) -> OnnxResult:
    """Stage 1 in full: export, check, onnxruntime parity."""
    data = export_onnx(graph)
    diff = check_parity(graph, data, parity_samples)
    return OnnxResult(data, diff, onnx_ops(data))
