/*
 * Fused GRU step. The exporter's streaming cell (export/README.md) computes, per layer,
 *   r = LOGISTIC(ADD(FC(x), FC(h)))      z = LOGISTIC(ADD(FC(x), FC(h)))
 *   n = TANH(ADD(FC(x), MUL(r, FC(h))))  h' = ADD(n, MUL(z, SUB(h, n)))
 * as 16 int8 ops, each writing a tensor the next one re-reads. Every op after the FCs is element-wise, so
 * element j of h' depends only on row j of the six FCs: the fused kernel computes blocks of rows of all six
 * dot products, then the whole chain per element (the short chain below: TFLM's arithmetic bit for bit, in
 * fewer instructions). A layer whose constants the short chain cannot apply is not fused (it runs op by op).
 * The pattern is matched on tensors and op kinds, not on op order; commutative ADD/MUL operands are put in
 * a canonical order by swapping them with their constants (exact: the int8 arithmetic is symmetric).
 */
#include <string.h>

#include "ep_flatbuf.h"
#include "ep_kernels.h"
#include "ep_qmath.h"

#if EP_RT_GRU /* the whole file; see ep_kernels.h */

#define EP_GRU_BLOCK 32u

/* Roles of the six FULLY_CONNECTED ops. */
enum { FC_XR, FC_HR, FC_XZ, FC_HZ, FC_XN, FC_HN, FC_COUNT };

/*
 * The short chain (ep_gru_fuse fuses a layer only if the model's constants allow it). Every rescale there is `rdbpot(srdhm(y, m), e)` with e >= 1 and |2y| < 2^31:
 * srdhm(y, m) is then one rounding high multiply of 2y (SMMULR), and the rounding shift is
 * `(p + 2^(e-1) - (y < 0)) >> e` (the sign of p may be taken from y: they differ only when p = 0, where both
 * forms give 0). `s` packs e (low byte: register shifts read only that) and 2^(e-1) << 8, so e <= 24.
 * An ADD input of exactly half the larger input scale (m = 2^30, e = 0: the reference's exact v * 2^19) is
 * written as m = 2^31 - 1, e = 1, which gives the same value for |v| <= 255; a zero multiplier as e = 1 with a
 * rounding constant 1 (result 0 for every y).
 * rz_t (ADD, SUB, MUL and per-tensor FC rescales) keeps the rounding constant and the output zero point in one
 * word, c = 2^(e-1) + zp * 2^e (adding zp * 2^e before the shift adds zp after it), so that SMMLAR forms
 * srdhm + c in one instruction; prepare checks |p| + |c| < 2^31 from each op's bound on p.
 */
typedef struct {
  int32_t m, c, e;
} rz_t;
/* ADD/SUB input: y2 = (q - zp) << 21 (twice the reference's << 20), rescaled (c without a zero point). */
typedef struct {
  int32_t z21;
  rz_t r;
} rin_t;
/* ADD/SUB: one input has the larger scale (its multiplier is exactly 1/2: the reference's (q - zp) * 2^19 with
 * no rounding), so 2 * (its term) is `z20 + (q << 20)`; the other goes through rin_t. swap: the exact input is
 * the op's input 1. */
typedef struct {
  int32_t z20;
  rin_t g;
  rz_t out;
  uint32_t swap;
} fadd_t;
/* MUL: y2 = (a - zp_a) * (2b - 2zp_b). */
typedef struct {
  int32_t za, zb2;
  rz_t out;
} fmul_t;
#define EP_RNN_FCS 8 /* FULLY_CONNECTED ops of one fused cell at most (LSTM) */
/* FC outputs: row arrays of m and packed s (per-channel: the FC's own scratch, rewritten at prepare;
 * per-tensor: an rz_t in `one`), and the output zero point. */
typedef struct {
  const int32_t *fm[EP_RNN_FCS], *fs[EP_RNN_FCS];
  int32_t fzp[EP_RNN_FCS];
  rz_t one[EP_RNN_FCS]; /* per-tensor */
  uint32_t jmask;
} fcq_t;
typedef struct {
  fadd_t add_r, add_z, add_n, sub_d, add_h;
  fmul_t mul_n, mul_z;
  fcq_t q;
} fast_t;

/* Persistent record of one fused step (start of the fused op's scratch): op and tensor indices, and the
 * element-wise ops' constants in the form the kernel uses. */
typedef struct {
  fast_t f;
  int16_t fc[FC_COUNT];
  int16_t add_r, add_z, log_r, log_z, mul_n, add_n, tanh_n, sub_d, mul_z, add_h;
  int16_t x, h, out;
  uint16_t hidden, depth_x;
  uint8_t one_pass; /* the DSP one-pass chain runs this layer (prepare_pass) */
  uint8_t slot[FC_COUNT]; /* one-pass: accumulator slot of each FC role (each gate's exact input first) */
} ep_gru_t;

#define sat8 ep_sat8

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__)
#define EP_GRU_DSP 1
#else
#define EP_GRU_DSP 0
#endif
/* The one-pass chains and their dot-product loops (DSP cores; EP_RT_RNN_PASS=0 leaves them out, e.g. a deploy build
 * whose recurrent layers are all over EP_GRU_PASS_MAX units; EP_RT_GRU_DOT16/32=0 the unrolled depth-16/32 loops). */
#ifndef EP_RT_RNN_PASS
#define EP_RT_RNN_PASS 1
#endif
#ifndef EP_RT_GRU_DOT16
#define EP_RT_GRU_DOT16 1
#endif
#ifndef EP_RT_GRU_DOT32
#define EP_RT_GRU_DOT32 1
#endif
#define EP_GRU_PASS (EP_GRU_DSP && EP_RT_RNN_PASS)
/* EP_RT_RNN_STAGES=0 leaves the stage loops out: for a deploy build prepared at export whose layers all run the one
 * pass (the exporter checks ep_rnn_staged on the target); without the one pass it has nothing else to run. */
#ifndef EP_RT_RNN_STAGES
#define EP_RT_RNN_STAGES 1
#endif
#define EP_GRU_STAGES (EP_RT_RNN_STAGES || !EP_GRU_PASS)
#if defined(__ARM_ARCH_7M__) && defined(__GNUC__)
#define EP_GRU_V7M 1
#else
#define EP_GRU_V7M 0
#endif

/* rdbpot(srdhm(y, m), e) for y2 = 2y, with m and the packed s (per-channel FC rows, see above). */
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

/* (srdhm(y, m) + c - (y < 0)) >> e for y2 = 2y: an rz_t rescale, its zero point included. */
static inline int32_t rqz(int32_t y2, int32_t m, int32_t c, int32_t e) {
#if EP_GRU_DSP
  int32_t p;
  __asm__("smmlar %0, %1, %2, %3\n\t"
          "add %0, %0, %1, asr #31\n\t"
          "asr %0, %0, %4"
          : "=&r"(p)
          : "r"(y2), "r"(m), "r"(c), "r"(e));
  return p;
#elif EP_GRU_V7M
  int32_t lo, hi = c;
  __asm__("mov %0, #0x80000000\n\t"
          "smlal %0, %1, %2, %3\n\t"
          "add %1, %1, %2, asr #31\n\t"
          "asr %1, %1, %4"
          : "=&r"(lo), "+&r"(hi)
          : "r"(y2), "r"(m), "r"(e));
  (void)lo;
  return hi;
#else
#if defined(EP_QMATH_SPLIT_MUL) && EP_QMATH_SPLIT_MUL
  int32_t p = ep_srdhm(y2 >> 1, m);
#else
  int32_t p = (int32_t)(((int64_t)y2 * (int64_t)m + ((int64_t)1 << 31)) >> 32);
#endif
  p += c + (y2 >> 31);
  return p >> e;
#endif
}

static inline int32_t rin(const rin_t *c, int32_t q) {
  return rqz(c->z21 + (int32_t)((uint32_t)q << 21), c->r.m, c->r.c, c->r.e);
}

static inline int32_t fadd_out(const fadd_t *c, int32_t y2) { return sat8(rqz(y2, c->out.m, c->out.c, c->out.e)); }

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
  return sat8(rqz((a + c->za) * (b + b + c->zb2), c->out.m, c->out.c, c->out.e));
}

/* The packed rounding shift of a (mult, shift) pair, or -1 when the short chain cannot apply it. */
EP_COLD static int32_t pack_s(int32_t mult, int32_t shift) {
  int32_t e;
  if (mult == 0) return (int32_t)((1u << 8) | 1u);
  if (shift > -1 || shift < -24) return -1;
  e = -shift;
  return (int32_t)(((uint32_t)1 << (e - 1 + 8)) | (uint32_t)e);
}

/* The rz_t of (mult, shift) with output zero point zp, for |p| < 2^pbits; -1 when the short chain cannot apply it. */
EP_COLD static int rz_of(rz_t *r, int32_t mult, int32_t shift, int32_t zp, int pbits) {
  int64_t c;
  r->m = mult;
  if (mult == 0) {
    r->e = 1, c = 1;
  } else {
    if (shift > -1 || shift < -31) return -1;
    r->e = -shift, c = (int64_t)1 << (r->e - 1);
  }
  c += (int64_t)zp * ((int64_t)1 << r->e);
  if ((c < 0 ? -c : c) + ((int64_t)1 << pbits) >= ((int64_t)1 << 31)) return -1;
  r->c = (int32_t)c;
  return 0;
}

EP_COLD static int rin_of(rin_t *c, int32_t neg_zp, int32_t mult, int32_t shift) {
  c->z21 = (int32_t)((uint32_t)neg_zp << 21);
  if (shift == 0 && mult == (int32_t)(1u << 30)) { /* v * 2^19 exactly */
    c->r.m = INT32_MAX, c->r.c = 1, c->r.e = 1;
    return 0;
  }
  return rz_of(&c->r, mult, shift, 0, 28); /* |v * 2^20 * m / 2^31| < 2^28 */
}

static int is_exact_half(int32_t mult, int32_t shift) { return shift == 0 && mult == (int32_t)(1u << 30); }

EP_COLD static int fadd_of(fadd_t *c, const ep_op_t *op) {
  const uint32_t swap = is_exact_half(op->mult[0], op->shift[0]) ? 0u : 1u;
  c->swap = swap;
  if (!is_exact_half(op->mult[swap], op->shift[swap])) return -1;
  c->z20 = (int32_t)((uint32_t)(swap ? op->p.bin.neg_zp_b : op->p.bin.neg_zp_a) << 20);
  return rin_of(&c->g, swap ? op->p.bin.neg_zp_a : op->p.bin.neg_zp_b, op->mult[1u - swap], op->shift[1u - swap]) |
         rz_of(&c->out, op->mult[2], op->shift[2], op->p.bin.zp_out, 29); /* |sum| < 2^29 */
}

EP_COLD static int fmul_of(fmul_t *c, const ep_op_t *op) {
  c->za = op->p.bin.neg_zp_a;
  c->zb2 = 2 * op->p.bin.neg_zp_b;
  return rz_of(&c->out, op->mult[0], op->shift[0], op->p.bin.zp_out, 17); /* |product| <= 255 * 255 */
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

EP_COLD static int producer(const ep_model_t *m, const graph_index_t *gi, int16_t t, uint8_t kind) {
  int16_t p;
  if (t < 0) return -1;
  p = gi->prod[t];
  if (p < 0 || m->ops[p].kind != kind || m->ops[p].fused) return -1;
  return p;
}

/* Which input of binary op `o` is made by an op of `kind` (0 or 1), -1 if none or both. */
EP_COLD static int input_from(const ep_model_t *m, const graph_index_t *gi, int o, uint8_t kind) {
  const int a = producer(m, gi, m->ops[o].in[0], kind) >= 0, b = producer(m, gi, m->ops[o].in[1], kind) >= 0;
  return a == b ? -1 : (a ? 0 : 1);
}

/* Puts input `first` of a commutative ADD/MUL in position 0, with its constants. */
EP_COLD static void canonical(ep_op_t *op, int first) {
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
EP_COLD static int gate(const ep_model_t *m, const graph_index_t *gi, int act, int16_t x, int *add, int16_t *fcx,
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
EP_COLD static int match(ep_model_t *m, const graph_index_t *gi, int o, ep_gru_t *g) {
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
  g->depth_x = (uint16_t)ops[g->fc[FC_XN]].depth;
  return 0;
}

static uint32_t widen_bytes(uint32_t depth) { return ((depth & ~3u) * 2u + 15u) & ~15u; }


/* The fused LOGISTIC/TANH tables (read by nothing else) become value-ordered, indexed by table + 128 + q. */
EP_COLD static void value_order(ep_model_t *m, int16_t op) {
  int8_t *t = (int8_t *)(void *)m->ops[op].scratch, lo[128];
  memcpy(lo, t + 128, 128);
  memmove(t + 128, t, 128);
  memcpy(t, lo, 128);
}

/* Whether a weight row is all zeros (its dot product adds nothing: the FC output is a constant). */
EP_COLD static int zero_row(const int8_t *w, uint32_t depth) {
  uint32_t d;
  for (d = 0; d < depth; d++)
    if (w[d] != 0) return 0;
  return 1;
}

/* Whether the short chain can requantise the n FCs `fc_idx`: all per-channel or all per-tensor, every shift
 * packable, 2 * acc within int32. Checked when fusing (before the arena plan) from the model's tensors: the same
 * multipliers (ep_fc_chan_multiplier) and folded biases ep_model.c computes at init. */
EP_COLD static int fc_check(const ep_model_t *m, const int16_t *fc_idx, uint32_t n) {
  const ep_op_t *ops = m->ops;
  uint32_t k, r, d, per_channel = ops[fc_idx[0]].p.fc.per_channel ? 1u : 0u;
  for (k = 0; k < n; k++) {
    const ep_op_t *fc = &ops[fc_idx[k]];
    const ep_tensor_t *w = &m->tensors[fc->in[1]], *in0 = &m->tensors[fc->in[0]], *out = &m->tensors[fc->out[0]];
    const ep_tensor_t *b = (fc->n_in == 3 && fc->in[2] >= 0) ? &m->tensors[fc->in[2]] : NULL;
    rz_t z;
    uint32_t room;
    if ((fc->p.fc.per_channel ? 1u : 0u) != per_channel || fc->depth >= (1u << 15)) return -1;
    if (per_channel ? !EP_RT_FC_PER_CHANNEL : !EP_RT_FC_PER_TENSOR) return -1; /* its chain is not compiled */
    if (!per_channel && rz_of(&z, fc->mult[0], fc->shift[0], fc->p.fc.zp_out, 30) != 0) return -1;
    room = (1u << 30) - fc->depth * (1u << 14); /* |folded bias| + depth * 2^14 < 2^30 */
    for (r = 0; r < fc->rows; r++) {
      const int8_t *wr = (const int8_t *)w->data + (size_t)r * fc->depth;
      int32_t sum = 0, fb;
      for (d = 0; d < fc->depth; d++) sum += wr[d];
      fb = (int32_t)((b ? ep_le32(b->data + 4u * r) : 0u) - (uint32_t)fc->p.fc.zp_in * (uint32_t)sum);
      if (per_channel) {
        int32_t mult, shift;
        ep_fc_chan_multiplier(in0, w, out, r, &mult, &shift);
        if (pack_s(mult, shift) < 0 && !zero_row(wr, fc->depth)) return -1;
        if (pack_s(mult, shift) < 0) continue; /* a constant row: fcq_prepare rewrites it */
      }
      if ((fb < 0 ? 0u - (uint32_t)fb : (uint32_t)fb) >= room) return -1;
    }
  }
  return 0;
}

/* Fills q for the n FCs `fc_idx` (fc_check passed): per-channel shifts are rewritten in place as packed shifts.
 * A row of zero weights whose multiplier the short chain cannot apply (pruning leaves them; the converter gives
 * them a scale near 1e-8) has a constant output, requant(folded bias): its bias becomes 2 (out - zp) and its
 * multiplier ~1 (INT32_MAX, shift -1), which gives exactly that output (srdhm(2v, INT32_MAX) = 2v for |v| < 2^8). */
EP_COLD static void fcq_prepare(ep_model_t *m, fcq_t *q, const int16_t *fc_idx, uint32_t n) {
  uint32_t k, r;
  for (k = 0; k < n; k++) {
    ep_op_t *fc = &m->ops[fc_idx[k]];
    q->fzp[k] = fc->p.fc.zp_out;
    if (fc->p.fc.per_channel) {
      const int8_t *w = (const int8_t *)m->tensors[fc->in[1]].data;
      for (r = 0; r < fc->rows; r++) {
        int32_t *bias = &fc->scratch[r], *mult = &fc->scratch[fc->rows + r], *shift = &fc->scratch[2u * fc->rows + r];
        if (pack_s(*mult, *shift) < 0 && zero_row(w + (size_t)r * fc->depth, fc->depth)) {
          const int32_t y = ep_clamp_i32(ep_mbqm(*bias, *mult, *shift) + fc->p.fc.zp_out, fc->act_min, fc->act_max);
          *bias = 2 * (y - fc->p.fc.zp_out);
          *mult = INT32_MAX;
          *shift = -1;
        }
        *shift = pack_s(*mult, *shift);
      }
      q->fm[k] = fc->scratch + fc->rows;
      q->fs[k] = fc->scratch + 2u * fc->rows;
    } else {
      (void)rz_of(&q->one[k], fc->mult[0], fc->shift[0], fc->p.fc.zp_out, 30);
    }
  }
  q->jmask = m->ops[fc_idx[0]].p.fc.per_channel ? ~0u : 0u;
}

/* The element-wise constants of layer `g` in short-chain form (its ops are canonical), and its FCs checked: 0 if
 * the layer can be fused. */
EP_COLD static int gru_short(const ep_model_t *m, ep_gru_t *g) {
  const ep_op_t *ops = m->ops;
  fast_t *f = &g->f;
  return fadd_of(&f->add_r, &ops[g->add_r]) | fadd_of(&f->add_z, &ops[g->add_z]) | fadd_of(&f->add_n, &ops[g->add_n]) |
         fadd_of(&f->sub_d, &ops[g->sub_d]) | fadd_of(&f->add_h, &ops[g->add_h]) | fmul_of(&f->mul_n, &ops[g->mul_n]) |
         fmul_of(&f->mul_z, &ops[g->mul_z]) | fc_check(m, g->fc, FC_COUNT);
}

#if EP_GRU_PASS
EP_COLD static void prepare_pass(ep_model_t *m, ep_gru_t *g);
#endif

/* After the FCs' init data exists: their requantisation constants, and the value-ordered activation tables. */
EP_COLD static void prepare_one(ep_model_t *m, ep_gru_t *g) {
  const int16_t t3[3] = {g->log_r, g->log_z, g->tanh_n};
  uint32_t k;
  fcq_prepare(m, &g->f.q, g->fc, FC_COUNT);
  for (k = 0; k < 3u; k++) value_order(m, t3[k]);
#if EP_GRU_PASS
  prepare_pass(m, g);
#else
  g->one_pass = 0;
#endif
}

/* One FC's requantisation, copied to the stack before a loop (the compiler then keeps it out of the loop: the loop's
 * int32 stores could otherwise alias it). */
typedef struct {
  const int32_t *fm, *fs;
  int32_t zp;
  rz_t one;
} fq1_t;

static inline __attribute__((always_inline)) fq1_t fq_of(const fcq_t *q, uint32_t k, uint32_t j0, int pc) {
  fq1_t r;
  r.fm = pc ? q->fm[k] + j0 : NULL;
  r.fs = pc ? q->fs[k] + j0 : NULL;
  r.zp = q->fzp[k];
  r.one = q->one[k];
  return r;
}

/* FC accumulator `a` of row e of the block to int8 (pc: per-channel rows; a constant where it is inlined). */
static inline __attribute__((always_inline)) int32_t fcq1(const fq1_t *f, int32_t a, uint32_t e, int pc) {
  if (pc) return sat8(rq(a + a, f->fm[e], f->fs[e]) + f->zp);
  return sat8(rqz(a + a, f->one.m, f->one.c, f->one.e));
}

/* A gate's input: table[ADD(FC x, FC h)] of roles kx, kx + 1, both requantised in the loop, in place of the x side. */
static inline __attribute__((always_inline)) void gate_in(const fadd_t *cp, const fcq_t *q, int32_t *ax,
                                                          const int32_t *ah, uint32_t kx, const int8_t *tbl,
                                                          uint32_t nb, uint32_t j0, int pc) {
  const fadd_t c = *cp;
  const fq1_t qx = fq_of(q, kx, j0, pc), qh = fq_of(q, kx + 1u, j0, pc);
  uint32_t e;
  if (c.swap) { /* the exact input is the h side's */
    for (e = 0; e < nb; e++) ax[e] = tbl[fadd(&c, fcq1(&qh, ah[e], e, pc), fcq1(&qx, ax[e], e, pc))];
  } else {
    for (e = 0; e < nb; e++) ax[e] = tbl[fadd(&c, fcq1(&qx, ax[e], e, pc), fcq1(&qh, ah[e], e, pc))];
  }
}

/* The short chain over one block, op by op over its rows; the FCs' requantisation done by the first op reading
 * each FC output, so no FC output goes through memory as int8. */
static inline __attribute__((always_inline)) void chain_body(const fast_t *f, int32_t acc[FC_COUNT][EP_GRU_BLOCK],
                                                             uint32_t nb, const int8_t *h, const int8_t *tbl_r,
                                                             const int8_t *tbl_z, const int8_t *tbl_n, int8_t *out,
                                                             uint32_t j0, int pc) {
  const fcq_t *q = &f->q;
  uint32_t e;
  gate_in(&f->add_r, q, acc[FC_XR], acc[FC_HR], FC_XR, tbl_r, nb, j0, pc);
  gate_in(&f->add_z, q, acc[FC_XZ], acc[FC_HZ], FC_XZ, tbl_z, nb, j0, pc);
  {
    const fmul_t c = f->mul_n;
    const fq1_t qn = fq_of(q, FC_HN, j0, pc);
    for (e = 0; e < nb; e++) acc[FC_HN][e] = fmul(&c, acc[FC_XR][e], fcq1(&qn, acc[FC_HN][e], e, pc));
  }
  {
    const fadd_t c = f->add_n;
    const fq1_t qx = fq_of(q, FC_XN, j0, pc);
    if (c.swap) {
      for (e = 0; e < nb; e++) acc[FC_XN][e] = tbl_n[fadd(&c, acc[FC_HN][e], fcq1(&qx, acc[FC_XN][e], e, pc))];
    } else {
      for (e = 0; e < nb; e++) acc[FC_XN][e] = tbl_n[fadd(&c, fcq1(&qx, acc[FC_XN][e], e, pc), acc[FC_HN][e])];
    }
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

#if EP_GRU_STAGES
static void chain_fast(const fast_t *f, int32_t acc[FC_COUNT][EP_GRU_BLOCK], uint32_t nb, const int8_t *h,
                       const int8_t *tbl_r, const int8_t *tbl_z, const int8_t *tbl_n, int8_t *out, uint32_t j0) {
  if (EP_RT_FC_PER_CHANNEL && (!EP_RT_FC_PER_TENSOR || f->q.jmask)) {
    chain_body(f, acc, nb, h, tbl_r, tbl_z, tbl_n, out, j0, 1);
  } else {
    chain_body(f, acc, nb, h, tbl_r, tbl_z, tbl_n, out, j0, 0);
  }
}
#endif

/*
 * One pass per element (DSP cores, hidden <= EP_GRU_PASS_MAX): the whole short chain of one element in registers,
 * its constants walked with LDM from a per-layer block (pass_k) and each FC row's requantisation (m, s') read with
 * one LDRD, where the stage loops above reload spilled constants and store every intermediate. s' packs e (low byte)
 * and 2^(e-1) + zp * 2^e (upper 24 bits, signed: ASR #8), so the FC's zero point costs nothing. Which input of the
 * gate ADDs is exact is fixed by the accumulator slots; the other three choices (add_n, sub_d, add_h) are NZCV flags
 * set once per element (MSR), none of the chain's instructions writes the flags.
 *   void ep_gru_pass_dsp(const int32_t *acc, const int32_t *rows, const int8_t *h, int8_t *out, int32_t *k)
 * acc: slot s of element e at acc + 32 s + e; rows: 12 words per element (stride k[PK_STRIDE] bytes, 0 per-tensor).
 */
enum { PK_R = 0, PK_MUL_N = 9, PK_ADD_N = 14, PK_Z = 23, PK_SUB = 32, PK_MUL_Z = 40, PK_ADD_H = 45, PK_SELF = 53,
       PK_STRIDE = 54, PK_FLAGS = 55, PK_END = 56, PK_W = 57, PK_B = 63, PK_WORDS = 72 };
#define EP_GRU_PASS_MAX 64u
#define PF_ADD_N 0x40000000u /* Z: add_n's exact input is the MUL */
#define PF_SUB 0x20000000u   /* C: sub_d is fsub_b */
#define PF_ADD_H 0x10000000u /* V: add_h's exact input is the MUL */

#if EP_GRU_PASS
void ep_gru_pass_dsp(const int32_t *acc, const int32_t *rows, const int8_t *h, int8_t *out, int32_t *k);
#define GP_FCQ(D, ACC, ROW)                                                                                          \
  "  ldr r5, [r0, #" ACC "]\n  ldrd r6, r7, [r1, #" ROW "]\n  lsl r5, r5, #1\n  smmulr " D ", r5, r6\n  add " D ", " \
  D ", r7, asr #8\n  add " D ", " D ", r5, asr #31\n  asr " D ", " D ", r7\n  ssat " D ", #8, " D "\n"
#define GP_SUM(E, G, L2, OP)                                                                                          \
  "  ldmia r4!, {r5, r6, r7, r10}\n  add r5, r5, " G ", lsl #21\n  smmlar r6, r5, r6, r7\n  add r6, r6, r5, asr #31\n" \
  "  asr r6, r6, r10\n  ldmia r4!, {" L2 "}\n  add r5, r5, " E ", lsl #20\n  " OP " r5, r5, r6, lsl #1\n"
#define GP_OUT(D) "  smmlar r6, r5, r7, r9\n  add r6, r6, r5, asr #31\n  asr r6, r6, r10\n  ssat " D ", #8, r6\n"
#define GP_MUL(A, B, D)                                                                                               \
  "  ldmia r4!, {r5, r6, r7, r9, r10}\n  add r5, r5, " A "\n  add r6, r6, " B ", lsl #1\n  mul r5, r5, r6\n" GP_OUT(D)
#define GP_T "r5, r7, r9, r10, r11"
#define GP_N "r5, r7, r9, r10"
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .p2align 2\n"
    "  .global ep_gru_pass_dsp\n"
    "  .type ep_gru_pass_dsp, %function\n"
    "  .thumb_func\n"
    "ep_gru_pass_dsp:\n"
    "  push {r4-r11, lr}\n"
    "  ldr r4, [sp, #36]\n"
    "  ldr r6, [r4, #220]\n" /* k[PK_FLAGS] */
    "1:\n"
    "  msr APSR_nzcvq, r6\n"
    /* r = LOGISTIC(ADD(exact, other)) -> r12 */
    GP_FCQ("r8", "0", "0") GP_FCQ("r9", "128", "8") GP_SUM("r8", "r9", GP_T, "add") GP_OUT("r6")
    "  ldrsb r12, [r11, r6]\n"
    /* MUL(r, FC hn) -> r12 */
    GP_FCQ("r8", "640", "40") GP_MUL("r12", "r8", "r12")
    /* n = TANH(ADD(FC xn, MUL)) -> r12 */
    GP_FCQ("r8", "512", "32")
    "  bne 2f\n  mov r9, r8\n  mov r8, r12\n  mov r12, r9\n"
    "2:\n" GP_SUM("r8", "r12", GP_T, "add") GP_OUT("r6")
    "  ldrsb r12, [r11, r6]\n"
    /* z -> lr */
    GP_FCQ("r8", "256", "16") GP_FCQ("r9", "384", "24") GP_SUM("r8", "r9", GP_T, "add") GP_OUT("r6")
    "  ldrsb lr, [r11, r6]\n"
    /* d = SUB(h, n) -> r8: fsub_a, or fsub_b as -(fsub_a with the roles swapped) */
    "  ldrsb r8, [r2], #1\n"
    "  bcs 3f\n" GP_SUM("r8", "r12", GP_N, "sub") "  b 4f\n"
    "3:\n" GP_SUM("r12", "r8", GP_N, "sub") "  rsb r5, r5, #0\n"
    "4:\n" GP_OUT("r8")
    /* p = MUL(z, d) -> r8; h' = ADD(n, p) */
    GP_MUL("lr", "r8", "r8")
    "  bvs 5f\n" GP_SUM("r12", "r8", GP_N, "add") "  b 6f\n"
    "5:\n" GP_SUM("r8", "r12", GP_N, "add")
    "6:\n" GP_OUT("r6")
    "  strb r6, [r3], #1\n"
    "  ldmia r4, {r4, r5, r6, r7}\n" /* self, stride, flags, end */
    "  add r1, r1, r5\n"
    "  add r0, r0, #4\n"
    "  cmp r0, r7\n"
    "  bne 1b\n"
    "  pop {r4-r11, pc}\n"
    "  .size ep_gru_pass_dsp, .-ep_gru_pass_dsp\n");
#endif

/* Bytes the one-pass chain reserves after the widened input (0: the layer runs the stage loops). */
static uint32_t pass_bytes(uint32_t hidden, int per_channel) {
  if (hidden > EP_GRU_PASS_MAX) return 0;
  return 4u * PK_WORDS + 48u * (per_channel ? hidden : 1u);
}

#if EP_GRU_PASS
static int32_t *pass_k(const ep_gru_t *g) {
  return (int32_t *)(void *)((uint8_t *)(uintptr_t)g + EP_GRU_HEAD + widen_bytes(g->depth_x));
}

EP_COLD static void put_add(int32_t *k, const fadd_t *c, const int8_t *tbl) {
  k[0] = c->g.z21, k[1] = c->g.r.m, k[2] = c->g.r.c, k[3] = c->g.r.e;
  k[4] = c->z20, k[5] = c->out.m, k[6] = c->out.c, k[7] = c->out.e;
  if (tbl) k[8] = (int32_t)(uintptr_t)tbl;
}

EP_COLD static void put_mul(int32_t *k, const fmul_t *c) {
  k[0] = c->za, k[1] = c->zb2, k[2] = c->out.m, k[3] = c->out.c, k[4] = c->out.e;
}

/* One FC row's (m, s') for the pass, or -1 when 2^(e-1) + zp * 2^e does not fit s' (the layer keeps the stage loops). */
EP_COLD static int row_pair(int32_t *out, int32_t m, int32_t e, int64_t c) {
  if (c >= ((int64_t)1 << 23) || c < -((int64_t)1 << 23) || e < 1 || e > 31) return -1;
  out[0] = m;
  out[1] = (int32_t)(((uint32_t)c << 8) | (uint32_t)e);
  return 0;
}

/* The pass's constant block and row table (after fcq_prepare and value_order); g->one_pass = 1 if they fit. */
EP_COLD static void prepare_pass(ep_model_t *m, ep_gru_t *g) {
  const fast_t *f = &g->f;
  const fcq_t *q = &f->q;
  const int pc = q->jmask != 0;
  const uint8_t role[FC_COUNT] = {(uint8_t)(f->add_r.swap ? FC_HR : FC_XR), (uint8_t)(f->add_r.swap ? FC_XR : FC_HR),
                                  (uint8_t)(f->add_z.swap ? FC_HZ : FC_XZ), (uint8_t)(f->add_z.swap ? FC_XZ : FC_HZ),
                                  FC_XN, FC_HN};
  int32_t *k = pass_k(g), *rows = k + PK_WORDS;
  const uint32_t n = g->hidden, nrows = pc ? n : 1u;
  uint32_t s, r;
  g->one_pass = 0;
  if (pass_bytes(n, pc) == 0) return;
  for (s = 0; s < FC_COUNT; s++) {
    const uint32_t kr = role[s];
    g->slot[kr] = (uint8_t)s;
    for (r = 0; r < nrows; r++) {
      int rc;
      if (pc) {
        const int32_t ps = q->fs[kr][r], e = ps & 0xFF;
        rc = row_pair(rows + 12u * r + 2u * s, q->fm[kr][r], e,
                      (int64_t)((uint32_t)ps >> 8) + (int64_t)q->fzp[kr] * ((int64_t)1 << e));
      } else {
        rc = row_pair(rows + 12u * r + 2u * s, q->one[kr].m, q->one[kr].e, q->one[kr].c);
      }
      if (rc != 0) return;
    }
  }
  put_add(k + PK_R, &f->add_r, (const int8_t *)(const void *)m->ops[g->log_r].scratch + 128);
  put_mul(k + PK_MUL_N, &f->mul_n);
  put_add(k + PK_ADD_N, &f->add_n, (const int8_t *)(const void *)m->ops[g->tanh_n].scratch + 128);
  put_add(k + PK_Z, &f->add_z, (const int8_t *)(const void *)m->ops[g->log_z].scratch + 128);
  put_add(k + PK_SUB, &f->sub_d, NULL);
  put_mul(k + PK_MUL_Z, &f->mul_z);
  put_add(k + PK_ADD_H, &f->add_h, NULL);
  for (s = 0; s < FC_COUNT; s++) {
    k[PK_W + s] = (int32_t)(uintptr_t)m->tensors[m->ops[g->fc[s]].in[1]].data;
    k[PK_B + s] = (int32_t)(uintptr_t)m->ops[g->fc[s]].scratch;
  }
  k[PK_SELF] = (int32_t)(uintptr_t)k;
  k[PK_STRIDE] = pc ? 48 : 0;
  k[PK_FLAGS] = (int32_t)((f->add_n.swap ? PF_ADD_N : 0u) | (f->sub_d.swap ? PF_SUB : 0u) |
                          (f->add_h.swap ? PF_ADD_H : 0u));
  g->one_pass = 1;
}
#endif

#if EP_GRU_PASS
void ep_dot_quads_dsp(const int8_t *w, const uint32_t *xq, const int32_t *bias, int32_t *acc, uint32_t quads,
                      uint32_t depth, const int8_t *x_tail);
void ep_dot_d4_dsp(const int8_t *w, const uint32_t *xq, const int32_t *bias, int32_t *acc, uint32_t quads);

/* x as int16 lane pairs (x0, x2), (x1, x3) per word, as ep_fc_widen. */
static inline __attribute__((always_inline)) void widen(const int8_t *x, uint32_t depth, uint32_t *xq) {
  const int8_t *end = x + (depth & ~3u);
  for (; x != end; x += 4, xq += 2) {
    uint32_t v, lo, hi;
    memcpy(&v, x, 4);
    __asm__("sxtb16 %0, %1" : "=r"(lo) : "r"(v));
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(hi) : "r"(v));
    xq[0] = lo;
    xq[1] = hi;
  }
}

/* Depth 16 and 32 (the h side of hidden-16 and -32 layers): the four rows of a quad through one pointer at fixed
 * offsets and the whole depth unrolled, so that a quad costs its products' instructions and five more
 * (ep_dot_quads_dsp keeps its pointers on the stack between quads).
 *   void ep_gru_dotD_dsp(const int8_t *w, const uint32_t *xq, const int32_t *bias, int32_t *acc, uint32_t quads) */
void ep_gru_dot16_dsp(const int8_t *w, const uint32_t *xq, const int32_t *bias, int32_t *acc, uint32_t quads);
void ep_gru_dot32_dsp(const int8_t *w, const uint32_t *xq, const int32_t *bias, int32_t *acc, uint32_t quads);
#define GD_ROW(OFF, A) \
  "  ldr r11, [r4, #" OFF "]\n  sxtb16 r12, r11\n  sxtb16 r11, r11, ror #8\n  smlad " A ", r12, r8, " A "\n" \
  "  smlad " A ", r11, r9, " A "\n"
#if EP_RT_GRU_DOT16
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .p2align 2\n"
    "  .global ep_gru_dot16_dsp\n"
    "  .type ep_gru_dot16_dsp, %function\n"
    "  .thumb_func\n"
    "ep_gru_dot16_dsp:\n"
    "  push {r4-r11, lr}\n"
    "  mov r4, r0\n  mov r7, r1\n  mov r5, r2\n  mov r6, r3\n"
    "  ldr lr, [sp, #36]\n"
    "1:\n"
    "  ldmia r5!, {r0-r3}\n"
    "  ldrd r8, r9, [r7, #0]\n" GD_ROW("0", "r0") GD_ROW("16", "r1") GD_ROW("32", "r2") GD_ROW("48", "r3")
    "  ldrd r8, r9, [r7, #8]\n" GD_ROW("4", "r0") GD_ROW("20", "r1") GD_ROW("36", "r2") GD_ROW("52", "r3")
    "  ldrd r8, r9, [r7, #16]\n" GD_ROW("8", "r0") GD_ROW("24", "r1") GD_ROW("40", "r2") GD_ROW("56", "r3")
    "  ldrd r8, r9, [r7, #24]\n" GD_ROW("12", "r0") GD_ROW("28", "r1") GD_ROW("44", "r2") GD_ROW("60", "r3")
    "  stmia r6!, {r0-r3}\n"
    "  add r4, r4, #64\n"
    "  subs lr, lr, #1\n"
    "  bne 1b\n"
    "  pop {r4-r11, pc}\n"
    "  .size ep_gru_dot16_dsp, .-ep_gru_dot16_dsp\n");
#endif
#if EP_RT_GRU_DOT32
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .p2align 2\n"
    "  .global ep_gru_dot32_dsp\n"
    "  .type ep_gru_dot32_dsp, %function\n"
    "  .thumb_func\n"
    "ep_gru_dot32_dsp:\n"
    "  push {r4-r11, lr}\n"
    "  mov r4, r0\n  mov r7, r1\n  mov r5, r2\n  mov r6, r3\n"
    "  ldr lr, [sp, #36]\n"
    "1:\n"
    "  ldmia r5!, {r0-r3}\n"
    "  ldrd r8, r9, [r7, #0]\n" GD_ROW("0", "r0") GD_ROW("32", "r1") GD_ROW("64", "r2") GD_ROW("96", "r3")
    "  ldrd r8, r9, [r7, #8]\n" GD_ROW("4", "r0") GD_ROW("36", "r1") GD_ROW("68", "r2") GD_ROW("100", "r3")
    "  ldrd r8, r9, [r7, #16]\n" GD_ROW("8", "r0") GD_ROW("40", "r1") GD_ROW("72", "r2") GD_ROW("104", "r3")
    "  ldrd r8, r9, [r7, #24]\n" GD_ROW("12", "r0") GD_ROW("44", "r1") GD_ROW("76", "r2") GD_ROW("108", "r3")
    "  ldrd r8, r9, [r7, #32]\n" GD_ROW("16", "r0") GD_ROW("48", "r1") GD_ROW("80", "r2") GD_ROW("112", "r3")
    "  ldrd r8, r9, [r7, #40]\n" GD_ROW("20", "r0") GD_ROW("52", "r1") GD_ROW("84", "r2") GD_ROW("116", "r3")
    "  ldrd r8, r9, [r7, #48]\n" GD_ROW("24", "r0") GD_ROW("56", "r1") GD_ROW("88", "r2") GD_ROW("120", "r3")
    "  ldrd r8, r9, [r7, #56]\n" GD_ROW("28", "r0") GD_ROW("60", "r1") GD_ROW("92", "r2") GD_ROW("124", "r3")
    "  stmia r6!, {r0-r3}\n"
    "  add r4, r4, #128\n"
    "  subs lr, lr, #1\n"
    "  bne 1b\n"
    "  pop {r4-r11, pc}\n"
    "  .size ep_gru_dot32_dsp, .-ep_gru_dot32_dsp\n");
#endif

/* Rows j0.. of the FC with weights w and biases b (pointer words of a pass block) into accumulators a. */
static inline __attribute__((always_inline)) void dot_into(int32_t w_word, int32_t b_word, int32_t *a, uint32_t j0,
                                                           uint32_t nb, uint32_t depth, const int8_t *xin,
                                                           const uint32_t *xq) {
  const int8_t *w = (const int8_t *)(uintptr_t)w_word + (size_t)j0 * depth;
  const int32_t *bias = (const int32_t *)(uintptr_t)b_word + j0;
  if ((nb & 3u) != 0 || depth >= 64u) {
    ep_fc_dot_rows(w, xin, xq, bias, a, nb, depth);
  } else if (depth == 4u) {
    ep_dot_d4_dsp(w, xq, bias, a, nb >> 2);
  } else if (EP_RT_GRU_DOT16 && depth == 16u) {
    ep_gru_dot16_dsp(w, xq, bias, a, nb >> 2);
  } else if (EP_RT_GRU_DOT32 && depth == 32u) {
    ep_gru_dot32_dsp(w, xq, bias, a, nb >> 2);
  } else {
    ep_dot_quads_dsp(w, xq, bias, a, nb >> 2, depth, xin + (depth & ~3u));
  }
}

/* Rows j0.. of FC role k into its accumulator slot. */
static inline __attribute__((always_inline)) void pass_dot(const int32_t *pk, const ep_gru_t *g, uint32_t k,
                                                           int32_t acc[FC_COUNT][EP_GRU_BLOCK], uint32_t j0,
                                                           uint32_t nb, uint32_t depth, const int8_t *xin,
                                                           const uint32_t *xq) {
  dot_into(pk[PK_W + k], pk[PK_B + k], acc[g->slot[k]], j0, nb, depth, xin, xq);
}

/* One step of a one-pass layer: the six dot products straight into the assembly loops (rows of quads; the
 * general entry only for a row count not a multiple of 4 or depth 64), then the pass per block. */
__attribute__((noinline)) static void pass_run(const ep_model_t *m, const ep_gru_t *g, uint32_t *xq_x,
                                               uint32_t *xq_h) {
  int32_t *pk = pass_k(g);
  const int8_t *x = (const int8_t *)m->tensors[g->x].data, *h = (const int8_t *)m->tensors[g->h].data;
  int8_t *out = (int8_t *)m->tensors[g->out].data;
  const int32_t *rows = pk + PK_WORDS;
  const uint32_t n = g->hidden, dx = g->depth_x, stride = (uint32_t)pk[PK_STRIDE] / 4u;
  uint32_t j0;
  widen(x, dx, xq_x);
  widen(h, n, xq_h);
  for (j0 = 0; j0 < n; j0 += EP_GRU_BLOCK) {
    int32_t acc[FC_COUNT][EP_GRU_BLOCK];
    const uint32_t nb = n - j0 < EP_GRU_BLOCK ? n - j0 : EP_GRU_BLOCK;
    pass_dot(pk, g, FC_XR, acc, j0, nb, dx, x, xq_x);
    pass_dot(pk, g, FC_HR, acc, j0, nb, n, h, xq_h);
    pass_dot(pk, g, FC_XZ, acc, j0, nb, dx, x, xq_x);
    pass_dot(pk, g, FC_HZ, acc, j0, nb, n, h, xq_h);
    pass_dot(pk, g, FC_XN, acc, j0, nb, dx, x, xq_x);
    pass_dot(pk, g, FC_HN, acc, j0, nb, n, h, xq_h);
    pk[PK_END] = (int32_t)(uintptr_t)(acc[0] + nb);
    ep_gru_pass_dsp(acc[0], rows + j0 * stride, h + j0, out + j0, pk);
  }
}
#endif

int ep_k_gru(const ep_model_t *m, const ep_op_t *op) {
  const ep_gru_t *g = (const ep_gru_t *)(const void *)op->scratch;
#if EP_GRU_PASS
  if (g->one_pass) {
    pass_run(m, g, (uint32_t *)(void *)((uint8_t *)op->scratch + EP_GRU_HEAD), (uint32_t *)(void *)m->fc_tmp);
    return 0;
  }
#endif
#if !EP_GRU_STAGES
  return EP_RT_ERR_OP;
#else
  const ep_op_t *ops = m->ops;
  const int8_t *w[FC_COUNT];
  const int8_t *x = (const int8_t *)m->tensors[g->x].data, *h = (const int8_t *)m->tensors[g->h].data;
  /* value-ordered tables (prepare_one): indexed by table + 128 + q */
  const int8_t *tbl_r = (const int8_t *)(const void *)ops[g->log_r].scratch + 128;
  const int8_t *tbl_z = (const int8_t *)(const void *)ops[g->log_z].scratch + 128;
  const int8_t *tbl_n = (const int8_t *)(const void *)ops[g->tanh_n].scratch + 128;
  int8_t *out = (int8_t *)m->tensors[g->out].data;
  uint32_t *xq_x = (uint32_t *)(void *)((uint8_t *)op->scratch + EP_GRU_HEAD);
  uint32_t *xq_h = (uint32_t *)(void *)m->fc_tmp;
  const uint32_t n = g->hidden, dx = g->depth_x;
  uint32_t j0, k;
  for (k = 0; k < FC_COUNT; k++) w[k] = (const int8_t *)m->tensors[ops[g->fc[k]].in[1]].data;
  ep_fc_widen(x, dx, xq_x);
  ep_fc_widen(h, n, xq_h);
  for (j0 = 0; j0 < n; j0 += EP_GRU_BLOCK) {
    int32_t acc[FC_COUNT][EP_GRU_BLOCK];
    const uint32_t nb = n - j0 < EP_GRU_BLOCK ? n - j0 : EP_GRU_BLOCK;
    for (k = 0; k < FC_COUNT; k++) {
      const int is_h = (int)(k & 1u);
      const uint32_t depth = is_h ? n : dx;
      ep_fc_dot_rows(w[k] + (size_t)j0 * depth, is_h ? h : x, is_h ? xq_h : xq_x, ops[g->fc[k]].scratch + j0, acc[k],
                     nb, depth);
    }
    chain_fast(&g->f, acc, nb, h + j0, tbl_r, tbl_z, tbl_n, out + j0, j0);
  }
  return 0;
#endif
}

/*
 * Fused LSTM step. The exporter's cell (host/models/lstm.py) per layer:
 *   i = LOGISTIC(ADD(FC(x), FC(h)))  f = LOGISTIC(...)  g = TANH(...)  o = LOGISTIC(...)
 *   c' = ADD(MUL(f, c), MUL(i, g))   h' = MUL(o, TANH(c'))
 * as 26 int8 ops; the fused op (in place of the final MUL) computes blocks of rows of the eight dot products, then
 * the chain per element, and writes both c' (planned as before: a graph output) and h'.
 */
enum { L_XI, L_HI, L_XF, L_HF, L_XG, L_HG, L_XO, L_HO, L_COUNT };
enum { G_I, G_F, G_G, G_O };

typedef struct {
  fadd_t add[4], add_c;
  fmul_t mul_fc, mul_ig, mul_h;
  fcq_t q;
  int16_t fc[L_COUNT], gate_add[4], act[4];
  int16_t mul_fc_op, mul_ig_op, add_c_op, tanh_c, mul_h_op;
  int16_t x, h, c, c_out, h_out;
  uint16_t hidden, depth_x;
  uint8_t one_pass; /* the DSP one-pass chain runs this layer (prepare_lpass) */
  uint8_t slot[L_COUNT]; /* one-pass: accumulator slot of each FC role (each gate's exact input first) */
} ep_lstm_t;

#define EP_LSTM_HEAD ((sizeof(ep_lstm_t) + 15u) & ~15u)

#if EP_RT_LSTM

#if EP_GRU_STAGES
/* FC accumulators of role k to int8 in place, rows j0.. of the block. */
static void fc_q(const fcq_t *f, uint32_t k, int32_t *a, uint32_t j0, uint32_t nb) {
  const int32_t zp = f->fzp[k];
  uint32_t e;
  if (f->jmask) {
    const int32_t *fm = f->fm[k] + j0, *fs = f->fs[k] + j0;
    for (e = 0; e < nb; e++) a[e] = sat8(rq(a[e] + a[e], fm[e], fs[e]) + zp);
  } else {
    const rz_t z = f->one[k];
    (void)zp;
    for (e = 0; e < nb; e++) a[e] = sat8(rqz(a[e] + a[e], z.m, z.c, z.e));
  }
}
#endif

/* Matches the pattern ending in MUL op `o` (h' = o * tanh(c')); fills `l` and returns 0 on success. */
EP_COLD static int match_lstm(ep_model_t *m, const graph_index_t *gi, int o, ep_lstm_t *l) {
  const ep_op_t *ops = m->ops;
  int k, kg0, kg1, kf, add_c, tanh_c, log_o, mul_fc, mul_ig, m0, m1, add[4], act[4];
  int16_t x, h, c;
  uint32_t n, e;
  k = input_from(m, gi, o, EP_K_TANH_I8);
  if (k < 0) return -1;
  tanh_c = producer(m, gi, ops[o].in[k], EP_K_TANH_I8);
  log_o = producer(m, gi, ops[o].in[1 - k], EP_K_LOGISTIC_I8);
  if (log_o < 0) return -1;
  add_c = producer(m, gi, ops[tanh_c].in[0], EP_K_ADD_I8);
  if (add_c < 0) return -1;
  m0 = producer(m, gi, ops[add_c].in[0], EP_K_MUL_I8);
  m1 = producer(m, gi, ops[add_c].in[1], EP_K_MUL_I8);
  if (m0 < 0 || m1 < 0) return -1;
  kg0 = input_from(m, gi, m0, EP_K_TANH_I8);
  kg1 = input_from(m, gi, m1, EP_K_TANH_I8);
  if ((kg0 < 0) == (kg1 < 0)) return -1;
  mul_ig = kg0 >= 0 ? m0 : m1, mul_fc = kg0 >= 0 ? m1 : m0;
  k = kg0 >= 0 ? kg0 : kg1;
  act[G_G] = producer(m, gi, ops[mul_ig].in[k], EP_K_TANH_I8);
  act[G_I] = producer(m, gi, ops[mul_ig].in[1 - k], EP_K_LOGISTIC_I8);
  kf = input_from(m, gi, mul_fc, EP_K_LOGISTIC_I8);
  if (act[G_I] < 0 || kf < 0) return -1;
  act[G_F] = producer(m, gi, ops[mul_fc].in[kf], EP_K_LOGISTIC_I8);
  c = ops[mul_fc].in[1 - kf];
  if (c < 0 || gi->prod[c] >= 0 || m->tensors[c].is_const) return -1;
  act[G_O] = log_o;
  /* x and h: the two inputs of the o gate's FCs (which is which does not matter: each FC reads its own). */
  {
    const int a = producer(m, gi, ops[log_o].in[0], EP_K_ADD_I8);
    int f0, f1;
    if (a < 0) return -1;
    f0 = producer(m, gi, ops[a].in[0], EP_K_FC_I8);
    f1 = producer(m, gi, ops[a].in[1], EP_K_FC_I8);
    if (f0 < 0 || f1 < 0) return -1;
    x = ops[f0].in[0], h = ops[f1].in[0];
    if (x == h || x == c || h == c) return -1;
  }
  for (k = 0; k < 4; k++)
    if (gate(m, gi, act[k], x, &add[k], &l->fc[2 * k], &l->fc[2 * k + 1]) != 0 || ops[l->fc[2 * k + 1]].in[0] != h)
      return -1;
  n = n_elems(&m->tensors[ops[o].out[0]]);
  if (n == 0 || n > 0xFFFFu || n_elems(&m->tensors[h]) != n || n_elems(&m->tensors[c]) != n) return -1;
  for (k = 0; k < L_COUNT; k++) {
    const ep_op_t *fc = &ops[l->fc[k]];
    if (fc->batches != 1 || fc->rows != n || gi->uses[fc->out[0]] != 1) return -1;
    if (fc->act_min != -128 || fc->act_max != 127) return -1;
  }
  if (ops[l->fc[L_XI]].depth != ops[l->fc[L_XF]].depth || ops[l->fc[L_XI]].depth != ops[l->fc[L_XG]].depth ||
      ops[l->fc[L_XI]].depth != ops[l->fc[L_XO]].depth)
    return -1;
  {
    /* Element-wise ops on n elements, no fused clamp; intermediates read only inside the group (c' may also be a
     * graph output or feed other ops: it is written). */
    const int ew[] = {add[0], add[1], add[2], add[3], act[0], act[1], act[2], act[3], mul_fc, mul_ig, add_c, tanh_c, o};
    for (e = 0; e < sizeof ew / sizeof ew[0]; e++) {
      const ep_op_t *op = &ops[ew[e]];
      uint32_t i;
      for (i = 0; i < op->n_in; i++)
        if (n_elems(&m->tensors[op->in[i]]) != n) return -1;
      if (n_elems(&m->tensors[op->out[0]]) != n) return -1;
      if (ew[e] != o && ew[e] != add_c && gi->uses[op->out[0]] != 1) return -1;
      if (op->kind != EP_K_LOGISTIC_I8 && op->kind != EP_K_TANH_I8 && (op->act_min != -128 || op->act_max != 127))
        return -1;
    }
  }
  for (k = 0; k < 4; k++) canonical(&m->ops[add[k]], m->ops[add[k]].in[0] == ops[l->fc[2 * k]].out[0] ? 0 : 1);
  canonical(&m->ops[mul_ig], m->ops[mul_ig].in[0] == ops[act[G_I]].out[0] ? 0 : 1);
  canonical(&m->ops[mul_fc], m->ops[mul_fc].in[0] == ops[act[G_F]].out[0] ? 0 : 1);
  canonical(&m->ops[add_c], m->ops[add_c].in[0] == ops[mul_fc].out[0] ? 0 : 1);
  canonical(&m->ops[o], m->ops[o].in[0] == ops[log_o].out[0] ? 0 : 1);
  for (k = 0; k < 4; k++) l->gate_add[k] = (int16_t)add[k], l->act[k] = (int16_t)act[k];
  l->mul_fc_op = (int16_t)mul_fc, l->mul_ig_op = (int16_t)mul_ig, l->add_c_op = (int16_t)add_c;
  l->tanh_c = (int16_t)tanh_c, l->mul_h_op = (int16_t)o;
  l->x = x, l->h = h, l->c = c, l->c_out = ops[add_c].out[0], l->h_out = ops[o].out[0];
  l->hidden = (uint16_t)n;
  l->depth_x = (uint16_t)ops[l->fc[L_XI]].depth;
  return 0;
}

/* Turns a matched LSTM (final MUL op i) into one EP_K_LSTM op; its record goes to `mem`. */
EP_COLD static void fuse_lstm(ep_model_t *m, uint32_t i, const ep_lstm_t *l, uint8_t *mem, uint32_t need) {
  const int16_t parts[] = {l->fc[0], l->fc[1], l->fc[2], l->fc[3], l->fc[4], l->fc[5], l->fc[6], l->fc[7],
                           l->gate_add[0], l->gate_add[1], l->gate_add[2], l->gate_add[3], l->act[0], l->act[1],
                           l->act[2], l->act[3], l->mul_fc_op, l->mul_ig_op, l->add_c_op, l->tanh_c};
  const int16_t reads[3] = {l->x, l->h, l->c};
  ep_op_t *op = &m->ops[i];
  uint32_t k;
  for (k = 0; k < sizeof parts / sizeof parts[0]; k++) {
    m->ops[parts[k]].fused = 1;
    if (parts[k] == l->add_c_op) continue; /* c' is written by the fused op: it stays planned */
    m->tensors[m->ops[parts[k]].out[0]].first_use = -1;
    m->tensors[m->ops[parts[k]].out[0]].last_use = -1;
  }
  for (k = 0; k < 3u; k++)
    if (m->tensors[reads[k]].last_use < (int16_t)i) m->tensors[reads[k]].last_use = (int16_t)i;
  op->kind = EP_K_LSTM;
  op->out[1] = l->c_out; /* it writes c' too (the sequence loop's carry list looks at outputs) */
  op->n_out = 2;
  op->scratch = (int32_t *)(void *)mem;
  op->scratch_bytes = need;
  memcpy(op->scratch, l, sizeof *l);
  m->num_fused++;
}

/* The element-wise constants of LSTM layer `l` in short-chain form, and its FCs checked: 0 if it can be fused. */
EP_COLD static int lstm_short(const ep_model_t *m, ep_lstm_t *l) {
  const ep_op_t *ops = m->ops;
  uint32_t k;
  int bad = 0;
  for (k = 0; k < 4u; k++) bad |= fadd_of(&l->add[k], &ops[l->gate_add[k]]);
  bad |= fadd_of(&l->add_c, &ops[l->add_c_op]) | fmul_of(&l->mul_fc, &ops[l->mul_fc_op]);
  bad |= fmul_of(&l->mul_ig, &ops[l->mul_ig_op]) | fmul_of(&l->mul_h, &ops[l->mul_h_op]);
  return bad | fc_check(m, l->fc, L_COUNT);
}

#if EP_GRU_PASS
EP_COLD static void prepare_lpass(ep_model_t *m, ep_lstm_t *l);
#endif

EP_COLD static void prepare_lstm(ep_model_t *m, ep_lstm_t *l) {
  uint32_t k;
  fcq_prepare(m, &l->q, l->fc, L_COUNT);
  for (k = 0; k < 4u; k++) value_order(m, l->act[k]);
  value_order(m, l->tanh_c);
#if EP_GRU_PASS
  prepare_lpass(m, l);
#else
  l->one_pass = 0;
#endif
}

/* ADD(x-FC, h-FC) gate into the x-FC's accumulators, through the value-ordered table. */
#if EP_GRU_STAGES
static void gate_stage(const fadd_t *cp, int32_t *ax, const int32_t *ah, const int8_t *tbl, uint32_t nb) {
  const fadd_t c = *cp;
  const int32_t *pe = c.swap ? ah : ax, *pg = c.swap ? ax : ah;
  uint32_t e;
  for (e = 0; e < nb; e++) ax[e] = tbl[fadd(&c, pe[e], pg[e])];
}
#endif

#if EP_GRU_STAGES
static void chain_lstm_fast(const ep_lstm_t *l, int32_t acc[L_COUNT][EP_GRU_BLOCK], uint32_t nb, const int8_t *c,
                            const int8_t *const *tbl, int8_t *c_out, int8_t *h_out, uint32_t j0) {
  uint32_t e, k;
  for (k = 0; k < L_COUNT; k++) fc_q(&l->q, k, acc[k], j0, nb);
  for (k = 0; k < 4u; k++) gate_stage(&l->add[k], acc[2 * k], acc[2 * k + 1], tbl[k], nb);
  {
    const fmul_t mf = l->mul_fc, mi = l->mul_ig;
    const fadd_t ca = l->add_c;
    const int32_t *gi = acc[L_XI], *gf = acc[L_XF], *gg = acc[L_XG];
    for (e = 0; e < nb; e++) {
      const int32_t p = fmul(&mf, gf[e], c[e]), q = fmul(&mi, gi[e], gg[e]);
      c_out[e] = (int8_t)(ca.swap ? fadd(&ca, q, p) : fadd(&ca, p, q));
    }
  }
  {
    const fmul_t mh = l->mul_h;
    const int32_t *go = acc[L_XO];
    const int8_t *tc = tbl[4];
    for (e = 0; e < nb; e++) h_out[e] = (int8_t)fmul(&mh, go[e], tc[c_out[e]]);
  }
}
#endif



/*
 * The LSTM's one pass per element (DSP cores, hidden <= EP_GRU_PASS_MAX), as ep_gru_pass_dsp: gates i, f, g, o
 * from accumulator slots 2k (exact input) and 2k + 1, p = f * c, q = i * g, c' = ADD(p, q) (Z flag: q exact),
 * h' = o * TANH(c'). Rows: 16 words per element.
 *   void ep_lstm_pass_dsp(const int32_t *acc, const int32_t *rows, const int8_t *c, int8_t *c_out, int32_t *k)
 * h' is stored at c_out + k[LK_MUL_H + 5].
 */
enum { LK_I = 0, LK_F = 9, LK_MUL_FC = 18, LK_G = 23, LK_MUL_IG = 32, LK_ADD_C = 37, LK_O = 46, LK_MUL_H = 55,
       LK_SELF = 61, LK_STRIDE = 62, LK_FLAGS = 63, LK_END = 64, LK_W = 65, LK_B = 73, LK_WORDS = 84 };
#define LF_ADD_C 0x40000000u /* Z: c' = ADD's exact input is i * g */

#if EP_GRU_PASS
void ep_lstm_pass_dsp(const int32_t *acc, const int32_t *rows, const int8_t *c, int8_t *c_out, int32_t *k);
#define LP_GATE(S0, S1, R0, R1, D) \
  GP_FCQ("r8", S0, R0) GP_FCQ("r9", S1, R1) GP_SUM("r8", "r9", GP_T, "add") GP_OUT("r6") "  ldrsb " D ", [r11, r6]\n"
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .p2align 2\n"
    "  .global ep_lstm_pass_dsp\n"
    "  .type ep_lstm_pass_dsp, %function\n"
    "  .thumb_func\n"
    "ep_lstm_pass_dsp:\n"
    "  push {r4-r11, lr}\n"
    "  ldr r4, [sp, #36]\n"
    "  ldr r6, [r4, #252]\n" /* k[LK_FLAGS] */
    "1:\n"
    "  msr APSR_nzcvq, r6\n"
    LP_GATE("0", "128", "0", "8", "r12")      /* i -> r12 */
    LP_GATE("256", "384", "16", "24", "r11")  /* f -> r11 */
    "  ldrsb r8, [r2], #1\n"
    GP_MUL("r11", "r8", "lr")                 /* p = f * c -> lr */
    LP_GATE("512", "640", "32", "40", "r8")   /* g -> r8 */
    GP_MUL("r12", "r8", "r12")                /* q = i * g -> r12 */
    "  beq 3f\n" GP_SUM("lr", "r12", GP_T, "add") "  b 4f\n"
    "3:\n" GP_SUM("r12", "lr", GP_T, "add")
    "4:\n" GP_OUT("r6")
    "  strb r6, [r3]\n"
    "  ldrsb r12, [r11, r6]\n"                /* TANH(c') -> r12 */
    LP_GATE("768", "896", "48", "56", "r8")   /* o -> r8 */
    "  ldmia r4!, {r5, r6, r7, r9, r10, r11}\n"
    "  add r5, r5, r8\n  add r6, r6, r12, lsl #1\n  mul r5, r5, r6\n" GP_OUT("r6")
    "  strb r6, [r3, r11]\n"
    "  add r3, r3, #1\n"
    "  ldmia r4, {r4, r5, r6, r7}\n" /* self, stride, flags, end */
    "  add r1, r1, r5\n"
    "  add r0, r0, #4\n"
    "  cmp r0, r7\n"
    "  bne 1b\n"
    "  pop {r4-r11, pc}\n"
    "  .size ep_lstm_pass_dsp, .-ep_lstm_pass_dsp\n");
#endif

static uint32_t lpass_bytes(uint32_t hidden, int per_channel) {
  if (hidden > EP_GRU_PASS_MAX) return 0;
  return 4u * LK_WORDS + 64u * (per_channel ? hidden : 1u);
}

#if EP_GRU_PASS
static int32_t *lpass_k(const ep_lstm_t *l) {
  return (int32_t *)(void *)((uint8_t *)(uintptr_t)l + EP_LSTM_HEAD + widen_bytes(l->depth_x));
}

/* The LSTM pass's constant block and rows (after fcq_prepare and value_order); l->one_pass = 1 if they fit. */
EP_COLD static void prepare_lpass(ep_model_t *m, ep_lstm_t *l) {
  const fcq_t *q = &l->q;
  const int pc = q->jmask != 0;
  int32_t *k = lpass_k(l), *rows = k + LK_WORDS;
  const uint32_t n = l->hidden, nrows = pc ? n : 1u;
  static const uint8_t gate_k[4] = {LK_I, LK_F, LK_G, LK_O};
  uint32_t s, r;
  l->one_pass = 0;
  if (lpass_bytes(n, pc) == 0) return;
  for (s = 0; s < L_COUNT; s++) {
    const uint32_t g = s / 2u, kr = 2u * g + ((s & 1u) ^ (l->add[g].swap ? 1u : 0u));
    l->slot[kr] = (uint8_t)s;
    for (r = 0; r < nrows; r++) {
      int rc;
      if (pc) {
        const int32_t ps = q->fs[kr][r], e = ps & 0xFF;
        rc = row_pair(rows + 16u * r + 2u * s, q->fm[kr][r], e,
                      (int64_t)((uint32_t)ps >> 8) + (int64_t)q->fzp[kr] * ((int64_t)1 << e));
      } else {
        rc = row_pair(rows + 16u * r + 2u * s, q->one[kr].m, q->one[kr].e, q->one[kr].c);
      }
      if (rc != 0) return;
    }
  }
  for (s = 0; s < 4u; s++)
    put_add(k + gate_k[s], &l->add[s], (const int8_t *)(const void *)m->ops[l->act[s]].scratch + 128);
  put_mul(k + LK_MUL_FC, &l->mul_fc);
  put_mul(k + LK_MUL_IG, &l->mul_ig);
  put_add(k + LK_ADD_C, &l->add_c, (const int8_t *)(const void *)m->ops[l->tanh_c].scratch + 128);
  put_mul(k + LK_MUL_H, &l->mul_h);
  for (s = 0; s < L_COUNT; s++) {
    k[LK_W + s] = (int32_t)(uintptr_t)m->tensors[m->ops[l->fc[s]].in[1]].data;
    k[LK_B + s] = (int32_t)(uintptr_t)m->ops[l->fc[s]].scratch;
  }
  k[LK_SELF] = (int32_t)(uintptr_t)k;
  k[LK_STRIDE] = pc ? 64 : 0;
  k[LK_FLAGS] = (int32_t)(l->add_c.swap ? LF_ADD_C : 0u);
  l->one_pass = 1;
}

/* One step of a one-pass LSTM layer (as pass_run). */
__attribute__((noinline)) static void lpass_run(const ep_model_t *m, const ep_lstm_t *l, uint32_t *xq_x,
                                                uint32_t *xq_h) {
  int32_t *pk = lpass_k(l);
  const int8_t *x = (const int8_t *)m->tensors[l->x].data, *h = (const int8_t *)m->tensors[l->h].data;
  const int8_t *c = (const int8_t *)m->tensors[l->c].data;
  int8_t *c_out = (int8_t *)m->tensors[l->c_out].data, *h_out = (int8_t *)m->tensors[l->h_out].data;
  const int32_t *rows = pk + LK_WORDS;
  const uint32_t n = l->hidden, dx = l->depth_x, stride = (uint32_t)pk[LK_STRIDE] / 4u;
  uint32_t j0, k;
  widen(x, dx, xq_x);
  widen(h, n, xq_h);
  pk[LK_MUL_H + 5] = (int32_t)(h_out - c_out);
  for (j0 = 0; j0 < n; j0 += EP_GRU_BLOCK) {
    int32_t acc[L_COUNT][EP_GRU_BLOCK];
    const uint32_t nb = n - j0 < EP_GRU_BLOCK ? n - j0 : EP_GRU_BLOCK;
    for (k = 0; k < L_COUNT; k += 2u) {
      dot_into(pk[LK_W + k], pk[LK_B + k], acc[l->slot[k]], j0, nb, dx, x, xq_x);
      dot_into(pk[LK_W + k + 1u], pk[LK_B + k + 1u], acc[l->slot[k + 1u]], j0, nb, n, h, xq_h);
    }
    pk[LK_END] = (int32_t)(uintptr_t)(acc[0] + nb);
    ep_lstm_pass_dsp(acc[0], rows + j0 * stride, c + j0, c_out + j0, pk);
  }
}
#endif

int ep_k_lstm(const ep_model_t *m, const ep_op_t *op) {
  const ep_lstm_t *l = (const ep_lstm_t *)(const void *)op->scratch;
#if EP_GRU_PASS
  if (l->one_pass) {
    lpass_run(m, l, (uint32_t *)(void *)((uint8_t *)op->scratch + EP_LSTM_HEAD), (uint32_t *)(void *)m->fc_tmp);
    return 0;
  }
#endif
#if !EP_GRU_STAGES
  return EP_RT_ERR_OP;
#else
  const ep_op_t *ops = m->ops;
  const int8_t *x = (const int8_t *)m->tensors[l->x].data, *h = (const int8_t *)m->tensors[l->h].data;
  const int8_t *c = (const int8_t *)m->tensors[l->c].data;
  int8_t *c_out = (int8_t *)m->tensors[l->c_out].data, *h_out = (int8_t *)m->tensors[l->h_out].data;
  uint32_t *xq_x = (uint32_t *)(void *)((uint8_t *)op->scratch + EP_LSTM_HEAD);
  uint32_t *xq_h = (uint32_t *)(void *)m->fc_tmp;
  const uint32_t n = l->hidden, dx = l->depth_x;
  const int8_t *tbl[5];
  const int8_t *w[L_COUNT];
  uint32_t j0, k;
  for (k = 0; k < 4u; k++) tbl[k] = (const int8_t *)(const void *)ops[l->act[k]].scratch + 128; /* value-ordered */
  tbl[4] = (const int8_t *)(const void *)ops[l->tanh_c].scratch + 128;
  for (k = 0; k < L_COUNT; k++) w[k] = (const int8_t *)m->tensors[ops[l->fc[k]].in[1]].data;
  ep_fc_widen(x, dx, xq_x);
  ep_fc_widen(h, n, xq_h);
  for (j0 = 0; j0 < n; j0 += EP_GRU_BLOCK) {
    int32_t acc[L_COUNT][EP_GRU_BLOCK];
    const uint32_t nb = n - j0 < EP_GRU_BLOCK ? n - j0 : EP_GRU_BLOCK;
    for (k = 0; k < L_COUNT; k++) {
      const int is_h = (int)(k & 1u);
      const uint32_t depth = is_h ? n : dx;
      ep_fc_dot_rows(w[k] + (size_t)j0 * depth, is_h ? h : x, is_h ? xq_h : xq_x, ops[l->fc[k]].scratch + j0, acc[k],
                     nb, depth);
    }
    chain_lstm_fast(l, acc, nb, c + j0, tbl, c_out + j0, h_out + j0, j0);
  }
  return 0;
#endif
}

#endif /* EP_RT_LSTM */

/* Layers left to the stage loops: constants the one pass cannot hold (ep_kernels.h). */
uint32_t ep_rnn_staged(const ep_model_t *m) {
  uint32_t i, n = 0;
  for (i = 0; i < m->num_ops && !EP_GRU_STAGES; i++) {
    const ep_op_t *op = &m->ops[i];
    if (op->kind == EP_K_GRU) n += !((const ep_gru_t *)(const void *)op->scratch)->one_pass;
    if (op->kind == EP_K_LSTM) n += !((const ep_lstm_t *)(const void *)op->scratch)->one_pass;
  }
  return n;
}

uint32_t ep_rnn_reads(const ep_op_t *op, int16_t *t) {
  const ep_gru_t *g = (const ep_gru_t *)(const void *)op->scratch;
  if (op->kind == EP_K_LSTM) {
    const ep_lstm_t *l = (const ep_lstm_t *)(const void *)op->scratch;
    t[0] = l->x, t[1] = l->h, t[2] = l->c;
    return 3;
  }
  t[0] = g->x, t[1] = g->h;
  return 2;
}

EP_COLD int ep_gru_fuse(ep_model_t *m, uint8_t *mem, uint32_t avail, uint32_t *used) {
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
    if (EP_RT_LSTM && op->kind == EP_K_MUL_I8 && !op->fused) {
#if EP_RT_LSTM
      ep_lstm_t l;
      if (match_lstm(m, &gi, (int)i, &l) != 0 || lstm_short(m, &l) != 0) continue;
      need = (uint32_t)EP_LSTM_HEAD + widen_bytes(l.depth_x) + lpass_bytes(l.hidden, m->ops[l.fc[0]].p.fc.per_channel);
      if (need > avail - *used) return EP_RT_ERR_ARENA;
      fuse_lstm(m, i, &l, mem + *used, need);
      *used += need;
#endif
      continue;
    }
    if (op->kind != EP_K_ADD_I8 || op->fused) continue;
    if (match(m, &gi, (int)i, &g) != 0 || gru_short(m, &g) != 0) continue;
    need = (uint32_t)EP_GRU_HEAD + widen_bytes(g.depth_x) + pass_bytes(g.hidden, m->ops[g.fc[0]].p.fc.per_channel);
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

EP_COLD void ep_gru_prepare(ep_model_t *m) {
  uint32_t i;
  for (i = 0; i < m->num_ops; i++)
    if (m->ops[i].kind == EP_K_GRU) prepare_one(m, (ep_gru_t *)(void *)m->ops[i].scratch);
#if EP_RT_LSTM
    else if (m->ops[i].kind == EP_K_LSTM) prepare_lstm(m, (ep_lstm_t *)(void *)m->ops[i].scratch);
#endif
}

#else
/* ISO C wants a translation unit to declare something. */
typedef int ep_rt_gru_left_out;
#endif /* EP_RT_GRU */
