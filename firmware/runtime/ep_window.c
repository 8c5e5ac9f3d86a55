/*
 * The windowed int8 family's common preparation: which builtins it takes, the options-type check and dispatch to each
 * op's own prepare (ep_conv.c, ep_dwconv.c, ep_pool.c, ep_softmax.c), the window geometry and operand checks both
 * convolutions share, and their per-channel constants (folded bias, multiplier, shift) computed once at load.
 */
#include <math.h>
#include <string.h>

#include "ep_conv16.h"
#include "ep_convf.h"
#include "ep_fc_mixed.h"
#include "ep_window.h"

#if EP_RT_CONV /* the whole file; see ep_kernels.h */

int ep_is_conv_builtin(uint32_t builtin) {
  return builtin == EP_OP_CONV_2D || builtin == EP_OP_DEPTHWISE_CONV_2D || builtin == EP_OP_AVERAGE_POOL_2D ||
         builtin == EP_OP_MAX_POOL_2D || builtin == EP_OP_SOFTMAX;
}

/* TFLM's ComputeOutSize + ComputePaddingWithOffset for one spatial dimension. */
int ep_win_dims(int32_t in, int32_t k, uint32_t stride, uint32_t dil, uint32_t padding, int32_t out, int16_t *pad) {
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
int ep_win_filter_quant(const ep_tensor_t *w, uint32_t channels, int32_t qdim) {
  /* int4: unpacked to int8 at load (ep_conv_mixed.c), before any kernel or init reads it */
  if (w->dtype != EP_DT_INT8 && w->dtype != EP_DT_INT4_TFL) return EP_RT_ERR_DTYPE;
  if (!w->has_quant || w->zero_point != 0) return EP_RT_ERR_QUANT;
  if (w->nchan != 0 && (w->nchan != channels || w->quant_dim != qdim)) return EP_RT_ERR_QUANT;
  return 0;
}

int ep_win_conv_head(const ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts, ep_win_opts_t *o) {
  if (op->n_in < 2 || op->n_in > 3 || op->n_out != 1) return EP_RT_ERR_OP;
  if (op->in[1] < 0) return EP_RT_ERR_GRAPH;
  TRY(ep_fb_scalar(fb, opts, 0, 1, 0, &o->padding));
  TRY(ep_fb_scalar(fb, opts, 1, 4, 0, &o->sw));
  return ep_fb_scalar(fb, opts, 2, 4, 0, &o->sh);
}

int ep_win_conv2d_opts(const ep_op_t *op, const ep_fb_t *fb, const ep_fb_table_t *opts, ep_win_opts_t *o) {
  TRY(ep_win_conv_head(op, fb, opts, o));
  TRY(ep_fb_scalar(fb, opts, 3, 1, 0, &o->act));
  TRY(ep_fb_scalar(fb, opts, 4, 4, 1, &o->dlw));
  return ep_fb_scalar(fb, opts, 5, 4, 1, &o->dlh);
}

int ep_win_conv_geom(ep_model_t *m, ep_op_t *op, const ep_win_opts_t *o, uint32_t oc, uint64_t depth) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]], *w = &m->tensors[op->in[1]];
  TRY(ep_win_dims(in->dims[1], w->dims[1], o->sh, o->dlh, o->padding, out->dims[1], &op->p.conv.pad_h));
  TRY(ep_win_dims(in->dims[2], w->dims[2], o->sw, o->dlw, o->padding, out->dims[2], &op->p.conv.pad_w));
  op->p.conv.stride_h = (uint8_t)o->sh;
  op->p.conv.stride_w = (uint8_t)o->sw;
  op->p.conv.dil_h = (uint8_t)o->dlh;
  op->p.conv.dil_w = (uint8_t)o->dlw;
  op->act = (uint8_t)o->act;
  op->rows = oc;
  op->depth = (uint32_t)depth;
  m->macs += (uint64_t)out->dims[0] * (uint32_t)out->dims[1] * (uint32_t)out->dims[2] * oc * depth;
  return 0;
}

int ep_win_conv_shape(const ep_model_t *m, const ep_op_t *op, uint32_t *oc, uint64_t *depth) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]], *w = &m->tensors[op->in[1]];
  const ep_tensor_t *b = (op->n_in == 3 && op->in[2] >= 0) ? &m->tensors[op->in[2]] : NULL;
  *oc = (uint32_t)w->dims[0];
  if (w->dims[3] != in->dims[3]) return EP_RT_ERR_SHAPE; /* no grouped convolution */
  if (out->dims[0] != in->dims[0] || (uint32_t)out->dims[3] != *oc) return EP_RT_ERR_SHAPE;
  if (b != NULL && (b->rank != 1 || (uint32_t)b->dims[0] != *oc)) return EP_RT_ERR_SHAPE;
  *depth = (uint64_t)(uint32_t)w->dims[1] * (uint32_t)w->dims[2] * (uint32_t)in->dims[3];
  return 0;
}

int ep_win_conv_io(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]], *w = &m->tensors[op->in[1]];
  if (in->rank != 4 || w->rank != 4 || out->rank != 4 || !w->is_const) return EP_RT_ERR_SHAPE;
  if (in->dtype != EP_DT_INT8 || out->dtype != EP_DT_INT8) return EP_RT_ERR_DTYPE;
  if (!q8(in) || !q8(out)) return EP_RT_ERR_QUANT;
  return 0;
}

int ep_win_conv_finish(ep_model_t *m, ep_op_t *op, const ep_win_opts_t *o, uint32_t oc, uint64_t depth, uint8_t kind) {
  const ep_tensor_t *in = &m->tensors[op->in[0]], *out = &m->tensors[op->out[0]];
  const ep_tensor_t *b = (op->n_in == 3 && op->in[2] >= 0) ? &m->tensors[op->in[2]] : NULL;
  if (depth > 65536u) return EP_RT_ERR_LIMITS; /* int32 accumulators stay exact */
  if (out->dims[0] != in->dims[0] || (uint32_t)out->dims[3] != oc) return EP_RT_ERR_SHAPE;
  if (b != NULL && (!b->is_const || b->dtype != EP_DT_INT32 || b->rank != 1 || (uint32_t)b->dims[0] != oc))
    return b->dtype != EP_DT_INT32 ? EP_RT_ERR_DTYPE : EP_RT_ERR_SHAPE;
  TRY(ep_win_conv_geom(m, op, o, oc, depth));
  op->p.conv.zp_in = (int8_t)in->zero_point;
  op->p.conv.zp_out = (int8_t)out->zero_point;
  op->kind = kind;
  return ep_act_range_q(op->act, out, &op->act_min, &op->act_max);
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
  if (EP_CONV16_ON && m->tensors[op->in[0]].dtype == EP_DT_INT16) {
    if (builtin == EP_OP_CONV_2D) return ep_conv16_prepare(m, op, fbv, optsv);
    if (builtin == EP_OP_DEPTHWISE_CONV_2D) return ep_dwconv16_prepare(m, op, fbv, optsv);
    if (builtin == EP_OP_SOFTMAX) return ep_softmax16_prepare(m, op, fbv, optsv);
  }
  if (EP_RT_F32 && builtin == EP_OP_CONV_2D && m->tensors[op->in[0]].dtype == EP_DT_FLOAT32)
    return ep_convf_prepare(m, op, fbv, optsv);
  switch (builtin) {
    case EP_OP_CONV_2D: return ep_conv2d_prepare(m, op, fb, opts);
    case EP_OP_DEPTHWISE_CONV_2D: return ep_dwconv_prepare(m, op, fb, opts);
    case EP_OP_AVERAGE_POOL_2D: return ep_pool_prepare(m, op, fb, opts, 0);
    case EP_OP_MAX_POOL_2D: return ep_pool_prepare(m, op, fb, opts, 1);
    default: return ep_softmax_prepare(m, op, fb, opts);
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

/* The byte CONV_2D channel r outputs whatever the input, if there is one (a channel whose weights are pruned to 0, or
 * whose bias holds it below the activation floor): the requantisation is monotone in the accumulator (multiplier
 * >= 0, no left shift, no int32 wrap), so the smallest and largest accumulators any int8 input gives (each tap at
 * -128 or 127; im2col padding taps hold the input zero point, inside that range) bound every output. */
static int conv_constant(const ep_op_t *op, const int8_t *w, uint32_t depth, int32_t fb, int32_t mult, int32_t shift,
                         int32_t *c) {
  int64_t lo = fb, hi = fb;
  int32_t a, b;
  uint32_t d;
  for (d = 0; d < depth; d++) {
    const int32_t v = w[d];
    lo += v > 0 ? -128 * v : 127 * v;
    hi += v > 0 ? 127 * v : -128 * v;
  }
  if (shift > 0 || mult < 0 || lo < INT32_MIN || hi > INT32_MAX) return 0;
  a = ep_clamp_i32(ep_add_wrap(ep_mbqm((int32_t)lo, mult, shift), op->p.conv.zp_out), op->act_min, op->act_max);
  b = ep_clamp_i32(ep_add_wrap(ep_mbqm((int32_t)hi, mult, shift), op->p.conv.zp_out), op->act_min, op->act_max);
  *c = a;
  return a == b;
}

void ep_conv_init(const ep_model_t *m, ep_op_t *op) {
  if (op->kind == EP_K_CONV_I8 || op->kind == EP_K_DWCONV_I8) {
    const ep_tensor_t *in = &m->tensors[op->in[0]], *w = &m->tensors[op->in[1]], *out = &m->tensors[op->out[0]];
    const ep_tensor_t *b = (op->n_in == 3 && op->in[2] >= 0) ? &m->tensors[op->in[2]] : NULL;
    const uint32_t oc = op->rows;
    const int dw = op->kind == EP_K_DWCONV_I8;
    uint32_t r, d;
    int32_t shift, c;
    op->batches = 0;
    for (r = 0; r < oc; r++) {
      int32_t bias = b ? (int32_t)ep_le32(b->data + 4u * r) : 0;
      /* Fold the input zero point: sum (x - zp) w = sum x w - zp sum w (DEPTHWISE: over all taps, used for
       * interior pixels; CONV: over the patch, whose padding taps hold the zero point). */
      int32_t s = 0;
      for (d = 0; d < op->depth; d++)
        s += dw ? ((const int8_t *)w->data)[(size_t)d * oc + r] : ((const int8_t *)w->data)[(size_t)r * op->depth + d];
      op->scratch[r] = (int32_t)((uint32_t)bias - (uint32_t)(int32_t)op->p.conv.zp_in * (uint32_t)s);
      ep_win_chan_multiplier(in, w, out, r, &op->scratch[oc + r], &shift);
      /* A channel whose multiplier is 0 (TFLM's multiplier and shift for a scale below 2^-31) outputs the zero point
       * whatever its accumulator and shift: a zero bias and a right shift of 1 give the same bytes and keep the op on
       * the short requantisation paths (its bias, at that scale, is often near the int32 limits). */
      if (op->scratch[oc + r] == 0) {
        op->scratch[r] = 0;
        shift = -1;
      }
      /* A CONV_2D channel whose output is one byte c for every input is stored like a multiplier-0 channel, its bias
       * word holding c - zp (0 for those): every kernel path then outputs zp there and ep_k_conv_i8 writes c, or
       * leaves the channel out of its MACs (ep_conv.c). */
      if (!dw && op->scratch[oc + r] != 0 &&
          conv_constant(op, (const int8_t *)w->data + (size_t)r * op->depth, op->depth, op->scratch[r],
                        op->scratch[oc + r], shift, &c)) {
        op->scratch[r] = c - op->p.conv.zp_out;
        op->scratch[oc + r] = 0;
        shift = -1;
      }
      if (!dw && op->scratch[oc + r] == 0) op->batches++; /* CONV_2D: its constant channels, counted (ep_window.h) */
      ((int8_t *)(void *)(op->scratch + 2u * oc))[r] = (int8_t)-shift;
    }
  }
}

#else
/* ISO C wants a translation unit to declare something. */
typedef int ep_rt_window_left_out;
#endif /* EP_RT_CONV */
