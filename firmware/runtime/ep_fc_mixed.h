/* Mixed-precision FULLY_CONNECTED (issue 30): int4-packed weights with int8 activations, and int16 activations
 * with int8 weights ("16x8"), plus the int8 <-> int16 QUANTIZE that joins layers of different precision.
 * TFLM's reference kernels are the oracle, as for every int8 kernel (ep_fc_mixed.c). */
#ifndef EP_FC_MIXED_H
#define EP_FC_MIXED_H

#include "ep_flatbuf.h"
#include "ep_kernels.h"

/* TFLite TensorType INT4: two values per byte, the lower-indexed element in the low nibble, packed over the
 * flattened tensor (TFLM's UnpackDenseInt4IntoInt8 order). */
#define EP_DT_INT4_TFL 17u

/* Stored bytes of `elements` values of TFLite type `type` when it is a packed sub-byte type (0 otherwise). */
uint32_t ep_mixed_packed_bytes(uint32_t type, uint64_t elements);

/* TFLM's CalculateActivationRangeQuantized for an int16 output (16x8 FC and the int16 element-wise ops). */
int ep_act_range_16(uint8_t act, const ep_tensor_t *out, int32_t *lo, int32_t *hi);
/* TFLM's MultiplyByQuantizedMultiplier for an int64 accumulator (the multiplier rounded to 16 bits), as its 16x8
 * FULLY_CONNECTED and CONV_2D rescale with an int64 bias; and a little-endian int64 bias word. */
static inline int32_t ep_mbqm64(int64_t x, int32_t mult, int32_t shift) {
  const int64_t reduced = mult < 0x7FFF0000 ? (mult + (1 << 15)) >> 16 : 0x7FFF;
  const int32_t total = 15 - shift;
  const int64_t r = x * reduced + ((int64_t)1 << (total - 1));
  return (int32_t)(r >> total);
}
static inline int64_t ep_ld_i64(const uint8_t *p) {
  return (int64_t)((uint64_t)ep_le32(p) | (uint64_t)ep_le32(p + 4) << 32);
}
/* FULLY_CONNECTED whose weights are int4 or whose activations are int16: validates it (rows, depth, batches
 * already set by the caller) and sets its kind. */
int ep_fc_mixed_prepare(ep_model_t *m, ep_op_t *op);
/* QUANTIZE int8 -> int16 or int16 -> int8 (TFLM's Requantize). */
int ep_quant_mixed_prepare(ep_model_t *m, ep_op_t *op);
/* Whether `kind` is one of this file's, then its persistent scratch, shared temporary and init. */
static inline int ep_is_mixed_kind(uint8_t kind) {
  return kind == EP_K_FC_I4 || kind == EP_K_FC_I16 || kind == EP_K_REQUANT_I16;
}
/* The 16x8 FC's row sums, for a 16x8 convolution's im2col patch (ep_conv16.c): ep_i16_widen reorders the int16
 * input `x` into `xq` ((depth & ~3) * 2 bytes, word aligned; DSP cores only, a no-op elsewhere), then
 * ep_i16_dot_rows sets s[r] = sum_d w[r * depth + d] x[d] in 64 bits for the n rows of `w`. */
void ep_i16_widen(const int16_t *x, uint32_t depth, uint32_t *xq);
void ep_i16_dot_rows(const int8_t *w, const int16_t *x, const uint32_t *xq, int64_t *s, uint32_t n, uint32_t depth);
uint32_t ep_fc_mixed_scratch_bytes(const ep_op_t *op);
uint32_t ep_fc_mixed_tmp_bytes(const ep_op_t *op);
void ep_fc_mixed_init(const ep_model_t *m, ep_op_t *op);
int ep_k_fc_i4(const ep_model_t *m, const ep_op_t *op);
int ep_k_fc_i16(const ep_model_t *m, const ep_op_t *op);
int ep_k_requant_i16(const ep_model_t *m, const ep_op_t *op);

#endif /* EP_FC_MIXED_H */
