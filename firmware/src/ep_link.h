/* Request dispatcher: turns one received frame into exactly one reply (or a reset). */
#ifndef EP_LINK_H
#define EP_LINK_H

#include <stddef.h>
#include <stdint.h>

void ep_link_init(void);
/* enc: one COBS-encoded frame without its delimiter (decoded in place). */
void ep_link_handle(uint8_t *enc, size_t n);
/* A frame overflowed the receive buffer and was dropped. */
void ep_link_overflow(void);
/* Called by the main loop whenever it is idle: ends an unconfirmed SET_BAUD after its grace period. */
void ep_link_poll(void);

#endif
