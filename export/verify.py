"""Stage 4: prove the .tflite runs in TFLM as the device will run it, and provide the oracle.

``check_model`` enforces what the device runtime implements (op allowlist, one subgraph, dtypes);
``arena_bytes`` finds the smallest arena TFLM accepts; ``TflmRunner`` runs a model in TFLM's own
interpreter (PyPI ``tflite-micro``) including the sequence loop of docs/design.md, and is the
bit-exact reference the firmware is compared with.

The sequence loop, exactly (``manifest["sequence"]``, all indices are positions in the .tflite's
input/output lists):

1. every recurrent input ``i`` starts at its zero point (the int8 encoding of h = 0);
2. for t in 0..steps-1: input ``stream_input`` ← x_t (already quantised with that input's params),
   recurrent inputs ← their carried values; invoke;
   for each pair ``[o, i]``: carried[i] ← ``qmath.requantize(output o, out scale/zp → input i scale/zp)``;
3. the result is output ``output`` after the last step (int8, the device's bytes).

The carried values are re-quantised, not dequantised and re-rounded through float, because the
device does it in integers (``ep_requantize``); ``qmath.requantize`` is that arithmetic.
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

from edgeprune.export import qmath
from edgeprune.export.errors import ExportError
from edgeprune.export.manifest import IoSpec, Manifest, ManifestLike
from edgeprune.export.tflite_info import ModelInfo

log = logging.getLogger(__name__)

#: The device runtime's windowed kernels (firmware/runtime/ep_conv.c): int8 only.
CONV_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "SOFTMAX"})
ALLOWED_OPS = frozenset(
    {"QUANTIZE", "DEQUANTIZE", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "LOGISTIC", "TANH", "RESHAPE"}
) | CONV_OPS
# int32 appears only as FULLY_CONNECTED biases in an int8 model.
ALLOWED_DTYPES = {"int8": frozenset({"int8", "int32"}), "float32": frozenset({"float32"})}
MAX_ARENA = 8 * 1024 * 1024


def check_model(info: ModelInfo, quantize: str = "int8") -> None:
    """Raise ``ExportError('tflm', op=...)`` unless the model is one the device runtime can run."""
    if info.num_subgraphs != 1:
        raise ExportError("tflm", detail=f"{info.num_subgraphs} subgraphs; the device runs exactly one")
    for op in info.ops:
        if op not in ALLOWED_OPS:
            raise ExportError(
                "tflm", op=op, detail=f"op {op} is not implemented on the device (allowed: {sorted(ALLOWED_OPS)})"
            )
        if op in CONV_OPS and quantize != "int8":
            raise ExportError("tflm", op=op, detail=f"the device runs {op} in int8 only; export with quantize='int8'")
    allowed = ALLOWED_DTYPES[quantize]
    for t in info.tensors:
        if t.dtype not in allowed:
            raise ExportError("tflm", op=t.name, detail=f"tensor {t.name!r} has dtype {t.dtype}; allowed: {sorted(allowed)}")
    if quantize == "int8":
        for idx in info.inputs + info.outputs:
            t = info.tensors[idx]
            if t.dtype != "int8" or len(t.scales) != 1:
                raise ExportError("tflm", op=t.name, detail=f"model I/O {t.name!r} must be per-tensor int8")


# TFLM's own bookkeeping (interpreter, allocator objects) lives in the arena besides the tensors that
# "Arena allocation total" counts; this slack covers it on the 64-bit host build.
ARENA_SLACK = 4096
# The oracle compares bytes; its arena cannot change an output, only whether TFLM allocates, and a
# manifest's host-measured minimum has proved too tight for a fresh interpreter. So every oracle gets
# this headroom (oracle_arena_size), defined here and nowhere else.
ORACLE_ARENA_DEFAULT = 2 * 1024 * 1024  # when the manifest states no arena (a bare .tflite)
ORACLE_ARENA_MIN = 256 * 1024
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


def _interpreter(tflite: bytes, arena_size: int) -> Any:
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(tflite, arena_size=arena_size)


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
                ip = _interpreter(tflite, min(size, MAX_ARENA))
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


def quantize_array(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float → int8 as TFLite's QUANTIZE does: ``round_half_away(x / scale) + zp``, saturated."""
    q = np.asarray(x, dtype=np.float32) / np.float32(scale)
    q = np.sign(q) * np.floor(np.abs(q) + np.float32(0.5))
    return np.clip(q + zero_point, -128, 127).astype(np.int8)


def dequantize_array(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((np.asarray(q, dtype=np.int32) - zero_point) * np.float32(scale)).astype(np.float32)


def oracle_arena_size(manifest: ManifestLike | None) -> int:
    """TFLM arena for the device's oracle: twice the manifest's ``arena_bytes`` (at least
    ``ORACLE_ARENA_MIN``), or ``ORACLE_ARENA_DEFAULT`` when the manifest states none."""
    stated = Manifest.from_dict(manifest).arena_bytes if manifest is not None else 0
    return max(2 * stated + ARENA_SLACK, ORACLE_ARENA_MIN) if stated else ORACLE_ARENA_DEFAULT


class TflmRunner:
    """Runs an exported model in TFLM's interpreter, with the manifest's sequence loop (the device oracle).

    Parameters
    ----------
    tflite_bytes:
        The exported ``model.tflite``.
    manifest:
        The export's ``manifest.json`` as a dict (uses ``inputs``, ``outputs``, ``sequence``, ``arena_bytes``).
    arena_size:
        TFLM arena; defaults to the manifest's ``arena_bytes`` plus ``ARENA_SLACK``.

    ``run(x)`` takes the stream input for one prediction, already in the input's dtype: int8 ``[T, F]``
    for a sequence model, ``[F]`` or ``[1, F]`` otherwise, and returns the output tensor (``[1, C]``)
    exactly as TFLM produced it. See the module docstring for the loop.
    """

    def __init__(self, tflite_bytes: bytes, manifest: ManifestLike, arena_size: int | None = None) -> None:
        man = Manifest.from_dict(manifest)
        self.manifest = man
        self.inputs: list[IoSpec] = man.inputs
        self.outputs: list[IoSpec] = man.outputs
        self.steps = man.steps
        self.stream_input = man.stream_input
        self.output = man.output_index
        self.recurrent: list[tuple[int, int]] = list(man.sequence.recurrent) if man.sequence is not None else []
        size = arena_size if arena_size is not None else man.arena_bytes + ARENA_SLACK
        try:
            self.interpreter = _interpreter(tflite_bytes, max(size, 4096))
        except RuntimeError as exc:
            raise ExportError("tflm", detail=f"TFLM could not allocate the model in a {size}-byte arena", cause=exc) from exc

    @classmethod
    def oracle(cls, tflite_bytes: bytes, manifest: ManifestLike) -> TflmRunner:
        """A runner sized as the device's oracle (``oracle_arena_size``), not as the export's check."""
        return cls(tflite_bytes, manifest, arena_size=oracle_arena_size(manifest))

    def _dtype(self, spec: IoSpec) -> Any:
        return np.dtype(spec.dtype)

    def initial_state(self) -> dict[int, np.ndarray]:
        """Recurrent inputs at their zero point (h = 0), keyed by input position."""
        state = {}
        for _, i in self.recurrent:
            spec = self.inputs[i]
            zp = spec.zero_point if spec.dtype == "int8" else 0
            state[i] = np.full(spec.shape, zp, dtype=self._dtype(spec))
        return state

    def carry(self, out_pos: int, in_pos: int, value: np.ndarray) -> np.ndarray:
        """Output ``out_pos`` of one step as input ``in_pos`` of the next (``qmath.requantize`` for int8)."""
        src, dst = self.outputs[out_pos], self.inputs[in_pos]
        if dst.dtype != "int8":
            return np.asarray(value, dtype=self._dtype(dst)).reshape(dst.shape)
        q = qmath.requantize(value, src.scale, src.zero_point, dst.scale, dst.zero_point)
        return q.reshape(dst.shape)

    def run(self, x: np.ndarray) -> np.ndarray:
        spec = self.inputs[self.stream_input]
        x = np.asarray(x)
        if x.dtype != self._dtype(spec):
            raise ValueError(f"stream input must be {spec.dtype}, got {x.dtype}; quantise with the input's params")
        steps = x.reshape(self.steps, *spec.shape)
        state = self.initial_state()
        ip = self.interpreter
        for t in range(self.steps):
            ip.set_input(steps[t], self.stream_input)
            for i, value in state.items():
                ip.set_input(value, i)
            ip.invoke()
            state = {i: self.carry(o, i, ip.get_output(o)) for o, i in self.recurrent}
        return np.array(ip.get_output(self.output))

    def run_batch(self, xs: np.ndarray) -> np.ndarray:
        """``run`` over a batch; returns ``[B, *output_shape[1:]]``."""
        return np.concatenate([self.run(x) for x in xs], axis=0)


def quantize_input(x: np.ndarray, manifest: ManifestLike) -> np.ndarray:
    """Raw float stream input (``[T, F]``, ``[B, T, F]``, ``[F]`` or ``[B, F]``) → the bytes the device takes.

    Applies the manifest's ``input_norm`` (if any), then the stream input's quantisation; for a float32
    model only the normalisation. With ``input_norm.fine`` the result has twice the features: the int8
    code of ``z`` and the code of its rounding residual × ``fine`` (see ``export.fine_input``). This is what a host must do before ``SET_INPUT``.
    """
    man = Manifest.from_dict(manifest)
    spec = man.inputs[man.stream_input]
    norm = man.input_norm
    z = np.asarray(x, dtype=np.float32)
    if norm is not None:
        z = ((z - np.asarray(norm["mean"], np.float32)) / np.asarray(norm["std"], np.float32)).astype(np.float32)
    fine = int(norm.get("fine", 0)) if norm is not None else 0
    if fine:
        from edgeprune.export.fine_input import split_float, split_int8

        if spec.dtype != "int8":
            return split_float(z, 1.0 / 128.0, 0, fine)
        return split_int8(z, spec.scale, spec.zero_point, fine)
    if spec.dtype != "int8":
        return z
    return quantize_array(z, spec.scale, spec.zero_point)


def predict_fn(tflite_bytes: bytes, manifest: ManifestLike) -> Callable[[np.ndarray], np.ndarray]:
    """A ``Task.evaluate``-style predictor: float batch in → normalise, quantise → TFLM loop → dequantise.

    The batch is ``[B, T, F]`` for a sequence model and ``[B, F]`` otherwise (raw features, as the
    PyTorch model takes them).
    """
    runner = TflmRunner(tflite_bytes, manifest)
    out = runner.outputs[runner.output]

    def predict(batch: np.ndarray) -> np.ndarray:
        raw = runner.run_batch(quantize_input(batch, runner.manifest))
        if out.dtype == "int8":
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
