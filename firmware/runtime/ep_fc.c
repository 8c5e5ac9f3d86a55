/*
 * FULLY_CONNECTED kernels. The int8 result equals TFLM's reference: acc = bias + sum (x - zp_in) w,
 * rescaled by the (per-tensor or per-channel) multiplier, plus zp_out, clamped to the activation range.
 * The input zero-point term is folded into the bias at init, so the hot loop is a plain int8 dot product
 * (on DSP cores an unfused FC instead subtracts it while widening its input and reads the model's bias:
 * ep_fc_model_bias); only how that int32 sum is formed differs between cores (DSP SIMD on M4/M7/M33, an
 * assembly loop on v6-M, C elsewhere).
 */
#include <string.h>

#include "ep_kernels.h"
#include "ep_qmath.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__) && defined(__OPTIMIZE__)
#define EP_FC_DSP 1
#else
#define EP_FC_DSP 0
#endif
#if defined(__ARM_ARCH_6M__) && defined(__GNUC__)
#define EP_FC_V6M 1
#else
#define EP_FC_V6M 0
#endif
/* EP_RT_FC_DEEP=0 (a deploy build whose FCs are all under 64 deep and which has no convolution) leaves dot4's
 * 4-row loop out on DSP cores: rows the quad loops do not take then run dot1, as dot_rows' tail does (same bytes). */
#ifndef EP_RT_FC_DEEP
#define EP_RT_FC_DEEP 1
#endif
#define EP_FC_ROWS4 (EP_RT_FC_DEEP || !EP_FC_DSP)
/* EP_RT_FC_RQ_FULL=0 (a deploy build prepared at export whose per-tensor FCs all take requant_k, checked with
 * ep_fc_unbuilt) leaves requant_block out on DSP cores. */
#ifndef EP_RT_FC_RQ_FULL
#define EP_RT_FC_RQ_FULL 1
#endif
#define EP_FC_RQ_FULL (EP_RT_FC_RQ_FULL || !EP_FC_DSP)

uint32_t ep_fc_tmp_bytes(uint32_t depth) {
  return EP_TGT_DSP ? (depth & ~3u) * 2u : 0u; /* the input as int16 lane pairs */
}

/* The DSP path widens the input once per invoke anyway: subtracting the input zero point there (SSUB16, exact: x - zp
 * lies in [-255, 255]) makes the accumulator bias + sum (x - zp) w, TFLM's own, so the model's bias serves as it
 * is and the folded copy (4 B per row in the arena) is not kept. Only where no depth tail reads the int8 input
 * (depth % 4 == 0), the bias is word aligned for LDM, and no fused step reads the FC's scratch. The portable C path
 * (Cortex-M3, hosts) does the same with the input widened to int16 (LDRSH costs what LDRSB does); v6-M keeps the
 * folded bias (its loop indexes input and weights with one register). */
const int32_t *ep_fc_model_bias(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *b;
  if (EP_TGT_V6M || op->kind != EP_K_FC_I8 || op->fused || op->p.fc.per_channel) return NULL;
  if (EP_TGT_DSP && (op->depth & 3u) != 0) return NULL;
  if (op->n_in != 3 || op->in[2] < 0) return NULL;
  b = &m->tensors[op->in[2]];
  if (((uintptr_t)b->data & 3u) != 0) return NULL;
  return (const int32_t *)(const void *)b->data;
}

EP_COLD void ep_fc_rq_prepare(ep_op_t *op) {
  /* rq_k's conditions (ep_window.h): a right shift e in 1..22 and |acc| < 2^30 for every int8 input, bounded from
   * the bias the accumulator starts from: the folded one plus depth * 2^14 (|x w| <= 128 * 127), or the model's plus
   * depth * 255 * 128 (|x - zp| <= 255). Decided from the constants only: the count stays independent of the data. */
  const int32_t e = -op->shift[0];
  const int64_t room = ((int64_t)1 << 30) - (int64_t)op->depth * (op->p.fc.zp_widen ? 32640 : 16384);
  uint32_t r;
  op->mult[2] = 0;
  if (!EP_FC_DSP || op->p.fc.per_channel || e < 1 || e > 22 || op->mult[0] <= 0) return;
  for (r = 0; r < op->rows; r++) {
    const int64_t b = op->scratch[r];
    if ((b < 0 ? -b : b) >= room) return;
  }
  op->mult[1] = (int32_t)((1u << (e - 1)) + (uint32_t)op->p.fc.zp_out * (1u << e)); /* |zp 2^e| <= 2^29 */
  op->shift[1] = e;
  op->mult[2] = 1;
}

uint32_t ep_fc_op_tmp_bytes(const ep_op_t *op) {
  if (EP_TGT_DSP) return ep_fc_tmp_bytes(op->depth);
  return EP_TGT_V6M || op->p.fc.zp_widen == 0 ? 0u : op->depth * 2u;
}

#if EP_FC_DSP
/*
 * v7E-M / v8-M DSP: the input is widened once per FC into (x0,x2),(x1,x3) int16 lane pairs so that
 * SXTB16 of a weight word (w0,w2) and of the word rotated by 8 (w1,w3) feed SMLAD directly. Four rows
 * share each pair of input words; 64 depth steps per loop pass. Weight words may be unaligned (LDR
 * allows it on these cores); the widened input is word aligned (arena).
 */
#define EP_DSP_STEP(W, A)                 \
  "ldr %[v], [%[" W "]], #4\n\t"          \
  "sxtb16 %[t], %[v]\n\t"                 \
  "sxtb16 %[v], %[v], ror #8\n\t"         \
  "smlad %[" A "], %[t], %[x0], %[" A "]\n\t" \
  "smlad %[" A "], %[v], %[x1], %[" A "]\n\t"
#define EP_DSP_GROUP                  \
  "ldrd %[x0], %[x1], [%[xp]], #8\n\t" \
  EP_DSP_STEP("w0", "a0") EP_DSP_STEP("w1", "a1") EP_DSP_STEP("w2", "a2") EP_DSP_STEP("w3", "a3")

static inline uint32_t ld32(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4); /* one LDR: v7E-M/v8-M tolerate unaligned word loads */
  return v;
}

static void widen_input(const int8_t *x, uint32_t depth, uint32_t *xq) {
  uint32_t k;
  for (k = 0; k + 4u <= depth; k += 4u) {
    uint32_t v = ld32(x + k), lo, hi;
    __asm__("sxtb16 %0, %1" : "=r"(lo) : "r"(v));
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(hi) : "r"(v));
    xq[k / 2u] = lo;      /* (x0, x2) */
    xq[k / 2u + 1u] = hi; /* (x1, x3) */
  }
}

/* The same for x - zp (zz: zp in both int16 lanes). */
static void widen_input_zp(const int8_t *x, uint32_t depth, uint32_t *xq, uint32_t zz) {
  uint32_t k;
  for (k = 0; k + 4u <= depth; k += 4u) {
    uint32_t v = ld32(x + k), lo, hi;
    __asm__("sxtb16 %0, %1" : "=r"(lo) : "r"(v));
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(hi) : "r"(v));
    __asm__("ssub16 %0, %0, %1" : "+r"(lo) : "r"(zz));
    __asm__("ssub16 %0, %0, %1" : "+r"(hi) : "r"(zz));
    xq[k / 2u] = lo;
    xq[k / 2u + 1u] = hi;
  }
}

#if EP_FC_ROWS4
static void dot4(const int8_t *w, const int8_t *x, const uint32_t *xq, uint32_t depth, const int32_t *init,
                 int32_t *acc) {
  const int8_t *w0 = w, *w1 = w + depth, *w2 = w + 2u * depth, *w3 = w + 3u * depth;
  const uint32_t *xp = xq;
  int32_t a0 = init[0], a1 = init[1], a2 = init[2], a3 = init[3];
  uint32_t n = depth >> 6, g = (depth >> 2) & 15u, d;
  uint32_t x0, x1, v, t;
  if (n) {
    __asm__ volatile(
        "1:\n\t" EP_DSP_GROUP EP_DSP_GROUP EP_DSP_GROUP EP_DSP_GROUP EP_DSP_GROUP EP_DSP_GROUP EP_DSP_GROUP
            EP_DSP_GROUP EP_DSP_GROUP EP_DSP_GROUP EP_DSP_GROUP EP_DSP_GROUP EP_DSP_GROUP EP_DSP_GROUP EP_DSP_GROUP
                EP_DSP_GROUP
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w0), [w1] "+r"(w1),
          [w2] "+r"(w2), [w3] "+r"(w3), [xp] "+r"(xp), [n] "+r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1),
          [v] "=&r"(v), [t] "=&r"(t)
        :
        : "cc", "memory");
  }
  while (g--) {
    __asm__ volatile(EP_DSP_GROUP
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w0), [w1] "+r"(w1),
                       [w2] "+r"(w2), [w3] "+r"(w3), [xp] "+r"(xp), [x0] "=&r"(x0), [x1] "=&r"(x1), [v] "=&r"(v),
                       [t] "=&r"(t)
                     :
                     : "memory");
  }
  x += depth & ~3u;
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
#endif

/*
 * Every group of four rows in one assembly loop (the small recurrent layers run many short rows, where dot4's entry,
 * exit and group loop cost as much as the products): per quad the biases are loaded and the sums stored with one
 * LDM/STM, the four row pointers continue from the last row, two depth groups per loop pass, the depth % 4 tail as
 * byte products (SMLABB).
 *   void ep_dot_quads_dsp(const int8_t *w, const uint32_t *xq, const int32_t *bias, int32_t *acc, uint32_t quads,
 *                         uint32_t depth, const int8_t *x_tail)
 * x_tail = x + (depth & ~3); bias and acc word aligned; quads >= 1.
 */
void ep_dot_quads_dsp(const int8_t *w, const uint32_t *xq, const int32_t *bias, int32_t *acc, uint32_t quads,
                      uint32_t depth, const int8_t *x_tail);
#define EP_Q_STEP(W, A) \
  "  ldr r11, [" W "], #4\n  sxtb16 r12, r11\n  sxtb16 r11, r11, ror #8\n  smlad " A ", r12, r9, " A "\n  smlad " A ", r11, r10, " A "\n"
#define EP_Q_GROUP "  ldrd r9, r10, [r8], #8\n" EP_Q_STEP("r4", "r0") EP_Q_STEP("r5", "r1") EP_Q_STEP("r6", "r2") EP_Q_STEP("r7", "r3")
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .p2align 2\n"
    "  .global ep_dot_quads_dsp\n"
    "  .type ep_dot_quads_dsp, %function\n"
    "  .thumb_func\n"
    "ep_dot_quads_dsp:\n"
    "  push {r4-r11, lr}\n"
    "  sub sp, sp, #16\n" /* [sp]: xq, [sp+4]: bias, [sp+8]: acc; args: quads [sp+52], depth [sp+56], x_tail [sp+60] */
    "  str r1, [sp]\n"
    "  str r2, [sp, #4]\n"
    "  str r3, [sp, #8]\n"
    "  ldr r12, [sp, #56]\n"
    "  mov r4, r0\n"
    "  add r5, r4, r12\n"
    "  add r6, r5, r12\n"
    "  add r7, r6, r12\n"
    "1:\n"
    "  ldr r12, [sp, #4]\n"
    "  ldmia r12!, {r0-r3}\n"
    "  str r12, [sp, #4]\n"
    "  ldr r8, [sp]\n"
    "  ldr lr, [sp, #56]\n"
    "  lsrs lr, lr, #3\n" /* pairs of groups; C: an odd group */
    "  bcc 2f\n" EP_Q_GROUP
    "2:\n"
    "  cmp lr, #0\n"
    "  beq 4f\n"
    "3:\n" EP_Q_GROUP EP_Q_GROUP
    "  subs lr, lr, #1\n"
    "  bne 3b\n"
    "4:\n"
    "  ldr lr, [sp, #56]\n"
    "  ands lr, lr, #3\n"
    "  beq 6f\n"
    "  ldr r8, [sp, #60]\n"
    "5:\n"
    "  ldrsb r9, [r8], #1\n"
    "  ldrsb r11, [r4], #1\n  smlabb r0, r9, r11, r0\n"
    "  ldrsb r11, [r5], #1\n  smlabb r1, r9, r11, r1\n"
    "  ldrsb r11, [r6], #1\n  smlabb r2, r9, r11, r2\n"
    "  ldrsb r11, [r7], #1\n  smlabb r3, r9, r11, r3\n"
    "  subs lr, lr, #1\n"
    "  bne 5b\n"
    "6:\n"
    "  ldr r12, [sp, #8]\n"
    "  stmia r12!, {r0-r3}\n"
    "  str r12, [sp, #8]\n"
    "  ldr r12, [sp, #56]\n"
    "  mov r4, r7\n" /* row 3 ended where the next quad's row 0 starts */
    "  add r5, r4, r12\n"
    "  add r6, r5, r12\n"
    "  add r7, r6, r12\n"
    "  ldr r12, [sp, #52]\n"
    "  subs r12, r12, #1\n"
    "  str r12, [sp, #52]\n"
    "  bne 1b\n"
    "  add sp, sp, #16\n"
    "  pop {r4-r11, pc}\n"
    "  .size ep_dot_quads_dsp, .-ep_dot_quads_dsp\n");

/* Depth 4 (a recurrent layer's input of four features): a quad of rows is 16 contiguous bytes, read through one
 * pointer with the widened input in two registers for the whole call.
 *   void ep_dot_d4_dsp(const int8_t *w, const uint32_t *xq, const int32_t *bias, int32_t *acc, uint32_t quads) */
void ep_dot_d4_dsp(const int8_t *w, const uint32_t *xq, const int32_t *bias, int32_t *acc, uint32_t quads);
#define EP_D4_STEP(A, OFF) \
  "  ldr r8, [r1, #" OFF "]\n  sxtb16 r9, r8\n  sxtb16 r8, r8, ror #8\n  smlad " A ", r9, r10, " A "\n  smlad " A ", r8, r11, " A "\n"
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .p2align 2\n"
    "  .global ep_dot_d4_dsp\n"
    "  .type ep_dot_d4_dsp, %function\n"
    "  .thumb_func\n"
    "ep_dot_d4_dsp:\n"
    "  push {r4-r11, lr}\n"
    "  ldr r12, [sp, #36]\n"
    "  ldrd r10, r11, [r1]\n"
    "  mov r1, r0\n"
    "1:\n"
    "  ldmia r2!, {r4-r7}\n" EP_D4_STEP("r4", "0") EP_D4_STEP("r5", "4") EP_D4_STEP("r6", "8") EP_D4_STEP("r7", "12")
    "  adds r1, r1, #16\n"
    "  stmia r3!, {r4-r7}\n"
    "  subs r12, r12, #1\n"
    "  bne 1b\n"
    "  pop {r4-r11, pc}\n"
    "  .size ep_dot_d4_dsp, .-ep_dot_d4_dsp\n");

static int32_t dot1(const int8_t *w, const int8_t *x, const uint32_t *xq, uint32_t depth, int32_t a) {
  uint32_t n = depth >> 2, d;
  while (n--) {
    uint32_t v;
    int32_t t, u;
    memcpy(&v, w, 4);
    __asm__("sxtb16 %0, %1" : "=r"(t) : "r"(v));
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(u) : "r"(v));
    __asm__("smlad %0, %1, %2, %0" : "+r"(a) : "r"(t), "r"(xq[0]));
    __asm__("smlad %0, %1, %2, %0" : "+r"(a) : "r"(u), "r"(xq[1]));
    xq += 2;
    w += 4;
  }
  x += depth & ~3u;
  for (d = 0; d < (depth & 3u); d++) a = (int32_t)((uint32_t)a + (uint32_t)(w[d] * x[d]));
  return a;
}
#elif EP_FC_V6M
/*
 * v6-M (Cortex-M0/M0+): only register-offset LDRSB and 8 low registers. One negative index addresses the
 * input and four weight rows; the accumulators live in r8-r11 (ADD accepts high registers); two depth
 * steps per branch: 14.5 instructions per 4 MACs. A file-scope function so the register assignment
 * holds at any -O level.
 *   void ep_dot4_v6m(int32_t acc[4], const int8_t *x_end, const int8_t *row0_end, int32_t minus_depth)
 * rows 1..3 end depth bytes apart; minus_depth < 0.
 */
void ep_dot4_v6m(int32_t *acc, const int8_t *x_end, const int8_t *row0_end, int32_t minus_depth);
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .p2align 2\n"
    "  .global ep_dot4_v6m\n"
    "  .type ep_dot4_v6m, %function\n"
    "  .thumb_func\n"
    "ep_dot4_v6m:\n"
    "  push {r4-r7, lr}\n"
    "  mov r4, r8\n  mov r5, r9\n  mov r6, r10\n  mov r7, r11\n"
    "  push {r4-r7}\n"
    "  push {r0}\n"
    "  ldr r4, [r0, #0]\n  mov r8, r4\n"
    "  ldr r4, [r0, #4]\n  mov r9, r4\n"
    "  ldr r4, [r0, #8]\n  mov r10, r4\n"
    "  ldr r4, [r0, #12]\n  mov r11, r4\n"
    "  subs r4, r2, r3\n"
    "  subs r5, r4, r3\n"
    "  subs r6, r5, r3\n"
    "  lsls r7, r3, #31\n"
    "  bne 2f\n" /* odd depth: enter at the second half of the two-step body */
    "1:\n"
    "  ldrsb r0, [r1, r3]\n"
    "  ldrsb r7, [r2, r3]\n  muls r7, r0, r7\n  add r8, r7\n"
    "  ldrsb r7, [r4, r3]\n  muls r7, r0, r7\n  add r9, r7\n"
    "  ldrsb r7, [r5, r3]\n  muls r7, r0, r7\n  add r10, r7\n"
    "  ldrsb r7, [r6, r3]\n  muls r7, r0, r7\n  add r11, r7\n"
    "  adds r3, r3, #1\n"
    "2:\n"
    "  ldrsb r0, [r1, r3]\n"
    "  ldrsb r7, [r2, r3]\n  muls r7, r0, r7\n  add r8, r7\n"
    "  ldrsb r7, [r4, r3]\n  muls r7, r0, r7\n  add r9, r7\n"
    "  ldrsb r7, [r5, r3]\n  muls r7, r0, r7\n  add r10, r7\n"
    "  ldrsb r7, [r6, r3]\n  muls r7, r0, r7\n  add r11, r7\n"
    "  adds r3, r3, #1\n"
    "  bne 1b\n"
    "  pop {r0}\n"
    "  mov r4, r8\n  str r4, [r0, #0]\n"
    "  mov r4, r9\n  str r4, [r0, #4]\n"
    "  mov r4, r10\n  str r4, [r0, #8]\n"
    "  mov r4, r11\n  str r4, [r0, #12]\n"
    "  pop {r4-r7}\n"
    "  mov r8, r4\n  mov r9, r5\n  mov r10, r6\n  mov r11, r7\n"
    "  pop {r4-r7, pc}\n"
    "  .size ep_dot4_v6m, .-ep_dot4_v6m\n"
    "  .syntax divided\n");

static void dot4(const int8_t *w, const int8_t *x, const uint32_t *xq, uint32_t depth, const int32_t *init,
                 int32_t *acc) {
  (void)xq;
  acc[0] = init[0];
  acc[1] = init[1];
  acc[2] = init[2];
  acc[3] = init[3];
  ep_dot4_v6m(acc, x + depth, w + depth, -(int32_t)depth);
}

static int32_t dot1(const int8_t *w, const int8_t *x, const uint32_t *xq, uint32_t depth, int32_t a) {
  uint32_t d, u = (uint32_t)a;
  (void)xq;
  for (d = 0; d < depth; d++) u += (uint32_t)(w[d] * x[d]);
  return (int32_t)u;
}
#else
/* Portable C (Cortex-M3, hosts): four rows share each input element; XT is the input's type (int8, or int16 once
 * widened to x - zp: ep_fc_model_bias). Unsigned accumulators: wrap-around (never reached by sane models) must not
 * be UB. */
#define EP_DOT4_C(NAME, XT)                                                                              \
  static void NAME(const int8_t *w, const XT *x, uint32_t depth, const int32_t *init, int32_t *acc) {    \
    const XT *xe = x + depth;                                                                            \
    const int8_t *w0 = w + depth, *w1 = w + 2u * depth, *w2 = w + 3u * depth, *w3 = w + 4u * depth;      \
    uint32_t a0 = (uint32_t)init[0], a1 = (uint32_t)init[1], a2 = (uint32_t)init[2], a3 = (uint32_t)init[3]; \
    int32_t i = -(int32_t)depth;                                                                         \
    while (i != 0) {                                                                                     \
      int32_t xv = xe[i];                                                                                \
      a0 += (uint32_t)(w0[i] * xv);                                                                      \
      a1 += (uint32_t)(w1[i] * xv);                                                                      \
      a2 += (uint32_t)(w2[i] * xv);                                                                      \
      a3 += (uint32_t)(w3[i] * xv);                                                                      \
      i++;                                                                                               \
    }                                                                                                    \
    acc[0] = (int32_t)a0;                                                                                \
    acc[1] = (int32_t)a1;                                                                                \
    acc[2] = (int32_t)a2;                                                                                \
    acc[3] = (int32_t)a3;                                                                                \
  }
EP_DOT4_C(dot4_c, int8_t)
EP_DOT4_C(dot4_w, int16_t)

static void dot4(const int8_t *w, const int8_t *x, const uint32_t *xq, uint32_t depth, const int32_t *init,
                 int32_t *acc) {
  (void)xq;
  dot4_c(w, x, depth, init, acc);
}

static int32_t dot1(const int8_t *w, const int8_t *x, const uint32_t *xq, uint32_t depth, int32_t a) {
  uint32_t d, u = (uint32_t)a;
  (void)xq;
  for (d = 0; d < depth; d++) u += (uint32_t)(w[d] * x[d]);
  return (int32_t)u;
}

/* dot_rows on the input widened to x - zp (ep_fc_model_bias). */
#define EP_FC_WIDE_C 1
__attribute__((noinline)) static void dot_rows_w(const int8_t *w, const int16_t *x, const int32_t *bias, int32_t *acc,
                                                 uint32_t rows, uint32_t depth) {
  uint32_t r = 0, d;
  for (; r + 4u <= rows; r += 4u) dot4_w(w + (size_t)r * depth, x, depth, bias + r, acc + r);
  for (; r < rows; r++) {
    const int8_t *wr = w + (size_t)r * depth;
    uint32_t u = (uint32_t)bias[r];
    for (d = 0; d < depth; d++) u += (uint32_t)(wr[d] * x[d]);
    acc[r] = (int32_t)u;
  }
}
#endif
#ifndef EP_FC_WIDE_C
#define EP_FC_WIDE_C 0
#endif

void ep_fc_widen(const int8_t *x, uint32_t depth, uint32_t *xq) {
#if EP_FC_DSP
  widen_input(x, depth, xq);
#else
  (void)x;
  (void)depth;
  (void)xq;
#endif
}

#if EP_FC_ROWS4
/* Out of line so that ep_fc_dot_rows' short-row path does not pay dot4's register saves. */
__attribute__((noinline)) static void dot_rows(const int8_t *w, const int8_t *x, const uint32_t *xq,
                                               const int32_t *bias, int32_t *acc, uint32_t rows, uint32_t depth) {
  uint32_t r = 0;
  for (; r + 4u <= rows; r += 4u) dot4(w + (size_t)r * depth, x, xq, depth, bias + r, acc + r);
  for (; r < rows; r++) acc[r] = dot1(w + (size_t)r * depth, x, xq, depth, bias[r]);
}
#endif

void ep_fc_dot_rows(const int8_t *w, const int8_t *x, const uint32_t *xq, const int32_t *bias, int32_t *acc,
                    uint32_t rows, uint32_t depth) {
#if EP_FC_DSP
  /* Short rows only: from 64 on, dot4's 16-group loop body costs less per group. */
  if (rows >= 4u && depth < 64u && ((uintptr_t)bias & 3u) == 0 && ((uintptr_t)acc & 3u) == 0) {
    const uint32_t r = rows & ~3u;
    if (depth == 4u) {
      ep_dot_d4_dsp(w, xq, bias, acc, rows >> 2);
    } else {
      ep_dot_quads_dsp(w, xq, bias, acc, rows >> 2, depth, x + (depth & ~3u));
    }
    for (uint32_t k = r; k < rows; k++) acc[k] = dot1(w + (size_t)k * depth, x, xq, depth, bias[k]);
    return;
  }
#endif
#if EP_FC_ROWS4
  dot_rows(w, x, xq, bias, acc, rows, depth);
#else
  for (uint32_t k = 0; k < rows; k++) acc[k] = dot1(w + (size_t)k * depth, x, xq, depth, bias[k]);
#endif
}

/* ep_mbqm + zero point + clamp over a block of rows with one multiplier, its constants hoisted.
 * Identical to ep_mbqm for every multiplier ep_quantize_multiplier yields (never INT32_MIN). */
static void requant_block(const int32_t *acc, int8_t *y, uint32_t n, int32_t mult, int32_t shift, int32_t zp,
                          int32_t lo, int32_t hi) {
  const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  const int32_t mask = (int32_t)(((uint32_t)1 << right) - 1u), thr = mask >> 1;
  uint32_t k;
  if (mult == INT32_MIN) {
    for (k = 0; k < n; k++) y[k] = (int8_t)ep_clamp_i32(ep_add_wrap(ep_mbqm(acc[k], mult, shift), zp), lo, hi);
    return;
  }
  if (lo == -128 && hi == 127) { /* no fused activation: one saturation */
    for (k = 0; k < n; k++) {
      int32_t p = ep_srdhm((int32_t)((uint32_t)acc[k] << left), mult);
      int32_t v = (p >> right) + (int32_t)((uint32_t)(thr + (int32_t)((uint32_t)p >> 31) - (p & mask)) >> 31);
      y[k] = (int8_t)ep_sat8(ep_add_wrap(v, zp));
    }
    return;
  }
  for (k = 0; k < n; k++) {
    int32_t p = ep_srdhm((int32_t)((uint32_t)acc[k] << left), mult);
    int32_t v = (p >> right) + (int32_t)((uint32_t)(thr + (int32_t)((uint32_t)p >> 31) - (p & mask)) >> 31);
    y[k] = (int8_t)ep_clamp_i32(ep_sat8(ep_add_wrap(v, zp)), lo, hi);
  }
}

#if EP_FC_DSP
/* requant_block when ep_fc_rq_prepare allowed it: SRDHM(acc, m) = SMMULR(2 acc, m), and TFLM's rounding shift of
 * that p plus the zero point is (p + k - (p < 0)) >> e with k = 2^(e-1) + zp 2^e (ep_window.h, rq_k). */
static void requant_k(const int32_t *acc, int8_t *y, uint32_t n, int32_t mult, int32_t k, int32_t e, int32_t lo,
                      int32_t hi) {
  uint32_t i;
  if (lo == -128 && hi == 127) { /* no activation range inside int8's: the saturation is the clamp */
    for (i = 0; i < n; i++) {
      int32_t p;
      __asm__("smmulr %0, %1, %2" : "=r"(p) : "r"((int32_t)((uint32_t)acc[i] << 1)), "r"(mult));
      y[i] = (int8_t)ep_sat8((k + p + (p >> 31)) >> e);
    }
    return;
  }
  for (i = 0; i < n; i++) {
    int32_t p;
    __asm__("smmulr %0, %1, %2" : "=r"(p) : "r"((int32_t)((uint32_t)acc[i] << 1)), "r"(mult));
    y[i] = (int8_t)ep_clamp_i32(ep_sat8((k + p + (p >> 31)) >> e), lo, hi);
  }
}
#endif

/* One row with its own multiplier and shifts (per-channel weights). */
static inline int8_t requant_row(int32_t acc, int32_t mult, int32_t left, int32_t right, int32_t zp, int32_t lo,
                                 int32_t hi) {
  const int32_t v = ep_rdbpot(ep_srdhm((int32_t)((uint32_t)acc << left), mult), right);
  return (int8_t)ep_clamp_i32(ep_sat8(ep_add_wrap(v, zp)), lo, hi);
}

/* The same with per-row multipliers (per-channel weights). Out of line as when the convolutions shared it: inlined,
 * it changes the FC kernel's register allocation. */
__attribute__((noinline)) static void requant_rows(const int32_t *acc, int8_t *y, uint32_t n, const int32_t *cm,
                                                   const int32_t *cs, int32_t zp, int32_t lo, int32_t hi) {
  uint32_t k;
  for (k = 0; k < n; k++) {
    const int32_t shift = cs[k], left = shift > 0 ? shift : 0;
    y[k] = requant_row(acc[k], cm[k], left, left - shift, zp, lo, hi);
  }
}

/* The convolutions keep their shifts negated, as bytes (ep_window.c). */
void ep_fc_requant_rows(const int32_t *acc, int8_t *y, uint32_t n, const int32_t *cm, const int8_t *cs, int32_t zp,
                        int32_t lo, int32_t hi) {
  uint32_t k;
  for (k = 0; k < n; k++) {
    const int32_t e = cs[k], left = (int32_t)((uint32_t)-e & (uint32_t)(e >> 31)); /* a left shift when e < 0 */
    y[k] = requant_row(acc[k], cm[k], left, left + e, zp, lo, hi);
  }
}

uint32_t ep_fc_unbuilt(const ep_model_t *m) {
  uint32_t i, n = 0;
  for (i = 0; i < m->num_ops && !EP_FC_RQ_FULL; i++) {
    const ep_op_t *op = &m->ops[i];
    n += op->kind == EP_K_FC_I8 && !op->fused && !op->p.fc.per_channel && !op->mult[2];
  }
  return n;
}

int ep_k_fc_i8(const ep_model_t *m, const ep_op_t *op) {
  const int8_t *x = (const int8_t *)m->tensors[op->in[0]].data;
  const int8_t *w = (const int8_t *)m->tensors[op->in[1]].data;
  int8_t *y = (int8_t *)m->tensors[op->out[0]].data;
  const int32_t *bias = op->scratch;
  const int32_t *cm = op->p.fc.per_channel ? op->scratch + op->rows : NULL;
  const int32_t *cs = op->p.fc.per_channel ? op->scratch + 2u * op->rows : NULL;
  const int32_t mult = op->mult[0], shift = op->shift[0], zp_out = op->p.fc.zp_out, lo = op->act_min, hi = op->act_max;
  uint32_t b, r;
  for (b = 0; b < op->batches; b++) {
    const int8_t *xb = x + (size_t)b * op->depth;
    int8_t *yb = y + (size_t)b * op->rows;
    uint32_t *xq = (uint32_t *)(void *)m->fc_tmp;
#if EP_FC_DSP
    if (op->p.fc.zp_widen)
      widen_input_zp(xb, op->depth, xq, (uint32_t)(uint16_t)op->p.fc.zp_widen * 0x10001u);
    else
      widen_input(xb, op->depth, xq);
#elif EP_FC_WIDE_C
    int16_t *xw = (int16_t *)(void *)m->fc_tmp;
    if (op->p.fc.zp_widen) {
      const int32_t zp = op->p.fc.zp_widen;
      uint32_t d;
      for (d = 0; d < op->depth; d++) xw[d] = (int16_t)(xb[d] - zp);
    }
#endif
    r = 0;
    while (r < op->rows) {
      /* Accumulate in blocks of up to 64 rows on the stack, then requantise them. */
      int32_t acc[64];
      uint32_t n = op->rows - r > 64u ? 64u : op->rows - r;
#if EP_FC_WIDE_C
      if (op->p.fc.zp_widen)
        dot_rows_w(w + (size_t)r * op->depth, xw, bias + r, acc, n, op->depth);
      else
#endif
        ep_fc_dot_rows(w + (size_t)r * op->depth, xb, xq, bias + r, acc, n, op->depth);
      if (EP_RT_FC_PER_CHANNEL && cm) {
        requant_rows(acc, yb + r, n, cm + r, cs + r, zp_out, lo, hi);
#if EP_FC_DSP
      } else if (!EP_FC_RQ_FULL || op->mult[2]) {
        requant_k(acc, yb + r, n, mult, op->mult[1], op->shift[1], lo, hi);
#endif
      } else {
        requant_block(acc, yb + r, n, mult, shift, zp_out, lo, hi);
      }
      r += n;
    }
  }
  return 0;
}

#if EP_RT_F32
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
        s += ep_ld_f32(x + 4u * ((size_t)b * op->depth + d)) * ep_ld_f32(w + 4u * ((size_t)r * op->depth + d));
      if (bias) s += ep_ld_f32(bias + 4u * r);
      v = s < lo ? lo : (s > hi ? hi : s);
      memcpy(y + 4u * ((size_t)b * op->rows + r), &v, 4);
    }
  }
  return 0;
}
#endif /* EP_RT_F32 */
