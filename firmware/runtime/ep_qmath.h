/*
 * Fixed-point rescaling rules shared by all int8 kernels; C twin of export/qmath.py.
 *
 * A real multiplier is stored as a Q31 mantissa and a power-of-two shift; an int32 value is
 * rescaled with a saturating rounding doubling high multiply followed by a rounding right shift
 * (round half away from zero). Keep these bit-identical to export/qmath.py and TFLM's reference.
 */
#ifndef EP_QMATH_H
#define EP_QMATH_H

#include <math.h>
#include <stdint.h>

/* Splits `real` into a Q31 mantissa and shift with real ~= mant * 2^(shift - 31). */
static inline void ep_quantize_multiplier(double real, int32_t *mult, int32_t *shift) {
  int e = 0;
  double q;
  int64_t qf;
  if (real == 0.0) {
    *mult = 0;
    *shift = 0;
    return;
  }
  q = frexp(real, &e);
  qf = (int64_t)round(q * 2147483648.0);
  if (qf == ((int64_t)1 << 31)) {
    qf /= 2;
    e += 1;
  }
  if (e < -31) {
    qf = 0;
    e = 0;
  }
  if (e > 30) { /* a multiplier this large cannot be applied without overflow; TFLM saturates it too */
    e = 30;
    qf = ((int64_t)1 << 31) - 1;
  }
  *mult = (int32_t)qf;
  *shift = (int32_t)e;
}

#if defined(__ARM_ARCH_6M__) && !defined(EP_QMATH_SPLIT_MUL)
#define EP_QMATH_SPLIT_MUL 1
#endif

static inline int32_t ep_srdhm(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
#if defined(EP_QMATH_SPLIT_MUL) && EP_QMATH_SPLIT_MUL
  {
    /* v6-M has no 32x32->64 multiply (libgcc's __aeabi_lmul costs ~45 instructions). With a = ah*2^16 + al,
     * b = bh*2^16 + bl (ah, bh signed, al, bl in [0, 2^16)) every partial product fits in 32 bits and
     *   floor((a*b + 2^30) / 2^31) = 2*(ah*bh + c) + (m1 >> 15) + (m2 >> 15)
     *                                + (((m1 & 0x7FFF) + (m2 & 0x7FFF) + (lo >> 16)) >> 15)
     * with m1 = ah*bl, m2 = al*bh, lo = al*bl + 2^30 (mod 2^32) and c its carry: exact, in 32-bit
     * operations without branches (the count does not depend on the data). Sums wrap as uint32: the result
     * fits in int32 (the one exception returned above). */
    const int32_t ah = a >> 16, bh = b >> 16, al = a & 0xFFFF, bl = b & 0xFFFF;
    const int32_t m1 = ah * bl, m2 = al * bh;
    const uint32_t ll = (uint32_t)al * (uint32_t)bl, lo = ll + 0x40000000u, c = ((ll >> 30) + 1u) >> 2;
    const uint32_t frac = (uint32_t)((m1 & 0x7FFF) + (m2 & 0x7FFF) + (int32_t)(lo >> 16)) >> 15;
    return (int32_t)(2u * ((uint32_t)(ah * bh) + c) + (uint32_t)(m1 >> 15) + (uint32_t)(m2 >> 15) + frac);
  }
#else
  /* The reference adds 2^30 (or 1 - 2^30 when negative) and divides by 2^31 truncating toward zero;
   * for every sign that equals one floor shift of (a*b + 2^30), which is a multiply-add and a shift
   * on the targets instead of a 64-bit division. Relies on >> of negatives being arithmetic (gcc). */
  return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
#endif
}

static inline int32_t ep_rdbpot(int32_t x, int32_t exponent) {
  const int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)x >> 31);
  /* remainder > threshold as the sign of threshold - remainder (no overflow: both in [0, 2^31)): branch-free,
   * so the instruction count does not depend on the data on cores without conditional execution.
   * Arithmetic right shift of negatives is implementation-defined in C99; gcc/clang shift arithmetically. */
  return (x >> exponent) + (int32_t)((uint32_t)(threshold - remainder) >> 31);
}

/* ep_srdhm(v * 2^20, mult) for |v| <= 255 and 0 <= mult < 2^31 (the int8 ADD/SUB input rescale) in 32-bit
 * arithmetic: floor((v*mult + 2^10) / 2^11) split at bit 11 of mult, exact (each product fits in int32). */
static inline int32_t ep_srdhm_2p20(int32_t v, int32_t mult) {
  return v * (mult >> 11) + ((v * (mult & 2047) + 1024) >> 11);
}

/* round(x * mult * 2^(shift - 31)) exactly as the int8 reference kernels compute it. */
static inline int32_t ep_mbqm(int32_t x, int32_t mult, int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  return ep_rdbpot(ep_srdhm((int32_t)((uint32_t)x << left), mult), right);
}

/* Two's complement wrap (what the reference does on the targets) without signed-overflow UB. */
static inline int32_t ep_add_wrap(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

static inline int32_t ep_clamp_i32(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* Saturate to [-128, 127]: one SSAT where the core has it (v7-M and later). */
static inline int32_t ep_sat8(int32_t v) {
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT && defined(__GNUC__)
  int32_t r;
  __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
  return r;
#else
  return v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
}

#endif /* EP_QMATH_H */
