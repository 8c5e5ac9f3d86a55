/* Host-only helpers for the ctypes test harness: callers in Python cannot see sizeof(ep_model_t). */
#include "../ep_runtime.h"

uint32_t ep_host_model_size(void) { return (uint32_t)sizeof(ep_model_t); }

