/*
 * Validator fuzzer: random buffers and mutated copies of real models go through ep_model_init; any that
 * load are also configured for sequence mode at random and invoked. Build with
 * -fsanitize=address,undefined -fno-sanitize-recover=all so any out-of-bounds access or UB aborts.
 *
 *   fuzz_validator <iterations> <seed> model.tflite [model2.tflite ...]
 * Prints one summary line: "iterations=N loaded=L invoked=I status[-k]=count ...".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ep_runtime.h"

#define MAX_SEEDS 8
#define MAX_MODEL (512u * 1024u)
#define ARENA_LEN (256u * 1024u)

static uint64_t rng_state;
static uint32_t rnd(void) { /* xorshift64*: deterministic per seed, no libc rand state */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static uint8_t *seeds[MAX_SEEDS];
static uint32_t seed_len[MAX_SEEDS];
static uint8_t work[MAX_MODEL];
static uint8_t arena[ARENA_LEN];
static uint8_t input[ARENA_LEN];
static ep_model_t model;

static const uint32_t interesting[] = {0u, 1u, 4u, 0x7fu, 0x80u, 0xffu, 0x7fffu, 0xffffu, 0x7fffffffu,
                                       0x80000000u, 0xffffffffu, 0xfffffff0u, 16u, 0x10000u};

static void mutate(uint8_t *b, uint32_t *len) {
  uint32_t k, n = 1 + rnd() % 8;
  for (k = 0; k < n && *len > 0; k++) {
    uint32_t pos = rnd() % *len;
    switch (rnd() % 6) {
      case 0: b[pos] ^= (uint8_t)(1u << (rnd() % 8)); break;
      case 1: b[pos] = (uint8_t)rnd(); break;
      case 2: /* aligned 32-bit word replaced by a boundary value: hits offsets, lengths, indices */
        pos &= ~3u;
        if (pos + 4 <= *len) {
          uint32_t v = interesting[rnd() % (sizeof interesting / sizeof interesting[0])];
          memcpy(b + pos, &v, 4);
        }
        break;
      case 3: *len = pos; break; /* truncate */
      case 4: { /* small signed delta on a 32-bit word */
        pos &= ~3u;
        if (pos + 4 <= *len) {
          uint32_t v;
          memcpy(&v, b + pos, 4);
          v += (rnd() % 17u) - 8u;
          memcpy(b + pos, &v, 4);
        }
        break;
      }
      default: { /* copy a chunk from elsewhere in the buffer */
        uint32_t src = rnd() % *len, cnt = 1 + rnd() % 16;
        if (src + cnt <= *len && pos + cnt <= *len) memmove(b + pos, b + src, cnt);
        break;
      }
    }
  }
}

static uint8_t *read_file(const char *path, uint32_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf;
  long n;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (n <= 0 || (unsigned long)n > MAX_MODEL) {
    fclose(f);
    return NULL;
  }
  buf = (uint8_t *)malloc((size_t)n);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (uint32_t)n;
  return buf;
}

static void exercise(void) {
  uint32_t i, nin = ep_model_num_inputs(&model);
  ep_tensor_info_t info;
  if (rnd() % 4 == 0) {
    uint8_t pairs[2][2];
    pairs[0][0] = (uint8_t)(rnd() % 3);
    pairs[0][1] = (uint8_t)(rnd() % 3);
    pairs[1][0] = (uint8_t)(rnd() % 3);
    pairs[1][1] = (uint8_t)(rnd() % 3);
    (void)ep_model_set_sequence(&model, 1 + rnd() % 4, rnd() % 2, (const uint8_t(*)[2])pairs, rnd() % 3);
  }
  for (i = 0; i < nin; i++) {
    if (ep_model_io(&model, 0, i, &info) == EP_RT_OK && info.bytes <= sizeof input) {
      uint32_t k;
      for (k = 0; k < info.bytes; k++) input[k] = (uint8_t)rnd();
      (void)ep_model_set_input(&model, i, 0, input, info.bytes);
    }
  }
  (void)ep_model_invoke(&model);
}

int main(int argc, char **argv) {
  unsigned long iters, it;
  uint32_t nseeds = 0, loaded = 0, invoked = 0;
  uint32_t counts[32] = {0};
  int i;
  if (argc < 4) {
    fprintf(stderr, "usage: %s iterations seed model.tflite...\n", argv[0]);
    return 2;
  }
  iters = strtoul(argv[1], NULL, 10);
  rng_state = 0x9E3779B97F4A7C15ull ^ strtoull(argv[2], NULL, 10);
  for (i = 3; i < argc && nseeds < MAX_SEEDS; i++) {
    seeds[nseeds] = read_file(argv[i], &seed_len[nseeds]);
    if (!seeds[nseeds]) {
      fprintf(stderr, "cannot read %s\n", argv[i]);
      return 2;
    }
    nseeds++;
  }
  for (it = 0; it < iters; it++) {
    /* The last seed may be large (copying it dominates the run time): pick it 1 time in 8. */
    uint32_t len, s = (nseeds > 1 && rnd() % 8 != 0) ? rnd() % (nseeds - 1) : nseeds - 1;
    int st;
    if (it % 16 == 0) { /* pure noise, usually with a valid header so parsing goes deeper */
      uint32_t k;
      len = rnd() % 2048;
      for (k = 0; k < len; k++) work[k] = (uint8_t)rnd();
      if (len >= 8 && rnd() % 2) memcpy(work + 4, "TFL3", 4);
    } else {
      len = seed_len[s];
      memcpy(work, seeds[s], len);
      mutate(work, &len);
    }
    st = ep_model_init(&model, work, len, arena, ARENA_LEN);
    if (st > 0 || st < -31) {
      fprintf(stderr, "status out of range: %d\n", st);
      return 1;
    }
    counts[-st]++;
    if (st == EP_RT_OK) {
      loaded++;
      /* Large models are invoked rarely so the run stays short under the sanitizers. */
      if (ep_model_macs(&model) < 20000u || rnd() % 64 == 0) {
        exercise();
        invoked++;
      }
    }
  }
  printf("iterations=%lu loaded=%u invoked=%u", iters, loaded, invoked);
  for (i = 0; i < 32; i++)
    if (counts[i]) printf(" status[%d]=%u", -i, counts[i]);
  printf("\n");
  for (i = 0; i < (int)nseeds; i++) free(seeds[i]);
  return 0;
}
