/* SHA-256 (FIPS 180-4), incremental, for verifying a model received over the link. */
#ifndef EP_SHA256_H
#define EP_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t h[8];
  uint64_t total;
  uint8_t block[64];
  uint32_t fill;
} ep_sha256_t;

void ep_sha256_init(ep_sha256_t *s);
void ep_sha256_update(ep_sha256_t *s, const uint8_t *data, size_t n);
void ep_sha256_final(ep_sha256_t *s, uint8_t out[32]);

#endif
