/*
 * AVERAGE_POOL_2D and MAX_POOL_2D int8, bit-exact with TFLM's reference kernels (windows clipped to the image, the
 * average over the taps inside). DSP cores take four channels per word (max: SSUB8/SEL; average: SXTAB16 lane sums,
 * windows up to 256 taps), elsewhere one channel at a time. Shared pieces: ep_window.h / ep_window.c.
 */
#include <string.h>

#include "ep_conv16.h"
#include "ep_convf.h"
#include "ep_fc_mixed.h"
#include "ep_window.h"

#if EP_RT_CONV /* the whole file; see ep_kernels.h */

int ep_pool_prepare(ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts, int is_max) {
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
  const int wide = EP_CONV16_ON && in->dtype == EP_DT_INT16; /* a 16x8 CNN's pool (kernel: ep_conv16.c) */
  const int flt = EP_CONVF_ON && in->dtype == EP_DT_FLOAT32; /* a float32 layer's pool (kernel: ep_convf.c) */
  if (in->dtype != out->dtype || (!wide && !flt && in->dtype != EP_DT_INT8)) return EP_RT_ERR_DTYPE;
  if (!flt && (wide ? !q16(in) || !q16(out) : !q8(in) || !q8(out))) return EP_RT_ERR_QUANT;
  /* The kernels pass values through unscaled: the same quantisation on both sides. */
  if (!flt && (in->scale != out->scale || in->zero_point != out->zero_point)) return EP_RT_ERR_QUANT;
  if (fw == 0 || fh == 0 || fw > 255u || fh > 255u) return EP_RT_ERR_LIMITS;
  if (out->dims[0] != in->dims[0] || out->dims[3] != in->dims[3]) return EP_RT_ERR_SHAPE;
  TRY(ep_win_dims(in->dims[1], (int32_t)fh, sh, 1, padding, out->dims[1], &op->p.pool.pad_h));
  TRY(ep_win_dims(in->dims[2], (int32_t)fw, sw, 1, padding, out->dims[2], &op->p.pool.pad_w));
  op->p.pool.stride_h = (uint8_t)sh;
  op->p.pool.stride_w = (uint8_t)sw;
  op->p.pool.win_h = (uint8_t)fh;
  op->p.pool.win_w = (uint8_t)fw;
  op->act = (uint8_t)act;
  if (flt) {
    op->kind = is_max ? EP_K_MAXPOOL_F32 : EP_K_AVGPOOL_F32;
    return ep_convf_act_range(op);
  }
  if (wide) {
    op->kind = is_max ? EP_K_MAXPOOL_I16 : EP_K_AVGPOOL_I16;
    return ep_act_range_16(op->act, out, &op->act_min, &op->act_max);
  }
  op->kind = is_max ? EP_K_MAXPOOL_I8 : EP_K_AVGPOOL_I8;
  return ep_act_range_q(op->act, out, &op->act_min, &op->act_max);
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

#else
/* ISO C wants a translation unit to declare something. */
typedef int ep_rt_pool_left_out;
#endif /* EP_RT_CONV */
