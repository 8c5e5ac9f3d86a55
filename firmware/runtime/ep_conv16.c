/*
 * The windowed ops of a 16x8 CNN (issue 30), bit-exact with TFLM's reference kernels:
 *
 *  - CONV_2D, int16 input/output (zero points 0), int8 filter (per-channel or per-tensor), int64 or int32 bias:
 *    reference_integer_ops::ConvPerChannel for int16. Taps outside the image add nothing (zero point 0); the sum is
 *    64-bit with an int64 bias (rescaled by the 64-bit MultiplyByQuantizedMultiplier, the 16x8 FC's), 32-bit and
 *    wrapping with an int32 bias (the 32-bit one).
 *  - MAX_POOL_2D and AVERAGE_POOL_2D on int16: windows clipped to the image, TFLM's rounding of the average.
 *
 * CONV_2D gathers each output pixel's int16 im2col patch (taps outside the image 0) and runs the 16x8
 * FULLY_CONNECTED's row sums over it (ep_fc_mixed.c: SXTB16 + SMLALD two rows per pass on DSP cores, int32 partial
 * sums over 256-step chunks added into 64 bits elsewhere); the pools are plain C.
 */
#include "ep_conv16.h"

#include "ep_fc_mixed.h"
#include "ep_window.h"

#if EP_RT_CONV /* the whole file; see ep_kernels.h */

/* p.conv.zp_in of EP_K_CONV_I16: the bias kind (zero points are 0). */
enum { BIAS_NONE = 0, BIAS_I32 = 1, BIAS_I64 = 2 };

static int conv16_prepare(ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]], *w, *b;
  ep_win_opts_t o;
  uint32_t oc;
  uint64_t depth;
  TRY(ep_win_conv2d_opts(op, fb, opts, &o));
  w = &m->tensors[op->in[1]];
  b = (op->n_in == 3 && op->in[2] >= 0) ? &m->tensors[op->in[2]] : NULL;
  if (in->rank != 4 || w->rank != 4 || out->rank != 4 || !w->is_const) return EP_RT_ERR_SHAPE;
  if (out->dtype != EP_DT_INT16 || w->dtype != EP_DT_INT8) return EP_RT_ERR_DTYPE;
  /* TFLM's int16 convolution takes symmetric activations. */
  if (!q16(in) || !q16(out)) return EP_RT_ERR_QUANT;
  if (b != NULL && (!b->is_const || (b->dtype != EP_DT_INT64 && b->dtype != EP_DT_INT32))) return EP_RT_ERR_DTYPE;
  TRY(ep_win_conv_shape(m, op, &oc, &depth));
  TRY(ep_win_filter_quant(w, oc, 0));
  if (depth > 65536u) return EP_RT_ERR_LIMITS;
  TRY(ep_win_conv_geom(m, op, &o, oc, depth));
  op->p.conv.zp_in = (int8_t)(b == NULL ? BIAS_NONE : (b->dtype == EP_DT_INT64 ? BIAS_I64 : BIAS_I32));
  op->p.conv.zp_out = 0;
  op->kind = EP_K_CONV_I16;
  return ep_act_range_16(op->act, out, &op->act_min, &op->act_max);
}

EP_COLD int ep_conv16_prepare(ep_model_t *m, ep_op_t *op, const void *fbv, const void *opts) {
  return conv16_prepare(m, op, (const ep_fb_t *)fbv, (const ep_fb_table_t *)opts);
}

uint32_t ep_conv16_scratch_bytes(const ep_op_t *op) {
  if (op->kind == EP_K_DWCONV_I16) return ep_dwconv16_scratch_bytes(op);
  return op->kind == EP_K_CONV_I16 ? 8u * op->rows : 0u;
}

/* Per channel: TFLM's multiplier (double)input_scale * filter_scale / output_scale and its shift. */
EP_COLD void ep_conv16_init(const ep_model_t *m, ep_op_t *op) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *w = &m->tensors[op->in[1]], *out = &m->tensors[op->out[0]];
  uint32_t r;
  if (op->kind == EP_K_DWCONV_I16) ep_dwconv16_init(m, op);
  if (op->kind != EP_K_CONV_I16) return;
  for (r = 0; r < op->rows; r++) {
    ep_win_chan_multiplier(in, w, out, r, &op->scratch[r], &op->scratch[op->rows + r]);
  }
}

uint32_t ep_conv16_tmp_bytes(const ep_op_t *op) {
  if (op->kind != EP_K_CONV_I16) return 0;
  return ((2u * op->depth + 3u) & ~3u) + (op->depth & ~3u) * 2u;
}

/* The int16 im2col patch of the output pixel whose window starts at input row iy0, column ix0: KH x KW taps of C
 * channels in the filter's order, taps outside the image 0 (the zero point: they add nothing, as TFLM skips them). */
static void gather(const int16_t *x, int16_t *patch, int32_t iy0, int32_t ix0, const int32_t *g) {
  /* g: input height, width, channels, filter height, width, dilation h, dilation w */
  const int32_t H = g[0], W = g[1], C = g[2], KH = g[3], KW = g[4], dh = g[5], dw = g[6];
  int32_t ky, kx;
  for (ky = 0; ky < KH; ky++) {
    const int32_t iy = iy0 + ky * dh;
    for (kx = 0; kx < KW; kx++, patch += C) {
      const int32_t ix = ix0 + kx * dw;
      if (iy < 0 || iy >= H || ix < 0 || ix >= W) memset(patch, 0, 2u * (uint32_t)C);
      else memcpy(patch, x + ((ptrdiff_t)iy * W + ix) * C, 2u * (uint32_t)C);
    }
  }
}

int ep_k_conv_i16(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *tw = &m->tensors[op->in[1]], *to = &m->tensors[op->out[0]];
  const int16_t *x = (const int16_t *)(const void *)ti->data;
  const int8_t *w = (const int8_t *)tw->data;
  int16_t *y = (int16_t *)(void *)to->data;
  const uint8_t *bias = (op->n_in == 3 && op->in[2] >= 0) ? m->tensors[op->in[2]].data : NULL;
  const int32_t H = ti->dims[1], W = ti->dims[2], C = ti->dims[3];
  const int32_t OH = to->dims[1], OW = to->dims[2];
  const int32_t g[7] = {H, W, C, tw->dims[1], tw->dims[2], op->p.conv.dil_h, op->p.conv.dil_w};
  const uint32_t oc = op->rows, depth = op->depth;
  const int32_t *cm = op->scratch, *cs = op->scratch + oc;
  int16_t *patch = (int16_t *)(void *)m->fc_tmp;
  uint32_t *xq = (uint32_t *)(void *)(m->fc_tmp + ((2u * depth + 3u) & ~3u));
  const int bias_kind = op->p.conv.zp_in;
  int32_t b, oy, ox;
  uint32_t r, k;
  for (b = 0; b < ti->dims[0]; b++) {
    const int16_t *xb = x + (size_t)b * (uint32_t)(H * W * C);
    for (oy = 0; oy < OH; oy++) {
      for (ox = 0; ox < OW; ox++) {
        int16_t *yp = y + (((size_t)b * (uint32_t)OH + (uint32_t)oy) * (uint32_t)OW + (uint32_t)ox) * oc;
        gather(xb, patch, oy * op->p.conv.stride_h - op->p.conv.pad_h, ox * op->p.conv.stride_w - op->p.conv.pad_w, g);
        ep_i16_widen(patch, depth, xq);
        for (r = 0; r < oc; r += 32u) {
          int64_t s[32];
          const uint32_t n = oc - r > 32u ? 32u : oc - r;
          ep_i16_dot_rows(w + (size_t)r * depth, patch, xq, s, n, depth);
          for (k = 0; k < n; k++) {
            const uint32_t ch = r + k;
            int32_t v;
            if (bias_kind == BIAS_I32) { /* TFLM accumulates in int32 (wrapping) and rescales as the int8 kernels */
              v = ep_mbqm((int32_t)((uint32_t)(uint64_t)s[k] + ep_le32(bias + 4u * ch)), cm[ch], cs[ch]);
            } else {
              v = ep_mbqm64(s[k] + (bias_kind == BIAS_I64 ? ep_ld_i64(bias + 8u * ch) : 0), cm[ch], cs[ch]);
            }
            yp[ch] = (int16_t)ep_clamp_i32(v, op->act_min, op->act_max);
          }
        }
      }
    }
  }
  return 0;
}

/* TFLM's int16 average: (sum + count/2) / count for sum > 0, (sum - count/2) / count otherwise (C division). */
static int32_t avg16(int32_t sum, int32_t count) {
  return sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

int ep_k_pool_i16(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *to = &m->tensors[op->out[0]];
  const int16_t *x = (const int16_t *)(const void *)ti->data;
  int16_t *y = (int16_t *)(void *)to->data;
  const int32_t H = ti->dims[1], W = ti->dims[2], C = ti->dims[3], OH = to->dims[1], OW = to->dims[2];
  const int32_t FH = op->p.pool.win_h, FW = op->p.pool.win_w;
  const int is_max = op->kind == EP_K_MAXPOOL_I16;
  int32_t b, oy, ox, c, fy, fx;
  for (b = 0; b < ti->dims[0]; b++) {
    for (oy = 0; oy < OH; oy++) {
      const int32_t iy0 = oy * op->p.pool.stride_h - op->p.pool.pad_h;
      const int32_t y0 = iy0 < 0 ? -iy0 : 0, y1 = H - iy0 < FH ? H - iy0 : FH;
      for (ox = 0; ox < OW; ox++) {
        const int32_t ix0 = ox * op->p.pool.stride_w - op->p.pool.pad_w;
        const int32_t x0 = ix0 < 0 ? -ix0 : 0, x1 = W - ix0 < FW ? W - ix0 : FW;
        const int32_t count = (y1 - y0) * (x1 - x0);
        int16_t *yp = y + (((size_t)b * (uint32_t)OH + (uint32_t)oy) * (uint32_t)OW + (uint32_t)ox) * (uint32_t)C;
        if (count <= 0) return EP_RT_ERR_SHAPE; /* TFLM's AveragePool fails on an empty window */
        for (c = 0; c < C; c++) {
          int32_t acc = is_max ? -32768 : 0;
          for (fy = y0; fy < y1; fy++) {
            const int16_t *p = x + (((size_t)b * (uint32_t)H + (uint32_t)(iy0 + fy)) * (uint32_t)W) * (uint32_t)C + (uint32_t)c;
            for (fx = x0; fx < x1; fx++) {
              const int32_t v = p[(size_t)(ix0 + fx) * (uint32_t)C];
              if (is_max) acc = v > acc ? v : acc;
              else acc += v;
            }
          }
          if (!is_max) acc = avg16(acc, count);
          yp[c] = (int16_t)ep_clamp_i32(acc, op->act_min, op->act_max);
        }
      }
    }
  }
  return 0;
}

#else
/* ISO C wants a translation unit to declare something. */
typedef int ep_rt_conv16_left_out;
#endif /* EP_RT_CONV */
