/*
 * Host fuzzer for the frame receiver + parser + dispatcher (build with -fsanitize=address,undefined).
 * Usage: fuzz_link <frames> [seed]. Feeds random byte streams, random valid requests and mutated valid
 * requests; checks that every delimited frame gets exactly one well-formed reply (a RESET reply is
 * followed by the reset) and that nothing crashes, hangs or reads out of bounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ep_frame.h"
#include "ep_link.h"
#include "host_port.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}

static ep_rx_t rx;
static unsigned long frames_seen, replies_bad;

/* Count replies in host_tx; every one must parse. */
static unsigned drain_replies(void) {
  unsigned n = 0;
  size_t start = 0;
  for (size_t i = 0; i < host_tx_len; i++) {
    if (host_tx[i] != 0) continue;
    static uint8_t tmp[EP_MAX_ENCODED];
    size_t len = i - start;
    ep_frame_t f;
    if (len > sizeof tmp || (memcpy(tmp, host_tx + start, len), ep_frame_parse(tmp, len, &f)) != EP_ST_OK ||
        !(f.type & EP_REPLY_FLAG)) {
      replies_bad++;
    }
    n++;
    start = i + 1;
  }
  host_tx_len = 0;
  return n;
}

/* setjmp lives in its own frame so the caller's loop variables are not clobbered by the longjmp. */
static void handle(int r) {
  if (setjmp(host_reset_jmp) == 0) {
    if (r == EP_RX_FRAME)
      ep_link_handle(rx.buf, rx.n);
    else
      ep_link_overflow();
  } else {
    ep_link_init(); /* what a reboot does */
  }
}

static void feed(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int r = ep_rx_push(&rx, data[i]);
    if (r == EP_RX_NONE) continue;
    frames_seen++;
    handle(r);
    ep_rx_reset(&rx);
    unsigned got = drain_replies();
    if (got != 1) {
      fprintf(stderr, "frame %lu produced %u replies\n", frames_seen, got);
      exit(1);
    }
  }
}

static size_t valid_request(uint8_t *out, size_t cap, uint16_t seq) {
  static const uint8_t types[] = {EP_MSG_HELLO, EP_MSG_LOAD_BEGIN, EP_MSG_LOAD_CHUNK, EP_MSG_LOAD_END,
                                  EP_MSG_SET_SEQUENCE, EP_MSG_SET_INPUT, EP_MSG_INFER, EP_MSG_GET_OUTPUT,
                                  EP_MSG_POWER, EP_MSG_RESET, EP_MSG_IO_INFO, 0x55};
  uint8_t payload[EP_MAX_PAYLOAD];
  uint8_t type = types[rnd() % sizeof types];
  uint16_t len = (uint16_t)(rnd() % 4 == 0 ? rnd() % (EP_MAX_PAYLOAD + 1) : rnd() % 48);
  for (uint16_t i = 0; i < len; i++) payload[i] = (uint8_t)(rnd() % 3 == 0 ? 0 : rnd());
  if (type == EP_MSG_LOAD_BEGIN && rnd() % 2) {
    len = sizeof(ep_load_begin_t);
    uint32_t size = rnd() % 4096 + 1;
    memcpy(payload, &size, 4);
  }
  if (type == EP_MSG_LOAD_CHUNK && rnd() % 2) {
    uint32_t off = rnd() % 3 ? 0 : rnd() % 8192;
    memcpy(payload, &off, 4);
    if (len < 5) len = 5;
  }
  return ep_frame_build(type, seq, payload, len, out, cap);
}

int main(int argc, char **argv) {
  unsigned long target = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000ul;
  if (argc > 2) rng ^= strtoull(argv[2], NULL, 10) * 0x9E3779B97F4A7C15ull;
  ep_link_init();
  ep_rx_reset(&rx);
  static uint8_t buf[EP_MAX_ENCODED * 2 + 64];
  uint16_t seq = 0;
  while (frames_seen < target) {
    uint32_t mode = rnd() % 10;
    size_t n;
    if (mode < 3) { /* random bytes, some delimiters, sometimes longer than any frame */
      n = rnd() % 4 == 0 ? rnd() % sizeof buf : rnd() % 64;
      for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(rnd() % 16 == 0 ? 0 : rnd());
      buf[n++] = 0;
    } else {
      n = valid_request(buf, sizeof buf, ++seq);
      if (mode >= 6 && n > 1) { /* mutate: flip, truncate, duplicate a byte, or replay an old seq */
        uint32_t k = rnd() % 4;
        if (k == 0) buf[rnd() % (n - 1)] ^= (uint8_t)(1u << (rnd() % 8));
        if (k == 1) n = 1 + rnd() % (n - 1);
        if (k == 2) {
          size_t at = rnd() % (n - 1);
          memmove(buf + at + 1, buf + at, n - at);
          n++;
        }
        if (k == 3) n = valid_request(buf, sizeof buf, (uint16_t)(seq - 1u - rnd() % 4u));
        if (buf[n - 1] != 0) buf[n++] = 0;
      }
    }
    feed(buf, n);
  }
  printf("fuzz: %lu frames, %u resets, %lu malformed replies\n", frames_seen, host_resets, replies_bad);
  return replies_bad ? 1 : 0;
}
