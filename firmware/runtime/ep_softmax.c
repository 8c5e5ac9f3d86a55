/*
 * SOFTMAX int8 -> int8, bit-exact with TFLM's reference kernel: plain C, it evaluates the gemmlowp exp TFLM uses at
 * invoke (masked below diff_min), one fixed-point reciprocal per row. Shared pieces: ep_window.h / ep_window.c.
 */
#include <math.h>
#include <string.h>

#include "ep_window.h"

#if EP_RT_CONV /* the whole file; see ep_kernels.h */

#define SOFTMAX_MAX_DEPTH 256u /* keeps the reciprocal's rounding shift within 31 bits */

int ep_softmax_shape(const ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts, float *beta) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]];
  uint32_t beta_bits, i, n = 1;
  if (op->n_in != 1 || op->n_out != 1) return EP_RT_ERR_OP;
  TRY(ep_fb_scalar(fb, opts, 0, 4, 0, &beta_bits));
  memcpy(beta, &beta_bits, 4);
  if (in->rank < 1 || in->rank != out->rank) return EP_RT_ERR_SHAPE;
  for (i = 0; i < in->rank; i++) {
    if (in->dims[i] != out->dims[i]) return EP_RT_ERR_SHAPE;
    n *= (uint32_t)in->dims[i];
  }
  op->depth = (uint32_t)in->dims[in->rank - 1];
  if (op->depth == 0) return EP_RT_ERR_SHAPE; /* the loader refuses empty tensors first; no division by 0 here */
  op->batches = n / op->depth;
  return 0;
}

int ep_softmax_prepare(ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]];
  float beta;
  double real, radius;
  TRY(ep_softmax_shape(m, op, fb, opts, &beta));
  if (in->dtype != EP_DT_INT8 || out->dtype != EP_DT_INT8) return EP_RT_ERR_DTYPE;
  if (!q8(in) || !q8(out)) return EP_RT_ERR_QUANT;
  /* TFLM's int8 output quantisation for SOFTMAX (checked there with this tolerance). */
  if (out->zero_point != -128 || fabsf(out->scale - 1.0f / 256.0f) > 0.001f / 256.0f) return EP_RT_ERR_QUANT;
  if (!(beta > 0.0f) || !isfinite(beta)) return EP_RT_ERR_OP;
  if (op->depth > SOFTMAX_MAX_DEPTH) return EP_RT_ERR_LIMITS;
  /* PreprocessSoftmaxScaling with 5 integer bits, then CalculateInputRadius. */
  real = (double)beta * (double)in->scale * (double)(1 << 26);
  if (real >= 1073741824.0) return EP_RT_ERR_QUANT; /* TFLM would need a left shift of 31 */
  ep_quantize_multiplier(real, &op->mult[0], &op->shift[0]);
  if (op->shift[0] < 0) return EP_RT_ERR_QUANT; /* QuantizeMultiplierGreaterThanOne requires >= 1 */
  radius = 31.0 * (double)(1ll << 26) / (double)(1ll << op->shift[0]);
  op->p.softmax.diff_min = -(int32_t)floor(radius);
  op->kind = EP_K_SOFTMAX_I8;
  return 0;
}

/* 12 - clz(sum) for a softmax sum in [2^19, 2^28): the maximum contributes exactly 2^19 and every term at most
 * that, with at most 256 terms. Counted branch-free (the instruction count does not depend on the data). */
static int32_t bits_over_unit(uint32_t sum) {
  int32_t n = 0, k;
  for (k = 20; k <= 27; k++) n += (int32_t)((((uint32_t)1 << k) - 1u - sum) >> 31);
  return n;
}

/* exp(beta * scale * diff) for diff = x - max in [-255, 0], Q0: TFLM's MultiplyByQuantizedMultiplierGreaterThanOne
 * then exp_on_negative_values with 5 integer bits; 0 below diff_min, which adds nothing to the sum and gives the
 * int8 minimum as TFLM's skip does. Always evaluated, then masked: no branch on the data. */
static int32_t softmax_exp(int32_t diff, int32_t mult, int32_t shift, int32_t diff_min) {
  const int32_t keep = ~((diff - diff_min) >> 31); /* -1 if diff >= diff_min (no overflow: diff_min > -2^31) */
  const int32_t e = ep_fp_exp_negative(ep_srdhm((int32_t)((uint32_t)diff << shift), mult), 5);
  return e & keep;
}

int ep_k_softmax_i8(const ep_model_t *m, const ep_op_t *op) {
  const int8_t *x = (const int8_t *)m->tensors[op->in[0]].data;
  int8_t *y = (int8_t *)m->tensors[op->out[0]].data;
  const int32_t mult = op->mult[0], shift = op->shift[0], diff_min = op->p.softmax.diff_min;
  const uint32_t depth = op->depth;
  uint32_t i, c;
  for (i = 0; i < op->batches; i++, x += depth, y += depth) {
    int32_t mx = -128, over, scale;
    uint32_t sum = 0;
    for (c = 0; c < depth; c++) {
      const int32_t d = x[c] - mx;
      mx += d & ~(d >> 31); /* max without a data-dependent branch */
    }
    for (c = 0; c < depth; c++) sum += (uint32_t)ep_rdbpot(softmax_exp(x[c] - mx, mult, shift, diff_min), 12);
    /* GetReciprocal(sum, 12): 1 / (1 + x) of the sum normalised into [1, 2). */
    over = bits_over_unit(sum);
    scale = ep_fp_one_over_one_plus_x((int32_t)((sum << (12 - over)) - 0x80000000u));
    for (c = 0; c < depth; c++) {
      const int32_t v = ep_rdbpot(ep_srdhm(scale, softmax_exp(x[c] - mx, mult, shift, diff_min)), over + 31 - 8);
      y[c] = (int8_t)ep_clamp_i32(v - 128, -128, 127);
    }
  }
  (void)m;
  return 0;
}

#else
/* ISO C wants a translation unit to declare something. */
typedef int ep_rt_softmax_left_out;
#endif /* EP_RT_CONV */
