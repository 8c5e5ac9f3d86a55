/*
 * Command dispatcher for the ep_protocol.h requests. Board-independent (uses only ep_port_*), and the
 * runtime is optional at build time (EP_HAVE_RUNTIME) so the link can be brought up and tested alone.
 */
#include "ep_link.h"

#include <string.h>

#include "ep_frame.h"
#include "ep_port.h"
#include "ep_protocol.h"
#include "ep_sha256.h"

#if EP_HAVE_RUNTIME
#include "ep_runtime.h"
#endif
#ifdef EP_BAKED_MODEL
#include "model_data.h"
#ifndef EP_BAKED_ARRAY
#define EP_BAKED_ARRAY ep_model_data
#endif
#ifndef EP_BAKED_LEN
#define EP_BAKED_LEN ep_model_data_len
#endif
#endif

#ifndef EP_MODEL_MAX
#define EP_MODEL_MAX (64u * 1024u)
#endif
#ifndef EP_ARENA_BYTES
#define EP_ARENA_BYTES (32u * 1024u)
#endif
#ifndef EP_BUILD_ID
#define EP_BUILD_ID "unknown"
#endif

#if EP_MODEL_MAX > 0
static uint8_t model_buf[EP_MODEL_MAX] __attribute__((aligned(16)));
#endif
#if EP_HAVE_RUNTIME
static uint8_t arena[EP_ARENA_BYTES] __attribute__((aligned(16)));
static ep_model_t model;
#endif

static struct {
  uint8_t active;
  uint32_t size, received;
  uint8_t sha[32];
  ep_sha256_t ctx;
} load;

static uint8_t model_ready;
static uint8_t model_sha[32]; /* of the loaded model while model_ready (zeros for a baked one): HELLO reports it */
/* SET_BAUD: the rate in use and, until a valid frame arrives at it, the rate to go back to. */
static struct {
  uint32_t rate, previous;
  uint8_t pending;
  uint32_t since_ms;
} baud;
static uint8_t seq_valid;
static uint16_t seq_expected;
static uint8_t reply[EP_MAX_PAYLOAD] __attribute__((aligned(4)));
static uint8_t tx[EP_MAX_ENCODED];

static void send(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len) {
  size_t n = ep_frame_build(type, seq, payload, len, tx, sizeof tx);
  if (n) ep_port_write(tx, n);
}

static void ok(uint8_t req, uint16_t seq, uint16_t len) { send((uint8_t)(req | EP_REPLY_FLAG), seq, reply, len); }

static void fail(uint8_t req, uint16_t seq, int status, int32_t detail) {
  ep_error_t e = {req, 0, (int16_t)status, detail};
  send((uint8_t)(EP_MSG_ERROR | EP_REPLY_FLAG), seq, (const uint8_t *)&e, (uint16_t)sizeof e);
}

static uint32_t max_model(void) { return EP_MODEL_MAX; }

void ep_link_init(void) {
  memset(&load, 0, sizeof load);
  model_ready = 0;
  memset(model_sha, 0, sizeof model_sha);
  seq_valid = 0;
  baud.rate = EP_BAUD_DEFAULT;
  baud.pending = 0;
#if EP_HAVE_RUNTIME && defined(EP_BAKED_MODEL)
  model_ready = ep_model_init(&model, EP_BAKED_ARRAY, (uint32_t)EP_BAKED_LEN, arena, sizeof arena) == EP_RT_OK;
#endif
}

void ep_link_overflow(void) { fail(0, 0xFFFFu, EP_ST_TOO_LONG, (int32_t)EP_MAX_ENCODED); }

/* NUL-padded fixed field; a too-long string is cut (the field need not be terminated). */
static void copy_str(char *dst, const char *src, size_t cap) {
  size_t i = 0;
  for (; i < cap && src[i]; i++) dst[i] = src[i];
  for (; i < cap; i++) dst[i] = 0;
}

static void do_hello(uint16_t seq) {
  const ep_port_info_t *pi = ep_port_info();
  ep_hello_t h;
  memset(&h, 0, sizeof h);
  h.protocol = EP_PROTOCOL_VERSION;
  h.core = pi->core;
  h.counter = pi->counter;
  h.clock_hz = pi->clock_hz;
  h.counter_scale_milli = pi->counter_scale_milli;
  h.arena_bytes = EP_ARENA_BYTES;
  h.max_model = max_model();
  h.max_payload = EP_MAX_PAYLOAD;
  h.reset_reason = ep_port_reset_reason();
  h.has_runtime = EP_HAVE_RUNTIME ? 1 : 0;
#ifdef EP_BAKED_MODEL
  h.baked_model = 1;
#endif
  copy_str(h.build_id, EP_BUILD_ID, sizeof h.build_id);
  copy_str(h.board, pi->board, sizeof h.board);
  if (model_ready) memcpy(h.model_sha256, model_sha, sizeof h.model_sha256);
  memcpy(reply, &h, sizeof h);
  ok(EP_MSG_HELLO, seq, sizeof h);
}

static void do_load_begin(const ep_frame_t *f) {
  ep_load_begin_t b;
  if (f->len != sizeof b) return fail(f->type, f->seq, EP_ST_BAD_LENGTH, (int32_t)sizeof b);
  memcpy(&b, f->payload, sizeof b);
  load.active = 0;
  /* Refused before touching model_ready: a deploy build (max_model 0) keeps its baked model. */
  if (b.size == 0 || b.size > max_model()) return fail(f->type, f->seq, EP_ST_MODEL_TOO_BIG, (int32_t)max_model());
  model_ready = 0; /* the buffer is about to be overwritten */
  memset(model_sha, 0, sizeof model_sha);
  load.active = 1;
  load.size = b.size;
  load.received = 0;
  memcpy(load.sha, b.sha256, sizeof load.sha);
  ep_sha256_init(&load.ctx);
  ok(f->type, f->seq, 0);
}

static void do_load_chunk(const ep_frame_t *f) {
  ep_load_chunk_t c;
  if (f->len <= sizeof c) return fail(f->type, f->seq, EP_ST_BAD_LENGTH, (int32_t)sizeof c + 1);
  if (!load.active) return fail(f->type, f->seq, EP_ST_NO_LOAD, 0);
  memcpy(&c, f->payload, sizeof c);
  uint32_t n = f->len - (uint32_t)sizeof c;
  if (c.offset != load.received) return fail(f->type, f->seq, EP_ST_LOAD_ORDER, (int32_t)load.received);
  if (n > load.size - load.received) return fail(f->type, f->seq, EP_ST_LOAD_SIZE, (int32_t)load.size);
#if EP_MODEL_MAX > 0
  memcpy(model_buf + load.received, f->payload + sizeof c, n);
#endif
  ep_sha256_update(&load.ctx, f->payload + sizeof c, n);
  load.received += n;
  ok(f->type, f->seq, 0);
}

static void do_load_end(const ep_frame_t *f) {
  if (f->len != 0) return fail(f->type, f->seq, EP_ST_BAD_LENGTH, 0);
  if (!load.active) return fail(f->type, f->seq, EP_ST_NO_LOAD, 0);
  load.active = 0;
  if (load.received != load.size) return fail(f->type, f->seq, EP_ST_LOAD_SIZE, (int32_t)load.received);
  uint8_t digest[32];
  ep_sha256_final(&load.ctx, digest);
  if (memcmp(digest, load.sha, sizeof digest) != 0) return fail(f->type, f->seq, EP_ST_HASH, 0);
#if EP_HAVE_RUNTIME && EP_MODEL_MAX > 0
  int st = ep_model_init(&model, model_buf, load.size, arena, sizeof arena);
  if (st != EP_RT_OK) return fail(f->type, f->seq, EP_ST_RUNTIME, st);
  model_ready = 1;
  memcpy(model_sha, digest, sizeof model_sha);
  ep_load_reply_t r;
  uint64_t macs = ep_model_macs(&model);
  r.arena_used = ep_model_arena_used(&model);
  r.macs = macs > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)macs;
  r.num_inputs = (uint8_t)ep_model_num_inputs(&model);
  r.num_outputs = (uint8_t)ep_model_num_outputs(&model);
  r.reserved = 0;
  memcpy(reply, &r, sizeof r);
  ok(f->type, f->seq, sizeof r);
#else
  fail(f->type, f->seq, EP_ST_NO_RUNTIME, 0);
#endif
}

#if EP_HAVE_RUNTIME
static uint32_t counts[EP_MAX_RUNS];

static int need_model(const ep_frame_t *f) {
  if (model_ready) return 1;
  fail(f->type, f->seq, EP_ST_NO_MODEL, 0);
  return 0;
}

static void do_set_sequence(const ep_frame_t *f) {
  ep_set_sequence_t s;
  if (f->len < sizeof s) return fail(f->type, f->seq, EP_ST_BAD_LENGTH, (int32_t)sizeof s);
  memcpy(&s, f->payload, sizeof s);
  if (f->len != sizeof s + 2u * s.npairs) return fail(f->type, f->seq, EP_ST_BAD_LENGTH, (int32_t)(sizeof s + 2u * s.npairs));
  if (s.npairs > EP_MAX_PAIRS || s.steps == 0) return fail(f->type, f->seq, EP_ST_BAD_ARG, 0);
  if (!need_model(f)) return;
  uint8_t pairs[EP_MAX_PAIRS][2];
  memcpy(pairs, f->payload + sizeof s, 2u * s.npairs);
  int st = ep_model_set_sequence(&model, s.steps, s.stream_input, (const uint8_t(*)[2])pairs, s.npairs);
  if (st != EP_RT_OK) return fail(f->type, f->seq, EP_ST_RUNTIME, st);
  ok(f->type, f->seq, 0);
}

static void do_set_input(const ep_frame_t *f) {
  ep_set_input_t s;
  if (f->len < sizeof s) return fail(f->type, f->seq, EP_ST_BAD_LENGTH, (int32_t)sizeof s);
  memcpy(&s, f->payload, sizeof s);
  if (!need_model(f)) return;
  int st = ep_model_set_input(&model, s.index, s.offset, f->payload + sizeof s, f->len - (uint32_t)sizeof s);
  if (st != EP_RT_OK) return fail(f->type, f->seq, EP_ST_RUNTIME, st);
  ok(f->type, f->seq, 0);
}

static void sort_u32(uint32_t *a, uint32_t n) {
  for (uint32_t i = 1; i < n; i++) {
    uint32_t v = a[i], j = i;
    for (; j > 0 && a[j - 1] > v; j--) a[j] = a[j - 1];
    a[j] = v;
  }
}

static void do_infer(const ep_frame_t *f) {
  ep_infer_t q;
  if (f->len != sizeof q) return fail(f->type, f->seq, EP_ST_BAD_LENGTH, (int32_t)sizeof q);
  memcpy(&q, f->payload, sizeof q);
  if (q.n == 0 || q.n > EP_MAX_RUNS) return fail(f->type, f->seq, EP_ST_BAD_ARG, (int32_t)EP_MAX_RUNS);
  if (!need_model(f)) return;
  const ep_port_info_t *pi = ep_port_info();
  for (uint32_t i = 0; i < q.n; i++) {
    ep_port_watchdog_feed();
    ep_port_mark(1);
    uint32_t t0 = ep_port_ticks();
    int st = ep_model_invoke(&model);
    uint32_t t1 = ep_port_ticks();
    ep_port_mark(0);
    if (st != EP_RT_OK) return fail(f->type, f->seq, EP_ST_RUNTIME, st);
    counts[i] = (uint32_t)(((uint64_t)(t1 - t0) * pi->counter_scale_milli + 500u) / 1000u);
  }
  ep_infer_reply_t r;
  r.n = q.n;
  r.counter = pi->counter;
  r.num_outputs = (uint8_t)ep_model_num_outputs(&model);
  uint8_t *p = reply + sizeof r;
  memcpy(p, counts, 4u * q.n); /* run order, before sorting for the statistics */
  sort_u32(counts, q.n);
  r.min = counts[0];
  r.median = counts[(q.n - 1u) / 2u];
  memcpy(reply, &r, sizeof r);
  ok(f->type, f->seq, (uint16_t)(sizeof r + 4u * q.n));
}

static void do_get_output(const ep_frame_t *f) {
  ep_get_output_t q;
  if (f->len != sizeof q) return fail(f->type, f->seq, EP_ST_BAD_LENGTH, (int32_t)sizeof q);
  memcpy(&q, f->payload, sizeof q);
  if (!need_model(f)) return;
  ep_tensor_info_t t;
  int st = ep_model_io(&model, 1, q.index, &t);
  if (st != EP_RT_OK) return fail(f->type, f->seq, EP_ST_RUNTIME, st);
  if (q.offset > t.bytes) return fail(f->type, f->seq, EP_ST_BAD_ARG, (int32_t)t.bytes);
  uint32_t room = EP_MAX_PAYLOAD - (uint32_t)sizeof(ep_output_reply_t);
  uint32_t n = t.bytes - q.offset;
  if (n > q.max_len) n = q.max_len;
  if (n > room) n = room;
  ep_output_reply_t r = {t.bytes, q.offset};
  memcpy(reply, &r, sizeof r);
  memcpy(reply + sizeof r, (const uint8_t *)t.data + q.offset, n);
  ok(f->type, f->seq, (uint16_t)(sizeof r + n));
}

static void do_io_info(const ep_frame_t *f) {
  ep_io_info_req_t q;
  if (f->len != sizeof q) return fail(f->type, f->seq, EP_ST_BAD_LENGTH, (int32_t)sizeof q);
  memcpy(&q, f->payload, sizeof q);
  if (!need_model(f)) return;
  ep_tensor_info_t t;
  int st = ep_model_io(&model, q.is_output ? 1 : 0, q.index, &t);
  if (st != EP_RT_OK) return fail(f->type, f->seq, EP_ST_RUNTIME, st);
  ep_io_info_t r;
  memset(&r, 0, sizeof r);
  r.bytes = t.bytes;
  r.scale = t.scale;
  r.zero_point = t.zero_point;
  r.dtype = t.dtype;
  r.rank = t.rank;
  for (uint32_t i = 0; i < t.rank && i < EP_MAX_DIMS; i++) r.dims[i] = t.dims[i];
  memcpy(reply, &r, sizeof r);
  ok(f->type, f->seq, sizeof r);
}
#endif

static void do_power(const ep_frame_t *f) {
  if (f->len != 0) return fail(f->type, f->seq, EP_ST_BAD_LENGTH, 0);
  ep_power_t p;
  ep_port_power(&p);
  memcpy(reply, &p, sizeof p);
  ok(f->type, f->seq, sizeof p);
}

static void do_set_baud(const ep_frame_t *f) {
  ep_set_baud_t q;
  if (f->len != sizeof q) return fail(f->type, f->seq, EP_ST_BAD_LENGTH, (int32_t)sizeof q);
  memcpy(&q, f->payload, sizeof q);
  if (!ep_port_baud_ok(q.rate)) return fail(f->type, f->seq, EP_ST_BAD_ARG, (int32_t)baud.rate);
  ok(f->type, f->seq, 0); /* at the old rate */
  if (q.rate == baud.rate) return;
  ep_port_set_baud(q.rate);
  baud.previous = baud.rate; /* confirmed: this request arrived at it */
  baud.rate = q.rate;
  baud.pending = 1;
  baud.since_ms = ep_port_ms();
}

void ep_link_poll(void) {
  if (!baud.pending || (uint32_t)(ep_port_ms() - baud.since_ms) < EP_BAUD_GRACE_MS) return;
  /* Nothing valid arrived at the new rate: the host (or its USB bridge) cannot use it. */
  baud.pending = 0;
  baud.rate = baud.previous;
  ep_port_set_baud(baud.rate);
}

static void do_reset(const ep_frame_t *f) {
  if (f->len != 0) return fail(f->type, f->seq, EP_ST_BAD_LENGTH, 0);
  ok(f->type, f->seq, 0);
  ep_port_reset();
}

void ep_link_handle(uint8_t *enc, size_t n) {
  ep_frame_t f;
  int st = ep_frame_parse(enc, n, &f);
  if (st != EP_ST_OK) return fail(f.type, f.seq, st, st == EP_ST_VERSION ? (int32_t)EP_PROTOCOL_VERSION : 0);
  baud.pending = 0; /* a valid frame at the new rate confirms it */
  if (f.type == EP_MSG_HELLO || f.type == EP_MSG_RESET) {
    seq_valid = 1;
  } else if (seq_valid && (uint16_t)(f.seq - seq_expected) >= 0x8000u) {
    /* Older than or equal to the last accepted request: a duplicate or reordered frame. Gaps are fine
     * (the host skips a seq whenever a request was lost to a link error). */
    return fail(f.type, f.seq, EP_ST_SEQUENCE, seq_expected);
  }
  seq_valid = 1;
  seq_expected = (uint16_t)(f.seq + 1u);
  switch (f.type) {
    case EP_MSG_HELLO:
      if (f.len != 0) return fail(f.type, f.seq, EP_ST_BAD_LENGTH, 0);
      return do_hello(f.seq);
    case EP_MSG_LOAD_BEGIN:
      return do_load_begin(&f);
    case EP_MSG_LOAD_CHUNK:
      return do_load_chunk(&f);
    case EP_MSG_LOAD_END:
      return do_load_end(&f);
#if EP_HAVE_RUNTIME
    case EP_MSG_SET_SEQUENCE:
      return do_set_sequence(&f);
    case EP_MSG_SET_INPUT:
      return do_set_input(&f);
    case EP_MSG_INFER:
      return do_infer(&f);
    case EP_MSG_GET_OUTPUT:
      return do_get_output(&f);
    case EP_MSG_IO_INFO:
      return do_io_info(&f);
#else
    case EP_MSG_SET_SEQUENCE:
    case EP_MSG_SET_INPUT:
    case EP_MSG_INFER:
    case EP_MSG_GET_OUTPUT:
    case EP_MSG_IO_INFO:
      return fail(f.type, f.seq, EP_ST_NO_RUNTIME, 0);
#endif
    case EP_MSG_POWER:
      return do_power(&f);
    case EP_MSG_RESET:
      return do_reset(&f);
    case EP_MSG_SET_BAUD:
      return do_set_baud(&f);
#ifdef EP_TEST_HOOKS
    case EP_MSG_TEST_HANG:
      for (;;) { /* stop feeding the watchdog: only a watchdog reset gets us out */
      }
#endif
    default:
      return fail(f.type, f.seq, EP_ST_UNKNOWN_TYPE, 0);
  }
}
