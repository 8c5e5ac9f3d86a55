/*
 * Host tool for deploy builds: runs firmware/runtime's own ep_model_init (and ep_model_set_sequence) on a
 * .tflite and prints what the baked firmware must reserve, so its static buffers are sized for the model.
 *
 *   ep_arena_plan model.tflite [steps stream_input out,in ...]
 *   -> "arena <bytes> tensors <n> ops <n> fc_max_depth <n> gru <n> conv <n> f32 <n> kinds <hex mask>
 *       rnn <hidden>x<input depth>,..."  (each fused GRU/LSTM layer, for the deploy build's EP_RT_RNN_PASS and
 *       EP_RT_GRU_DOT16/32 switches; "rnn -" when there is none)
 *
 * EP_PLAN_FLAGS=<n> in the environment plans with ep_model_init_ex(..., n) instead of the default flags (e.g. 2 =
 * EP_RT_INIT_CONSUME_INPUTS, an application that writes its inputs before every invoke).
 *
 * The arena is planned by the same C code the device runs, built once per kind of target: -DEP_PLAN_DSP,
 * -DEP_PLAN_FPU and -DEP_PLAN_V6M (0/1, ep_kernels.h) give the sizes that depend on the core (the FC input widening,
 * model-bias FCs, the QUANTIZE/DEQUANTIZE tables of cores without an FPU). fc_max_depth is informative.
 * gru/conv/f32 count the ops of each optional kernel family (ep_kernels.h), so a deploy build can leave out a
 * family the model never runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

#include "ep_conv16.h"
#include "ep_convf.h"
#include "ep_kernels.h"
#include "ep_runtime.h"

#define ARENA (64u * 1024u * 1024u)

static ep_model_t model;
static uint8_t arena[ARENA] __attribute__((aligned(16)));

int main(int argc, char **argv) {
  if (argc < 2 || argc == 3) {
    fprintf(stderr, "usage: %s model.tflite [steps stream_input out,in ...]\n", argv[0]);
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 2;
  }
  static uint8_t buf[16u * 1024u * 1024u] __attribute__((aligned(16)));
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  const char *flags = getenv("EP_PLAN_FLAGS");
  int st = flags ? ep_model_init_ex(&model, buf, (uint32_t)len, arena, ARENA, (uint32_t)strtoul(flags, NULL, 0))
                 : ep_model_init(&model, buf, (uint32_t)len, arena, ARENA);
  if (st != EP_RT_OK) {
    fprintf(stderr, "runtime refused the model: %s (%d)\n", ep_rt_status_str(st), st);
    return 1;
  }
  if (argc > 3) {
    uint8_t pairs[EP_RT_MAX_PAIRS][2];
    uint32_t np = 0;
    for (int i = 4; i < argc && np < EP_RT_MAX_PAIRS; i++, np++) {
      unsigned o, in;
      if (sscanf(argv[i], "%u,%u", &o, &in) != 2) return 2;
      pairs[np][0] = (uint8_t)o;
      pairs[np][1] = (uint8_t)in;
    }
    st = ep_model_set_sequence(&model, (uint32_t)atoi(argv[2]), (uint32_t)atoi(argv[3]),
                               (const uint8_t(*)[2])pairs, np);
    if (st != EP_RT_OK) {
      fprintf(stderr, "runtime refused the sequence: %s (%d)\n", ep_rt_status_str(st), st);
      return 1;
    }
  }
  uint32_t depth = 0, gru = 0, conv = 0, f32 = 0;
  for (uint32_t i = 0; i < model.num_ops; i++) {
    if (model.ops[i].builtin == 9u && model.ops[i].depth > depth) depth = model.ops[i].depth; /* FULLY_CONNECTED */
    gru += model.ops[i].kind == EP_K_GRU || model.ops[i].kind == EP_K_LSTM; /* the recurrent family (ep_gru.c) */
    conv += ep_is_window_kind(model.ops[i].kind) || ep_is_conv16_kind(model.ops[i].kind) ||
            ep_is_convf_kind(model.ops[i].kind);
    f32 += model.ops[i].kind == EP_K_FC_F32 || model.ops[i].kind == EP_K_LOGISTIC_F32 ||
           model.ops[i].kind == EP_K_TANH_F32 || model.ops[i].kind == EP_K_RELU_F32 ||
           ep_is_convf_kind(model.ops[i].kind); /* ep_convf.c is compiled under EP_RT_F32 too */
  }
  unsigned long long kinds = 0; /* EP_RT_KINDS for a build of exactly this model: the kinds its run list calls */
  for (uint32_t i = 0; i < model.num_run; i++) kinds |= 1ull << model.ops[model.run[i]].kind;
  printf("arena %u tensors %u ops %u fc_max_depth %u gru %u conv %u f32 %u kinds 0x%llx\n",
         (unsigned)ep_model_arena_used(&model), (unsigned)model.num_tensors, (unsigned)model.num_ops, (unsigned)depth,
         (unsigned)gru, (unsigned)conv, (unsigned)f32, kinds);
  printf("rnn");
  gru = 0;
  for (uint32_t i = 0; i < model.num_ops; i++) {
    int16_t t[3];
    if (model.ops[i].kind != EP_K_GRU && model.ops[i].kind != EP_K_LSTM) continue;
    (void)ep_rnn_reads(&model.ops[i], t); /* x [1, depth], h [1, hidden]: the last dims (x may be staged) */
    const ep_tensor_t *x = &model.tensors[t[0]], *h = &model.tensors[t[1]];
    printf("%s%ux%u", gru++ ? "," : " ", (unsigned)h->dims[h->rank - 1u], (unsigned)x->dims[x->rank - 1u]);
  }
  printf("%s\n", gru ? "" : " -");
  return 0;
}
