/*
 * Export-time snapshot of a loaded model (export/deploy_prepare.py): the runtime's own init, compiled for the
 * library's core with the library's config and run once in QEMU, twice, with the model and the arena at two
 * different addresses. Every word of the model record and the arena that differs between the two runs by the
 * model's or the arena's displacement is a pointer; the rest is data. The prepared library ships the result, so the
 * device runs none of this code (no flatbuffer parser, no planner): ep_prepared.c only copies and relocates it.
 * Not part of any library: built by the exporter, then thrown away.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "runtime/ep_kernels.h"
#include "runtime/ep_runtime.h"

extern const uint8_t edgeprune_model_data[];
extern const uint32_t edgeprune_model_data_len;
extern const uint8_t ep_dump_model_copy[]; /* the same bytes at another address (.incbin, ep_dump_copy.S) */
void board_puts(const char *s);

static ep_model_t model;
static uint8_t arenas[2][EP_DUMP_ARENA] __attribute__((aligned(16)));

static void put_hex(uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  char buf[10];
  int i;
  for (i = 0; i < 8; i++) buf[i] = digits[(v >> (28 - 4 * i)) & 15u];
  buf[8] = ' ';
  buf[9] = 0;
  board_puts(buf);
}

static void dump(const char *tag, const uint8_t *p, uint32_t n) {
  static const char digits[] = "0123456789abcdef";
  char line[2 + 2 * 64 + 2];
  uint32_t i, k;
  for (i = 0; i < n; i += 64u) {
    line[0] = tag[0];
    line[1] = ' ';
    for (k = 0; k < 64u && i + k < n; k++) {
      line[2 + 2 * k] = digits[p[i + k] >> 4];
      line[3 + 2 * k] = digits[p[i + k] & 15u];
    }
    line[2 + 2 * k] = '\n';
    line[3 + 2 * k] = 0;
    board_puts(line);
  }
}

/* Init copies some records from the stack with fields it never set (unused by the kernels, e.g. a per-tensor
 * model's per-channel pointers): a zeroed stack makes those bytes the same in both runs. */
static void __attribute__((noinline)) clear_stack(void) {
  volatile uint8_t below[16 * 1024];
  uint32_t i;
  for (i = 0; i < sizeof below; i++) below[i] = 0;
}

#define LAYOUT(name, value)     \
  do {                          \
    board_puts("layout " name " "); \
    put_hex((uint32_t)(value)); \
    board_puts("\n");           \
  } while (0)

int main(void) {
  uint32_t run;
  LAYOUT("model", sizeof(ep_model_t));
  LAYOUT("fb", offsetof(ep_model_t, fb));
  LAYOUT("fb_len", offsetof(ep_model_t, fb_len));
  LAYOUT("tensors", offsetof(ep_model_t, tensors));
  LAYOUT("tensor", sizeof(ep_tensor_t));
  LAYOUT("t_data", offsetof(ep_tensor_t, data));
  LAYOUT("t_chan", offsetof(ep_tensor_t, chan_scales));
  LAYOUT("t_bytes", offsetof(ep_tensor_t, bytes));
  LAYOUT("t_first", offsetof(ep_tensor_t, first_use));
  LAYOUT("t_const", offsetof(ep_tensor_t, is_const));
  LAYOUT("ops", offsetof(ep_model_t, ops));
  LAYOUT("op", sizeof(ep_op_t));
  LAYOUT("o_fn", offsetof(ep_op_t, fn));
  LAYOUT("o_kind", offsetof(ep_op_t, kind));
  LAYOUT("o_n_in", offsetof(ep_op_t, n_in));
  LAYOUT("o_in", offsetof(ep_op_t, in));
  LAYOUT("o_out", offsetof(ep_op_t, out));
  LAYOUT("o_fused", offsetof(ep_op_t, fused));
  LAYOUT("o_scratch", offsetof(ep_op_t, scratch));
  LAYOUT("o_scratch_bytes", offsetof(ep_op_t, scratch_bytes));
  LAYOUT("num_tensors", offsetof(ep_model_t, num_tensors));
  LAYOUT("num_ops", offsetof(ep_model_t, num_ops));
  LAYOUT("num_inputs", offsetof(ep_model_t, num_inputs));
  LAYOUT("num_outputs", offsetof(ep_model_t, num_outputs));
  LAYOUT("inputs", offsetof(ep_model_t, inputs));
  LAYOUT("outputs", offsetof(ep_model_t, outputs));
  for (run = 0; run < 2u; run++) {
    const uint8_t *fb = run ? ep_dump_model_copy : edgeprune_model_data;
    int st;
    memset(arenas[run], 0, sizeof arenas[run]);
    clear_stack();
    st = ep_model_init_ex(&model, fb, edgeprune_model_data_len, arenas[run], EP_DUMP_ARENA, EP_RT_INIT_CONSUME_INPUTS);
#if EP_DEPLOY_STEPS > 1 || EP_DEPLOY_NPAIRS > 0
    if (st == EP_RT_OK) {
      static const uint8_t pairs[][2] = EP_DEPLOY_PAIRS;
      st = ep_model_set_sequence(&model, EP_DEPLOY_STEPS, EP_DEPLOY_INPUT, pairs, EP_DEPLOY_NPAIRS);
    }
#endif
    /* A build that left out a path the init chose for some op (ep_kernels.h): the exporter builds it with it. */
    if (st == EP_RT_OK && ep_rnn_staged(&model) != 0) {
      board_puts("refused: a recurrent layer needs the stage loops (EP_RT_RNN_STAGES)\n");
      return 1;
    }
    if (st == EP_RT_OK && ep_fc_unbuilt(&model) != 0) {
      board_puts("refused: an FC needs the general requantisation (EP_RT_FC_RQ_FULL)\n");
      return 1;
    }
    if (st != EP_RT_OK) {
      board_puts("refused ");
      board_puts(ep_rt_status_str(st));
      board_puts("\n");
      return 1;
    }
    board_puts("run ");
    put_hex((uint32_t)(uintptr_t)fb);
    put_hex((uint32_t)(uintptr_t)arenas[run]);
    put_hex(ep_model_arena_used(&model));
    board_puts("\n");
    dump("m", (const uint8_t *)&model, sizeof model);
    dump("a", arenas[run], ep_model_arena_used(&model));
  }
  return 0;
}
