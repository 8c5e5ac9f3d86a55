"""The device oracle: an exported model run in TFLM's own interpreter (PyPI ``tflite-micro``), including the
sequence loop of docs/design.md. The firmware must match it byte for byte, so measurement (``bench.agreement``)
and export (``export.verify``) both use this one runner.

The sequence loop, exactly (``manifest["sequence"]``, all indices are positions in the .tflite's
input/output lists):

1. every recurrent input ``i`` starts at its zero point (the int8 encoding of h = 0);
2. for t in 0..steps-1: input ``stream_input`` ← x_t (already quantised with that input's params),
   recurrent inputs ← their carried values; invoke;
   for each pair ``[o, i]``: carried[i] ← ``qmath.requantize(output o, out scale/zp → input i scale/zp)``
   (``qmath.requantize16`` for the int16 state of a 16x8 model);
3. the result is output ``output`` after the last step (int8, the device's bytes).

The carried values are re-quantised, not dequantised and re-rounded through float, because the
device does it in integers (``ep_requantize``); ``qmath.requantize`` is that arithmetic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeprune.bench import qmath
from edgeprune.bench.errors import ExportError
from edgeprune.bench.manifest import IoSpec, Manifest, ManifestLike

# TFLM's own bookkeeping (interpreter, allocator objects) lives in the arena besides the tensors that
# "Arena allocation total" counts; this slack covers it on the 64-bit host build.
ARENA_SLACK = 4096
# The oracle compares bytes; its arena cannot change an output, only whether TFLM allocates, and a
# manifest's host-measured minimum has proved too tight for a fresh interpreter. So every oracle gets
# this headroom (oracle_arena_size), defined here and nowhere else.
ORACLE_ARENA_DEFAULT = 2 * 1024 * 1024  # when the manifest states no arena (a bare .tflite)
ORACLE_ARENA_MIN = 256 * 1024


def interpreter(tflite: bytes, arena_size: int) -> Any:
    """A TFLM interpreter for ``tflite`` with an ``arena_size``-byte arena (tflite-micro loads on first use)."""
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(tflite, arena_size=arena_size)


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
            self.interpreter = interpreter(tflite_bytes, max(size, 4096))
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
        """Output ``out_pos`` of one step as input ``in_pos`` of the next (``qmath.requantize`` for int8,
        ``qmath.requantize16`` for int16, a copy for float)."""
        src, dst = self.outputs[out_pos], self.inputs[in_pos]
        if dst.dtype == "int16":
            return qmath.requantize16(value, src.scale, dst.scale).reshape(dst.shape)
        if dst.dtype != "int8":
            return np.asarray(value, dtype=self._dtype(dst)).reshape(dst.shape)
        q = qmath.requantize(value, src.scale, src.zero_point, dst.scale, dst.zero_point)
        return q.reshape(dst.shape)

    def run(self, x: np.ndarray) -> np.ndarray:
        """The output read after the last step (``run_all``'s ``output``)."""
        return self.run_all(x)[self.output]

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        """Every output of the last step (the readout and each layer's new state), in the model's output order.

        :param x: the stream input for one prediction, in the input's dtype (see the class docstring)
        """
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
        return [np.array(ip.get_output(k)) for k in range(len(self.outputs))]

    def run_batch(self, xs: np.ndarray) -> np.ndarray:
        """``run`` over a batch; returns ``[B, *output_shape[1:]]``."""
        return np.concatenate([self.run(x) for x in xs], axis=0)
