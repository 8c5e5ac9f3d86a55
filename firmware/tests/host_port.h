#ifndef HOST_PORT_H
#define HOST_PORT_H
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "ep_port.h"

extern jmp_buf host_reset_jmp;
extern uint8_t host_tx[1 << 16];
extern size_t host_tx_len;
extern unsigned host_resets;
extern uint32_t host_baud; /* the rate ep_port_set_baud last set */
extern uint32_t host_ms;   /* what ep_port_ms returns: the harness moves time */
#endif
