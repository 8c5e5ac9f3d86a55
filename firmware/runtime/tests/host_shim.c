/* Host-only helpers for the ctypes test harness: callers in Python cannot see sizeof(ep_model_t). */
#include "../ep_runtime.h"

uint32_t ep_host_model_size(void) { return (uint32_t)sizeof(ep_model_t); }

#include "../ep_kernels.h"

/* Fused GRU layers on the short element-wise chain (ep_gru.c), so tests can tell which path ran. */
uint32_t ep_host_gru_num_short(const ep_model_t *m) { return ep_gru_num_short(m); }
