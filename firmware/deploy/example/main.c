/* edgeprune deploy example: run the model once on a fixed input pattern and print its output bytes in hex. */
#include <stdint.h>

#include "edgeprune_model.h"

void board_puts(const char *s); /* the board's console (qemu/board_qemu.c: semihosting) */

#if EDGEPRUNE_INPUT_IS_FLOAT /* a fixed test pattern */
#define PATTERN(i) ((float)(int8_t)((i) * 37u + 11u) / 64.0f)
#else
#define PATTERN(i) ((EDGEPRUNE_INPUT_T)((i) * 37u + 11u))
#endif

static uint8_t arena[EDGEPRUNE_ARENA_BYTES] __attribute__((aligned(16)));
static EDGEPRUNE_INPUT_T input[EDGEPRUNE_INPUT_BYTES / sizeof(EDGEPRUNE_INPUT_T)];
static int8_t output[EDGEPRUNE_OUTPUT_BYTES];

int main(void) {
  for (uint32_t i = 0; i < sizeof input / sizeof input[0]; i++) input[i] = PATTERN(i);
  int st = edgeprune_init(arena, sizeof arena);
  if (st == EDGEPRUNE_OK) st = edgeprune_invoke(input, sizeof input);
  if (st == EDGEPRUNE_OK) st = edgeprune_output(output, sizeof output);
  if (st != EDGEPRUNE_OK) {
    board_puts(edgeprune_status_str(st));
    board_puts("\n");
    return 1;
  }
  static const char hex[] = "0123456789abcdef";
  char line[2 * EDGEPRUNE_OUTPUT_BYTES + 9] = "output ";
  for (uint32_t i = 0; i < EDGEPRUNE_OUTPUT_BYTES; i++) {
    line[7 + 2 * i] = hex[(uint8_t)output[i] >> 4];
    line[8 + 2 * i] = hex[(uint8_t)output[i] & 15u];
  }
  line[7 + 2 * EDGEPRUNE_OUTPUT_BYTES] = '\n';
  line[8 + 2 * EDGEPRUNE_OUTPUT_BYTES] = 0;
  board_puts(line);
  return 0;
}
