"""Stage 4: prove the .tflite runs in TFLM as the device will run it.

``check_model`` enforces what the device runtime implements (op allowlist, one subgraph, dtypes);
``arena_bytes`` finds the smallest arena TFLM accepts; ``predict_fn`` scores an export through the
oracle (``bench.tflm.TflmRunner``, which runs the sequence loop the device runs) and ``smoke_invoke``
proves one full sequence allocates and runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgeprune.bench.errors import ExportError
from edgeprune.bench.inputs import INT_IO, dequantize_array, quantize_input
from edgeprune.bench.manifest import ManifestLike
from edgeprune.bench.tflite_info import ModelInfo
from edgeprune.bench.tflm import TflmRunner, interpreter

log = logging.getLogger(__name__)

#: The device runtime's windowed kernels (firmware/runtime/ep_conv.c): int8 only.
CONV_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "SOFTMAX"})
ALLOWED_OPS = frozenset(
    {"QUANTIZE", "DEQUANTIZE", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "LOGISTIC", "TANH", "RESHAPE"}
) | CONV_OPS
# int32 appears only as FULLY_CONNECTED biases in an int8 model; with per-layer precision (issue 30) int4 weights,
# int16 activations and int64 biases of FULLY_CONNECTED / QUANTIZE (the runtime refuses them elsewhere at load).
ALLOWED_DTYPES = {"int8": frozenset({"int8", "int32", "int4", "int16", "int64"}), "float32": frozenset({"float32"})}
MAX_ARENA = 8 * 1024 * 1024


def check_model(info: ModelInfo, quantize: str = "int8", io_dtype: str = "int8", float_layers: bool = False) -> None:
    """Raise ``ExportError('tflm', op=...)`` unless the model is one the device runtime can run.

    :param info: the model read back
    :param quantize: ``"int8"`` (integer model, possibly with per-layer precision) or ``"float32"``
    :param io_dtype: the integer model's I/O type: ``"int8"``, ``"int16"`` for the converter's whole-model 16x8
        (zero points 0, as TFLM's int16 kernels require), or ``"mixed"`` (each entry one of the two: a 16x8 cell's
        state beside int8 I/O, ``precision_stitch``)
    :param float_layers: the integer model has float32 layers (issue 30: float tensors allowed inside, I/O integer)
    """
    if info.num_subgraphs != 1:
        raise ExportError("tflm", detail=f"{info.num_subgraphs} subgraphs; the device runs exactly one")
    for op in info.ops:
        if op not in ALLOWED_OPS:
            raise ExportError(
                "tflm", op=op, detail=f"op {op} is not implemented on the device (allowed: {sorted(ALLOWED_OPS)})"
            )
        if op in CONV_OPS and quantize != "int8":
            raise ExportError("tflm", op=op, detail=f"the device runs {op} in int8 only; export with quantize='int8'")
    allowed = ALLOWED_DTYPES[quantize] | (frozenset({"float32"}) if float_layers else frozenset())
    for t in info.tensors:
        if t.dtype not in allowed:
            raise ExportError("tflm", op=t.name, detail=f"tensor {t.name!r} has dtype {t.dtype}; allowed: {sorted(allowed)}")
    if quantize == "int8":
        for idx in info.inputs + info.outputs:
            t = info.tensors[idx]
            want = t.dtype if io_dtype == "mixed" and t.dtype in ("int8", "int16") else io_dtype
            if t.dtype != want or len(t.scales) != 1 or (want == "int16" and any(t.zero_points)):
                raise ExportError("tflm", op=t.name, detail=f"model I/O {t.name!r} must be per-tensor {want}"
                                                            f"{' with zero point 0' if want == 'int16' else ''}")


_TOTAL_RE = re.compile(rb"Arena allocation total (\d+) bytes")


@contextlib.contextmanager
def _capture_fd2(sink: Any) -> Iterator[None]:
    """Send C-level stderr (fd 2) to ``sink``: TFLM reports allocations there, not through Python."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def arena_bytes(tflite: bytes) -> int:
    """Arena TFLM allocates for this model ("Arena allocation total" of its recording allocator).

    Measured on TFLM's 64-bit host build after one invoke, so it is an upper bound for a 32-bit device
    (smaller pointers in the per-tensor bookkeeping). A binary search on ``arena_size`` is not used:
    the host build can crash, not fail cleanly, for some too-small arenas.
    """
    size = max(256 * 1024, 2 * len(tflite))
    try:
        with tempfile.TemporaryFile() as sink:
            with _capture_fd2(sink):
                ip = interpreter(tflite, min(size, MAX_ARENA))
                ip.invoke()
                ip.print_allocations()
            sink.seek(0)
            text = sink.read()
    except RuntimeError as exc:
        raise ExportError("tflm", detail=f"TFLM could not allocate or run the model in {size} bytes", cause=exc) from exc
    match = _TOTAL_RE.search(text)
    if match is None:
        raise ExportError("tflm", detail="TFLM printed no arena total; is tflite-micro the expected version?")
    return int(match.group(1))


def predict_fn(tflite_bytes: bytes, manifest: ManifestLike) -> Callable[[np.ndarray], np.ndarray]:
    """A ``Task.evaluate``-style predictor: float batch in → normalise, quantise → TFLM loop → dequantise.

    The batch is ``[B, T, F]`` for a sequence model and ``[B, F]`` otherwise (raw features, as the
    PyTorch model takes them).
    """
    runner = TflmRunner(tflite_bytes, manifest)
    out = runner.outputs[runner.output]

    def predict(batch: np.ndarray) -> np.ndarray:
        raw = runner.run_batch(quantize_input(batch, runner.manifest))
        if out.dtype in INT_IO:
            return dequantize_array(raw, out.scale, out.zero_point)
        return raw.astype(np.float32)

    return predict


def smoke_invoke(tflite_bytes: bytes, manifest: ManifestLike) -> None:
    """One full sequence at the manifest's arena (+ slack): proves allocation and every kernel's Prepare/Eval."""
    runner = TflmRunner(tflite_bytes, manifest)
    spec = runner.inputs[runner.stream_input]
    try:
        runner.run(np.zeros((runner.steps, *spec.shape), dtype=np.dtype(spec.dtype)))
    except RuntimeError as exc:
        raise ExportError("tflm", detail="TFLM failed to invoke the model", cause=exc) from exc
