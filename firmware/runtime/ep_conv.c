/*
 * Windowed int8 kernels (CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D) and int8 SOFTMAX,
 * bit-exact with TFLM's reference integer kernels. NHWC tensors, batch any, dilation any, SAME/VALID.
 *
 * CONV_2D: each output pixel's receptive field is its input (1x1: the pixel in place; else an im2col patch whose
 * padding taps hold the input zero point, so they add exactly nothing once the zero-point term is folded into the
 * bias, as in the FC kernel). Pixels go in pairs: two weight rows against two pixels per pass (DSP: a 2x2 SMLAD
 * block on int16 lane pairs; Cortex-M3/hosts: one SMLAL per weight on both pixels packed 2^23 apart), then the four
 * outputs are requantised; v6-M and an odd last pixel use the FC dot rows. DEPTHWISE_CONV_2D: four channels per block
 * over every pixel (DSP: SXTB16 + SMLABB/SMLATT; 3x3 windows as assembly runs over a row's inside pixels, border rows
 * from a zero-point-padded strip), border windows gathered with the zero point; the last C mod 4 channels take TFLM's
 * skip-outside-taps loop. DSP requantisation: the zero point folded into the rounding constant (rq_k) or SRDHM by
 * SMULL (rq_wide), chosen per op from its constants. Pools: DSP cores take four channels per word (max: SSUB8/SEL;
 * average: SXTAB16 lane sums, windows up to 256 taps), elsewhere C per channel. SOFTMAX is plain C: it evaluates the
 * gemmlowp exp TFLM uses at invoke (masked below diff_min), one fixed-point reciprocal per row.
 */
#include <math.h>
#include <string.h>

#include "ep_flatbuf.h"
#include "ep_kernels.h"
#include "ep_qmath.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__) && defined(__OPTIMIZE__)
#define EP_CONV_DSP 1 /* v7E-M / v8-M DSP: SIMD convolution kernels (the same test as ep_fc.c's) */
#else
#define EP_CONV_DSP 0
#endif
#if !EP_CONV_DSP && !(defined(__ARM_ARCH_6M__) && defined(__GNUC__))
#define EP_CONV_PACKED 1 /* v7-M (Cortex-M3) and hosts: two pixels per 32x32->64 multiply-accumulate (SMLAL) */
#else
#define EP_CONV_PACKED 0 /* v6-M has no long multiply: the FC's assembly dot rows, one pixel at a time */
#endif

#if EP_RT_CONV /* the whole file; see ep_kernels.h */

/* BuiltinOptions union tags and their field ids. */
enum { OPT_CONV = 1, OPT_DWCONV = 2, OPT_POOL = 5, OPT_SOFTMAX = 9 };
enum { PAD_SAME = 0, PAD_VALID = 1 };
#define CONV_BLOCK 64u /* output channels accumulated on the stack at a time */
#define SOFTMAX_MAX_DEPTH 256u /* keeps the reciprocal's rounding shift within 31 bits */

#define TRY(expr)             \
  do {                        \
    int st_ = (expr);         \
    if (st_ != 0) return st_; \
  } while (0)

static int q8(const ep_tensor_t *t) {
  return t->dtype == EP_DT_INT8 && t->has_quant && t->nchan == 0 && t->zero_point >= -128 && t->zero_point <= 127;
}

static float ld_f32(const uint8_t *p) {
  float f;
  memcpy(&f, p, 4);
  return f;
}

int ep_is_conv_builtin(uint32_t builtin) {
  return builtin == EP_OP_CONV_2D || builtin == EP_OP_DEPTHWISE_CONV_2D || builtin == EP_OP_AVERAGE_POOL_2D ||
         builtin == EP_OP_MAX_POOL_2D || builtin == EP_OP_SOFTMAX;
}

/* TFLM's ComputeOutSize + ComputePaddingWithOffset for one spatial dimension. */
static int window(int32_t in, int32_t k, uint32_t stride, uint32_t dil, uint32_t padding, int32_t out, int16_t *pad) {
  const int64_t eff = (int64_t)(k - 1) * dil + 1;
  int64_t o, total;
  if (stride == 0 || stride > 255u || dil == 0 || dil > 255u) return EP_RT_ERR_LIMITS;
  if (padding == PAD_SAME) o = ((int64_t)in + stride - 1) / stride;
  else if (padding == PAD_VALID) o = ((int64_t)in + stride - eff) / (int64_t)stride;
  else return EP_RT_ERR_OP;
  if (o <= 0 || o != out) return EP_RT_ERR_SHAPE;
  total = (o - 1) * stride + eff - in;
  if (total < 0) total = 0;
  if (total / 2 > 32767) return EP_RT_ERR_LIMITS;
  *pad = (int16_t)(total / 2);
  return 0;
}

/* The per-channel filter quantisation of CONV (dimension 0) / DEPTHWISE (dimension 3), or per-tensor. */
static int filter_quant(const ep_tensor_t *w, uint32_t channels, int32_t qdim) {
  if (w->dtype != EP_DT_INT8) return EP_RT_ERR_DTYPE;
  if (!w->has_quant || w->zero_point != 0) return EP_RT_ERR_QUANT;
  if (w->nchan != 0 && (w->nchan != channels || w->quant_dim != qdim)) return EP_RT_ERR_QUANT;
  return 0;
}

static int prepare_conv(ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts, int dw) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]], *w, *b = NULL;
  uint32_t padding, sw, sh, act, dlw, dlh, dm = 1, oc, kh, kw;
  uint64_t depth;
  if (op->n_in < 2 || op->n_in > 3 || op->n_out != 1) return EP_RT_ERR_OP;
  if (op->in[1] < 0) return EP_RT_ERR_GRAPH;
  w = &m->tensors[op->in[1]];
  if (op->n_in == 3 && op->in[2] >= 0) b = &m->tensors[op->in[2]];
  TRY(ep_fb_scalar(fb, opts, 0, 1, 0, &padding));
  TRY(ep_fb_scalar(fb, opts, 1, 4, 0, &sw));
  TRY(ep_fb_scalar(fb, opts, 2, 4, 0, &sh));
  if (dw) {
    TRY(ep_fb_scalar(fb, opts, 3, 4, 0, &dm));
    TRY(ep_fb_scalar(fb, opts, 4, 1, 0, &act));
    TRY(ep_fb_scalar(fb, opts, 5, 4, 1, &dlw));
    TRY(ep_fb_scalar(fb, opts, 6, 4, 1, &dlh));
  } else {
    TRY(ep_fb_scalar(fb, opts, 3, 1, 0, &act));
    TRY(ep_fb_scalar(fb, opts, 4, 4, 1, &dlw));
    TRY(ep_fb_scalar(fb, opts, 5, 4, 1, &dlh));
  }
  if (in->rank != 4 || w->rank != 4 || out->rank != 4 || !w->is_const) return EP_RT_ERR_SHAPE;
  if (in->dtype != EP_DT_INT8 || out->dtype != EP_DT_INT8) return EP_RT_ERR_DTYPE;
  if (!q8(in) || !q8(out)) return EP_RT_ERR_QUANT;
  kh = (uint32_t)w->dims[1];
  kw = (uint32_t)w->dims[2];
  if (dw) {
    if (dm != 1) return EP_RT_ERR_OP; /* depth multiplier 1 only (every MLPerf Tiny model) */
    oc = (uint32_t)w->dims[3];
    if (w->dims[0] != 1 || oc != (uint32_t)in->dims[3]) return EP_RT_ERR_SHAPE;
    TRY(filter_quant(w, oc, 3));
    depth = (uint64_t)kh * kw;
  } else {
    oc = (uint32_t)w->dims[0];
    if (w->dims[3] != in->dims[3]) return EP_RT_ERR_SHAPE; /* no grouped convolution */
    TRY(filter_quant(w, oc, 0));
    depth = (uint64_t)kh * kw * (uint32_t)in->dims[3];
  }
  if (depth > 65536u) return EP_RT_ERR_LIMITS; /* int32 accumulators stay exact */
  if (out->dims[0] != in->dims[0] || (uint32_t)out->dims[3] != oc) return EP_RT_ERR_SHAPE;
  if (b != NULL && (!b->is_const || b->dtype != EP_DT_INT32 || b->rank != 1 || (uint32_t)b->dims[0] != oc))
    return b->dtype != EP_DT_INT32 ? EP_RT_ERR_DTYPE : EP_RT_ERR_SHAPE;
  TRY(window(in->dims[1], (int32_t)kh, sh, dlh, padding, out->dims[1], &op->p.conv.pad_h));
  TRY(window(in->dims[2], (int32_t)kw, sw, dlw, padding, out->dims[2], &op->p.conv.pad_w));
  op->p.conv.stride_h = (uint8_t)sh;
  op->p.conv.stride_w = (uint8_t)sw;
  op->p.conv.dil_h = (uint8_t)dlh;
  op->p.conv.dil_w = (uint8_t)dlw;
  op->p.conv.zp_in = (int8_t)in->zero_point;
  op->p.conv.zp_out = (int8_t)out->zero_point;
  op->act = (uint8_t)act;
  op->rows = oc;
  op->depth = (uint32_t)depth;
  op->kind = dw ? EP_K_DWCONV_I8 : EP_K_CONV_I8;
  m->macs += (uint64_t)out->dims[0] * (uint32_t)out->dims[1] * (uint32_t)out->dims[2] * oc * depth;
  return ep_act_range_q(op->act, out, &op->act_min, &op->act_max);
}

static int prepare_pool(ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts, int is_max) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]];
  uint32_t padding, sw, sh, fw, fh, act;
  if (op->n_in != 1 || op->n_out != 1) return EP_RT_ERR_OP;
  TRY(ep_fb_scalar(fb, opts, 0, 1, 0, &padding));
  TRY(ep_fb_scalar(fb, opts, 1, 4, 0, &sw));
  TRY(ep_fb_scalar(fb, opts, 2, 4, 0, &sh));
  TRY(ep_fb_scalar(fb, opts, 3, 4, 0, &fw));
  TRY(ep_fb_scalar(fb, opts, 4, 4, 0, &fh));
  TRY(ep_fb_scalar(fb, opts, 5, 1, 0, &act));
  if (in->rank != 4 || out->rank != 4) return EP_RT_ERR_SHAPE;
  if (in->dtype != EP_DT_INT8 || out->dtype != EP_DT_INT8) return EP_RT_ERR_DTYPE;
  if (!q8(in) || !q8(out)) return EP_RT_ERR_QUANT;
  /* The kernels pass values through unscaled: the same quantisation on both sides. */
  if (in->scale != out->scale || in->zero_point != out->zero_point) return EP_RT_ERR_QUANT;
  if (fw == 0 || fh == 0 || fw > 255u || fh > 255u) return EP_RT_ERR_LIMITS;
  if (out->dims[0] != in->dims[0] || out->dims[3] != in->dims[3]) return EP_RT_ERR_SHAPE;
  TRY(window(in->dims[1], (int32_t)fh, sh, 1, padding, out->dims[1], &op->p.pool.pad_h));
  TRY(window(in->dims[2], (int32_t)fw, sw, 1, padding, out->dims[2], &op->p.pool.pad_w));
  op->p.pool.stride_h = (uint8_t)sh;
  op->p.pool.stride_w = (uint8_t)sw;
  op->p.pool.win_h = (uint8_t)fh;
  op->p.pool.win_w = (uint8_t)fw;
  op->act = (uint8_t)act;
  op->kind = is_max ? EP_K_MAXPOOL_I8 : EP_K_AVGPOOL_I8;
  return ep_act_range_q(op->act, out, &op->act_min, &op->act_max);
}

static int prepare_softmax(ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]];
  uint32_t beta_bits, i, n = 1;
  float beta;
  double real, radius;
  if (op->n_in != 1 || op->n_out != 1) return EP_RT_ERR_OP;
  TRY(ep_fb_scalar(fb, opts, 0, 4, 0, &beta_bits));
  memcpy(&beta, &beta_bits, 4);
  if (in->rank < 1 || in->rank != out->rank) return EP_RT_ERR_SHAPE;
  for (i = 0; i < in->rank; i++) {
    if (in->dims[i] != out->dims[i]) return EP_RT_ERR_SHAPE;
    n *= (uint32_t)in->dims[i];
  }
  if (in->dtype != EP_DT_INT8 || out->dtype != EP_DT_INT8) return EP_RT_ERR_DTYPE;
  if (!q8(in) || !q8(out)) return EP_RT_ERR_QUANT;
  /* TFLM's int8 output quantisation for SOFTMAX (checked there with this tolerance). */
  if (out->zero_point != -128 || fabsf(out->scale - 1.0f / 256.0f) > 0.001f / 256.0f) return EP_RT_ERR_QUANT;
  if (!(beta > 0.0f) || !isfinite(beta)) return EP_RT_ERR_OP;
  op->depth = (uint32_t)in->dims[in->rank - 1];
  op->batches = n / op->depth;
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

int ep_conv_prepare(ep_model_t *m, ep_op_t *op, uint32_t builtin, const void *fbv, const void *optsv, int has_opts,
                    uint32_t opts_type) {
  const ep_fb_t *fb = (const ep_fb_t *)fbv;
  const ep_fb_table_t *opts = (const ep_fb_table_t *)optsv;
  const uint32_t expect = builtin == EP_OP_CONV_2D            ? OPT_CONV
                          : builtin == EP_OP_DEPTHWISE_CONV_2D ? OPT_DWCONV
                          : builtin == EP_OP_SOFTMAX           ? OPT_SOFTMAX
                                                               : OPT_POOL;
  if (opts_type != expect || !has_opts) return EP_RT_ERR_OP; /* strides, windows, beta have no usable default */
  switch (builtin) {
    case EP_OP_CONV_2D: return prepare_conv(m, op, fb, opts, 0);
    case EP_OP_DEPTHWISE_CONV_2D: return prepare_conv(m, op, fb, opts, 1);
    case EP_OP_AVERAGE_POOL_2D: return prepare_pool(m, op, fb, opts, 0);
    case EP_OP_MAX_POOL_2D: return prepare_pool(m, op, fb, opts, 1);
    default: return prepare_softmax(m, op, fb, opts);
  }
}

/* Per-channel bias and multiplier words, then the right shifts (TFLM's shift negated) as bytes (CONV: the bias has
 * the zero-point term folded in): 9 bytes per channel (TFLM keeps 8, multiplier and shift words; its bias stays in
 * the model). */
uint32_t ep_conv_scratch_bytes(const ep_model_t *m, const ep_op_t *op) {
  (void)m;
  /* DEPTHWISE: the bias folded over all taps (interior pixels); border pixels read the model's bias. */
  if (op->kind == EP_K_CONV_I8 || op->kind == EP_K_DWCONV_I8) return 9u * op->rows;
  return 0;
}

/* The int8 right shifts after the bias and multiplier words: -shift of ep_quantize_multiplier (in [-30, 31]),
 * stored negated because the short requantisation shifts right by it as it is. */
static inline const int8_t *conv_shifts(const ep_op_t *op, uint32_t channels) {
  return (const int8_t *)(const void *)(op->scratch + 2u * channels);
}

static int conv_is_1x1(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *w = &m->tensors[op->in[1]];
  return w->dims[1] == 1 && w->dims[2] == 1;
}

/* Shared temporary: two pixels' inputs combined (DSP: int16 lane pairs, 4 ceil4(depth) bytes with a zero-padded last
 * group, where the one-pixel FC widening of an odd last pixel fits too; elsewhere one int32 word per depth step, 4
 * depth bytes rounded up to 16, also reserved on v6-M so that every target plans the same arena as the host), then
 * the int8 im2col patch (kernels larger than 1x1), depth rounded up to whole words. */
static uint32_t widened_bytes(uint32_t depth) {
  return (4u * depth + 15u) & ~15u; /* = 16 ceil(depth / 4): DSP's zero-padded last group fits; 16-byte aligned patch */
}

uint32_t ep_conv_tmp_bytes(const ep_model_t *m, const ep_op_t *op) {
  if (op->kind != EP_K_CONV_I8) return 0;
  if (conv_is_1x1(m, op)) return widened_bytes(op->depth);
  return widened_bytes(op->depth) + ((op->depth + 3u) & ~3u); /* the patch, zero-padded to whole words on DSP */
}

void ep_conv_init(const ep_model_t *m, ep_op_t *op) {
  if (op->kind == EP_K_CONV_I8 || op->kind == EP_K_DWCONV_I8) {
    const ep_tensor_t *in = &m->tensors[op->in[0]], *w = &m->tensors[op->in[1]], *out = &m->tensors[op->out[0]];
    const ep_tensor_t *b = (op->n_in == 3 && op->in[2] >= 0) ? &m->tensors[op->in[2]] : NULL;
    const uint32_t oc = op->rows;
    const int dw = op->kind == EP_K_DWCONV_I8;
    uint32_t r, d;
    int32_t shift;
    for (r = 0; r < oc; r++) {
      int32_t bias = b ? (int32_t)ep_le32(b->data + 4u * r) : 0;
      const double ws = (double)(w->nchan ? ld_f32(w->chan_scales + 4u * r) : w->scale);
      /* Fold the input zero point: sum (x - zp) w = sum x w - zp sum w (DEPTHWISE: over all taps, used for
       * interior pixels; CONV: over the patch, whose padding taps hold the zero point). */
      int32_t s = 0;
      for (d = 0; d < op->depth; d++)
        s += dw ? ((const int8_t *)w->data)[(size_t)d * oc + r] : ((const int8_t *)w->data)[(size_t)r * op->depth + d];
      op->scratch[r] = (int32_t)((uint32_t)bias - (uint32_t)(int32_t)op->p.conv.zp_in * (uint32_t)s);
      /* TFLM: (double)input_scale * (double)filter_scale / (double)output_scale, per channel. */
      ep_quantize_multiplier((double)in->scale * ws / (double)out->scale, &op->scratch[oc + r], &shift);
      /* A channel whose multiplier is 0 (TFLM's multiplier and shift for a scale below 2^-31) outputs the zero point
       * whatever its accumulator and shift: a zero bias and a right shift of 1 give the same bytes and keep the op on
       * the short requantisation paths (its bias, at that scale, is often near the int32 limits). */
      if (op->scratch[oc + r] == 0) {
        op->scratch[r] = 0;
        shift = -1;
      }
      ((int8_t *)(void *)(op->scratch + 2u * oc))[r] = (int8_t)-shift;
    }
  }
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

static void rq_rows(const int32_t *acc, int8_t *y, uint32_t n, const int32_t *cm, const int8_t *cs, int32_t zp,
                    int32_t lo, int32_t hi) {
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
static int rq_fast_ok(const ep_op_t *op, uint32_t channels) {
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

/* Small copies and fills for the im2col gather, inline: a row of a small convolution is a few bytes (KW x C), where
 * a library call costs more than the copy. Word accesses need unaligned loads and stores (not on v6-M: its
 * library routines there). */
#if defined(__ARM_ARCH_6M__)
static inline void copy_bytes(int8_t *d, const int8_t *s, size_t n) { memcpy(d, s, n); }
static inline void fill_bytes(int8_t *d, uint32_t v4, size_t n) { memset(d, (int)(v4 & 0xffu), n); }
#else
static inline void copy_bytes(int8_t *d, const int8_t *s, size_t n) {
  for (; n >= 4u; n -= 4u, d += 4, s += 4) {
    uint32_t v;
    memcpy(&v, s, 4);
    memcpy(d, &v, 4);
  }
  if (n & 2u) {
    d[0] = s[0];
    d[1] = s[1];
    d += 2;
    s += 2;
  }
  if (n & 1u) d[0] = s[0];
}
static inline void fill_bytes(int8_t *d, uint32_t v4, size_t n) { /* v4: the byte in all four lanes */
  for (; n >= 4u; n -= 4u, d += 4) memcpy(d, &v4, 4);
  if (n & 2u) {
    d[0] = d[1] = (int8_t)v4;
    d += 2;
  }
  if (n & 1u) d[0] = (int8_t)v4;
}
#endif

/* The receptive field of the window at (iy0, ix0) into dst (KH x KW x C bytes). A window crossing the image border
 * is first filled with the input zero point, then the taps inside are copied over it; with dilation 1 across, the
 * taps of a kernel row inside the image are contiguous in NHWC: one copy per row. Branches depend on the geometry
 * only. */
#if defined(__GNUC__)
__attribute__((noinline)) /* one copy for the three pixel loops; only the 1x1 test is inlined */
#endif
static void gather(const ep_op_t *op, const int8_t *xb, int32_t H, int32_t W, int32_t C, int32_t KH, int32_t KW,
                   int32_t iy0, int32_t ix0, int8_t *dst) {
  const size_t row = (size_t)KW * C;
  const int32_t dh = op->p.conv.dil_h, dw = op->p.conv.dil_w;
  const int inside_h = iy0 >= 0 && iy0 + (KH - 1) * dh < H;
  int32_t fy, fx;
  if (dw == 1) {
    const int32_t lo = ix0 < 0 ? -ix0 : 0, hi0 = W - ix0 < KW ? W - ix0 : KW, hi = hi0 > lo ? hi0 : lo;
    const size_t a = (size_t)lo * C, n = (size_t)(hi - lo) * C;
    const int8_t *src = xb + (ix0 + lo) * C;
    if (!inside_h || n != row) fill_bytes(dst, (uint32_t)(uint8_t)op->p.conv.zp_in * 0x01010101u, (size_t)KH * row);
    for (fy = 0; fy < KH; fy++, dst += row) {
      const int32_t iy = iy0 + fy * dh;
      if (iy >= 0 && iy < H) copy_bytes(dst + a, src + (size_t)iy * W * C, n);
    }
    return;
  }
  fill_bytes(dst, (uint32_t)(uint8_t)op->p.conv.zp_in * 0x01010101u, (size_t)KH * row);
  for (fy = 0; fy < KH; fy++) {
    const int32_t iy = iy0 + fy * dh;
    for (fx = 0; fx < KW; fx++, dst += C) {
      const int32_t ix = ix0 + fx * dw;
      if (iy >= 0 && iy < H && ix >= 0 && ix < W) copy_bytes(dst, xb + ((size_t)iy * W + ix) * C, (size_t)C);
    }
  }
}

/* The int8 input of output pixel (oy, ox): the pixel itself for a 1x1 kernel (never padded), else its receptive
 * field gathered into `patch`. */
static inline const int8_t *conv_input(const ep_op_t *op, const int8_t *xb, int32_t H, int32_t W, int32_t C,
                                       int32_t KH, int32_t KW, int32_t oy, int32_t ox, int8_t *patch) {
  const int32_t iy0 = oy * op->p.conv.stride_h - op->p.conv.pad_h, ix0 = ox * op->p.conv.stride_w - op->p.conv.pad_w;
  const int32_t dh = op->p.conv.dil_h;
  if (KH == 1 && KW == 1) return xb + ((size_t)iy0 * W + ix0) * C;
  if (op->p.conv.dil_w == 1 && iy0 >= 0 && ix0 >= 0 && iy0 + (KH - 1) * dh < H && ix0 + KW <= W) {
    /* Inside the image, taps contiguous across: one copy per kernel row, inline (the common case). */
    const size_t n = (size_t)KW * C, step = (size_t)dh * W * C;
    const int8_t *src = xb + ((size_t)iy0 * W + ix0) * C;
    int8_t *dst = patch;
    int32_t fy;
    for (fy = 0; fy < KH; fy++, src += step, dst += n) copy_bytes(dst, src, n);
    return patch;
  }
  gather(op, xb, H, W, C, KH, KW, iy0, ix0, patch);
  return patch;
}

#if EP_CONV_DSP
static inline uint32_t ld32u(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4); /* one LDR: v7E-M/v8-M tolerate unaligned word loads */
  return v;
}
static inline uint32_t sxtb16(uint32_t v) {
  uint32_t r;
  __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(v));
  return r;
}
static inline uint32_t sxtb16_r8(uint32_t v) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
  return r;
}
static inline int32_t smlabb(uint32_t a, uint32_t b, int32_t acc) {
  int32_t r;
  __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}
static inline int32_t smlatt(uint32_t a, uint32_t b, int32_t acc) {
  int32_t r;
  __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}

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

/* Four int8 values (already saturated) in one word, then the activation clamp lane by lane: SSUB8 sets the GE
 * flags, SEL picks (a max and a min in four instructions for four outputs). */
static inline uint32_t pack4(int32_t b0, int32_t b1, int32_t b2, int32_t b3) {
  uint32_t v = (uint32_t)b0; /* bits 8..31 are all replaced */
  __asm__("bfi %0, %1, #8, #8\n\tbfi %0, %2, #16, #8\n\tbfi %0, %3, #24, #8" : "+r"(v) : "r"(b1), "r"(b2), "r"(b3));
  return v;
}
static inline uint32_t clamp4(uint32_t v, uint32_t lo4, uint32_t hi4) {
  uint32_t t;
  __asm__("ssub8 %1, %0, %2\n\tsel %0, %0, %2\n\tssub8 %1, %3, %0\n\tsel %0, %0, %3"
          : "+r"(v), "=&r"(t)
          : "r"(lo4), "r"(hi4)
          : "cc");
  return v;
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

/* Both int16 lanes doubled (SADD16: no carry between lanes). */
static inline uint32_t dbl16(uint32_t v) {
  uint32_t r;
  __asm__("sadd16 %0, %1, %1" : "=r"(r) : "r"(v));
  return r;
}

/* Whether rq_k is exact for every channel of the op: rq_fast_ok and every right shift e <= 22. */
static int rqk_ok(const ep_op_t *op, uint32_t channels) {
  uint32_t r;
  if (!rq_fast_ok(op, channels)) return 0;
  for (r = 0; r < channels; r++)
    if (conv_shifts(op, channels)[r] > 22) return 0;
  return 1;
}

static inline void st16u(int8_t *p, uint32_t v) {
  const uint16_t h = (uint16_t)v;
  memcpy(p, &h, 2); /* one STRH: v7E-M/v8-M tolerate unaligned halfword stores */
}

/* One pixel's input (depth & ~3 bytes) widened into its lanes of the two-pixel buffer, whose 4-word groups are
 * [A (x0,x2), A (x1,x3), B (x0,x2), B (x1,x3)]: `xq` is the buffer (pixel A) or the buffer + 2 (pixel B). */
static void widen_lane(const int8_t *x, uint32_t groups, uint32_t *xq) {
  uint32_t v, e, o;
  if (groups & 1u) {
    v = ld32u(x);
    xq[0] = sxtb16(v);
    xq[1] = sxtb16_r8(v);
    x += 4;
    xq += 4;
  }
  /* Two groups per pass, each pair of lane words stored by one STRD (the buffer is word aligned). */
  for (groups >>= 1; groups != 0u; groups--) {
    __asm__ volatile("ldr %[v], [%[x]], #4\n\t"
                     "sxtb16 %[e], %[v]\n\t"
                     "sxtb16 %[o], %[v], ror #8\n\t"
                     "strd %[e], %[o], [%[q]], #16\n\t"
                     "ldr %[v], [%[x]], #4\n\t"
                     "sxtb16 %[e], %[v]\n\t"
                     "sxtb16 %[o], %[v], ror #8\n\t"
                     "strd %[e], %[o], [%[q]], #16\n\t"
                     : [v] "=&r"(v), [e] "=&r"(e), [o] "=&r"(o), [x] "+r"(x), [q] "+r"(xq)
                     :
                     : "memory");
  }
}

/* `groups` 4-byte groups widened into consecutive word pairs (a filter widened per invoke), two groups per pass. */
static void widen_seq(const int8_t *x, uint32_t groups, uint32_t *dst) {
  uint32_t v, e, o;
  if (groups & 1u) {
    v = ld32u(x);
    dst[0] = sxtb16(v);
    dst[1] = sxtb16_r8(v);
    x += 4;
    dst += 2;
  }
  for (groups >>= 1; groups != 0u; groups--) {
    __asm__ volatile("ldr %[v], [%[x]], #4\n\t"
                     "sxtb16 %[e], %[v]\n\t"
                     "sxtb16 %[o], %[v], ror #8\n\t"
                     "strd %[e], %[o], [%[q]], #8\n\t"
                     "ldr %[v], [%[x]], #4\n\t"
                     "sxtb16 %[e], %[v]\n\t"
                     "sxtb16 %[o], %[v], ror #8\n\t"
                     "strd %[e], %[o], [%[q]], #8\n\t"
                     : [v] "=&r"(v), [e] "=&r"(e), [o] "=&r"(o), [x] "+r"(x), [q] "+r"(dst)
                     :
                     : "memory");
  }
}

#define EP_ROW2(W, A, B)                      \
  "ldr %[v], [%[" W "]], #4\n\t"              \
  "sxtb16 %[t], %[v]\n\t"                     \
  "sxtb16 %[v], %[v], ror #8\n\t"             \
  "smlad %[" A "], %[t], %[x0], %[" A "]\n\t" \
  "smlad %[" A "], %[v], %[x1], %[" A "]\n\t" \
  "smlad %[" B "], %[t], %[x2], %[" B "]\n\t" \
  "smlad %[" B "], %[v], %[x3], %[" B "]\n\t"
#define EP_2X2_GROUP                    \
  "ldrd %[x0], %[x1], [%[xp]], #8\n\t" \
  "ldrd %[x2], %[x3], [%[xp]], #8\n\t" EP_ROW2("w0", "a00", "a01") EP_ROW2("w1", "a10", "a11")
#define EP_2X2_OPERANDS                                                                                            \
  [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [w0] "+r"(w0), [w1] "+r"(w1), [xp] "+r"(xp), \
      [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [v] "=&r"(v), [t] "=&r"(t)

/* Two weight rows against two widened pixels over `groups` 4-byte groups, added to acc = {row 0 pixel A, row 0
 * pixel B, row 1 A, row 1 B}: each weight word is loaded and widened once for both pixels (16 instructions per
 * 16 MACs). */
#if defined(__GNUC__)
__attribute__((always_inline)) /* two call sites: outlined, the accumulators would go through memory */
#endif
static inline void dot2x2(const int8_t *w0, const int8_t *w1, const uint32_t *xq, uint32_t groups, int32_t *acc) {
  int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
  const uint32_t *xp = xq;
  uint32_t n = groups >> 2, g = groups & 3u, x0, x1, x2, x3, v, t;
  if (n) {
    __asm__ volatile("1:\n\t" EP_2X2_GROUP EP_2X2_GROUP EP_2X2_GROUP EP_2X2_GROUP
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t"
                     : EP_2X2_OPERANDS, [n] "+r"(n)
                     :
                     : "cc", "memory");
  }
  while (g--) __asm__ volatile(EP_2X2_GROUP : EP_2X2_OPERANDS : : "memory");
  acc[0] = a00;
  acc[1] = a01;
  acc[2] = a10;
  acc[3] = a11;
}

/* dot2x2 on filter rows widened beforehand (per 4 weights the words SXTB16 and SXTB16 ROR 8 give): one LDRD per
 * row and group instead of LDR + two SXTB16 (12 instructions per 16 MACs). */
#define EP_ROW2W(W, A, B)                     \
  "ldrd %[t], %[v], [%[" W "]], #8\n\t"      \
  "smlad %[" A "], %[t], %[x0], %[" A "]\n\t" \
  "smlad %[" A "], %[v], %[x1], %[" A "]\n\t" \
  "smlad %[" B "], %[t], %[x2], %[" B "]\n\t" \
  "smlad %[" B "], %[v], %[x3], %[" B "]\n\t"
#define EP_2X2W_GROUP                   \
  "ldrd %[x0], %[x1], [%[xp]], #8\n\t" \
  "ldrd %[x2], %[x3], [%[xp]], #8\n\t" EP_ROW2W("w0", "a00", "a01") EP_ROW2W("w1", "a10", "a11")
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void dot2x2w(const uint32_t *w0, const uint32_t *w1, const uint32_t *xq, uint32_t groups, int32_t *acc) {
  int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
  const uint32_t *xp = xq;
  uint32_t n = groups >> 1, x0, x1, x2, x3, v, t;
  if (n) {
    __asm__ volatile("1:\n\t" EP_2X2W_GROUP EP_2X2W_GROUP
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t"
                     : EP_2X2_OPERANDS, [n] "+r"(n)
                     :
                     : "cc", "memory");
  }
  if (groups & 1u) __asm__ volatile(EP_2X2W_GROUP : EP_2X2_OPERANDS : : "memory");
  acc[0] = a00;
  acc[1] = a01;
  acc[2] = a10;
  acc[3] = a11;
}

#define PRE_WORDS 1280u /* stack words (5 KB) for a filter, or a chunk of its rows, widened per invoke */

/* Whether widening a 1x1 filter chunk of `rows` rows per invoke pays against `pairs` pixel pairs: per pair and
 * chunk the widened filter saves about 3.5 instructions per row pair and group while the two pixels are widened again
 * (about 12 per group), and the chunk's widening (about 5 per row and group) is spread over the pairs. */
static int chunks_pay(uint32_t pairs, uint32_t rows) {
  return rows >= 2u && pairs * (7u * rows) > pairs * 48u + 20u * rows;
}

/* One op's constants for pair_channels. */
typedef struct {
  uint32_t depth, groups, oc, zp21, lo4, hi4;
  const int32_t *bias, *cm;
  const int8_t *cs;
} pair_k_t;

/* SRDHM(acc, m) for any int32 acc (SMULL, then the 2^30 nudge carried into the high word), then TFLM's rounding
 * right shift by e >= 1 and the zero point: exact when rqw_ok holds (|p| + 2^(e-1) < 2^31). Four instructions more
 * than rq_k, for the channels rq_k cannot take (|acc| up to 2^31, shifts up to 31). */
static inline int32_t rq_wide(int32_t acc, int32_t m, int32_t e, int32_t h, int32_t zp) {
  uint32_t lo;
  int32_t hi, p;
  __asm__("smull %0, %1, %2, %3\n\t"
          "adds %0, %0, #0x40000000\n\t"
          "adc %1, %1, #0"
          : "=&r"(lo), "=&r"(hi)
          : "r"(acc), "r"(m)
          : "cc");
  p = (int32_t)(((uint32_t)hi << 1) | (lo >> 31));
  return ep_sat8(((p + h + (p >> 31)) >> e) + zp);
}

/* Whether rq_wide is exact for every channel: a right shift e in [1, 31] and |SRDHM| + 2^(e-1) < 2^31 for the
 * largest |acc| (|folded bias| + depth 2^14). */
static int rqw_ok(const ep_op_t *op, uint32_t channels) {
  uint32_t r;
  for (r = 0; r < channels; r++) {
    const int32_t e = conv_shifts(op, channels)[r];
    const int64_t b = op->scratch[r], bound = (b < 0 ? -b : b) + (int64_t)op->depth * 16384;
    const int64_t pmax = (bound * op->scratch[channels + r] + ((int64_t)1 << 30)) >> 31;
    if (e < 1 || e > 31 || bound >= ((int64_t)1 << 31)) return 0;
    if (pmax + ((int64_t)1 << (e - 1)) >= ((int64_t)1 << 31)) return 0;
  }
  return 1;
}

/* Every output channel of one pixel pair, two at a time, for an even channel count and a depth that is a multiple
 * of 4: outputs {A r, A r+1} and {B r, B r+1} stored as halfwords; requantised by rq_k (`fold`, when exact for the
 * op) or rq_wide. Its own function (one per mode) so that the loop's few live values stay in registers around the
 * multiply-accumulate block. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void pair_channels_body(const int8_t *w, const uint32_t *xq, const pair_k_t *k, int8_t *ya, int8_t *yb,
                                      int fold, const uint32_t *wpre) {
  const uint32_t depth = k->depth, groups = k->groups, zp21 = k->zp21, lo4 = k->lo4, hi4 = k->hi4;
  const int32_t zp = (int32_t)(zp21 - 1u) / 2;
  const int32_t *bias = k->bias, *cm = k->cm;
  const int8_t *cs = k->cs;
  const int8_t *const end = ya + k->oc;
  size_t pw = 0; /* words of the widened filter before this pair's rows */
  for (; ya != end; ya += 2, yb += 2, w += 2u * depth, pw += depth, bias += 2, cm += 2, cs += 2) {
    int32_t acc[4];
    uint32_t v;
    acc[0] = acc[1] = bias[0];
    acc[2] = acc[3] = bias[1];
    if (wpre != NULL) dot2x2w(wpre + pw, wpre + pw + depth / 2u, xq, groups, acc);
    else dot2x2(w, w + depth, xq, groups, acc);
    if (fold) {
      rqk_t q0, q1;
      q0.m = cm[0];
      q0.e = cs[0];
      q0.k = (int32_t)(zp21 << (q0.e - 1));
      q1.m = cm[1];
      q1.e = cs[1];
      q1.k = (int32_t)(zp21 << (q1.e - 1));
      v = pack4(rq_k(acc[0], &q0), rq_k(acc[2], &q1), rq_k(acc[1], &q0), rq_k(acc[3], &q1));
    } else {
      const int32_t m0 = cm[0], m1 = cm[1], e0 = cs[0], e1 = cs[1];
      const int32_t h0 = (int32_t)((uint32_t)1 << (e0 - 1)), h1 = (int32_t)((uint32_t)1 << (e1 - 1));
      v = pack4(rq_wide(acc[0], m0, e0, h0, zp), rq_wide(acc[2], m1, e1, h1, zp), rq_wide(acc[1], m0, e0, h0, zp),
                rq_wide(acc[3], m1, e1, h1, zp));
    }
    v = clamp4(v, lo4, hi4);
    st16u(ya, v);
    st16u(yb, v >> 16);
  }
}

#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void pair_channels(const int8_t *w, const uint32_t *xq, const pair_k_t *k, int8_t *ya, int8_t *yb) {
  pair_channels_body(w, xq, k, ya, yb, 1, NULL);
}

/* pair_channels on a filter widened beforehand (`wpre`: per row depth / 2 words). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void pair_channels_pre(const uint32_t *wpre, const uint32_t *xq, const pair_k_t *k, int8_t *ya, int8_t *yb) {
  pair_channels_body((const int8_t *)(const void *)wpre, xq, k, ya, yb, 1, wpre); /* w unread, only advanced */
}

#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void pair_channels_pre_wide(const uint32_t *wpre, const uint32_t *xq, const pair_k_t *k, int8_t *ya,
                                   int8_t *yb) {
  pair_channels_body((const int8_t *)(const void *)wpre, xq, k, ya, yb, 0, wpre);
}

#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void pair_channels_wide(const int8_t *w, const uint32_t *xq, const pair_k_t *k, int8_t *ya, int8_t *yb) {
  pair_channels_body(w, xq, k, ya, yb, 0, NULL);
}

/* Output pixels in pairs: both inputs widened into one buffer, then two output channels at a time, requantised as
 * they finish (the pair shares each channel's constants). Returns the pixels done (an odd last one is left). */
static int32_t conv_pairs(const ep_model_t *m, const ep_op_t *op, const int8_t *xb, int8_t *y) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *tw = &m->tensors[op->in[1]], *to = &m->tensors[op->out[0]];
  const int32_t H = ti->dims[1], W = ti->dims[2], C = ti->dims[3];
  const int32_t OW = to->dims[2], npix = to->dims[1] * OW, KH = tw->dims[1], KW = tw->dims[2];
  const uint32_t oc = op->rows, depth = op->depth, groups = depth >> 2, tail = depth & 3u, body = depth & ~3u;
  const int32_t *bias = op->scratch, *cm = op->scratch + oc;
  const int8_t *cs = conv_shifts(op, oc);
  const int32_t zp = op->p.conv.zp_out;
  const uint32_t lo4 = (uint32_t)(uint8_t)op->act_min * 0x01010101u, hi4 = (uint32_t)(uint8_t)op->act_max * 0x01010101u;
  const int fast = rq_fast_ok(op, oc), fastk = fast && !(oc & 1u) && rqk_ok(op, oc);
  const int wide = !fastk && !(oc & 1u) && tail == 0u && rqw_ok(op, oc);
  /* A depth tail in a gathered patch: the patch zero-padded to whole words and one more group, so the weight rows
   * read up to 3 bytes of the next row (multiplied by the zero lanes); the last channel pair, whose next row would be
   * past the filter, keeps the byte loop. */
  const uint32_t padt = fastk && tail != 0u && !(KH == 1 && KW == 1) && oc >= 4u;
  pair_k_t pkt, pkp;
  uint32_t wpre[PRE_WORDS];
  int pre = 0;
  const uint32_t zp21 = 2u * (uint32_t)zp + 1u; /* (2 zp + 1) 2^(e-1) = zp 2^e + 2^(e-1): rq_k's constant */
  pair_k_t pk;
  const int8_t *w = (const int8_t *)tw->data;
  uint32_t *xq = (uint32_t *)(void *)m->fc_tmp;
  int8_t *patch = (int8_t *)(m->fc_tmp + widened_bytes(depth));
  int32_t p = 0, oy = 0, ox = 0;
  pk.depth = depth;
  pk.groups = groups;
  pk.oc = oc;
  pk.bias = bias;
  pk.cm = cm;
  pk.cs = cs;
  pk.zp21 = zp21;
  pk.lo4 = lo4;
  pk.hi4 = hi4;
  pkt = pk;
  pkt.groups = groups + 1u;
  pkt.oc = oc - 2u;
  pkp = pk;
  /* A small filter (oc x ceil4(depth) <= 2560) is widened once per invoke onto the stack, each row zero-padded to whole
   * groups: every pixel pair reads it again, and a depth tail becomes one more group (a gathered patch only: a 1x1
   * input is read in place, its pad bytes are the next pixel's). */
  if (fastk && (tail == 0u || !(KH == 1 && KW == 1)) && (size_t)oc * (body + 4u * (tail != 0u)) <= 2u * PRE_WORDS) {
    const uint32_t wg = groups + (tail != 0u);
    uint32_t r, g, i = 0;
    for (r = 0; r < oc; r++) {
      const int8_t *src = w + (size_t)r * depth;
      widen_seq(src, groups, wpre + i);
      i += 2u * groups;
      for (g = groups; g < wg; g++, i += 2u) {
        uint32_t v = 0;
        memcpy(&v, src + body, tail); /* the row's last bytes, zeros after */
        wpre[i] = sxtb16(v);
        wpre[i + 1u] = sxtb16_r8(v);
      }
    }
    pkp.depth = 4u * wg; /* pair_channels_pre's row stride: 2 wg words */
    pkp.groups = wg;
    pre = 1;
  }
  if (tail != 0u && (padt || pre)) memset(patch + depth, 0, 4u - tail);
  /* A larger 1x1 filter (depth <= 256) in chunks of rows that fit the stack, each widened once and run against every
   * pixel pair (the pixels are read in place and widened again per chunk, which costs less than widening the
   * filter per pair). */
  if (!pre && (fastk || wide) && tail == 0u && KH == 1 && KW == 1 && depth <= 256u &&
      chunks_pay((uint32_t)npix / 2u, (2u * PRE_WORDS / depth) & ~1u)) {
    const uint32_t rows = (2u * PRE_WORDS / depth) & ~1u;
    uint32_t r0;
    for (r0 = 0; r0 < oc; r0 += rows) {
      const uint32_t n = oc - r0 < rows ? oc - r0 : rows;
      const int8_t *src = w + (size_t)r0 * depth;
      pair_k_t pc = pk;
      widen_seq(src, n * groups, wpre);
      pc.oc = n;
      pc.bias = bias + r0;
      pc.cm = cm + r0;
      pc.cs = cs + r0;
      oy = ox = 0;
      for (p = 0; p + 1 < npix; p += 2) {
        int8_t *ya = y + (size_t)p * oc + r0;
        widen_lane(conv_input(op, xb, H, W, C, 1, 1, oy, ox, patch), groups, xq);
        if (++ox == OW) ox = 0, oy++;
        widen_lane(conv_input(op, xb, H, W, C, 1, 1, oy, ox, patch), groups, xq + 2);
        if (++ox == OW) ox = 0, oy++;
        if (fastk) pair_channels_pre(wpre, xq, &pc, ya, ya + oc);
        else pair_channels_pre_wide(wpre, xq, &pc, ya, ya + oc);
      }
    }
    return p;
  }
  for (p = 0; p + 1 < npix; p += 2) {
    int8_t ta[4] = {0, 0, 0, 0}, tb[4] = {0, 0, 0, 0};
    int8_t *ya = y + (size_t)p * oc, *yb = ya + oc;
    const int8_t *x = conv_input(op, xb, H, W, C, KH, KW, oy, ox, patch);
    uint32_t r, d;
    uint32_t r0 = 0;
    if (pre) {
      widen_lane(x, pkp.groups, xq);
      if (++ox == OW) ox = 0, oy++;
      widen_lane(conv_input(op, xb, H, W, C, KH, KW, oy, ox, patch), pkp.groups, xq + 2);
      if (++ox == OW) ox = 0, oy++;
      pair_channels_pre(wpre, xq, &pkp, ya, yb);
      continue;
    }
    widen_lane(x, groups + padt, xq);
    for (d = 0; d < tail; d++) ta[d] = x[body + d];
    if (++ox == OW) ox = 0, oy++;
    x = conv_input(op, xb, H, W, C, KH, KW, oy, ox, patch);
    widen_lane(x, groups + padt, xq + 2);
    for (d = 0; d < tail; d++) tb[d] = x[body + d];
    if (++ox == OW) ox = 0, oy++;
    if (padt) {
      pair_channels(w, xq, &pkt, ya, yb);
      r0 = oc - 2u;
    }
    if (fastk && tail == 0u) {
      pair_channels(w, xq, &pk, ya, yb);
      continue;
    }
    if (wide) {
      pair_channels_wide(w, xq, &pk, ya, yb);
      continue;
    }
    if (fastk) { /* even channel count, zero point folded into the rounding constant: outputs stored as halfwords */
      const int8_t *w0 = w + (size_t)r0 * depth;
      for (r = r0; r < oc; r += 2, w0 += 2u * depth) {
        int32_t acc[4];
        rqk_t q0, q1;
        uint32_t v;
        acc[0] = acc[1] = bias[r];
        acc[2] = acc[3] = bias[r + 1u];
        dot2x2(w0, w0 + depth, xq, groups, acc);
        for (d = 0; d < tail; d++) {
          const int32_t u0 = w0[body + d], u1 = w0[depth + body + d];
          acc[0] += u0 * ta[d];
          acc[1] += u0 * tb[d];
          acc[2] += u1 * ta[d];
          acc[3] += u1 * tb[d];
        }
        q0.m = cm[r];
        q0.e = cs[r];
        q0.k = (int32_t)(zp21 << (q0.e - 1));
        q1.m = cm[r + 1u];
        q1.e = cs[r + 1u];
        q1.k = (int32_t)(zp21 << (q1.e - 1));
        v = clamp4(pack4(rq_k(acc[0], &q0), rq_k(acc[2], &q1), rq_k(acc[1], &q0), rq_k(acc[3], &q1)), lo4, hi4);
        st16u(ya + r, v); /* {A r, A r+1} */
        st16u(yb + r, v >> 16);
      }
      continue;
    }
    for (r = 0; r < oc; r += 2) {
      const uint32_t r1 = r + 1u < oc ? r + 1u : r; /* odd channel count: the last row twice, stored once */
      const int8_t *w0 = w + (size_t)r * depth, *w1 = w + (size_t)r1 * depth;
      int32_t acc[4];
      uint32_t v;
      acc[0] = acc[1] = bias[r];
      acc[2] = acc[3] = bias[r1];
      dot2x2(w0, w1, xq, groups, acc);
      for (d = 0; d < tail; d++) {
        const int32_t u0 = w0[body + d], u1 = w1[body + d];
        acc[0] += u0 * ta[d];
        acc[1] += u0 * tb[d];
        acc[2] += u1 * ta[d];
        acc[3] += u1 * tb[d];
      }
      if (fast) {
        const int32_t e0 = cs[r], e1 = cs[r1];
        const int32_t h0 = (int32_t)((uint32_t)1 << (e0 - 1)), h1 = (int32_t)((uint32_t)1 << (e1 - 1));
        v = pack4(rq_fast(acc[0], cm[r], e0, h0, zp), rq_fast(acc[2], cm[r1], e1, h1, zp),
                  rq_fast(acc[1], cm[r], e0, h0, zp), rq_fast(acc[3], cm[r1], e1, h1, zp));
      } else {
        const rq_t q0 = rq_of(cm[r], -cs[r]), q1 = rq_of(cm[r1], -cs[r1]);
        v = pack4(rq_value(acc[0], q0, zp), rq_value(acc[2], q1, zp), rq_value(acc[1], q0, zp),
                  rq_value(acc[3], q1, zp));
      }
      v = clamp4(v, lo4, hi4); /* {A r, A r1, B r, B r1} */
      ya[r] = (int8_t)v;
      ya[r1] = (int8_t)(v >> 8);
      yb[r] = (int8_t)(v >> 16);
      yb[r1] = (int8_t)(v >> 24);
    }
  }
  return p;
}
#endif /* EP_CONV_DSP */

#if EP_CONV_PACKED
#define PACK_SHIFT 23   /* pixel B's input sits 23 bits above pixel A's in one int32 word (|B| 2^23 <= 2^30) */
#define PACK_CHUNK 255u /* |sum of 255 int8 x int8 products| < 2^22: pixel A's sum fits the signed 23-bit low field */

/* Pixel A's and B's sums out of one int64 chunk sum A + B * 2^23 (|A| < 2^22), added to *a and *b. */
static inline void unpack_add(int64_t s, int32_t *a, int32_t *b) {
  const int32_t lo = (int32_t)((uint32_t)(uint64_t)s << (32 - PACK_SHIFT)) >> (32 - PACK_SHIFT);
  *a = (int32_t)((uint32_t)*a + (uint32_t)lo);
  *b = (int32_t)((uint32_t)*b + (uint32_t)(int32_t)((s - lo) >> PACK_SHIFT));
}

/* Two weight rows against two pixels packed as X[d] = xA[d] + xB[d] * 2^23: one long multiply-accumulate gives both
 * pixels' products of a weight (exact in int64); every PACK_CHUNK steps the two sums are separated. acc = {row 0 A,
 * row 0 B, row 1 A, row 1 B}, added to. */
static void dot2x2_packed(const int8_t *w0, const int8_t *w1, const int32_t *X, uint32_t depth, int32_t *acc) {
  uint32_t d = 0;
  while (d < depth) {
    const uint32_t end = depth - d > PACK_CHUNK ? d + PACK_CHUNK : depth;
    int64_t s0 = 0, s1 = 0;
    for (; d + 4u <= end; d += 4u) {
      s0 += (int64_t)w0[d] * X[d];
      s1 += (int64_t)w1[d] * X[d];
      s0 += (int64_t)w0[d + 1] * X[d + 1];
      s1 += (int64_t)w1[d + 1] * X[d + 1];
      s0 += (int64_t)w0[d + 2] * X[d + 2];
      s1 += (int64_t)w1[d + 2] * X[d + 2];
      s0 += (int64_t)w0[d + 3] * X[d + 3];
      s1 += (int64_t)w1[d + 3] * X[d + 3];
    }
    for (; d < end; d++) {
      s0 += (int64_t)w0[d] * X[d];
      s1 += (int64_t)w1[d] * X[d];
    }
    unpack_add(s0, &acc[0], &acc[1]);
    unpack_add(s1, &acc[2], &acc[3]);
  }
}

/* Output pixels in pairs (see dot2x2_packed), two output channels at a time. Returns the pixels done. */
static int32_t conv_pairs(const ep_model_t *m, const ep_op_t *op, const int8_t *xb, int8_t *y) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *tw = &m->tensors[op->in[1]], *to = &m->tensors[op->out[0]];
  const int32_t H = ti->dims[1], W = ti->dims[2], C = ti->dims[3];
  const int32_t OW = to->dims[2], npix = to->dims[1] * OW, KH = tw->dims[1], KW = tw->dims[2];
  const uint32_t oc = op->rows, depth = op->depth;
  const int32_t *bias = op->scratch, *cm = op->scratch + oc;
  const int8_t *cs = conv_shifts(op, oc);
  const int32_t zp = op->p.conv.zp_out, lo = op->act_min, hi = op->act_max;
  const int fast = rq_fast_ok(op, oc);
  const int8_t *w = (const int8_t *)tw->data;
  int32_t *X = (int32_t *)(void *)m->fc_tmp;
  int8_t *patch = (int8_t *)(m->fc_tmp + widened_bytes(depth));
  int32_t p, oy = 0, ox = 0;
  for (p = 0; p + 1 < npix; p += 2) {
    int8_t *ya = y + (size_t)p * oc, *yb = ya + oc;
    const int8_t *x = conv_input(op, xb, H, W, C, KH, KW, oy, ox, patch);
    uint32_t r, d;
    for (d = 0; d < depth; d++) X[d] = x[d];
    if (++ox == OW) ox = 0, oy++;
    x = conv_input(op, xb, H, W, C, KH, KW, oy, ox, patch);
    for (d = 0; d < depth; d++) X[d] = (int32_t)((uint32_t)X[d] + ((uint32_t)(int32_t)x[d] << PACK_SHIFT));
    if (++ox == OW) ox = 0, oy++;
    for (r = 0; r < oc; r += 2) {
      const uint32_t r1 = r + 1u < oc ? r + 1u : r; /* odd channel count: the last row twice, stored once */
      int32_t acc[4];
      rq_t q;
      acc[0] = acc[1] = bias[r];
      acc[2] = acc[3] = bias[r1];
      dot2x2_packed(w + (size_t)r * depth, w + (size_t)r1 * depth, X, depth, acc);
      if (fast) {
        const int32_t e0 = cs[r], e1 = cs[r1];
        const int32_t h0 = (int32_t)((uint32_t)1 << (e0 - 1)), h1 = (int32_t)((uint32_t)1 << (e1 - 1));
        ya[r] = rq_fast_c(acc[0], cm[r], e0, h0, zp, lo, hi);
        yb[r] = rq_fast_c(acc[1], cm[r], e0, h0, zp, lo, hi);
        ya[r1] = rq_fast_c(acc[2], cm[r1], e1, h1, zp, lo, hi);
        yb[r1] = rq_fast_c(acc[3], cm[r1], e1, h1, zp, lo, hi);
        continue;
      }
      q = rq_of(cm[r], -cs[r]);
      ya[r] = rq_apply(acc[0], q, zp, lo, hi);
      yb[r] = rq_apply(acc[1], q, zp, lo, hi);
      q = rq_of(cm[r1], -cs[r1]);
      ya[r1] = rq_apply(acc[2], q, zp, lo, hi);
      yb[r1] = rq_apply(acc[3], q, zp, lo, hi);
    }
  }
  return p;
}
#endif /* EP_CONV_PACKED */

int ep_k_conv_i8(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *tw = &m->tensors[op->in[1]], *to = &m->tensors[op->out[0]];
  const int32_t H = ti->dims[1], W = ti->dims[2], C = ti->dims[3];
  const int32_t OH = to->dims[1], OW = to->dims[2], KH = tw->dims[1], KW = tw->dims[2];
  const uint32_t oc = op->rows, depth = op->depth;
  const int32_t *bias = op->scratch, *cm = op->scratch + oc;
  const int8_t *cs = conv_shifts(op, oc);
  const int8_t *w = (const int8_t *)tw->data;
  uint32_t *xq = (uint32_t *)(void *)m->fc_tmp;
  int8_t *patch = (int8_t *)(m->fc_tmp + widened_bytes(depth));
  int32_t b, p, oy, ox;
  for (b = 0; b < ti->dims[0]; b++) {
    const int8_t *xb = (const int8_t *)ti->data + (size_t)b * H * W * C;
    int8_t *y = (int8_t *)to->data + (size_t)b * OH * OW * oc;
#if EP_CONV_DSP || EP_CONV_PACKED
    p = conv_pairs(m, op, xb, y);
#else
    p = 0;
#endif
    oy = p / OW;
    ox = p % OW;
    for (; p < OH * OW; p++) {
      const int8_t *x = conv_input(op, xb, H, W, C, KH, KW, oy, ox, patch);
      uint32_t r;
      if (++ox == OW) ox = 0, oy++;
      ep_fc_widen(x, depth, xq);
      for (r = 0; r < oc;) {
        int32_t acc[CONV_BLOCK];
        const uint32_t n = oc - r > CONV_BLOCK ? CONV_BLOCK : oc - r;
        ep_fc_dot_rows(w + (size_t)r * depth, x, xq, bias + r, acc, n, depth);
        rq_rows(acc, y + (size_t)p * oc + r, n, cm + r, cs + r, op->p.conv.zp_out, op->act_min, op->act_max);
        r += n;
      }
    }
  }
  return 0;
}

/* One output pixel of a depthwise convolution whose taps all lie inside the image: accumulators in registers,
 * four channels at a time, from the bias with the zero point folded in. `x` is the input at the window's
 * top-left tap, channel c0; `w` the filter at channel c0; steps in bytes between tap rows / columns. */
#if defined(__GNUC__)
__attribute__((noinline)) /* its own registers: inlined, v6-M spills the accumulators */
#endif
static void dw_interior(const int8_t *x, const int8_t *w, const int32_t *bf, int32_t *acc, int32_t n, int32_t C,
                        int32_t KH, int32_t KW, int32_t row_step, int32_t col_step) {
  int32_t k = 0, fy, fx;
  for (; k + 4 <= n; k += 4) {
    int32_t a0 = bf[k], a1 = bf[k + 1], a2 = bf[k + 2], a3 = bf[k + 3];
    for (fy = 0; fy < KH; fy++) {
      const int8_t *xp = x + k + (size_t)fy * row_step, *wp = w + k + (size_t)fy * KW * C;
      for (fx = 0; fx < KW; fx++, xp += col_step, wp += C) {
        a0 += xp[0] * wp[0];
        a1 += xp[1] * wp[1];
        a2 += xp[2] * wp[2];
        a3 += xp[3] * wp[3];
      }
    }
    acc[k] = a0;
    acc[k + 1] = a1;
    acc[k + 2] = a2;
    acc[k + 3] = a3;
  }
  for (; k < n; k++) {
    int32_t a = bf[k];
    for (fy = 0; fy < KH; fy++)
      for (fx = 0; fx < KW; fx++) a += x[k + (size_t)fy * row_step + (size_t)fx * col_step] * w[k + ((size_t)fy * KW + fx) * C];
    acc[k] = a;
  }
}

/* Channels c_begin.. of one batch, pixel by pixel: interior pixels by dw_interior, border pixels by TFLM's
 * skip-outside-taps loop from the model's bias. */
static void dw_generic(const ep_model_t *m, const ep_op_t *op, const int8_t *xb, int8_t *y, int32_t c_begin) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *tw = &m->tensors[op->in[1]], *to = &m->tensors[op->out[0]];
  const int32_t H = ti->dims[1], W = ti->dims[2], C = ti->dims[3];
  const int32_t OH = to->dims[1], OW = to->dims[2], KH = tw->dims[1], KW = tw->dims[2];
  const int32_t *bf = op->scratch, *cm = op->scratch + C;
  const int8_t *cs = conv_shifts(op, (uint32_t)C);
  const uint8_t *bias = (op->n_in == 3 && op->in[2] >= 0) ? m->tensors[op->in[2]].data : NULL; /* int32 LE */
  const int32_t neg_zp = -(int32_t)op->p.conv.zp_in;
  const int32_t dh = op->p.conv.dil_h, dw = op->p.conv.dil_w;
  const int8_t *w = (const int8_t *)tw->data;
  int32_t oy, ox;
  for (oy = 0; oy < OH; oy++) {
    const int32_t iy0 = oy * op->p.conv.stride_h - op->p.conv.pad_h;
    for (ox = 0; ox < OW; ox++, y += C) {
      const int32_t ix0 = ox * op->p.conv.stride_w - op->p.conv.pad_w;
      const int interior = iy0 >= 0 && ix0 >= 0 && iy0 + (KH - 1) * dh < H && ix0 + (KW - 1) * dw < W;
      int32_t c0;
      for (c0 = c_begin; c0 < C; c0 += (int32_t)CONV_BLOCK) {
        const int32_t n = C - c0 > (int32_t)CONV_BLOCK ? (int32_t)CONV_BLOCK : C - c0;
        int32_t acc[CONV_BLOCK], fy, fx, k;
        if (interior) {
          dw_interior(xb + ((size_t)iy0 * W + ix0) * C + c0, w + c0, bf + c0, acc, n, C, KH, KW, dh * W * C, dw * C);
        } else {
          for (k = 0; k < n; k++) acc[k] = bias ? (int32_t)ep_le32(bias + 4u * (uint32_t)(c0 + k)) : 0;
          for (fy = 0; fy < KH; fy++) {
            const int32_t iy = iy0 + fy * dh;
            if (iy < 0 || iy >= H) continue; /* TFLM skips taps outside the image */
            for (fx = 0; fx < KW; fx++) {
              const int32_t ix = ix0 + fx * dw;
              const int8_t *xp, *wp;
              if (ix < 0 || ix >= W) continue;
              xp = xb + ((size_t)iy * W + ix) * C + c0;
              wp = w + ((size_t)fy * KW + fx) * C + c0;
              for (k = 0; k < n; k++) acc[k] += (xp[k] + neg_zp) * wp[k];
            }
          }
        }
        rq_rows(acc, y + c0, (uint32_t)n, cm + c0, cs + c0, op->p.conv.zp_out, op->act_min, op->act_max);
      }
    }
  }
}

#if EP_CONV_DSP || EP_CONV_PACKED
#define DW_TAPS 32 /* KH * KW of the blocked depthwise paths: the block's filter and tap offsets live on the stack */

/* Byte offsets of a depthwise window's taps from its top-left tap in the input (toff) and in a gathered border window
 * (boff: 4 bytes per tap). Returns the number of taps, 0 if more than DW_TAPS. */
static int32_t dw_taps(const ep_model_t *m, const ep_op_t *op, int32_t *toff, int32_t *boff) {
  const ep_tensor_t *tw = &m->tensors[op->in[1]];
  const int32_t W = m->tensors[op->in[0]].dims[2], C = m->tensors[op->in[0]].dims[3], KH = tw->dims[1], KW = tw->dims[2];
  int32_t fy, fx, t = 0;
  if (KH * KW > DW_TAPS) return 0;
  for (fy = 0; fy < KH; fy++) {
    for (fx = 0; fx < KW; fx++, t++) {
      toff[t] = (fy * op->p.conv.dil_h * W + fx * op->p.conv.dil_w) * C;
      boff[t] = 4 * t;
    }
  }
  return t;
}

/* Where one pixel's four channels (xb already at the block's first channel; the window's top-left tap at iy0, ix0)
 * are read, tap by tap: in place (*off = toff) when the window lies inside the image, else gathered into xw (*off =
 * boff) with the input zero point for taps outside, which the bias folded over all taps cancels exactly. Branches
 * depend on the geometry only. */
static inline const int8_t *dw_window(const ep_op_t *op, const int8_t *xb, int32_t H, int32_t W, int32_t C,
                                      int32_t KH, int32_t KW, int32_t iy0, int32_t ix0, const int32_t *toff,
                                      const int32_t *boff, uint32_t *xw, const int32_t **off) {
  const int32_t dh = op->p.conv.dil_h, dw = op->p.conv.dil_w;
  const uint32_t zp4 = (uint32_t)(uint8_t)op->p.conv.zp_in * 0x01010101u;
  int32_t fy, fx, t = 0;
  if (iy0 >= 0 && ix0 >= 0 && iy0 + (KH - 1) * dh < H && ix0 + (KW - 1) * dw < W) {
    *off = toff;
    return xb + ((size_t)iy0 * W + ix0) * C;
  }
  for (fy = 0; fy < KH; fy++) {
    const int32_t iy = iy0 + fy * dh;
    for (fx = 0; fx < KW; fx++, t++) {
      const int32_t ix = ix0 + fx * dw;
      uint32_t v;
      if (iy >= 0 && iy < H && ix >= 0 && ix < W) memcpy(&v, xb + ((size_t)iy * W + ix) * C, 4);
      else v = zp4;
      xw[t] = v;
    }
  }
  *off = boff;
  return (const int8_t *)xw;
}
#endif /* EP_CONV_DSP || EP_CONV_PACKED */

#if EP_CONV_DSP

/* Channels 0 .. (C & ~3) of one batch, four at a time, every pixel: the block's filter is widened once (SXTB16),
 * each tap's four input bytes are widened by two SXTB16 and multiplied lane by lane (SMLABB / SMLATT). Border
 * pixels read the input zero point for taps outside the image, which the bias folded over all taps cancels
 * exactly, so every pixel runs the same code. Returns the channels done. */
static int32_t dw_simd(const ep_model_t *m, const ep_op_t *op, const int8_t *xb, int8_t *y) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *tw = &m->tensors[op->in[1]], *to = &m->tensors[op->out[0]];
  const int32_t H = ti->dims[1], W = ti->dims[2], C = ti->dims[3];
  const int32_t OH = to->dims[1], OW = to->dims[2], KH = tw->dims[1], KW = tw->dims[2], T = KH * KW;
  const int32_t *bf = op->scratch, *cm = op->scratch + C;
  const int8_t *cs = conv_shifts(op, (uint32_t)C);
  const int32_t zp = op->p.conv.zp_out;
  const uint32_t lo4 = (uint32_t)(uint8_t)op->act_min * 0x01010101u, hi4 = (uint32_t)(uint8_t)op->act_max * 0x01010101u;
  const int fast = rq_fast_ok(op, (uint32_t)C);
  const int8_t *w = (const int8_t *)tw->data;
  int32_t toff[DW_TAPS], boff[DW_TAPS], c0, t;
  uint32_t wq[2 * DW_TAPS];
  uint32_t xw[DW_TAPS];
  if (dw_taps(m, op, toff, boff) != T) return 0;
  for (c0 = 0; c0 + 4 <= C; c0 += 4) {
    const rq_t q0 = rq_of(cm[c0], -cs[c0]), q1 = rq_of(cm[c0 + 1], -cs[c0 + 1]);
    const rq_t q2 = rq_of(cm[c0 + 2], -cs[c0 + 2]), q3 = rq_of(cm[c0 + 3], -cs[c0 + 3]);
    const int32_t *mq = cm + c0;
    int32_t e[4], h[4], k;
    int8_t *yp = y + c0;
    int32_t oy, ox;
    for (k = 0; k < 4; k++) {
      e[k] = cs[c0 + k];
      h[k] = (int32_t)((uint32_t)1 << ((e[k] - 1) & 31));
    }
    for (t = 0; t < T; t++) {
      const uint32_t v = ld32u(w + (size_t)t * C + c0);
      wq[2 * t] = sxtb16(v);
      wq[2 * t + 1] = sxtb16_r8(v);
    }
    for (oy = 0; oy < OH; oy++) {
      const int32_t iy0 = oy * op->p.conv.stride_h - op->p.conv.pad_h;
      for (ox = 0; ox < OW; ox++, yp += C) {
        const int32_t *off;
        const int8_t *src = dw_window(op, xb + c0, H, W, C, KH, KW, iy0, ox * op->p.conv.stride_w - op->p.conv.pad_w,
                                      toff, boff, xw, &off);
        int32_t a0 = bf[c0], a1 = bf[c0 + 1], a2 = bf[c0 + 2], a3 = bf[c0 + 3];
        uint32_t v;
#define EP_DW_TAP                                                                   \
  do {                                                                              \
    const uint32_t x = ld32u(src + off[t]), xe = sxtb16(x), xo = sxtb16_r8(x);      \
    a0 = smlabb(xe, wq[2 * t], a0);                                                 \
    a2 = smlatt(xe, wq[2 * t], a2);                                                 \
    a1 = smlabb(xo, wq[2 * t + 1], a1);                                             \
    a3 = smlatt(xo, wq[2 * t + 1], a3);                                             \
  } while (0)
        if (T == 9) { /* 3x3, the common case: unrolled, offsets and filter words at fixed stack slots */
#pragma GCC unroll 9
          for (t = 0; t < 9; t++) EP_DW_TAP;
        } else {
          for (t = 0; t < T; t++) EP_DW_TAP;
        }
#undef EP_DW_TAP
        if (fast) {
          v = pack4(rq_fast(a0, mq[0], e[0], h[0], zp), rq_fast(a1, mq[1], e[1], h[1], zp),
                    rq_fast(a2, mq[2], e[2], h[2], zp), rq_fast(a3, mq[3], e[3], h[3], zp));
        } else {
          v = pack4(rq_value(a0, q0, zp), rq_value(a1, q1, zp), rq_value(a2, q2, zp), rq_value(a3, q3, zp));
        }
        v = clamp4(v, lo4, hi4);
        memcpy(yp, &v, 4);
      }
    }
  }
  return c0;
}

/* Whether dw3x3_simd applies: a 3x3 window, and the short requantisation with the zero point folded is exact for
 * every channel (model constants only). */
static int dw3x3_ok(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *tw = &m->tensors[op->in[1]];
  const uint32_t C = op->rows;
  return tw->dims[1] == 3 && tw->dims[2] == 3 && C >= 4u && rqk_ok(op, C);
}

/* Three taps of one window row: input words at p, p + cs, p + 2 cs (four channels each), widened filter words at
 * wq + O (two per tap); p + 2 cs as a scaled register offset (no third address register). */
#define EP_DW3_TAP(ADDR, O)                      \
  "ldr %[x], " ADDR "\n\t"                       \
  "ldrd %[w0], %[w1], [%[wq], #" O "]\n\t"       \
  "sxtb16 %[t], %[x]\n\t"                        \
  "sxtb16 %[x], %[x], ror #8\n\t"                \
  "smlabb %[a0], %[t], %[w0], %[a0]\n\t"         \
  "smlatt %[a2], %[t], %[w0], %[a2]\n\t"         \
  "smlabb %[a1], %[x], %[w1], %[a1]\n\t"         \
  "smlatt %[a3], %[x], %[w1], %[a3]\n\t"
#define EP_DW3_ROW(O0, O1, O2) \
  EP_DW3_TAP("[%[p]]", O0) EP_DW3_TAP("[%[p], %[cs]]", O1) EP_DW3_TAP("[%[p], %[cs], lsl #1]", O2)

/* One channel block's constants for dw3_run, read by the assembly at fixed offsets (asserted below). */
typedef struct {
  uint32_t wq[18];  /* the block's filter widened and doubled: per tap (ch0, ch2), (ch1, ch3) */
  int32_t bias[4];  /* folded over all taps, doubled */
  rqk_t q[4];       /* rq_k constants per channel */
  uint32_t lo4, hi4; /* activation range, four lanes */
  int32_t step;     /* bytes from one window's last row to the next pixel's first: origin step - 2 rs */
  int32_t ystep;    /* bytes between output pixels (C) */
  int8_t *yend;     /* where the run stops */
} dw3_t;
typedef char ep_dw3_layout_check[(sizeof(uint32_t) == 4 && sizeof(rqk_t) == 12 && sizeof(int8_t *) == 4) ? 1 : -1];

/* A run of output pixels of one channel block, from y to k->yend: per pixel the 36 multiply-adds (74 instructions),
 * the four outputs requantised by rq_k (seven instructions each: filter and bias are stored doubled, so the sums
 * come out as rq_k's 2 acc, |2 acc| < 2^31 under rq_fast_ok), clamped (SSUB8/SEL) and stored as one word, then
 * the window moves on by k->step from its last row. Taps `cs` apart, rows `rs` apart (a gathered border window: 4
 * and 12, run of one). */
static inline void dw3_run(const int8_t *p, int32_t cs, int32_t rs, int8_t *y, const dw3_t *k) {
  int32_t a0, a1, a2, a3;
  uint32_t x, t, w0, w1;
  __asm__ volatile(
      "1:\n\t"
      "ldrd %[a0], %[a1], [%[k], #72]\n\t"
      "ldrd %[a2], %[a3], [%[k], #80]\n\t"
      EP_DW3_ROW("0", "8", "16") "add %[p], %[p], %[rs]\n\t"
      EP_DW3_ROW("24", "32", "40") "add %[p], %[p], %[rs]\n\t"
      EP_DW3_ROW("48", "56", "64")
      "ldr %[t], [%[k], #144]\n\t"
      "add %[p], %[p], %[t]\n\t"
#define EP_DW3_RQ(A, O, OE)                     \
  "ldrd %[w0], %[w1], [%[k], #" O "]\n\t"      \
  "ldr %[x], [%[k], #" OE "]\n\t"              \
  "smmulr %[" A "], %[" A "], %[w0]\n\t"       \
  "add %[t], %[w1], %[" A "]\n\t"              \
  "add %[t], %[t], %[" A "], asr #31\n\t"      \
  "asr %[t], %[t], %[x]\n\t"                   \
  "ssat %[" A "], #8, %[t]\n\t"
      EP_DW3_RQ("a0", "88", "96") EP_DW3_RQ("a1", "100", "108") EP_DW3_RQ("a2", "112", "120")
      EP_DW3_RQ("a3", "124", "132")
#undef EP_DW3_RQ
      "bfi %[a0], %[a1], #8, #8\n\t"
      "bfi %[a0], %[a2], #16, #8\n\t"
      "bfi %[a0], %[a3], #24, #8\n\t"
      "ldrd %[w0], %[w1], [%[k], #136]\n\t"
      "ssub8 %[t], %[a0], %[w0]\n\t"
      "sel %[a0], %[a0], %[w0]\n\t"
      "ssub8 %[t], %[w1], %[a0]\n\t"
      "sel %[a0], %[a0], %[w1]\n\t"
      "str %[a0], [%[y]]\n\t"
      "ldrd %[t], %[x], [%[k], #148]\n\t"
      "add %[y], %[y], %[t]\n\t"
      "cmp %[y], %[x]\n\t"
      "bne 1b\n\t"
      : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [p] "+r"(p), [y] "+r"(y), [x] "=&r"(x),
        [t] "=&r"(t), [w0] "=&r"(w0), [w1] "=&r"(w1)
      : [cs] "r"(cs), [rs] "r"(rs), [k] "r"(k), [wq] "r"(k)
      : "cc", "memory");
}

#define DW3_STRIP 512u /* words of padded input rows dw3x3_simd builds on the stack (2 KB) */

/* n words, one per pixel C bytes apart, into dst: two per pass (the strip's inner loop). */
static inline void strip_copy(uint32_t *dst, const int8_t *src, int32_t C, int32_t n) {
  uint32_t a, b;
  int32_t pairs = n >> 1;
  if (n & 1) {
    *dst++ = ld32u(src);
    src += C;
  }
  for (; pairs != 0; pairs--) {
    __asm__ volatile("ldr %[a], [%[s]]\n\t"
                     "ldr %[b], [%[s], %[c]]\n\t"
                     "add %[s], %[s], %[c], lsl #1\n\t"
                     "strd %[a], %[b], [%[d]], #8\n\t"
                     : [a] "=&r"(a), [b] "=&r"(b), [s] "+r"(src), [d] "+r"(dst)
                     : [c] "r"(C)
                     : "memory");
  }
}

/* Whether output row oy of a 3x3 depthwise op runs from a padded strip: it has border windows, its strip rows fit
 * the buffer, and copying them costs less than gathering the border windows one by one (geometry only). */
static int strip_row(int32_t oy, int32_t OW, int32_t sh, int32_t ph, int32_t dh, int32_t H, int32_t inside_cols,
                     int32_t strip_w) {
  const int32_t iy0 = oy * sh - ph;
  const int32_t border = iy0 >= 0 && iy0 + 2 * dh < H ? OW - inside_cols : OW;
  return border > 0 && (2 * dh + 1) * strip_w <= (int32_t)DW3_STRIP && 5 * sh * strip_w < 200 * border;
}

/* 3x3 DEPTHWISE_CONV_2D on DSP cores, channels 0 .. (C & ~3) four at a time: per output row, the pixels whose
 * window lies inside the image in one dw3_run, the others (their window gathered with the input zero point for taps
 * outside, which the bias folded over all taps cancels) one at a time; or, where that costs less (narrow images,
 * the top and bottom rows), whole rows from a strip of their input rows padded with the zero point.
 * Returns the channels done. */
static int32_t dw3x3_simd(const ep_model_t *m, const ep_op_t *op, const int8_t *xb, int8_t *y) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *tw = &m->tensors[op->in[1]], *to = &m->tensors[op->out[0]];
  const int32_t H = ti->dims[1], W = ti->dims[2], C = ti->dims[3], OH = to->dims[1], OW = to->dims[2];
  const int32_t sh = op->p.conv.stride_h, sw = op->p.conv.stride_w, dh = op->p.conv.dil_h, dw = op->p.conv.dil_w;
  const int32_t ph = op->p.conv.pad_h, pw = op->p.conv.pad_w;
  const int32_t *bf = op->scratch, *cm = op->scratch + C;
  const int8_t *cs = conv_shifts(op, (uint32_t)C);
  const int32_t zp = op->p.conv.zp_out, zp_in4 = (int32_t)((uint32_t)(uint8_t)op->p.conv.zp_in * 0x01010101u);
  const int32_t col = dw * C, row = dh * W * C;
  const int8_t *w = (const int8_t *)tw->data;
  /* Output columns whose window lies inside the image across: ox_lo .. ox_hi - 1 (geometry only). */
  int32_t ox_lo = (pw + sw - 1) / sw, ox_hi = W - 2 * dw + pw > 0 ? (W - 2 * dw + pw - 1) / sw + 1 : 0;
  /* Input columns an output row reads, from -pw: the width of a padded strip. */
  const int32_t strip_w = (OW - 1) * sw + 2 * dw + 1;
  /* A strip row: strip_lp zero-point words (left padding), strip_in input pixels, zero-point words to strip_w. */
  const int32_t strip_lp = pw < strip_w ? pw : strip_w, strip_in = W < strip_w - strip_lp ? W : strip_w - strip_lp;
  uint32_t strip[DW3_STRIP];
  int32_t c0;
  dw3_t k;
  if (ox_hi > OW) ox_hi = OW;
  if (ox_lo > ox_hi) ox_lo = ox_hi;
  k.lo4 = (uint32_t)(uint8_t)op->act_min * 0x01010101u;
  k.hi4 = (uint32_t)(uint8_t)op->act_max * 0x01010101u;
  k.step = sw * C - 2 * row;
  k.ystep = C;
  for (c0 = 0; c0 + 4 <= C; c0 += 4) {
    uint32_t xw[9];
    int32_t i, oy, ox;
    int8_t *yp = y + c0;
    for (i = 0; i < 4; i++) {
      const int32_t e = cs[c0 + i];
      k.bias[i] = (int32_t)(2u * (uint32_t)bf[c0 + i]); /* doubled with the filter: the MACs give 2 acc */
      k.q[i].m = cm[c0 + i];
      k.q[i].e = e;
      k.q[i].k = (int32_t)(((uint32_t)1 << (e - 1)) + ((uint32_t)zp << e));
    }
    for (i = 0; i < 9; i++) {
      const uint32_t v = ld32u(w + (size_t)i * C + c0);
      k.wq[2 * i] = dbl16(sxtb16(v));
      k.wq[2 * i + 1] = dbl16(sxtb16_r8(v));
    }
    for (oy = 0; oy < OH; oy++) {
      const int32_t iy0 = oy * sh - ph;
      const int rows_in = iy0 >= 0 && iy0 + 2 * dh < H;
      if (strip_row(oy, OW, sh, ph, dh, H, ox_hi - ox_lo, strip_w)) {
        /* Cheaper than gathering this row's border windows one by one (about 200 instructions each, against five
         * per strip word): this and the following strip rows, as many as fit, from one strip of their input rows
         * padded with the zero point (each input row copied once), one run per output row. */
        int32_t g = 1, r, nrows;
        while (oy + g < OH && strip_row(oy + g, OW, sh, ph, dh, H, ox_hi - ox_lo, strip_w) &&
               (g * sh + 2 * dh + 1) * strip_w <= (int32_t)DW3_STRIP)
          g++;
        nrows = (g - 1) * sh + 2 * dh + 1;
        for (r = 0; r < nrows; r++) {
          const int32_t iy = iy0 + r;
          uint32_t *dst = strip + r * strip_w;
          int32_t i = 0;
          if (iy >= 0 && iy < H) {
            const int8_t *src = xb + (size_t)iy * W * C + c0;
            for (; i < strip_lp; i++) dst[i] = (uint32_t)zp_in4;
            strip_copy(dst + i, src, C, strip_in);
            i += strip_in;
          }
          for (; i < strip_w; i++) dst[i] = (uint32_t)zp_in4;
        }
        k.step = 4 * sw - 2 * 4 * strip_w * dh;
        for (r = 0; r < g; r++) {
          k.yend = yp + (size_t)OW * C;
          dw3_run((const int8_t *)(strip + r * sh * strip_w), 4 * dw, 4 * strip_w * dh, yp, &k);
          yp = k.yend;
        }
        k.step = sw * C - 2 * row;
        oy += g - 1;
        continue;
      }
      for (ox = 0; ox < OW; ox++, yp += C) {
        const int32_t ix0 = ox * sw - pw;
        int32_t fy, fx;
        if (rows_in && ox == ox_lo && ox_hi > ox_lo) { /* the inside run of this row */
          k.yend = yp + (size_t)(ox_hi - ox_lo) * C;
          dw3_run(xb + ((size_t)iy0 * W + ix0) * C + c0, col, row, yp, &k);
          yp = k.yend - C;
          ox = ox_hi - 1;
          continue;
        }
        for (fy = 0; fy < 3; fy++) {
          const int32_t iy = iy0 + fy * dh;
          for (fx = 0; fx < 3; fx++) {
            const int32_t ix = ix0 + fx * dw;
            xw[3 * fy + fx] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? ld32u(xb + ((size_t)iy * W + ix) * C + c0)
                                                                        : (uint32_t)zp_in4;
          }
        }
        k.yend = yp + C;
        dw3_run((const int8_t *)xw, 4, 12, yp, &k);
      }
    }
  }
  return c0;
}
#undef EP_DW3_ROW
#undef EP_DW3_TAP
#endif /* EP_CONV_DSP */

#if EP_CONV_PACKED
#define EP_DW_TAP(T_)                                                       \
  do {                                                                      \
    const int8_t *xp_ = src + off[T_], *wp_ = wv + 4 * (T_);                \
    a0 += xp_[0] * wp_[0];                                                  \
    a1 += xp_[1] * wp_[1];                                                  \
    a2 += xp_[2] * wp_[2];                                                  \
    a3 += xp_[3] * wp_[3];                                                  \
  } while (0)

/* Plain C twin of dw_simd: channels 0 .. (C & ~3) four at a time, every pixel, the block's filter copied to the stack
 * once, four accumulators in registers; border pixels read the input zero point for taps outside the image (cancelled
 * by the bias folded over all taps), so every pixel runs the same code. Returns the channels done. */
static int32_t dw_blocks(const ep_model_t *m, const ep_op_t *op, const int8_t *xb, int8_t *y) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *tw = &m->tensors[op->in[1]], *to = &m->tensors[op->out[0]];
  const int32_t H = ti->dims[1], W = ti->dims[2], C = ti->dims[3];
  const int32_t OH = to->dims[1], OW = to->dims[2], KH = tw->dims[1], KW = tw->dims[2], T = KH * KW;
  const int32_t *bf = op->scratch, *cm = op->scratch + C;
  const int8_t *cs = conv_shifts(op, (uint32_t)C);
  const int32_t zp = op->p.conv.zp_out, lo = op->act_min, hi = op->act_max;
  const int fast = rq_fast_ok(op, (uint32_t)C);
  const int8_t *w = (const int8_t *)tw->data;
  int32_t toff[DW_TAPS], boff[DW_TAPS], c0, t;
  int8_t wv[4 * DW_TAPS];
  uint32_t xw[DW_TAPS];
  if (dw_taps(m, op, toff, boff) != T) return 0;
  for (c0 = 0; c0 + 4 <= C; c0 += 4) {
    rq_t q[4];
    int32_t e[4], h[4], k, oy, ox;
    int8_t *yp = y + c0;
    for (k = 0; k < 4; k++) {
      q[k] = rq_of(cm[c0 + k], -cs[c0 + k]);
      e[k] = cs[c0 + k];
      h[k] = (int32_t)((uint32_t)1 << ((e[k] - 1) & 31));
    }
    for (t = 0; t < T; t++) memcpy(wv + 4 * t, w + (size_t)t * C + c0, 4);
    for (oy = 0; oy < OH; oy++) {
      const int32_t iy0 = oy * op->p.conv.stride_h - op->p.conv.pad_h;
      for (ox = 0; ox < OW; ox++, yp += C) {
        const int32_t *off;
        const int8_t *src = dw_window(op, xb + c0, H, W, C, KH, KW, iy0, ox * op->p.conv.stride_w - op->p.conv.pad_w,
                                      toff, boff, xw, &off);
        int32_t a0 = bf[c0], a1 = bf[c0 + 1], a2 = bf[c0 + 2], a3 = bf[c0 + 3];
        if (T == 9) { /* 3x3, the common case: unrolled */
          EP_DW_TAP(0);
          EP_DW_TAP(1);
          EP_DW_TAP(2);
          EP_DW_TAP(3);
          EP_DW_TAP(4);
          EP_DW_TAP(5);
          EP_DW_TAP(6);
          EP_DW_TAP(7);
          EP_DW_TAP(8);
        } else {
          for (t = 0; t < T; t++) EP_DW_TAP(t);
        }
        if (fast) {
          yp[0] = rq_fast_c(a0, cm[c0], e[0], h[0], zp, lo, hi);
          yp[1] = rq_fast_c(a1, cm[c0 + 1], e[1], h[1], zp, lo, hi);
          yp[2] = rq_fast_c(a2, cm[c0 + 2], e[2], h[2], zp, lo, hi);
          yp[3] = rq_fast_c(a3, cm[c0 + 3], e[3], h[3], zp, lo, hi);
          continue;
        }
        yp[0] = rq_apply(a0, q[0], zp, lo, hi);
        yp[1] = rq_apply(a1, q[1], zp, lo, hi);
        yp[2] = rq_apply(a2, q[2], zp, lo, hi);
        yp[3] = rq_apply(a3, q[3], zp, lo, hi);
      }
    }
  }
  return c0;
}
#undef EP_DW_TAP
#endif /* EP_CONV_PACKED */

int ep_k_dwconv_i8(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *to = &m->tensors[op->out[0]];
  const int32_t C = ti->dims[3];
  int32_t b;
  for (b = 0; b < ti->dims[0]; b++) {
    const int8_t *xb = (const int8_t *)ti->data + (size_t)b * ti->dims[1] * ti->dims[2] * C;
    int8_t *y = (int8_t *)to->data + (size_t)b * to->dims[1] * to->dims[2] * C;
#if EP_CONV_DSP
    const int32_t done = dw3x3_ok(m, op) ? dw3x3_simd(m, op, xb, y) : dw_simd(m, op, xb, y);
#elif EP_CONV_PACKED
    const int32_t done = dw_blocks(m, op, xb, y);
#else
    const int32_t done = 0; /* v6-M: LDRSB has no immediate offset, the stack-held block filter costs more than it saves */
#endif
    if (done < C) dw_generic(m, op, xb, y, done);
  }
  return 0;
}

/* TFLM's average: (v + count/2) / count for v > 0, (v - count/2) / count otherwise (C division, truncating), i.e.
 * the sign times floor((|v| + count/2) / count). The floor is a multiply by recip = floor(2^40 / count) + 1, exact
 * while numerator * count < 2^40: |v| <= 128 count and count <= 255 * 255 keep the numerator below 129 count, so
 * that holds. No division by data at invoke: the instruction count does not depend on the input on cores without a
 * hardware divide (v6-M). */
static int32_t avg_round(int32_t v, int32_t count, uint64_t recip) {
  const int32_t neg = v >> 31; /* -1 or 0 */
  const uint32_t mag = (uint32_t)((v ^ neg) - neg) + (uint32_t)count / 2u;
  const int32_t q = (int32_t)(((uint64_t)mag * recip) >> 40);
  return (q ^ neg) - neg;
}

/* floor(2^40 / count) + 1 in two 32-bit divisions by 16-bit digits (count < 2^16): no 64-bit division routine. */
static uint64_t avg_recip(uint32_t count) {
  const uint32_t hi = (1u << 24) / count, rem = (1u << 24) % count;
  return ((uint64_t)hi << 16) + ((rem << 16) / count) + 1u;
}

/* One op's pool constants; an output pixel's window is clipped to the image (TFLM counts only the taps inside):
 * wh x ww taps from its first, rows `rs` bytes apart, taps C apart. */
typedef struct {
  int32_t C, rs, lo, hi;
#if EP_CONV_DSP
  uint32_t lo4, hi4;
#endif
} pool_t;

#if EP_CONV_DSP
static inline uint32_t max4(uint32_t a, uint32_t b) { /* per-byte signed max: SSUB8 sets GE where a >= b */
  uint32_t t;
  __asm__("ssub8 %1, %0, %2\n\tsel %0, %0, %2" : "+r"(a), "=&r"(t) : "r"(b) : "cc");
  return a;
}
static inline uint32_t sxtab16(uint32_t acc, uint32_t v) {
  uint32_t r;
  __asm__("sxtab16 %0, %1, %2" : "=r"(r) : "r"(acc), "r"(v));
  return r;
}
static inline uint32_t sxtab16_r8(uint32_t acc, uint32_t v) {
  uint32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(v));
  return r;
}
static inline void st32u(int8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Channels four to a word; C mod 4 channels: the last word overlaps the one before (the same bytes get the same
 * values again). Needs C >= 4. */
static void max_words(const int8_t *x, int8_t *y, const pool_t *k, int32_t wh, int32_t ww) {
  const int32_t C = k->C, rs = k->rs;
  int32_t c, fy, fx;
  if (wh == 2 && ww == 2) { /* the common 2x2 window inside the image */
    for (c = 0; c < C; c += 4) {
      const int32_t cc = c + 4 <= C ? c : C - 4;
      const int8_t *p = x + cc;
      const uint32_t v = max4(max4(ld32u(p), ld32u(p + C)), max4(ld32u(p + rs), ld32u(p + rs + C)));
      st32u(y + cc, clamp4(v, k->lo4, k->hi4));
    }
    return;
  }
  for (c = 0; c < C; c += 4) {
    const int32_t cc = c + 4 <= C ? c : C - 4;
    const int8_t *row = x + cc;
    uint32_t v = 0x80808080u;
    for (fy = 0; fy < wh; fy++, row += rs) {
      const int8_t *p = row;
      for (fx = 0; fx < ww; fx++, p += C) v = max4(v, ld32u(p));
    }
    st32u(y + cc, clamp4(v, k->lo4, k->hi4));
  }
}

/* Sums in 16-bit lanes (SXTAB16: channels 0/2 and 1/3 of a word), exact for count <= 256 (|sum| <= 2^15). */
static void avg_words(const int8_t *x, int8_t *y, const pool_t *k, int32_t wh, int32_t ww, int32_t count,
                      uint64_t recip) {
  const int32_t C = k->C, rs = k->rs;
  int32_t c, fy, fx;
  for (c = 0; c < C; c += 4) {
    const int32_t cc = c + 4 <= C ? c : C - 4;
    const int8_t *row = x + cc;
    uint32_t ev = 0, od = 0;
    for (fy = 0; fy < wh; fy++, row += rs) {
      const int8_t *p = row;
      for (fx = 0; fx < ww; fx++, p += C) {
        const uint32_t v = ld32u(p);
        ev = sxtab16(ev, v);
        od = sxtab16_r8(od, v);
      }
    }
    st32u(y + cc, clamp4(pack4(avg_round((int16_t)ev, count, recip), avg_round((int16_t)od, count, recip),
                               avg_round((int32_t)ev >> 16, count, recip), avg_round((int32_t)od >> 16, count, recip)),
                         k->lo4, k->hi4));
  }
}
#endif /* EP_CONV_DSP */

/* One channel at a time (cores without SIMD, C < 4, average windows over 256 taps). */
static void max_bytes(const int8_t *x, int8_t *y, const pool_t *k, int32_t wh, int32_t ww) {
  const int32_t C = k->C, rs = k->rs;
  int32_t c = 0, fy, fx;
  if (wh == 2 && ww == 2) {
    for (; c < C; c++) {
      const int32_t a = x[c], b = x[c + C], d = x[c + rs], e = x[c + rs + C];
      const int32_t ab = a > b ? a : b, de = d > e ? d : e;
      y[c] = (int8_t)ep_clamp_i32(ab > de ? ab : de, k->lo, k->hi);
    }
    return;
  }
  for (; c < C; c++) {
    const int8_t *row = x + c;
    int32_t v = -128;
    for (fy = 0; fy < wh; fy++, row += rs) {
      for (fx = 0; fx < ww; fx++) v = row[fx * C] > v ? row[fx * C] : v;
    }
    y[c] = (int8_t)ep_clamp_i32(v, k->lo, k->hi);
  }
}

static void avg_bytes(const int8_t *x, int8_t *y, const pool_t *k, int32_t wh, int32_t ww, int32_t count,
                      uint64_t recip) {
  const int32_t C = k->C, rs = k->rs;
  int32_t c = 0, fy, fx;
  for (; c < C; c++) {
    const int8_t *row = x + c;
    int32_t v = 0;
    for (fy = 0; fy < wh; fy++, row += rs) {
      for (fx = 0; fx < ww; fx++) v += row[fx * C];
    }
    y[c] = (int8_t)ep_clamp_i32(avg_round(v, count, recip), k->lo, k->hi);
  }
}

int ep_k_pool_i8(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *to = &m->tensors[op->out[0]];
  const int32_t H = ti->dims[1], W = ti->dims[2], C = ti->dims[3], OH = to->dims[1], OW = to->dims[2];
  const int is_max = op->kind == EP_K_MAXPOOL_I8;
  pool_t k;
  int32_t b, oy, ox, last_count = 0;
  uint64_t recip = 0;
  k.C = C;
  k.rs = W * C;
  k.lo = op->act_min;
  k.hi = op->act_max;
#if EP_CONV_DSP
  k.lo4 = (uint32_t)(uint8_t)op->act_min * 0x01010101u;
  k.hi4 = (uint32_t)(uint8_t)op->act_max * 0x01010101u;
#endif
  for (b = 0; b < ti->dims[0]; b++) {
    const int8_t *xb = (const int8_t *)ti->data + (size_t)b * H * W * C;
    int8_t *y = (int8_t *)to->data + (size_t)b * OH * OW * C;
    for (oy = 0; oy < OH; oy++) {
      const int32_t iy0 = oy * op->p.pool.stride_h - op->p.pool.pad_h;
      const int32_t fy0 = iy0 < 0 ? -iy0 : 0, fy1 = H - iy0 < op->p.pool.win_h ? H - iy0 : op->p.pool.win_h;
      for (ox = 0; ox < OW; ox++, y += C) {
        const int32_t ix0 = ox * op->p.pool.stride_w - op->p.pool.pad_w;
        const int32_t fx0 = ix0 < 0 ? -ix0 : 0, fx1 = W - ix0 < op->p.pool.win_w ? W - ix0 : op->p.pool.win_w;
        const int32_t wh = fy1 - fy0, ww = fx1 - fx0, count = wh * ww;
        const int8_t *x = xb + ((size_t)(iy0 + fy0) * W + (ix0 + fx0)) * C;
        if (wh <= 0 || ww <= 0) return EP_RT_ERR_SHAPE; /* TFLM fails the op too; unreachable for validated shapes */
        if (is_max) {
#if EP_CONV_DSP
          if (C >= 4) {
            max_words(x, y, &k, wh, ww);
            continue;
          }
#endif
          max_bytes(x, y, &k, wh, ww);
          continue;
        }
        if (count != last_count) { /* depends on the geometry only; interior windows share it */
          recip = avg_recip((uint32_t)count);
          last_count = count;
        }
#if EP_CONV_DSP
        if (C >= 4 && count <= 256) {
          avg_words(x, y, &k, wh, ww, count, recip);
          continue;
        }
#endif
        avg_bytes(x, y, &k, wh, ww, count, recip);
      }
    }
  }
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
typedef int ep_rt_conv_left_out;
#endif /* EP_RT_CONV */
