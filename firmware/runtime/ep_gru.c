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
#ifndef EP_GRU_SHORT /* 0: always the general chain (tests compare the two) */
#define EP_GRU_SHORT 1
#endif

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

/*
 * The short chain (ep_gru_prepare decides per layer whether the model's constants allow it; otherwise the
 * general chain above runs). Every rescale there is `rdbpot(srdhm(y, m), e)` with e >= 1 and |2y| < 2^31:
 * srdhm(y, m) is then one rounding high multiply of 2y (SMMULR), and the rounding shift is
 * `(p + 2^(e-1) - (y < 0)) >> e` (the sign of p may be taken from y: they differ only when p = 0, where both
 * forms give 0). `s` packs e (low byte: register shifts read only that) and 2^(e-1) << 8, so e <= 24.
 * An ADD input of exactly half the larger input scale (m = 2^30, e = 0: the reference's exact v * 2^19) is
 * written as m = 2^31 - 1, e = 1, which gives the same value for |v| <= 255; a zero multiplier as e = 1 with a
 * rounding constant 1 (result 0 for every y).
 */
typedef struct {
  int32_t m, s;
} rq_t;
/* ADD/SUB input: y2 = (q - zp) << 21 (twice the reference's << 20), rescaled. */
typedef struct {
  int32_t z21;
  rq_t r;
} rin_t;
/* ADD/SUB: one input has the larger scale (its multiplier is exactly 1/2: the reference's (q - zp) * 2^19 with
 * no rounding), so 2 * (its term) is `z20 + (q << 20)`; the other goes through rin_t. swap: the exact input is
 * the op's input 1. */
typedef struct {
  int32_t z20;
  rin_t g;
  rq_t out;
  int32_t zp;
  uint32_t swap;
} fadd_t;
/* MUL: y2 = (a - zp_a) * (2b - 2zp_b). */
typedef struct {
  int32_t za, zb2;
  rq_t out;
  int32_t zp;
} fmul_t;
typedef struct {
  fadd_t add_r, add_z, add_n, sub_d, add_h;
  fmul_t mul_n, mul_z;
  /* FC outputs: row arrays of m and packed s (per-channel: the FC's own scratch, rewritten at prepare;
   * per-tensor: one element here, read through jmask = 0), and the output zero point. */
  const int32_t *fm[FC_COUNT], *fs[FC_COUNT];
  int32_t fzp[FC_COUNT], one_m[FC_COUNT], one_s[FC_COUNT];
  uint32_t jmask;
} fast_t;

/* Persistent record of one fused step (start of the fused op's scratch): op and tensor indices, and the
 * element-wise ops' constants in the form the kernel uses. */
typedef struct {
  fast_t f;
  uint32_t fast; /* 1: the short chain applies (ep_gru_prepare) */
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

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__)
#define EP_GRU_DSP 1
#else
#define EP_GRU_DSP 0
#endif
#if defined(__ARM_ARCH_7M__) && defined(__GNUC__)
#define EP_GRU_V7M 1
#else
#define EP_GRU_V7M 0
#endif

/* rdbpot(srdhm(y, m), e) for y2 = 2y, with m and s of an rq_t (see fast_t). */
static inline int32_t rq(int32_t y2, int32_t m, int32_t s) {
#if EP_GRU_DSP
  int32_t p;
  __asm__("smmulr %0, %1, %2\n\t"
          "add %0, %0, %3, lsr #8\n\t"
          "add %0, %0, %1, asr #31\n\t"
          "asr %0, %0, %3"
          : "=&r"(p)
          : "r"(y2), "r"(m), "r"(s));
  return p;
#elif EP_GRU_V7M
  /* No SMMULR: SMLAL onto (2^(e-1), 2^31) leaves srdhm + 2^(e-1) in the high word. */
  int32_t lo, hi;
  __asm__("lsr %1, %3, #8\n\t"
          "mov %0, #0x80000000\n\t"
          "smlal %0, %1, %2, %4\n\t"
          "add %1, %1, %2, asr #31\n\t"
          "asr %1, %1, %3"
          : "=&r"(lo), "=&r"(hi)
          : "r"(y2), "r"(s), "r"(m));
  (void)lo;
  return hi;
#else
#if defined(EP_QMATH_SPLIT_MUL) && EP_QMATH_SPLIT_MUL
  int32_t p = ep_srdhm(y2 >> 1, m); /* v6-M: 32-bit partial products (y2 is even) */
#else
  int32_t p = (int32_t)(((int64_t)y2 * (int64_t)m + ((int64_t)1 << 31)) >> 32);
#endif
  p += (int32_t)((uint32_t)s >> 8) + (y2 >> 31);
  return p >> (s & 0xFF);
#endif
}

static inline int32_t rin(const rin_t *c, int32_t q) { return rq(c->z21 + (int32_t)((uint32_t)q << 21), c->r.m, c->r.s); }

static inline int32_t fadd_out(const fadd_t *c, int32_t y2) { return sat8(rq(y2, c->out.m, c->out.s) + c->zp); }

/* ADD: qe the exact input, qg the other. */
static inline int32_t fadd(const fadd_t *c, int32_t qe, int32_t qg) {
  const int32_t g = rin(&c->g, qg);
  return fadd_out(c, c->z20 + (int32_t)((uint32_t)qe << 20) + g + g);
}

/* SUB a - b with the exact input a (fsub_a) or b (fsub_b). */
static inline int32_t fsub_a(const fadd_t *c, int32_t qa, int32_t qb) {
  const int32_t g = rin(&c->g, qb);
  return fadd_out(c, c->z20 + (int32_t)((uint32_t)qa << 20) - g - g);
}
static inline int32_t fsub_b(const fadd_t *c, int32_t qa, int32_t qb) {
  const int32_t g = rin(&c->g, qa);
  return fadd_out(c, g + g - c->z20 - (int32_t)((uint32_t)qb << 20));
}

static inline int32_t fmul(const fmul_t *c, int32_t a, int32_t b) {
  return sat8(rq((a + c->za) * (b + b + c->zb2), c->out.m, c->out.s) + c->zp);
}

/* The packed rounding shift of a (mult, shift) pair, or -1 when the short chain cannot apply it. */
static int32_t pack_s(int32_t mult, int32_t shift) {
  int32_t e;
  if (mult == 0) return (int32_t)((1u << 8) | 1u);
  if (shift > -1 || shift < -24) return -1;
  e = -shift;
  return (int32_t)(((uint32_t)1 << (e - 1 + 8)) | (uint32_t)e);
}

static int rq_of(rq_t *r, int32_t mult, int32_t shift) {
  r->m = mult;
  r->s = pack_s(mult, shift);
  return r->s < 0 ? -1 : 0;
}

static int rin_of(rin_t *c, int32_t neg_zp, int32_t mult, int32_t shift) {
  c->z21 = (int32_t)((uint32_t)neg_zp << 21);
  if (shift == 0 && mult == (int32_t)(1u << 30)) { /* v * 2^19 exactly */
    c->r.m = INT32_MAX;
    c->r.s = (int32_t)((1u << 8) | 1u);
    return 0;
  }
  return rq_of(&c->r, mult, shift);
}

static int is_exact_half(int32_t mult, int32_t shift) { return shift == 0 && mult == (int32_t)(1u << 30); }

static int fadd_of(fadd_t *c, const ep_op_t *op) {
  const uint32_t swap = is_exact_half(op->mult[0], op->shift[0]) ? 0u : 1u;
  c->zp = op->p.bin.zp_out;
  c->swap = swap;
  if (!is_exact_half(op->mult[swap], op->shift[swap])) return -1;
  c->z20 = (int32_t)((uint32_t)(swap ? op->p.bin.neg_zp_b : op->p.bin.neg_zp_a) << 20);
  return rin_of(&c->g, swap ? op->p.bin.neg_zp_a : op->p.bin.neg_zp_b, op->mult[1u - swap], op->shift[1u - swap]) |
         rq_of(&c->out, op->mult[2], op->shift[2]);
}

static int fmul_of(fmul_t *c, const ep_op_t *op) {
  c->za = op->p.bin.neg_zp_a;
  c->zb2 = 2 * op->p.bin.neg_zp_b;
  c->zp = op->p.bin.zp_out;
  return rq_of(&c->out, op->mult[0], op->shift[0]);
}

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

/* Decides whether layer `g` can take the short chain and fills g->f. Needs the FCs' folded biases and
 * per-channel multipliers (filled after the arena plan); per-channel shifts are rewritten in place as packed
 * rq_t shifts (the fused FCs' scratch is read by nothing else). */
static void prepare_one(ep_model_t *m, ep_gru_t *g) {
  fast_t *f = &g->f;
  const ep_op_t *ops = m->ops;
  uint32_t k, r, per_channel = ops[g->fc[0]].p.fc.per_channel ? 1u : 0u;
  int bad = 0;
  g->fast = 0;
  if (!EP_GRU_SHORT) return;
  bad |= fadd_of(&f->add_r, &ops[g->add_r]) | fadd_of(&f->add_z, &ops[g->add_z]) | fadd_of(&f->add_n, &ops[g->add_n]);
  bad |= fadd_of(&f->sub_d, &ops[g->sub_d]) | fadd_of(&f->add_h, &ops[g->add_h]);
  bad |= fmul_of(&f->mul_n, &ops[g->mul_n]) | fmul_of(&f->mul_z, &ops[g->mul_z]);
  if (bad) return;
  for (k = 0; k < FC_COUNT; k++) {
    const ep_op_t *fc = &ops[g->fc[k]];
    /* 2 * acc must fit in int32: |folded bias| + depth * 2^14 < 2^30 (int8 products are at most 2^14). */
    const uint32_t room = (1u << 30) - fc->depth * (1u << 14);
    if ((fc->p.fc.per_channel ? 1u : 0u) != per_channel || fc->depth >= (1u << 16)) return;
    for (r = 0; r < fc->rows; r++) {
      const int32_t b = fc->scratch[r];
      if ((b < 0 ? 0u - (uint32_t)b : (uint32_t)b) >= room) return;
      if (per_channel && pack_s(fc->scratch[fc->rows + r], fc->scratch[2u * fc->rows + r]) < 0) return;
    }
    if (!per_channel && pack_s(fc->mult[0], fc->shift[0]) < 0) return;
  }
  for (k = 0; k < FC_COUNT; k++) {
    ep_op_t *fc = &m->ops[g->fc[k]];
    f->fzp[k] = fc->p.fc.zp_out;
    if (per_channel) {
      for (r = 0; r < fc->rows; r++) fc->scratch[2u * fc->rows + r] = pack_s(fc->scratch[fc->rows + r], fc->scratch[2u * fc->rows + r]);
      f->fm[k] = fc->scratch + fc->rows;
      f->fs[k] = fc->scratch + 2u * fc->rows;
    } else {
      rq_t q;
      (void)rq_of(&q, fc->mult[0], fc->shift[0]);
      f->one_m[k] = q.m;
      f->one_s[k] = q.s;
      f->fm[k] = &f->one_m[k];
      f->fs[k] = &f->one_s[k];
    }
  }
  f->jmask = per_channel ? ~0u : 0u;
  /* The fused LOGISTIC/TANH tables (read by nothing else) become value-ordered, indexed by table + 128 + q. */
  {
    const int16_t t3[3] = {g->log_r, g->log_z, g->tanh_n};
    for (k = 0; k < 3u; k++) {
      int8_t *t = (int8_t *)(void *)m->ops[t3[k]].scratch, lo[128];
      memcpy(lo, t + 128, 128);
      memmove(t + 128, t, 128);
      memcpy(t, lo, 128);
    }
  }
  g->fast = 1;
}

uint32_t ep_gru_num_short(const ep_model_t *m) {
  uint32_t i, n = 0;
  for (i = 0; i < m->num_ops; i++)
    if (m->ops[i].kind == EP_K_GRU && ((const ep_gru_t *)(const void *)m->ops[i].scratch)->fast) n++;
  return n;
}

void ep_gru_prepare(ep_model_t *m) {
  uint32_t i;
  for (i = 0; i < m->num_ops; i++)
    if (m->ops[i].kind == EP_K_GRU) prepare_one(m, (ep_gru_t *)(void *)m->ops[i].scratch);
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

/* FC accumulators of role k to int8 in place, rows j0.. of the block. */
static void fc_q(const fast_t *f, uint32_t k, int32_t *a, uint32_t j0, uint32_t nb) {
  const int32_t zp = f->fzp[k];
  uint32_t e;
  if (f->jmask) {
    const int32_t *fm = f->fm[k] + j0, *fs = f->fs[k] + j0;
    for (e = 0; e < nb; e++) a[e] = sat8(rq(a[e] + a[e], fm[e], fs[e]) + zp);
  } else {
    const int32_t mm = f->one_m[k], ss = f->one_s[k];
    for (e = 0; e < nb; e++) a[e] = sat8(rq(a[e] + a[e], mm, ss) + zp);
  }
}

/* The short chain over one block (same stages as the general one). */
static void chain_fast(const fast_t *f, int32_t acc[FC_COUNT][EP_GRU_BLOCK], uint32_t nb, const int8_t *h,
                       const int8_t *tbl_r, const int8_t *tbl_z, const int8_t *tbl_n, int8_t *out, uint32_t j0) {
  uint32_t e, k;
  for (k = 0; k < FC_COUNT; k++) fc_q(f, k, acc[k], j0, nb);
  {
    const fadd_t c = f->add_r;
    const int32_t *pe = c.swap ? acc[FC_HR] : acc[FC_XR], *pg = c.swap ? acc[FC_XR] : acc[FC_HR];
    for (e = 0; e < nb; e++) acc[FC_XR][e] = tbl_r[fadd(&c, pe[e], pg[e])];
  }
  {
    const fadd_t c = f->add_z;
    const int32_t *pe = c.swap ? acc[FC_HZ] : acc[FC_XZ], *pg = c.swap ? acc[FC_XZ] : acc[FC_HZ];
    for (e = 0; e < nb; e++) acc[FC_XZ][e] = tbl_z[fadd(&c, pe[e], pg[e])];
  }
  {
    const fmul_t c = f->mul_n;
    for (e = 0; e < nb; e++) acc[FC_HN][e] = fmul(&c, acc[FC_XR][e], acc[FC_HN][e]);
  }
  {
    const fadd_t c = f->add_n;
    const int32_t *pe = c.swap ? acc[FC_HN] : acc[FC_XN], *pg = c.swap ? acc[FC_XN] : acc[FC_HN];
    for (e = 0; e < nb; e++) acc[FC_XN][e] = tbl_n[fadd(&c, pe[e], pg[e])];
  }
  {
    const fadd_t c = f->sub_d;
    if (c.swap) {
      for (e = 0; e < nb; e++) acc[FC_HR][e] = fsub_b(&c, h[e], acc[FC_XN][e]);
    } else {
      for (e = 0; e < nb; e++) acc[FC_HR][e] = fsub_a(&c, h[e], acc[FC_XN][e]);
    }
  }
  {
    const fmul_t c = f->mul_z;
    for (e = 0; e < nb; e++) acc[FC_HZ][e] = fmul(&c, acc[FC_XZ][e], acc[FC_HR][e]);
  }
  {
    const fadd_t c = f->add_h;
    const int32_t *pe = c.swap ? acc[FC_HZ] : acc[FC_XN], *pg = c.swap ? acc[FC_XN] : acc[FC_HZ];
    for (e = 0; e < nb; e++) out[e] = (int8_t)fadd(&c, pe[e], pg[e]);
  }
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
    if (g->fast) {
      chain_fast(&g->f, acc, nb, h + j0, tbl_r + 128, tbl_z + 128, tbl_n + 128, out + j0, j0);
      continue;
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
