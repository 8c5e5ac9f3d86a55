"""The runtime splits every multiplier of the int8 ops with integers only (ep_quantize_ratio, no double
arithmetic linked into a deploy library); it must equal frexp + round of the double expression TFLM evaluates,
(double)a * (double)b / (double)c * 2^p2, for any positive float scales (Python floats are those doubles)."""

from __future__ import annotations

import ctypes
import math

import numpy as np

INT32_MAX = (1 << 31) - 1


def _floats(rng: np.random.Generator, n: int, mode: int) -> np.ndarray:
    if mode == 0:  # any positive finite float, subnormals included
        bits = rng.integers(1, 0x7F800000, n, dtype=np.uint32)
    elif mode == 1:  # scales as models have them, 2^-27 .. 2^12
        bits = (rng.integers(100, 140, n, dtype=np.uint32) << 23) | rng.integers(0, 1 << 23, n, dtype=np.uint32)
    else:  # short mantissas: quotients that are exact or close to a rounding tie
        bits = (rng.integers(100, 140, n, dtype=np.uint32) << 23) | (rng.integers(0, 1 << 15, n, dtype=np.uint32) << 8)
    return bits.view(np.float32)


def _split(real: float) -> tuple[int, int]:
    """TFLM's QuantizeMultiplier: frexp, round half away from zero, a mantissa of 2^31 halved."""
    mant, exp = math.frexp(real)
    q = math.floor(mant * (1 << 31) + 0.5)
    return (q // 2, exp + 1) if q == 1 << 31 else (q, exp)


def _kernel_split(real: float) -> tuple[int, int]:
    """ep_quantize_multiplier: the split, a shift below -31 flushed to zero and above 30 saturated."""
    q, e = _split(real)
    return (0, 0) if e < -31 else (INT32_MAX, 30) if e > 30 else (q, e)


def test_integer_split_equals_double_split(runtime_lib):
    lib = ctypes.CDLL(str(runtime_lib))
    lib.ep_quantize_ratio.argtypes = [ctypes.c_float, ctypes.c_float, ctypes.c_float, ctypes.c_int,
                                      ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int32)]
    lib.ep_ratio_q31.argtypes = [ctypes.c_float, ctypes.c_float, ctypes.c_float, ctypes.c_int,
                                 ctypes.POINTER(ctypes.c_int)]
    lib.ep_ratio_q31.restype = ctypes.c_int32
    rng = np.random.default_rng(27)
    mult, shift, e = ctypes.c_int32(), ctypes.c_int32(), ctypes.c_int()
    checked = 0
    for mode in range(3):
        a, b, c = (_floats(rng, 20000, mode) for _ in range(3))
        b[::3] = 1.0  # the ratio form a / c most ops use
        p2 = rng.integers(-20, 21, a.size)
        for ai, bi, ci, pi in zip(a.tolist(), b.tolist(), c.tolist(), p2.tolist(), strict=True):
            real = math.ldexp(ai * bi / ci, pi)  # Python floats are doubles: TFLM's expression
            lib.ep_quantize_ratio(ai, bi, ci, pi, ctypes.byref(mult), ctypes.byref(shift))
            assert (mult.value, shift.value) == _kernel_split(real), (ai, bi, ci, pi)
            raw = lib.ep_ratio_q31(ai, bi, ci, pi, ctypes.byref(e))
            assert (raw, e.value) == _split(real), (ai, bi, ci, pi)
            checked += 1
    assert checked == 60000
