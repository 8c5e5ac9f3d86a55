/*
 * Port for the ST Nucleo boards of platformio.ini (framework = cmsis: the CMSIS device header, startup file
 * and SystemInit come from PlatformIO's ststm32 platform; everything else is register level here).
 *
 *   EP_STM32L4R5  NUCLEO-L4R5ZI  Cortex-M4F  120 MHz (MSI 4 MHz -> PLL)   LPUART1 PG7/PG8 (ST-LINK VCP)
 *   EP_STM32G0B1  NUCLEO-G0B1RE  Cortex-M0+   64 MHz (HSI16 -> PLL)      USART2  PA2/PA3 (ST-LINK VCP)
 *   EP_STM32H743  NUCLEO-H743ZI  Cortex-M7    64 MHz (HSI, reset clock)  USART3  PD8/PD9 (ST-LINK VCP)
 *
 * Counter: DWT CYCCNT (M4/M7); the M0+ has none, so SysTick runs at the core clock and its wraps are
 * counted (one tick = one cycle either way, counter "dwt"). Watchdog: IWDG, ~4 s. Measurement pin: Arduino
 * D7 (PF13 on the Nucleo-144 Zio header, PA8 on Nucleo-64), high for the duration of each inference.
 * Reset reason from the RCC reset flags, which are then cleared.
 *
 * NOT VERIFIED ON HARDWARE (this machine cannot fetch the ststm32 platform): register names follow the
 * CMSIS device headers as published by ST; clock trees, pins and alternate functions follow the reference
 * manuals (RM0432, RM0444, RM0433) and Nucleo user manuals (UM2179, UM2324). See docs in the report.
 */
#include <stdint.h>

#include "ep_port.h"

#if defined(EP_STM32L4R5)
#include "stm32l4xx.h"
#define EP_BOARD_NAME "nucleo-l4r5zi"
#define EP_CORE_ID EP_CORE_M4
#define VCP LPUART1
#define VCP_IRQn LPUART1_IRQn
#define VCP_IRQHandler LPUART1_IRQHandler
#define MARK_PORT GPIOF
#define MARK_PIN 13u
#elif defined(EP_STM32G0B1)
#include "stm32g0xx.h"
#define EP_BOARD_NAME "nucleo-g0b1re"
#define EP_CORE_ID EP_CORE_M0PLUS
#define VCP USART2
#define VCP_IRQn USART2_LPUART2_IRQn
#define VCP_IRQHandler USART2_LPUART2_IRQHandler
#define MARK_PORT GPIOA
#define MARK_PIN 8u
#define EP_NO_DWT 1
#elif defined(EP_STM32H743)
#include "stm32h7xx.h"
#define EP_BOARD_NAME "nucleo-h743zi"
#define EP_CORE_ID EP_CORE_M7
#define VCP USART3
#define VCP_IRQn USART3_IRQn
#define VCP_IRQHandler USART3_IRQHandler
#define MARK_PORT GPIOF
#define MARK_PIN 13u
#else
#error "stm32.c: define one of EP_STM32L4R5 / EP_STM32G0B1 / EP_STM32H743 (platformio.ini build_flags)"
#endif

#define VCP_BAUD 115200u

/* USART v2 register bits (same positions on L4, G0 and H7; the FIFO variants rename but keep them). */
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TXE (1u << 7)
#define CR1_UE (1u << 0)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define ICR_ORECF (1u << 3)
#define ICR_ALL 0x00121B5Fu /* every clear flag of the v2 USART/LPUART */

#if defined(IWDG1)
#define EP_IWDG IWDG1
#else
#define EP_IWDG IWDG
#endif

/* Tick count extended past 24 bits on the M0+ (SysTick wraps); unused where DWT exists. */
volatile uint32_t ep_systick_wraps;

static ep_port_info_t info = {EP_BOARD_NAME, EP_CORE_ID, EP_COUNTER_DWT, 0u, 1000u};
static uint8_t reset_reason;

/* Received bytes, filled by the UART interrupt: the main loop may be busy (SHA-256, a reply) for longer than
 * one byte time at 115200 baud, and the interrupt is also what ends the idle WFI. */
static volatile uint8_t rx_ring[512];
static volatile uint32_t rx_head, rx_tail;
static volatile uint32_t rx_overruns;

const ep_port_info_t *ep_port_info(void) { return &info; }

/* ---- clocks ------------------------------------------------------------------------------------- */

#if !defined(EP_STM32H743)
/* Bounded: a PLL that never locks leaves the board on its reset clock (HELLO reports the clock) instead of hung. */
static int wait_set(volatile uint32_t *reg, uint32_t mask) {
  for (uint32_t i = 0; i < 1000000u; i++)
    if ((*reg & mask) == mask) return 1;
  return 0;
}
#endif

static void clock_init(void) {
#if defined(EP_STM32L4R5)
  /* 120 MHz needs range 1 boost (PWR_CR5.R1MODE = 0) and 5 flash wait states (RM0432 3.3.3), and the
   * switch above 80 MHz goes through AHB/2 for 1 us (RM0432 6.2.7). */
  RCC->APB1ENR1 |= RCC_APB1ENR1_PWREN;
  (void)RCC->APB1ENR1;
  PWR->CR5 &= ~PWR_CR5_R1MODE;
  FLASH->ACR = (FLASH->ACR & ~FLASH_ACR_LATENCY) | FLASH_ACR_LATENCY_5WS | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN |
               FLASH_ACR_DCEN;
  if ((FLASH->ACR & FLASH_ACR_LATENCY) != FLASH_ACR_LATENCY_5WS) return;
  /* PLL from MSI 4 MHz: /M 1, xN 60 -> VCO 240 MHz, /R 2 -> 120 MHz. */
  RCC->PLLCFGR = RCC_PLLCFGR_PLLSRC_MSI | (0u << RCC_PLLCFGR_PLLM_Pos) | (60u << RCC_PLLCFGR_PLLN_Pos) |
                 (0u << RCC_PLLCFGR_PLLR_Pos) | RCC_PLLCFGR_PLLREN;
  RCC->CR |= RCC_CR_PLLON;
  if (!wait_set(&RCC->CR, RCC_CR_PLLRDY)) return;
  RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_HPRE) | RCC_CFGR_HPRE_DIV2;
  RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_SW) | RCC_CFGR_SW_PLL;
  if (!wait_set(&RCC->CFGR, RCC_CFGR_SWS_PLL)) return;
  for (volatile uint32_t i = 0; i < 200u; i++) { /* >= 1 us at 60 MHz */
  }
  RCC->CFGR &= ~RCC_CFGR_HPRE;
#elif defined(EP_STM32G0B1)
  /* 64 MHz: range 1 (reset default), 2 flash wait states (RM0444 3.3.4). PLL from HSI16: /M 1, xN 8 ->
   * VCO 128 MHz, /R 2 -> 64 MHz. */
  FLASH->ACR = (FLASH->ACR & ~FLASH_ACR_LATENCY) | FLASH_ACR_LATENCY_1 | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN;
  if ((FLASH->ACR & FLASH_ACR_LATENCY) != FLASH_ACR_LATENCY_1) return;
  RCC->PLLCFGR = RCC_PLLCFGR_PLLSRC_HSI | (0u << RCC_PLLCFGR_PLLM_Pos) | (8u << RCC_PLLCFGR_PLLN_Pos) |
                 (1u << RCC_PLLCFGR_PLLR_Pos) | RCC_PLLCFGR_PLLREN;
  RCC->CR |= RCC_CR_PLLON;
  if (!wait_set(&RCC->CR, RCC_CR_PLLRDY)) return;
  RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_SW) | (2u << RCC_CFGR_SW_Pos);
  for (uint32_t i = 0; i < 1000000u && ((RCC->CFGR & RCC_CFGR_SWS) != (2u << RCC_CFGR_SWS_Pos)); i++) {
  }
#elif defined(EP_STM32H743)
  /* Stay on the 64 MHz HSI of reset: 400 MHz needs the VOS1 + PLL1 + bus-divider sequence of RM0433 8.5,
   * not written until it can be tried on a board. Caches on: M7 timings without them are not representative. */
  SCB_EnableICache();
  SCB_EnableDCache();
#endif
  SystemCoreClockUpdate();
}

/* ---- UART (ST-LINK virtual COM port) ------------------------------------------------------------ */

static void gpio_af(GPIO_TypeDef *port, uint32_t pin, uint32_t af) {
  port->MODER = (port->MODER & ~(3u << (2u * pin))) | (2u << (2u * pin));
  port->OSPEEDR |= 2u << (2u * pin);
  volatile uint32_t *afr = &port->AFR[pin >> 3];
  *afr = (*afr & ~(0xFu << (4u * (pin & 7u)))) | (af << (4u * (pin & 7u)));
}

static void gpio_out(GPIO_TypeDef *port, uint32_t pin) {
  port->BSRR = 1u << (pin + 16u);
  port->MODER = (port->MODER & ~(3u << (2u * pin))) | (1u << (2u * pin));
  port->OSPEEDR |= 3u << (2u * pin);
}

/* BRR for `rate` from the UART's kernel clock (PCLK = SYSCLK = SystemCoreClock on all three, see uart_init);
 * 0 when the rate is outside what the divider can reach: LPUART needs 3 x rate <= f_ck <= 4096 x rate and
 * BRR >= 0x300 (RM0432 52.4.7); USART with oversampling 16 needs BRR >= 16 (RM0444/RM0433). The rate error
 * of the rounded divider stays under 2 % for every accepted rate (a UART tolerates ~3 %). */
static uint32_t brr_for(uint32_t rate) {
  if (rate == 0u) return 0u;
#if defined(EP_STM32L4R5)
  if ((uint64_t)rate * 3u > SystemCoreClock) return 0u;
  uint32_t brr = (uint32_t)(((uint64_t)SystemCoreClock * 256u + rate / 2u) / rate);
  if (brr < 0x300u || brr > 0xFFFFFu) return 0u;
#else
  uint32_t brr = (SystemCoreClock + rate / 2u) / rate;
  if (brr < 16u || brr > 0xFFFFu) return 0u;
#endif
  /* The divider rounds: refuse a rate it cannot hit within 2 %. */
#if defined(EP_STM32L4R5)
  uint64_t actual_x100 = (uint64_t)SystemCoreClock * 256u * 100u / brr;
#else
  uint64_t actual_x100 = (uint64_t)SystemCoreClock * 100u / brr;
#endif
  uint64_t want_x100 = (uint64_t)rate * 100u;
  uint64_t diff = actual_x100 > want_x100 ? actual_x100 - want_x100 : want_x100 - actual_x100;
  return diff * 50u <= want_x100 ? brr : 0u;
}

static void uart_init(void) {
  uint32_t brr;
#if defined(EP_STM32L4R5)
  /* PG2..PG15 are powered from VDDIO2, which stays isolated until PWR_CR2.IOSV is set. */
  PWR->CR2 |= PWR_CR2_IOSV;
  RCC->AHB2ENR |= RCC_AHB2ENR_GPIOGEN | RCC_AHB2ENR_GPIOFEN;
  RCC->APB1ENR2 |= RCC_APB1ENR2_LPUART1EN;
  (void)RCC->APB1ENR2;
  gpio_af(GPIOG, 7u, 8u);
  gpio_af(GPIOG, 8u, 8u);
  /* LPUART: BRR = 256 x f_PCLK1 / baud (RM0432 52.4.7); PCLK1 = SYSCLK here. */
  brr = (uint32_t)(((uint64_t)SystemCoreClock * 256u + VCP_BAUD / 2u) / VCP_BAUD);
#elif defined(EP_STM32G0B1)
  RCC->IOPENR |= RCC_IOPENR_GPIOAEN;
  RCC->APBENR1 |= RCC_APBENR1_USART2EN;
  (void)RCC->APBENR1;
  gpio_af(GPIOA, 2u, 1u);
  gpio_af(GPIOA, 3u, 1u);
  brr = (SystemCoreClock + VCP_BAUD / 2u) / VCP_BAUD; /* oversampling 16 */
#elif defined(EP_STM32H743)
  RCC->AHB4ENR |= RCC_AHB4ENR_GPIODEN | RCC_AHB4ENR_GPIOFEN;
  RCC->APB1LENR |= RCC_APB1LENR_USART3EN;
  (void)RCC->APB1LENR;
  gpio_af(GPIOD, 8u, 7u);
  gpio_af(GPIOD, 9u, 7u);
  /* USART3 kernel clock = rcc_pclk1 = HSI 64 MHz with the reset dividers. */
  brr = (SystemCoreClock + VCP_BAUD / 2u) / VCP_BAUD;
#endif
  VCP->CR1 = 0;
  VCP->BRR = brr;
  VCP->ICR = ICR_ALL;
  VCP->CR1 = CR1_TE | CR1_RE | CR1_RXNEIE | CR1_UE;
  NVIC_SetPriority(VCP_IRQn, 0);
  NVIC_EnableIRQ(VCP_IRQn);
}

void VCP_IRQHandler(void) {
  uint32_t isr = VCP->ISR;
  if (isr & ISR_ORE) {
    VCP->ICR = ICR_ORECF;
    rx_overruns++;
  }
  while (VCP->ISR & ISR_RXNE) {
    uint8_t b = (uint8_t)VCP->RDR;
    uint32_t next = (rx_head + 1u) % sizeof rx_ring;
    if (next != rx_tail) { /* a full ring drops the byte; the frame's CRC then fails and the host retries */
      rx_ring[rx_head] = b;
      rx_head = next;
    } else {
      rx_overruns++;
    }
  }
}

int ep_port_getc(void) {
  if (rx_tail == rx_head) return -1;
  uint8_t b = rx_ring[rx_tail];
  rx_tail = (rx_tail + 1u) % sizeof rx_ring;
  return b;
}

void ep_port_write(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; i++) {
    while (!(VCP->ISR & ISR_TXE)) {
    }
    VCP->TDR = data[i];
  }
}

/* ---- counter -------------------------------------------------------------------------------------- */

#if defined(EP_NO_DWT)
void SysTick_Handler(void) { ep_systick_wraps++; }

static void counter_init(void) {
  SysTick->LOAD = 0x00FFFFFFu;
  SysTick->VAL = 0;
  SysTick->CTRL = SysTick_CTRL_CLKSOURCE_Msk | SysTick_CTRL_TICKINT_Msk | SysTick_CTRL_ENABLE_Msk;
}

static uint64_t ticks64(void) {
  uint32_t w1, v, w2;
  do {
    w1 = ep_systick_wraps;
    v = SysTick->VAL;
    w2 = ep_systick_wraps;
  } while (w1 != w2); /* a wrap between the reads: its interrupt ran, read again */
  return ((uint64_t)w1 << 24) + (0x00FFFFFFu - v);
}

uint32_t ep_port_ticks(void) { return (uint32_t)ticks64(); }

/* SysTick keeps counting in sleep (it runs on the free-running FCLK), so it also serves as the clock. */
uint32_t ep_port_ms(void) { return (uint32_t)(ticks64() / (SystemCoreClock / 1000u)); }

static void wake_timer(int on) { (void)on; /* the counter's own wraps (every 2^24 cycles) wake the idle loop */ }
#else
/* No counter interrupt here, so SysTick (10 Hz) only ends the idle WFI often enough to feed the watchdog, and
 * counts tenths of a second for ep_port_ms (DWT CYCCNT stops while the core sleeps). Its interrupt is off
 * during an inference (ep_port_mark), so the clock runs slow then: fine for a grace period. */
static volatile uint32_t systick_tenths;

void SysTick_Handler(void) { systick_tenths++; }

uint32_t ep_port_ms(void) {
  uint32_t t1, v, t2;
  do {
    t1 = systick_tenths;
    v = SysTick->VAL;
    t2 = systick_tenths;
  } while (t1 != t2);
  return t1 * 100u + (SysTick->LOAD - v) / (SystemCoreClock / 1000u);
}

static void wake_timer(int on) {
  if (on)
    SysTick->CTRL |= SysTick_CTRL_TICKINT_Msk;
  else
    SysTick->CTRL &= ~SysTick_CTRL_TICKINT_Msk;
}

static void counter_init(void) {
  CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk;
#if defined(EP_STM32H743)
  *(volatile uint32_t *)0xE0001FB0u = 0xC5ACCE55u; /* DWT lock access register: the M7's DWT is locked */
#endif
  DWT->CYCCNT = 0;
  DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
  SysTick->LOAD = SystemCoreClock / 10u - 1u;
  SysTick->VAL = 0;
  SysTick->CTRL = SysTick_CTRL_CLKSOURCE_Msk | SysTick_CTRL_TICKINT_Msk | SysTick_CTRL_ENABLE_Msk;
}

uint32_t ep_port_ticks(void) { return DWT->CYCCNT; }
#endif

/* ---- watchdog, reset reason, pin, power ---------------------------------------------------------- */

static void watchdog_init(void) {
  /* LSI ~32 kHz / 64 = 500 Hz; 2000 counts = ~4 s (LSI tolerance makes it 3-5 s). */
  EP_IWDG->KR = 0xCCCCu;
  EP_IWDG->KR = 0x5555u;
  EP_IWDG->PR = 4u;
  EP_IWDG->RLR = 2000u;
  for (uint32_t i = 0; i < 1000000u && EP_IWDG->SR != 0u; i++) {
  }
  EP_IWDG->KR = 0xAAAAu;
}

void ep_port_watchdog_feed(void) { EP_IWDG->KR = 0xAAAAu; }

static void reset_reason_init(void) {
#if defined(EP_STM32H743)
  uint32_t f = RCC->RSR;
  reset_reason = (f & RCC_RSR_IWDG1RSTF)  ? EP_RESET_WATCHDOG
                 : (f & RCC_RSR_SFTRSTF)  ? EP_RESET_SOFTWARE
                 : (f & (RCC_RSR_PORRSTF | RCC_RSR_BORRSTF)) ? EP_RESET_POWER_ON
                                          : EP_RESET_OTHER;
  RCC->RSR |= RCC_RSR_RMVF;
#else
  uint32_t f = RCC->CSR;
#if defined(EP_STM32G0B1)
  const uint32_t power = RCC_CSR_PWRRSTF;
#else
  const uint32_t power = RCC_CSR_BORRSTF;
#endif
  /* A watchdog or software reset also drives NRST, so PINRSTF is set too: test the specific flags first. */
  reset_reason = (f & RCC_CSR_IWDGRSTF)  ? EP_RESET_WATCHDOG
                 : (f & RCC_CSR_SFTRSTF) ? EP_RESET_SOFTWARE
                 : (f & power)           ? EP_RESET_POWER_ON
                                         : EP_RESET_OTHER;
  RCC->CSR |= RCC_CSR_RMVF;
#endif
}

uint8_t ep_port_reset_reason(void) { return reset_reason; }

/* The pin frames the measured window; the wake-up tick is kept out of it so DWT counts only the model. */
void ep_port_mark(int on) {
  wake_timer(!on);
  MARK_PORT->BSRR = on ? (1u << MARK_PIN) : (1u << (MARK_PIN + 16u));
}

void ep_port_reset(void) {
  /* Let the reply's last byte leave the shift register before the reset cuts it off. */
  for (uint32_t i = 0; i < 1000000u && !(VCP->ISR & (1u << 6)); i++) { /* TC */
  }
  NVIC_SystemReset();
}

int ep_port_baud_ok(uint32_t rate) { return brr_for(rate) != 0u; }

void ep_port_set_baud(uint32_t rate) {
  uint32_t brr = brr_for(rate);
  if (brr == 0u) return;
  /* The reply's last byte must leave the shift register at the old rate (TC), then BRR is written with the
   * UART disabled (it is read-only while UE is set). */
  for (uint32_t i = 0; i < 1000000u && !(VCP->ISR & (1u << 6)); i++) { /* TC */
  }
  VCP->CR1 &= ~CR1_UE;
  VCP->BRR = brr;
  VCP->ICR = ICR_ALL;
  VCP->CR1 |= CR1_UE;
}

int ep_port_power(ep_power_t *out) {
  *out = (ep_power_t){0};
  out->sensor = EP_POWER_ABSENT; /* an INA219/INA226 on I2C is not wired by this port */
  return 0;
}

/* ---- init and idle -------------------------------------------------------------------------------- */

void ep_port_init(void) {
  reset_reason_init();
  watchdog_init(); /* first: a hang in the clock setup below still ends in a reset */
  clock_init();
  info.clock_hz = SystemCoreClock;
#if defined(EP_STM32L4R5)
  RCC->AHB2ENR |= RCC_AHB2ENR_GPIOFEN;
#elif defined(EP_STM32G0B1)
  RCC->IOPENR |= RCC_IOPENR_GPIOAEN;
#elif defined(EP_STM32H743)
  RCC->AHB4ENR |= RCC_AHB4ENR_GPIOFEN;
#endif
  gpio_out(MARK_PORT, MARK_PIN);
  uart_init();
  counter_init();
  __enable_irq();
}

void ep_port_idle(void) {
  ep_port_watchdog_feed();
  /* Masked WFI: a byte that arrives between the check and the WFI still ends the WFI. */
  __disable_irq();
  if (rx_tail == rx_head) {
    __DSB();
    __WFI();
  }
  __enable_irq();
}
