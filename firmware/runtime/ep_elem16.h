/* int16 element-wise ops of a 16x8 recurrent cell (issue 30): ADD, SUB, MUL, LOGISTIC, TANH with int16 inputs and
 * outputs, TFLM's int16 reference arithmetic (ep_elem16.c). */
#ifndef EP_ELEM16_H
#define EP_ELEM16_H

#include "ep_kernels.h"

/* ADD/SUB/MUL (shapes already checked by the caller; op->depth = 1 when nothing broadcasts) or LOGISTIC/TANH whose
 * input is int16: validates the quantisation as TFLM's prepare does and sets the op's constants and kind. */
int ep_elem16_prepare(ep_model_t *m, ep_op_t *op, uint32_t builtin);
static inline int ep_is_elem16_kind(uint8_t kind) {
  return kind == EP_K_ADD_I16 || kind == EP_K_SUB_I16 || kind == EP_K_MUL_I16 || kind == EP_K_LOGISTIC_I16 ||
         kind == EP_K_TANH_I16;
}
int ep_k_addsub_i16(const ep_model_t *m, const ep_op_t *op);
int ep_k_mul_i16(const ep_model_t *m, const ep_op_t *op);
int ep_k_logistic_i16(const ep_model_t *m, const ep_op_t *op);
int ep_k_tanh_i16(const ep_model_t *m, const ep_op_t *op);

#endif /* EP_ELEM16_H */
