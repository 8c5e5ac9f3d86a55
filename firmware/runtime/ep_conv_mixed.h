/* int4-packed CONV_2D / DEPTHWISE_CONV_2D filters (issue 30): unpacked into the arena at load (ep_conv_mixed.c). */
#ifndef EP_CONV_MIXED_H
#define EP_CONV_MIXED_H

#include "ep_kernels.h"

#if EP_RT_CONV
/* `n` int4 values packed two a byte (the lower-indexed in the low nibble, TFLM's layout) as int8 at `dst`; also
 * what a prepared library's bind runs for the filters it keeps packed in flash (ep_prepared.c). */
void ep_int4_unpack(uint8_t *dst, const uint8_t *packed, uint32_t n);
/* Persistent arena bytes the prepared convolution `op` needs for its unpacked int4 filter (0: an int8 filter). */
uint32_t ep_conv_int4_bytes(ep_model_t *m, const ep_op_t *op);
/* Unpacks the int4 filter of `op` to int8 at `dst` (ep_conv_int4_bytes(op) bytes) and makes the filter tensor that
 * int8 copy; returns the bytes used (0: nothing to do). */
uint32_t ep_conv_int4_place(ep_model_t *m, const ep_op_t *op, uint8_t *dst);
#else
static inline uint32_t ep_conv_int4_bytes(ep_model_t *m, const ep_op_t *op) { (void)m; (void)op; return 0; }
static inline uint32_t ep_conv_int4_place(ep_model_t *m, const ep_op_t *op, uint8_t *dst) {
  (void)m; (void)op; (void)dst; return 0;
}
#endif

#endif /* EP_CONV_MIXED_H */
