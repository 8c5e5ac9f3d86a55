/*
 * Port for the BBC micro:bit (nRF51822, Cortex-M0) as emulated by QEMU's "microbit" machine.
 * UART0 (EasyDMA-less nRF51 UART), SysTick as the counter. QEMU models no nRF51 watchdog (WDT),
 * so this port has none: a hung emulated M0 is recovered by the host restarting QEMU.
 */
#include <stdint.h>

#include "ep_cortexm.h"
#include "ep_port.h"

#define UART_BASE 0x40002000u
#define UART_STARTRX EP_REG(UART_BASE + 0x000u)
#define UART_STARTTX EP_REG(UART_BASE + 0x008u)
#define UART_RXDRDY EP_REG(UART_BASE + 0x108u)
#define UART_TXDRDY EP_REG(UART_BASE + 0x11Cu)
#define UART_INTENSET EP_REG(UART_BASE + 0x304u)
#define UART_INTENCLR EP_REG(UART_BASE + 0x308u)
#define UART_ENABLE EP_REG(UART_BASE + 0x500u)
#define UART_PSELTXD EP_REG(UART_BASE + 0x50Cu)
#define UART_PSELRXD EP_REG(UART_BASE + 0x514u)
#define UART_RXD EP_REG(UART_BASE + 0x518u)
#define UART_TXD EP_REG(UART_BASE + 0x51Cu)
#define UART_BAUDRATE EP_REG(UART_BASE + 0x524u)
#define UART_INT_RXDRDY (1u << 2)

/* QEMU clocks the nRF51 SysTick at the 16 MHz HCLK: 62.5 instructions per tick under -icount shift=0
 * (checked: 2,000,000 instructions read 32,000 ticks), hence the scale in thousandths. */
#define EP_SYSTICK_HZ 16000000u
#define EP_MILLI_INSTR_PER_TICK (1000000000000u / EP_SYSTICK_HZ)

static const ep_port_info_t info = {"microbit", EP_CORE_M0, EP_COUNTER_ICOUNT, EP_SYSTICK_HZ, (uint32_t)EP_MILLI_INSTR_PER_TICK};
static uint8_t reset_reason;

const ep_port_info_t *ep_port_info(void) { return &info; }

void ep_port_init(void) {
  uint32_t magic = ep_reset_magic;
  reset_reason = magic == EP_MAGIC_SOFT ? EP_RESET_SOFTWARE : magic == EP_MAGIC_BOOT ? EP_RESET_OTHER : EP_RESET_POWER_ON;
  ep_reset_magic = EP_MAGIC_BOOT;
  UART_PSELTXD = 24u; /* micro:bit USB VCP pins */
  UART_PSELRXD = 25u;
  UART_BAUDRATE = 0x01D7E000u; /* 115200 */
  UART_ENABLE = 4u;
  UART_STARTTX = 1u;
  UART_STARTRX = 1u;
  NVIC_ISER(0) = 1u << 2; /* UART0 */
  ep_systick_start();
  ep_irq_enable();
}

/* RXDRDY stays set until read, so the handler only masks it; ep_port_idle re-arms it before sleeping. */
void ep_port_irq(void) { UART_INTENCLR = UART_INT_RXDRDY; }

void ep_port_nmi(void) {}

int ep_port_getc(void) {
  if (!UART_RXDRDY) return -1;
  UART_RXDRDY = 0;
  return (int)(UART_RXD & 0xFFu);
}

void ep_port_write(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; i++) {
    UART_TXDRDY = 0;
    UART_TXD = data[i];
    while (!UART_TXDRDY) {
    }
  }
}

void ep_port_watchdog_feed(void) {}

void ep_port_idle(void) {
  ep_irq_disable();
  if (!UART_RXDRDY) {
    UART_INTENSET = UART_INT_RXDRDY;
    ep_wfi();
  }
  ep_irq_enable();
}

uint32_t ep_port_ticks(void) { return ep_systick_ticks(); }

void ep_port_mark(int on) { (void)on; }

uint8_t ep_port_reset_reason(void) { return reset_reason; }

void ep_port_reset(void) {
  ep_reset_magic = EP_MAGIC_SOFT;
  ep_sysreset();
}

/* BAUDRATE register values of the nRF51 reference manual (UART chapter); QEMU's model ignores the register,
 * a real nRF51 runs at them. 2 Mbaud and above: not an nRF51 UART rate. */
static uint32_t baud_reg(uint32_t rate) {
  switch (rate) {
    case 115200u: return 0x01D7E000u;
    case 230400u: return 0x03AFB000u;
    case 460800u: return 0x075F7000u;
    case 921600u: return 0x0EBEDFA4u;
    case 1000000u: return 0x10000000u;
    default: return 0u;
  }
}

int ep_port_baud_ok(uint32_t rate) { return baud_reg(rate) != 0u; }

/* ep_port_write waits for TXDRDY of every byte, so the reply has left when this runs. */
void ep_port_set_baud(uint32_t rate) {
  uint32_t reg = baud_reg(rate);
  if (reg) UART_BAUDRATE = reg;
}

uint32_t ep_port_ms(void) { return ep_systick_ms(EP_SYSTICK_HZ); }

int ep_port_power(ep_power_t *out) {
  *out = (ep_power_t){0};
  out->sensor = EP_POWER_ABSENT;
  return 0;
}
