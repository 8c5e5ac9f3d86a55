/*
 * CONV_2D, MAX_POOL_2D and AVERAGE_POOL_2D on float32 (a float32 layer of an int8 CNN, issue 30), bit for bit TFLM's
 * float reference kernels: each output is one float sum in TFLM's order (filter row, filter column, input channel;
 * taps outside the image skipped), then the bias, then the activation clamp; the average pool divides the float sum
 * of the taps inside the image by their count, the max pool starts from the lowest float. The builds compile with
 * -std=c99, which keeps GCC from contracting a multiply and an add into one FMA (TFLM's x86 build rounds each), so
 * every core rounds as TFLM does. Plain C: a float layer is the accuracy fallback, not the fast path.
 */
#include <float.h>
#include <string.h>

#include "ep_convf.h"
#include "ep_window.h"

#if EP_RT_CONV && EP_RT_F32 /* the whole file; see ep_kernels.h */

int ep_convf_act_range(ep_op_t *op) {
  float lo = -FLT_MAX, hi = FLT_MAX;
  switch (op->act) {
    case EP_ACT_NONE: break;
    case EP_ACT_RELU: lo = 0.0f; break;
    case EP_ACT_RELU6: lo = 0.0f, hi = 6.0f; break;
    case EP_ACT_RELU_N1_TO_1: lo = -1.0f, hi = 1.0f; break;
    default: return EP_RT_ERR_OP;
  }
  memcpy(&op->act_min, &lo, 4);
  memcpy(&op->act_max, &hi, 4);
  return 0;
}

/* std::min(std::max(v, lo), hi), TFLM's ActivationFunctionWithMinMax. */
static inline float clampf(float v, float lo, float hi) {
  v = v < lo ? lo : v;
  return hi < v ? hi : v;
}

static int conv_prepare(ep_model_t *m, ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]], *w, *b;
  ep_win_opts_t o;
  uint32_t oc;
  uint64_t depth;
  TRY(ep_win_conv2d_opts(op, fb, opts, &o));
  w = &m->tensors[op->in[1]];
  b = (op->n_in == 3 && op->in[2] >= 0) ? &m->tensors[op->in[2]] : NULL;
  if (in->rank != 4 || w->rank != 4 || out->rank != 4 || !w->is_const) return EP_RT_ERR_SHAPE;
  if (out->dtype != EP_DT_FLOAT32 || w->dtype != EP_DT_FLOAT32) return EP_RT_ERR_DTYPE;
  if (b != NULL && (!b->is_const || b->dtype != EP_DT_FLOAT32)) return EP_RT_ERR_DTYPE;
  TRY(ep_win_conv_shape(m, op, &oc, &depth));
  TRY(ep_win_conv_geom(m, op, &o, oc, depth));
  op->kind = EP_K_CONV_F32;
  return ep_convf_act_range(op);
}

EP_COLD int ep_convf_prepare(ep_model_t *m, ep_op_t *op, const void *fbv, const void *opts) {
  if (!EP_CONVF_ON) return EP_RT_ERR_DTYPE; /* left out of this build */
  return conv_prepare(m, op, (const ep_fb_t *)fbv, (const ep_fb_table_t *)opts);
}

int ep_k_conv_f32(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]], *w = &m->tensors[op->in[1]];
  const uint8_t *bias = (op->n_in == 3 && op->in[2] >= 0) ? m->tensors[op->in[2]].data : NULL;
  const int32_t N = in->dims[0], H = in->dims[1], W = in->dims[2], C = in->dims[3];
  const int32_t OH = out->dims[1], OW = out->dims[2], OC = (int32_t)op->rows;
  const int32_t KH = w->dims[1], KW = w->dims[2];
  const int32_t sh = op->p.conv.stride_h, sw = op->p.conv.stride_w, dh = op->p.conv.dil_h, dw = op->p.conv.dil_w;
  const float *x = (const float *)(const void *)in->data;
  float *y = (float *)(void *)out->data;
  float lo, hi;
  int32_t n, oy, ox, c, ky, kx, ic;
  memcpy(&lo, &op->act_min, 4);
  memcpy(&hi, &op->act_max, 4);
  for (n = 0; n < N; n++) {
    for (oy = 0; oy < OH; oy++) {
      const int32_t iy0 = oy * sh - op->p.conv.pad_h;
      for (ox = 0; ox < OW; ox++) {
        const int32_t ix0 = ox * sw - op->p.conv.pad_w;
        for (c = 0; c < OC; c++) {
          const uint8_t *wc = w->data + 4u * (size_t)c * op->depth;
          float total = 0.0f;
          for (ky = 0; ky < KH; ky++) {
            const int32_t iy = iy0 + dh * ky;
            if (iy < 0 || iy >= H) continue;
            for (kx = 0; kx < KW; kx++) {
              const int32_t ix = ix0 + dw * kx;
              const float *xp;
              const uint8_t *wp;
              if (ix < 0 || ix >= W) continue;
              xp = x + (((size_t)n * H + iy) * W + ix) * C;
              wp = wc + 4u * ((size_t)ky * KW + kx) * C;
              for (ic = 0; ic < C; ic++) total += xp[ic] * ep_ld_f32(wp + 4u * ic);
            }
          }
          *y++ = clampf(total + (bias ? ep_ld_f32(bias + 4u * c) : 0.0f), lo, hi);
        }
      }
    }
  }
  return 0;
}

int ep_k_pool_f32(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]];
  const int32_t N = in->dims[0], H = in->dims[1], W = in->dims[2], C = in->dims[3];
  const int32_t OH = out->dims[1], OW = out->dims[2];
  const int32_t FH = op->p.pool.win_h, FW = op->p.pool.win_w;
  const int is_max = op->kind == EP_K_MAXPOOL_F32;
  const float *x = (const float *)(const void *)in->data;
  float *y = (float *)(void *)out->data;
  float lo, hi;
  int32_t n, oy, ox, c, fy, fx;
  memcpy(&lo, &op->act_min, 4);
  memcpy(&hi, &op->act_max, 4);
  for (n = 0; n < N; n++) {
    for (oy = 0; oy < OH; oy++) {
      const int32_t iy0 = oy * op->p.pool.stride_h - op->p.pool.pad_h;
      const int32_t fy0 = iy0 < 0 ? -iy0 : 0, fy1 = H - iy0 < FH ? H - iy0 : FH;
      for (ox = 0; ox < OW; ox++) {
        const int32_t ix0 = ox * op->p.pool.stride_w - op->p.pool.pad_w;
        const int32_t fx0 = ix0 < 0 ? -ix0 : 0, fx1 = W - ix0 < FW ? W - ix0 : FW;
        for (c = 0; c < C; c++) {
          float acc = is_max ? -FLT_MAX : 0.0f, count = 0.0f;
          for (fy = fy0; fy < fy1; fy++) {
            for (fx = fx0; fx < fx1; fx++) {
              const float v = x[(((size_t)n * H + iy0 + fy) * W + ix0 + fx) * C + c];
              if (is_max) acc = acc < v ? v : acc; /* std::max(acc, v) */
              else acc += v;
              count += 1.0f;
            }
          }
          if (count == 0.0f) return EP_RT_ERR_SHAPE; /* TFLM fails such a window too */
          *y++ = clampf(is_max ? acc : acc / count, lo, hi);
        }
      }
    }
  }
  return 0;
}

#else
/* ISO C wants a translation unit to declare something. */
typedef int ep_rt_convf_left_out;
#endif
