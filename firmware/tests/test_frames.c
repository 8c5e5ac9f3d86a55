/*
 * Host test of the firmware's framing code against firmware/tests/golden_frames.json (the same file the
 * Python tests read), plus CRC-32 and SHA-256 reference vectors. Usage: test_frames <golden_frames.json>
 * The JSON holds one frame object per line, so a line scanner is enough here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ep_frame.h"
#include "ep_sha256.h"

static int failures;
#define CHECK(cond, ...)                      \
  do {                                        \
    if (!(cond)) {                            \
      failures++;                             \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);           \
      fputc('\n', stderr);                    \
    }                                         \
  } while (0)

static long get_int(const char *line, const char *key) {
  const char *p = strstr(line, key);
  return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static size_t get_hex(const char *line, const char *key, uint8_t *out, size_t cap) {
  const char *p = strstr(line, key);
  size_t n = 0;
  if (!p) return 0;
  p += strlen(key);
  while (p[0] && p[1] && p[0] != '"' && n < cap) {
    unsigned v;
    if (sscanf(p, "%2x", &v) != 1) break;
    out[n++] = (uint8_t)v;
    p += 2;
  }
  return n;
}

static void vectors(void) {
  CHECK(ep_crc32((const uint8_t *)"123456789", 9) == 0xCBF43926u, "crc32 check value");
  static const uint8_t abc_digest[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                         0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                         0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  uint8_t d[32];
  ep_sha256_t s;
  ep_sha256_init(&s);
  ep_sha256_update(&s, (const uint8_t *)"ab", 2);
  ep_sha256_update(&s, (const uint8_t *)"c", 1);
  ep_sha256_final(&s, d);
  CHECK(memcmp(d, abc_digest, 32) == 0, "sha256(abc)");
  /* 1,000,000 x 'a' in odd-sized pieces: exercises block boundaries. */
  static const uint8_t million_a[32] = {0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7,
                                        0xe2, 0x84, 0xd7, 0x3e, 0x67, 0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97,
                                        0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
  uint8_t buf[997];
  memset(buf, 'a', sizeof buf);
  ep_sha256_init(&s);
  size_t left = 1000000;
  while (left) {
    size_t k = left < sizeof buf ? left : sizeof buf;
    ep_sha256_update(&s, buf, k);
    left -= k;
  }
  ep_sha256_final(&s, d);
  CHECK(memcmp(d, million_a, 32) == 0, "sha256(1e6 x a)");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s golden_frames.json\n", argv[0]);
    return 2;
  }
  FILE *f = fopen(argv[1], "r");
  if (!f) {
    perror(argv[1]);
    return 2;
  }
  vectors();
  static char line[16384];
  static uint8_t enc[EP_MAX_ENCODED + 8], payload[EP_MAX_PAYLOAD], built[EP_MAX_ENCODED];
  int valid = 0, malformed = 0;
  while (fgets(line, sizeof line, f)) {
    if (!strstr(line, "\"kind\"")) continue;
    long type = get_int(line, "\"type\": "), seq = get_int(line, "\"seq\": "), status = get_int(line, "\"status\": ");
    size_t ne = get_hex(line, "\"encoded\": \"", enc, sizeof enc);
    size_t np = get_hex(line, "\"payload\": \"", payload, sizeof payload);
    const char *name = strstr(line, "\"name\": \"");
    if (strstr(line, "\"kind\": \"valid\"")) {
      valid++;
      size_t nb = ep_frame_build((uint8_t)type, (uint16_t)seq, payload, (uint16_t)np, built, sizeof built);
      CHECK(nb == ne && memcmp(built, enc, ne) == 0, "build differs: %.40s", name);
      static ep_rx_t rx;
      ep_rx_reset(&rx);
      int got = EP_RX_NONE;
      for (size_t i = 0; i < ne; i++) {
        got = ep_rx_push(&rx, enc[i]);
        CHECK(i + 1 == ne || got == EP_RX_NONE, "frame ended early: %.40s", name);
      }
      CHECK(got == EP_RX_FRAME, "no frame at delimiter: %.40s", name);
      ep_frame_t fr;
      int st = ep_frame_parse(rx.buf, rx.n, &fr);
      CHECK(st == EP_ST_OK && fr.type == type && fr.seq == seq && fr.len == np && memcmp(fr.payload, payload, np) == 0,
            "parse (status %d): %.40s", st, name);
    } else {
      malformed++;
      ep_frame_t fr;
      int st = ep_frame_parse(enc, ne, &fr);
      CHECK(st == status, "status %d, expected %ld: %.40s", st, status, name);
      CHECK(fr.seq == seq && fr.type == type, "type/seq %d/%d, expected %ld/%ld: %.40s", fr.type, fr.seq, type, seq, name);
    }
  }
  fclose(f);
  CHECK(valid >= 5 && malformed >= 3, "too few golden frames (%d valid, %d malformed)", valid, malformed);
  printf("golden frames: %d valid, %d malformed, %d failures\n", valid, malformed, failures);
  return failures ? 1 : 0;
}
