/* Internal kernel interface of the runtime: one prepared ep_op_t in, tensors of the model in/out. */
#ifndef EP_KERNELS_H
#define EP_KERNELS_H

#include "ep_runtime.h"

/* TFLite builtin operator codes the runtime understands. */
enum {
  EP_OP_ADD = 0,
  EP_OP_CONCATENATION = 2,
  EP_OP_DEQUANTIZE = 6,
  EP_OP_FULLY_CONNECTED = 9,
  EP_OP_LOGISTIC = 14,
  EP_OP_MUL = 18,
  EP_OP_RELU = 19,
  EP_OP_RELU6 = 21,
  EP_OP_RESHAPE = 22,
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
  EP_K_COPY
};

/* FC int8 scratch layout (int32 words): folded bias[rows], then per-channel mult[rows], shift[rows]. */
int ep_k_fc_i8(const ep_model_t *m, const ep_op_t *op);
int ep_k_fc_f32(const ep_model_t *m, const ep_op_t *op);
int ep_k_elementwise(const ep_model_t *m, const ep_op_t *op);
int ep_k_unary(const ep_model_t *m, const ep_op_t *op);

/* Per-row int8 dot products + folded bias: acc[r] = bias[r] + sum_d w[r][d] * x[d]. `xq` is the input
 * widened by the DSP path (ep_fc_tmp_bytes(depth) bytes, word aligned; unused elsewhere). */
void ep_fc_dot_rows(const int8_t *w, const int8_t *x, const uint32_t *xq, const int32_t *bias, int32_t *acc,
                    uint32_t rows, uint32_t depth);
/* Bytes of shared temporary memory an int8 FC of this depth needs on this core. */
uint32_t ep_fc_tmp_bytes(uint32_t depth);

/* int8 LOGISTIC/TANH keep a lookup table of all 256 outputs, indexed by the input byte (uint8 view),
 * in their op scratch; it is filled at init from the fixed-point routines below. */
#define EP_ACT_TABLE_BYTES 256u

/* gemmlowp-compatible fixed-point activations on an int8 value already offset by the zero point. */
int8_t ep_logistic_i8(int32_t input, int32_t radius, int32_t mult, int32_t shift);
int8_t ep_tanh_i8(int32_t input, int32_t radius, int32_t mult, int32_t shift);

#endif /* EP_KERNELS_H */
