/*
 * DEPTHWISE_CONV_2D of a 16x8 CNN (issue 30): int16 input/output (zero points 0), int8 filter (per-channel or
 * per-tensor), int64 or no bias, any depth multiplier, strides, dilation, SAME/VALID, fused activation; bit-exact
 * with TFLM's reference_integer_ops::DepthwiseConvPerChannel for int16 (taps outside the image skipped, the sum in
 * 64 bits, the 64-bit MultiplyByQuantizedMultiplier with the multiplier rounded to 16 bits).
 *
 * A window of at most 511 taps cannot overflow 32 bits (|x w| <= 2^22), so its sum runs in int32 and only the rescale
 * is 64-bit: (sum + bias) * m16 + round = sum * m16 + K with K = bias * m16 + round folded per channel at init (the same
 * value modulo 2^64 as TFLM's, so even a wrapping bias gives its bytes), stored pre-shifted where that is exact so the
 * result is the high word of one SMLAL. Depth multiplier 1 runs four channels per block from a filter copy widened to
 * int16 at init (DSP cores: SMLABB/SMLATT on int16 pairs; 3x3 windows inside the image unrolled), their sums then
 * rescaled 64 channels at a time in one short loop per clamp kind (USAT/SSAT for ReLU / none on v7-M and later); other
 * multipliers, the last C mod 4 channels and windows of more than 511 taps (int64 sums) run one channel at a time.
 */
#include "ep_conv16.h"

#include "ep_fc_mixed.h"
#include "ep_window.h"

#if EP_RT_CONV /* the whole file; see ep_kernels.h */

/* Windows of at most this many taps sum in int32: 511 * 2^22 < 2^31. */
#define DW16_MAX_I32_TAPS 511u
#define DW16_CHUNK 64u /* channels whose sums wait on the stack for their rescale */

EP_COLD int ep_dwconv16_prepare(ep_model_t *m, ep_op_t *op, const void *fbv, const void *optsv) {
  const ep_fb_t *fb = (const ep_fb_t *)fbv;
  const ep_fb_table_t *opts = (const ep_fb_table_t *)optsv;
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]], *w, *b;
  ep_win_opts_t o;
  uint32_t dm, oc, taps, r;
  TRY(ep_win_conv_head(op, fb, opts, &o));
  w = &m->tensors[op->in[1]];
  b = (op->n_in == 3 && op->in[2] >= 0) ? &m->tensors[op->in[2]] : NULL;
  TRY(ep_fb_scalar(fb, opts, 3, 4, 0, &dm));
  TRY(ep_fb_scalar(fb, opts, 4, 1, 0, &o.act));
  TRY(ep_fb_scalar(fb, opts, 5, 4, 1, &o.dlw));
  TRY(ep_fb_scalar(fb, opts, 6, 4, 1, &o.dlh));
  if (in->rank != 4 || w->rank != 4 || out->rank != 4 || !w->is_const) return EP_RT_ERR_SHAPE;
  if (out->dtype != EP_DT_INT16 || w->dtype != EP_DT_INT8) return EP_RT_ERR_DTYPE; /* TFLM: no int4 filter here */
  if (!q16(in) || !q16(out)) return EP_RT_ERR_QUANT;
  if (dm == 0 || dm > 65535u) return EP_RT_ERR_OP;
  oc = (uint32_t)w->dims[3];
  if (w->dims[0] != 1 || (uint64_t)(uint32_t)in->dims[3] * dm != oc) return EP_RT_ERR_SHAPE;
  TRY(ep_win_filter_quant(w, oc, 3));
  if (out->dims[0] != in->dims[0] || (uint32_t)out->dims[3] != oc) return EP_RT_ERR_SHAPE;
  /* TFLM's int16 depthwise reads its bias as int64 whatever the tensor's type: an int32 bias is not run wrongly */
  if (b != NULL && (!b->is_const || b->dtype != EP_DT_INT64)) return EP_RT_ERR_DTYPE;
  if (b != NULL && (b->rank != 1 || (uint32_t)b->dims[0] != oc)) return EP_RT_ERR_SHAPE;
  if ((uint64_t)(uint32_t)w->dims[1] * (uint32_t)w->dims[2] > 65536u) return EP_RT_ERR_LIMITS;
  taps = (uint32_t)w->dims[1] * (uint32_t)w->dims[2];
  for (r = 0; r < oc; r++) { /* from 2^14 up TFLM's 64-bit rescale has no right shift left (it asserts < 2^7) */
    int32_t mult, shift;
    ep_win_chan_multiplier(in, w, out, r, &mult, &shift);
    if (shift > 14) return EP_RT_ERR_QUANT;
  }
  TRY(ep_win_conv_geom(m, op, &o, oc, taps));
  op->p.conv.zp_in = (int8_t)(b != NULL); /* whether there is a bias (zero points are 0) */
  op->p.conv.zp_out = 0; /* set by the init: every channel's rescale pre-shifted (hi_word) */
  op->batches = dm; /* no windowed int16 kernel reads batches otherwise */
  op->kind = EP_K_DWCONV_I16;
  return ep_act_range_16(op->act, out, &op->act_min, &op->act_max);
}

/* Whether the op runs its channels in 4-channel blocks with int32 sums (depth multiplier 1, at most 511 taps). */
static int blocked_op(const ep_op_t *op) { return op->batches == 1u && op->depth <= DW16_MAX_I32_TAPS; }

/* Scratch: four int32 words per channel, read together by the rescale: K = bias * m16 + rounding (int64, low word
 * first), m16 (TFLM's multiplier rounded to 16 bits) and the total right shift (15 - TFLM's shift, in [1, 46]). Then,
 * for a blocked op, the filter of its first C & ~3 channels widened to int16 and ordered block by block, tap by tap,
 * four channels a tap (two words: SMLABB/SMLATT take both lanes as they are, no widening at invoke; the same bytes on
 * every core, so every target plans the same arena). */
uint32_t ep_dwconv16_scratch_bytes(const ep_op_t *op) {
  return 16u * op->rows + (blocked_op(op) ? (op->rows & ~3u) * op->depth * 2u : 0u);
}

/* Stores channel r pre-shifted when that is exact for every input: with s = 32 - tot, (sum * m16 + K) << s keeps
 * every bit of the sum TFLM shifts when it cannot overflow 64 bits (|sum| <= taps * 2^22 and |K| bounded), and its high
 * word is then TFLM's result: m16 << s and K << s stored, the shift 32, no shift at invoke. */
EP_COLD static int hi_word(ep_op_t *op, uint64_t k, int32_t red, int32_t tot, uint32_t r) {
  const uint64_t amax = (uint64_t)op->depth << 22, kabs = (int64_t)k < 0 ? 0u - k : k;
  const int32_t sh = 32 - tot;
  if (tot < 16 || tot > 32 || (int64_t)k == INT64_MIN || amax * (uint64_t)red + kabs >= (uint64_t)1 << (63 - sh))
    return 0;
  op->scratch[4u * r] = (int32_t)(uint32_t)(k << sh);
  op->scratch[4u * r + 1u] = (int32_t)(uint32_t)(k << sh >> 32);
  op->scratch[4u * r + 2u] = (int32_t)((uint32_t)red << sh);
  op->scratch[4u * r + 3u] = 32;
  return 1;
}

EP_COLD void ep_dwconv16_init(const ep_model_t *m, ep_op_t *op) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *w = &m->tensors[op->in[1]], *out = &m->tensors[op->out[0]];
  const uint8_t *bias = op->p.conv.zp_in ? m->tensors[op->in[2]].data : NULL;
  const uint32_t oc = op->rows;
  uint32_t r;
  op->p.conv.zp_out = 1; /* every channel pre-shifted (cleared below otherwise): the kernels' short rescale */
  for (r = 0; r < oc; r++) {
    int32_t mult, shift;
    ep_win_chan_multiplier(in, w, out, r, &mult, &shift);
    const int32_t red = mult < 0x7FFF0000 ? (mult + (1 << 15)) >> 16 : 0x7FFF, tot = 15 - shift;
    /* modulo 2^64, as TFLM's int64 arithmetic wraps on the targets */
    const uint64_t k = (bias ? (uint64_t)ep_ld_i64(bias + 8u * r) * (uint64_t)(int64_t)red : 0u) + ((uint64_t)1 << (tot - 1));
    if (!hi_word(op, k, red, tot, r)) {
      op->scratch[4u * r] = (int32_t)(uint32_t)k;
      op->scratch[4u * r + 1u] = (int32_t)(uint32_t)(k >> 32);
      op->scratch[4u * r + 2u] = red;
      op->scratch[4u * r + 3u] = tot;
      op->p.conv.zp_out = 0;
    }
  }
  if (blocked_op(op)) {
    int16_t *wq = (int16_t *)(void *)(op->scratch + 4u * oc);
    const int8_t *wt = (const int8_t *)w->data;
    uint32_t t, j;
    for (r = 0; r + 4u <= oc; r += 4u)
      for (t = 0; t < op->depth; t++)
        for (j = 0; j < 4u; j++) *wq++ = wt[(size_t)t * oc + r + j];
  }
}

/* TFLM's rescale of a channel's 64-bit sum s (q: the channel's four scratch words), clamped to [lo, hi]. */
static inline int16_t rq64(const int32_t *q, int64_t s, int32_t lo, int32_t hi) {
  const uint64_t k = (uint64_t)(uint32_t)q[0] | (uint64_t)(uint32_t)q[1] << 32;
  const int64_t r = (int64_t)((uint64_t)s * (uint64_t)(int64_t)q[2] + k);
  return (int16_t)ep_clamp_sel((int32_t)(r >> q[3]), lo, hi);
}

/* The same for a 32-bit sum of a channel stored pre-shifted: one SMLAL, its high word. */
static inline int32_t rq_hi(const int32_t *q, int32_t a) {
#if defined(__GNUC__) && defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB >= 2
  /* one SMLAL: GCC otherwise builds the product from UMULL and MLAs once the sum comes out of inline assembly */
  uint32_t lo = (uint32_t)q[0];
  int32_t h = q[1];
  __asm__("smlal %0, %1, %2, %3" : "+r"(lo), "+r"(h) : "r"(a), "r"(q[2]));
  return h;
#else
  const int64_t r = (int64_t)a * q[2] + (int64_t)((uint64_t)(uint32_t)q[0] | (uint64_t)(uint32_t)q[1] << 32);
  return (int32_t)(r >> 32);
#endif
}

/* The activation clamps that are one saturation where the core has SSAT/USAT: no activation (the int16 range) and
 * ReLU ([0, 32767]); sat_kind says which one an op's range is (0: neither, the two-sided clamp). */
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT && defined(__GNUC__)
static inline int32_t ssat16(int32_t v) {
  int32_t r;
  __asm__("ssat %0, #16, %1" : "=r"(r) : "r"(v));
  return r;
}
static inline int32_t usat15(int32_t v) {
  int32_t r;
  __asm__("usat %0, #15, %1" : "=r"(r) : "r"(v));
  return r;
}
static inline int sat_kind(int32_t lo, int32_t hi) { return hi != 32767 ? 0 : lo == -32768 ? 1 : lo == 0 ? 2 : 0; }
#else
static inline int32_t ssat16(int32_t v) { return ep_clamp_sel(v, -32768, 32767); }
static inline int32_t usat15(int32_t v) { return ep_clamp_sel(v, 0, 32767); }
static inline int sat_kind(int32_t lo, int32_t hi) { (void)lo, (void)hi; return 0; }
#endif

/* The same for a 32-bit sum: one SMLAL, then the low 32 bits of the 64-bit shift (what TFLM's cast to int32 keeps),
 * from one word when the shift is 32 or more, else from both. */
static inline int16_t rq32(const int32_t *q, int32_t a, int32_t lo, int32_t hi) {
  const int64_t r = (int64_t)a * q[2] + (int64_t)((uint64_t)(uint32_t)q[0] | (uint64_t)(uint32_t)q[1] << 32);
  const int32_t tot = q[3], h = (int32_t)(r >> 32);
  const int32_t v = tot >= 32 ? h >> (tot - 32) : (int32_t)(((uint32_t)r >> tot) | ((uint32_t)h << (32 - tot)));
  return (int16_t)ep_clamp_sel(v, lo, hi);
}

/* The taps k in [*k0, *k1) of a K-tap window starting at i0 (dilation d) that fall inside [0, n). */
static void tap_range(int32_t i0, int32_t K, int32_t d, int32_t n, int32_t *k0, int32_t *k1) {
  int32_t a = 0, b;
  if (i0 < 0) a = d == 1 ? -i0 : (-i0 + d - 1) / d;
  b = n - i0 <= 0 ? 0 : (d == 1 ? n - i0 : (n - i0 + d - 1) / d);
  *k0 = a;
  *k1 = b < K ? b : K;
}

#if EP_SIMD_DSP
/* The multiply-accumulates of a tap, volatile: kept in tap order, GCC would otherwise hoist all nine taps' loads
 * ahead of the first one and spill them. */
#define DW16_MLA(op, acc, a, b)                                                       \
  do {                                                                                \
    __asm__ volatile(op " %0, %1, %2, %0" : "+r"(acc) : "r"(a), "r"(b));               \
  } while (0)
static inline uint32_t ld32h(const int16_t *p) {
  uint32_t v;
  memcpy(&v, p, 4); /* two int16 lanes in one LDR (unaligned word loads are allowed on these cores) */
  return v;
}
#endif

/* The rescale of n channels' int32 sums into int16 outputs, one loop per clamp kind so that each is a few
 * instructions an output (the sums wait in a stack chunk: rescaling inside the tap loops kept too many registers live). */
static void dw16_rescale(const ep_op_t *op, const int32_t *acc, const int32_t *q, int16_t *y, uint32_t n) {
  const int32_t lo = op->act_min, hi = op->act_max;
  uint32_t c;
  if (!op->p.conv.zp_out) {
    for (c = 0; c < n; c++, q += 4) y[c] = rq32(q, acc[c], lo, hi);
    return;
  }
  switch (sat_kind(lo, hi)) {
    case 2:
      for (c = 0; c < n; c++, q += 4) y[c] = (int16_t)usat15(rq_hi(q, acc[c]));
      break;
    case 1:
      for (c = 0; c < n; c++, q += 4) y[c] = (int16_t)ssat16(rq_hi(q, acc[c]));
      break;
    default:
      for (c = 0; c < n; c++, q += 4) y[c] = (int16_t)ep_clamp_sel(rq_hi(q, acc[c]), lo, hi);
  }
}

/* One tap of four channels into a0..a3: `xp` the input (four int16), `wp` the widened filter (four int16; DSP: two
 * lane pairs into SMLABB/SMLATT). */
#if EP_SIMD_DSP
#define DW16_TAP(xp, wp)                                                                                  \
  do {                                                                                                    \
    const uint32_t x01_ = ld32h(xp), x23_ = ld32h((xp) + 2), w01_ = ld32h(wp), w23_ = ld32h((wp) + 2);    \
    DW16_MLA("smlabb", a0, x01_, w01_);                                                                   \
    DW16_MLA("smlatt", a1, x01_, w01_);                                                                   \
    DW16_MLA("smlabb", a2, x23_, w23_);                                                                   \
    DW16_MLA("smlatt", a3, x23_, w23_);                                                                   \
  } while (0)
#else
#define DW16_TAP(xp, wp)        \
  do {                          \
    a0 += (xp)[0] * (wp)[0];    \
    a1 += (xp)[1] * (wp)[1];    \
    a2 += (xp)[2] * (wp)[2];    \
    a3 += (xp)[3] * (wp)[3];    \
  } while (0)
#endif
#define DW16_SUMS4()  \
  do {                \
    acc[c] = a0;      \
    acc[c + 1] = a1;  \
    acc[c + 2] = a2;  \
    acc[c + 3] = a3;  \
  } while (0)

/* The int32 sums of channels [0, n), n a multiple of 4, of one output pixel, depth multiplier 1: `x` is the input at
 * the first inside tap (channel 0), `w` the widened filter of block 0 at that tap (blocks `bstep` int16 apart, tap
 * rows `wrow`); rows/cols inside taps, input steps in elements between taps. */
static void dw16_blocks(const int16_t *x, const int16_t *w, int32_t *acc, uint32_t n, int32_t rows, int32_t cols,
                        int32_t xrow, int32_t xcol, int32_t wrow, uint32_t bstep) {
  uint32_t c;
  int32_t ky, kx;
  for (c = 0; c < n; c += 4u, w += bstep) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (ky = 0; ky < rows; ky++) {
      const int16_t *xp = x + c + (ptrdiff_t)ky * xrow, *wp = w + (ptrdiff_t)ky * wrow;
      for (kx = 0; kx < cols; kx++, xp += xcol, wp += 4) DW16_TAP(xp, wp);
    }
    DW16_SUMS4();
  }
}

/* The same for a 3x3 window wholly inside the image: the nine taps unrolled. */
#if defined(__GNUC__) && !defined(__ARM_ARCH_6M__)
__attribute__((noinline)) /* its own registers: inlined into the pixel loop, it spills the accumulators */
#endif
static void dw16_3x3(const int16_t *x, const int16_t *w, int32_t *acc, uint32_t n, int32_t xrow, int32_t xcol) {
  uint32_t c;
  for (c = 0; c < n; c += 4u, w += 36) {
    const int16_t *r0 = x + c, *r1 = r0 + xrow, *r2 = r1 + xrow;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    DW16_TAP(r0, w);
    DW16_TAP(r0 + xcol, w + 4);
    DW16_TAP(r0 + 2 * xcol, w + 8);
    DW16_TAP(r1, w + 12);
    DW16_TAP(r1 + xcol, w + 16);
    DW16_TAP(r1 + 2 * xcol, w + 20);
    DW16_TAP(r2, w + 24);
    DW16_TAP(r2 + xcol, w + 28);
    DW16_TAP(r2 + 2 * xcol, w + 32);
    DW16_SUMS4();
  }
}

/* Output channels [c0, oc) of one output pixel, one at a time, any depth multiplier; int64 sums. */
static void dw16_single(const ep_op_t *op, const int16_t *x, const int8_t *w, int16_t *y, uint32_t c0, int32_t rows,
                        int32_t cols, int32_t xrow, int32_t xcol, int32_t wrow) {
  const uint32_t oc = op->rows, dm = op->batches;
  uint32_t c;
  int32_t ky, kx;
  for (c = c0; c < oc; c++) {
    int64_t a = 0;
    for (ky = 0; ky < rows; ky++) {
      const int16_t *xp = x + c / dm + (ptrdiff_t)ky * xrow;
      const int8_t *wp = w + c + (ptrdiff_t)ky * wrow;
      for (kx = 0; kx < cols; kx++, xp += xcol, wp += oc) a += (int32_t)*xp * *wp;
    }
    y[c] = rq64(op->scratch + 4u * c, a, op->act_min, op->act_max);
  }
}

int ep_k_dwconv_i16(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *tw = &m->tensors[op->in[1]], *to = &m->tensors[op->out[0]];
  const int16_t *x = (const int16_t *)(const void *)ti->data;
  const int8_t *w = (const int8_t *)tw->data;
  int16_t *y = (int16_t *)(void *)to->data;
  const int32_t H = ti->dims[1], W = ti->dims[2], C = ti->dims[3], OH = to->dims[1], OW = to->dims[2];
  const int32_t KH = tw->dims[1], KW = tw->dims[2], dh = op->p.conv.dil_h, dw = op->p.conv.dil_w;
  const uint32_t oc = op->rows;
  const uint32_t blocked = blocked_op(op) ? oc & ~3u : 0u;
  const int16_t *wq = (const int16_t *)(const void *)(op->scratch + 4u * oc);
  int32_t acc[DW16_CHUNK];
  uint32_t c0;
  int32_t b, oy, ox;
  for (b = 0; b < ti->dims[0]; b++) {
    const int16_t *xb = x + (size_t)b * (uint32_t)H * (uint32_t)W * (uint32_t)C;
    for (oy = 0; oy < OH; oy++) {
      const int32_t iy0 = oy * op->p.conv.stride_h - op->p.conv.pad_h;
      int32_t ky0, ky1;
      tap_range(iy0, KH, dh, H, &ky0, &ky1);
      for (ox = 0; ox < OW; ox++, y += oc) {
        const int32_t ix0 = ox * op->p.conv.stride_w - op->p.conv.pad_w;
        int32_t kx0, kx1, rows, cols;
        const int16_t *xp;
        const int8_t *wp;
        tap_range(ix0, KW, dw, W, &kx0, &kx1);
        rows = ky1 > ky0 ? ky1 - ky0 : 0;
        cols = kx1 > kx0 ? kx1 - kx0 : 0;
        if (cols == 0) rows = 0; /* no tap inside: the bias alone (the pointers below are then not read) */
        xp = xb + ((ptrdiff_t)(iy0 + ky0 * dh) * W + (ix0 + kx0 * dw)) * C;
        wp = w + ((ptrdiff_t)ky0 * KW + kx0) * (int32_t)oc;
        for (c0 = 0; c0 < blocked; c0 += DW16_CHUNK) { /* the sums of up to DW16_CHUNK channels, then their rescale */
          const uint32_t n = blocked - c0 < DW16_CHUNK ? blocked - c0 : DW16_CHUNK;
          const int16_t *wc = wq + (size_t)c0 * op->depth;
          if (rows == 3 && cols == 3 && KH == 3 && KW == 3) dw16_3x3(xp + c0, wc, acc, n, dh * W * C, dw * C);
          else
            dw16_blocks(xp + c0, wc + ((ptrdiff_t)ky0 * KW + kx0) * 4, acc, n, rows, cols, dh * W * C, dw * C, KW * 4,
                        4u * op->depth);
          dw16_rescale(op, acc, op->scratch + 4u * c0, y + c0, n);
        }
        if (blocked < oc) dw16_single(op, xp, wp, y, blocked, rows, cols, dh * W * C, dw * C, KW * (int32_t)oc);
      }
    }
  }
  return 0;
}

#else
/* ISO C wants a translation unit to declare something. */
typedef int ep_rt_dwconv16_left_out;
#endif /* EP_RT_CONV */
