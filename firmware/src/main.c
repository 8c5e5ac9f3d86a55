/* Device main loop: bytes from the UART -> frame receiver -> dispatcher; sleep when idle. */
#include <stdint.h>

#include "ep_frame.h"
#include "ep_link.h"
#include "ep_port.h"

static ep_rx_t rx;

int main(void) {
  ep_port_init();
  ep_link_init();
  ep_rx_reset(&rx);
  for (;;) {
    int c = ep_port_getc();
    if (c < 0) {
      ep_link_poll();
      ep_port_idle();
      continue;
    }
    int r = ep_rx_push(&rx, (uint8_t)c);
    if (r == EP_RX_FRAME) {
      ep_link_handle(rx.buf, rx.n);
      ep_rx_reset(&rx);
    } else if (r == EP_RX_OVERFLOW) {
      ep_link_overflow();
    }
  }
}
