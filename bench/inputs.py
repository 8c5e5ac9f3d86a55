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
from edgeprune.bench.manifest import Manifest, ManifestLike
from edgeprune.export.verify import quantize_array, quantize_input


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
    elif arr.dtype.kind == "f" and want == "int8":
        spec = specs[index]
        arr = quantize_array(arr, spec.scale, spec.zero_point)
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
    """``n`` seeded random samples (int8, or float32 for float I/O) for every input the host sets
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
            elif spec.dtype == "float32":
                # A float input is quantised inside the model (QUANTIZE op); any finite values do.
                sample[pos] = rng.standard_normal(size).astype(np.float32).tobytes()
            else:
                raise MeasureError(f"input {pos} is {spec.dtype}; the runtime takes int8 or float32 I/O")
        samples.append(sample)
    return samples
