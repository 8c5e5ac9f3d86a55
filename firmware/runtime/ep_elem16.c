/*
 * int16 element-wise ops of a 16x8 recurrent cell (issue 30): the converter's 16x8 GRU/LSTM step runs its gates as
 * int16 ADD, SUB, MUL, LOGISTIC and TANH. TFLM's int16 reference arithmetic is the oracle (tests/runtime/
 * test_elem16_vs_tflm.py: LOGISTIC/TANH on every int16 input, ADD/SUB/MUL on random operands and scales):
 * - ADD/SUB: TFLM's general-scale path (not the power-of-two one): both inputs shifted left by 15 (20 for int8),
 *   rescaled to twice the larger input scale, summed, rescaled to the output; the ratios are double quotients
 *   for both (PyPI tflite-micro's SUB too: a float quotient, as TFLM's sources show, differs in some outputs).
 * - MUL: the product rescaled by one multiplier (zero points must be 0).
 * - LOGISTIC/TANH: TFLM's own interpolated table of sigmoid(i / 24) (tanh(x) = 2 sigmoid(2x) - 1), input rescaled
 *   to 1 / (3 * 4096) by an integer multiplier and rounding shift, or by 3 << shift for the power-of-two scales
 *   its prepare singles out; output scale 2^-15.
 * Only broadcast-free shapes are taken (the cell's are); a model with an int16 broadcast is refused at load.
 */
#include "ep_elem16.h"

#include <math.h>

#include "ep_fc_mixed.h"
#include "ep_qmath.h"

/* 65536 sigmoid(i / 24) as TFLM's int16 kernels have it. Read back from TFLM itself: TANH at a scale whose integer
 * multiplier puts input i exactly on table node i returns entry i - 32768 (entry 255 from the half-way point). */
static const uint16_t k_sigmoid16[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
};

static int is_q16(const ep_tensor_t *t) {
  return t->dtype == EP_DT_INT16 && t->has_quant && t->nchan == 0 && t->zero_point == 0 &&
         (!t->is_const || ((uintptr_t)t->data & 1u) == 0);
}

/* TFLM's CheckedLog2: log2(x) rounded, and whether x is within 1e-3 (in log2) of that power of two. */
EP_COLD static int near_pot(float x, int *log2_rounded) {
  int e = 0;
  const float m = 2.0f * frexpf(x, &e); /* x = m 2^(e-1), m in [1, 2) */
  if (m < 1.000693387f) { /* 2^0.001 */
    *log2_rounded = e - 1;
    return 1;
  }
  *log2_rounded = m < 1.41421356f ? e - 1 : e;
  return m > 1.998614185f; /* 2^0.999 */
}

/* LOGISTIC/TANH input rescale: TFLM multiplies by 3 << shift when the input scale is 2^-12 (LOGISTIC) or 2^-12 /
 * 2^-11 (TANH), else by trunc(scale * 3 * 4096 * 2^s) with s the first shift that takes it above 32767 / 2. */
EP_COLD static int act16_rescale(const ep_tensor_t *in0, int tanh_op, int32_t *mult, int32_t *shift) {
  int l2 = 0;
  int pot = near_pot(in0->scale, &l2);
  const int left = 12 + l2;
  if (pot && (left == 0 || (tanh_op && left == 1))) {
    *mult = 3 << left;
    *shift = 0;
    return 0;
  }
  {
    double mul = (double)in0->scale * 4096.0 * 3.0;
    int s = 0;
    while (mul <= 32767.0 / 2.0 && s <= 30) {
      s++;
      mul *= 2.0;
    }
    if (mul > 32767.0) return EP_RT_ERR_QUANT; /* int16 x multiplier would leave int32 (TFLM asserts it too) */
    *mult = (int32_t)mul;
    *shift = s;
  }
  return 0;
}

EP_COLD int ep_elem16_prepare(ep_model_t *m, ep_op_t *op, uint32_t builtin) {
  const ep_tensor_t *in0 = &m->tensors[op->in[0]];
  const ep_tensor_t *out = &m->tensors[op->out[0]];
  if (!is_q16(in0) || !is_q16(out)) return in0->dtype != out->dtype ? EP_RT_ERR_DTYPE : EP_RT_ERR_QUANT;
  if (builtin == EP_OP_LOGISTIC || builtin == EP_OP_TANH) {
    int l2 = 0;
    if (!near_pot(out->scale, &l2) || l2 != -15) return EP_RT_ERR_QUANT;
    {
      const int st = act16_rescale(in0, builtin == EP_OP_TANH, &op->mult[0], &op->shift[0]);
      if (st != 0) return st;
    }
    op->kind = builtin == EP_OP_LOGISTIC ? EP_K_LOGISTIC_I16 : EP_K_TANH_I16;
    return 0;
  }
  {
    const ep_tensor_t *in1 = &m->tensors[op->in[1]];
    if (in1->dtype != EP_DT_INT16) return EP_RT_ERR_DTYPE;
    if (!is_q16(in1)) return EP_RT_ERR_QUANT;
    if (op->depth != 1) return EP_RT_ERR_SHAPE; /* int16 broadcasts are not implemented */
    if (builtin == EP_OP_MUL) {
      ep_quantize_ratio(in0->scale, in1->scale, out->scale, 0, &op->mult[0], &op->shift[0]);
      op->kind = EP_K_MUL_I16;
    } else {
      /* ratios of double quotients, as the oracle's ADD and SUB both compute them (ep_quantize_ratio: exact) */
      const float mx = in0->scale > in1->scale ? in0->scale : in1->scale;
      ep_quantize_ratio(in0->scale, 1.0f, mx, -1, &op->mult[0], &op->shift[0]);
      ep_quantize_ratio(in1->scale, 1.0f, mx, -1, &op->mult[1], &op->shift[1]);
      ep_quantize_ratio(mx, 1.0f, out->scale, 1 - 15, &op->mult[2], &op->shift[2]);
      op->kind = builtin == EP_OP_ADD ? EP_K_ADD_I16 : EP_K_SUB_I16;
    }
    if (builtin != EP_OP_MUL && (op->shift[0] > 0 || op->shift[1] > 0 || op->shift[2] > 0)) return EP_RT_ERR_QUANT;
  }
  return ep_act_range_16(op->act, out, &op->act_min, &op->act_max);
}

/* Rescale by a multiplier below one (shift <= 0): TFLM's MultiplyByQuantizedMultiplierSmallerThanOneExp. */
static inline int32_t rescale_lt1(int32_t x, int32_t mult, int32_t shift) {
  return ep_rdbpot(ep_srdhm(x, mult), -shift);
}

int ep_k_addsub_i16(const ep_model_t *m, const ep_op_t *op) {
  const int16_t *a = (const int16_t *)(const void *)m->tensors[op->in[0]].data;
  const int16_t *b = (const int16_t *)(const void *)m->tensors[op->in[1]].data;
  int16_t *y = (int16_t *)(void *)m->tensors[op->out[0]].data;
  const uint32_t n = op->rows;
  const int32_t sub = op->kind == EP_K_SUB_I16;
  uint32_t i;
  for (i = 0; i < n; i++) {
    /* |x| < 2^15, so x * 2^15 fits int32 (zero points are 0) */
    const int32_t sa = rescale_lt1((int32_t)a[i] * 32768, op->mult[0], op->shift[0]);
    const int32_t sb = rescale_lt1((int32_t)b[i] * 32768, op->mult[1], op->shift[1]);
    const int32_t r = rescale_lt1(sub ? sa - sb : sa + sb, op->mult[2], op->shift[2]);
    y[i] = (int16_t)ep_clamp_i32(r, op->act_min, op->act_max);
  }
  return 0;
}

int ep_k_mul_i16(const ep_model_t *m, const ep_op_t *op) {
  const int16_t *a = (const int16_t *)(const void *)m->tensors[op->in[0]].data;
  const int16_t *b = (const int16_t *)(const void *)m->tensors[op->in[1]].data;
  int16_t *y = (int16_t *)(void *)m->tensors[op->out[0]].data;
  const uint32_t n = op->rows;
  uint32_t i;
  for (i = 0; i < n; i++) {
    const int32_t r = ep_mbqm((int32_t)a[i] * (int32_t)b[i], op->mult[0], op->shift[0]);
    y[i] = (int16_t)ep_clamp_i32(r, op->act_min, op->act_max);
  }
  return 0;
}

/* The input on the table's scale (2^9 per LOGISTIC node, 2^8 per TANH node): x * mult, rounded shift. */
static inline int32_t act16_in(int32_t x, int32_t mult, int32_t shift, int32_t round) {
  return (x * mult + round) >> shift; /* arithmetic shift of negatives (gcc) */
}

int ep_k_logistic_i16(const ep_model_t *m, const ep_op_t *op) {
  const int16_t *x = (const int16_t *)(const void *)m->tensors[op->in[0]].data;
  int16_t *y = (int16_t *)(void *)m->tensors[op->out[0]].data;
  const int32_t mult = op->mult[0], shift = op->shift[0];
  const int32_t round = shift > 0 ? 1 << (shift - 1) : 0;
  uint32_t i;
  for (i = 0; i < op->rows; i++) {
    const int32_t v = act16_in(x[i], mult, shift, round);
    const uint32_t a = (uint32_t)(v < 0 ? -v : v), node = a >> 9;
    uint32_t r;
    if (node >= 255u) {
      r = 0x7FFFu << 10;
    } else {
      const uint32_t lo = k_sigmoid16[node], hi = k_sigmoid16[node + 1u];
      r = (lo << 9) + (a & 0x1FFu) * (hi - lo);
    }
    /* sigmoid(-x) = 1 - sigmoid(x); both halves round to nearest at the final 10-bit shift */
    r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
    y[i] = (int16_t)(r >> 10);
  }
  return 0;
}

int ep_k_tanh_i16(const ep_model_t *m, const ep_op_t *op) {
  const int16_t *x = (const int16_t *)(const void *)m->tensors[op->in[0]].data;
  int16_t *y = (int16_t *)(void *)m->tensors[op->out[0]].data;
  const int32_t mult = op->mult[0], shift = op->shift[0];
  const int32_t round = shift > 0 ? 1 << (shift - 1) : 0;
  uint32_t i;
  for (i = 0; i < op->rows; i++) {
    const int32_t v = act16_in(x[i], mult, shift, round);
    const uint32_t a = (uint32_t)(v < 0 ? -v : v), node = a >> 8;
    int32_t r;
    if (node >= 255u) {
      r = 0xFFFF << 8;
    } else {
      const uint32_t lo = k_sigmoid16[node], hi = k_sigmoid16[node + 1u];
      r = (int32_t)((lo << 8) + (a & 0xFFu) * (hi - lo));
    }
    /* tanh = 2 sigmoid(2x) - 1: subtract one half (2^23 here), round at the 8-bit shift */
    r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
    y[i] = (int16_t)(r >> 8);
  }
  return 0;
}
