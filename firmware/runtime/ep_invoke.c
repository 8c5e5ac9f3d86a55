/*
 * Running a loaded model: IO access, input staging, single-step and sequence (streaming cell) invoke,
 * and ep_requantize / ep_requantize16, the recurrent-state carry shared with bench/qmath.py.
 */
#include <string.h>

#include "ep_kernels.h"
#include "ep_qmath.h"
#include "ep_runtime.h"

#define EP_MAGIC 0x45505254u

/* m->carry_copy[i]: how pair i's output becomes its input between steps. */
enum { EP_CARRY_TABLE = 0, EP_CARRY_COPY = 1, EP_CARRY_I16 = 2 };
/* An int16 state exists only in a 16x8 recurrent cell, whose gates need the int16 element-wise kinds: a build
 * without them (every int8 deploy) has no int16 carry, and the comparisons below fold away. */
#define EP_CARRY16_ON (EP_KIND_ON(EP_K_ADD_I16) || EP_KIND_ON(EP_K_SUB_I16) || EP_KIND_ON(EP_K_MUL_I16) || \
                       EP_KIND_ON(EP_K_LOGISTIC_I16) || EP_KIND_ON(EP_K_TANH_I16))

/* The multiplier of an int16 carry, kept in its pair's 256-byte slot (the int8 table's place). */
typedef struct {
  int32_t mult;
  int32_t shift;
} ep_carry16_t;

static int ready(const ep_model_t *m) { return m != NULL && m->magic == EP_MAGIC; }
static int seq_active(const ep_model_t *m) { return m->stream_buf != NULL; }

int ep_model_io(const ep_model_t *m, int is_output, uint32_t index, ep_tensor_info_t *out) {
  const ep_tensor_t *t;
  uint32_t i;
  if (!ready(m)) return EP_RT_ERR_STATE;
  if (out == NULL) return EP_RT_ERR_ARG;
  if (index >= (is_output ? m->num_outputs : m->num_inputs)) return EP_RT_ERR_INDEX;
  t = &m->tensors[is_output ? m->outputs[index] : m->inputs[index]];
  memset(out, 0, sizeof *out);
  out->data = t->data;
  out->bytes = t->bytes;
  if (!is_output && seq_active(m) && index == m->stream_input) {
    out->data = m->stream_buf;
    out->bytes = m->stream_bytes;
  }
  out->dtype = t->dtype;
  out->scale = t->scale;
  out->zero_point = t->zero_point;
  out->rank = t->rank;
  for (i = 0; i < t->rank; i++) out->dims[i] = t->dims[i];
  return EP_RT_OK;
}

/* Marks the ops the recurrent outputs depend on (backwards over the run list) into m->run_carry. */
EP_COLD static void plan_carry(ep_model_t *m) {
  uint8_t need[EP_RT_MAX_TENSORS];
  uint8_t keep[EP_RT_MAX_OPS];
  uint32_t i, k, n = 0;
  memset(need, 0, sizeof need);
  for (i = 0; i < m->npairs; i++) need[m->outputs[m->pairs[i][0]]] = 1;
  for (i = m->num_run; i-- > 0;) {
    const ep_op_t *op = &m->ops[m->run[i]];
    keep[i] = 0;
    for (k = 0; k < op->n_out; k++) keep[i] |= need[op->out[k]];
    if (!keep[i]) continue;
    if (ep_is_rnn(op->kind)) {
      int16_t t[3];
      const uint32_t nr = ep_rnn_reads(op, t);
      for (k = 0; k < nr; k++) need[t[k]] = 1;
    } else {
      for (k = 0; k < op->n_in; k++)
        if (op->in[k] >= 0) need[op->in[k]] = 1;
    }
  }
  for (i = 0; i < m->num_run; i++)
    if (keep[i]) m->run_carry[n++] = m->run[i];
  m->num_run_carry = (uint16_t)n;
}

/* The int16 carry's (multiplier, shift): ep_requantize's split of s_from / s_to (qmath.quantize_multiplier). */
EP_COLD static int32_t ep_carry16_multiplier(float s_from, float s_to, int32_t *shift) {
  int e = 0;
  int32_t mult = ep_ratio_q31(s_from, 1.0f, s_to, 0, &e);
  if (e < -31 || mult == 0) {
    mult = 0;
    e = 0;
  }
  *shift = e;
  return mult;
}

/* int16 -> int16 at another scale, zero points 0: qmath.requantize16, with the pair's ep_carry16_t at `slot`. A state
 * fits 15 bits, so up to a left shift of 15 the shifted value fits int32 and the kernels' ep_mbqm applies; beyond (a
 * ratio over 2^15, never seen in a calibrated cell) the value is clamped to int32 first, as qmath clips it. Kept out
 * of line so the int8 carry in ep_model_invoke compiles as it did without it. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void carry16(const int16_t *src, int16_t *dst, uint32_t n, const uint8_t *slot) {
  ep_carry16_t c;
  int32_t mult, shift;
  uint32_t k;
  memcpy(&c, slot, sizeof c);
  mult = c.mult;
  shift = c.shift;
  if (shift <= 15) {
    for (k = 0; k < n; k++) {
      const int32_t r = ep_mbqm(src[k], mult, shift);
      dst[k] = (int16_t)(r < -32768 ? -32768 : (r > 32767 ? 32767 : r));
    }
    return;
  }
  for (k = 0; k < n; k++) {
    int64_t x = shift >= 40 ? (src[k] > 0 ? INT32_MAX : (src[k] < 0 ? INT32_MIN : 0)) : (int64_t)src[k] << shift;
    int32_t r;
    if (x > INT32_MAX) x = INT32_MAX;
    if (x < INT32_MIN) x = INT32_MIN;
    r = ep_srdhm((int32_t)x, mult);
    dst[k] = (int16_t)(r < -32768 ? -32768 : (r > 32767 ? 32767 : r));
  }
}

EP_COLD void ep_requantize16(const int16_t *src, int16_t *dst, uint32_t n, float s_from, float s_to) {
  ep_carry16_t c;
  if (s_from == s_to) {
    if (dst != src) memmove(dst, src, 2u * n);
    return;
  }
  c.mult = ep_carry16_multiplier(s_from, s_to, &c.shift);
  carry16(src, dst, n, (const uint8_t *)&c);
}

EP_COLD int ep_model_set_sequence(ep_model_t *m, uint32_t steps, uint32_t stream_input, const uint8_t (*pairs)[2],
                          uint32_t npairs) {
  const ep_tensor_t *st;
  uint32_t i, j, start;
  uint64_t need;
  if (!ready(m)) return EP_RT_ERR_STATE;
  m->stream_buf = NULL;
  m->stream_bytes = 0;
  m->steps = 1;
  m->npairs = 0;
  if (ep_model_plan_inputs(m, 0) != EP_RT_OK) return EP_RT_ERR_ARENA; /* the init plan: cannot fail */
  if (steps == 0 || npairs > EP_RT_MAX_PAIRS || (npairs > 0 && pairs == NULL)) return EP_RT_ERR_SEQUENCE;
  if (stream_input >= m->num_inputs) return EP_RT_ERR_SEQUENCE;
  if (steps == 1 && npairs == 0) return EP_RT_OK; /* plain single-step mode */
  for (i = 0; i < npairs; i++) {
    const ep_tensor_t *to, *ti;
    if (pairs[i][0] >= m->num_outputs || pairs[i][1] >= m->num_inputs || pairs[i][1] == stream_input)
      return EP_RT_ERR_SEQUENCE;
    for (j = 0; j < i; j++)
      if (pairs[j][1] == pairs[i][1]) return EP_RT_ERR_SEQUENCE;
    to = &m->tensors[m->outputs[pairs[i][0]]];
    ti = &m->tensors[m->inputs[pairs[i][1]]];
    if (to->bytes != ti->bytes || to->dtype != ti->dtype) return EP_RT_ERR_SEQUENCE;
    if (EP_CARRY16_ON && to->dtype == EP_DT_INT16) {
      if (to->zero_point != 0 || ti->zero_point != 0) return EP_RT_ERR_SEQUENCE; /* 16x8 is symmetric */
    } else if (to->dtype != EP_DT_INT8 && to->dtype != EP_DT_FLOAT32) {
      return EP_RT_ERR_SEQUENCE;
    }
  }
  /* Steps rewrite the streamed and recurrent inputs and reuse the others: every input lives for the whole invoke. */
  if (ep_model_plan_inputs(m, 1) != EP_RT_OK) {
    (void)ep_model_plan_inputs(m, 0);
    return EP_RT_ERR_ARENA;
  }
  st = &m->tensors[m->inputs[stream_input]];
  start = (m->arena_plan + 15u) & ~15u;
  /* Staging, then one 256-byte carry table per pair: the int8 carry is an int8 -> int8 function (an int16 pair
   * keeps its multiplier there instead). */
  need = (uint64_t)steps * st->bytes;
  need = ((need + 15u) & ~(uint64_t)15u) + 256u * npairs;
  if (start > m->arena_len || need > (uint64_t)(m->arena_len - start)) {
    (void)ep_model_plan_inputs(m, 0);
    return EP_RT_ERR_ARENA;
  }
  m->stream_buf = m->arena + start;
  m->stream_bytes = steps * st->bytes;
  memset(m->stream_buf, 0, m->stream_bytes);
  m->carry_tbl = m->stream_buf + ((m->stream_bytes + 15u) & ~15u);
  for (i = 0; i < npairs; i++) {
    const ep_tensor_t *to = &m->tensors[m->outputs[pairs[i][0]]], *ti = &m->tensors[m->inputs[pairs[i][1]]];
    int8_t all[256];
    if (EP_CARRY16_ON && to->dtype == EP_DT_INT16) {
      ep_carry16_t c;
      c.mult = ep_carry16_multiplier(to->scale, ti->scale, &c.shift);
      memcpy(m->carry_tbl + 256u * i, &c, sizeof c);
      m->carry_copy[i] = (uint8_t)(to->scale == ti->scale ? EP_CARRY_COPY : EP_CARRY_I16);
      continue;
    }
    for (j = 0; j < 256u; j++) all[j] = (int8_t)(uint8_t)j;
    m->carry_copy[i] = (uint8_t)(to->dtype != EP_DT_INT8 || (to->scale == ti->scale && to->zero_point == ti->zero_point));
    ep_requantize(all, (int8_t *)(m->carry_tbl + 256u * i), 256u, to->scale, to->zero_point, ti->scale, ti->zero_point);
  }
  m->steps = steps;
  m->stream_input = stream_input;
  m->npairs = npairs;
  for (i = 0; i < npairs; i++) {
    m->pairs[i][0] = pairs[i][0];
    m->pairs[i][1] = pairs[i][1];
  }
  plan_carry(m);
  m->arena_used = start + (uint32_t)need;
  return EP_RT_OK;
}

int ep_model_set_input(ep_model_t *m, uint32_t index, uint32_t offset, const uint8_t *data, uint32_t len) {
  uint8_t *dst;
  uint32_t cap;
  if (!ready(m)) return EP_RT_ERR_STATE;
  if (data == NULL && len != 0) return EP_RT_ERR_ARG;
  if (index >= m->num_inputs) return EP_RT_ERR_INDEX;
  if (seq_active(m) && index == m->stream_input) {
    dst = m->stream_buf;
    cap = m->stream_bytes;
  } else {
    dst = m->tensors[m->inputs[index]].data;
    cap = m->tensors[m->inputs[index]].bytes;
  }
  if (offset > cap || len > cap - offset) return EP_RT_ERR_RANGE;
  if (len) memcpy(dst + offset, data, len);
  return EP_RT_OK;
}

static int run_list(ep_model_t *m, const uint16_t *r, const uint16_t *end) {
  for (; r != end; r++) {
    const ep_op_t *op = &m->ops[*r];
    int st;
    m->fc_tmp = op->tmp;
    st = op->fn(m, op);
    if (st) return st;
  }
  return EP_RT_OK;
}

static int run_graph(ep_model_t *m) { return run_list(m, m->run, m->run + m->num_run); }

int ep_model_invoke(ep_model_t *m) {
  uint32_t s, i;
  if (!ready(m)) return EP_RT_ERR_STATE;
  if (!seq_active(m)) return run_graph(m);
  for (i = 0; i < m->npairs; i++) { /* h = 0 at t = 0 */
    ep_tensor_t *t = &m->tensors[m->inputs[m->pairs[i][1]]];
    memset(t->data, t->dtype == EP_DT_INT8 ? (uint8_t)(int8_t)t->zero_point : 0, t->bytes);
  }
  for (s = 0; s < m->steps; s++) {
    ep_tensor_t *xt = &m->tensors[m->inputs[m->stream_input]];
    int st;
    memcpy(xt->data, m->stream_buf + (size_t)s * xt->bytes, xt->bytes);
    if (s + 1u == m->steps) return run_graph(m); /* the last step computes every output */
    st = run_list(m, m->run_carry, m->run_carry + m->num_run_carry);
    if (st) return st;
    for (i = 0; i < m->npairs; i++) {
      const ep_tensor_t *to = &m->tensors[m->outputs[m->pairs[i][0]]];
      const ep_tensor_t *ti = &m->tensors[m->inputs[m->pairs[i][1]]];
      if (m->carry_copy[i] == EP_CARRY_COPY) {
        memcpy(ti->data, to->data, to->bytes);
      } else if (EP_CARRY16_ON && m->carry_copy[i] == EP_CARRY_I16) {
        carry16((const int16_t *)to->data, (int16_t *)ti->data, to->bytes / 2u, m->carry_tbl + 256u * i);
      } else {
        const int8_t *tbl = (const int8_t *)(m->carry_tbl + 256u * i);
        const uint8_t *src = to->data;
        int8_t *dst = (int8_t *)ti->data;
        uint32_t k;
        for (k = 0; k < to->bytes; k++) dst[k] = tbl[src[k]];
      }
    }
  }
  return EP_RT_OK;
}

int ep_model_invoke_op(ep_model_t *m, uint32_t index) {
  if (!ready(m)) return EP_RT_ERR_STATE;
  if (index >= m->num_ops) return EP_RT_ERR_INDEX;
  if (m->ops[index].fused) return EP_RT_OK; /* runs inside its fused op */
  m->fc_tmp = m->ops[index].tmp;
  return m->ops[index].fn(m, &m->ops[index]);
}

int ep_model_op_builtin(const ep_model_t *m, uint32_t index) {
  if (!ready(m) || index >= m->num_ops) return -1;
  return m->ops[index].builtin;
}

EP_COLD void ep_requantize(const int8_t *src, int8_t *dst, uint32_t n, float s_from, int32_t z_from, float s_to,
                   int32_t z_to) {
  int32_t mult, shift;
  uint32_t i;
  int e = 0;
  if (s_from == s_to && z_from == z_to) {
    if (dst != src) memmove(dst, src, n);
    return;
  }
  /* Same multiplier split as qmath.quantize_multiplier (no clamp of large shifts, unlike the kernels). */
  mult = ep_ratio_q31(s_from, 1.0f, s_to, 0, &e);
  if (e < -31 || mult == 0) {
    mult = 0;
    e = 0;
  }
  shift = e;
  for (i = 0; i < n; i++) {
    int64_t x = (int64_t)src[i] - z_from;
    int32_t scaled, r;
    if (shift > 0) { /* qmath clips the shifted value to int32 before the high multiply */
      x = shift >= 40 ? (x > 0 ? INT32_MAX : (x < 0 ? INT32_MIN : 0)) : x * ((int64_t)1 << shift);
      if (x > INT32_MAX) x = INT32_MAX;
      if (x < INT32_MIN) x = INT32_MIN;
    }
    scaled = (int32_t)x;
    r = ep_rdbpot(ep_srdhm(scaled, mult), shift < 0 ? -shift : 0);
    {
      int64_t v = (int64_t)r + z_to;
      dst[i] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
  }
}
