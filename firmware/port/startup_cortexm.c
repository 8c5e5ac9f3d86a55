/*
 * Vector table and reset handler for every Cortex-M target (ARMv6-M .. ARMv8-M mainline).
 * Ports supply ep_port_irq (all external interrupts), SysTick and NMI behaviour via ep_cortexm.h.
 */
#include <stdint.h>
#include <string.h>

#include "ep_cortexm.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
void ep_port_irq(void);
void ep_port_nmi(void);

volatile uint32_t ep_systick_wraps;
volatile uint32_t ep_reset_magic __attribute__((section(".noinit")));

void Reset_Handler(void) __attribute__((noreturn));
void Reset_Handler(void) {
  uint32_t *src = &_sidata;
  for (uint32_t *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t *dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
  SCB_CPACR |= (0xFu << 20); /* CP10/CP11 full access, before any FP instruction */
  __asm volatile("dsb\n\tisb");
#endif
  main();
  for (;;) {
  }
}

static void fault_handler(void) {
  /* A fault is a firmware bug: reset so the host sees a fresh HELLO instead of a silent board. */
  ep_reset_magic = 0;
  ep_sysreset();
}

void SysTick_Handler(void) { ep_systick_wraps++; }
void NMI_Handler(void) { ep_port_nmi(); }
void IRQ_Handler(void) { ep_port_irq(); }

#ifndef EP_NUM_IRQS
#define EP_NUM_IRQS 96
#endif

typedef void (*vector_t)(void);
__attribute__((section(".isr_vector"), used)) const vector_t ep_vectors[16 + EP_NUM_IRQS] = {
    (vector_t)(uintptr_t)&_estack,
    Reset_Handler,
    NMI_Handler,
    fault_handler, /* HardFault */
    fault_handler, /* MemManage */
    fault_handler, /* BusFault */
    fault_handler, /* UsageFault */
    fault_handler, /* SecureFault (v8-M) */
    0,
    0,
    0,
    fault_handler, /* SVCall */
    fault_handler, /* DebugMon */
    0,
    fault_handler, /* PendSV */
    SysTick_Handler,
    [16 ... 16 + EP_NUM_IRQS - 1] = IRQ_Handler,
};
