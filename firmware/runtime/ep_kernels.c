/*
 * Element-wise (ADD/SUB/MUL, with numpy broadcasting) and unary kernels (QUANTIZE, DEQUANTIZE,
 * LOGISTIC, TANH, RELU, RESHAPE copy), int8 and float32. int8 arithmetic follows TFLM's reference.
 */
#include <math.h>
#include <string.h>

#include "ep_add.h"
#include "ep_conv16.h"
#include "ep_convf.h"
#include "ep_elem16.h"
#include "ep_fc_mixed.h"
#include "ep_kernels.h"
#include "ep_qmath.h"

static void stf(uint8_t *p, float f) { memcpy(p, &f, 4); }

static int8_t binary_i8(const ep_op_t *op, int8_t a, int8_t b) {
  if (op->kind == EP_K_MUL_I8) return ep_mul_i8(op, a, b);
  return ep_addsub_i8(op, a, b, op->kind == EP_K_SUB_I8);
}

static float binary_f32(const ep_op_t *op, float a, float b) {
  float lo, hi, r;
  memcpy(&lo, &op->act_min, 4);
  memcpy(&hi, &op->act_max, 4);
  r = op->kind == EP_K_ADD_F32 ? a + b : (op->kind == EP_K_SUB_F32 ? a - b : a * b);
  return r < lo ? lo : (r > hi ? hi : r);
}

/* Strides of `t` over the output's dims, right-aligned, 0 where `t` is broadcast. */
static void bcast_strides(const ep_tensor_t *t, const ep_tensor_t *out, uint32_t *st) {
  uint32_t s = 1;
  int i;
  for (i = EP_RT_MAX_DIMS - 1; i >= 0; i--) st[i] = 0;
  for (i = (int)t->rank - 1; i >= 0; i--) {
    int oi = EP_RT_MAX_DIMS - (int)t->rank + i;
    st[oi] = t->dims[i] == 1 ? 0 : s;
    s *= (uint32_t)t->dims[i];
  }
  (void)out;
}

int ep_k_elementwise(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *ta = &m->tensors[op->in[0]], *tb = &m->tensors[op->in[1]], *to = &m->tensors[op->out[0]];
  const int is_f = op->kind == EP_K_ADD_F32 || op->kind == EP_K_SUB_F32 || op->kind == EP_K_MUL_F32;
  const uint32_t n = op->rows;
  uint32_t sa[EP_RT_MAX_DIMS], sb[EP_RT_MAX_DIMS], od[EP_RT_MAX_DIMS], idx[EP_RT_MAX_DIMS];
  uint32_t i;
  int k;
  /* Large same-shape int8 ADD/SUB: ep_add.c (not linked when the build has neither kind). */
  if (op->depth && (EP_KIND_ON(EP_K_ADD_I8) || EP_KIND_ON(EP_K_SUB_I8)) && ep_addsub_i8_tables(m, op)) return 0;
  if (op->depth) { /* same shape (prepare's flag): the common case in GRU cells */
    for (i = 0; i < n; i++) {
      if (is_f) stf(to->data + 4u * i, binary_f32(op, ep_ld_f32(ta->data + 4u * i), ep_ld_f32(tb->data + 4u * i)));
      else ((int8_t *)to->data)[i] = binary_i8(op, ((const int8_t *)ta->data)[i], ((const int8_t *)tb->data)[i]);
    }
    return 0;
  }
  bcast_strides(ta, to, sa);
  bcast_strides(tb, to, sb);
  for (k = 0; k < EP_RT_MAX_DIMS; k++) {
    int src = k - (EP_RT_MAX_DIMS - (int)to->rank);
    od[k] = src >= 0 ? (uint32_t)to->dims[src] : 1u;
    idx[k] = 0;
  }
  for (i = 0; i < n; i++) {
    uint32_t ia = 0, ib = 0;
    for (k = 0; k < EP_RT_MAX_DIMS; k++) {
      ia += idx[k] * sa[k];
      ib += idx[k] * sb[k];
    }
    if (is_f) stf(to->data + 4u * i, binary_f32(op, ep_ld_f32(ta->data + 4u * ia), ep_ld_f32(tb->data + 4u * ib)));
    else ((int8_t *)to->data)[i] = binary_i8(op, ((const int8_t *)ta->data)[ia], ((const int8_t *)tb->data)[ib]);
    for (k = EP_RT_MAX_DIMS - 1; k >= 0; k--) { /* odometer increment over the output index */
      if (++idx[k] < od[k]) break;
      idx[k] = 0;
    }
  }
  return 0;
}

/* float32 -> int8 QUANTIZE: FPU arithmetic where the core has a single-precision FPU, else integer thresholds. */
#if EP_TGT_FPU
#define EP_QUANT_FPU 1
#else
#define EP_QUANT_FPU 0
static uint32_t ld_u32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
#endif

/* TFLM's float -> int8 QUANTIZE of one value, the reference the tables reproduce (run at init only). */
EP_COLD static int32_t quantize_ref(float x, float scale, int32_t zp) {
  float q = roundf(x / scale);
  /* Out-of-range floats saturate before the int conversion, which would otherwise be UB. */
  int32_t v = q >= 2147483520.0f ? INT32_MAX : (q <= -2147483648.0f ? INT32_MIN : (int32_t)q);
  return ep_clamp_i32(ep_add_wrap(v, zp), -128, 127);
}

EP_COLD static float key_float(int32_t key) {
  const uint32_t bits = (uint32_t)ep_float_key((uint32_t)key); /* the key map is its own inverse */
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* Predicates over float keys, false then true as the key grows (NaN keys sit beyond the infinities). */
enum { P_GE_K, P_SAT_HI, P_NOT_SAT_LO };
EP_COLD static int pred(int kind, int32_t key, float scale, int32_t zp, int32_t k) {
  const float x = key_float(key);
  float q;
  if (x != x) return key > 0;
  q = roundf(x / scale);
  if (kind == P_SAT_HI) return q >= 2147483520.0f;
  if (kind == P_NOT_SAT_LO) return !(q <= -2147483648.0f);
  /* Monotone core: the saturated ends count as the extreme int8 values. */
  if (q >= 2147483520.0f) return 1;
  if (q <= -2147483648.0f) return 0;
  return ep_clamp_i32(ep_add_wrap((int32_t)q, zp), -128, 127) >= k;
}

/* Smallest key (over all int32) where the predicate holds; INT32_MAX + 1 is returned as INT32_MAX. */
EP_COLD static int32_t first_key(int kind, float scale, int32_t zp, int32_t k) {
  int64_t lo = INT32_MIN, hi = (int64_t)INT32_MAX + 1; /* pred(lo - 1) false, pred(hi) true by convention */
  while (lo < hi) {
    const int64_t mid = lo + ((hi - lo) >> 1);
    if (pred(kind, (int32_t)mid, scale, zp, k)) hi = mid;
    else lo = mid + 1;
  }
  return hi > INT32_MAX ? INT32_MAX : (int32_t)hi;
}

EP_COLD void ep_quant_table_init(int32_t *thr, float scale, int32_t zp) {
  int32_t k;
  for (k = -127; k <= 127; k++) thr[k + 127] = first_key(P_GE_K, scale, zp, k);
  thr[255] = INT32_MAX;
  thr[EP_QT_KHI] = first_key(P_SAT_HI, scale, zp, 0);
  thr[EP_QT_KLO] = first_key(P_NOT_SAT_LO, scale, zp, 0) - 1;
  thr[EP_QT_VHI] = quantize_ref(INFINITY, scale, zp);
  thr[EP_QT_VLO] = quantize_ref(-INFINITY, scale, zp);
}

/* Integer DEQUANTIZE (no FPU, not v6-M: it has no CLZ) is exact while every result is a normal float: with scale's
 * biased exponent E, the results' exponents lie in [E, E + 9]. */
#define EP_DEQUANT_INT (!EP_TGT_FPU && !EP_TGT_V6M)
uint32_t ep_dequant_table_bytes(float scale) {
  uint32_t b, e;
  memcpy(&b, &scale, 4);
  e = (b >> 23) & 0xffu;
  if (EP_TGT_FPU) return 0;
  return EP_DEQUANT_INT && e >= 1u && e <= 245u ? 0u : EP_DEQUANT_TABLE_BYTES;
}

EP_COLD void ep_dequant_table_init(uint32_t *tbl, float scale, int32_t zp) {
  int32_t x;
  for (x = -128; x <= 127; x++) {
    /* TFLM multiplies in double then rounds to float; scale (24-bit mantissa) times a 9-bit integer is
     * exact in double, so one float multiply rounds identically. */
    const float f = scale * (float)(x - zp);
    memcpy(&tbl[(uint8_t)(int8_t)x], &f, 4);
  }
}

#if EP_RT_F32
static float logistic_f32(float v) {
  /* Same cut-offs as TFLite's reference float kernel: beyond them the result is exact in float. */
  if (v > 16.619047164916992188f) return 1.0f;
  if (v < -9.0f) return expf(v);
  return 1.0f / (1.0f + expf(-v));
}
#endif

/* Unary kernels: one function per kind, reached through ep_kernel_for (no second dispatch at invoke). */
#define UNARY_ARGS                                                                              \
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *to = &m->tensors[op->out[0]];                \
  const uint32_t n = op->rows; /* elements, set at prepare */                                  \
  uint32_t i

#if EP_QUANT_FPU
/* Cores with a single-precision FPU: TFLM's x / scale, then roundf (half away from zero) done as truncate +
 * compare of the exact remainder, so no library call and no data-dependent branch. */
static int k_quant_f2i(const ep_model_t *m, const ep_op_t *op) {
  UNARY_ARGS;
  const float scale = to->scale;
  const int32_t zp = op->p.quant.zp_out;
  const uint8_t *xi = ti->data; /* held in a register: the int8 stores could alias the tensor record */
  int8_t *yo = (int8_t *)to->data;
  for (i = 0; i < n; i++) {
    const float q = ep_ld_f32(xi + 4u * i) / scale;
    int32_t t;
    if (fabsf(q) < 2147483520.0f) {
      const float f = q - (float)(t = (int32_t)q); /* exact: Sterbenz below 2^23, zero above (q integral) */
      t += (int32_t)(f + f); /* |f| < 1: truncating 2f gives +1 iff f >= 0.5, -1 iff f <= -0.5 (2f is exact) */
    } else { /* the reference's saturation of out-of-range conversions (and NaN, as the int8 minimum) */
      t = q > 0.0f ? INT32_MAX : INT32_MIN;
    }
    yo[i] = (int8_t)ep_sat8(ep_add_wrap(t, zp));
  }
  return 0;
}
#else
static int k_quant_f2i(const ep_model_t *m, const ep_op_t *op) {
  /* Integer only: the float -> int8 function is monotone in the float's order key, so 255 thresholds
   * found at init (by the exact float routine, ep_quant_table_init) and 8 branch-free comparisons give
   * its value; the two saturation cuts reproduce the reference's wrap of out-of-range conversions. */
  UNARY_ARGS;
  const int32_t *thr = op->scratch;
  const int32_t k_hi = thr[EP_QT_KHI], k_lo = thr[EP_QT_KLO];
  int8_t *yo = (int8_t *)to->data;
  for (i = 0; i < n; i++) {
    const int32_t key = ep_float_key(ld_u32(ti->data + 4u * i));
    uint32_t idx = 0, step;
    int32_t v;
    for (step = 128u; step; step >>= 1) {
      const int64_t ge = ((int64_t)key - thr[idx + step - 1u]) >> 63; /* -1 if key < thr, else 0 */
      idx += step & ~(uint32_t)ge;
    }
    v = (int32_t)idx - 128;
    if (key >= k_hi) v = thr[EP_QT_VHI];
    if (key <= k_lo) v = thr[EP_QT_VLO];
    yo[i] = (int8_t)v;
  }
  return 0;
}
#endif

static int k_requant_i8(const ep_model_t *m, const ep_op_t *op) {
  UNARY_ARGS;
  const int8_t *xi = (const int8_t *)ti->data;
  int8_t *yo = (int8_t *)to->data;
  for (i = 0; i < n; i++)
    yo[i] = (int8_t)ep_clamp_i32(ep_mbqm(xi[i] - op->p.quant.zp_in, op->mult[0], op->shift[0]) + op->p.quant.zp_out,
                                     -128, 127);
  return 0;
}

static int k_dequant_i8(const ep_model_t *m, const ep_op_t *op) {
#if EP_QUANT_FPU
  /* ep_dequant_table_init's expression per element (same bytes): no 1 KB table in the arena. */
  UNARY_ARGS;
  const float scale = ti->scale;
  const int32_t zp = ti->zero_point;
  const int8_t *xi = (const int8_t *)ti->data;
  float *yf = (float *)(void *)to->data; /* an arena tensor: 16-byte aligned, so VSTR */
  for (i = 0; i + 4u <= n; i += 4u) { /* four per pass: the loop's compare and branch are a fifth of the work */
    yf[i] = scale * (float)(xi[i] - zp);
    yf[i + 1u] = scale * (float)(xi[i + 1u] - zp);
    yf[i + 2u] = scale * (float)(xi[i + 2u] - zp);
    yf[i + 3u] = scale * (float)(xi[i + 3u] - zp);
  }
  for (; i < n; i++) yf[i] = scale * (float)(xi[i] - zp);
  return 0;
#else
  /* 256 results computed at init by the float routine (ep_dequant_table_init): a lookup, no float. */
  UNARY_ARGS;
#if EP_DEQUANT_INT
  if (op->scratch_bytes == 0) { /* no table (ep_dequant_table_bytes): the float product in integers */
    /* scale * d is scale's 24-bit significand times |d| <= 255: exact in 32 bits. Normalised by CLZ and rounded to
     * 24 bits, to nearest with ties to even (the float multiply's rounding), it is the float TFLM's double product
     * rounds to; d = 0 gives +0. */
    const int8_t *xi = (const int8_t *)ti->data;
    const int32_t zp = ti->zero_point;
    uint32_t sb, mant, e;
    memcpy(&sb, &ti->scale, 4);
    mant = (sb & 0x7fffffu) | 0x800000u;
    e = (sb >> 23) & 0xffu;
    for (i = 0; i < n; i++) {
      const int32_t d = xi[i] - zp;
      const uint32_t neg = (uint32_t)(d >> 31), a = ((uint32_t)d ^ neg) - neg, p = mant * a;
      const uint32_t z = (uint32_t)__builtin_clz(p | 0x800000u), q = p << z; /* p >= 2^23 unless d == 0 */
      uint32_t mm = q >> 8, bits;
      mm += ((q & 0xffu) + (mm & 1u) + 0x7fu) >> 8;
      bits = ((neg & 0x80000000u) | ((e + 7u - z) << 23)) + mm;
      bits &= -(uint32_t)(a != 0u);
      memcpy(to->data + 4u * i, &bits, 4);
    }
    return 0;
  }
#endif
  const uint32_t *tbl = (const uint32_t *)(const void *)op->scratch;
  const uint8_t *xu = (const uint8_t *)ti->data;
  for (i = 0; i < n; i++) {
    const uint32_t v = tbl[xu[i]];
    memcpy(to->data + 4u * i, &v, 4);
  }
  return 0;
#endif
}

static int k_table_i8(const ep_model_t *m, const ep_op_t *op) {
  UNARY_ARGS;
  const int8_t *tbl = (const int8_t *)(const void *)op->scratch; /* filled at init, see ep_model.c */
  const uint8_t *xu = (const uint8_t *)ti->data;
  int8_t *yo = (int8_t *)to->data;
  for (i = 0; i < n; i++) yo[i] = tbl[xu[i]];
  return 0;
}

#if EP_RT_F32
static int k_logistic_f32(const ep_model_t *m, const ep_op_t *op) {
  UNARY_ARGS;
  for (i = 0; i < n; i++) stf(to->data + 4u * i, logistic_f32(ep_ld_f32(ti->data + 4u * i)));
  return 0;
}

static int k_tanh_f32(const ep_model_t *m, const ep_op_t *op) {
  UNARY_ARGS;
  for (i = 0; i < n; i++) stf(to->data + 4u * i, tanhf(ep_ld_f32(ti->data + 4u * i)));
  return 0;
}

static int k_relu_f32(const ep_model_t *m, const ep_op_t *op) {
  UNARY_ARGS;
  float lo, hi;
  memcpy(&lo, &op->act_min, 4);
  memcpy(&hi, &op->act_max, 4);
  for (i = 0; i < n; i++) {
    float v = ep_ld_f32(ti->data + 4u * i);
    stf(to->data + 4u * i, v < lo ? lo : (v > hi ? hi : v));
  }
  return 0;
}
#endif /* EP_RT_F32 */

static int k_copy(const ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *ti = &m->tensors[op->in[0]], *to = &m->tensors[op->out[0]];
  if (to->data != ti->data) memmove(to->data, ti->data, to->bytes);
  return 0;
}

static int k_none(const ep_model_t *m, const ep_op_t *op) {
  (void)m;
  (void)op;
  return EP_RT_ERR_OP;
}

ep_kernel_fn ep_kernel_for(uint8_t kind) {
  switch (kind) {
    case EP_K_QUANT_F2I: return EP_KIND_FN(EP_K_QUANT_F2I, k_quant_f2i);
    case EP_K_REQUANT_I8: return EP_KIND_FN(EP_K_REQUANT_I8, k_requant_i8);
    case EP_K_DEQUANT_I8: return EP_KIND_FN(EP_K_DEQUANT_I8, k_dequant_i8);
    case EP_K_FC_I8: return EP_KIND_FN(EP_K_FC_I8, ep_k_fc_i8);
    case EP_K_FC_I4: return EP_KIND_FN(EP_K_FC_I4, ep_k_fc_i4);
    case EP_K_FC_I16: return EP_KIND_FN(EP_K_FC_I16, ep_k_fc_i16);
    case EP_K_REQUANT_I16: return EP_KIND_FN(EP_K_REQUANT_I16, ep_k_requant_i16);
    case EP_K_ADD_I16: return EP_KIND_FN(EP_K_ADD_I16, ep_k_addsub_i16);
    case EP_K_SUB_I16: return EP_KIND_FN(EP_K_SUB_I16, ep_k_addsub_i16);
    case EP_K_MUL_I16: return EP_KIND_FN(EP_K_MUL_I16, ep_k_mul_i16);
    case EP_K_LOGISTIC_I16: return EP_KIND_FN(EP_K_LOGISTIC_I16, ep_k_logistic_i16);
    case EP_K_TANH_I16: return EP_KIND_FN(EP_K_TANH_I16, ep_k_tanh_i16);
#if EP_RT_F32
    case EP_K_FC_F32: return EP_KIND_FN(EP_K_FC_F32, ep_k_fc_f32);
#endif
    case EP_K_ADD_I8: return EP_KIND_FN(EP_K_ADD_I8, ep_k_elementwise);
    case EP_K_SUB_I8: return EP_KIND_FN(EP_K_SUB_I8, ep_k_elementwise);
    case EP_K_MUL_I8: return EP_KIND_FN(EP_K_MUL_I8, ep_k_elementwise);
    case EP_K_ADD_F32: return EP_KIND_FN(EP_K_ADD_F32, ep_k_elementwise);
    case EP_K_SUB_F32: return EP_KIND_FN(EP_K_SUB_F32, ep_k_elementwise);
    case EP_K_MUL_F32: return EP_KIND_FN(EP_K_MUL_F32, ep_k_elementwise);
    case EP_K_LOGISTIC_I8: return EP_KIND_FN(EP_K_LOGISTIC_I8, k_table_i8);
    case EP_K_TANH_I8: return EP_KIND_FN(EP_K_TANH_I8, k_table_i8);
#if EP_RT_F32
    case EP_K_LOGISTIC_F32: return EP_KIND_FN(EP_K_LOGISTIC_F32, k_logistic_f32);
    case EP_K_TANH_F32: return EP_KIND_FN(EP_K_TANH_F32, k_tanh_f32);
    case EP_K_RELU_F32: return EP_KIND_FN(EP_K_RELU_F32, k_relu_f32);
#else
    case EP_K_FC_F32:
    case EP_K_LOGISTIC_F32:
    case EP_K_TANH_F32:
    case EP_K_RELU_F32: return NULL; /* left out of this build: refused at load */
#endif
    case EP_K_COPY: return EP_KIND_FN(EP_K_COPY, k_copy);
#if EP_RT_GRU
    case EP_K_GRU: return EP_KIND_FN(EP_K_GRU, ep_k_gru);
#if EP_RT_LSTM
    case EP_K_LSTM: return EP_KIND_FN(EP_K_LSTM, ep_k_lstm);
#endif
#endif
#if EP_RT_CONV
    case EP_K_CONV_I8: return EP_KIND_FN(EP_K_CONV_I8, ep_k_conv_i8);
    case EP_K_DWCONV_I8: return EP_KIND_FN(EP_K_DWCONV_I8, ep_k_dwconv_i8);
    case EP_K_AVGPOOL_I8: return EP_KIND_FN(EP_K_AVGPOOL_I8, ep_k_pool_i8);
    case EP_K_MAXPOOL_I8: return EP_KIND_FN(EP_K_MAXPOOL_I8, ep_k_pool_i8);
    case EP_K_SOFTMAX_I8: return EP_KIND_FN(EP_K_SOFTMAX_I8, ep_k_softmax_i8);
    case EP_K_CONV_I16: return EP_KIND_FN(EP_K_CONV_I16, ep_k_conv_i16);
    case EP_K_MAXPOOL_I16: return EP_KIND_FN(EP_K_MAXPOOL_I16, ep_k_pool_i16);
    case EP_K_AVGPOOL_I16: return EP_KIND_FN(EP_K_AVGPOOL_I16, ep_k_pool_i16);
    case EP_K_DWCONV_I16: return EP_KIND_FN(EP_K_DWCONV_I16, ep_k_dwconv_i16);
    case EP_K_SOFTMAX_I16: return EP_KIND_FN(EP_K_SOFTMAX_I16, ep_k_softmax_i16);
#if EP_RT_F32
    case EP_K_CONV_F32: return EP_KIND_FN(EP_K_CONV_F32, ep_k_conv_f32);
    case EP_K_MAXPOOL_F32: return EP_KIND_FN(EP_K_MAXPOOL_F32, ep_k_pool_f32);
    case EP_K_AVGPOOL_F32: return EP_KIND_FN(EP_K_AVGPOOL_F32, ep_k_pool_f32);
#endif
#endif
    default: return k_none;
  }
}
