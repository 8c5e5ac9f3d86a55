"""Input encoding: what the host sends with SET_INPUT, from float windows, int8 arrays or raw bytes.

A float stream input goes through the exporter's own rule (``quantize_input``: the manifest's
folded ``input_norm`` and fine-input split, then the input's quantisation), so the device sees the
bytes the TFLM oracle and the task's quality figure saw. Other float inputs take their input's scale
and zero point; int8/int16 arrays and bytes are sent as they are (int16: a whole-model 16x8 export, issue 30).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgeprune.bench.errors import MeasureError
from edgeprune.bench.manifest import Manifest, ManifestLike

#: The integer I/O types of an export: int8, or int16 for the converter's whole-model 16x8 (issue 30).
INT_IO = ("int8", "int16")


def quantize_array(x: np.ndarray, scale: float, zero_point: int, dtype: str = "int8") -> np.ndarray:
    """Float → int8 (or int16) as TFLite's QUANTIZE does: ``round_half_away(x / scale) + zp``, saturated.

    :param x: float values
    :param scale: the tensor's scale
    :param zero_point: the tensor's zero point
    :param dtype: ``"int8"`` or ``"int16"``
    """
    q = np.asarray(x, dtype=np.float32) / np.float32(scale)
    q = np.sign(q) * np.floor(np.abs(q) + np.float32(0.5))
    lim = np.iinfo(dtype)
    return np.clip(q + zero_point, lim.min, lim.max).astype(dtype)


def dequantize_array(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((np.asarray(q, dtype=np.int32) - zero_point) * np.float32(scale)).astype(np.float32)


def split_float(z: np.ndarray, scale: float, zero_point: int, fine: int) -> np.ndarray:
    """``[coarse, residual·fine]`` along the last axis, in float (what the exported graph takes)."""
    z = np.asarray(z, dtype=np.float32)
    q = np.clip(np.round(z / scale) + zero_point, -128, 127)
    coarse = ((q - zero_point) * scale).astype(np.float32)
    return np.concatenate([coarse, (z - coarse) * np.float32(fine)], axis=-1).astype(np.float32)


def split_int8(z: np.ndarray, scale: float, zero_point: int, fine: int) -> np.ndarray:
    """The int8 codes of ``split_float`` on the input's own grid (coarse codes are exact by construction)."""
    pair = split_float(z, scale, zero_point, fine)
    return np.clip(np.round(pair / scale) + zero_point, -128, 127).astype(np.int8)


def quantize_input(x: np.ndarray, manifest: ManifestLike) -> np.ndarray:
    """Raw float stream input (``[T, F]``, ``[B, T, F]``, ``[F]`` or ``[B, F]``) → the bytes the device takes.

    Applies the manifest's ``input_norm`` (if any), then the stream input's quantisation; for a float32
    model only the normalisation. With ``input_norm.fine`` the result has twice the features: the int8
    code of ``z`` and the code of its rounding residual × ``fine`` (``split_int8``, see ``export.fine_input``). This is what a host must do before ``SET_INPUT``.
    """
    man = Manifest.from_dict(manifest)
    spec = man.inputs[man.stream_input]
    norm = man.input_norm
    z = np.asarray(x, dtype=np.float32)
    if norm is not None:
        z = ((z - np.asarray(norm["mean"], np.float32)) / np.asarray(norm["std"], np.float32)).astype(np.float32)
    fine = int(norm.get("fine", 0)) if norm is not None else 0
    if fine:
        if spec.dtype != "int8":
            return split_float(z, 1.0 / 128.0, 0, fine)
        return split_int8(z, spec.scale, spec.zero_point, fine)
    if spec.dtype not in INT_IO:
        return z
    return quantize_array(z, spec.scale, spec.zero_point, spec.dtype)


def typed(manifest: ManifestLike | None) -> Manifest | None:
    """The manifest as :class:`Manifest` (``None`` stays ``None``: a plain single-invoke model)."""
    return None if manifest is None else Manifest.from_dict(manifest)


def stream_index(manifest: ManifestLike | None) -> int:
    """The input that takes the per-step data (0 for a model without a ``sequence`` block)."""
    man = typed(manifest)
    return man.stream_input if man is not None else 0


def output_index(manifest: ManifestLike | None) -> int:
    """The output read after the last step (0 for a model without a ``sequence`` block)."""
    man = typed(manifest)
    return man.output_index if man is not None else 0


def encode_input(x: Any, manifest: ManifestLike | None, index: int) -> bytes:
    """Bytes for input ``index``: raw bytes pass through, int8 arrays are sent as is, float arrays are
    quantised with the manifest's scale and zero point for that input (the stream input by the
    exporter's ``quantize_input``, which also applies its ``input_norm``)."""
    if isinstance(x, bytes | bytearray | memoryview):
        return bytes(x)
    arr = np.asarray(x)
    man = typed(manifest)
    specs = man.inputs if man is not None else []
    want = specs[index].dtype if index < len(specs) else None
    if man is not None and arr.dtype.kind == "f" and index < len(specs) and index == man.stream_input:
        # The exporter's own rule for its stream input: the folded standardisation (and fine-input
        # split) first, then that input's quantisation.
        arr = quantize_input(arr, man)
    elif arr.dtype.kind == "f" and want in INT_IO:
        spec = specs[index]
        arr = quantize_array(arr, spec.scale, spec.zero_point, spec.dtype)
    elif arr.dtype.kind == "f" and want not in ("float32", None):
        raise MeasureError(f"float data for input {index}, which is {want}; give bytes of that type")
    elif want == "float32":
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr).tobytes()


def set_inputs(device: Any, inputs: Any, manifest: ManifestLike | None) -> None:
    """SET_INPUT for ``inputs``: a mapping input index → data, or the stream input's data alone."""
    items = inputs.items() if isinstance(inputs, Mapping) else [(stream_index(manifest), inputs)]
    for index, data in items:
        device.set_input(int(index), encode_input(data, manifest, int(index)))


def synthetic_inputs(manifest: ManifestLike, n: int, seed: int = 0) -> list[dict[int, bytes]]:
    """``n`` seeded random samples (int8, int16, or float32 for float I/O) for every input the host sets
    (not the recurrent ones).

    Used when a bare .tflite is benchmarked without a task: timing does not depend on values, and
    byte agreement with the oracle holds for any input.
    """
    man = Manifest.from_dict(manifest)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        sample: dict[int, bytes] = {}
        for pos, spec in enumerate(man.inputs):
            if pos in man.recurrent_inputs:
                continue
            size = int(np.prod(spec.shape)) * (man.steps if pos == man.stream_input else 1)
            if spec.dtype == "int8":
                sample[pos] = rng.integers(-128, 128, size=size, dtype=np.int8).tobytes()
            elif spec.dtype == "int16":
                sample[pos] = rng.integers(-32768, 32768, size=size, dtype=np.int16).tobytes()
            elif spec.dtype == "float32":
                # A float input is quantised inside the model (QUANTIZE op); any finite values do.
                sample[pos] = rng.standard_normal(size).astype(np.float32).tobytes()
            else:
                raise MeasureError(f"input {pos} is {spec.dtype}; the runtime takes int8, int16 or float32 I/O")
        samples.append(sample)
    return samples
