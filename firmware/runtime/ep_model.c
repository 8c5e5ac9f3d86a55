/*
 * Model loading: parse and validate a TFLite flatbuffer completely, prepare every operator (all
 * multipliers, folded biases and activation ranges are computed here, once), and plan the arena.
 * Nothing here executes the model, so a model that fails any check is never run. Every function here runs once per
 * init, so they are EP_COLD (optimised for size: ~3 KB less flash on M4 than -O2).
 */
#include <math.h>
#include <string.h>

#include "ep_flatbuf.h"
#include "ep_conv16.h"
#include "ep_conv_mixed.h"
#include "ep_elem16.h"
#include "ep_fc_mixed.h"
#include "ep_kernels.h"
#include "ep_qmath.h"
#include "ep_runtime.h"

#define EP_MAGIC 0x45505254u
#define EP_ALIGN 16u

/* TFLite schema field ids used below. */
enum { F_MODEL_VERSION = 0, F_MODEL_OPCODES = 1, F_MODEL_SUBGRAPHS = 2, F_MODEL_BUFFERS = 4 };
enum { F_OPCODE_DEPRECATED = 0, F_OPCODE_CUSTOM = 1, F_OPCODE_BUILTIN = 3 };
enum { F_SG_TENSORS = 0, F_SG_INPUTS = 1, F_SG_OUTPUTS = 2, F_SG_OPERATORS = 3 };
enum { F_T_SHAPE = 0, F_T_TYPE = 1, F_T_BUFFER = 2, F_T_QUANT = 4, F_T_VARIABLE = 5, F_T_SPARSITY = 6 };
enum { F_Q_SCALE = 2, F_Q_ZERO = 3, F_Q_DETAILS_TYPE = 4, F_Q_DIM = 6 };
enum { F_OP_OPCODE = 0, F_OP_INPUTS = 1, F_OP_OUTPUTS = 2, F_OP_OPTS_TYPE = 3, F_OP_OPTS = 4 };
enum { F_BUF_DATA = 0, F_BUF_OFFSET = 1 };
/* BuiltinOptions union tags. */
enum { OPT_FC = 8, OPT_ADD = 11, OPT_RESHAPE = 17, OPT_MUL = 21, OPT_SUB = 28 };

/* A build with none of the mixed-precision kinds (EP_RT_KINDS) links none of ep_fc_mixed.c; their dtypes are then
 * refused by the int8 checks. A constant, so the calls below fold away. */
#define EP_MIXED_ON (EP_KIND_ON(EP_K_FC_I4) || EP_KIND_ON(EP_K_FC_I16) || EP_KIND_ON(EP_K_REQUANT_I16))
/* The int16 element-wise ops of a 16x8 recurrent cell (ep_elem16.c), likewise linked only when a kind is on. */
#define EP_ELEM16_ON (EP_KIND_ON(EP_K_ADD_I16) || EP_KIND_ON(EP_K_SUB_I16) || EP_KIND_ON(EP_K_MUL_I16) || \
                      EP_KIND_ON(EP_K_LOGISTIC_I16) || EP_KIND_ON(EP_K_TANH_I16))
/* Likewise the float paths of the int8 builds: a float op of a kind left out is refused by the int8 checks. */
#define EP_F32_BIN_ON (EP_KIND_ON(EP_K_ADD_F32) || EP_KIND_ON(EP_K_SUB_F32) || EP_KIND_ON(EP_K_MUL_F32))

#define TRY(expr)          \
  do {                     \
    int st_ = (expr);      \
    if (st_ != 0) return st_; \
  } while (0)

EP_COLD static uint32_t dtype_size(uint8_t dt) {
  switch (dt) {
    case EP_DT_FLOAT32:
    case EP_DT_INT32:
      return 4;
    case EP_DT_INT8:
    case EP_DT_UINT8:
    case EP_DT_BOOL:
      return 1;
    case EP_DT_INT16:
    case EP_DT_FLOAT16:
      return 2;
    case EP_DT_INT64:
      return 8;
    default:
      return 0;
  }
}

EP_COLD static float rd_f32(const uint8_t *p) {
  uint32_t u = ep_le32(p);
  float f;
  memcpy(&f, &u, 4);
  return f;
}

EP_COLD static uint32_t elements(const ep_tensor_t *t) {
  uint32_t n = 1, i;
  for (i = 0; i < t->rank; i++) n *= (uint32_t)t->dims[i];
  return n;
}

EP_COLD static int parse_quant(const ep_fb_t *fb, const ep_fb_table_t *q, ep_tensor_t *t) {
  ep_fb_vec_t sc, zp;
  uint32_t dtype_tag, qdim, i;
  TRY(ep_fb_vec(fb, q, F_Q_SCALE, 4, &sc));
  TRY(ep_fb_vec(fb, q, F_Q_ZERO, 8, &zp));
  TRY(ep_fb_scalar(fb, q, F_Q_DETAILS_TYPE, 1, 0, &dtype_tag));
  TRY(ep_fb_scalar(fb, q, F_Q_DIM, 4, 0, &qdim));
  if (sc.n == 0) return 0; /* min/max only: treated as unquantised */
  if (dtype_tag != 0) return EP_RT_ERR_QUANT;
  if (zp.n != 0 && zp.n != sc.n) return EP_RT_ERR_QUANT;
  for (i = 0; i < sc.n; i++) {
    float s = rd_f32(fb->b + sc.pos + 4u * i);
    if (!(s > 0.0f) || !isfinite(s)) return EP_RT_ERR_QUANT;
  }
  for (i = 0; i < zp.n; i++) {
    uint32_t lo = ep_le32(fb->b + zp.pos + 8u * i), hi = ep_le32(fb->b + zp.pos + 8u * i + 4u);
    int64_t z = (int64_t)(((uint64_t)hi << 32) | lo);
    if (z < -32768 || z > 65535) return EP_RT_ERR_QUANT;
    if (i == 0) t->zero_point = (int32_t)z;
    else if ((int32_t)z != t->zero_point) return EP_RT_ERR_QUANT; /* per-channel zero points must agree */
  }
  t->scale = rd_f32(fb->b + sc.pos);
  t->has_quant = 1;
  if (sc.n > 1) {
    t->chan_scales = fb->b + sc.pos;
    t->nchan = sc.n;
    t->quant_dim = (int32_t)qdim;
  }
  return 0;
}

EP_COLD static int parse_tensor(ep_model_t *m, const ep_fb_t *fb, const ep_fb_vec_t *buffers, const ep_fb_table_t *tt,
                        ep_tensor_t *t) {
  ep_fb_vec_t shape;
  ep_fb_table_t q, buf;
  uint32_t type, bufidx, variable, i, sparsity;
  uint64_t n = 1;
  uint32_t esize;
  int present;
  TRY(ep_fb_vec(fb, tt, F_T_SHAPE, 4, &shape));
  TRY(ep_fb_scalar(fb, tt, F_T_TYPE, 1, 0, &type));
  TRY(ep_fb_scalar(fb, tt, F_T_BUFFER, 4, 0, &bufidx));
  TRY(ep_fb_scalar(fb, tt, F_T_VARIABLE, 1, 0, &variable));
  TRY(ep_fb_ref(fb, tt, F_T_SPARSITY, &sparsity));
  if (variable || sparsity) return EP_RT_ERR_OP;
  if (shape.n > EP_RT_MAX_DIMS) return EP_RT_ERR_SHAPE;
  esize = dtype_size((uint8_t)type);
  if (esize == 0 && ep_mixed_packed_bytes(type, 1) == 0) return EP_RT_ERR_DTYPE;
  t->dtype = (uint8_t)type;
  t->rank = (uint8_t)shape.n;
  for (i = 0; i < shape.n; i++) {
    int32_t d = ep_fb_vec_i32(fb, &shape, i);
    if (d <= 0) return EP_RT_ERR_SHAPE;
    t->dims[i] = d;
    n *= (uint64_t)d;
    if (n > 0x10000000u) return EP_RT_ERR_SHAPE;
  }
  t->bytes = esize ? (uint32_t)n * esize : ep_mixed_packed_bytes(type, n);
  TRY(ep_fb_subtable(fb, tt, F_T_QUANT, &q, &present));
  if (present) TRY(parse_quant(fb, &q, t));
  if (bufidx >= buffers->n) return EP_RT_ERR_BUFFER;
  TRY(ep_fb_vec_table(fb, buffers, bufidx, &buf));
  {
    ep_fb_vec_t data;
    uint32_t offpos;
    TRY(ep_fb_vec(fb, &buf, F_BUF_DATA, 1, &data));
    /* Buffers stored outside the flatbuffer (offset/size fields, for >2 GB models) are not supported. */
    TRY(ep_fb_field(fb, &buf, F_BUF_OFFSET, 8, &offpos));
    if (offpos != 0 && (ep_le32(fb->b + offpos) > 1u || ep_le32(fb->b + offpos + 4) != 0)) return EP_RT_ERR_BUFFER;
    if (data.n != 0) {
      if (data.n != t->bytes) return EP_RT_ERR_BUFFER;
      t->data = (uint8_t *)(uintptr_t)(fb->b + data.pos); /* constants stay in the model: never written */
      t->is_const = 1;
    }
  }
  (void)m;
  return 0;
}

EP_COLD int ep_act_range_q(uint8_t act, const ep_tensor_t *out, int32_t *lo, int32_t *hi) {
  int32_t qmin = -128, qmax = 127;
#define EP_QV(x) (out->zero_point + (int32_t)roundf((x) / out->scale))
  switch (act) {
    case EP_ACT_NONE:
      break;
    case EP_ACT_RELU:
      if (EP_QV(0.0f) > qmin) qmin = EP_QV(0.0f);
      break;
    case EP_ACT_RELU6:
      if (EP_QV(0.0f) > qmin) qmin = EP_QV(0.0f);
      if (EP_QV(6.0f) < qmax) qmax = EP_QV(6.0f);
      break;
    case EP_ACT_RELU_N1_TO_1:
      if (EP_QV(-1.0f) > qmin) qmin = EP_QV(-1.0f);
      if (EP_QV(1.0f) < qmax) qmax = EP_QV(1.0f);
      break;
    default:
      return EP_RT_ERR_OP;
  }
#undef EP_QV
  *lo = qmin;
  *hi = qmax;
  return 0;
}

EP_COLD static int act_range_f(uint8_t act, ep_op_t *op) {
  /* Float bounds are stored as raw bits in act_min/act_max; +-inf mean "no bound". */
  float lo = -INFINITY, hi = INFINITY;
  switch (act) {
    case EP_ACT_NONE:
      break;
    case EP_ACT_RELU:
      lo = 0.0f;
      break;
    case EP_ACT_RELU6:
      lo = 0.0f;
      hi = 6.0f;
      break;
    case EP_ACT_RELU_N1_TO_1:
      lo = -1.0f;
      hi = 1.0f;
      break;
    default:
      return EP_RT_ERR_OP;
  }
  memcpy(&op->act_min, &lo, 4);
  memcpy(&op->act_max, &hi, 4);
  return 0;
}

static int is_q8(const ep_tensor_t *t) { return t->dtype == EP_DT_INT8 && t->has_quant && t->nchan == 0; }
static int zp8(const ep_tensor_t *t) { return t->zero_point >= -128 && t->zero_point <= 127; }

/* Scratch bytes an operator needs in the persistent part of the arena. */
EP_COLD static uint32_t op_scratch_bytes(const ep_model_t *m, const ep_op_t *op) {
  if (ep_is_window_kind(op->kind)) return ep_conv_scratch_bytes(m, op);
  if (EP_CONV16_ON && ep_is_conv16_kind(op->kind)) return ep_conv16_scratch_bytes(op);
  if (EP_MIXED_ON && ep_is_mixed_kind(op->kind)) return ep_fc_mixed_scratch_bytes(op);
  if (op->kind == EP_K_FC_I8) return op->rows * 4u * (op->p.fc.per_channel ? 3u : 1u);
  if (op->kind == EP_K_LOGISTIC_I8 || op->kind == EP_K_TANH_I8) return EP_ACT_TABLE_BYTES;
  if (op->kind == EP_K_QUANT_F2I) return EP_QUANT_TABLE_BYTES;
  if (op->kind == EP_K_DEQUANT_I8) return ep_dequant_table_bytes(m->tensors[op->in[0]].scale);
  return 0;
}

/* Everything about one operator that depends only on tensor metadata. */
EP_COLD static int prepare_op(ep_model_t *m, ep_op_t *op, uint32_t builtin, const ep_fb_t *fb,
                              const ep_fb_table_t *opts, int has_opts, uint32_t opts_type) {
  ep_tensor_t *in0 = &m->tensors[op->in[0]];
  ep_tensor_t *out = &m->tensors[op->out[0]];
  uint32_t act = 0;
  uint32_t expect_opts = 0;
  if (ep_is_conv_builtin(builtin)) return ep_conv_prepare(m, op, builtin, fb, opts, has_opts, opts_type);
  switch (builtin) {
    case EP_OP_FULLY_CONNECTED: expect_opts = OPT_FC; break;
    case EP_OP_ADD: expect_opts = OPT_ADD; break;
    case EP_OP_SUB: expect_opts = OPT_SUB; break;
    case EP_OP_MUL: expect_opts = OPT_MUL; break;
    case EP_OP_RESHAPE: expect_opts = OPT_RESHAPE; break;
    default: break;
  }
  if (opts_type != 0 && opts_type != expect_opts) return EP_RT_ERR_OP;
  if (has_opts && expect_opts != 0 && expect_opts != OPT_RESHAPE) {
    TRY(ep_fb_scalar(fb, opts, 0, 1, 0, &act));
  }
  if (builtin == EP_OP_FULLY_CONNECTED && has_opts) {
    uint32_t wfmt;
    TRY(ep_fb_scalar(fb, opts, 1, 1, 0, &wfmt));
    if (wfmt != 0) return EP_RT_ERR_OP; /* shuffled weight formats are not supported */
  }
  op->act = (uint8_t)act;

  switch (builtin) {
    case EP_OP_QUANTIZE:
      if (op->n_in != 1 || op->n_out != 1) return EP_RT_ERR_OP;
      if (EP_MIXED_ON && (in0->dtype == EP_DT_INT16 || out->dtype == EP_DT_INT16)) return ep_quant_mixed_prepare(m, op);
      if (!is_q8(out) || !zp8(out) || elements(in0) != elements(out)) return out->dtype != EP_DT_INT8 ? EP_RT_ERR_DTYPE : EP_RT_ERR_QUANT;
      if (in0->dtype == EP_DT_FLOAT32) {
        op->kind = EP_K_QUANT_F2I;
      } else if (in0->dtype == EP_DT_INT8) {
        if (!is_q8(in0) || !zp8(in0)) return EP_RT_ERR_QUANT;
        op->kind = EP_K_REQUANT_I8;
        ep_quantize_ratio(in0->scale, 1.0f, out->scale, 0, &op->mult[0], &op->shift[0]);
        op->p.quant.zp_in = in0->zero_point;
      } else {
        return EP_RT_ERR_DTYPE;
      }
      op->p.quant.zp_out = out->zero_point;
      return 0;
    case EP_OP_DEQUANTIZE:
      if (op->n_in != 1 || op->n_out != 1) return EP_RT_ERR_OP;
      if (in0->dtype != EP_DT_INT8 || out->dtype != EP_DT_FLOAT32) return EP_RT_ERR_DTYPE;
      if (!is_q8(in0) || !zp8(in0)) return EP_RT_ERR_QUANT;
      if (elements(in0) != elements(out)) return EP_RT_ERR_SHAPE;
      op->kind = EP_K_DEQUANT_I8;
      return 0;
    case EP_OP_FULLY_CONNECTED: {
      ep_tensor_t *w, *b = NULL;
      uint32_t n_in_el;
      if (op->n_in < 2 || op->n_in > 3 || op->n_out != 1) return EP_RT_ERR_OP;
      if (op->in[1] < 0) return EP_RT_ERR_GRAPH;
      w = &m->tensors[op->in[1]];
      if (op->n_in == 3 && op->in[2] >= 0) b = &m->tensors[op->in[2]];
      if (w->rank != 2 || !w->is_const) return EP_RT_ERR_SHAPE;
      op->rows = (uint32_t)w->dims[0];
      op->depth = (uint32_t)w->dims[1];
      n_in_el = elements(in0);
      if (in0->rank < 1 || n_in_el % op->depth != 0) return EP_RT_ERR_SHAPE;
      op->batches = n_in_el / op->depth;
      if (op->depth > 65536u) return EP_RT_ERR_LIMITS; /* keeps the int32 dot product free of overflow */
      if (elements(out) != op->batches * op->rows) return EP_RT_ERR_SHAPE;
      if (b != NULL && (!b->is_const || elements(b) != op->rows)) return EP_RT_ERR_SHAPE;
      if (EP_KIND_ON(EP_K_FC_F32) && in0->dtype == EP_DT_FLOAT32) {
        if (w->dtype != EP_DT_FLOAT32 || out->dtype != EP_DT_FLOAT32) return EP_RT_ERR_DTYPE;
        if (b != NULL && b->dtype != EP_DT_FLOAT32) return EP_RT_ERR_DTYPE;
        op->kind = EP_K_FC_F32;
        m->macs += (uint64_t)op->batches * op->rows * op->depth;
        return act_range_f(op->act, op);
      }
      if (EP_MIXED_ON && (w->dtype == EP_DT_INT4_TFL || in0->dtype == EP_DT_INT16)) return ep_fc_mixed_prepare(m, op);
      if (in0->dtype != EP_DT_INT8 || w->dtype != EP_DT_INT8 || out->dtype != EP_DT_INT8) return EP_RT_ERR_DTYPE;
      if (b != NULL && b->dtype != EP_DT_INT32) return EP_RT_ERR_DTYPE;
      if (!is_q8(in0) || !is_q8(out) || !w->has_quant || !zp8(in0) || !zp8(out)) return EP_RT_ERR_QUANT;
      if (w->zero_point != 0) return EP_RT_ERR_QUANT; /* int8 weights are symmetric in TFLite */
      if (w->nchan != 0) {
        if (w->quant_dim != 0 || w->nchan != op->rows) return EP_RT_ERR_QUANT;
        op->p.fc.per_channel = 1;
      } else {
        ep_quantize_ratio(in0->scale, w->scale, out->scale, 0, &op->mult[0], &op->shift[0]);
      }
      op->p.fc.zp_in = in0->zero_point;
      op->p.fc.zp_out = out->zero_point;
      op->kind = EP_K_FC_I8;
      m->macs += (uint64_t)op->batches * op->rows * op->depth;
      return ep_act_range_q(op->act, out, &op->act_min, &op->act_max);
    }
    case EP_OP_ADD:
    case EP_OP_SUB:
    case EP_OP_MUL: {
      ep_tensor_t *in1;
      uint32_t i, r = out->rank;
      if (op->n_in != 2 || op->n_out != 1) return EP_RT_ERR_OP;
      in1 = &m->tensors[op->in[1]];
      /* Numpy-style broadcast, aligned at the last dimension. */
      if (in0->rank > r || in1->rank > r) return EP_RT_ERR_SHAPE;
      for (i = 0; i < r; i++) {
        int32_t od = out->dims[r - 1 - i];
        int32_t a = i < in0->rank ? in0->dims[in0->rank - 1 - i] : 1;
        int32_t c = i < in1->rank ? in1->dims[in1->rank - 1 - i] : 1;
        if ((a != od && a != 1) || (c != od && c != 1)) return EP_RT_ERR_SHAPE;
        if (od != (a > c ? a : c)) return EP_RT_ERR_SHAPE;
      }
      op->depth = elements(in0) == elements(out) && elements(in1) == elements(out); /* no broadcast */
      if (EP_F32_BIN_ON && in0->dtype == EP_DT_FLOAT32) {
        if (in1->dtype != EP_DT_FLOAT32 || out->dtype != EP_DT_FLOAT32) return EP_RT_ERR_DTYPE;
        op->kind = builtin == EP_OP_ADD ? EP_K_ADD_F32 : (builtin == EP_OP_SUB ? EP_K_SUB_F32 : EP_K_MUL_F32);
        return act_range_f(op->act, op);
      }
      if (EP_ELEM16_ON && in0->dtype == EP_DT_INT16) return ep_elem16_prepare(m, op, builtin);
      if (in0->dtype != EP_DT_INT8 || in1->dtype != EP_DT_INT8 || out->dtype != EP_DT_INT8) return EP_RT_ERR_DTYPE;
      if (!is_q8(in0) || !is_q8(in1) || !is_q8(out) || !zp8(in0) || !zp8(in1) || !zp8(out)) return EP_RT_ERR_QUANT;
      op->p.bin.neg_zp_a = -in0->zero_point;
      op->p.bin.neg_zp_b = -in1->zero_point;
      op->p.bin.zp_out = out->zero_point;
      if (builtin == EP_OP_MUL) {
        op->kind = EP_K_MUL_I8;
        ep_quantize_ratio(in0->scale, in1->scale, out->scale, 0, &op->mult[0], &op->shift[0]);
      } else {
        /* Ratios of double quotients (twice = 2 max, exact) for ADD and SUB alike: PyPI tflite-micro's SUB gives
         * these bytes, not those of the float quotients its sources show (tests/runtime/test_ops_vs_tflm.py). */
        const float mx = in0->scale > in1->scale ? in0->scale : in1->scale;
        op->kind = builtin == EP_OP_ADD ? EP_K_ADD_I8 : EP_K_SUB_I8;
        ep_quantize_ratio(in0->scale, 1.0f, mx, -1, &op->mult[0], &op->shift[0]);
        ep_quantize_ratio(in1->scale, 1.0f, mx, -1, &op->mult[1], &op->shift[1]);
        ep_quantize_ratio(mx, 1.0f, out->scale, -19, &op->mult[2], &op->shift[2]);
      }
      if (op->shift[0] > 0 || op->shift[1] > 0 || op->shift[2] > 0) return EP_RT_ERR_QUANT;
      return ep_act_range_q(op->act, out, &op->act_min, &op->act_max);
    }
    case EP_OP_LOGISTIC:
    case EP_OP_TANH: {
      if (op->n_in != 1 || op->n_out != 1) return EP_RT_ERR_OP;
      if (elements(in0) != elements(out)) return EP_RT_ERR_SHAPE;
      if (in0->dtype == EP_DT_FLOAT32 && out->dtype == EP_DT_FLOAT32) {
        op->kind = builtin == EP_OP_LOGISTIC ? EP_K_LOGISTIC_F32 : EP_K_TANH_F32;
        return 0;
      }
      if (EP_ELEM16_ON && in0->dtype == EP_DT_INT16) return ep_elem16_prepare(m, op, builtin);
      if (in0->dtype != EP_DT_INT8 || out->dtype != EP_DT_INT8) return EP_RT_ERR_DTYPE;
      if (!is_q8(in0) || !is_q8(out) || !zp8(in0)) return EP_RT_ERR_QUANT;
      /* The fixed-point kernels produce exactly these output quantisations. */
      if (builtin == EP_OP_LOGISTIC && (out->zero_point != -128 || out->scale != 1.0f / 256.0f)) return EP_RT_ERR_QUANT;
      if (builtin == EP_OP_TANH && (out->zero_point != 0 || out->scale != 1.0f / 128.0f)) return EP_RT_ERR_QUANT;
      {
        /* Input rescaled to Q4.27: real multiplier = scale * 2^27, split into Q31 mantissa + left shift. */
        int e = 0;
        const int32_t qf = ep_ratio_q31(in0->scale, 1.0f, 1.0f, 27, &e); /* frexp/round of scale * 2^27: exact */
        if (e > 30 || e < -30) return EP_RT_ERR_QUANT;
        op->mult[0] = qf;
        op->shift[0] = e;
        /* floor(15 * 2^27 / 2^e); a radius beyond int32 (scale < 2^-28) saturates, as a double-to-int conversion */
        op->p.act.radius = e <= 27 ? (e >= 0 ? 15 << (27 - e) : INT32_MAX) : 15 >> (e - 27);
      }
      op->p.act.zp_in = in0->zero_point;
      op->kind = builtin == EP_OP_LOGISTIC ? EP_K_LOGISTIC_I8 : EP_K_TANH_I8;
      return 0;
    }
    case EP_OP_RELU:
    case EP_OP_RELU6:
      if (op->n_in != 1 || op->n_out != 1) return EP_RT_ERR_OP;
      if (in0->dtype != EP_DT_FLOAT32 || out->dtype != EP_DT_FLOAT32) return EP_RT_ERR_DTYPE;
      if (elements(in0) != elements(out)) return EP_RT_ERR_SHAPE;
      op->kind = EP_K_RELU_F32;
      return act_range_f(builtin == EP_OP_RELU ? EP_ACT_RELU : EP_ACT_RELU6, op);
    case EP_OP_RESHAPE:
      if (op->n_in < 1 || op->n_in > 2 || op->n_out != 1) return EP_RT_ERR_OP;
      if (in0->dtype != out->dtype) return EP_RT_ERR_DTYPE;
      if (in0->bytes != out->bytes) return EP_RT_ERR_SHAPE;
      if (in0->has_quant && out->has_quant && (in0->scale != out->scale || in0->zero_point != out->zero_point))
        return EP_RT_ERR_QUANT;
      op->n_in = 1; /* the shape operand is already folded into the output tensor's shape */
      op->kind = EP_K_COPY;
      return 0;
    default:
      return EP_RT_ERR_OP;
  }
}

/* Lifetimes in op order. A graph input starts at op 0 and here ends at its last reader (input_lifetimes
 * settles it once the run list is final); graph outputs live to the end of the invoke. */
EP_COLD static int compute_lifetimes(ep_model_t *m) {
  uint32_t i, k;
  int16_t last = (int16_t)(m->num_ops ? m->num_ops - 1 : 0);
  for (i = 0; i < m->num_tensors; i++) {
    m->tensors[i].first_use = -1;
    m->tensors[i].last_use = -1;
  }
  for (i = 0; i < m->num_inputs; i++) {
    ep_tensor_t *t = &m->tensors[m->inputs[i]];
    if (t->is_const) return EP_RT_ERR_GRAPH;
    t->first_use = 0;
    t->last_use = 0;
  }
  for (i = 0; i < m->num_ops; i++) {
    ep_op_t *op = &m->ops[i];
    for (k = 0; k < op->n_in; k++) {
      ep_tensor_t *t;
      if (op->in[k] < 0) continue;
      t = &m->tensors[op->in[k]];
      if (t->is_const) continue;
      if (t->first_use < 0) return EP_RT_ERR_GRAPH; /* read before any op wrote it */
      if (t->last_use < (int16_t)i) t->last_use = (int16_t)i;
    }
    for (k = 0; k < op->n_out; k++) {
      ep_tensor_t *t = &m->tensors[op->out[k]];
      if (t->is_const || t->first_use >= 0) return EP_RT_ERR_GRAPH; /* written twice or a constant */
      t->first_use = (int16_t)i;
      t->last_use = (int16_t)i;
    }
  }
  for (i = 0; i < m->num_outputs; i++) {
    ep_tensor_t *t = &m->tensors[m->outputs[i]];
    if (t->is_const || t->first_use < 0) return EP_RT_ERR_GRAPH;
    t->last_use = last;
  }
  return 0;
}

static uint32_t align_up(uint32_t v) { return (v + (EP_ALIGN - 1u)) & ~(EP_ALIGN - 1u); }

/* Where a graph input's lifetime ends. With EP_RT_INIT_CONSUME_INPUTS in single-step mode: at its last reader, as
 * TFLM plans it, so later activations may reuse its bytes (an invoke consumes its inputs). Otherwise, and in
 * sequence mode (`whole`: the streamed and recurrent inputs are rewritten between steps, the others are set once
 * for all steps), at the end of the invoke. A fused GRU/LSTM op reads its x, h (and c) at its own index (ep_rnn_reads). */
EP_COLD static void input_lifetimes(ep_model_t *m, int whole) {
  const int16_t end = (int16_t)(m->num_ops - 1);
  uint32_t i, j, k;
  for (i = 0; i < m->num_inputs; i++) {
    const int16_t ti = m->inputs[i];
    int16_t last = 0;
    for (j = 0; j < m->num_ops; j++) {
      const ep_op_t *op = &m->ops[j];
      int reads = 0;
      for (k = 0; k < op->n_in; k++) reads |= op->in[k] == ti;
      if (ep_is_rnn(op->kind)) {
        int16_t t[3];
        const uint32_t nr = ep_rnn_reads(op, t);
        for (k = 0; k < nr; k++) reads |= t[k] == ti;
      }
      if (reads) last = (int16_t)j;
    }
    for (j = 0; j < m->num_outputs; j++)
      if (m->outputs[j] == ti) last = end;
    m->tensors[ti].last_use = (whole || !(m->flags & EP_RT_INIT_CONSUME_INPUTS)) ? end : last;
  }
}

/* One block the planner places (a tensor, or an op's temporary): aligned size and op-order lifetime. */
typedef struct {
  uint32_t size;
  int16_t first, last;
} ep_span_t;

/* Lowest offset where `t` overlaps none of the placed blocks `order[0..n)` (offsets `off`) whose lifetime
 * overlaps its own: TFLM's GreedyMemoryPlanner rule. */
EP_COLD static uint32_t lowest_fit(const ep_span_t *sp, const uint16_t *order, uint32_t n, const uint32_t *off,
                           const ep_span_t *t) {
  uint32_t j, cand = 0;
  int moved = 1;
  while (moved) {
    moved = 0;
    for (j = 0; j < n; j++) {
      const ep_span_t *o = &sp[order[j]];
      const uint32_t os = off[order[j]], oe = os + o->size;
      if (o->last < t->first || t->last < o->first) continue;
      if (cand < oe && os < cand + t->size) {
        cand = oe;
        moved = 1;
      }
    }
  }
  return cand;
}

/* Bytes of the shared temporary (m->fc_tmp: FC/CONV input widened, im2col patch) the op needs on this core. */
EP_COLD static uint32_t op_tmp_bytes(const ep_model_t *m, const ep_op_t *op) {
  if (op->fused) return 0;
  if (ep_is_rnn(op->kind)) return m->fc_tmp_bytes; /* its h widened like an FC input (DSP builds) */
  if (op->kind == EP_K_FC_I8) return ep_fc_op_tmp_bytes(op);
  if (EP_MIXED_ON && ep_is_mixed_kind(op->kind)) return ep_fc_mixed_tmp_bytes(op);
  return ep_conv_tmp_bytes(m, op);
}

/* Plans the activation tensors from `base`: greedy first fit, largest first, by size and by size x lifetime,
 * the smaller plan kept (the choice depends on the tensors only, so it is the same on every core). Then each op's
 * temporary (live during that op only; invoke points m->fc_tmp at it) goes to the lowest offset free of the
 * tensors live at the op: a core whose temporaries are no larger never plans a larger arena, and one whose are
 * larger by at most D plans at most D more. */
EP_COLD static int plan_arena(ep_model_t *m, uint32_t base, uint32_t avail) {
  ep_span_t sp[EP_RT_MAX_TENSORS];
  uint16_t order[EP_RT_MAX_TENSORS];
  uint32_t off[EP_RT_MAX_TENSORS];
  const uint32_t nt = m->num_tensors;
  uint32_t n = 0, i, j, how, best_how = 0, high = 0xFFFFFFFFu;
  for (how = 0; how < 3; how++) { /* the third pass repeats the best order */
    const uint32_t h = how < 2 ? how : best_how;
    uint32_t top = 0;
    n = 0;
    for (i = 0; i < nt; i++) {
      const ep_tensor_t *t = &m->tensors[i];
      if (t->is_const || t->first_use < 0) continue;
      sp[i].size = align_up(t->bytes);
      sp[i].first = t->first_use;
      sp[i].last = t->last_use;
      order[n++] = (uint16_t)i;
    }
    for (i = 1; i < n; i++) { /* insertion sort, descending; ties by index keep the plan deterministic */
      const uint16_t v = order[i];
      const uint64_t kv = (uint64_t)sp[v].size * (h ? (uint64_t)(sp[v].last - sp[v].first + 1) : 1u);
      j = i;
      while (j > 0 && (uint64_t)sp[order[j - 1]].size *
                              (h ? (uint64_t)(sp[order[j - 1]].last - sp[order[j - 1]].first + 1) : 1u) < kv) {
        order[j] = order[j - 1];
        j--;
      }
      order[j] = v;
    }
    for (i = 0; i < n; i++) {
      off[order[i]] = lowest_fit(sp, order, i, off, &sp[order[i]]);
      if (off[order[i]] + sp[order[i]].size > top) top = off[order[i]] + sp[order[i]].size;
    }
    if (how == 2 || top < high) {
      high = top;
      best_how = how;
    }
  }
  for (i = 0; i < m->num_ops; i++) {
    ep_op_t *op = &m->ops[i];
    ep_span_t t;
    uint32_t o;
    op->tmp = NULL;
    t.size = align_up(op_tmp_bytes(m, op));
    if (t.size == 0) continue;
    t.first = t.last = (int16_t)i;
    o = lowest_fit(sp, order, n, off, &t);
    if (o + t.size > high) high = o + t.size;
    op->tmp = m->arena + base + o; /* checked against avail below */
  }
  if (high > avail) return EP_RT_ERR_ARENA;
  for (i = 0; i < n; i++) m->tensors[order[i]].data = m->arena + base + off[order[i]];
  m->arena_plan = base + high;
  return 0;
}

/* Where the planned part of the arena starts: the tensor planned at offset 0. */
EP_COLD static uint32_t plan_base(const ep_model_t *m) {
  uint32_t i, lo = m->arena_plan;
  for (i = 0; i < m->num_tensors; i++) {
    const ep_tensor_t *t = &m->tensors[i];
    if (!t->is_const && t->first_use >= 0 && (uint32_t)(t->data - m->arena) < lo) lo = (uint32_t)(t->data - m->arena);
  }
  return lo;
}

EP_COLD int ep_model_plan_inputs(ep_model_t *m, int whole) {
  const uint32_t base = plan_base(m);
  int st;
  input_lifetimes(m, whole);
  st = plan_arena(m, base, m->arena_len - base);
  m->arena_used = m->arena_plan;
  return st;
}

EP_COLD static int load(ep_model_t *m, const ep_fb_t *fb) {
  ep_fb_table_t model, sg, t;
  ep_fb_vec_t opcodes, subgraphs, buffers, tensors, ins, outs, ops;
  uint32_t root, version, i, k, persist = 0, base;
  if (fb->len < 8) return EP_RT_ERR_TRUNCATED;
  if (memcmp(fb->b + 4, "TFL3", 4) != 0) return EP_RT_ERR_IDENTIFIER;
  TRY(ep_fb_u32(fb, 0, &root));
  if (root >= fb->len) return EP_RT_ERR_TRUNCATED;
  TRY(ep_fb_table_at(fb, root, &model));
  TRY(ep_fb_scalar(fb, &model, F_MODEL_VERSION, 4, 0, &version));
  if (version != 3) return EP_RT_ERR_IDENTIFIER;
  TRY(ep_fb_vec(fb, &model, F_MODEL_OPCODES, 4, &opcodes));
  TRY(ep_fb_vec(fb, &model, F_MODEL_SUBGRAPHS, 4, &subgraphs));
  TRY(ep_fb_vec(fb, &model, F_MODEL_BUFFERS, 4, &buffers));
  if (subgraphs.n != 1) return EP_RT_ERR_SUBGRAPHS;
  TRY(ep_fb_vec_table(fb, &subgraphs, 0, &sg));
  TRY(ep_fb_vec(fb, &sg, F_SG_TENSORS, 4, &tensors));
  TRY(ep_fb_vec(fb, &sg, F_SG_INPUTS, 4, &ins));
  TRY(ep_fb_vec(fb, &sg, F_SG_OUTPUTS, 4, &outs));
  TRY(ep_fb_vec(fb, &sg, F_SG_OPERATORS, 4, &ops));
  if (tensors.n > EP_RT_MAX_TENSORS || ops.n > EP_RT_MAX_OPS || ins.n > EP_RT_MAX_IO || outs.n > EP_RT_MAX_IO)
    return EP_RT_ERR_LIMITS;
  if (ops.n == 0 || ins.n == 0 || outs.n == 0) return EP_RT_ERR_GRAPH;
  m->num_tensors = (uint16_t)tensors.n;
  m->num_ops = (uint16_t)ops.n;
  m->num_inputs = (uint16_t)ins.n;
  m->num_outputs = (uint16_t)outs.n;
  for (i = 0; i < tensors.n; i++) {
    TRY(ep_fb_vec_table(fb, &tensors, i, &t));
    TRY(parse_tensor(m, fb, &buffers, &t, &m->tensors[i]));
  }
  for (i = 0; i < ins.n; i++) {
    int32_t v = ep_fb_vec_i32(fb, &ins, i);
    if (v < 0 || (uint32_t)v >= tensors.n) return EP_RT_ERR_GRAPH;
    m->inputs[i] = (int16_t)v;
  }
  for (i = 0; i < outs.n; i++) {
    int32_t v = ep_fb_vec_i32(fb, &outs, i);
    if (v < 0 || (uint32_t)v >= tensors.n) return EP_RT_ERR_GRAPH;
    m->outputs[i] = (int16_t)v;
  }
  for (i = 0; i < ops.n; i++) {
    ep_fb_table_t opt, oc, opts = {0, 0, 0, 0};
    ep_fb_vec_t oin, oout;
    uint32_t opcode_idx, builtin, deprecated, custom, opts_type;
    int has_opts;
    ep_op_t *op = &m->ops[i];
    TRY(ep_fb_vec_table(fb, &ops, i, &opt));
    TRY(ep_fb_scalar(fb, &opt, F_OP_OPCODE, 4, 0, &opcode_idx));
    if (opcode_idx >= opcodes.n) return EP_RT_ERR_BOUNDS;
    TRY(ep_fb_vec_table(fb, &opcodes, opcode_idx, &oc));
    TRY(ep_fb_scalar(fb, &oc, F_OPCODE_DEPRECATED, 1, 0, &deprecated));
    TRY(ep_fb_scalar(fb, &oc, F_OPCODE_BUILTIN, 4, 0, &builtin));
    TRY(ep_fb_ref(fb, &oc, F_OPCODE_CUSTOM, &custom));
    if (custom != 0) return EP_RT_ERR_OP;
    /* The 8-bit deprecated code and the 32-bit code coexist; the effective code is the larger. */
    deprecated = (uint32_t)(int32_t)(int8_t)deprecated;
    if ((int32_t)deprecated > (int32_t)builtin) builtin = deprecated;
    TRY(ep_fb_vec(fb, &opt, F_OP_INPUTS, 4, &oin));
    TRY(ep_fb_vec(fb, &opt, F_OP_OUTPUTS, 4, &oout));
    if (oin.n == 0 || oin.n > EP_RT_MAX_OP_INPUTS || oout.n == 0 || oout.n > EP_RT_MAX_OP_OUTPUTS) return EP_RT_ERR_OP;
    op->n_in = (uint8_t)oin.n;
    op->n_out = (uint8_t)oout.n;
    for (k = 0; k < oin.n; k++) {
      int32_t v = ep_fb_vec_i32(fb, &oin, k);
      if (v < -1 || v >= (int32_t)tensors.n || (v == -1 && k != 2)) return EP_RT_ERR_GRAPH;
      op->in[k] = (int16_t)v;
    }
    if (op->in[0] < 0) return EP_RT_ERR_GRAPH;
    for (k = 0; k < oout.n; k++) {
      int32_t v = ep_fb_vec_i32(fb, &oout, k);
      if (v < 0 || v >= (int32_t)tensors.n) return EP_RT_ERR_GRAPH;
      op->out[k] = (int16_t)v;
    }
    TRY(ep_fb_scalar(fb, &opt, F_OP_OPTS_TYPE, 1, 0, &opts_type));
    TRY(ep_fb_subtable(fb, &opt, F_OP_OPTS, &opts, &has_opts));
    TRY(prepare_op(m, op, builtin, fb, &opts, has_opts, opts_type));
    op->builtin = (uint8_t)builtin;
    op->scratch_bytes = op_scratch_bytes(m, op);
    if (op->kind != EP_K_FC_I8) persist += align_up(op->scratch_bytes); /* FC: placed once fusion is known */
    persist += align_up(ep_conv_int4_bytes(m, op));
    if (op->kind == EP_K_FC_I8 && ep_fc_tmp_bytes(op->depth) > m->fc_tmp_bytes) m->fc_tmp_bytes = ep_fc_tmp_bytes(op->depth);
    if (ep_conv_tmp_bytes(m, op) > m->fc_tmp_bytes) m->fc_tmp_bytes = ep_conv_tmp_bytes(m, op);
    if (EP_MIXED_ON && ep_fc_mixed_tmp_bytes(op) > m->fc_tmp_bytes) m->fc_tmp_bytes = ep_fc_mixed_tmp_bytes(op);
  }
  TRY(compute_lifetimes(m));
  /* Persistent per-op data first, then the planned activations. */
  base = (uint32_t)(((uintptr_t)m->arena + (EP_ALIGN - 1u)) & ~(uintptr_t)(EP_ALIGN - 1u)) - (uint32_t)(uintptr_t)m->arena;
  if (base > m->arena_len || persist > m->arena_len - base) return EP_RT_ERR_ARENA;
  for (i = 0; i < m->num_ops; i++) {
    ep_op_t *op = &m->ops[i];
    if (op->scratch_bytes == 0 || op->kind == EP_K_FC_I8) continue;
    op->scratch = (int32_t *)(void *)(m->arena + base);
    base += align_up(op->scratch_bytes);
  }
  for (i = 0; i < m->num_ops; i++) base += align_up(ep_conv_int4_place(m, &m->ops[i], m->arena + base));
  if (!(m->flags & EP_RT_INIT_NO_FUSE)) {
    uint32_t used = 0;
    TRY(ep_gru_fuse(m, m->arena + base, m->arena_len - base, &used));
    base += used;
  }
  for (i = 0; i < m->num_ops; i++) {
    ep_op_t *op = &m->ops[i];
    const int32_t *mb;
    if (op->kind != EP_K_FC_I8) continue;
    if ((mb = ep_fc_model_bias(m, op)) != NULL) { /* no folded copy: see ep_fc_model_bias */
      op->scratch = (int32_t *)(uintptr_t)mb;
      op->scratch_bytes = 0;
      op->p.fc.zp_widen = (int16_t)op->p.fc.zp_in;
      continue;
    }
    if (align_up(op->scratch_bytes) > m->arena_len - base) return EP_RT_ERR_ARENA;
    op->scratch = (int32_t *)(void *)(m->arena + base);
    base += align_up(op->scratch_bytes);
  }
  for (i = 0; i < m->num_ops; i++) {
    ep_op_t *op = &m->ops[i];
    if (op->kind != EP_K_FC_I8 && op->kind != EP_K_FC_F32 && op->kind != EP_K_FC_I4 && op->kind != EP_K_FC_I16 &&
        !ep_is_window_kind(op->kind) && op->kind != EP_K_CONV_I16 && op->kind != EP_K_CONV_F32 &&
        op->kind != EP_K_DWCONV_I16)
      op->rows = elements(&m->tensors[op->out[0]]);
    op->fn = ep_kernel_for(op->kind);
    if (op->fn == NULL) {
      if (!op->fused) return EP_RT_ERR_OP; /* a kernel this build left out (ep_kernels.h) */
      op->fn = ep_kernel_for(EP_K_NONE); /* a fused part never runs on its own; a deploy build may lack its kernel */
    }
    if (!op->fused) m->run[m->num_run++] = (uint16_t)i;
  }
  input_lifetimes(m, 0);
  TRY(plan_arena(m, base, m->arena_len - base));
  /* Per-op init data that needs the scratch memory. */
  for (i = 0; i < m->num_ops; i++) {
    ep_op_t *op = &m->ops[i];
    if (op->kind == EP_K_FC_I8 && op->scratch_bytes != 0) {
      const ep_tensor_t *w = &m->tensors[op->in[1]];
      const ep_tensor_t *in0 = &m->tensors[op->in[0]];
      const ep_tensor_t *out = &m->tensors[op->out[0]];
      const ep_tensor_t *b = (op->n_in == 3 && op->in[2] >= 0) ? &m->tensors[op->in[2]] : NULL;
      uint32_t r, d;
      for (r = 0; r < op->rows; r++) {
        /* Fold the input zero point into the bias: sum_d (x_d - zp) w_d = sum x w - zp sum w. */
        int32_t s = 0;
        const int8_t *wr = (const int8_t *)w->data + (size_t)r * op->depth;
        for (d = 0; d < op->depth; d++) s += wr[d];
        op->scratch[r] = (int32_t)((b ? ep_le32(b->data + 4u * r) : 0u) - (uint32_t)op->p.fc.zp_in * (uint32_t)s);
        if (op->p.fc.per_channel)
          ep_fc_chan_multiplier(in0, w, out, r, &op->scratch[op->rows + r], &op->scratch[2u * op->rows + r]);
      }
    } else if (ep_is_window_kind(op->kind)) {
      ep_conv_init(m, op);
    } else if (EP_CONV16_ON && (op->kind == EP_K_CONV_I16 || op->kind == EP_K_DWCONV_I16)) {
      ep_conv16_init(m, op);
    } else if (EP_MIXED_ON && ep_is_mixed_kind(op->kind)) {
      ep_fc_mixed_init(m, op);
    } else if (EP_KIND_ON(EP_K_QUANT_F2I) && op->kind == EP_K_QUANT_F2I && op->scratch_bytes != 0) {
      const ep_tensor_t *out = &m->tensors[op->out[0]];
      ep_quant_table_init(op->scratch, out->scale, out->zero_point);
    } else if (EP_KIND_ON(EP_K_DEQUANT_I8) && op->kind == EP_K_DEQUANT_I8 && op->scratch_bytes != 0) {
      const ep_tensor_t *in0 = &m->tensors[op->in[0]];
      ep_dequant_table_init((uint32_t *)(void *)op->scratch, in0->scale, in0->zero_point);
    } else if (op->kind == EP_K_LOGISTIC_I8 || op->kind == EP_K_TANH_I8) {
      /* An int8 -> int8 function with init-time constants: evaluating the exact fixed-point routine
       * once per possible input makes invoke a lookup, indexed by the input byte. */
      int8_t *tbl = (int8_t *)(void *)op->scratch;
      const int is_logistic = op->kind == EP_K_LOGISTIC_I8;
      int32_t x;
      for (x = -128; x <= 127; x++) {
        int32_t d = x - op->p.act.zp_in;
        tbl[(uint8_t)(int8_t)x] = is_logistic ? ep_logistic_i8(d, op->p.act.radius, op->mult[0], op->shift[0])
                                              : ep_tanh_i8(d, op->p.act.radius, op->mult[0], op->shift[0]);
      }
    }
  }
  for (i = 0; i < m->num_ops; i++) /* after the biases are folded: ep_fc_rq_prepare bounds the accumulator from them */
    if (m->ops[i].kind == EP_K_FC_I8 && !m->ops[i].fused) ep_fc_rq_prepare(&m->ops[i]);
  ep_gru_prepare(m);
  m->arena_used = m->arena_plan;
  return 0;
}

EP_COLD int ep_model_init(ep_model_t *m, const uint8_t *tflite, uint32_t len, uint8_t *arena, uint32_t arena_len) {
  return ep_model_init_ex(m, tflite, len, arena, arena_len, EP_RT_DEFAULT_FLAGS);
}

EP_COLD int ep_model_init_ex(ep_model_t *m, const uint8_t *tflite, uint32_t len, uint8_t *arena, uint32_t arena_len,
                     uint32_t flags) {
  ep_fb_t fb;
  int st;
  if (m == NULL) return EP_RT_ERR_ARG;
  memset(m, 0, sizeof *m);
  if (tflite == NULL || arena == NULL) return EP_RT_ERR_ARG;
  m->flags = flags;
  fb.b = tflite;
  fb.len = len;
  m->fb = tflite;
  m->fb_len = len;
  m->arena = arena;
  m->arena_len = arena_len;
  st = load(m, &fb);
  if (st != 0) {
    uint8_t *a = m->arena;
    uint32_t al = m->arena_len;
    memset(m, 0, sizeof *m); /* a failed model keeps no half-initialised state */
    m->arena = a;
    m->arena_len = al;
    return st;
  }
  m->steps = 1;
  m->magic = EP_MAGIC;
  return EP_RT_OK;
}

uint32_t ep_model_num_inputs(const ep_model_t *m) { return (m && m->magic == EP_MAGIC) ? m->num_inputs : 0; }
uint32_t ep_model_num_outputs(const ep_model_t *m) { return (m && m->magic == EP_MAGIC) ? m->num_outputs : 0; }
uint32_t ep_model_arena_used(const ep_model_t *m) { return (m && m->magic == EP_MAGIC) ? m->arena_used : 0; }
uint64_t ep_model_macs(const ep_model_t *m) { return (m && m->magic == EP_MAGIC) ? m->macs * m->steps : 0; }
uint32_t ep_model_num_ops(const ep_model_t *m) { return (m && m->magic == EP_MAGIC) ? m->num_ops : 0; }
uint32_t ep_model_num_fused(const ep_model_t *m) { return (m && m->magic == EP_MAGIC) ? m->num_fused : 0; }

const char *ep_rt_status_str(int status) {
  switch (status) {
    case EP_RT_OK: return "ok";
    case EP_RT_ERR_ARG: return "invalid argument";
    case EP_RT_ERR_TRUNCATED: return "model truncated";
    case EP_RT_ERR_IDENTIFIER: return "not a TFLite v3 flatbuffer";
    case EP_RT_ERR_BOUNDS: return "flatbuffer offset out of bounds";
    case EP_RT_ERR_SUBGRAPHS: return "model must have exactly one subgraph";
    case EP_RT_ERR_OP: return "unsupported operator or option";
    case EP_RT_ERR_DTYPE: return "unsupported tensor type for operator";
    case EP_RT_ERR_SHAPE: return "inconsistent tensor shapes";
    case EP_RT_ERR_QUANT: return "missing or unsupported quantisation parameters";
    case EP_RT_ERR_BUFFER: return "constant buffer size mismatch or external buffer";
    case EP_RT_ERR_LIMITS: return "model exceeds runtime limits (tensors/ops/io)";
    case EP_RT_ERR_ARENA: return "arena too small";
    case EP_RT_ERR_STATE: return "model not initialised";
    case EP_RT_ERR_INDEX: return "index out of range";
    case EP_RT_ERR_SEQUENCE: return "invalid sequence configuration";
    case EP_RT_ERR_GRAPH: return "invalid graph (tensor use before definition, double write, bad index)";
    case EP_RT_ERR_RANGE: return "input offset/length out of range";
    default: return "unknown status";
  }
}
