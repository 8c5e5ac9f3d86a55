#include "ep_frame.h"

#include <string.h>

/* Nibble table: 64 bytes of flash instead of 1 KiB, fast enough for UART-rate data. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

uint32_t ep_crc32_update(uint32_t crc, const uint8_t *data, size_t n) {
  crc = ~crc;
  for (size_t i = 0; i < n; i++) {
    crc ^= data[i];
    crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
    crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
  }
  return ~crc;
}

uint32_t ep_crc32(const uint8_t *data, size_t n) { return ep_crc32_update(0, data, n); }

size_t ep_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
  size_t code_at = 0, w = 1;
  uint8_t code = 1;
  if (cap == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    if (in[i] == 0) {
      out[code_at] = code;
      if (w >= cap) return 0;
      code_at = w++;
      code = 1;
    } else {
      if (w >= cap) return 0;
      out[w++] = in[i];
      code++;
      /* A full block ends without an implied zero; only open a new one if input remains (canonical COBS). */
      if (code == 0xFF && i + 1 < n) {
        out[code_at] = code;
        if (w >= cap) return 0;
        code_at = w++;
        code = 1;
      }
    }
  }
  out[code_at] = code;
  return w;
}

long ep_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
  size_t r = 0, w = 0;
  while (r < n) {
    uint8_t code = in[r++];
    if (code == 0) return -1;
    if (r + (size_t)(code - 1) > n) return -1;
    for (uint8_t k = 1; k < code; k++) {
      uint8_t b = in[r++];
      if (b == 0 || w >= cap) return -1;
      out[w++] = b;
    }
    if (code != 0xFF && r < n) {
      if (w >= cap) return -1;
      out[w++] = 0;
    }
  }
  return (long)w;
}

void ep_rx_reset(ep_rx_t *rx) {
  rx->n = 0;
  rx->overflow = 0;
}

int ep_rx_push(ep_rx_t *rx, uint8_t byte) {
  if (byte == 0) {
    if (rx->overflow) {
      ep_rx_reset(rx);
      return EP_RX_OVERFLOW;
    }
    if (rx->n == 0) return EP_RX_NONE; /* idle delimiters are allowed (used to flush/resync) */
    return EP_RX_FRAME;
  }
  if (rx->overflow) return EP_RX_NONE;
  if (rx->n >= sizeof rx->buf) {
    rx->overflow = 1;
    return EP_RX_NONE;
  }
  rx->buf[rx->n++] = byte;
  return EP_RX_NONE;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

int ep_frame_parse(uint8_t *enc, size_t n, ep_frame_t *f) {
  f->version = 0;
  f->type = 0;
  f->seq = 0xFFFFu;
  f->len = 0;
  f->payload = enc;
  long m = ep_cobs_decode(enc, n, enc, n);
  if (m < 0) return EP_ST_COBS;
  size_t body = (size_t)m;
  if (body >= 2) f->type = enc[1];
  if (body >= 4) f->seq = rd16(enc + 2);
  if (body < EP_FRAME_OVERHEAD) return EP_ST_TRUNCATED;
  f->version = enc[0];
  f->len = rd16(enc + 4);
  if ((size_t)f->len + EP_FRAME_OVERHEAD != body) return f->len > EP_MAX_PAYLOAD ? EP_ST_TOO_LONG : EP_ST_TRUNCATED;
  if (ep_crc32(enc, body - 4) != rd32(enc + body - 4)) return EP_ST_CRC;
  if (f->version != EP_PROTOCOL_VERSION) return EP_ST_VERSION;
  f->payload = enc + 6;
  return EP_ST_OK;
}

size_t ep_frame_build(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len, uint8_t *out, size_t cap) {
  uint8_t body[EP_MAX_BODY];
  if (len > EP_MAX_PAYLOAD) return 0;
  body[0] = EP_PROTOCOL_VERSION;
  body[1] = type;
  body[2] = (uint8_t)seq;
  body[3] = (uint8_t)(seq >> 8);
  body[4] = (uint8_t)len;
  body[5] = (uint8_t)(len >> 8);
  if (len) memcpy(body + 6, payload, len);
  uint32_t crc = ep_crc32(body, 6u + len);
  for (int i = 0; i < 4; i++) body[6 + len + i] = (uint8_t)(crc >> (8 * i));
  if (cap < 1) return 0;
  size_t w = ep_cobs_encode(body, 10u + len, out, cap - 1);
  if (w == 0) return 0;
  out[w] = 0;
  return w + 1;
}
