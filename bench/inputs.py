"""Input encoding: what the host sends with SET_INPUT, from float windows, int8 arrays or raw bytes.

A float stream input goes through the exporter's own rule (``export.quantize_input``: the manifest's
folded ``input_norm`` and fine-input split, then the input's quantisation), so the device sees the
bytes the TFLM oracle and the task's quality figure saw. Other float inputs take their input's scale
and zero point; int8 arrays and bytes are sent as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgeprune.bench.errors import MeasureError


def stream_index(manifest: Mapping[str, Any] | None) -> int:
    """The input that takes the per-step data (0 for a model without a ``sequence`` block)."""
    seq = (manifest or {}).get("sequence")
    return int(seq.get("stream_input", 0)) if seq else 0


def output_index(manifest: Mapping[str, Any] | None) -> int:
    """The output read after the last step (0 for a model without a ``sequence`` block)."""
    seq = (manifest or {}).get("sequence")
    return int(seq.get("output", 0)) if seq else 0


def encode_input(x: Any, manifest: Mapping[str, Any] | None, index: int) -> bytes:
    """Bytes for input ``index``: raw bytes pass through, int8 arrays are sent as is, float arrays are
    quantised with the manifest's scale and zero point for that input (the stream input by the
    exporter's ``quantize_input``, which also applies its ``input_norm``)."""
    if isinstance(x, bytes | bytearray | memoryview):
        return bytes(x)
    arr = np.asarray(x)
    specs = (manifest or {}).get("inputs") or []
    want = specs[index].get("dtype") if index < len(specs) else None
    if arr.dtype.kind == "f" and index < len(specs) and index == stream_index(manifest):
        # The exporter's own rule for its stream input: the folded standardisation (and fine-input
        # split) first, then that input's quantisation.
        from edgeprune.export.verify import quantize_input

        arr = quantize_input(arr, dict(manifest or {}))
    elif arr.dtype.kind == "f" and want == "int8":
        from edgeprune.export.verify import quantize_array

        arr = quantize_array(arr, specs[index]["scale"], specs[index]["zero_point"])
    elif arr.dtype.kind == "f" and want not in ("float32", None):
        raise MeasureError(f"float data for input {index}, which is {want}; give bytes of that type")
    elif want == "float32":
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr).tobytes()


def set_inputs(device: Any, inputs: Any, manifest: Mapping[str, Any] | None) -> None:
    """SET_INPUT for ``inputs``: a mapping input index → data, or the stream input's data alone."""
    items = inputs.items() if isinstance(inputs, Mapping) else [(stream_index(manifest), inputs)]
    for index, data in items:
        device.set_input(int(index), encode_input(data, manifest, int(index)))


def synthetic_inputs(manifest: Mapping[str, Any], n: int, seed: int = 0) -> list[dict[int, bytes]]:
    """``n`` seeded random samples (int8, or float32 for float I/O) for every input the host sets
    (not the recurrent ones).

    Used when a bare .tflite is benchmarked without a task: timing does not depend on values, and
    byte agreement with the oracle holds for any input.
    """
    seq = manifest.get("sequence") or {}
    steps = int(seq.get("steps", 1)) if seq else 1
    stream = stream_index(manifest)
    recurrent = {int(i) for _, i in seq.get("recurrent", [])} if seq else set()
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        sample: dict[int, bytes] = {}
        for pos, spec in enumerate(manifest["inputs"]):
            if pos in recurrent:
                continue
            size = int(np.prod(spec["shape"])) * (steps if pos == stream else 1)
            if spec.get("dtype") == "int8":
                sample[pos] = rng.integers(-128, 128, size=size, dtype=np.int8).tobytes()
            elif spec.get("dtype") == "float32":
                # A float input is quantised inside the model (QUANTIZE op); any finite values do.
                sample[pos] = rng.standard_normal(size).astype(np.float32).tobytes()
            else:
                raise MeasureError(f"input {pos} is {spec.get('dtype')}; the runtime takes int8 or float32 I/O")
        samples.append(sample)
    return samples
