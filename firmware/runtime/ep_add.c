/*
 * int8 ADD and SUB of two same-shape tensors, bit-exact with TFLM's reference arithmetic (ep_addsub_i8), by two
 * 256-entry tables built per invoke: an input's rescale (its zero point, the 2^20 left shift, its multiplier and
 * rounding shift) depends on its int8 value alone, so each element looks both up and computes only the output rescale
 * of their sum (DSP: SMMULR, the output zero point folded into the rounding constant, four outputs clamped per word).
 * Taken when the tensors are large enough to pay for the tables and the op's constants keep that short arithmetic
 * exact; ep_k_elementwise (ep_kernels.c) runs every other case.
 */
#include <string.h>

#include "ep_add.h"
#include "ep_qmath.h"
#include "ep_simd.h"

/* Elements from which building the two tables (512 rescales) costs less than it saves (about 75 instructions per
 * element on M4 against about 13). */
#define ADD_TABLE_MIN 512u

/* Output rescale of the sum `s` of two table entries (stored doubled on DSP: s = 2 (sa +- sb)), saturated to int8:
 * SRDHM(sa +- sb, mult), then TFLM's rounding right shift by e with the zero point in k = 2^(e-1) + zp 2^e. */
static inline int32_t out_rescale(int32_t s, int32_t mult, int32_t k, int32_t e) {
  int32_t p;
#if EP_SIMD_DSP
  __asm__("smmulr %0, %1, %2" : "=r"(p) : "r"(s), "r"(mult));
#else
  p = ep_srdhm(s, mult);
#endif
  return ep_sat8((k + p + (p >> 31)) >> e);
}

int ep_addsub_i8_tables(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *ta = &m->tensors[op->in[0]], *tb = &m->tensors[op->in[1]], *to = &m->tensors[op->out[0]];
  const int8_t *xa = (const int8_t *)ta->data, *xb = (const int8_t *)tb->data;
  int8_t *y = (int8_t *)to->data;
  const uint32_t n = op->rows;
  const int32_t e = -op->shift[2], mult = op->mult[2], lo = op->act_min, hi = op->act_max;
  const int32_t k = (int32_t)(((uint32_t)1 << ((e - 1) & 31)) + (uint32_t)op->p.bin.zp_out * ((uint32_t)1 << (e & 31)));
  const int sub = op->kind == EP_K_SUB_I8;
  int32_t tab_a[256], tab_b[256], max_a = 0, max_b = 0, v;
  const int32_t *ca = tab_a + 128, *cb = tab_b + 128;
  uint32_t i = 0;
  if (op->kind != EP_K_ADD_I8 && !sub) return 0;
  /* e in [1, 21]: the rounding constant needs a right shift, and |p| + |k| < 2^30 + 2^29 stays in int32. */
  if (n < ADD_TABLE_MIN || e < 1 || e > 21) return 0;
  for (v = -128; v < 128; v++) {
    const int32_t a = ep_rdbpot(ep_srdhm_2p20(op->p.bin.neg_zp_a + v, op->mult[0]), -op->shift[0]);
    const int32_t b = ep_rdbpot(ep_srdhm_2p20(op->p.bin.neg_zp_b + v, op->mult[1]), -op->shift[1]);
    max_a = a > max_a ? a : (-a > max_a ? -a : max_a);
    max_b = b > max_b ? b : (-b > max_b ? -b : max_b);
    tab_a[v + 128] = EP_SIMD_DSP ? 2 * a : a;
    tab_b[v + 128] = EP_SIMD_DSP ? 2 * (sub ? -b : b) : (sub ? -b : b);
  }
  /* |sa +- sb| < 2^29: doubled it fits int32, so SMMULR(2 s, mult) is SRDHM(s, mult) (its one saturating case is
   * out of reach), and |p| < 2^29. Scaled inputs are at most 255 * 2^20 in magnitude, so this holds for every op whose
   * input shifts are not left shifts; the test is on the model's constants only. */
  if (max_a >= (1 << 28) || max_b >= (1 << 28)) return 0;
#if EP_SIMD_DSP
  {
    const uint32_t lo4 = (uint32_t)(uint8_t)lo * 0x01010101u, hi4 = (uint32_t)(uint8_t)hi * 0x01010101u;
    for (; i + 4u <= n; i += 4u) {
      const uint32_t w = pack4(out_rescale(ca[xa[i]] + cb[xb[i]], mult, k, e),
                               out_rescale(ca[xa[i + 1u]] + cb[xb[i + 1u]], mult, k, e),
                               out_rescale(ca[xa[i + 2u]] + cb[xb[i + 2u]], mult, k, e),
                               out_rescale(ca[xa[i + 3u]] + cb[xb[i + 3u]], mult, k, e));
      const uint32_t c = clamp4(w, lo4, hi4);
      memcpy(y + i, &c, 4); /* one STR: v7E-M/v8-M tolerate unaligned word stores */
    }
  }
#endif
  for (; i < n; i++) {
    const int32_t r = out_rescale(ca[xa[i]] + cb[xb[i]], mult, k, e);
    y[i] = (int8_t)ep_clamp_sel(r, lo, hi);
  }
  return 1;
}
