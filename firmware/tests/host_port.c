/*
 * ep_port_* for host builds of the frame parser and dispatcher (golden-frame test and fuzzer).
 * Replies are captured in a buffer; ep_port_reset longjmps back to the harness, as a reset would.
 */
#include "host_port.h"

#include <string.h>

jmp_buf host_reset_jmp;
uint8_t host_tx[1 << 16];
size_t host_tx_len;
unsigned host_resets;
uint32_t host_baud = EP_BAUD_DEFAULT;
uint32_t host_ms;

static const ep_port_info_t info = {"host", EP_CORE_M4, EP_COUNTER_DWT, 1000000u, 1000u};
static uint32_t fake_ticks;

const ep_port_info_t *ep_port_info(void) { return &info; }
void ep_port_init(void) {}
int ep_port_getc(void) { return -1; }
void ep_port_write(const uint8_t *data, size_t n) {
  if (host_tx_len + n > sizeof host_tx) host_tx_len = 0; /* the harness drains it after every frame */
  memcpy(host_tx + host_tx_len, data, n);
  host_tx_len += n;
}
void ep_port_idle(void) {}
void ep_port_watchdog_feed(void) {}
uint32_t ep_port_ticks(void) { return fake_ticks += 7u; }
void ep_port_mark(int on) { (void)on; }
uint8_t ep_port_reset_reason(void) { return EP_RESET_POWER_ON; }
void ep_port_reset(void) {
  host_resets++;
  longjmp(host_reset_jmp, 1);
}
int ep_port_baud_ok(uint32_t rate) { return rate >= 9600u && rate <= 2000000u; }
void ep_port_set_baud(uint32_t rate) { host_baud = rate; }
uint32_t ep_port_ms(void) { return host_ms; }
int ep_port_power(ep_power_t *out) {
  memset(out, 0, sizeof *out);
  return 0;
}
