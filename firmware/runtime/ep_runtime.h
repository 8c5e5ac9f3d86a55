/*
 * edgeprune device runtime: a self-contained C99 int8 inference engine for TFLite flatbuffers.
 *
 * TFLM's reference kernels are the oracle: every int8 result must be bit-exact with them.
 * No malloc, no globals: all state lives in the caller's ep_model_t and arena, so a model can be
 * re-initialised at any time by calling ep_model_init again.
 *
 * Typical use:
 *   static ep_model_t m; static uint8_t arena[64 * 1024];
 *   int st = ep_model_init(&m, tflite, len, arena, sizeof arena);   // validates everything
 *   ep_model_set_input(&m, 0, 0, bytes, n);
 *   ep_model_invoke(&m);
 *   ep_model_io(&m, 1, 0, &info);                                     // info.data = output bytes
 *
 * Sequence mode (streaming recurrent cell, see docs/design.md):
 *   ep_model_set_sequence(&m, steps, stream_input, pairs, npairs) stages steps x per-step bytes of
 *   the streamed input in the arena; ep_model_set_input(&m, stream_input, offset, ...) then writes into
 *   that staging buffer; each invoke runs `steps` steps, carrying recurrent outputs to inputs with
 *   ep_requantize (int8) or ep_requantize16 (the int16 state of a 16x8 cell); state inputs start at their
 *   zero point; outputs are those of the last step.
 */
#ifndef EP_RUNTIME_H
#define EP_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Capacity limits; a model that exceeds them is rejected with EP_RT_ERR_LIMITS.
 * Override at compile time (-DEP_RT_MAX_TENSORS=...) to trade RAM for capacity. */
#ifndef EP_RT_MAX_TENSORS
#define EP_RT_MAX_TENSORS 192
#endif
#ifndef EP_RT_MAX_OPS
#define EP_RT_MAX_OPS 128
#endif
#ifndef EP_RT_MAX_IO
#define EP_RT_MAX_IO 8 /* graph inputs, graph outputs */
#endif
#ifndef EP_RT_MAX_PAIRS
#define EP_RT_MAX_PAIRS 8 /* recurrent pairs in sequence mode */
#endif
#define EP_RT_MAX_DIMS 6
#define EP_RT_MAX_OP_INPUTS 4
#define EP_RT_MAX_OP_OUTPUTS 4

/* Tensor element types: values are TFLite's TensorType enum. */
enum {
  EP_DT_FLOAT32 = 0,
  EP_DT_FLOAT16 = 1,
  EP_DT_INT32 = 2,
  EP_DT_UINT8 = 3,
  EP_DT_INT64 = 4,
  EP_DT_BOOL = 6,
  EP_DT_INT16 = 7,
  EP_DT_INT8 = 9
};

/* Status codes: 0 is success, every failure is a distinct negative value. */
typedef enum {
  EP_RT_OK = 0,
  EP_RT_ERR_ARG = -1,         /* NULL pointer or nonsensical argument */
  EP_RT_ERR_TRUNCATED = -2,   /* model shorter than its headers / tables claim */
  EP_RT_ERR_IDENTIFIER = -3,  /* not a TFLite flatbuffer ("TFL3") or schema version != 3 */
  EP_RT_ERR_BOUNDS = -4,      /* a flatbuffer offset / vector points outside the model */
  EP_RT_ERR_SUBGRAPHS = -5,   /* subgraph count != 1 */
  EP_RT_ERR_OP = -6,          /* operator (builtin code, custom op, or option) not supported */
  EP_RT_ERR_DTYPE = -7,       /* tensor type not supported for this operator */
  EP_RT_ERR_SHAPE = -8,       /* shapes inconsistent for this operator, or rank > 6 */
  EP_RT_ERR_QUANT = -9,       /* missing / invalid quantisation parameters */
  EP_RT_ERR_BUFFER = -10,     /* constant buffer size != tensor size, external/offset buffers */
  EP_RT_ERR_LIMITS = -11,     /* more tensors / ops / IO than EP_RT_MAX_* */
  EP_RT_ERR_ARENA = -12,      /* arena too small */
  EP_RT_ERR_STATE = -13,      /* model not initialised (or init failed) */
  EP_RT_ERR_INDEX = -14,      /* tensor / IO index out of range */
  EP_RT_ERR_SEQUENCE = -15,   /* bad sequence configuration (pair shapes, stream index, steps) */
  EP_RT_ERR_GRAPH = -16,      /* tensor read before written, written twice, or bad tensor index */
  EP_RT_ERR_RANGE = -17       /* set_input offset + length beyond the tensor / staging buffer */
} ep_rt_status;

typedef struct {
  void *data; /* tensor bytes (arena or model buffer); for the streamed input in sequence mode: staging */
  uint32_t bytes; /* for the streamed input in sequence mode: steps x per-step bytes */
  uint8_t dtype;  /* EP_DT_* */
  float scale;
  int32_t zero_point;
  uint8_t rank;
  int32_t dims[EP_RT_MAX_DIMS];
} ep_tensor_info_t;

/* Internal tensor record (callers only allocate it). */
typedef struct {
  uint8_t *data;
  const uint8_t *chan_scales; /* per-channel float32 scales inside the model (unaligned), or NULL */
  uint32_t bytes;
  uint32_t nchan; /* number of per-channel scales (0 = per-tensor) */
  int32_t dims[EP_RT_MAX_DIMS];
  float scale;
  int32_t zero_point;
  int32_t quant_dim;
  int16_t first_use, last_use; /* op indices; planner lifetimes */
  uint8_t dtype, rank, is_const, has_quant;
} ep_tensor_t;

struct ep_model;
struct ep_op;
typedef int (*ep_kernel_fn)(const struct ep_model *m, const struct ep_op *op);

/* Internal per-operator record, filled at init so invoke does no setup work. */
typedef struct ep_op {
  ep_kernel_fn fn;  /* the kernel (prepared kind), called directly by invoke */
  uint8_t kind;     /* EP_K_* (internal kernel id) */
  uint8_t builtin;  /* TFLite builtin operator code */
  uint8_t act;      /* fused activation */
  uint8_t n_in, n_out;
  uint8_t fused; /* part of a fused kernel that runs in another op's place: not run on its own */
  int16_t in[EP_RT_MAX_OP_INPUTS];
  int16_t out[EP_RT_MAX_OP_OUTPUTS];
  int32_t act_min, act_max;
  int32_t mult[3];
  int32_t shift[3];
  union { /* kernel-specific integers, named per kind */
    struct { int32_t zp_in, zp_out; int16_t per_channel, zp_widen; } fc; /* FC_I8; zp_widen: see ep_fc_model_bias */
    struct { int32_t neg_zp_a, neg_zp_b, zp_out; } bin;     /* ADD/SUB/MUL_I8: -zero point of each input */
    struct { int32_t zp_in, radius; } act;                  /* LOGISTIC/TANH_I8 (table built at init) */
    struct { int32_t zp_in, unused, zp_out; } quant;        /* QUANTIZE: REQUANT_I8 uses both, QUANT_F2I zp_out */
    struct { int16_t pad_h, pad_w; uint8_t stride_h, stride_w, dil_h, dil_w; int8_t zp_in, zp_out; } conv; /* CONV/DWCONV */
    struct { int16_t pad_h, pad_w; uint8_t stride_h, stride_w, win_h, win_w; } pool; /* AVG/MAXPOOL_I8 */
    struct { int32_t diff_min; } softmax;                   /* SOFTMAX_I8 (exp table built at init) */
  } p;
  uint32_t rows, depth, batches; /* FC: weight rows/depth, input batches; other kinds: rows = output elements */
  int32_t *scratch; /* per-op persistent arena data (folded bias, per-channel multipliers, int8 activation table) */
  uint32_t scratch_bytes;
  uint8_t *tmp; /* its part of the arena while it runs (m->fc_tmp then), or NULL; planned like a tensor */
} ep_op_t;

struct ep_model {
  const uint8_t *fb;
  uint32_t fb_len;
  uint8_t *arena;
  uint32_t arena_len;
  uint32_t arena_used;
  uint32_t arena_plan; /* bytes used by persistent data + planned tensors (before sequence staging) */
  uint16_t num_tensors, num_ops, num_inputs, num_outputs;
  int16_t inputs[EP_RT_MAX_IO];
  int16_t outputs[EP_RT_MAX_IO];
  ep_tensor_t tensors[EP_RT_MAX_TENSORS];
  ep_op_t ops[EP_RT_MAX_OPS];
  uint64_t macs;
  uint8_t *fc_tmp; /* the running op's temporary (ep_op_t.tmp: FC/CONV input widened, im2col patch) */
  uint32_t fc_tmp_bytes;
  /* sequence mode */
  uint32_t steps;
  uint32_t stream_input;
  uint32_t npairs;
  uint8_t pairs[EP_RT_MAX_PAIRS][2];
  uint8_t *stream_buf;
  uint32_t stream_bytes;
  uint32_t flags;        /* EP_RT_INIT_* given to ep_model_init_ex */
  uint16_t num_run;      /* ops run per step, in order (fused parts left out) */
  uint16_t num_fused;    /* fused GRU steps recognised at load */
  uint16_t run[EP_RT_MAX_OPS];
  uint16_t num_run_carry; /* sequence mode: the ops of `run` the recurrent outputs depend on (all but the last
                             step run only these; outputs read after the last step are unchanged) */
  uint16_t run_carry[EP_RT_MAX_OPS];
  uint8_t *carry_tbl;    /* sequence mode: 256-byte int8 carry table per recurrent pair (ep_requantize of all bytes;
                            an int16 pair keeps its multiplier and shift there) */
  uint8_t carry_copy[EP_RT_MAX_PAIRS]; /* 0: int8 table, 1: a plain copy (same quantisation, or float), 2: int16
                                          requantise (ep_invoke.c) */
  uint32_t magic; /* set only after a successful init */
};
typedef struct ep_model ep_model_t;

int ep_model_init(ep_model_t *m, const uint8_t *tflite, uint32_t len, uint8_t *arena, uint32_t arena_len);
/* Load flags. EP_RT_INIT_NO_FUSE keeps the op-by-op reference path (no fused GRU step). */
#define EP_RT_INIT_NO_FUSE 1u
/* EP_RT_INIT_CONSUME_INPUTS: in single-step mode a graph input's bytes are reused once its last reader ran, as TFLM
 * plans them (a smaller arena), so every invoke needs its inputs written again. Without it the inputs survive an
 * invoke (several invokes on one staged input). Sequence mode always keeps them. */
#define EP_RT_INIT_CONSUME_INPUTS 2u
#ifndef EP_RT_DEFAULT_FLAGS
#define EP_RT_DEFAULT_FLAGS 0u /* what ep_model_init uses; -DEP_RT_DEFAULT_FLAGS=1 builds an op-by-op firmware */
#endif
int ep_model_init_ex(ep_model_t *m, const uint8_t *tflite, uint32_t len, uint8_t *arena, uint32_t arena_len,
                     uint32_t flags);
uint32_t ep_model_num_inputs(const ep_model_t *m);
uint32_t ep_model_num_outputs(const ep_model_t *m);
int ep_model_io(const ep_model_t *m, int is_output, uint32_t index, ep_tensor_info_t *out);
/* steps == 1 and npairs == 0 returns to plain (single-step) mode. */
int ep_model_set_sequence(ep_model_t *m, uint32_t steps, uint32_t stream_input, const uint8_t (*pairs)[2],
                          uint32_t npairs);
int ep_model_set_input(ep_model_t *m, uint32_t index, uint32_t offset, const uint8_t *data, uint32_t len);
int ep_model_invoke(ep_model_t *m);
uint32_t ep_model_arena_used(const ep_model_t *m);
uint64_t ep_model_macs(const ep_model_t *m); /* per invoke (x steps in sequence mode) */
const char *ep_rt_status_str(int status);
void ep_requantize(const int8_t *src, int8_t *dst, uint32_t n, float s_from, int32_t z_from, float s_to,
                   int32_t z_to);
/* The int16 state carry of a 16x8 cell (zero points 0), as sequence mode applies it (bench/qmath.requantize16). */
void ep_requantize16(const int16_t *src, int16_t *dst, uint32_t n, float s_from, float s_to);

/* Extensions. */
uint32_t ep_model_num_ops(const ep_model_t *m);
/* TFLite builtin code of operator `index` (or -1). */
int ep_model_op_builtin(const ep_model_t *m, uint32_t index);
/* Run only operator `index` (for per-op profiling); inputs must have been computed. */
int ep_model_invoke_op(ep_model_t *m, uint32_t index);
/* Number of GRU-cell op groups running as one fused kernel. */
uint32_t ep_model_num_fused(const ep_model_t *m);

#ifdef __cplusplus
}
#endif
#endif /* EP_RUNTIME_H */
