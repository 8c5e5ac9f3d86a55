/*
 * What the windowed int8 kernels share (CONV_2D in ep_conv.c, DEPTHWISE_CONV_2D in ep_dwconv.c, the pools in
 * ep_pool.c, SOFTMAX in ep_softmax.c; their common preparation in ep_window.c): which SIMD path a core takes, the
 * options' field layout and the per-channel requantisation variants (the DSP intrinsics: ep_simd.h). Internal
 * to the runtime; ep_kernels.h declares the family's entry points.
 */
#ifndef EP_WINDOW_H
#define EP_WINDOW_H

#include <string.h>

#include "ep_flatbuf.h"
#include "ep_kernels.h"
#include "ep_qmath.h"
#include "ep_simd.h"

#define EP_CONV_DSP EP_SIMD_DSP /* v7E-M / v8-M DSP: SIMD convolution kernels */
#if !EP_CONV_DSP && !(defined(__ARM_ARCH_6M__) && defined(__GNUC__))
#define EP_CONV_PACKED 1 /* v7-M (Cortex-M3) and hosts: two pixels per 32x32->64 multiply-accumulate (SMLAL) */
#else
#define EP_CONV_PACKED 0 /* v6-M has no long multiply: the FC's assembly dot rows, one pixel at a time */
#endif

#if EP_RT_CONV

/* BuiltinOptions union tags and their field ids. */
enum { OPT_CONV = 1, OPT_DWCONV = 2, OPT_POOL = 5, OPT_SOFTMAX = 9 };
enum { PAD_SAME = 0, PAD_VALID = 1 };
#define CONV_BLOCK 64u /* output channels accumulated on the stack at a time */

#define TRY(expr)             \
  do {                        \
    int st_ = (expr);         \
    if (st_ != 0) return st_; \
  } while (0)

static inline int q8(const ep_tensor_t *t) {
  return t->dtype == EP_DT_INT8 && t->has_quant && t->nchan == 0 && t->zero_point >= -128 && t->zero_point <= 127;
}

/* int16 activations of a 16x8 CNN: TFLM's int16 windowed kernels take zero point 0. */
static inline int q16(const ep_tensor_t *t) {
  return t->dtype == EP_DT_INT16 && t->has_quant && t->nchan == 0 && t->zero_point == 0;
}

/* One CONV_2D or DEPTHWISE_CONV_2D's options, read by its own prepare (their field ids differ). */
typedef struct {
  uint32_t padding, sw, sh, act, dlw, dlh;
} ep_win_opts_t;

/* TFLM's ComputeOutSize + ComputePaddingWithOffset for one spatial dimension (ep_window.c): checks that `out` is the
 * output size of `in` under a k-tap window (stride, dilation, PAD_SAME/PAD_VALID) and sets *pad. */
int ep_win_dims(int32_t in, int32_t k, uint32_t stride, uint32_t dil, uint32_t padding, int32_t out, int16_t *pad);
/* The filter quantisation both convolutions need: int8, zero point 0, per-tensor or per-channel along qdim. */
int ep_win_filter_quant(const ep_tensor_t *w, uint32_t channels, int32_t qdim);
/* Channel r's multiplier of a convolution (in * w[r] / out) as TFLM computes it for int8 and int16 alike: in double,
 * from the filter's per-channel scale or its one scale. */
static inline void ep_win_chan_multiplier(const ep_tensor_t *in, const ep_tensor_t *w, const ep_tensor_t *out,
                                          uint32_t r, int32_t *mult, int32_t *shift) {
  const double ws = (double)(w->nchan ? ep_ld_f32(w->chan_scales + 4u * r) : w->scale);
  ep_quantize_multiplier((double)in->scale * ws / (double)out->scale, mult, shift);
}
/* A convolution's operand count and the options fields both convolutions lead with (padding, strides). */
int ep_win_conv_head(const ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts, ep_win_opts_t *o);
/* CONV_2D's options: ep_win_conv_head's, then the fused activation and the dilations (default 1). */
int ep_win_conv2d_opts(const ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts, ep_win_opts_t *o);
/* A convolution's window geometry once its operands are checked (any activation type): `out`'s spatial size under
 * the filter's window (ep_win_dims, both dimensions), then its record (strides, dilations, activation, rows = `oc`
 * output channels of `depth` MACs each) and its MACs counted. */
int ep_win_conv_geom(ep_model_t *m, ep_op_t *op, const ep_win_opts_t *o, uint32_t oc, uint64_t depth);
/* The shapes a CONV_2D has whatever its types, once its operands are 4-D and typed: no grouping, batch and output
 * channels carried through, a bias (if any) of one value per filter; sets `oc` (filters) and `depth` (MACs each). */
int ep_win_conv_shape(const ep_model_t *m, const ep_op_t *op, uint32_t *oc, uint64_t *depth);
/* A convolution's operand checks before its filter layout is read: ranks, constant filter, int8 per-tensor input
 * and output. */
int ep_win_conv_io(const ep_model_t *m, const ep_op_t *op);
/* The checks and record both convolutions share once their own part is done: `oc` output channels of `depth` MACs
 * each, the bias, the window geometry, the activation range; sets op->kind to `kind`. */
int ep_win_conv_finish(ep_model_t *m, ep_op_t *op, const ep_win_opts_t *o, uint32_t oc, uint64_t depth, uint8_t kind);

/* Each op's own preparation (beside its kernel), called by ep_conv_prepare once the options table's type is known
 * to match; fb/opts as in ep_model.c. */
int ep_conv2d_prepare(ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts);
int ep_dwconv_prepare(ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts);
int ep_pool_prepare(ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts, int is_max);
int ep_softmax_prepare(ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts);
/* What both SOFTMAX prepares check first (ep_softmax.c; ep_softmax16.c): one input and one output of the same shape,
 * rank >= 1, the last dimension > 0; reads beta and sets op->depth (the last dimension) and op->batches. */
int ep_softmax_shape(const ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts, float *beta);

/* A CONV_2D op's constant channels (output one byte whatever the input: multiplier word 0, bias word c - zp), as
 * ep_conv_init counted them: op->batches, which no windowed kernel uses otherwise. */
static inline uint32_t conv_constants(const ep_op_t *op) { return op->kind == EP_K_CONV_I8 ? op->batches : 0u; }

/* The int8 right shifts after the bias and multiplier words: -shift of ep_quantize_multiplier (in [-30, 31]),
 * stored negated because the short requantisation shifts right by it as it is. */
static inline const int8_t *conv_shifts(const ep_op_t *op, uint32_t channels) {
  return (const int8_t *)(const void *)(op->scratch + 2u * channels);
}

/* Clamp without a branch: a compiler may branch on a ternary, and the count would then depend on the data. */
static inline int32_t clamp_bf(int32_t v, int32_t lo, int32_t hi) {
#if defined(__GNUC__) && defined(__thumb2__)
  __asm__("cmp %0, %1\n\tit lt\n\tmovlt %0, %1\n\tcmp %0, %2\n\tit gt\n\tmovgt %0, %2" : "+r"(v) : "r"(lo), "r"(hi) : "cc");
  return v;
#else
  return ep_clamp_i32(v, lo, hi);
#endif
}

/* One channel's requantisation constants (TFLM's MultiplyByQuantizedMultiplier), derived once per use. */
typedef struct {
  int32_t mult, left, right, mask;
} rq_t;

static inline rq_t rq_of(int32_t mult, int32_t shift) {
  rq_t q;
  q.mult = mult;
  q.left = shift > 0 ? shift : 0;
  q.right = q.left - shift;
  q.mask = (int32_t)(((uint32_t)1 << q.right) - 1u);
  return q;
}

/* ep_mbqm + zero point + activation clamp. The multiplier is never INT32_MIN (ep_quantize_multiplier), so the one
 * saturating case of SRDHM cannot occur and its test is left out; the rounding shift is ep_rdbpot's. */
static inline int8_t rq_apply(int32_t acc, rq_t q, int32_t zp, int32_t lo, int32_t hi) {
  const int32_t a = (int32_t)((uint32_t)acc << q.left);
#if defined(EP_QMATH_SPLIT_MUL) && EP_QMATH_SPLIT_MUL
  const int32_t p = ep_srdhm(a, q.mult);
#else
  const int32_t p = (int32_t)(((int64_t)a * q.mult + ((int64_t)1 << 30)) >> 31);
#endif
  const int32_t thr = (q.mask >> 1) + (int32_t)((uint32_t)p >> 31);
  const int32_t v = (p >> q.right) + (int32_t)((uint32_t)(thr - (p & q.mask)) >> 31);
  return (int8_t)clamp_bf(ep_add_wrap(v, zp), lo, hi);
}

/* rq_rows and rq_fast_ok stay out of line on the cores where the single ep_conv.c kept them so (each file now has
 * fewer callers, and GCC would inline them there): the split changed no instruction count. Not every file that
 * includes this header calls them. */
#if defined(__GNUC__)
#define EP_WIN_UNUSED __attribute__((unused))
#else
#define EP_WIN_UNUSED
#endif
#if defined(__GNUC__) && (EP_CONV_DSP || EP_CONV_PACKED)
#define EP_WIN_OUTLINE __attribute__((noinline, unused))
#else
#define EP_WIN_OUTLINE EP_WIN_UNUSED
#endif

EP_WIN_OUTLINE static void rq_rows(const int32_t *acc, int8_t *y, uint32_t n, const int32_t *cm, const int8_t *cs,
                                   int32_t zp, int32_t lo, int32_t hi) {
#if EP_CONV_DSP || EP_CONV_PACKED
  uint32_t k;
  for (k = 0; k < n; k++) y[k] = rq_apply(acc[k], rq_of(cm[k], -cs[k]), zp, lo, hi);
#else
  ep_fc_requant_rows(acc, y, n, cm, cs, zp, lo, hi); /* v6-M: the FC's loop compiles shorter there */
#endif
}

#if EP_CONV_DSP || EP_CONV_PACKED
/* Whether the shorter requantisation (rq_fast) is exact for every input of this op: every shift <= -1 (a right shift
 * e >= 1, no left shift) and |acc| < 2^30 whatever the int8 input (|folded bias| + depth * 2^14). Decided from the
 * model's constants only, so the instruction count still does not depend on the data. */
EP_WIN_OUTLINE static int rq_fast_ok(const ep_op_t *op, uint32_t channels) {
  const int64_t room = ((int64_t)1 << 30) - (int64_t)op->depth * 16384;
  uint32_t r;
  for (r = 0; r < channels; r++) {
    const int64_t b = op->scratch[r];
    const int32_t s = -conv_shifts(op, channels)[r];
    if (s > -1 || s < -31 || (b < 0 ? -b : b) >= room) return 0;
  }
  return 1;
}
#endif

#if EP_CONV_PACKED
/* rq_apply when rq_fast_ok holds: TFLM's rounding shift of p = SRDHM(acc, m) (|p| < 2^30) is
 * (p + 2^(e-1) - (p < 0)) >> e; `h` is 2^(e-1). */
static inline int8_t rq_fast_c(int32_t acc, int32_t mult, int32_t e, int32_t h, int32_t zp, int32_t lo, int32_t hi) {
  const int32_t p = (int32_t)(((int64_t)acc * mult + ((int64_t)1 << 30)) >> 31);
  return (int8_t)clamp_bf(((p + h + (p >> 31)) >> e) + zp, lo, hi);
}
#endif

#if EP_CONV_DSP
/* rq_apply before the activation clamp: the value saturated to int8. */
static inline int32_t rq_value(int32_t acc, rq_t q, int32_t zp) {
  const int32_t a = (int32_t)((uint32_t)acc << q.left);
  const int32_t p = (int32_t)(((int64_t)a * q.mult + ((int64_t)1 << 30)) >> 31);
  const int32_t thr = (q.mask >> 1) + (int32_t)((uint32_t)p >> 31);
  return ep_sat8(ep_add_wrap((p >> q.right) + (int32_t)((uint32_t)(thr - (p & q.mask)) >> 31), zp));
}

/* The same in fewer instructions, exact when rq_fast_ok holds for the op: every shift <= -1 (a right shift e >= 1, no
 * left shift) and |acc| < 2^30 for any int8 input (|folded bias| + depth * 2^14, from the model's constants). Then
 * SRDHM(acc, m) = SMMULR(2 acc, m) (2 acc does not overflow) and TFLM's rounding shift of that p (|p| < 2^30) is
 * (p + 2^(e-1) - (p < 0)) >> e. `h` is 2^(e-1). */
static inline int32_t rq_fast(int32_t acc, int32_t mult, int32_t e, int32_t h, int32_t zp) {
  int32_t p;
  __asm__("smmulr %0, %1, %2" : "=r"(p) : "r"((int32_t)((uint32_t)acc << 1)), "r"(mult));
  return ep_sat8(((p + h + (p >> 31)) >> e) + zp);
}

/* One channel's short requantisation with the output zero point folded into the rounding constant:
 * k = 2^(e-1) + zp * 2^e, so ((p + 2^(e-1) - (p < 0)) >> e) + zp = (p + k - (p < 0)) >> e exactly (adding a
 * multiple of 2^e before an arithmetic shift). Needs rq_fast_ok and e <= 22 (|p| < 2^30, |zp 2^e| <= 2^29: no
 * overflow). Laid out for one LDM per output. */
typedef struct {
  int32_t m, k, e;
} rqk_t;

static inline int32_t rq_k(int32_t acc, const rqk_t *q) {
  int32_t p;
  __asm__("smmulr %0, %1, %2" : "=r"(p) : "r"((int32_t)((uint32_t)acc << 1)), "r"(q->m));
  return ep_sat8((q->k + p + (p >> 31)) >> q->e);
}

/* Whether rq_k is exact for every channel of the op: rq_fast_ok and every right shift e <= 22. */
EP_WIN_UNUSED static int rqk_ok(const ep_op_t *op, uint32_t channels) {
  uint32_t r;
  if (!rq_fast_ok(op, channels)) return 0;
  for (r = 0; r < channels; r++)
    if (conv_shifts(op, channels)[r] > 22) return 0;
  return 1;
}
#endif /* EP_CONV_DSP */

#endif /* EP_RT_CONV */
#endif /* EP_WINDOW_H */
