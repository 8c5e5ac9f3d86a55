/*
 * The deploy library's C API over the edgeprune runtime (runtime/): one model, compiled in, run in the caller's
 * arena. Sizes and the model's sequence loop come from ep_deploy_config.h, written for this model at export; a
 * prepared library (EP_DEPLOY_PREPARED) ships the runtime's state after init instead of the .tflite.
 */
#include "edgeprune_model.h"

#include <string.h>

#include "runtime/ep_runtime.h"
#if EP_DEPLOY_PREPARED
#include "runtime/ep_prepared.h"
#else
extern const uint8_t edgeprune_model_data[];
extern const uint32_t edgeprune_model_data_len;
#endif

static ep_model_t model;
static int ready;

int edgeprune_init(void *arena, size_t arena_bytes) {
  ready = 0;
  if (arena == NULL || arena_bytes > UINT32_MAX) return EP_RT_ERR_ARG;
#if EP_DEPLOY_PREPARED
  /* Prepared at export (the runtime's own init, sequence set-up included): only bound to the arena here. */
  int st = ep_prepared_bind(&model, (uint8_t *)arena, (uint32_t)arena_bytes);
  if (st != EP_RT_OK) return st;
#else
  /* Every invoke writes its input anew, so the runtime may reuse the input's bytes (TFLM's plan). */
  int st = ep_model_init_ex(&model, edgeprune_model_data, edgeprune_model_data_len, (uint8_t *)arena,
                            (uint32_t)arena_bytes, EP_RT_INIT_CONSUME_INPUTS);
  if (st != EP_RT_OK) return st;
#if EP_DEPLOY_STEPS > 1 || EP_DEPLOY_NPAIRS > 0
  static const uint8_t pairs[][2] = EP_DEPLOY_PAIRS;
  st = ep_model_set_sequence(&model, EP_DEPLOY_STEPS, EP_DEPLOY_INPUT, pairs, EP_DEPLOY_NPAIRS);
  if (st != EP_RT_OK) return st;
#endif
#endif
  ready = 1;
  return EP_RT_OK;
}

int edgeprune_invoke(const void *input, size_t input_bytes) {
  if (!ready) return EP_RT_ERR_STATE;
  if (input == NULL || input_bytes != EDGEPRUNE_INPUT_BYTES) return EP_RT_ERR_RANGE;
#if EP_DEPLOY_PREPARED
  /* Index and size checked at export and above: the staging buffer of the sequence, or the input tensor, directly. */
  memcpy(model.stream_buf ? model.stream_buf : model.tensors[model.inputs[EP_DEPLOY_INPUT]].data, input, input_bytes);
  return ep_model_invoke(&model);
#else
  const int st = ep_model_set_input(&model, EP_DEPLOY_INPUT, 0, (const uint8_t *)input, (uint32_t)input_bytes);
  return st != EP_RT_OK ? st : ep_model_invoke(&model);
#endif
}

int edgeprune_output(void *output, size_t output_bytes) {
  if (!ready) return EP_RT_ERR_STATE;
#if EP_DEPLOY_PREPARED
  /* The output's index was checked at export: its record directly (ep_model_io's full description is not linked). */
  const ep_tensor_t *t = &model.tensors[model.outputs[EP_DEPLOY_OUTPUT]];
  const void *data = t->data;
  const uint32_t bytes = t->bytes;
#else
  ep_tensor_info_t info;
  const int st = ep_model_io(&model, 1, EP_DEPLOY_OUTPUT, &info);
  if (st != EP_RT_OK) return st;
  const void *data = info.data;
  const uint32_t bytes = info.bytes;
#endif
  if (output == NULL || output_bytes < bytes) return EP_RT_ERR_RANGE;
  memcpy(output, data, bytes);
  return EP_RT_OK;
}

const char *edgeprune_status_str(int status) {
#if EP_DEPLOY_PREPARED
  /* A prepared model is never parsed on the device, so none of the runtime's model errors can occur: only these
   * (the runtime's full list of messages, ~0.6 KB of flash, is not linked). */
  switch (status) {
    case EP_RT_OK: return "ok";
    case EP_RT_ERR_ARG: return "NULL or unaligned arena";
    case EP_RT_ERR_STATE: return "not initialised";
    case EP_RT_ERR_ARENA: return "arena too small";
    case EP_RT_ERR_RANGE: return "wrong input/output size";
    default: return "runtime error";
  }
#else
  return ep_rt_status_str(status);
#endif
}
