/*
 * Corpus-driven fuzzer for the frame receiver + parser + dispatcher (build with -fsanitize=address,undefined).
 * Usage: replay_link <mutations> <seed> file... Each corpus file (a byte stream of 0x00-delimited frames) is fed
 * as is, then <mutations> times a mutated copy of a random file (bit flips, truncation, byte insertion or
 * deletion, splices of two files). Same check as fuzz_link: every delimited frame gets exactly one
 * well-formed reply, nothing crashes or reads out of bounds.
 */
#define main fuzz_link_main
#include "fuzz_link.c"
#undef main

#define MAX_FILES 64
#define MAX_LEN 8192

static uint8_t *corpus[MAX_FILES];
static size_t corpus_len[MAX_FILES];

static int read_file(const char *path, uint8_t **data, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  *data = malloc(MAX_LEN);
  *len = fread(*data, 1, MAX_LEN, f);
  fclose(f);
  return 0;
}

/* Feed a stream that always ends in a delimiter, so its last frame is answered before the next stream. */
static void feed_stream(uint8_t *buf, size_t n) {
  if (n == 0 || buf[n - 1] != 0) buf[n++] = 0;
  feed(buf, n);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s mutations seed file...\n", argv[0]);
    return 2;
  }
  unsigned long mutations = strtoul(argv[1], NULL, 10);
  rng ^= strtoull(argv[2], NULL, 10) * 0x9E3779B97F4A7C15ull;
  int nfiles = 0;
  for (int i = 3; i < argc && nfiles < MAX_FILES; i++) {
    if (read_file(argv[i], &corpus[nfiles], &corpus_len[nfiles]) != 0) {
      fprintf(stderr, "cannot read %s\n", argv[i]);
      return 2;
    }
    nfiles++;
  }
  ep_link_init();
  ep_rx_reset(&rx);
  static uint8_t buf[2 * MAX_LEN + 2];
  for (int i = 0; i < nfiles; i++) {
    memcpy(buf, corpus[i], corpus_len[i]);
    feed_stream(buf, corpus_len[i]);
  }
  for (unsigned long m = 0; m < mutations; m++) {
    int s = (int)(rnd() % (uint32_t)nfiles);
    size_t n = corpus_len[s];
    memcpy(buf, corpus[s], n);
    for (uint32_t edits = 1 + rnd() % 4; edits > 0 && n > 0; edits--) {
      uint32_t k = rnd() % 5;
      size_t at = rnd() % n;
      if (k == 0) buf[at] ^= (uint8_t)(1u << (rnd() % 8));
      if (k == 1) n = at + 1;
      if (k == 2 && n < MAX_LEN) {
        memmove(buf + at + 1, buf + at, n - at);
        buf[at] = (uint8_t)rnd();
        n++;
      }
      if (k == 3 && n > 1) {
        memmove(buf + at, buf + at + 1, n - at - 1);
        n--;
      }
      if (k == 4) { /* splice: this stream's head, another's tail */
        int t = (int)(rnd() % (uint32_t)nfiles);
        size_t from = rnd() % (corpus_len[t] + 1), take = corpus_len[t] - from;
        if (at + take > MAX_LEN) take = MAX_LEN - at;
        memcpy(buf + at, corpus[t] + from, take);
        n = at + take;
      }
    }
    feed_stream(buf, n);
  }
  printf("replay: %lu frames, %u resets, %lu malformed replies, %d seeds\n", frames_seen, host_resets, replies_bad,
         nfiles);
  for (int i = 0; i < nfiles; i++) free(corpus[i]);
  return replies_bad ? 1 : 0;
}
