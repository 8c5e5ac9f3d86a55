/*
 * Board support for running the deploy example in QEMU (mps2-an385/an386/an500/an505, microbit): vector table,
 * reset, a console over Arm semihosting, and the stack high-water mark. Not part of the library: on your board
 * your startup code and console take its place.
 *
 * The stack below the reset stack pointer is painted before main; after main returns, the deepest unpainted
 * word gives the stack high-water mark, printed as "stack <bytes>", then QEMU is told to exit.
 */
#include <stdint.h>
#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);

#define PAINT 0xA5A5A5A5u
#define PAINT_BYTES (32u * 1024u) /* deepest stack this board support can measure */

static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

/* The example's console: NUL-terminated text to QEMU's stdout (semihosting SYS_WRITE0). */
void board_puts(const char *s) { (void)semihost(0x04, s); }

static void put_uint(uint32_t v) {
  char buf[12];
  int i = 11;
  buf[i] = 0;
  do {
    buf[--i] = (char)('0' + v % 10u);
    v /= 10u;
  } while (v);
  board_puts(&buf[i]);
}

/* Paints from below this function's own frame down to the measurable limit (volatile: the words written are
 * outside any C object, which the compiler would otherwise drop). */
static void __attribute__((noinline)) paint_stack(void) {
  uint32_t sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  volatile uint32_t *lo = (volatile uint32_t *)((uintptr_t)&_estack - PAINT_BYTES);
  for (volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)(sp - 64u); p >= lo; p--) *p = PAINT;
}

static uint32_t stack_high_water(void) {
  const volatile uint32_t *p = (const volatile uint32_t *)((uintptr_t)&_estack - PAINT_BYTES);
  while (p < &_estack && *p == PAINT) p++;
  return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}

void Reset_Handler(void) __attribute__((noreturn));
void Reset_Handler(void) {
  memcpy(&_sdata, &_sidata, (size_t)((uintptr_t)&_edata - (uintptr_t)&_sdata)); /* .data from flash */
  memset(&_sbss, 0, (size_t)((uintptr_t)&_ebss - (uintptr_t)&_sbss));
#if defined(__ARM_FP) /* the FPU on (CPACR CP10/CP11) before any floating-point instruction */
  *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
  __asm__ volatile("dsb\n\tisb");
#endif
  paint_stack();
  const int status = main();
  board_puts("status ");
  put_uint((uint32_t)status);
  board_puts("\nstack ");
  put_uint(stack_high_water());
  board_puts("\n");
  (void)semihost(0x18, (const void *)0x20026); /* SYS_EXIT, ADP_Stopped_ApplicationExit */
  for (;;) {
  }
}

static void Fault_Handler(void) {
  board_puts("fault\n");
  (void)semihost(0x18, (const void *)0x20023); /* SYS_EXIT, ADP_Stopped_RunTimeErrorUnknown */
  for (;;) {
  }
}

typedef void (*vector_t)(void);
__attribute__((section(".isr_vector"), used)) const vector_t board_vectors[16] = {
    (vector_t)(uintptr_t)&_estack, Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0, Fault_Handler, Fault_Handler,
};
