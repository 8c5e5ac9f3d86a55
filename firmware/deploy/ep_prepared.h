/*
 * A model prepared at export (edgeprune export --deploy): the runtime's state after init, as C data. The exporter
 * ran the runtime's own init for this model on this core (export/deploy_prepare.py) and kept its result: the op
 * records, the arena offsets the planner chose, every multiplier, folded bias and table. Binding it to an arena is
 * a copy and a relocation, so the device carries no flatbuffer parser and no planner.
 */
#ifndef EP_PREPARED_H
#define EP_PREPARED_H

#include "ep_runtime.h"

#if EP_PREP_WIDE
typedef uint32_t ep_prep_off_t;
#else
typedef uint16_t ep_prep_off_t; /* every image of this model is below 64 KiB */
#endif

/* One image (the model record, or the arena's initial contents): `size` bytes, zero but for `nruns` runs of
 * `bytes` (run i: skip[2i] zero bytes, then skip[2i + 1] bytes of `bytes`); then a 32-bit word at each offset of
 * `to_arena` gets the arena's address added, at each of `to_data` the address of edgeprune_model_data.
 * `ntables` 256-byte activation tables (LOGISTIC/TANH: monotonic) are stored as steps: each one in `tables` as its
 * offset (ep_prep_off_t, little-endian), its first value (int8), a flags byte (bits per step 1/2/4; 0x10: the
 * table is indexed by the input's byte, so value order starts at index 128), then 255 steps packed from bit 0. */
typedef struct {
  const uint8_t *bytes;
  const uint8_t *skip;
  const ep_prep_off_t *to_arena;
  const ep_prep_off_t *to_data;
  const uint8_t *tables;
  uint32_t size, nruns;
  uint16_t n_arena, n_data, ntables;
} ep_prep_image_t;

extern const uint8_t edgeprune_model_data[]; /* the constants the kernels read (weights), 16-byte aligned */
#if EP_PREP_INT4
/* int4 convolution filters kept packed in flash (issue 30): the runtime's init unpacks them into the persistent
 * arena, so the snapshot's arena image held their int8 bytes; the library stores the nibbles in edgeprune_model_data
 * instead and bind unpacks them to the same place. {count, then per filter: arena offset, elements, data offset}. */
extern const uint32_t edgeprune_model_int4[];
#endif
extern const ep_prep_image_t edgeprune_model_record, edgeprune_model_arena;

/* Binds the prepared model to `arena` (16-byte aligned, at least edgeprune_model_arena.size bytes). */
int ep_prepared_bind(ep_model_t *m, uint8_t *arena, uint32_t arena_len);

#endif /* EP_PREPARED_H */
