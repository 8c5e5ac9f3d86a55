/*
 * CONV_2D int8, bit-exact with TFLM's reference integer kernel. NHWC tensors, batch any, dilation any, SAME/VALID.
 * Each output pixel's receptive field is its input (1x1: the pixel in place; else an im2col patch whose padding taps
 * hold the input zero point, so they add exactly nothing once the zero-point term is folded into the bias, as in the
 * FC kernel). Pixels go in pairs: two weight rows against two pixels per pass (DSP: a 2x2 SMLAD block on int16 lane
 * pairs; Cortex-M3/hosts: one SMLAL per weight on both pixels packed 2^23 apart), then the four outputs are
 * requantised (DSP: the zero point folded into the rounding constant, rq_k, or SRDHM by SMULL, rq_wide, chosen per op
 * from its constants); v6-M and an odd last pixel use the FC dot rows. Shared pieces: ep_window.h / ep_window.c.
 */
#include <string.h>

#include "ep_conv16.h"
#include "ep_window.h"

#if EP_RT_CONV /* the whole file; see ep_kernels.h */

int ep_conv2d_prepare(ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *w;
  ep_win_opts_t o;
  uint32_t oc;
  TRY(ep_win_conv2d_opts(op, fb, opts, &o));
  w = &m->tensors[op->in[1]];
  TRY(ep_win_conv_io(m, op));
  oc = (uint32_t)w->dims[0];
  if (w->dims[3] != in->dims[3]) return EP_RT_ERR_SHAPE; /* no grouped convolution */
  TRY(ep_win_filter_quant(w, oc, 0));
  return ep_win_conv_finish(m, op, &o, oc, (uint64_t)(uint32_t)w->dims[1] * (uint32_t)w->dims[2] * (uint32_t)in->dims[3],
                            EP_K_CONV_I8);
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
  if (EP_CONV16_ON && op->kind == EP_K_CONV_I16) return ep_conv16_tmp_bytes(op);
  if (op->kind != EP_K_CONV_I8) return 0;
  if (conv_is_1x1(m, op)) return widened_bytes(op->depth);
  return widened_bytes(op->depth) + ((op->depth + 3u) & ~3u); /* the patch, zero-padded to whole words on DSP */
}


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

#define TAB_PAIRS 32u /* channel pairs whose constants pair_tab takes from a table on the stack (1 KB) */

/* Two channels' constants, laid out once per invoke for pair_tab: folded biases, then rq_k's multiplier, rounding
 * constant and shift for each (their zero point folded in). */
typedef struct {
  int32_t b0, b1;
  rqk_t q0, q1;
} pair_rq_t;

/* One op's constants for pair_tab besides the table. */
typedef struct {
  uint32_t groups, row_words, lo4, hi4;
} tab_k_t;

/* pair_channels_pre by a table of the channel pairs' constants (`t` to `end`): each pair reads its six constants
 * where it would otherwise derive them from three arrays and the zero point, and the loop keeps fewer pointers. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void pair_tab(const uint32_t *wpre, const uint32_t *xq, const pair_rq_t *t, const pair_rq_t *end,
                     const tab_k_t *k, int8_t *ya, int8_t *yb) {
  const uint32_t groups = k->groups, rw = k->row_words, lo4 = k->lo4, hi4 = k->hi4;
  for (; t != end; t++, ya += 2, yb += 2, wpre += 2u * rw) {
    int32_t acc[4];
    uint32_t v;
    acc[0] = acc[1] = t->b0;
    acc[2] = acc[3] = t->b1;
    dot2x2w(wpre, wpre + rw, xq, groups, acc);
    v = pack4(rq_k(acc[0], &t->q0), rq_k(acc[2], &t->q1), rq_k(acc[1], &t->q0), rq_k(acc[3], &t->q1));
    v = clamp4(v, lo4, hi4);
    st16u(ya, v);
    st16u(yb, v >> 16);
  }
}

#define LIVE_MAX 256u /* output channels the live-channel path lists on the stack */

/* A live channel pair's constants (pair_rq_t) and channel numbers, laid out per chunk for live_pairs. */
typedef struct {
  pair_rq_t rq;
  uint32_t i0, i1;
} live_rq_t;

/* Live channels of a 1x1 convolution, two at a time (any two: each entry names its pair's channels), against one
 * pixel pair: their rows widened beforehand (`wpre`: per pair both rows, row_words each), requantised by rq_k, each
 * output stored as a byte at its channel. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void live_pairs(const uint32_t *wpre, const uint32_t *xq, const live_rq_t *t, const live_rq_t *end,
                       const tab_k_t *k, int8_t *ya, int8_t *yb) {
  const uint32_t groups = k->groups, rw = k->row_words, lo4 = k->lo4, hi4 = k->hi4;
  for (; t != end; t++, wpre += 2u * rw) {
    const uint32_t i0 = t->i0, i1 = t->i1;
    int32_t acc[4];
    uint32_t v;
    acc[0] = acc[1] = t->rq.b0;
    acc[2] = acc[3] = t->rq.b1;
    dot2x2w(wpre, wpre + rw, xq, groups, acc);
    v = pack4(rq_k(acc[0], &t->rq.q0), rq_k(acc[2], &t->rq.q1), rq_k(acc[1], &t->rq.q0), rq_k(acc[3], &t->rq.q1));
    v = clamp4(v, lo4, hi4); /* {A i0, A i1, B i0, B i1} */
    ya[i0] = (int8_t)v;
    ya[i1] = (int8_t)(v >> 8);
    yb[i0] = (int8_t)(v >> 16);
    yb[i1] = (int8_t)(v >> 24);
  }
}

/* A 1x1 convolution with constant channels (multiplier 0, ep_conv_init) in at least an eighth of its outputs: only the
 * live channels are computed, in pairs, their rows widened per invoke in chunks that fit the stack; every output pixel
 * first gets the constant channels' bytes (c = zp + bias word) from a template. Needs rq_k exact for the op (the
 * caller checks). Returns the pixels done (even), 0 when the op does not qualify. */
static int32_t conv_live(const ep_model_t *m, const ep_op_t *op, const int8_t *xb, int8_t *y, const pair_k_t *pk) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *to = &m->tensors[op->out[0]];
  const int32_t H = ti->dims[1], W = ti->dims[2], C = ti->dims[3], OW = to->dims[2], npix = to->dims[1] * OW;
  const uint32_t oc = op->rows, depth = op->depth, groups = depth >> 2;
  const int32_t *bias = op->scratch, *cm = op->scratch + oc;
  const int8_t *cs = conv_shifts(op, oc);
  const int32_t zp = op->p.conv.zp_out;
  const int8_t *w = (const int8_t *)m->tensors[op->in[1]].data;
  const uint32_t chunk = PRE_WORDS / depth < TAB_PAIRS ? PRE_WORDS / depth : TAB_PAIRS; /* pairs of rows per chunk */
  const uint32_t zp21 = 2u * (uint32_t)zp + 1u;
  live_rq_t tab[TAB_PAIRS];
  tab_k_t tk;
  uint32_t *xq = (uint32_t *)(void *)m->fc_tmp;
  uint16_t idx[LIVE_MAX + 1u];
  int8_t tmpl[LIVE_MAX];
  uint32_t wpre[PRE_WORDS];
  uint32_t r, nl = 0, npairs, k0;
  int32_t p = 0, oy, ox;
  for (r = 0; r < oc; r++) {
    if (cm[r] != 0) idx[nl++] = (uint16_t)r;
    tmpl[r] = (int8_t)(zp + bias[r]); /* a constant channel's byte; a live channel's is overwritten */
  }
  if (nl == 0u || 8u * nl > 7u * oc || npix < 2) return 0;
  if (nl & 1u) idx[nl] = idx[nl - 1u]; /* an odd count: the last channel twice, the same byte stored twice */
  npairs = (nl + 1u) / 2u;
  tk.groups = groups;
  tk.row_words = depth / 2u;
  tk.lo4 = pk->lo4;
  tk.hi4 = pk->hi4;
  for (k0 = 0; k0 < npairs; k0 += chunk) {
    const uint32_t n = npairs - k0 < chunk ? npairs - k0 : chunk;
    for (r = 0; r < 2u * n; r++) widen_seq(w + (size_t)idx[2u * k0 + r] * depth, groups, wpre + r * (depth / 2u));
    for (r = 0; r < n; r++) {
      live_rq_t *e = &tab[r];
      const uint32_t i0 = idx[2u * (k0 + r)], i1 = idx[2u * (k0 + r) + 1u];
      e->i0 = i0;
      e->i1 = i1;
      e->rq.b0 = bias[i0];
      e->rq.b1 = bias[i1];
      e->rq.q0.m = cm[i0];
      e->rq.q0.e = cs[i0];
      e->rq.q0.k = (int32_t)(zp21 << (e->rq.q0.e - 1));
      e->rq.q1.m = cm[i1];
      e->rq.q1.e = cs[i1];
      e->rq.q1.k = (int32_t)(zp21 << (e->rq.q1.e - 1));
    }
    oy = ox = 0;
    for (p = 0; p + 1 < npix; p += 2) {
      int8_t *ya = y + (size_t)p * oc, *yb = ya + oc;
      if (k0 == 0u) {
        copy_bytes(ya, tmpl, oc);
        copy_bytes(yb, tmpl, oc);
      }
      widen_lane(conv_input(op, xb, H, W, C, 1, 1, oy, ox, NULL), groups, xq);
      if (++ox == OW) ox = 0, oy++;
      widen_lane(conv_input(op, xb, H, W, C, 1, 1, oy, ox, NULL), groups, xq + 2);
      if (++ox == OW) ox = 0, oy++;
      live_pairs(wpre, xq, tab, tab + n, &tk, ya, yb);
    }
  }
  return p;
}

/* Output pixels in pairs: both inputs widened into one buffer, then two output channels at a time, requantised as
 * they finish (the pair shares each channel's constants). Returns the pixels done (an odd last one is left). */
static int32_t conv_pairs(const ep_model_t *m, const ep_op_t *op, const int8_t *xb, int8_t *y, int32_t *fixed) {
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
  pair_rq_t tab[TAB_PAIRS];
  tab_k_t tk;
  int pre = 0; /* 1: the filter widened on the stack; 2: and its constants in `tab` */
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
  if (KH == 1 && KW == 1 && tail == 0u && depth <= 256u && oc <= LIVE_MAX && 8u * conv_constants(op) >= oc) {
    if (fast && rqk_ok(op, oc)) {
      const int32_t done = conv_live(m, op, xb, y, &pk);
      if (done > 0) {
        *fixed = done;
        return done;
      }
    }
  }
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
    if (oc <= 2u * TAB_PAIRS) {
      for (r = 0; r < oc; r += 2u) {
        pair_rq_t *e = &tab[r / 2u];
        e->b0 = bias[r];
        e->b1 = bias[r + 1u];
        e->q0.m = cm[r];
        e->q0.e = cs[r];
        e->q0.k = (int32_t)(zp21 << (e->q0.e - 1));
        e->q1.m = cm[r + 1u];
        e->q1.e = cs[r + 1u];
        e->q1.k = (int32_t)(zp21 << (e->q1.e - 1));
      }
      tk.groups = wg;
      tk.row_words = 2u * wg;
      tk.lo4 = lo4;
      tk.hi4 = hi4;
      pre = 2;
    }
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
      if (pre == 2) pair_tab(wpre, xq, tab, tab + oc / 2u, &tk, ya, yb);
      else pair_channels_pre(wpre, xq, &pkp, ya, yb);
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
static int32_t conv_pairs(const ep_model_t *m, const ep_op_t *op, const int8_t *xb, int8_t *y, int32_t *fixed) {
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
  (void)fixed; /* no live-channel path here: ep_k_conv_i8 writes the constant channels */
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

/* Pixels p0 .. npix - 1 of one batch: the bytes of the constant channels (multiplier 0, bias word c - zp nonzero:
 * ep_conv_init), which the kernels left at zp; listed CONV_BLOCK at a time, so that the channels are scanned once. */
static void const_fix(const ep_op_t *op, int8_t *y, int32_t p0, int32_t npix) {
  const uint32_t oc = op->rows;
  const int32_t *bias = op->scratch, *cm = op->scratch + oc;
  uint32_t ch[CONV_BLOCK];
  int8_t val[CONV_BLOCK];
  uint32_t r = 0, n, i;
  int32_t p;
  if (conv_constants(op) == 0u || p0 >= npix) return;
  while (r < oc) {
    for (n = 0; r < oc && n < CONV_BLOCK; r++) {
      if (cm[r] == 0 && bias[r] != 0) {
        ch[n] = r;
        val[n++] = (int8_t)(op->p.conv.zp_out + bias[r]);
      }
    }
    for (p = p0; p < npix && n != 0u; p++)
      for (i = 0; i < n; i++) y[(size_t)p * oc + ch[i]] = val[i];
  }
}

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
    int32_t fixed = 0;
#if EP_CONV_DSP || EP_CONV_PACKED
    p = conv_pairs(m, op, xb, y, &fixed);
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
    const_fix(op, y, fixed, OH * OW);
  }
  return 0;
}

#else
/* ISO C wants a translation unit to declare something. */
typedef int ep_rt_conv2d_left_out;
#endif /* EP_RT_CONV */
