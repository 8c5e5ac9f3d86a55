/* Framing (COBS + CRC-32 + header) for ep_protocol.h; pure C99, no hardware, so it also builds on the host. */
#ifndef EP_FRAME_H
#define EP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "ep_protocol.h"

typedef struct {
  uint8_t version;
  uint8_t type;
  uint16_t seq;
  uint16_t len;
  const uint8_t *payload; /* points into the receive buffer */
} ep_frame_t;

/* Byte-at-a-time receiver. The buffer holds one encoded frame; bytes beyond it are dropped
 * until the next delimiter, which then reports EP_RX_OVERFLOW. */
typedef struct {
  uint8_t buf[EP_MAX_ENCODED];
  uint32_t n;
  uint8_t overflow;
} ep_rx_t;

enum { EP_RX_NONE = 0, EP_RX_FRAME = 1, EP_RX_OVERFLOW = 2 };

uint32_t ep_crc32(const uint8_t *data, size_t n);
uint32_t ep_crc32_update(uint32_t crc, const uint8_t *data, size_t n);
/* Returns encoded length (without delimiter) or 0 if cap is too small. */
size_t ep_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);
/* Decodes n bytes (no delimiter) into out; in place allowed (out == in). Returns length or -1. */
long ep_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

void ep_rx_reset(ep_rx_t *rx);
/* Feed one byte; on EP_RX_FRAME the encoded frame is rx->buf[0 .. rx->n) (delimiter excluded). */
int ep_rx_push(ep_rx_t *rx, uint8_t byte);
/* Decode + validate a received frame in place. Returns EP_ST_OK or an EP_ST_* error; on error
 * f->type / f->seq hold what could be read (0 / 0xFFFF otherwise). */
int ep_frame_parse(uint8_t *enc, size_t n, ep_frame_t *f);
/* Build COBS(body) + 0x00 into out. Returns total bytes or 0 if it does not fit / len too big. */
size_t ep_frame_build(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len, uint8_t *out, size_t cap);

#endif
