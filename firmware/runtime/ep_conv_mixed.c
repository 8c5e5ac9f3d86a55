/*
 * int4-packed CONV_2D and DEPTHWISE_CONV_2D filters (issue 30), bit-exact with TFLM: TFLM unpacks an int4 filter
 * into int8 (UnpackDenseInt4IntoInt8: the lower-indexed element in the low nibble) and runs its int8 kernel with the
 * same scales. So does the runtime, once at load instead of at every invoke: the filter is unpacked into the
 * persistent part of the arena and the op then runs the int8 convolution kernels unchanged (ep_conv.c,
 * ep_dwconv.c), at their instructions per MAC. What int4 buys here is model bytes (flash), paid for with RAM: the
 * arena grows by the unpacked filter, as TFLM's does. (The FULLY_CONNECTED kernels read their int4 weights packed,
 * ep_fc_mixed.c: a weight there is used once per inference, a filter tap once per output pixel.)
 */
#include "ep_conv_mixed.h"

#include "ep_fc_mixed.h"
#include "ep_window.h"

#if EP_RT_CONV /* the whole file; see ep_kernels.h */

/* The int4 filter of a prepared convolution, or NULL. */
static ep_tensor_t *int4_filter(ep_model_t *m, const ep_op_t *op) {
  ep_tensor_t *w;
  if (op->kind != EP_K_CONV_I8 && op->kind != EP_K_DWCONV_I8) return NULL;
  w = &m->tensors[op->in[1]];
  return w->dtype == EP_DT_INT4_TFL ? w : NULL;
}

static uint32_t filter_elements(const ep_tensor_t *w) {
  uint32_t n = 1, i;
  for (i = 0; i < w->rank; i++) n *= (uint32_t)w->dims[i];
  return n;
}

void ep_int4_unpack(uint8_t *dst, const uint8_t *packed, uint32_t n) {
  uint32_t i;
  for (i = 0; i + 1u < n; i += 2u) {
    const uint32_t b = packed[i >> 1];
    dst[i] = (uint8_t)(int8_t)((int32_t)((b & 0xfu) ^ 8u) - 8);
    dst[i + 1u] = (uint8_t)(int8_t)((int32_t)((b >> 4) ^ 8u) - 8);
  }
  if (n & 1u) dst[n - 1u] = (uint8_t)(int8_t)((int32_t)((packed[n >> 1] & 0xfu) ^ 8u) - 8);
}

uint32_t ep_conv_int4_bytes(ep_model_t *m, const ep_op_t *op) {
  const ep_tensor_t *w = int4_filter(m, op);
  return w ? filter_elements(w) : 0u;
}

uint32_t ep_conv_int4_place(ep_model_t *m, const ep_op_t *op, uint8_t *dst) {
  ep_tensor_t *w = int4_filter(m, op);
  uint32_t n;
  if (w == NULL) return 0; /* not int4, or a filter shared with an op placed before */
  n = filter_elements(w);
  ep_int4_unpack(dst, w->data, n);
  w->data = dst;
  w->dtype = EP_DT_INT8;
  w->bytes = n;
  return n;
}

#endif /* EP_RT_CONV */
