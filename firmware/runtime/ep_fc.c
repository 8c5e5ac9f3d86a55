/*
 * FULLY_CONNECTED kernels. The int8 result equals TFLM's reference: acc = bias + sum (x - zp_in) w,
 * rescaled by the (per-tensor or per-channel) multiplier, plus zp_out, clamped to the activation range.
 * The input zero-point term is folded into the bias at init, so the hot loop is a plain int8 dot product;
 * only how that int32 sum is formed differs between cores (DSP SIMD on M4/M7/M33, unrolled C elsewhere).
 */
#include <string.h>

#include "ep_kernels.h"
#include "ep_qmath.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define EP_FC_DSP 1
#else
#define EP_FC_DSP 0
#endif

#if EP_FC_DSP
static inline uint32_t ld32(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4); /* a single LDR on v7E-M/v8-M, which tolerate unaligned word loads */
  return v;
}

/* Four rows share every input load: x is read as 4 bytes, split into even/odd int16 lanes once. */
static void dot4(const int8_t *w, const int8_t *x, uint32_t depth, int32_t *acc) {
  const int8_t *w0 = w, *w1 = w + depth, *w2 = w + 2u * depth, *w3 = w + 3u * depth;
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  uint32_t n = depth >> 2, d;
  while (n--) {
    uint32_t xv = ld32(x);
    int16x2_t x02 = __sxtb16(xv), x13 = __sxtb16(__ror(xv, 8));
    uint32_t v;
    x += 4;
    v = ld32(w0);
    w0 += 4;
    a0 = __smlad(__sxtb16(v), x02, a0);
    a0 = __smlad(__sxtb16(__ror(v, 8)), x13, a0);
    v = ld32(w1);
    w1 += 4;
    a1 = __smlad(__sxtb16(v), x02, a1);
    a1 = __smlad(__sxtb16(__ror(v, 8)), x13, a1);
    v = ld32(w2);
    w2 += 4;
    a2 = __smlad(__sxtb16(v), x02, a2);
    a2 = __smlad(__sxtb16(__ror(v, 8)), x13, a2);
    v = ld32(w3);
    w3 += 4;
    a3 = __smlad(__sxtb16(v), x02, a3);
    a3 = __smlad(__sxtb16(__ror(v, 8)), x13, a3);
  }
  for (d = 0; d < (depth & 3u); d++) {
    int32_t xd = x[d];
    a0 = (int32_t)((uint32_t)a0 + (uint32_t)(w0[d] * xd));
    a1 = (int32_t)((uint32_t)a1 + (uint32_t)(w1[d] * xd));
    a2 = (int32_t)((uint32_t)a2 + (uint32_t)(w2[d] * xd));
    a3 = (int32_t)((uint32_t)a3 + (uint32_t)(w3[d] * xd));
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

static int32_t dot1(const int8_t *w, const int8_t *x, uint32_t depth, int32_t a) {
  uint32_t n = depth >> 2, d;
  while (n--) {
    uint32_t xv = ld32(x), v = ld32(w);
    a = __smlad(__sxtb16(v), __sxtb16(xv), a);
    a = __smlad(__sxtb16(__ror(v, 8)), __sxtb16(__ror(xv, 8)), a);
    x += 4;
    w += 4;
  }
  for (d = 0; d < (depth & 3u); d++) a = (int32_t)((uint32_t)a + (uint32_t)(w[d] * x[d]));
  return a;
}
#else
/* Portable: four rows share each input byte; one negative index addresses all five streams. */
static void dot4(const int8_t *w, const int8_t *x, uint32_t depth, int32_t *acc) {
  const int8_t *xe = x + depth;
  const int8_t *w0 = w + depth, *w1 = w + 2u * depth, *w2 = w + 3u * depth, *w3 = w + 4u * depth;
  /* Unsigned accumulators: wrap-around (never reached by sane models) must not be UB. */
  uint32_t a0 = (uint32_t)acc[0], a1 = (uint32_t)acc[1], a2 = (uint32_t)acc[2], a3 = (uint32_t)acc[3];
  int32_t i = -(int32_t)depth;
  while (i != 0) {
    int32_t xv = xe[i];
    a0 += (uint32_t)(w0[i] * xv);
    a1 += (uint32_t)(w1[i] * xv);
    a2 += (uint32_t)(w2[i] * xv);
    a3 += (uint32_t)(w3[i] * xv);
    i++;
  }
  acc[0] = (int32_t)a0;
  acc[1] = (int32_t)a1;
  acc[2] = (int32_t)a2;
  acc[3] = (int32_t)a3;
}

static int32_t dot1(const int8_t *w, const int8_t *x, uint32_t depth, int32_t a) {
  uint32_t d, u = (uint32_t)a;
  for (d = 0; d < depth; d++) u += (uint32_t)(w[d] * x[d]);
  return (int32_t)u;
}
#endif

void ep_fc_dot_rows(const int8_t *w, const int8_t *x, const int32_t *bias, int32_t *acc, uint32_t rows,
                    uint32_t depth) {
  uint32_t r = 0;
  for (; r + 4u <= rows; r += 4u) {
    acc[r] = bias[r];
    acc[r + 1u] = bias[r + 1u];
    acc[r + 2u] = bias[r + 2u];
    acc[r + 3u] = bias[r + 3u];
    dot4(w + (size_t)r * depth, x, depth, acc + r);
  }
  for (; r < rows; r++) acc[r] = dot1(w + (size_t)r * depth, x, depth, bias[r]);
}

int ep_k_fc_i8(const ep_model_t *m, const ep_op_t *op) {
  const int8_t *x = (const int8_t *)m->tensors[op->in[0]].data;
  const int8_t *w = (const int8_t *)m->tensors[op->in[1]].data;
  int8_t *y = (int8_t *)m->tensors[op->out[0]].data;
  const int32_t *bias = op->scratch;
  const int32_t *cm = op->i2 ? op->scratch + op->rows : NULL;
  const int32_t *cs = op->i2 ? op->scratch + 2u * op->rows : NULL;
  uint32_t b, r;
  for (b = 0; b < op->batches; b++) {
    const int8_t *xb = x + (size_t)b * op->depth;
    int8_t *yb = y + (size_t)b * op->rows;
    r = 0;
    while (r < op->rows) {
      /* Accumulate in blocks of up to 16 rows on the stack, then requantise them. */
      int32_t acc[16];
      uint32_t n = op->rows - r > 16u ? 16u : op->rows - r, k;
      ep_fc_dot_rows(w + (size_t)r * op->depth, xb, bias + r, acc, n, op->depth);
      for (k = 0; k < n; k++) {
        int32_t v = cm ? ep_mbqm(acc[k], cm[r + k], cs[r + k]) : ep_mbqm(acc[k], op->mult[0], op->shift[0]);
        yb[r + k] = (int8_t)ep_clamp_i32(ep_add_wrap(v, op->i1), op->act_min, op->act_max);
      }
      r += n;
    }
  }
  return 0;
}

static float ldf(const uint8_t *p) {
  float f;
  memcpy(&f, p, 4);
  return f;
}

int ep_k_fc_f32(const ep_model_t *m, const ep_op_t *op) {
  const uint8_t *x = m->tensors[op->in[0]].data;
  const uint8_t *w = m->tensors[op->in[1]].data;
  const uint8_t *bias = (op->n_in == 3 && op->in[2] >= 0) ? m->tensors[op->in[2]].data : NULL;
  uint8_t *y = m->tensors[op->out[0]].data;
  float lo, hi;
  uint32_t b, r, d;
  memcpy(&lo, &op->act_min, 4);
  memcpy(&hi, &op->act_max, 4);
  for (b = 0; b < op->batches; b++) {
    for (r = 0; r < op->rows; r++) {
      float s = 0.0f, v;
      for (d = 0; d < op->depth; d++)
        s += ldf(x + 4u * ((size_t)b * op->depth + d)) * ldf(w + 4u * ((size_t)r * op->depth + d));
      if (bias) s += ldf(bias + 4u * r);
      v = s < lo ? lo : (s > hi ? hi : s);
      memcpy(y + 4u * ((size_t)b * op->rows + r), &v, 4);
    }
  }
  return 0;
}
