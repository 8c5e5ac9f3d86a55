/*
 * Port for Arm MPS2/MPS2+ FPGA images as emulated by QEMU: AN385 (M3), AN386 (M4), AN500 (M7), AN505 (M33,
 * secure world). CMSDK UART0, CMSDK watchdog, SysTick as the counter (QEMU does not emulate DWT CYCCNT).
 * The link runs over UART0 or, much faster in QEMU, over the board's LAN9118 (ep_lan9118.h): the device
 * answers on whichever of the two delivered the last request byte.
 */
#include <stdint.h>

#include "ep_cortexm.h"
#include "ep_lan9118.h"
#include "ep_port.h"

#if defined(EP_BOARD_AN505)
#define UART0_BASE 0x50200000u    /* secure alias */
#define WATCHDOG_BASE 0x50081000u /* SSE-200 secure watchdog */
#define ETH_BASE 0x52000000u      /* secure alias of the LAN9118 at 0x42000000 */
#define EP_BOARD_NAME "mps2-an505"
#define EP_CORE EP_CORE_M33
#define EP_SYSTICK_HZ 20000000u
#elif defined(EP_BOARD_AN500)
#define UART0_BASE 0x40004000u
#define WATCHDOG_BASE 0x40008000u
#define ETH_BASE 0xA0000000u /* AN500 moves the LAN9118 (QEMU's "info mtree" agrees) */
#define EP_BOARD_NAME "mps2-an500"
#define EP_CORE EP_CORE_M7
#define EP_SYSTICK_HZ 25000000u
#elif defined(EP_BOARD_AN386)
#define UART0_BASE 0x40004000u
#define WATCHDOG_BASE 0x40008000u
#define ETH_BASE 0x40200000u
#define EP_BOARD_NAME "mps2-an386"
#define EP_CORE EP_CORE_M4
#define EP_SYSTICK_HZ 25000000u
#elif defined(EP_BOARD_AN385)
#define UART0_BASE 0x40004000u
#define WATCHDOG_BASE 0x40008000u
#define ETH_BASE 0x40200000u
#define EP_BOARD_NAME "mps2-an385"
#define EP_CORE EP_CORE_M3
#define EP_SYSTICK_HZ 25000000u
#else
#error "mps2.c: define one of EP_BOARD_AN385/AN386/AN500/AN505"
#endif

/* Under -icount shift=0 one instruction = 1 ns of virtual time, so one SysTick tick = 1e9/Hz instructions
 * (checked: 2,000,000 instructions read 50,000 ticks at 25 MHz and 40,000 at 20 MHz). */
#define EP_MILLI_INSTR_PER_TICK (1000000000000u / EP_SYSTICK_HZ)

#define UART_DATA EP_REG(UART0_BASE + 0x00u)
#define UART_STATE EP_REG(UART0_BASE + 0x04u)
#define UART_CTRL EP_REG(UART0_BASE + 0x08u)
#define UART_INTCLR EP_REG(UART0_BASE + 0x0Cu)
#define UART_BAUDDIV EP_REG(UART0_BASE + 0x10u)
#define UART_STATE_TXFULL 0x1u
#define UART_STATE_RXFULL 0x2u

#define WDOG_LOAD EP_REG(WATCHDOG_BASE + 0x000u)
#define WDOG_CTRL EP_REG(WATCHDOG_BASE + 0x008u)
#define WDOG_INTCLR EP_REG(WATCHDOG_BASE + 0x00Cu)
#define WDOG_LOCK EP_REG(WATCHDOG_BASE + 0xC00u)
/* 1.5 s of virtual time: longer than the idle loop's longest sleep (one SysTick wrap, 0.67 s at 25 MHz,
 * 0.84 s at 20 MHz) and short enough that QEMU, spinning at ~10^8 instructions/s, gets there in seconds
 * (under -icount shift=0 a second of virtual time is 10^9 instructions). */
#define WDOG_TIMEOUT (3u * (EP_SYSTICK_HZ / 2u))

static const ep_port_info_t info = {EP_BOARD_NAME, EP_CORE, EP_COUNTER_ICOUNT, EP_SYSTICK_HZ, (uint32_t)EP_MILLI_INSTR_PER_TICK};
static uint8_t reset_reason;
static uint8_t reply_on_eth; /* the last request byte came over Ethernet */

const ep_port_info_t *ep_port_info(void) { return &info; }

void ep_port_init(void) {
  uint32_t magic = ep_reset_magic;
  reset_reason = magic == EP_MAGIC_SOFT   ? EP_RESET_SOFTWARE
                 : magic == EP_MAGIC_WDOG ? EP_RESET_WATCHDOG
                 : magic == EP_MAGIC_BOOT ? EP_RESET_OTHER
                                          : EP_RESET_POWER_ON;
  ep_reset_magic = EP_MAGIC_BOOT;
  UART_BAUDDIV = 16u;
  UART_CTRL = 0x1u | 0x2u | 0x8u; /* TX, RX, RX interrupt (wakes WFI) */
  /* Every external line is routed to ep_port_irq; only the UART and the LAN9118 raise any, so enabling all is harmless. */
  /* The LAN9118's IRQ line is active-low out of reset: configure it before any line is enabled. */
  ep_eth_init(ETH_BASE);
  for (uint32_t i = 0; i < 3u; i++) NVIC_ISER(i) = 0xFFFFFFFFu;
  ep_systick_start();
  WDOG_LOCK = 0x1ACCE551u;
  WDOG_LOAD = WDOG_TIMEOUT;
  WDOG_CTRL = 0x3u; /* interrupt (NMI) then reset */
  ep_irq_enable();
}

void ep_port_irq(void) {
  UART_INTCLR = 0xFu;
  ep_eth_irq();
}

void ep_port_nmi(void) {
  /* First watchdog expiry: record why and reset now. The watchdog's own reset (second expiry, RESEN) stays
   * armed as the backstop, but QEMU 7.2 was not seen to deliver it within 60 s of emulated spinning. */
  ep_reset_magic = EP_MAGIC_WDOG;
  ep_sysreset();
}

int ep_port_getc(void) {
  int c = ep_eth_getc();
  if (c >= 0) {
    reply_on_eth = 1;
    return c;
  }
  if (UART_STATE & UART_STATE_RXFULL) {
    reply_on_eth = 0;
    return (int)(UART_DATA & 0xFFu);
  }
  return -1;
}

void ep_port_write(const uint8_t *data, size_t n) {
  if (reply_on_eth) {
    ep_eth_write(data, n);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    while (UART_STATE & UART_STATE_TXFULL) {
    }
    UART_DATA = data[i];
  }
}

void ep_port_watchdog_feed(void) { WDOG_INTCLR = 1u; }

void ep_port_idle(void) {
  ep_port_watchdog_feed();
  /* Masked WFI: a byte that arrives between the check and the WFI still wakes us. */
  ep_irq_disable();
  if (!(UART_STATE & UART_STATE_RXFULL) && !ep_eth_pending()) {
    ep_wfi();
  }
  ep_irq_enable();
}

uint32_t ep_port_ticks(void) { return ep_systick_ticks(); }

void ep_port_mark(int on) { (void)on; /* no pin worth driving in emulation */ }

uint8_t ep_port_reset_reason(void) { return reset_reason; }

void ep_port_reset(void) {
  ep_reset_magic = EP_MAGIC_SOFT;
  ep_sysreset();
}

/* QEMU's CMSDK UART passes bytes at whatever rate the host's end runs (BAUDDIV is not modelled) and the
 * LAN9118 has no rate: every rate is accepted, and nothing needs to change. */
int ep_port_baud_ok(uint32_t rate) { return rate > 0u; }

void ep_port_set_baud(uint32_t rate) { (void)rate; }

uint32_t ep_port_ms(void) { return ep_systick_ms(EP_SYSTICK_HZ); }

int ep_port_power(ep_power_t *out) {
  *out = (ep_power_t){0};
  out->sensor = EP_POWER_ABSENT;
  return 0;
}
