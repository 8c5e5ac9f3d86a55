/*
 * Host test of SET_BAUD in the dispatcher (ep_link.c with tests/host_port.c): the reply leaves before the
 * switch, an unconfirmed rate is abandoned after EP_BAUD_GRACE_MS, a valid frame at the new rate confirms
 * it, a rate the port refuses is answered EP_ST_BAD_ARG. Prints "set_baud: N checks, F failures".
 */
#include <stdio.h>
#include <string.h>

#include "ep_frame.h"
#include "ep_link.h"
#include "ep_protocol.h"
#include "host_port.h"

static int checks, failures;
#define CHECK(cond, what)                                            \
  do {                                                               \
    checks++;                                                        \
    if (!(cond)) {                                                   \
      failures++;                                                    \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what); \
    }                                                                \
  } while (0)

static uint16_t seq;

/* Sends one request; returns the reply's type (its payload in *reply), or -1 if none came. */
static int request(uint8_t type, const void *payload, uint16_t len, uint8_t *reply, uint16_t *reply_len) {
  uint8_t enc[EP_MAX_ENCODED];
  size_t n = ep_frame_build(type, ++seq, (const uint8_t *)payload, len, enc, sizeof enc);
  host_tx_len = 0;
  ep_link_handle(enc, n - 1); /* without the delimiter */
  if (host_tx_len < 2) return -1;
  ep_frame_t f;
  if (ep_frame_parse(host_tx, host_tx_len - 1, &f) != EP_ST_OK) return -1;
  if (reply) memcpy(reply, f.payload, f.len);
  if (reply_len) *reply_len = f.len;
  return f.type;
}

static int set_baud(uint32_t rate, ep_error_t *err) {
  ep_set_baud_t q = {rate};
  uint8_t out[EP_MAX_PAYLOAD];
  uint16_t n = 0;
  int t = request(EP_MSG_SET_BAUD, &q, sizeof q, out, &n);
  if (err && n >= sizeof *err) memcpy(err, out, sizeof *err);
  return t;
}

int main(void) {
  ep_link_init();
  host_ms = 5000u;
  CHECK(request(EP_MSG_HELLO, NULL, 0, NULL, NULL) == (EP_MSG_HELLO | EP_REPLY_FLAG), "hello");
  CHECK(host_baud == EP_BAUD_DEFAULT, "boots at the default rate");

  /* Unconfirmed: back to the old rate after the grace period, not before. */
  CHECK(set_baud(921600u, NULL) == (EP_MSG_SET_BAUD | EP_REPLY_FLAG), "921600 accepted");
  CHECK(host_baud == 921600u, "switched after the reply");
  host_ms += EP_BAUD_GRACE_MS - 1u;
  ep_link_poll();
  CHECK(host_baud == 921600u, "still at the new rate within the grace period");
  host_ms += 2u;
  ep_link_poll();
  CHECK(host_baud == EP_BAUD_DEFAULT, "unconfirmed rate abandoned");

  /* Confirmed by a valid frame at the new rate: kept. */
  CHECK(set_baud(2000000u, NULL) == (EP_MSG_SET_BAUD | EP_REPLY_FLAG), "2000000 accepted");
  host_ms += 10u;
  CHECK(request(EP_MSG_HELLO, NULL, 0, NULL, NULL) == (EP_MSG_HELLO | EP_REPLY_FLAG), "confirming hello");
  host_ms += 10u * EP_BAUD_GRACE_MS;
  ep_link_poll();
  CHECK(host_baud == 2000000u, "confirmed rate kept");

  /* Two switches before a confirmation: the unconfirmed chain falls back to the last confirmed rate. */
  CHECK(set_baud(460800u, NULL) == (EP_MSG_SET_BAUD | EP_REPLY_FLAG), "460800 accepted");
  CHECK(set_baud(230400u, NULL) == (EP_MSG_SET_BAUD | EP_REPLY_FLAG), "230400 accepted");
  host_ms += EP_BAUD_GRACE_MS + 1u;
  ep_link_poll();
  CHECK(host_baud == 460800u, "the second SET_BAUD (a valid frame at 460800) confirmed the first");

  /* Refused: a rate the port cannot run; the reply names the rate in use. */
  ep_error_t e = {0, 0, 0, 0};
  CHECK(set_baud(3000000u, &e) == (EP_MSG_ERROR | EP_REPLY_FLAG), "3000000 refused");
  CHECK(e.status == EP_ST_BAD_ARG && e.detail == 460800, "BAD_ARG with the current rate");
  CHECK(host_baud == 460800u, "a refusal keeps the rate");
  uint8_t two[2] = {1, 2};
  CHECK(request(EP_MSG_SET_BAUD, two, sizeof two, (uint8_t *)&e, NULL) == (EP_MSG_ERROR | EP_REPLY_FLAG) &&
            e.status == EP_ST_BAD_LENGTH,
        "wrong payload length");

  printf("set_baud: %d checks, %d failures\n", checks, failures);
  return failures != 0;
}
