/*
 * int8 LOGISTIC and TANH in gemmlowp-style fixed point, reproducing TFLM's reference integer kernels
 * bit for bit: input rescaled to Q4.27, exp on negative values by a Taylor polynomial around -1/8
 * plus a barrel shifter of exp(-2^k) constants, then 1/(1+x) or (1-x)/(1+x) by three Newton-Raphson
 * steps, and a rounding shift down to 8 bits.
 *
 * Notation: a "Qn" value is an int32 raw with n integer bits (value = raw / 2^(31-n)).
 * Addition is plain two's complement on the raw (done in uint32 so overflow is defined).
 */
#include "ep_kernels.h"
#include "ep_qmath.h"

static int32_t fp_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static int32_t fp_sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }
static int32_t fp_mask(int c) { return c ? -1 : 0; }
static int32_t fp_select(int32_t mask, int32_t a, int32_t b) { return (mask & a) ^ (~mask & b); }

/* Saturating x * 2^e for e > 0, rounding x / 2^-e for e < 0. */
static int32_t fp_mul_pot(int32_t x, int e) {
  if (e > 0) {
    const int32_t threshold = (int32_t)((1u << (31 - e)) - 1u);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((uint32_t)x << e);
  }
  if (e < 0) return ep_rdbpot(x, -e);
  return x;
}

static int32_t rounding_half_sum(int32_t a, int32_t b) {
  int64_t s = (int64_t)a + (int64_t)b;
  int64_t sign = s >= 0 ? 1 : -1;
  return (int32_t)((s + sign) / 2);
}

#define Q0_ONE INT32_MAX

/* exp(a) for a in [-1/4, 0), a and result in Q0. */
static int32_t exp_quarter(int32_t a) {
  const int32_t constant_term = 1895147668; /* exp(-1/8) */
  const int32_t one_third = 715827883;
  int32_t x = fp_add(a, 1 << 28); /* a + 1/8 */
  int32_t x2 = ep_srdhm(x, x);
  int32_t x3 = ep_srdhm(x2, x);
  int32_t x4 = ep_srdhm(x2, x2);
  int32_t x4_over_4 = fp_mul_pot(x4, -2);
  int32_t poly = fp_mul_pot(fp_add(ep_srdhm(fp_add(x4_over_4, x3), one_third), x2), -1);
  return fp_add(constant_term, ep_srdhm(constant_term, fp_add(x, poly)));
}

/* exp(a) for a <= 0 with `ibits` integer bits (4 or 5), result in Q0. */
static int32_t exp_negative(int32_t a, int ibits) {
  static const int32_t kmult[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
  const int fbits = 31 - ibits;
  const int32_t quarter = (int32_t)1 << (fbits - 2);
  const int32_t mask = quarter - 1;
  int32_t a_mod = fp_sub(a & mask, quarter);
  int32_t result = exp_quarter(fp_mul_pot(a_mod, ibits));
  int32_t remainder = fp_sub(a_mod, a);
  int k;
  for (k = -2; k <= 4; k++) {
    if (ibits > k) {
      int32_t bit = remainder & (int32_t)(1u << (fbits + k));
      result = fp_select(fp_mask(bit != 0), ep_srdhm(result, kmult[k + 2]), result);
    }
  }
  return fp_select(fp_mask(a == 0), Q0_ONE, result);
}

/* Newton-Raphson reciprocal of half_denominator in Q2 (x ~= 1 / half_denominator). */
static int32_t nr_reciprocal_q2(int32_t half_den) {
  const int32_t c48_17 = 1515870810;
  const int32_t cneg32_17 = -1010580540;
  const int32_t one_q2 = 1 << 29;
  int32_t x = fp_add(c48_17, ep_srdhm(half_den, cneg32_17));
  int i;
  for (i = 0; i < 3; i++) {
    int32_t hdx = ep_srdhm(half_den, x);
    int32_t one_minus = fp_sub(one_q2, hdx);
    x = fp_add(x, fp_mul_pot(ep_srdhm(x, one_minus), 2));
  }
  return x;
}

/* logistic(a), a in Q4, result in Q0. */
static int32_t fp_logistic(int32_t a) {
  int32_t pos_mask = fp_mask(a > 0);
  int32_t zero_mask = fp_mask(a == 0);
  int32_t abs_a = fp_select(pos_mask, a, fp_sub(0, a));
  int32_t e = exp_negative(fp_sub(0, abs_a), 4);
  int32_t x = nr_reciprocal_q2(rounding_half_sum(e, Q0_ONE));
  int32_t r_pos = fp_mul_pot(x, 1); /* 1/(1+e) = x/2: Q2 raw read as Q1, rescaled to Q0 */
  int32_t r_neg = fp_sub(Q0_ONE, r_pos);
  return fp_select(zero_mask, 1 << 30, fp_select(pos_mask, r_pos, r_neg));
}

/* tanh(a), a in Q4, result in Q0. */
static int32_t fp_tanh(int32_t a) {
  int32_t neg_mask = fp_mask(a < 0);
  int32_t zero_mask = fp_mask(a == 0);
  int32_t n = fp_select(neg_mask, a, fp_sub(0, a));
  /* exp(2n): the same raw read with 5 integer bits doubles the value. */
  int32_t e = exp_negative(n, 5);
  int32_t x = nr_reciprocal_q2(rounding_half_sum(e, Q0_ONE));
  int32_t t = fp_mul_pot(fp_sub(x, 1 << 29), 2);
  return fp_select(zero_mask, 0, fp_select(neg_mask, fp_sub(0, t), t));
}

EP_COLD int8_t ep_logistic_i8(int32_t input, int32_t radius, int32_t mult, int32_t shift) {
  int32_t q4, out;
  if (input <= -radius) return -128;
  if (input >= radius) return 127;
  q4 = ep_mbqm(input, mult, shift);
  out = ep_rdbpot(fp_logistic(q4), 23) - 128;
  return (int8_t)ep_clamp_i32(out, -128, 127);
}

EP_COLD int8_t ep_tanh_i8(int32_t input, int32_t radius, int32_t mult, int32_t shift) {
  int32_t q4, out;
  if (input <= -radius) return -128;
  if (input >= radius) return 127;
  q4 = ep_mbqm(input, mult, shift);
  out = ep_rdbpot(fp_tanh(q4), 24);
  return (int8_t)ep_clamp_i32(out, -128, 127);
}

int32_t ep_fp_exp_negative(int32_t a, int ibits) { return exp_negative(a, ibits); }

int32_t ep_fp_one_over_one_plus_x(int32_t a) {
  return fp_mul_pot(nr_reciprocal_q2(rounding_half_sum(a, Q0_ONE)), 1); /* Rescale<0>(ExactMulByPot<-1>(x)) */
}

/* A positive float as man * 2^exp with an integer mantissa (subnormals included). */
static uint32_t f_parts(float f, int *exp) {
  uint32_t bits;
  uint32_t be;
  memcpy(&bits, &f, 4);
  be = (bits >> 23) & 0xffu;
  *exp = be ? (int)be - 150 : -149;
  return be ? (bits & 0x7fffffu) | 0x800000u : bits & 0x7fffffu;
}

EP_COLD int32_t ep_ratio_q31(float a, float b, float c, int p2, int *e) {
  int ea, eb, ec, pos;
  const uint64_t n = (uint64_t)f_parts(a, &ea) * f_parts(b, &eb); /* exact, like (double)a * (double)b */
  const uint32_t d = f_parts(c, &ec);
  uint64_t q = 0, m;
  uint32_t r = 0, sticky;
  *e = 0;
  if (n == 0 || d == 0) return 0;
  /* Long division one quotient bit at a time (no 64-bit division routine): bits 47..0 of n, then zeros, until
   * the quotient has 55 bits (53 for the double, a round bit, a guard bit); r < 2d < 2^25 throughout. */
  for (pos = 47; q < ((uint64_t)1 << 54); pos--) {
    r = 2u * r + (pos >= 0 ? (uint32_t)(n >> pos) & 1u : 0u);
    q = 2u * q + (r >= d);
    if (r >= d) r -= d;
  }
  sticky = (q & 1u) | (r != 0);
  m = q >> 2;
  if (((q >> 1) & 1u) && (sticky || (m & 1u))) m++; /* round to nearest even, as the double division does */
  pos += 3;                                         /* the value is m * 2^(pos + ea + eb - ec + p2) */
  if (m == ((uint64_t)1 << 53)) {
    m >>= 1;
    pos++;
  }
  /* frexp: m / 2^53 in [0.5, 1); round(q * 2^31) rounds half away from zero. */
  *e = pos + ea + eb - ec + p2 + 53;
  m = (m + ((uint64_t)1 << 21)) >> 22;
  if (m == ((uint64_t)1 << 31)) {
    m >>= 1;
    *e += 1;
  }
  return (int32_t)m;
}

EP_COLD void ep_quantize_ratio(float a, float b, float c, int p2, int32_t *mult, int32_t *shift) {
  int e;
  int32_t q = ep_ratio_q31(a, b, c, p2, &e);
  if (q == 0 || e < -31) {
    q = 0;
    e = 0;
  }
  if (e > 30) { /* as ep_quantize_multiplier: saturated */
    e = 30;
    q = INT32_MAX;
  }
  *mult = q;
  *shift = e;
}
