/*
 * Mixed-precision FULLY_CONNECTED (issue 30), bit-exact with TFLM's reference kernels:
 *
 *  - int4 weights, int8 activations (EP_K_FC_I4). TFLM unpacks the weights to int8 at prepare and runs its int8
 *    kernel; here they stay packed in the model (the flash saving is the point) and are unpacked in registers:
 *    acc = bias + sum (x - zp_in) w in int32, the int8 FC's requantisation.
 *  - int16 activations, int8 weights (EP_K_FC_I16, TFLM's "16x8"): zero points 0, the sum in 64 bits when the
 *    bias is int64 (the converter's choice; TFLM then rescales with its 64-bit MultiplyByQuantizedMultiplier), in
 *    int32 when the bias is int32.
 *  - QUANTIZE int8 <-> int16 (EP_K_REQUANT_I16): TFLM's Requantize.
 */
#include "ep_fc_mixed.h"

#include <string.h>

#include "ep_flatbuf.h"
#include "ep_qmath.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__) && defined(__OPTIMIZE__)
#define EP_MX_DSP 1
#else
#define EP_MX_DSP 0
#endif

/* p.fc of these kinds: zp_in, zp_out, per_channel as for the int8 FC; for EP_K_FC_I16 zp_in holds the bias kind. */
enum { BIAS_NONE = 0, BIAS_I32 = 1, BIAS_I64 = 2 };

uint32_t ep_mixed_packed_bytes(uint32_t type, uint64_t elements) {
  return type == EP_DT_INT4_TFL ? (uint32_t)((elements + 1u) / 2u) : 0u;
}

static int is_q(const ep_tensor_t *t, uint8_t dtype) { return t->dtype == dtype && t->has_quant && t->nchan == 0; }

static uint32_t elements(const ep_tensor_t *t) {
  uint32_t n = 1, i;
  for (i = 0; i < t->rank; i++) n *= (uint32_t)t->dims[i];
  return n;
}

EP_COLD int ep_act_range_16(uint8_t act, const ep_tensor_t *out, int32_t *lo, int32_t *hi) {
  int32_t qmin = -32768, qmax = 32767;
#define EP_QV16(x) (out->zero_point + (int32_t)roundf((x) / out->scale))
  switch (act) {
    case EP_ACT_NONE: break;
    case EP_ACT_RELU:
      if (EP_QV16(0.0f) > qmin) qmin = EP_QV16(0.0f);
      break;
    case EP_ACT_RELU6:
      if (EP_QV16(0.0f) > qmin) qmin = EP_QV16(0.0f);
      if (EP_QV16(6.0f) < qmax) qmax = EP_QV16(6.0f);
      break;
    case EP_ACT_RELU_N1_TO_1:
      if (EP_QV16(-1.0f) > qmin) qmin = EP_QV16(-1.0f);
      if (EP_QV16(1.0f) < qmax) qmax = EP_QV16(1.0f);
      break;
    default: return EP_RT_ERR_OP;
  }
#undef EP_QV16
  *lo = qmin;
  *hi = qmax;
  return 0;
}

int ep_fc_mixed_prepare(ep_model_t *m, ep_op_t *op) {
  const ep_tensor_t *in0 = &m->tensors[op->in[0]], *w = &m->tensors[op->in[1]], *out = &m->tensors[op->out[0]];
  const ep_tensor_t *b = (op->n_in == 3 && op->in[2] >= 0) ? &m->tensors[op->in[2]] : NULL;
  const int int4 = w->dtype == EP_DT_INT4_TFL;
  const uint8_t act_t = int4 ? EP_DT_INT8 : EP_DT_INT16;
  if (in0->dtype != act_t || out->dtype != act_t) return EP_RT_ERR_DTYPE;
  if (!int4 && w->dtype != EP_DT_INT8) return EP_RT_ERR_DTYPE;
  if (!is_q(in0, act_t) || !is_q(out, act_t) || !w->has_quant || w->zero_point != 0) return EP_RT_ERR_QUANT;
  if (w->nchan != 0) {
    /* TFLM (PyPI tflite-micro 2026-10) refuses per-channel int4 FULLY_CONNECTED at prepare: so does the runtime. */
    if (int4 || w->quant_dim != 0 || w->nchan != op->rows) return EP_RT_ERR_QUANT;
    op->p.fc.per_channel = 1;
  } else {
    ep_quantize_multiplier((double)in0->scale * (double)w->scale / (double)out->scale, &op->mult[0], &op->shift[0]);
  }
  m->macs += (uint64_t)op->batches * op->rows * op->depth;
  if (int4) {
    if (b != NULL && b->dtype != EP_DT_INT32) return EP_RT_ERR_DTYPE;
    if (in0->zero_point < -128 || in0->zero_point > 127 || out->zero_point < -128 || out->zero_point > 127)
      return EP_RT_ERR_QUANT;
    op->p.fc.zp_in = in0->zero_point;
    op->p.fc.zp_out = out->zero_point;
    op->kind = EP_K_FC_I4;
    return ep_act_range_q(op->act, out, &op->act_min, &op->act_max);
  }
  /* TFLM's int16 kernels take symmetric activations. */
  if (in0->zero_point != 0 || out->zero_point != 0) return EP_RT_ERR_QUANT;
  if (b != NULL && b->dtype != EP_DT_INT32 && b->dtype != EP_DT_INT64) return EP_RT_ERR_DTYPE;
  op->p.fc.zp_in = b == NULL ? BIAS_NONE : (b->dtype == EP_DT_INT64 ? BIAS_I64 : BIAS_I32);
  op->p.fc.zp_out = 0;
  op->kind = EP_K_FC_I16;
  return ep_act_range_16(op->act, out, &op->act_min, &op->act_max);
}

int ep_quant_mixed_prepare(ep_model_t *m, ep_op_t *op) {
  const ep_tensor_t *in0 = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]];
  if (op->n_in != 1 || op->n_out != 1) return EP_RT_ERR_OP;
  if (!((in0->dtype == EP_DT_INT8 && out->dtype == EP_DT_INT16) || (in0->dtype == EP_DT_INT16 && out->dtype == EP_DT_INT8)))
    return EP_RT_ERR_DTYPE;
  if (!is_q(in0, in0->dtype) || !is_q(out, out->dtype)) return EP_RT_ERR_QUANT;
  if (elements(in0) != elements(out)) return EP_RT_ERR_SHAPE;
  ep_quantize_multiplier((double)in0->scale / (double)out->scale, &op->mult[0], &op->shift[0]);
  op->p.quant.zp_in = in0->zero_point;
  op->p.quant.zp_out = out->zero_point;
  op->p.quant.unused = out->dtype;
  op->kind = EP_K_REQUANT_I16;
  return 0;
}

uint32_t ep_fc_mixed_scratch_bytes(const ep_op_t *op) {
  if (op->kind == EP_K_FC_I4) return op->rows * 4u * (op->p.fc.per_channel ? 3u : 1u);
  if (op->kind == EP_K_FC_I16) return op->p.fc.per_channel ? op->rows * 8u : 0u;
  return 0;
}

uint32_t ep_fc_mixed_tmp_bytes(const ep_op_t *op) {
  /* EP_TGT_DSP, not EP_MX_DSP: the host planner built for a DSP target must reserve what the device's kernel uses. */
#if EP_TGT_DSP
  /* int4: the input widened to int16 lane pairs per 8 steps; 16x8: the int16 input reordered per 4 steps. */
  if (op->kind == EP_K_FC_I4) return (op->depth & 1u) ? 0u : (op->depth & ~7u) * 2u;
  if (op->kind == EP_K_FC_I16) return (op->depth & ~3u) * 2u;
#endif
  (void)op;
  return 0;
}

/* Element i of a packed int4 tensor, sign-extended. */
static inline int32_t nib(const uint8_t *p, uint32_t i) {
  const int32_t byte = (int32_t)p[i >> 1];
  return (int32_t)((uint32_t)(i & 1u ? byte >> 4 : byte) << 28) >> 28;
}

void ep_fc_mixed_init(const ep_model_t *m, ep_op_t *op) {
  const ep_tensor_t *w = &m->tensors[op->in[1]], *in0 = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]];
  const ep_tensor_t *b = (op->n_in == 3 && op->in[2] >= 0) ? &m->tensors[op->in[2]] : NULL;
  uint32_t r, d;
  if (op->kind == EP_K_FC_I4) {
    for (r = 0; r < op->rows; r++) {
      /* The input zero point folded into the bias, as the int8 FC does: sum (x - zp) w = sum x w - zp sum w. */
      int32_t s = 0;
      for (d = 0; d < op->depth; d++) s += nib(w->data, r * op->depth + d);
      op->scratch[r] = (int32_t)((b ? ep_le32(b->data + 4u * r) : 0u) - (uint32_t)op->p.fc.zp_in * (uint32_t)s);
      if (op->p.fc.per_channel)
        ep_fc_chan_multiplier(in0, w, out, r, &op->scratch[op->rows + r], &op->scratch[2u * op->rows + r]);
    }
  } else if (op->kind == EP_K_FC_I16 && op->p.fc.per_channel) {
    for (r = 0; r < op->rows; r++)
      ep_fc_chan_multiplier(in0, w, out, r, &op->scratch[r], &op->scratch[op->rows + r]);
  }
}

/* ---------------------------------------------------------------- int4 weights, int8 activations */

#if EP_MX_DSP
/*
 * Two rows per pass, eight depth steps per weight word. Masking a word with 0xF0F0F0F0 leaves each byte's high
 * nibble as a signed byte worth 16 w (odd elements), the word shifted left by 4 and masked gives the even elements
 * likewise; SXTB16 (and its ror-8 form) turns each into two int16 lanes for SMLAD. So the sums are 16x the dot
 * products (exact: |16 w x| <= 2^14, depth <= 2^16) and the input is widened in the matching lane order:
 * per 8 steps the words (x0,x4) (x2,x6) (x1,x5) (x3,x7).
 *   void ep_dot2_i4_dsp(const uint8_t *w0, const uint8_t *w1, const uint32_t *xq, uint32_t groups, int32_t *acc)
 * groups >= 1 (depth / 8); acc[0..1] receive the 16x sums.
 */
void ep_dot2_i4_dsp(const uint8_t *w0, const uint8_t *w1, const uint32_t *xq, uint32_t groups, int32_t *acc);
#define EP_I4_ROW(W, A)                                                                                    \
  "  ldr r10, [" W "], #4\n  and r11, lr, r10, lsl #4\n  and r10, r10, lr\n  sxtb16 r12, r11\n  smlad " A \
  ", r12, r6, " A "\n  sxtb16 r11, r11, ror #8\n  smlad " A ", r11, r7, " A "\n  sxtb16 r12, r10\n  smlad " A   \
  ", r12, r8, " A "\n  sxtb16 r10, r10, ror #8\n  smlad " A ", r10, r9, " A "\n"
#define EP_I4_GROUP "  ldrd r6, r7, [r4], #8\n  ldrd r8, r9, [r4], #8\n" EP_I4_ROW("r2", "r0") EP_I4_ROW("r3", "r1")
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .p2align 2\n"
    "  .global ep_dot2_i4_dsp\n"
    "  .type ep_dot2_i4_dsp, %function\n"
    "  .thumb_func\n"
    "ep_dot2_i4_dsp:\n"
    "  push {r4-r11, lr}\n"
    "  mov r4, r2\n"
    "  mov r5, r3\n"
    "  mov r2, r0\n"
    "  mov r3, r1\n"
    "  movs r0, #0\n"
    "  movs r1, #0\n"
    "  mov lr, #0xF0F0F0F0\n"
    "  lsrs r5, r5, #1\n" /* pairs of groups; C: an odd group */
    "  bcc 2f\n" EP_I4_GROUP
    "2:\n"
    "  cmp r5, #0\n"
    "  beq 4f\n"
    "3:\n" EP_I4_GROUP EP_I4_GROUP
    "  subs r5, r5, #1\n"
    "  bne 3b\n"
    "4:\n"
    "  ldr r12, [sp, #36]\n"
    "  strd r0, r1, [r12]\n"
    "  pop {r4-r11, pc}\n"
    "  .size ep_dot2_i4_dsp, .-ep_dot2_i4_dsp\n");

/* Every pair of rows in one call when the depth is a multiple of 8 (rows then start on word groups and follow each
 * other): per pair the two sums are scaled back (ASR 4) and added to the folded biases, so the per-row cost outside
 * the products is a few instructions.
 *   void ep_rows2_i4_dsp(const uint8_t *w, const uint32_t *xq, const int32_t *bias, int32_t *acc, uint32_t pairs,
 *                        uint32_t groups)
 * pairs >= 1, groups >= 1; bias and acc word aligned. */
void ep_rows2_i4_dsp(const uint8_t *w, const uint32_t *xq, const int32_t *bias, int32_t *acc, uint32_t pairs,
                     uint32_t groups);
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .p2align 2\n"
    "  .global ep_rows2_i4_dsp\n"
    "  .type ep_rows2_i4_dsp, %function\n"
    "  .thumb_func\n"
    "ep_rows2_i4_dsp:\n"
    "  push {r4-r11, lr}\n"
    "  sub sp, sp, #16\n" /* [sp]: xq, [sp+4]: bias, [sp+8]: acc; args: pairs [sp+52], groups [sp+56] */
    "  str r1, [sp]\n"
    "  str r2, [sp, #4]\n"
    "  str r3, [sp, #8]\n"
    "  ldr r5, [sp, #56]\n"
    "  mov r2, r0\n"
    "  add r3, r0, r5, lsl #2\n"
    "  mov lr, #0xF0F0F0F0\n"
    "1:\n"
    "  ldr r4, [sp]\n"
    "  ldr r5, [sp, #56]\n"
    "  movs r0, #0\n"
    "  movs r1, #0\n"
    "  lsrs r5, r5, #1\n"
    "  bcc 2f\n" EP_I4_GROUP
    "2:\n"
    "  cmp r5, #0\n"
    "  beq 4f\n"
    "3:\n" EP_I4_GROUP EP_I4_GROUP
    "  subs r5, r5, #1\n"
    "  bne 3b\n"
    "4:\n"
    "  ldr r12, [sp, #4]\n"
    "  ldmia r12!, {r4, r5}\n"
    "  str r12, [sp, #4]\n"
    "  add r4, r4, r0, asr #4\n"
    "  add r5, r5, r1, asr #4\n"
    "  ldr r12, [sp, #8]\n"
    "  stmia r12!, {r4, r5}\n"
    "  str r12, [sp, #8]\n"
    "  mov r2, r3\n" /* row 1 ended where the next pair's row 0 starts */
    "  ldr r5, [sp, #56]\n"
    "  add r3, r2, r5, lsl #2\n"
    "  ldr r12, [sp, #52]\n"
    "  subs r12, r12, #1\n"
    "  str r12, [sp, #52]\n"
    "  bne 1b\n"
    "  add sp, sp, #16\n"
    "  pop {r4-r11, pc}\n"
    "  .size ep_rows2_i4_dsp, .-ep_rows2_i4_dsp\n");

static void widen_i4(const int8_t *x, uint32_t depth, uint32_t *xq) {
  uint32_t k;
  for (k = 0; k + 8u <= depth; k += 8u, xq += 4) {
    const int8_t *p = x + k;
    xq[0] = (uint16_t)p[0] | (uint32_t)(uint16_t)p[4] << 16;
    xq[1] = (uint16_t)p[2] | (uint32_t)(uint16_t)p[6] << 16;
    xq[2] = (uint16_t)p[1] | (uint32_t)(uint16_t)p[5] << 16;
    xq[3] = (uint16_t)p[3] | (uint32_t)(uint16_t)p[7] << 16;
  }
}
#endif

#if !EP_MX_DSP && defined(__ARM_ARCH_7M__) && defined(__GNUC__)
#define EP_MX_V7M 1
/*
 * Cortex-M3 (v7-M, no SIMD): two rows per pass, one weight byte per row and step: SBFX gives the low nibble, ASR the
 * high one, two MLAs against the input pair loaded by one negative index scaled by 2 (14 instructions per 4 MACs;
 * GCC's C spills the row pointers).
 *   void ep_dot2_i4_v7m(int32_t *acc, const int8_t *x_end, const int8_t *w0_end, const int8_t *w1_end,
 *                       int32_t minus_half)
 * acc[0..1] hold the folded biases in and the sums out; minus_half = -(depth / 2) < 0.
 */
void ep_dot2_i4_v7m(int32_t *acc, const int8_t *x_end, const int8_t *w0_end, const int8_t *w1_end,
                    int32_t minus_half);
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .p2align 2\n"
    "  .global ep_dot2_i4_v7m\n"
    "  .type ep_dot2_i4_v7m, %function\n"
    "  .thumb_func\n"
    "ep_dot2_i4_v7m:\n"
    "  push {r4-r9, lr}\n"
    "  ldr r12, [sp, #28]\n"
    "  ldrd r4, r5, [r0]\n"
    "  add lr, r1, #1\n"
    "1:\n"
    "  ldrsb r6, [r1, r12, lsl #1]\n"
    "  ldrsb r7, [lr, r12, lsl #1]\n"
    "  ldrsb r8, [r2, r12]\n"
    "  sbfx r9, r8, #0, #4\n"
    "  asrs r8, r8, #4\n"
    "  mla r4, r9, r6, r4\n"
    "  mla r4, r8, r7, r4\n"
    "  ldrsb r8, [r3, r12]\n"
    "  sbfx r9, r8, #0, #4\n"
    "  asrs r8, r8, #4\n"
    "  mla r5, r9, r6, r5\n"
    "  mla r5, r8, r7, r5\n"
    "  adds r12, r12, #1\n"
    "  bne 1b\n"
    "  strd r4, r5, [r0]\n"
    "  pop {r4-r9, pc}\n"
    "  .size ep_dot2_i4_v7m, .-ep_dot2_i4_v7m\n");
#else
#define EP_MX_V7M 0
#endif

/* Rows [r0, r0 + n) of one batch: acc[k] = folded bias + dot product. */
static void dot_rows_i4(const uint8_t *w, const int8_t *x, const uint32_t *xq, const int32_t *bias, int32_t *acc,
                        uint32_t r0, uint32_t n, uint32_t depth) {
  uint32_t k = 0, d;
  if (depth & 1u) { /* rows start mid-byte: element by element */
    for (k = 0; k < n; k++) {
      const uint32_t base = (r0 + k) * depth;
      uint32_t a = (uint32_t)bias[k];
      for (d = 0; d < depth; d++) a += (uint32_t)(nib(w, base + d) * x[d]);
      acc[k] = (int32_t)a;
    }
    return;
  }
#if EP_MX_DSP
  {
    const uint32_t groups = depth >> 3, half = depth >> 1, tail = groups * 8u;
    if (tail == depth && groups && n >= 2u && ((uintptr_t)bias & 3u) == 0 && ((uintptr_t)acc & 3u) == 0) {
      ep_rows2_i4_dsp(w + (size_t)r0 * half, xq, bias, acc, n >> 1, groups);
      k = n & ~1u;
    }
    for (; k < n; k += 2u) {
      const uint8_t *w0 = w + (size_t)(r0 + k) * half;
      const uint8_t *w1 = k + 1u < n ? w0 + half : w0; /* an odd last row is computed twice */
      int32_t s[2] = {0, 0};
      uint32_t j;
      if (groups) ep_dot2_i4_dsp(w0, w1, xq, groups, s);
      s[0] >>= 4; /* exact: the sums are 16x the products */
      s[1] >>= 4;
      for (j = tail; j < depth; j += 2u) {
        const int32_t b0 = (int8_t)w0[j >> 1], b1 = (int8_t)w1[j >> 1];
        s[0] += ((int32_t)((uint32_t)b0 << 28) >> 28) * x[j] + (b0 >> 4) * x[j + 1u];
        s[1] += ((int32_t)((uint32_t)b1 << 28) >> 28) * x[j] + (b1 >> 4) * x[j + 1u];
      }
      acc[k] = (int32_t)((uint32_t)bias[k] + (uint32_t)s[0]);
      if (k + 1u < n) acc[k + 1u] = (int32_t)((uint32_t)bias[k + 1u] + (uint32_t)s[1]);
    }
  }
#else
  (void)xq;
  {
    /* Four rows share each input pair; each weight byte gives its low nibble (even element) and high nibble. One
     * negative index runs over the row ends (as the int8 C kernel does), so the loop keeps every pointer in a
     * register on v7-M. */
    const uint32_t half = depth >> 1;
#if EP_MX_V7M
    for (; k + 2u <= n; k += 2u) {
      const int8_t *w0_end = (const int8_t *)w + (size_t)(r0 + k + 1u) * half;
      acc[k] = bias[k];
      acc[k + 1u] = bias[k + 1u];
      ep_dot2_i4_v7m(acc + k, x + depth, w0_end, w0_end + half, -(int32_t)half);
    }
#endif
    for (; k + 4u <= n; k += 4u) {
      const int8_t *w0 = (const int8_t *)w + (size_t)(r0 + k + 1u) * half;
      const int8_t *w1 = w0 + half, *w2 = w1 + half, *w3 = w2 + half;
      const int8_t *xe = x + depth;
      uint32_t a0 = (uint32_t)bias[k], a1 = (uint32_t)bias[k + 1u], a2 = (uint32_t)bias[k + 2u],
               a3 = (uint32_t)bias[k + 3u];
      int32_t i = -(int32_t)half;
      while (i != 0) {
        const int32_t xl = xe[2 * i], xh = xe[2 * i + 1];
        int32_t v;
        v = w0[i];
        a0 += (uint32_t)(((int32_t)((uint32_t)v << 28) >> 28) * xl);
        a0 += (uint32_t)((v >> 4) * xh);
        v = w1[i];
        a1 += (uint32_t)(((int32_t)((uint32_t)v << 28) >> 28) * xl);
        a1 += (uint32_t)((v >> 4) * xh);
        v = w2[i];
        a2 += (uint32_t)(((int32_t)((uint32_t)v << 28) >> 28) * xl);
        a2 += (uint32_t)((v >> 4) * xh);
        v = w3[i];
        a3 += (uint32_t)(((int32_t)((uint32_t)v << 28) >> 28) * xl);
        a3 += (uint32_t)((v >> 4) * xh);
        i++;
      }
      acc[k] = (int32_t)a0;
      acc[k + 1u] = (int32_t)a1;
      acc[k + 2u] = (int32_t)a2;
      acc[k + 3u] = (int32_t)a3;
    }
    for (; k < n; k++) {
      const int8_t *wr = (const int8_t *)w + (size_t)(r0 + k) * half;
      uint32_t a = (uint32_t)bias[k];
      for (d = 0; d < half; d++) {
        const int32_t v = wr[d];
        a += (uint32_t)(((int32_t)((uint32_t)v << 28) >> 28) * x[2u * d] + (v >> 4) * x[2u * d + 1u]);
      }
      acc[k] = (int32_t)a;
    }
  }
#endif
}

int ep_k_fc_i4(const ep_model_t *m, const ep_op_t *op) {
  const int8_t *x = (const int8_t *)m->tensors[op->in[0]].data;
  const uint8_t *w = m->tensors[op->in[1]].data;
  int8_t *y = (int8_t *)m->tensors[op->out[0]].data;
  const int32_t *bias = op->scratch;
  const int32_t *cm = op->p.fc.per_channel ? op->scratch + op->rows : NULL;
  const int32_t *cs = op->p.fc.per_channel ? op->scratch + 2u * op->rows : NULL;
  uint32_t b, r, k;
  for (b = 0; b < op->batches; b++) {
    const int8_t *xb = x + (size_t)b * op->depth;
    int8_t *yb = y + (size_t)b * op->rows;
    uint32_t *xq = (uint32_t *)(void *)m->fc_tmp;
#if EP_MX_DSP
    if (!(op->depth & 1u)) widen_i4(xb, op->depth, xq);
#endif
    for (r = 0; r < op->rows; r += 64u) {
      int32_t acc[64];
      const uint32_t n = op->rows - r > 64u ? 64u : op->rows - r;
      dot_rows_i4(w, xb, xq, bias + r, acc, r, n, op->depth);
      for (k = 0; k < n; k++) {
        const int32_t v = cm ? ep_mbqm(acc[k], cm[r + k], cs[r + k]) : ep_mbqm(acc[k], op->mult[0], op->shift[0]);
        yb[r + k] = (int8_t)ep_clamp_i32(ep_sat8(ep_add_wrap(v, op->p.fc.zp_out)), op->act_min, op->act_max);
      }
    }
  }
  return 0;
}

/* ---------------------------------------------------------------- int16 activations, int8 weights */

#if EP_MX_DSP
/* Two rows, four steps per weight word: SXTB16 of the word (w0,w2) and of it rotated by 8 (w1,w3) against the input
 * reordered into (x0,x2),(x1,x3), 64-bit sums by SMLALD. */
static void dot2_i16(const int8_t *w0, const int8_t *w1, const uint32_t *xq, uint32_t quads, int64_t *s) {
  uint32_t l0 = 0, h0 = 0, l1 = 0, h1 = 0;
  while (quads--) {
    uint32_t v0, v1, t0, t1;
    const uint32_t xa = xq[0], xb = xq[1];
    memcpy(&v0, w0, 4);
    memcpy(&v1, w1, 4);
    __asm__("sxtb16 %0, %1" : "=r"(t0) : "r"(v0));
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(v0) : "r"(v0));
    __asm__("smlald %0, %1, %2, %3" : "+r"(l0), "+r"(h0) : "r"(t0), "r"(xa));
    __asm__("smlald %0, %1, %2, %3" : "+r"(l0), "+r"(h0) : "r"(v0), "r"(xb));
    __asm__("sxtb16 %0, %1" : "=r"(t1) : "r"(v1));
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(v1) : "r"(v1));
    __asm__("smlald %0, %1, %2, %3" : "+r"(l1), "+r"(h1) : "r"(t1), "r"(xa));
    __asm__("smlald %0, %1, %2, %3" : "+r"(l1), "+r"(h1) : "r"(v1), "r"(xb));
    w0 += 4;
    w1 += 4;
    xq += 2;
  }
  s[0] = (int64_t)((uint64_t)h0 << 32 | l0);
  s[1] = (int64_t)((uint64_t)h1 << 32 | l1);
}
#endif

/* Row sums of one batch in 64 bits. Elsewhere than on DSP cores: int32 partial sums over chunks of 256 steps
 * (exact: |x w| <= 2^22), so a core without a 64-bit multiply-add adds 64 bits once per chunk. */
static void dot_rows_i16(const int8_t *w, const int16_t *x, const uint32_t *xq, int64_t *s, uint32_t n,
                         uint32_t depth) {
  uint32_t k = 0, d;
#if EP_MX_DSP
  {
    const uint32_t quads = depth >> 2, tail = quads * 4u;
    for (; k + 2u <= n; k += 2u) {
      const int8_t *w0 = w + (size_t)k * depth;
      dot2_i16(w0, w0 + depth, xq, quads, s + k);
      for (d = tail; d < depth; d++) {
        s[k] += (int32_t)w0[d] * x[d];
        s[k + 1u] += (int32_t)w0[depth + d] * x[d];
      }
    }
  }
#else
  (void)xq;
#endif
  for (; k < n; k++) {
    const int8_t *wr = w + (size_t)k * depth;
    int64_t a = 0;
    for (d = 0; d < depth; d += 256u) {
      const uint32_t e = depth - d > 256u ? d + 256u : depth;
      int32_t p = 0;
      uint32_t j;
      for (j = d; j < e; j++) p += (int32_t)wr[j] * x[j];
      a += p;
    }
    s[k] = a;
  }
}

void ep_i16_widen(const int16_t *x, uint32_t depth, uint32_t *xq) {
#if EP_MX_DSP
  uint32_t k;
  for (k = 0; k + 4u <= depth; k += 4u) {
    xq[k / 2u] = (uint16_t)x[k] | (uint32_t)(uint16_t)x[k + 2u] << 16;
    xq[k / 2u + 1u] = (uint16_t)x[k + 1u] | (uint32_t)(uint16_t)x[k + 3u] << 16;
  }
#else
  (void)x, (void)depth, (void)xq;
#endif
}

void ep_i16_dot_rows(const int8_t *w, const int16_t *x, const uint32_t *xq, int64_t *s, uint32_t n, uint32_t depth) {
  dot_rows_i16(w, x, xq, s, n, depth);
}

int ep_k_fc_i16(const ep_model_t *m, const ep_op_t *op) {
  const int16_t *x = (const int16_t *)(const void *)m->tensors[op->in[0]].data;
  const int8_t *w = (const int8_t *)m->tensors[op->in[1]].data;
  int16_t *y = (int16_t *)(void *)m->tensors[op->out[0]].data;
  const uint8_t *bias = (op->n_in == 3 && op->in[2] >= 0) ? m->tensors[op->in[2]].data : NULL;
  const int32_t *cm = op->p.fc.per_channel ? op->scratch : NULL;
  const int32_t *cs = op->p.fc.per_channel ? op->scratch + op->rows : NULL;
  const int wide = op->p.fc.zp_in != BIAS_I32;
  uint32_t b, r, k;
  for (b = 0; b < op->batches; b++) {
    const int16_t *xb = x + (size_t)b * op->depth;
    int16_t *yb = y + (size_t)b * op->rows;
    uint32_t *xq = (uint32_t *)(void *)m->fc_tmp;
#if EP_MX_DSP
    for (k = 0; k + 4u <= op->depth; k += 4u) {
      xq[k / 2u] = (uint16_t)xb[k] | (uint32_t)(uint16_t)xb[k + 2u] << 16;
      xq[k / 2u + 1u] = (uint16_t)xb[k + 1u] | (uint32_t)(uint16_t)xb[k + 3u] << 16;
    }
#endif
    for (r = 0; r < op->rows; r += 32u) {
      int64_t s[32];
      const uint32_t n = op->rows - r > 32u ? 32u : op->rows - r;
      dot_rows_i16(w + (size_t)r * op->depth, xb, xq, s, n, op->depth);
      for (k = 0; k < n; k++) {
        const uint32_t row = r + k;
        const int32_t mult = cm ? cm[row] : op->mult[0], shift = cm ? cs[row] : op->shift[0];
        int32_t v;
        if (wide) {
          v = ep_mbqm64(s[k] + (bias ? ep_ld_i64(bias + 8u * row) : 0), mult, shift);
        } else { /* int32 bias: TFLM accumulates in int32 (wrapping) and rescales as the int8 kernels do */
          v = ep_mbqm((int32_t)((uint32_t)(uint64_t)s[k] + ep_le32(bias + 4u * row)), mult, shift);
        }
        yb[row] = (int16_t)ep_clamp_i32(v, op->act_min, op->act_max);
      }
    }
  }
  return 0;
}

/* ---------------------------------------------------------------- QUANTIZE int8 <-> int16 */

int ep_k_requant_i16(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *to = &m->tensors[op->out[0]];
  const uint32_t n = op->rows;
  const int32_t zi = op->p.quant.zp_in, zo = op->p.quant.zp_out, mult = op->mult[0], shift = op->shift[0];
  uint32_t i;
  if (op->p.quant.unused == EP_DT_INT16) {
    const int8_t *xi = (const int8_t *)ti->data;
    int16_t *yo = (int16_t *)(void *)to->data;
    for (i = 0; i < n; i++) yo[i] = (int16_t)ep_clamp_i32(ep_add_wrap(ep_mbqm(xi[i] - zi, mult, shift), zo), -32768, 32767);
  } else {
    const int16_t *xi = (const int16_t *)(const void *)ti->data;
    int8_t *yo = (int8_t *)to->data;
    for (i = 0; i < n; i++) yo[i] = (int8_t)ep_sat8(ep_add_wrap(ep_mbqm(xi[i] - zi, mult, shift), zo));
  }
  return 0;
}
