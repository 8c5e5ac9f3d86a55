"""Integer quantisation arithmetic, mirrored bit for bit by ``firmware/runtime/ep_qmath.h``.

These are the fixed-point rules TFLite kernels use to rescale int32 accumulators (a double
multiplier turned into a Q31 mantissa and a power-of-two exponent, then a saturating rounding
doubling high multiply and a rounding right shift). The firmware uses the same rules inside its
kernels; the host uses them for the one thing TFLM does not do for us: carrying a recurrent model's
hidden state (int8, or int16 in a 16x8 model) from one time step's output tensor to the next step's input tensor.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Split ``real`` into ``(q31_mantissa, shift)`` with ``real ≈ mantissa · 2^(shift-31)``.

    Rounds half away from zero like C's ``round``; a mantissa that rounds up to 2^31 is halved.
    """
    if real == 0.0:
        return 0, 0
    mant, shift = math.frexp(real)
    q = int(math.copysign(math.floor(abs(mant) * (1 << 31) + 0.5), mant))
    if q == (1 << 31):
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def _srdhm(a: np.ndarray, b: int) -> np.ndarray:
    """Saturating rounding doubling high multiply of int32 ``a`` by int32 ``b`` (vectorised)."""
    a64 = a.astype(np.int64)
    ab = a64 * np.int64(b)
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    s = ab + nudge
    # C integer division truncates toward zero; numpy's // floors, so divide magnitudes.
    q = np.sign(s) * (np.abs(s) // np.int64(1 << 31))
    overflow = (a64 == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, np.int64(INT32_MAX), q)


def _rounding_divide_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    mask = np.int64((1 << exponent) - 1)
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).astype(np.int64)
    return (x >> exponent) + (remainder > threshold).astype(np.int64)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """``round(x · multiplier · 2^(shift-31))`` exactly as the int8 kernels compute it (int32 in/out)."""
    x = np.asarray(x, dtype=np.int64)
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    scaled = (x * np.int64(1 << left)).astype(np.int64)
    # The product must stay in int32 range, as it does in C for the values kernels pass here.
    scaled = np.clip(scaled, INT32_MIN, INT32_MAX)
    return _rounding_divide_by_pot(_srdhm(scaled, multiplier), right)


def requantize(q: np.ndarray, scale_from: float, zp_from: int, scale_to: float, zp_to: int) -> np.ndarray:
    """Carry int8 values from one quantisation ``(scale_from, zp_from)`` to another.

    Used between time steps of a streaming recurrent model: output ``h_i'`` of step t becomes input
    ``h_i`` of step t+1. When both tensors share scale and zero point this is a plain copy.
    The firmware's ``ep_requantize`` computes the same bytes.
    """
    q = np.asarray(q, dtype=np.int8)
    if float(np.float32(scale_from)) == float(np.float32(scale_to)) and zp_from == zp_to:
        return q.copy()
    mult, shift = quantize_multiplier(float(np.float32(scale_from)) / float(np.float32(scale_to)))
    out = zp_to + multiply_by_quantized_multiplier(q.astype(np.int64) - zp_from, mult, shift)
    return np.clip(out, -128, 127).astype(np.int8)


def requantize16(q: np.ndarray, scale_from: float, scale_to: float) -> np.ndarray:
    """Carry int16 values (zero points 0: 16x8 is symmetric) from one scale to another, as ``requantize`` carries
    int8 ones: a copy when the float32 scales are equal, else the same multiplier split and rounding, saturated to
    int16. The firmware's ``ep_requantize16`` (sequence mode's int16 carry) computes the same values.

    :param q: int16 values at ``scale_from``
    :param scale_from: the step's output scale
    :param scale_to: the next step's input scale
    """
    q = np.asarray(q, dtype=np.int16)
    s_from, s_to = float(np.float32(scale_from)), float(np.float32(scale_to))
    if s_from == s_to:
        return q.copy()
    mult, shift = quantize_multiplier(s_from / s_to)
    # Past a left shift of 40 every non-zero int16 value saturates int32 anyway; the cap keeps int64 exact.
    out = multiply_by_quantized_multiplier(q.astype(np.int64), mult, min(shift, 40))
    return np.clip(out, -32768, 32767).astype(np.int16)
