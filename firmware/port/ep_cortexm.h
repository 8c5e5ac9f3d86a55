/* Architectural (core) registers shared by every Cortex-M port: SysTick, SCB, NVIC. */
#ifndef EP_CORTEXM_H
#define EP_CORTEXM_H

#include <stdint.h>

#define EP_REG(addr) (*(volatile uint32_t *)(addr))

#define SYST_CSR EP_REG(0xE000E010u)
#define SYST_RVR EP_REG(0xE000E014u)
#define SYST_CVR EP_REG(0xE000E018u)
#define SCB_AIRCR EP_REG(0xE000ED0Cu)
#define SCB_CPACR EP_REG(0xE000ED88u)
#define NVIC_ISER(i) EP_REG(0xE000E100u + 4u * (i))
#define NVIC_ICPR(i) EP_REG(0xE000E280u + 4u * (i))

static inline void ep_irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void ep_irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline void ep_wfi(void) { __asm volatile("dsb\n\twfi" ::: "memory"); }

static inline void ep_sysreset(void) {
  __asm volatile("dsb" ::: "memory");
  SCB_AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ */
  __asm volatile("dsb" ::: "memory");
  for (;;) {
  }
}

/* 24-bit SysTick extended in software: the handler counts wraps. */
extern volatile uint32_t ep_systick_wraps;

static inline void ep_systick_start(void) {
  SYST_RVR = 0x00FFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 0x7u; /* enable, interrupt, processor clock */
  /* The first reload from 0 raises no wrap interrupt; wait for it so every later wrap is counted. */
  while (SYST_CVR == 0u) {
  }
}

static inline uint64_t ep_systick_ticks64(void) {
  uint32_t w1, v, w2;
  do {
    w1 = ep_systick_wraps;
    v = SYST_CVR;
    w2 = ep_systick_wraps;
  } while (w1 != w2);
  return ((uint64_t)w1 << 24) + (0x00FFFFFFu - v);
}

static inline uint32_t ep_systick_ticks(void) { return (uint32_t)ep_systick_ticks64(); }

/* Milliseconds since ep_systick_start at `hz` SysTick ticks per second: from the 64-bit tick count, so the
 * result wraps cleanly modulo 2^32 ms (ep_systick_ticks itself wraps at 2^32 ticks, not at a ms boundary). */
static inline uint32_t ep_systick_ms(uint32_t hz) { return (uint32_t)(ep_systick_ticks64() / (hz / 1000u)); }

/* Reset cause kept across a reset in RAM the startup code does not clear. */
#define EP_MAGIC_SOFT 0x52535431u /* "RST1" */
#define EP_MAGIC_WDOG 0x57444F47u /* "WDOG" */
#define EP_MAGIC_BOOT 0x424F4F54u /* "BOOT" */
extern volatile uint32_t ep_reset_magic;

#endif
