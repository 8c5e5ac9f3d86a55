/* Internal kernel interface of the runtime: one prepared ep_op_t in, tensors of the model in/out. */
#ifndef EP_KERNELS_H
#define EP_KERNELS_H

/* Kernel families compiled in. The deploy build of one model leaves out the families its graph does not use
 * (bench/firmware_build.py asks the host planner, which always has them all), so the linker drops their code,
 * as a per-model TFLM op resolver does: ~7 KB of windowed kernels in a GRU image. Default: everything. */
#ifndef EP_RT_CONV
#define EP_RT_CONV 1
#endif
#ifndef EP_RT_GRU
#define EP_RT_GRU 1
#endif
#ifndef EP_RT_LSTM /* the fused LSTM step (inside the GRU family's ep_gru.c; a GRU-only deploy build may set 0) */
#define EP_RT_LSTM EP_RT_GRU
#endif
#ifndef EP_RT_F32 /* float32 FULLY_CONNECTED, LOGISTIC, TANH, RELU (libm's expf/tanhf come with them) */
#define EP_RT_F32 1
#endif
/* Kernels compiled in, one bit per EP_K_* kind (1 << kind). A deploy library of one model sets exactly the kinds its
 * run list uses (the host planner prints them), so the element-wise kernels of ops a fused step replaced, the
 * requantiser of a model without one, etc. are not linked; a model needing a kind left out is refused at load. */
#ifndef EP_RT_KINDS
#define EP_RT_KINDS 0xFFFFFFFFFFFFFFFFull
#endif
#define EP_KIND_ON(kind) ((((unsigned long long)(EP_RT_KINDS) >> (kind)) & 1ull) != 0)
#define EP_KIND_FN(kind, fn) (EP_KIND_ON(kind) ? (fn) : NULL)
/* Weight scalings of the int8 FCs the fused recurrent steps compile a chain for (a deploy build sets the one its
 * model uses; a layer of the other kind is then not fused). */
#ifndef EP_RT_FC_PER_CHANNEL
#define EP_RT_FC_PER_CHANNEL 1
#endif
#ifndef EP_RT_FC_PER_TENSOR
#define EP_RT_FC_PER_TENSOR 1
#endif
/* Init-only code (parsing, checks, fusion matching) runs once: optimised for size, not speed, with GCC. */
#if defined(__GNUC__) && !defined(__clang__)
#define EP_COLD __attribute__((cold))
#else
#define EP_COLD
#endif

/* The core the arena is planned for. Its DSP extension (or v6-M) decides the FC input widening and whether an FC
 * reads its bias from the model (ep_fc_model_bias); its single-precision FPU (or v6-M) whether QUANTIZE/DEQUANTIZE
 * need tables. A device build plans for itself; the host planner (firmware/platform/scripts/ep_arena_plan.c) is
 * built once per kind of target with EP_PLAN_DSP / EP_PLAN_FPU / EP_PLAN_V6M set, so its plan is the device's to
 * the byte. */
#ifdef EP_PLAN_DSP
#define EP_TGT_DSP EP_PLAN_DSP
#elif defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__) && defined(__OPTIMIZE__)
#define EP_TGT_DSP 1
#else
#define EP_TGT_DSP 0
#endif
#ifdef EP_PLAN_V6M
#define EP_TGT_V6M EP_PLAN_V6M
#elif defined(__ARM_ARCH_6M__) && defined(__GNUC__)
#define EP_TGT_V6M 1
#else
#define EP_TGT_V6M 0
#endif
#ifdef EP_PLAN_FPU
#define EP_TGT_FPU EP_PLAN_FPU
#elif defined(__ARM_FP) && (__ARM_FP & 4) && !defined(EP_RT_INT_EDGES)
#define EP_TGT_FPU 1
#else
#define EP_TGT_FPU 0
#endif

#include <string.h>

#include "ep_qmath.h"
#include "ep_runtime.h"

/* A float32 stored little-endian at p (model data and tensors need not be 4-byte aligned). */
static inline float ep_ld_f32(const uint8_t *p) {
  float f;
  memcpy(&f, p, 4);
  return f;
}

/* TFLite builtin operator codes the runtime understands. */
enum {
  EP_OP_ADD = 0,
  EP_OP_AVERAGE_POOL_2D = 1,
  EP_OP_CONCATENATION = 2,
  EP_OP_CONV_2D = 3,
  EP_OP_DEPTHWISE_CONV_2D = 4,
  EP_OP_DEQUANTIZE = 6,
  EP_OP_FULLY_CONNECTED = 9,
  EP_OP_LOGISTIC = 14,
  EP_OP_MAX_POOL_2D = 17,
  EP_OP_MUL = 18,
  EP_OP_RELU = 19,
  EP_OP_RELU6 = 21,
  EP_OP_RESHAPE = 22,
  EP_OP_SOFTMAX = 25,
  EP_OP_TANH = 28,
  EP_OP_SUB = 41,
  EP_OP_QUANTIZE = 114
};

/* Fused activations (TFLite ActivationFunctionType). */
enum { EP_ACT_NONE = 0, EP_ACT_RELU = 1, EP_ACT_RELU_N1_TO_1 = 2, EP_ACT_RELU6 = 3 };

/* Internal kernel ids (ep_op_t.kind). */
enum {
  EP_K_NONE = 0,
  EP_K_QUANT_F2I,
  EP_K_REQUANT_I8,
  EP_K_DEQUANT_I8,
  EP_K_FC_I8,
  EP_K_FC_F32,
  EP_K_ADD_I8,
  EP_K_SUB_I8,
  EP_K_MUL_I8,
  EP_K_ADD_F32,
  EP_K_SUB_F32,
  EP_K_MUL_F32,
  EP_K_LOGISTIC_I8,
  EP_K_TANH_I8,
  EP_K_LOGISTIC_F32,
  EP_K_TANH_F32,
  EP_K_RELU_F32,
  EP_K_COPY,
  EP_K_FC_I4,       /* FULLY_CONNECTED, int4-packed weights (ep_fc_mixed.c) */
  EP_K_FC_I16,      /* FULLY_CONNECTED, int16 activations, int8 weights (16x8) */
  EP_K_REQUANT_I16, /* QUANTIZE int8 <-> int16 */
  EP_K_GRU, /* fused GRU step (ep_gru.c); its constituent ops are left out of the run list */
  EP_K_LSTM, /* fused LSTM step (ep_gru.c), likewise */
  EP_K_CONV_I8,    /* CONV_2D (ep_conv.c; the family's shared part in ep_window.c) */
  EP_K_DWCONV_I8,  /* DEPTHWISE_CONV_2D, depth multiplier 1 */
  EP_K_AVGPOOL_I8, /* AVERAGE_POOL_2D */
  EP_K_MAXPOOL_I8, /* MAX_POOL_2D */
  EP_K_SOFTMAX_I8, /* SOFTMAX int8 -> int8 */
  EP_K_ADD_I16,      /* int16 element-wise ops of a 16x8 recurrent cell (ep_elem16.c) */
  EP_K_SUB_I16,
  EP_K_MUL_I16,
  EP_K_LOGISTIC_I16,
  EP_K_TANH_I16,
  EP_K_CONV_I16,    /* CONV_2D int16 activations, int8 filter (16x8; ep_conv16.c) */
  EP_K_MAXPOOL_I16, /* MAX_POOL_2D int16 */
  EP_K_AVGPOOL_I16, /* AVERAGE_POOL_2D int16 */
  EP_K_DWCONV_I16,  /* DEPTHWISE_CONV_2D int16 activations, int8 filter (16x8; ep_dwconv16.c) */
  EP_K_SOFTMAX_I16, /* SOFTMAX int16 -> int16 (ep_softmax16.c) */
  EP_K_CONV_F32,    /* CONV_2D float32: a float32 layer of an int8 CNN (ep_convf.c) */
  EP_K_MAXPOOL_F32, /* MAX_POOL_2D float32 */
  EP_K_AVGPOOL_F32  /* AVERAGE_POOL_2D float32 */
};

/* The windowed int8 family and SOFTMAX (ep_window.c): the kinds from EP_K_CONV_I8 to EP_K_SOFTMAX_I8. */
static inline int ep_is_window_kind(uint8_t kind) { return kind >= EP_K_CONV_I8 && kind <= EP_K_SOFTMAX_I8; }

/* Quantised activation range of a fused activation on output `out` (TFLM's CalculateActivationRangeQuantized). */
int ep_act_range_q(uint8_t act, const ep_tensor_t *out, int32_t *lo, int32_t *hi);

/* Windowed int8 kernels and SOFTMAX (ep_window.c: the family's shared part; ep_conv.c, ep_dwconv.c, ep_pool.c,
 * ep_softmax.c: each op's prepare and kernel). ep_conv_prepare validates one op of these builtins from its options
 * table (fb/opts as in ep_model.c; `fbv` is the ep_fb_t) and fills its record; ep_conv_scratch_bytes is its
 * persistent arena data, ep_conv_tmp_bytes the shared temporary it needs (m->fc_tmp: widened input, then the im2col
 * patch); ep_conv_init fills the scratch once it is placed. */
#if EP_RT_CONV
int ep_is_conv_builtin(uint32_t builtin);
int ep_conv_prepare(ep_model_t *m, ep_op_t *op, uint32_t builtin, const void *fbv, const void *opts, int has_opts,
                    uint32_t opts_type);
uint32_t ep_conv_scratch_bytes(const ep_model_t *m, const ep_op_t *op);
uint32_t ep_conv_tmp_bytes(const ep_model_t *m, const ep_op_t *op);
void ep_conv_init(const ep_model_t *m, ep_op_t *op);
int ep_k_conv_i8(const ep_model_t *m, const ep_op_t *op);
int ep_k_dwconv_i8(const ep_model_t *m, const ep_op_t *op);
int ep_k_pool_i8(const ep_model_t *m, const ep_op_t *op);
int ep_k_softmax_i8(const ep_model_t *m, const ep_op_t *op);
#else
/* Left out: these builtins are then unsupported ops, refused at load like any other. */
static inline int ep_is_conv_builtin(uint32_t builtin) {
  (void)builtin;
  return 0;
}
static inline uint32_t ep_conv_scratch_bytes(const ep_model_t *m, const ep_op_t *op) {
  (void)m;
  (void)op;
  return 0;
}
static inline uint32_t ep_conv_tmp_bytes(const ep_model_t *m, const ep_op_t *op) {
  (void)m;
  (void)op;
  return 0;
}
static inline void ep_conv_init(const ep_model_t *m, ep_op_t *op) {
  (void)m;
  (void)op;
}
static inline int ep_conv_prepare(ep_model_t *m, ep_op_t *op, uint32_t builtin, const void *fbv, const void *opts,
                                  int has_opts, uint32_t opts_type) {
  (void)m, (void)op, (void)builtin, (void)fbv, (void)opts, (void)has_opts, (void)opts_type;
  return EP_RT_ERR_OP;
}
#endif
/* The FC kernel's per-row requantisation (per-channel multipliers), for the convolutions' int8 shifts. */
void ep_fc_requant_rows(const int32_t *acc, int8_t *y, uint32_t n, const int32_t *cm, const int8_t *cs, int32_t zp,
                        int32_t lo, int32_t hi);
/* gemmlowp exp_on_negative_values (a with `ibits` integer bits, 4 or 5; result Q0) and
 * one_over_one_plus_x_for_x_in_0_1 (Q0 in and out), as TFLM's SOFTMAX uses them. */
int32_t ep_fp_exp_negative(int32_t a, int ibits);
int32_t ep_fp_one_over_one_plus_x(int32_t a);
/* ep_quantize_multiplier((double)a * (double)b / (double)c * 2^p2) for positive floats, bit for bit, in integers
 * (no double arithmetic linked). ep_ratio_q31 is the unclamped split: the Q31 mantissa (0 for a zero product) and
 * *e, as frexp + round give them. */
int32_t ep_ratio_q31(float a, float b, float c, int p2, int *e);
void ep_quantize_ratio(float a, float b, float c, int p2, int32_t *mult, int32_t *shift);

/* Row r's multiplier of a per-channel int8 FC (in0 * w[r] / out): one expression for the init (ep_model.c) and the
 * fused recurrent step's check before it (ep_gru.c). */
static inline void ep_fc_chan_multiplier(const ep_tensor_t *in0, const ep_tensor_t *w, const ep_tensor_t *out,
                                         uint32_t r, int32_t *mult, int32_t *shift) {
  const uint8_t *p = w->chan_scales + 4u * r;
  const uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  float ws;
  memcpy(&ws, &bits, 4);
  ep_quantize_ratio(in0->scale, ws, out->scale, 0, mult, shift);
}

/* FC int8 scratch layout (int32 words): folded bias[rows], then per-channel mult[rows], shift[rows]. An unfused
 * per-tensor FC (not on v6-M) instead points `scratch` at the model's own int32 bias and subtracts the input zero point
 * while widening the input (p.fc.zp_widen): no arena bytes, as TFLM (ep_fc_model_bias says when). */
const int32_t *ep_fc_model_bias(const ep_model_t *m, const ep_op_t *op);
/* Per-tensor int8 FC on DSP cores: whether the short requantisation (SMMULR, the output zero point folded into the
 * rounding constant) is exact for every input; sets mult[1] (the constant), shift[1] (the right shift), mult[2] (1 if
 * so). Called once the bias is folded. */
void ep_fc_rq_prepare(ep_op_t *op);
/* Unfused per-tensor int8 FCs ep_fc_rq_prepare left to the general requantisation where the build left it out
 * (EP_RT_FC_RQ_FULL=0 on DSP cores): 0 = this build runs every FC. Checked after init by the deploy exporter. */
uint32_t ep_fc_unbuilt(const ep_model_t *m);
/* The temporary an int8 FC op needs while it runs (its input widened; ep_fc_tmp_bytes on DSP cores). */
uint32_t ep_fc_op_tmp_bytes(const ep_op_t *op);
int ep_k_fc_i8(const ep_model_t *m, const ep_op_t *op);
int ep_k_fc_f32(const ep_model_t *m, const ep_op_t *op);
int ep_k_elementwise(const ep_model_t *m, const ep_op_t *op);
/* Re-plans the arena with the graph inputs live to their last reader (whole == 0: single-step mode, if the model
 * was loaded with EP_RT_INIT_CONSUME_INPUTS) or for the whole invoke (sequence mode); sets arena_plan and
 * arena_used (ep_model.c). */
int ep_model_plan_inputs(ep_model_t *m, int whole);
/* The kernel of an internal kind (ep_op_t.fn is set from it once the op is final). */
ep_kernel_fn ep_kernel_for(uint8_t kind); /* NULL: a family this build left out */

/* Finds the exporter's GRU-cell and LSTM-cell op patterns and turns each instance into one EP_K_GRU / EP_K_LSTM
 * op (ep_gru.c): its final ADD (GRU) or MUL (LSTM) becomes the fused op, the others are marked `fused`. Runs after per-op preparation and before
 * arena planning; the fused ops' records go to `mem` (16-byte aligned, `avail` bytes), `*used` bytes. */
#if EP_RT_GRU
int ep_k_gru(const ep_model_t *m, const ep_op_t *op);
int ep_gru_fuse(ep_model_t *m, uint8_t *mem, uint32_t avail, uint32_t *used);
#if EP_RT_LSTM
int ep_k_lstm(const ep_model_t *m, const ep_op_t *op);
#endif
/* The tensors a fused GRU (x, h) or LSTM (x, h, c) op reads into t[0..3) (its op record's inputs are the group's
 * internal tensors); returns how many. */
uint32_t ep_rnn_reads(const ep_op_t *op, int16_t *t);
/* Fused layers left to the stage loops where the build left them out (EP_RT_RNN_STAGES=0): 0 = this build runs
 * every layer. Checked after init by the deploy exporter. */
uint32_t ep_rnn_staged(const ep_model_t *m);
/* After the FCs' init data is filled: each fused layer's FC requantisation constants and value-ordered tables. */
void ep_gru_prepare(ep_model_t *m);
#else
/* Left out: a GRU graph then runs op by op (same bytes, more instructions). */
static inline int ep_gru_fuse(ep_model_t *m, uint8_t *mem, uint32_t avail, uint32_t *used) {
  (void)m, (void)mem, (void)avail;
  *used = 0;
  return EP_RT_OK;
}
static inline uint32_t ep_rnn_reads(const ep_op_t *op, int16_t *t) {
  (void)op, (void)t;
  return 0;
}
static inline void ep_gru_prepare(ep_model_t *m) { (void)m; }
static inline uint32_t ep_rnn_staged(const ep_model_t *m) {
  (void)m;
  return 0;
}

#endif

/* A fused recurrent step (ep_gru.c). */
static inline int ep_is_rnn(uint8_t kind) { return kind == EP_K_GRU || kind == EP_K_LSTM; }

/* The activation clamp as two independent selects: both bounds are read whatever `v` is, so v7-M and later
 * compile it to conditional moves (IT blocks), not to a branch on the data (ep_clamp_i32 skips reading `hi` below
 * `lo`, which GCC turns into a branch). */
static inline int32_t ep_clamp_sel(int32_t v, int32_t lo, int32_t hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

/* int8 ADD/SUB/MUL of one element pair, exactly TFLM's reference arithmetic; `a` is input 0, `b` input 1.
 * Shared by the op-by-op kernel and the fused GRU step so both produce the same bytes. */
static inline int8_t ep_addsub_i8(const ep_op_t *op, int32_t a, int32_t b, int sub) {
  const int32_t sa = ep_rdbpot(ep_srdhm_2p20(op->p.bin.neg_zp_a + a, op->mult[0]), -op->shift[0]);
  const int32_t sb = ep_rdbpot(ep_srdhm_2p20(op->p.bin.neg_zp_b + b, op->mult[1]), -op->shift[1]);
  const int32_t r = ep_rdbpot(ep_srdhm(sub ? sa - sb : sa + sb, op->mult[2]), -op->shift[2]);
  return (int8_t)ep_clamp_sel(ep_add_wrap(r, op->p.bin.zp_out), op->act_min, op->act_max);
}
static inline int8_t ep_mul_i8(const ep_op_t *op, int32_t a, int32_t b) {
  const int32_t r = ep_mbqm((op->p.bin.neg_zp_a + a) * (op->p.bin.neg_zp_b + b), op->mult[0], op->shift[0]);
  return (int8_t)ep_clamp_i32(ep_add_wrap(r, op->p.bin.zp_out), op->act_min, op->act_max);
}

/* Per-row int8 dot products + folded bias: acc[r] = bias[r] + sum_d w[r][d] * x[d]. `xq` is the input
 * widened by the DSP path (ep_fc_tmp_bytes(depth) bytes, word aligned; unused elsewhere). */
void ep_fc_dot_rows(const int8_t *w, const int8_t *x, const uint32_t *xq, const int32_t *bias, int32_t *acc,
                    uint32_t rows, uint32_t depth);
/* Bytes of shared temporary memory an int8 FC of this depth needs on this core. */
uint32_t ep_fc_tmp_bytes(uint32_t depth);
/* Widens `x` into `xq` for ep_fc_dot_rows on the DSP path (no-op elsewhere). */
void ep_fc_widen(const int8_t *x, uint32_t depth, uint32_t *xq);

/* float32 -> int8 QUANTIZE and int8 -> float32 DEQUANTIZE run integer-only from tables filled at init, except on
 * cores with a single-precision FPU, where one float operation per element gives the same bytes and no table is kept.
 * QUANTIZE scratch (int32): 255 ascending float-key thresholds (+1 pad), then the saturation cuts. */
enum { EP_QT_KHI = 256, EP_QT_KLO, EP_QT_VHI, EP_QT_VLO, EP_QT_WORDS };
#define EP_QUANT_TABLE_BYTES (EP_TGT_FPU ? 0u : 4u * EP_QT_WORDS)
#define EP_DEQUANT_TABLE_BYTES 1024u
/* DEQUANTIZE's table bytes for this input scale: none on FPU cores, none elsewhere but v6-M when every result is a
 * normal float (then computed in integers per element), else 1,024. */
uint32_t ep_dequant_table_bytes(float scale);
void ep_quant_table_init(int32_t *thr, float scale, int32_t zp);
void ep_dequant_table_init(uint32_t *tbl, float scale, int32_t zp);
/* Order-preserving int32 key of a float's bits (-0 just below +0, NaNs beyond the infinities). */
static inline int32_t ep_float_key(uint32_t bits) {
  const int32_t b = (int32_t)bits;
  return b ^ (int32_t)((uint32_t)(b >> 31) >> 1);
}

/* int8 LOGISTIC/TANH keep a lookup table of all 256 outputs, indexed by the input byte (uint8 view),
 * in their op scratch; it is filled at init from the fixed-point routines below. */
#define EP_ACT_TABLE_BYTES 256u

/* gemmlowp-compatible fixed-point activations on an int8 value already offset by the zero point. */
int8_t ep_logistic_i8(int32_t input, int32_t radius, int32_t mult, int32_t shift);
int8_t ep_tanh_i8(int32_t input, int32_t radius, int32_t mult, int32_t shift);

#endif /* EP_KERNELS_H */
