/* Binding a prepared model (ep_prepared.h) to the caller's arena: init for a library that ships no parser. */
#include "ep_prepared.h"

#include <string.h>

#include "ep_kernels.h"
#if EP_PREP_INT4
#include "ep_conv_mixed.h"
#endif

static void unpack(uint8_t *dst, const ep_prep_image_t *im, const uint8_t *arena) {
  const uint8_t *src = im->bytes;
  uint8_t *p = dst;
  uint32_t i, w;
  memset(dst, 0, im->size);
  for (i = 0; i < im->nruns; i++) {
    p += im->skip[2u * i];
    memcpy(p, src, im->skip[2u * i + 1u]);
    src += im->skip[2u * i + 1u];
    p += im->skip[2u * i + 1u];
  }
  /* Offsets stored in place of the pointers; words are only 4-byte aligned in the image, hence memcpy. */
  for (i = 0; i < im->n_arena; i++) {
    memcpy(&w, dst + im->to_arena[i], 4);
    w += (uint32_t)(uintptr_t)arena;
    memcpy(dst + im->to_arena[i], &w, 4);
  }
  src = im->tables;
  for (i = 0; i < im->ntables; i++) {
    uint32_t off = src[0] | (uint32_t)src[1] << 8, k, bits, start;
    int32_t v;
    src += 2;
#if EP_PREP_WIDE
    off |= (uint32_t)src[0] << 16 | (uint32_t)src[1] << 24;
    src += 2;
#endif
    v = (int8_t)src[0];
    bits = src[1] & 7u;
    start = (src[1] & 0x10u) ? 128u : 0u;
    src += 2;
    dst[off + start] = (uint8_t)v;
    for (k = 1; k < 256u; k++) {
      const uint32_t at = (k - 1u) * bits;
      v += (src[at >> 3] >> (at & 7u)) & ((1u << bits) - 1u);
      dst[off + ((k + start) & 255u)] = (uint8_t)v;
    }
    src += (255u * bits + 7u) >> 3;
  }
  for (i = 0; i < im->n_data; i++) {
    memcpy(&w, dst + im->to_data[i], 4);
    w += (uint32_t)(uintptr_t)edgeprune_model_data;
    memcpy(dst + im->to_data[i], &w, 4);
  }
}

int ep_prepared_bind(ep_model_t *m, uint8_t *arena, uint32_t arena_len) {
  uint32_t i;
  if (m == NULL || arena == NULL || ((uintptr_t)arena & 15u) != 0) return EP_RT_ERR_ARG;
  /* A record of another size was prepared with another runtime or config: refuse it rather than misread it. */
  if (edgeprune_model_record.size != sizeof *m) return EP_RT_ERR_STATE;
  if (arena_len < edgeprune_model_arena.size) return EP_RT_ERR_ARENA;
  unpack((uint8_t *)m, &edgeprune_model_record, arena);
  unpack(arena, &edgeprune_model_arena, arena);
#if EP_PREP_INT4
  for (i = 0; i < edgeprune_model_int4[0]; i++) {
    const uint32_t *f = &edgeprune_model_int4[1u + 3u * i];
    ep_int4_unpack(arena + f[0], edgeprune_model_data + f[2], f[1]);
  }
#endif
  m->arena_len = arena_len;
  /* Kernel addresses are this build's: looked up by kind, as init does. */
  for (i = 0; i < m->num_ops; i++) {
    ep_kernel_fn fn = ep_kernel_for(m->ops[i].kind);
    m->ops[i].fn = fn != NULL ? fn : ep_kernel_for(EP_K_NONE);
  }
  return EP_RT_OK;
}
