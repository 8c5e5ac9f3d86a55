/*
 * Minimal bounds-checked FlatBuffers reader (little-endian, byte-wise reads so the model may sit at
 * any address and the code runs on cores without unaligned access).
 *
 * Every accessor returns 0 on success and a negative ep_rt_status on any out-of-bounds or malformed
 * structure; positions are absolute byte offsets into the buffer. Callers never touch raw pointers.
 */
#ifndef EP_FLATBUF_H
#define EP_FLATBUF_H

#include <stdint.h>

#include "ep_runtime.h"

typedef struct {
  const uint8_t *b;
  uint32_t len;
} ep_fb_t;

/* A table: its position, its vtable position and vtable length (bytes). */
typedef struct {
  uint32_t pos;
  uint32_t vt;
  uint32_t vt_len;
  uint32_t obj_len;
} ep_fb_table_t;

/* A vector: position of element 0 and element count. */
typedef struct {
  uint32_t pos;
  uint32_t n;
} ep_fb_vec_t;

static inline uint32_t ep_le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint16_t ep_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline int ep_fb_has(const ep_fb_t *fb, uint32_t pos, uint32_t bytes) {
  return pos <= fb->len && bytes <= fb->len - pos;
}

static inline int ep_fb_u32(const ep_fb_t *fb, uint32_t pos, uint32_t *out) {
  if (!ep_fb_has(fb, pos, 4)) return EP_RT_ERR_BOUNDS;
  *out = ep_le32(fb->b + pos);
  return 0;
}

static inline int ep_fb_table_at(const ep_fb_t *fb, uint32_t pos, ep_fb_table_t *t) {
  uint32_t so;
  int64_t vt;
  uint16_t vlen, olen;
  if ((pos & 3u) != 0 || !ep_fb_has(fb, pos, 4)) return EP_RT_ERR_BOUNDS;
  so = ep_le32(fb->b + pos);
  vt = (int64_t)pos - (int64_t)(int32_t)so;
  if (vt < 0 || vt > (int64_t)fb->len || (vt & 1) != 0 || !ep_fb_has(fb, (uint32_t)vt, 4)) return EP_RT_ERR_BOUNDS;
  vlen = ep_le16(fb->b + (uint32_t)vt);
  olen = ep_le16(fb->b + (uint32_t)vt + 2);
  if (vlen < 4 || (vlen & 1) != 0 || !ep_fb_has(fb, (uint32_t)vt, vlen)) return EP_RT_ERR_BOUNDS;
  if (olen < 4 || !ep_fb_has(fb, pos, olen)) return EP_RT_ERR_BOUNDS;
  t->pos = pos;
  t->vt = (uint32_t)vt;
  t->vt_len = vlen;
  t->obj_len = olen;
  return 0;
}

/* Position of field `id` (0 if absent); `width` is the inline size the caller will read. */
static inline int ep_fb_field(const ep_fb_t *fb, const ep_fb_table_t *t, uint32_t id, uint32_t width,
                              uint32_t *pos) {
  uint32_t slot = 4u + 2u * id;
  uint16_t off;
  *pos = 0;
  if (slot + 2u > t->vt_len) return 0;
  off = ep_le16(fb->b + t->vt + slot);
  if (off == 0) return 0;
  if ((uint32_t)off + width > t->obj_len) return EP_RT_ERR_BOUNDS;
  *pos = t->pos + off;
  return 0;
}

static inline int ep_fb_scalar(const ep_fb_t *fb, const ep_fb_table_t *t, uint32_t id, uint32_t width,
                               uint32_t dflt, uint32_t *out) {
  uint32_t pos;
  int st = ep_fb_field(fb, t, id, width, &pos);
  if (st) return st;
  if (pos == 0) {
    *out = dflt;
    return 0;
  }
  if (width == 1) *out = fb->b[pos];
  else if (width == 2) *out = ep_le16(fb->b + pos);
  else *out = ep_le32(fb->b + pos);
  return 0;
}

/* Follows a uoffset field; *target is 0 when the field is absent. */
static inline int ep_fb_ref(const ep_fb_t *fb, const ep_fb_table_t *t, uint32_t id, uint32_t *target) {
  uint32_t pos, off;
  int st = ep_fb_field(fb, t, id, 4, &pos);
  *target = 0;
  if (st) return st;
  if (pos == 0) return 0;
  off = ep_le32(fb->b + pos);
  if (off == 0 || off > fb->len - pos) return EP_RT_ERR_BOUNDS;
  *target = pos + off;
  return 0;
}

static inline int ep_fb_vec_at(const ep_fb_t *fb, uint32_t pos, uint32_t elem, ep_fb_vec_t *v) {
  uint32_t n;
  if (!ep_fb_has(fb, pos, 4)) return EP_RT_ERR_BOUNDS;
  n = ep_le32(fb->b + pos);
  if (elem != 0 && n > (fb->len - pos - 4u) / elem) return EP_RT_ERR_BOUNDS;
  v->pos = pos + 4u;
  v->n = n;
  return 0;
}

/* Vector field; an absent field yields an empty vector. */
static inline int ep_fb_vec(const ep_fb_t *fb, const ep_fb_table_t *t, uint32_t id, uint32_t elem,
                            ep_fb_vec_t *v) {
  uint32_t target;
  int st = ep_fb_ref(fb, t, id, &target);
  v->pos = 0;
  v->n = 0;
  if (st) return st;
  if (target == 0) return 0;
  return ep_fb_vec_at(fb, target, elem, v);
}

/* Table field; *present is 0 when absent. */
static inline int ep_fb_subtable(const ep_fb_t *fb, const ep_fb_table_t *t, uint32_t id, ep_fb_table_t *out,
                                 int *present) {
  uint32_t target;
  int st = ep_fb_ref(fb, t, id, &target);
  *present = 0;
  if (st) return st;
  if (target == 0) return 0;
  st = ep_fb_table_at(fb, target, out);
  if (st) return st;
  *present = 1;
  return 0;
}

/* Element i of a vector of tables. */
static inline int ep_fb_vec_table(const ep_fb_t *fb, const ep_fb_vec_t *v, uint32_t i, ep_fb_table_t *out) {
  uint32_t pos = v->pos + 4u * i;
  uint32_t off;
  if (i >= v->n || !ep_fb_has(fb, pos, 4)) return EP_RT_ERR_BOUNDS;
  off = ep_le32(fb->b + pos);
  if (off == 0 || off > fb->len - pos) return EP_RT_ERR_BOUNDS;
  return ep_fb_table_at(fb, pos + off, out);
}

static inline int32_t ep_fb_vec_i32(const ep_fb_t *fb, const ep_fb_vec_t *v, uint32_t i) {
  return (int32_t)ep_le32(fb->b + v->pos + 4u * i);
}

#endif /* EP_FLATBUF_H */
