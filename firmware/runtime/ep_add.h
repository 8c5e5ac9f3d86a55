/*
 * Same-shape int8 ADD/SUB by per-invoke tables (ep_add.c), the fast path of ep_k_elementwise.
 */
#ifndef EP_ADD_H
#define EP_ADD_H

#include "ep_kernels.h"

/* Runs `op` (EP_K_ADD_I8 / EP_K_SUB_I8, inputs and output of one shape) and returns 1; returns 0 without writing
 * anything when the op is left to ep_k_elementwise: another kind, too few elements to pay for the tables, or
 * constants outside the short arithmetic's exact range (decided from the model's constants only). */
int ep_addsub_i8_tables(const ep_model_t *m, const ep_op_t *op);

#endif /* EP_ADD_H */
