/* The windowed ops of a 16x8 CNN (issue 30): CONV_2D with int16 activations and int8 filters, MAX_POOL_2D and
 * AVERAGE_POOL_2D on int16 (ep_conv16.c), DEPTHWISE_CONV_2D int16 x int8 (ep_dwconv16.c) and SOFTMAX int16
 * (ep_softmax16.c), TFLM's reference arithmetic. */
#ifndef EP_CONV16_H
#define EP_CONV16_H

#include "ep_kernels.h"

static inline int ep_is_conv16_kind(uint8_t kind) {
  return kind == EP_K_CONV_I16 || kind == EP_K_MAXPOOL_I16 || kind == EP_K_AVGPOOL_I16 || kind == EP_K_DWCONV_I16 ||
         kind == EP_K_SOFTMAX_I16;
}

/* A build whose EP_RT_KINDS has none of these kinds (an int8 CNN's deploy library) links none of ep_conv16.c: its int16
 * windowed ops are then refused at load. */
#define EP_CONV16_ON                                                                                                 \
  (EP_RT_CONV && (EP_KIND_ON(EP_K_CONV_I16) || EP_KIND_ON(EP_K_MAXPOOL_I16) || EP_KIND_ON(EP_K_AVGPOOL_I16) ||    \
                  EP_KIND_ON(EP_K_DWCONV_I16) || EP_KIND_ON(EP_K_SOFTMAX_I16)))

#if EP_RT_CONV
/* CONV_2D whose input is int16, called by ep_conv_prepare once the options type matches (fbv/opts as there):
 * validates the op as TFLM's prepare does and sets its record and kind. (The int16 pools are prepared by
 * ep_pool_prepare beside the int8 ones.) */
int ep_conv16_prepare(ep_model_t *m, ep_op_t *op, const void *fbv, const void *opts);
/* Persistent arena bytes (CONV_2D: the per-channel multipliers and shifts) and their init once placed. */
uint32_t ep_conv16_scratch_bytes(const ep_op_t *op);
/* The shared temporary a 16x8 CONV_2D needs while it runs: its int16 im2col patch and the patch reordered for the
 * 16x8 FC's row sums (the same bytes on every core, so the host planner's arena is the device's). */
uint32_t ep_conv16_tmp_bytes(const ep_op_t *op);
void ep_conv16_init(const ep_model_t *m, ep_op_t *op);
int ep_k_conv_i16(const ep_model_t *m, const ep_op_t *op);
int ep_k_pool_i16(const ep_model_t *m, const ep_op_t *op);
/* DEPTHWISE_CONV_2D whose input is int16 (ep_dwconv16.c), called by ep_conv_prepare as ep_conv16_prepare is; its
 * persistent bytes (16 per channel: the bias folded into the 64-bit rounding constant, the 16-bit multiplier, the
 * shift; then the filter widened to int16) and their init, reached through ep_conv16_scratch_bytes / ep_conv16_init. */
int ep_dwconv16_prepare(ep_model_t *m, ep_op_t *op, const void *fbv, const void *opts);
uint32_t ep_dwconv16_scratch_bytes(const ep_op_t *op);
void ep_dwconv16_init(const ep_model_t *m, ep_op_t *op);
int ep_k_dwconv_i16(const ep_model_t *m, const ep_op_t *op);
/* SOFTMAX whose input is int16 (ep_softmax16.c): validates it as TFLM's prepare does; no arena bytes (its tables are
 * constants). */
int ep_softmax16_prepare(ep_model_t *m, ep_op_t *op, const void *fbv, const void *opts);
int ep_k_softmax_i16(const ep_model_t *m, const ep_op_t *op);
#else
static inline uint32_t ep_conv16_scratch_bytes(const ep_op_t *op) { (void)op; return 0; }
static inline void ep_conv16_init(const ep_model_t *m, ep_op_t *op) { (void)m; (void)op; }
#endif

#endif /* EP_CONV16_H */
