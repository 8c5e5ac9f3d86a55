/*
 * Fused GRU step. The exporter's streaming cell (export/README.md) computes, per layer,
 *   r = LOGISTIC(ADD(FC(x), FC(h)))      z = LOGISTIC(ADD(FC(x), FC(h)))
 *   n = TANH(ADD(FC(x), MUL(r, FC(h))))  h' = ADD(n, MUL(z, SUB(h, n)))
 * as 16 int8 ops, each writing a tensor the next one re-reads. Every op after the FCs is element-wise, so
 * element j of h' depends only on row j of the six FCs: the fused kernel computes blocks of rows of all six
 * dot products, then the whole chain per element in registers, with each op's own prepared constants and
 * the same arithmetic functions as the op-by-op kernels (ep_kernels.h), hence the same bytes.
 * The pattern is matched on tensors and op kinds, not on op order; commutative ADD/MUL operands are put in
 * a canonical order by swapping them with their constants (exact: the int8 arithmetic is symmetric).
 */
#include <string.h>

#include "ep_kernels.h"
#include "ep_qmath.h"

#if EP_RT_GRU /* the whole file; see ep_kernels.h */

#define EP_GRU_BLOCK 16u

/* Roles of the six FULLY_CONNECTED ops. */
enum { FC_XR, FC_HR, FC_XZ, FC_HZ, FC_XN, FC_HN, FC_COUNT };

/* A final rescale `sat8(rdbpot(srdhm(x << shl, mult), shr) + zp)` with its rounding mask precomputed. */
typedef struct {
  int32_t mult, shl, shr, mask, zp;
} rescale_t;
/* int8 ADD/SUB: both inputs rescaled (ep_srdhm_2p20 + rounding shift), then the output rescale. */
typedef struct {
  int32_t za, ma, ra, mask_a, zb, mb, rb, mask_b;
  rescale_t out;
} addsub_t;
/* int8 MUL: (a + za) * (b + zb), then the output rescale. */
typedef struct {
  int32_t za, zb;
  rescale_t out;
} mul_t;

/* Persistent record of one fused step (start of the fused op's scratch): op and tensor indices, and the
 * element-wise ops' constants in the form the kernel uses. */
typedef struct {
  int16_t fc[FC_COUNT];
  int16_t add_r, add_z, log_r, log_z, mul_n, add_n, tanh_n, sub_d, mul_z, add_h;
  int16_t x, h, out;
  uint16_t hidden, depth_x;
  addsub_t c_add_r, c_add_z, c_add_n, c_sub_d, c_add_h;
  mul_t c_mul_n, c_mul_z;
} ep_gru_t;

static int32_t low_mask(int32_t shr) { return (int32_t)(((uint32_t)1 << shr) - 1u); }

static void rescale_of(rescale_t *c, int32_t mult, int32_t shift, int32_t zp) {
  c->mult = mult;
  c->shl = shift > 0 ? shift : 0;
  c->shr = shift > 0 ? 0 : -shift;
  c->mask = low_mask(c->shr);
  c->zp = zp;
}

static void addsub_of(addsub_t *c, const ep_op_t *op) {
  c->za = op->p.bin.neg_zp_a, c->ma = op->mult[0], c->ra = -op->shift[0], c->mask_a = low_mask(c->ra);
  c->zb = op->p.bin.neg_zp_b, c->mb = op->mult[1], c->rb = -op->shift[1], c->mask_b = low_mask(c->rb);
  rescale_of(&c->out, op->mult[2], op->shift[2], op->p.bin.zp_out);
}

static void mul_of(mul_t *c, const ep_op_t *op) {
  c->za = op->p.bin.neg_zp_a, c->zb = op->p.bin.neg_zp_b;
  rescale_of(&c->out, op->mult[0], op->shift[0], op->p.bin.zp_out);
}

#define sat8 ep_sat8

/* ep_rdbpot with its mask given. */
static inline int32_t rdbpot_m(int32_t x, int32_t shr, int32_t mask) {
  return (x >> shr) + (int32_t)((uint32_t)((mask >> 1) + (int32_t)((uint32_t)x >> 31) - (x & mask)) >> 31);
}

/* ep_srdhm for mult != INT32_MIN (every multiplier ep_quantize_multiplier yields), where the reference's
 * one saturating case cannot occur. */
static inline int32_t srdhm(int32_t a, int32_t mult) {
#if defined(EP_QMATH_SPLIT_MUL) && EP_QMATH_SPLIT_MUL
  return ep_srdhm(a, mult);
#else
  return (int32_t)(((int64_t)a * (int64_t)mult + ((int64_t)1 << 30)) >> 31);
#endif
}

static inline int32_t rescale(const rescale_t *c, int32_t x) {
  return sat8(rdbpot_m(srdhm((int32_t)((uint32_t)x << c->shl), c->mult), c->shr, c->mask) + c->zp);
}

/* Same bytes as ep_addsub_i8 (tested), with the constants in kernel form and int8 activation range. */
static inline int32_t addsub(const addsub_t *c, int32_t a, int32_t b, int sub) {
  const int32_t sa = rdbpot_m(ep_srdhm_2p20(c->za + a, c->ma), c->ra, c->mask_a);
  const int32_t sb = rdbpot_m(ep_srdhm_2p20(c->zb + b, c->mb), c->rb, c->mask_b);
  return rescale(&c->out, sub ? sa - sb : sa + sb);
}

static inline int32_t mul(const mul_t *c, int32_t a, int32_t b) { return rescale(&c->out, (c->za + a) * (c->zb + b)); }

#define EP_GRU_HEAD ((sizeof(ep_gru_t) + 15u) & ~15u)

static uint32_t n_elems(const ep_tensor_t *t) {
  uint32_t n = 1, i;
  for (i = 0; i < t->rank; i++) n *= (uint32_t)t->dims[i];
  return n;
}

/* Producer op of every tensor and the number of readers (op inputs + graph outputs). */
typedef struct {
  int16_t prod[EP_RT_MAX_TENSORS];
  uint8_t uses[EP_RT_MAX_TENSORS];
} graph_index_t;

static int producer(const ep_model_t *m, const graph_index_t *gi, int16_t t, uint8_t kind) {
  int16_t p;
  if (t < 0) return -1;
  p = gi->prod[t];
  if (p < 0 || m->ops[p].kind != kind || m->ops[p].fused) return -1;
  return p;
}

/* Which input of binary op `o` is made by an op of `kind` (0 or 1), -1 if none or both. */
static int input_from(const ep_model_t *m, const graph_index_t *gi, int o, uint8_t kind) {
  const int a = producer(m, gi, m->ops[o].in[0], kind) >= 0, b = producer(m, gi, m->ops[o].in[1], kind) >= 0;
  return a == b ? -1 : (a ? 0 : 1);
}

/* Puts input `first` of a commutative ADD/MUL in position 0, with its constants. */
static void canonical(ep_op_t *op, int first) {
  int16_t t;
  int32_t v;
  if (first == 0) return;
  t = op->in[0], op->in[0] = op->in[1], op->in[1] = t;
  v = op->p.bin.neg_zp_a, op->p.bin.neg_zp_a = op->p.bin.neg_zp_b, op->p.bin.neg_zp_b = v;
  if (op->kind == EP_K_ADD_I8) {
    v = op->mult[0], op->mult[0] = op->mult[1], op->mult[1] = v;
    v = op->shift[0], op->shift[0] = op->shift[1], op->shift[1] = v;
  }
}

/* The gate pre-activation ADD(FC(x), FC(h)) behind a LOGISTIC op: fills the two FC roles, -1 on mismatch. */
static int gate(const ep_model_t *m, const graph_index_t *gi, int act, int16_t x, int *add, int16_t *fcx,
                int16_t *fch) {
  int a, f0, f1;
  if (act < 0) return -1;
  a = producer(m, gi, m->ops[act].in[0], EP_K_ADD_I8);
  if (a < 0) return -1;
  f0 = producer(m, gi, m->ops[a].in[0], EP_K_FC_I8);
  f1 = producer(m, gi, m->ops[a].in[1], EP_K_FC_I8);
  if (f0 < 0 || f1 < 0) return -1;
  if (m->ops[f0].in[0] == x) {
    *fcx = (int16_t)f0, *fch = (int16_t)f1;
  } else {
    *fcx = (int16_t)f1, *fch = (int16_t)f0;
  }
  *add = a;
  return m->ops[*fcx].in[0] == x ? 0 : -1;
}

/* Matches the pattern ending in ADD op `o` (h' = n + z*(h-n)); fills `g` and returns 0 on success. */
static int match(ep_model_t *m, const graph_index_t *gi, int o, ep_gru_t *g) {
  const ep_op_t *ops = m->ops;
  int side, tanh_n, mul_z, add_n, mul_n, sub_d, log_r, log_z, add_r, add_z, k;
  int16_t x, h;
  uint32_t n;
  side = input_from(m, gi, o, EP_K_TANH_I8);
  if (side < 0) return -1;
  tanh_n = producer(m, gi, ops[o].in[side], EP_K_TANH_I8);
  mul_z = producer(m, gi, ops[o].in[1 - side], EP_K_MUL_I8);
  if (mul_z < 0) return -1;
  add_n = producer(m, gi, ops[tanh_n].in[0], EP_K_ADD_I8);
  if (add_n < 0) return -1;
  k = input_from(m, gi, add_n, EP_K_MUL_I8);
  if (k < 0) return -1;
  mul_n = producer(m, gi, ops[add_n].in[k], EP_K_MUL_I8);
  g->fc[FC_XN] = (int16_t)producer(m, gi, ops[add_n].in[1 - k], EP_K_FC_I8);
  k = input_from(m, gi, mul_n, EP_K_LOGISTIC_I8);
  if (g->fc[FC_XN] < 0 || k < 0) return -1;
  log_r = producer(m, gi, ops[mul_n].in[k], EP_K_LOGISTIC_I8);
  g->fc[FC_HN] = (int16_t)producer(m, gi, ops[mul_n].in[1 - k], EP_K_FC_I8);
  if (g->fc[FC_HN] < 0) return -1;
  x = ops[g->fc[FC_XN]].in[0];
  h = ops[g->fc[FC_HN]].in[0];
  if (x == h) return -1;
  k = input_from(m, gi, mul_z, EP_K_LOGISTIC_I8);
  if (k < 0) return -1;
  log_z = producer(m, gi, ops[mul_z].in[k], EP_K_LOGISTIC_I8);
  sub_d = producer(m, gi, ops[mul_z].in[1 - k], EP_K_SUB_I8);
  if (sub_d < 0 || ops[sub_d].in[0] != h || ops[sub_d].in[1] != ops[o].in[side]) return -1;
  if (gate(m, gi, log_r, x, &add_r, &g->fc[FC_XR], &g->fc[FC_HR]) != 0) return -1;
  if (gate(m, gi, log_z, x, &add_z, &g->fc[FC_XZ], &g->fc[FC_HZ]) != 0) return -1;
  n = n_elems(&m->tensors[ops[o].out[0]]);
  if (n == 0 || n > 0xFFFFu || n_elems(&m->tensors[h]) != n) return -1;
  for (k = 0; k < FC_COUNT; k++) {
    const ep_op_t *fc = &ops[g->fc[k]];
    if (fc->batches != 1 || fc->rows != n || fc->in[0] != ((k & 1) ? h : x)) return -1;
    if (gi->uses[fc->out[0]] != 1) return -1;
  }
  {
    /* Every element-wise op works on n elements (no broadcast); every intermediate has only the readers
     * inside the group (n: SUB and the final ADD) and is no graph output. */
    const int ew[] = {add_r, add_z, log_r, log_z, mul_n, add_n, tanh_n, sub_d, mul_z, o};
    uint32_t e, i;
    for (e = 0; e < sizeof ew / sizeof ew[0]; e++) {
      const ep_op_t *op = &ops[ew[e]];
      for (i = 0; i < op->n_in; i++)
        if (n_elems(&m->tensors[op->in[i]]) != n) return -1;
      if (n_elems(&m->tensors[op->out[0]]) != n) return -1;
      if (ew[e] != o && gi->uses[op->out[0]] != (ew[e] == tanh_n ? 2u : 1u)) return -1;
    }
  }
  {
    /* The kernel saturates to int8: every op of the group must have no fused activation clamp. */
    const int all[] = {g->fc[0], g->fc[1], g->fc[2], g->fc[3], g->fc[4], g->fc[5], add_r, add_z, mul_n, add_n,
                       sub_d, mul_z, o};
    uint32_t e;
    for (e = 0; e < sizeof all / sizeof all[0]; e++)
      if (ops[all[e]].act_min != -128 || ops[all[e]].act_max != 127) return -1;
  }
  canonical(&m->ops[add_r], m->ops[add_r].in[0] == ops[g->fc[FC_XR]].out[0] ? 0 : 1);
  canonical(&m->ops[add_z], m->ops[add_z].in[0] == ops[g->fc[FC_XZ]].out[0] ? 0 : 1);
  canonical(&m->ops[mul_n], m->ops[mul_n].in[0] == ops[log_r].out[0] ? 0 : 1);
  canonical(&m->ops[add_n], m->ops[add_n].in[0] == ops[g->fc[FC_XN]].out[0] ? 0 : 1);
  canonical(&m->ops[mul_z], m->ops[mul_z].in[0] == ops[log_z].out[0] ? 0 : 1);
  canonical(&m->ops[o], side);
  g->add_r = (int16_t)add_r, g->add_z = (int16_t)add_z, g->log_r = (int16_t)log_r, g->log_z = (int16_t)log_z;
  g->mul_n = (int16_t)mul_n, g->add_n = (int16_t)add_n, g->tanh_n = (int16_t)tanh_n, g->sub_d = (int16_t)sub_d;
  g->mul_z = (int16_t)mul_z, g->add_h = (int16_t)o;
  g->x = x, g->h = h, g->out = ops[o].out[0];
  g->hidden = (uint16_t)n;
  addsub_of(&g->c_add_r, &ops[add_r]);
  addsub_of(&g->c_add_z, &ops[add_z]);
  addsub_of(&g->c_add_n, &ops[add_n]);
  addsub_of(&g->c_sub_d, &ops[sub_d]);
  addsub_of(&g->c_add_h, &ops[o]);
  mul_of(&g->c_mul_n, &ops[mul_n]);
  mul_of(&g->c_mul_z, &ops[mul_z]);
  g->depth_x = (uint16_t)ops[g->fc[FC_XN]].depth;
  return 0;
}

static uint32_t widen_bytes(uint32_t depth) { return ((depth & ~3u) * 2u + 15u) & ~15u; }

int ep_gru_fuse(ep_model_t *m, uint8_t *mem, uint32_t avail, uint32_t *used) {
  graph_index_t gi;
  uint32_t i, k;
  *used = 0;
  for (i = 0; i < m->num_tensors; i++) {
    gi.prod[i] = -1;
    gi.uses[i] = 0;
  }
  for (i = 0; i < m->num_ops; i++) {
    const ep_op_t *op = &m->ops[i];
    for (k = 0; k < op->n_in; k++)
      if (op->in[k] >= 0 && gi.uses[op->in[k]] < 255u) gi.uses[op->in[k]]++;
    for (k = 0; k < op->n_out; k++) gi.prod[op->out[k]] = (int16_t)i;
  }
  for (i = 0; i < m->num_outputs; i++)
    if (gi.uses[m->outputs[i]] < 255u) gi.uses[m->outputs[i]]++;
  for (i = 0; i < m->num_ops; i++) {
    ep_gru_t g;
    ep_op_t *op = &m->ops[i];
    /* Head + the widened x of the DSP path; reserved on every target so the arena plan is target-free. */
    uint32_t need;
    if (op->kind != EP_K_ADD_I8 || op->fused) continue;
    if (match(m, &gi, (int)i, &g) != 0) continue;
    need = (uint32_t)EP_GRU_HEAD + widen_bytes(g.depth_x);
    if (need > avail - *used) return EP_RT_ERR_ARENA;
    {
      const int16_t parts[] = {g.fc[0], g.fc[1], g.fc[2], g.fc[3], g.fc[4], g.fc[5], g.add_r, g.add_z,
                               g.log_r, g.log_z, g.mul_n, g.add_n, g.tanh_n, g.sub_d, g.mul_z};
      ep_tensor_t *tx = &m->tensors[g.x], *th = &m->tensors[g.h];
      for (k = 0; k < sizeof parts / sizeof parts[0]; k++) {
        ep_tensor_t *t = &m->tensors[m->ops[parts[k]].out[0]];
        m->ops[parts[k]].fused = 1;
        t->first_use = -1; /* never materialised: left out of the arena plan */
        t->last_use = -1;
      }
      /* The kernel reads x and h while it writes h': keep them alive (and apart from h') until then. */
      if (tx->last_use < (int16_t)i) tx->last_use = (int16_t)i;
      if (th->last_use < (int16_t)i) th->last_use = (int16_t)i;
    }
    op->kind = EP_K_GRU;
    op->scratch = (int32_t *)(void *)(mem + *used);
    op->scratch_bytes = need;
    memcpy(op->scratch, &g, sizeof g);
    *used += need;
    m->num_fused++;
  }
  return 0;
}

/* FC output of row j: per-channel multipliers from the FC's scratch, or the per-tensor ones (stride 0). */
typedef struct {
  const int32_t *mult, *shift;
  uint32_t stride;
  int32_t zp;
} fc_out_t;

static inline int32_t fc_out(const fc_out_t *f, int32_t acc, uint32_t j) {
  const int32_t shift = f->shift[j * f->stride];
  const int32_t shl = shift > 0 ? shift : 0, shr = shl - shift;
  return sat8(rdbpot_m(srdhm((int32_t)((uint32_t)acc << shl), f->mult[j * f->stride]), shr, low_mask(shr)) + f->zp);
}

int ep_k_gru(const ep_model_t *m, const ep_op_t *op) {
  const ep_gru_t *g = (const ep_gru_t *)(const void *)op->scratch;
  const ep_op_t *ops = m->ops;
  const ep_op_t *fc[FC_COUNT];
  fc_out_t fo[FC_COUNT];
  const int8_t *w[FC_COUNT];
  const int8_t *x = (const int8_t *)m->tensors[g->x].data, *h = (const int8_t *)m->tensors[g->h].data;
  const int8_t *tbl_r = (const int8_t *)(const void *)ops[g->log_r].scratch;
  const int8_t *tbl_z = (const int8_t *)(const void *)ops[g->log_z].scratch;
  const int8_t *tbl_n = (const int8_t *)(const void *)ops[g->tanh_n].scratch;
  int8_t *out = (int8_t *)m->tensors[g->out].data;
  uint32_t *xq_x = (uint32_t *)(void *)((uint8_t *)op->scratch + EP_GRU_HEAD);
  uint32_t *xq_h = (uint32_t *)(void *)m->fc_tmp;
  const uint32_t n = g->hidden, dx = g->depth_x;
  uint32_t j0, k;
  for (k = 0; k < FC_COUNT; k++) {
    fc[k] = &ops[g->fc[k]];
    w[k] = (const int8_t *)m->tensors[fc[k]->in[1]].data;
    fo[k].zp = fc[k]->p.fc.zp_out;
    if (fc[k]->p.fc.per_channel) {
      fo[k].mult = fc[k]->scratch + fc[k]->rows, fo[k].shift = fc[k]->scratch + 2u * fc[k]->rows, fo[k].stride = 1;
    } else {
      fo[k].mult = &fc[k]->mult[0], fo[k].shift = &fc[k]->shift[0], fo[k].stride = 0;
    }
  }
  ep_fc_widen(x, dx, xq_x);
  ep_fc_widen(h, n, xq_h);
  for (j0 = 0; j0 < n; j0 += EP_GRU_BLOCK) {
    int32_t acc[FC_COUNT][EP_GRU_BLOCK];
    const uint32_t nb = n - j0 < EP_GRU_BLOCK ? n - j0 : EP_GRU_BLOCK;
    uint32_t e;
    for (k = 0; k < FC_COUNT; k++) {
      const int is_h = (int)(k & 1u);
      const uint32_t depth = is_h ? n : dx;
      ep_fc_dot_rows(w[k] + (size_t)j0 * depth, is_h ? h : x, is_h ? xq_h : xq_x, fc[k]->scratch + j0, acc[k], nb,
                     depth);
    }
    /* The chain stage by stage over the block, each stage's constants copied to locals so they stay in
     * registers (int8 stores would otherwise force reloads); results go back into the spent accumulators. */
    {
      const addsub_t c = g->c_add_r;
      const fc_out_t fx = fo[FC_XR], fh = fo[FC_HR];
      for (e = 0; e < nb; e++)
        acc[FC_XR][e] = tbl_r[(uint8_t)addsub(&c, fc_out(&fx, acc[FC_XR][e], j0 + e), fc_out(&fh, acc[FC_HR][e], j0 + e), 0)];
    }
    {
      const addsub_t c = g->c_add_z;
      const fc_out_t fx = fo[FC_XZ], fh = fo[FC_HZ];
      for (e = 0; e < nb; e++)
        acc[FC_XZ][e] = tbl_z[(uint8_t)addsub(&c, fc_out(&fx, acc[FC_XZ][e], j0 + e), fc_out(&fh, acc[FC_HZ][e], j0 + e), 0)];
    }
    {
      const mul_t cm = g->c_mul_n;
      const fc_out_t fh = fo[FC_HN];
      for (e = 0; e < nb; e++) acc[FC_HN][e] = mul(&cm, acc[FC_XR][e], fc_out(&fh, acc[FC_HN][e], j0 + e));
    }
    {
      const addsub_t c = g->c_add_n;
      const fc_out_t fx = fo[FC_XN];
      for (e = 0; e < nb; e++)
        acc[FC_XN][e] = tbl_n[(uint8_t)addsub(&c, fc_out(&fx, acc[FC_XN][e], j0 + e), acc[FC_HN][e], 0)];
    }
    {
      const addsub_t c = g->c_sub_d;
      for (e = 0; e < nb; e++) acc[FC_HR][e] = addsub(&c, h[j0 + e], acc[FC_XN][e], 1);
    }
    {
      const mul_t cm = g->c_mul_z;
      for (e = 0; e < nb; e++) acc[FC_HZ][e] = mul(&cm, acc[FC_XZ][e], acc[FC_HR][e]);
    }
    {
      const addsub_t c = g->c_add_h;
      for (e = 0; e < nb; e++) out[j0 + e] = (int8_t)addsub(&c, acc[FC_XN][e], acc[FC_HZ][e], 0);
    }
  }
  return 0;
}

void ep_gru_reads(const ep_op_t *op, int16_t *x, int16_t *h) {
  const ep_gru_t *g = (const ep_gru_t *)(const void *)op->scratch;
  *x = g->x;
  *h = g->h;
}

#else
/* ISO C wants a translation unit to declare something. */
typedef int ep_rt_gru_left_out;
#endif /* EP_RT_GRU */
