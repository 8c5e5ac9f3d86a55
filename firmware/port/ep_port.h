/*
 * The few functions a board must provide (one file per board family under firmware/port/).
 * Everything else in firmware/src is board-independent and also compiles for the host.
 */
#ifndef EP_PORT_H
#define EP_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "ep_protocol.h"

typedef struct {
  const char *board;      /* short board name reported by HELLO */
  uint8_t core;           /* EP_CORE_* */
  uint8_t counter;        /* EP_COUNTER_* */
  uint32_t clock_hz;      /* core clock, or the emulated SysTick clock under QEMU */
  uint32_t counter_scale_milli; /* 1000 x counts (cycles / instructions) per ep_port_ticks() tick */
} ep_port_info_t;

void ep_port_init(void);
const ep_port_info_t *ep_port_info(void);
/* Next received byte, or -1 if none is waiting (never blocks). */
int ep_port_getc(void);
/* Blocking write of n bytes; returns when the last byte has been handed to the UART. */
void ep_port_write(const uint8_t *data, size_t n);
/* Nothing to do: feed the watchdog and sleep until an interrupt (UART RX or the tick wrap). */
void ep_port_idle(void);
void ep_port_watchdog_feed(void);
/* Free-running counter; differences are taken modulo 2^32 and scaled by counter_scale_milli / 1000. */
uint32_t ep_port_ticks(void);
/* Drive the measurement pin high (1) / low (0) around each inference, for external power meters. */
void ep_port_mark(int on);
uint8_t ep_port_reset_reason(void); /* EP_RESET_*, latched at boot */
void ep_port_reset(void);           /* does not return */
/* Fills *out; returns 0 with out->sensor = EP_POWER_ABSENT when the board has no meter. */
int ep_port_power(ep_power_t *out);
/* SET_BAUD, in two steps so that a refusal and the reply both go out at the old rate:
 * ep_port_baud_ok says whether the link can run at `rate` (a link without a rate -- QEMU's UART models,
 * Ethernet -- accepts any and ignores it); ep_port_set_baud switches once the bytes written so far have left
 * the wire (rate: one ep_port_baud_ok accepted, or EP_BAUD_DEFAULT / the rate before, to go back). */
int ep_port_baud_ok(uint32_t rate);
void ep_port_set_baud(uint32_t rate);
/* Milliseconds since boot, counting while idle too (the SET_BAUD grace period); wraps modulo 2^32. Not for
 * measurement: DWT CYCCNT stops in sleep on some cores, so it comes from a clock that does not. */
uint32_t ep_port_ms(void);

#endif
