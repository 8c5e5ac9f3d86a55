/*
 * DEPTHWISE_CONV_2D int8 (depth multiplier 1), bit-exact with TFLM's reference integer kernel. NHWC, batch any,
 * dilation any, SAME/VALID. Four channels per block over every pixel (DSP: SXTB16 + SMLABB/SMLATT; 3x3 windows as
 * assembly runs over a row's inside pixels, border rows from a zero-point-padded strip; Cortex-M3/hosts: the same
 * blocks in C), border windows gathered with the input zero point, which the bias folded over all taps cancels; the
 * last C mod 4 channels (and v6-M) take TFLM's skip-outside-taps loop. Shared pieces: ep_window.h / ep_window.c.
 */
#include <string.h>

#include "ep_window.h"

#if EP_RT_CONV /* the whole file; see ep_kernels.h */

int ep_dwconv_prepare(ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *w;
  ep_win_opts_t o;
  uint32_t dm, oc;
  TRY(ep_win_conv_head(op, fb, opts, &o));
  w = &m->tensors[op->in[1]];
  TRY(ep_fb_scalar(fb, opts, 3, 4, 0, &dm));
  TRY(ep_fb_scalar(fb, opts, 4, 1, 0, &o.act));
  TRY(ep_fb_scalar(fb, opts, 5, 4, 1, &o.dlw));
  TRY(ep_fb_scalar(fb, opts, 6, 4, 1, &o.dlh));
  TRY(ep_win_conv_io(m, op));
  if (dm != 1) return EP_RT_ERR_OP; /* depth multiplier 1 only (every MLPerf Tiny model) */
  oc = (uint32_t)w->dims[3];
  if (w->dims[0] != 1 || oc != (uint32_t)in->dims[3]) return EP_RT_ERR_SHAPE;
  TRY(ep_win_filter_quant(w, oc, 3));
  return ep_win_conv_finish(m, op, &o, oc, (uint64_t)(uint32_t)w->dims[1] * (uint32_t)w->dims[2], EP_K_DWCONV_I8);
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

#else
/* ISO C wants a translation unit to declare something. */
typedef int ep_rt_dwconv_left_out;
#endif /* EP_RT_CONV */
