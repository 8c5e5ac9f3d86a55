"""Sub-byte tensor packing as TFLite stores it (issue 30): int4 values two per byte, the lower-indexed element in the
low nibble, over the flattened tensor (what TFLM's ``UnpackDenseInt4IntoInt8`` reads)."""

from __future__ import annotations

import numpy as np

from edgeprune.bench.errors import ExportError

#: TFLite ``TensorType`` codes used by the mixed-precision export.
TFL_FLOAT32, TFL_INT4, TFL_INT16, TFL_INT64, TFL_INT8, TFL_INT32 = 0, 17, 7, 4, 9, 2
#: Clipping ratios tried for an int4 scale (1.0 = the largest |w| maps to 7). 7/8 is there so weights already on an
#: int4 grid whose extreme sits at -8 (quantisation-aware fine-tuning bakes them so) keep their own scale.
INT4_CLIP_RATIOS = tuple(sorted({*np.round(np.linspace(0.55, 1.0, 10), 6).tolist(), 0.875}))


def pack_int4(values: np.ndarray) -> np.ndarray:
    """Pack int values in [-8, 7] (any shape, flattened in C order) into ``ceil(n / 2)`` bytes.

    :param values: integer array
    :raises ExportError: (stage ``tflite``) a value outside [-8, 7]
    """
    flat = np.asarray(values).reshape(-1).astype(np.int64)
    if flat.size and (flat.min() < -8 or flat.max() > 7):
        raise ExportError("tflite", detail=f"int4 values must lie in [-8, 7], got [{flat.min()}, {flat.max()}]")
    nib = (flat & 0xF).astype(np.uint8)
    if nib.size % 2:
        nib = np.concatenate([nib, np.zeros(1, np.uint8)])
    return (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8)


def unpack_int4(packed: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` int4 values of ``packed`` bytes as int8 (inverse of :func:`pack_int4`).

    :param packed: uint8 bytes
    :param count: number of values stored
    """
    b = np.asarray(packed, dtype=np.uint8).reshape(-1)
    out = np.empty(2 * b.size, dtype=np.int8)
    out[0::2] = ((b & 0xF).astype(np.int16) ^ 8) - 8
    out[1::2] = ((b >> 4).astype(np.int16) ^ 8) - 8
    return out[:count]
