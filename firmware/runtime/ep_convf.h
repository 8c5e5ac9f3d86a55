/* The windowed ops of a float32 layer inside an int8 model (issue 30): CONV_2D, MAX_POOL_2D and AVERAGE_POOL_2D on
 * float32 tensors, TFLM's float reference arithmetic in its order of operations (ep_convf.c). */
#ifndef EP_CONVF_H
#define EP_CONVF_H

#include "ep_kernels.h"

static inline int ep_is_convf_kind(uint8_t kind) {
  return kind == EP_K_CONV_F32 || kind == EP_K_MAXPOOL_F32 || kind == EP_K_AVGPOOL_F32;
}

/* A build whose EP_RT_KINDS has none of these kinds (an int8 or 16x8 CNN's deploy library) links none of ep_convf.c:
 * float windowed ops are then refused at load. */
#define EP_CONVF_ON                                                                                                  \
  (EP_RT_CONV && EP_RT_F32 &&                                                                                        \
   (EP_KIND_ON(EP_K_CONV_F32) || EP_KIND_ON(EP_K_MAXPOOL_F32) || EP_KIND_ON(EP_K_AVGPOOL_F32)))

#if EP_RT_CONV && EP_RT_F32
/* CONV_2D whose input is float32, called by ep_conv_prepare once the options type matches (fbv/opts as there):
 * validates the op as TFLM's prepare does and sets its record and kind (the float pools: ep_pool_prepare). No scratch
 * and no temporary: the kernels read the input and filter in place. */
int ep_convf_prepare(ep_model_t *m, ep_op_t *op, const void *fbv, const void *opts);
/* TFLM's CalculateActivationRange for float of op->act (no activation: the lowest and largest floats), stored as raw
 * bits in act_min/act_max. */
int ep_convf_act_range(ep_op_t *op);
int ep_k_conv_f32(const ep_model_t *m, const ep_op_t *op);
int ep_k_pool_f32(const ep_model_t *m, const ep_op_t *op);
#else
static inline int ep_convf_prepare(ep_model_t *m, ep_op_t *op, const void *fbv, const void *opts) {
  (void)m, (void)op, (void)fbv, (void)opts;
  return EP_RT_ERR_DTYPE;
}
static inline int ep_convf_act_range(ep_op_t *op) {
  (void)op;
  return EP_RT_ERR_DTYPE;
}
#endif

#endif /* EP_CONVF_H */
