/*
 * Port for the ST boards of platformio.ini. Two ways to build it:
 *  - framework = cmsis (the Nucleo envs L4R5/G0B1/H743): the CMSIS device header, startup file and SystemInit come
 *    from PlatformIO's ststm32 platform; everything else is register level here;
 *  - bare (L475, F411): stm32_regs.h (register facts from RM0351 / RM0383), startup_cortexm.c and ld/mem_<soc>.ld, so
 *    the image builds offline with the project-local platform and the SAME image runs on the board and on QEMU's
 *    emulation of its SoC (b-l475e-iot01a; netduinoplus2, an STM32F405 with the same F4 USART, RCC and GPIO maps).
 *
 *   EP_STM32L4R5  NUCLEO-L4R5ZI    Cortex-M4F  120 MHz (MSI 4 MHz -> PLL)   LPUART1 PG7/PG8 (ST-LINK VCP)
 *   EP_STM32G0B1  NUCLEO-G0B1RE    Cortex-M0+   64 MHz (HSI16 -> PLL)      USART2  PA2/PA3 (ST-LINK VCP)
 *   EP_STM32H743  NUCLEO-H743ZI    Cortex-M7    64 MHz (HSI, reset clock)  USART3  PD8/PD9 (ST-LINK VCP)
 *   EP_STM32L475  B-L475E-IOT01A   Cortex-M4F   80 MHz (MSI 4 MHz -> PLL)   USART1  PB6/PB7 (ST-LINK VCP)
 *   EP_STM32F411  NUCLEO-F411RE    Cortex-M4F  100 MHz (HSI 16 MHz -> PLL)  USART2  PA2/PA3 (ST-LINK VCP, v1 USART)
 *
 * Counter: DWT CYCCNT (M4/M7) when it counts. QEMU models no DWT (CYCCNT reads 0): the port then counts SysTick at
 * the core clock instead and HELLO says so (counter "icount": under QEMU -icount shift=0 a tick is a fixed number of
 * instructions, measured at boot against a loop of known length). The M0+ has no DWT: SysTick at the core clock,
 * counter "dwt" semantics (one tick = one cycle). Watchdog: IWDG, ~4 s (not modelled by QEMU: a hung emulator is
 * restarted by the host). Measurement pin: Arduino D7 (PF13 on the Nucleo-144 Zio header, PA8 on Nucleo-64, PA4 on
 * the B-L475E-IOT01A), high for the duration of each inference. Reset reason from the RCC reset flags, then cleared.
 *
 * Executed so far only on QEMU's emulated SoCs (L475 on b-l475e-iot01a, F411 image on netduinoplus2); the CMSIS
 * builds compile against a register stub in CI. Register names follow the CMSIS device headers; clock trees, pins
 * and alternate functions follow the reference manuals (RM0432, RM0444, RM0433, RM0351, RM0383) and the board user
 * manuals (UM2179, UM2324, UM2153, UM1724).
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
#elif defined(EP_STM32L475)
#include "stm32_regs.h"
#define EP_BOARD_NAME "b-l475e-iot01a"
#define EP_CORE_ID EP_CORE_M4
#define VCP USART1
#define VCP_IRQn USART1_IRQn
#define MARK_PORT GPIOA
#define MARK_PIN 4u
#define EP_STM32_BARE 1
#elif defined(EP_STM32F411)
#include "stm32_regs.h"
#define EP_BOARD_NAME "nucleo-f411re"
#define EP_CORE_ID EP_CORE_M4
#define VCP USART2
#define VCP_IRQn USART2_IRQn
#define MARK_PORT GPIOA
#define MARK_PIN 8u
#define EP_STM32_BARE 1
#define EP_USART_V1 1
#else
#error "stm32.c: define one of EP_STM32L4R5 / EP_STM32G0B1 / EP_STM32H743 / EP_STM32L475 / EP_STM32F411 (platformio.ini)"
#endif

#define VCP_BAUD 115200u

/* USART v2 register bits (same positions on L4, G0 and H7; the FIFO variants rename but keep them). */
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TC (1u << 6)
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

#if defined(EP_STM32_BARE)
/* No CMSIS system file in a bare build: the port keeps the core clock itself, read back from the RCC. */
uint32_t SystemCoreClock = 16000000u;
#else
/* SysTick periods since boot (startup_cortexm.c defines it in a bare build). */
volatile uint32_t ep_systick_wraps;
void SysTick_Handler(void) { ep_systick_wraps++; }
#endif

static ep_port_info_t info = {EP_BOARD_NAME, EP_CORE_ID, EP_COUNTER_DWT, 0u, 1000u};
static uint8_t reset_reason;
/* 1: SysTick free-running at the core clock is the counter (24 bits, wraps counted by its interrupt); 0: DWT
 * CYCCNT is, and SysTick only wakes the idle loop ten times a second. */
static uint8_t systick_counts;
/* SysTick's clock, Hz (ep_port_ms). */
static uint32_t systick_hz;

/* Received bytes, filled by the UART interrupt: the main loop may be busy (SHA-256, a reply) for longer than
 * one byte time at 115200 baud, and the interrupt is also what ends the idle WFI. */
static volatile uint8_t rx_ring[512];
static volatile uint32_t rx_head, rx_tail;
static volatile uint32_t rx_overruns;

const ep_port_info_t *ep_port_info(void) { return &info; }

/* ---- clocks ------------------------------------------------------------------------------------- */

#if !defined(EP_STM32H743)
/* Bounded: a PLL that never locks leaves the board on its reset clock (HELLO reports the clock) instead of hung.
 * 200,000 polls are >= 10 ms at 80 MHz, far over a PLL's lock time (< 0.1 ms), and short on an emulated SoC with
 * no RCC model (QEMU's netduinoplus2), where PLLRDY never sets. */
static int wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t value) {
  for (uint32_t i = 0; i < 200000u; i++)
    if ((*reg & mask) == value) return 1;
  return 0;
}
#endif

#if defined(EP_STM32L475) || defined(EP_STM32F411)
/* Whether an RCC answers: its reset oscillator (MSI on the L4, HSI on the F4) is on and ready out of reset (CR bits 0
 * and 1, RM0351 6.4.1 / RM0383 6.3.1). QEMU 7.2 models no F4 RCC (reads 0): the PLL would never lock, so its setup is
 * skipped instead of polled for. */
static int rcc_present(void) { return (RCC->CR & 3u) == 3u; }

/* Flash wait states before a faster clock (RM0351 3.3.3, RM0383 3.4.1): written, then read back. An ACR that reads
 * 0 after this write is no flash interface at all (QEMU leaves it unimplemented; its flash has no access time),
 * so the clock may still go up; silicon that kept another latency stops the switch. */
static int flash_latency(uint32_t ws) {
  FLASH->ACR = (FLASH->ACR & ~FLASH_ACR_LATENCY) | ws | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
  uint32_t acr = FLASH->ACR;
  return (acr & FLASH_ACR_LATENCY) == ws || acr == 0u;
}

static const uint16_t ahb_shift = 0x9876u; /* HPRE 12..15 divide by 64..512 (2^6..2^9); 8..11 by 2..16 */
static uint32_t ahb_div_shift(uint32_t hpre) {
  if (hpre < 8u) return 0u;
  return hpre < 12u ? hpre - 7u : (ahb_shift >> (4u * (hpre - 12u))) & 0xFu;
}

/* SystemCoreClock from what the RCC reports (SWS, PLL factors, AHB prescaler). */
static void SystemCoreClockUpdate(void) {
  uint32_t cfgr = RCC->CFGR, sws = (cfgr & RCC_CFGR_SWS) >> 2, hz;
#if defined(EP_STM32L475)
  static const uint32_t msi_khz[12] = {100, 200, 400, 800, 1000, 2000, 4000, 8000, 16000, 24000, 32000, 48000};
  /* MSIRGSEL (CR bit 3) picks CR.MSIRANGE, else CSR.MSISRANGE (RM0351 6.4.1, 6.4.29) */
  uint32_t range = (RCC->CR & (1u << 3)) ? (RCC->CR >> 4) & 0xFu : (RCC->CSR >> 8) & 0xFu;
  uint32_t msi = range < 12u ? msi_khz[range] * 1000u : 4000000u;
  uint32_t pll = RCC->PLLCFGR, src = (pll & 3u) == 2u ? 16000000u : msi;
  uint32_t vco = src / (((pll >> RCC_PLLCFGR_PLLM_Pos) & 7u) + 1u) * ((pll >> RCC_PLLCFGR_PLLN_Pos) & 0x7Fu);
  hz = sws == 0u ? msi : sws == 1u ? 16000000u : sws == 3u ? vco / (2u * (((pll >> RCC_PLLCFGR_PLLR_Pos) & 3u) + 1u))
                                                         : 8000000u;
#else
  uint32_t pll = RCC->PLLCFGR, m = (pll >> RCC_PLLCFGR_PLLM_Pos) & 0x3Fu;
  uint32_t src = (pll & RCC_PLLCFGR_PLLSRC) ? 8000000u : 16000000u; /* HSE: the ST-LINK's 8 MHz MCO on a Nucleo */
  uint32_t vco = m ? src / m * ((pll >> RCC_PLLCFGR_PLLN_Pos) & 0x1FFu) : 0u;
  hz = sws == 0u ? 16000000u : sws == 1u ? 8000000u : vco / (2u * (((pll >> RCC_PLLCFGR_PLLP_Pos) & 3u) + 1u));
#endif
  SystemCoreClock = hz >> ahb_div_shift((cfgr & RCC_CFGR_HPRE) >> 4);
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
  if (!wait_set(&RCC->CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) return;
  RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_HPRE) | RCC_CFGR_HPRE_DIV2;
  RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_SW) | RCC_CFGR_SW_PLL;
  if (!wait_set(&RCC->CFGR, RCC_CFGR_SWS, RCC_CFGR_SWS_PLL)) return;
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
  if (!wait_set(&RCC->CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) return;
  RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_SW) | (2u << RCC_CFGR_SW_Pos);
  (void)wait_set(&RCC->CFGR, RCC_CFGR_SWS, 2u << RCC_CFGR_SWS_Pos);
#elif defined(EP_STM32H743)
  /* Stay on the 64 MHz HSI of reset: 400 MHz needs the VOS1 + PLL1 + bus-divider sequence of RM0433 8.5,
   * not written until it can be tried on a board. Caches on: M7 timings without them are not representative. */
  SCB_EnableICache();
  SCB_EnableDCache();
#elif defined(EP_STM32L475)
  /* 80 MHz in range 1 (the reset voltage scaling) needs 4 wait states (RM0351 3.3.3, table 9). PLL from the reset
   * MSI 4 MHz (RM0351 6.2.5): /M 1, xN 40 -> VCO 160 MHz (64..344), /R 2 -> 80 MHz; AHB and APB stay at /1. */
  if (rcc_present() && flash_latency(FLASH_ACR_LATENCY_4WS)) {
    RCC->PLLCFGR = RCC_PLLCFGR_PLLSRC_MSI | (0u << RCC_PLLCFGR_PLLM_Pos) | (40u << RCC_PLLCFGR_PLLN_Pos) |
                   (0u << RCC_PLLCFGR_PLLR_Pos) | RCC_PLLCFGR_PLLREN;
    RCC->CR |= RCC_CR_PLLON;
    if (wait_set(&RCC->CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
      RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_SW) | RCC_CFGR_SW_PLL;
      (void)wait_set(&RCC->CFGR, RCC_CFGR_SWS, RCC_CFGR_SWS_PLL);
    }
  }
#elif defined(EP_STM32F411)
  /* 100 MHz needs voltage scale 1 (set while the PLL is off, RM0383 5.1.3) and 3 wait states at 2.7-3.6 V (RM0383
   * 3.4.1, table 5). PLL from HSI 16 MHz (RM0383 6.3.2): /M 8 -> 2 MHz, xN 100 -> VCO 200 MHz, /P 2 -> 100 MHz,
   * /Q 5 -> 40 MHz (USB unused, kept under its 48 MHz); APB1 at most 50 MHz -> /2. */
  RCC->APB1ENR |= RCC_APB1ENR_PWREN;
  (void)RCC->APB1ENR;
  PWR->CR |= PWR_CR_VOS;
  if (rcc_present() && flash_latency(FLASH_ACR_LATENCY_3WS)) {
    /* bits 31:28 are reserved, kept at their reset value (RM0383 6.3.2) */
    RCC->PLLCFGR = (RCC->PLLCFGR & 0xF0000000u) | (8u << RCC_PLLCFGR_PLLM_Pos) | (100u << RCC_PLLCFGR_PLLN_Pos) |
                   (0u << RCC_PLLCFGR_PLLP_Pos) | (5u << RCC_PLLCFGR_PLLQ_Pos);
    RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_PPRE1) | RCC_CFGR_PPRE1_DIV2;
    RCC->CR |= RCC_CR_PLLON;
    if (wait_set(&RCC->CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
      RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_SW) | RCC_CFGR_SW_PLL;
      (void)wait_set(&RCC->CFGR, RCC_CFGR_SWS, RCC_CFGR_SWS_PLL);
    }
  }
#endif
  SystemCoreClockUpdate();
}

/* The UART's kernel clock: SYSCLK on every board but the F411, whose USART2 sits on APB1 (HCLK/2 there). */
static uint32_t uart_clock_hz(void) {
#if defined(EP_STM32F411)
  uint32_t ppre1 = (RCC->CFGR & RCC_CFGR_PPRE1) >> 10;
  return ppre1 < 4u ? SystemCoreClock : SystemCoreClock >> (ppre1 - 3u);
#else
  return SystemCoreClock;
#endif
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

/* BRR for `rate` from the UART's kernel clock (uart_clock_hz); 0 when the rate is outside what the divider can
 * reach: LPUART needs 3 x rate <= f_ck <= 4096 x rate and BRR >= 0x300 (RM0432 52.4.7); USART with oversampling 16
 * needs BRR >= 16 (RM0444/RM0433/RM0351; on the v1 USART of RM0383 BRR = mantissa.fraction/16 is the same number).
 * The rate error of the rounded divider stays under 2 % for every accepted rate (a UART tolerates ~3 %). */
static uint32_t brr_for(uint32_t rate) {
  if (rate == 0u) return 0u;
  uint32_t f = uart_clock_hz();
#if defined(EP_STM32L4R5)
  if ((uint64_t)rate * 3u > f) return 0u;
  uint32_t brr = (uint32_t)(((uint64_t)f * 256u + rate / 2u) / rate);
  if (brr < 0x300u || brr > 0xFFFFFu) return 0u;
  uint64_t actual_x100 = (uint64_t)f * 256u * 100u / brr;
#else
  uint32_t brr = (f + rate / 2u) / rate;
  if (brr < 16u || brr > 0xFFFFu) return 0u;
  uint64_t actual_x100 = (uint64_t)f * 100u / brr;
#endif
  /* The divider rounds: refuse a rate it cannot hit within 2 %. */
  uint64_t want_x100 = (uint64_t)rate * 100u;
  uint64_t diff = actual_x100 > want_x100 ? actual_x100 - want_x100 : want_x100 - actual_x100;
  return diff * 50u <= want_x100 ? brr : 0u;
}

#if defined(EP_USART_V1)
/* v1 USART (F4): one status register; reading SR then DR clears an overrun (and takes the byte). */
#define VCP_RX_READY() (VCP->SR & USART_SR_RXNE)
#define VCP_TX_EMPTY() (VCP->SR & USART_SR_TXE)
#define VCP_TX_DONE() (VCP->SR & USART_SR_TC)
#define VCP_RDR VCP->DR
#define VCP_TDR VCP->DR
#define VCP_UE USART_CR1_UE
#define VCP_ENABLE (USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE)
static int vcp_overrun(void) {
  if (!(VCP->SR & USART_SR_ORE)) return 0;
  (void)VCP->DR;
  return 1;
}
static void vcp_clear_flags(void) { (void)VCP->SR; }
#else
#define VCP_RX_READY() (VCP->ISR & ISR_RXNE)
#define VCP_TX_EMPTY() (VCP->ISR & ISR_TXE)
#define VCP_TX_DONE() (VCP->ISR & ISR_TC)
#define VCP_RDR VCP->RDR
#define VCP_TDR VCP->TDR
#define VCP_UE CR1_UE
#define VCP_ENABLE (CR1_TE | CR1_RE | CR1_RXNEIE | CR1_UE)
static int vcp_overrun(void) {
  if (!(VCP->ISR & ISR_ORE)) return 0;
  VCP->ICR = ICR_ORECF;
  return 1;
}
static void vcp_clear_flags(void) { VCP->ICR = ICR_ALL; }
#endif

static void uart_init(void) {
#if defined(EP_STM32L4R5)
  /* PG2..PG15 are powered from VDDIO2, which stays isolated until PWR_CR2.IOSV is set. */
  PWR->CR2 |= PWR_CR2_IOSV;
  RCC->AHB2ENR |= RCC_AHB2ENR_GPIOGEN | RCC_AHB2ENR_GPIOFEN;
  RCC->APB1ENR2 |= RCC_APB1ENR2_LPUART1EN;
  (void)RCC->APB1ENR2;
  gpio_af(GPIOG, 7u, 8u);
  gpio_af(GPIOG, 8u, 8u);
#elif defined(EP_STM32G0B1)
  RCC->IOPENR |= RCC_IOPENR_GPIOAEN;
  RCC->APBENR1 |= RCC_APBENR1_USART2EN;
  (void)RCC->APBENR1;
  gpio_af(GPIOA, 2u, 1u);
  gpio_af(GPIOA, 3u, 1u);
#elif defined(EP_STM32H743)
  /* USART3 kernel clock = rcc_pclk1 = HSI 64 MHz with the reset dividers. */
  RCC->AHB4ENR |= RCC_AHB4ENR_GPIODEN | RCC_AHB4ENR_GPIOFEN;
  RCC->APB1LENR |= RCC_APB1LENR_USART3EN;
  (void)RCC->APB1LENR;
  gpio_af(GPIOD, 8u, 7u);
  gpio_af(GPIOD, 9u, 7u);
#elif defined(EP_STM32L475)
  /* USART1 on PB6 (TX) / PB7 (RX), AF7 (STM32L475 datasheet, alternate function table; UM2153: ST-LINK VCP);
   * kernel clock PCLK2 (CCIPR.USART1SEL reset value). */
  RCC->AHB2ENR |= RCC_AHB2ENR_GPIOBEN;
  RCC->APB2ENR |= RCC_APB2ENR_USART1EN;
  (void)RCC->APB2ENR;
  gpio_af(GPIOB, 6u, 7u);
  gpio_af(GPIOB, 7u, 7u);
#elif defined(EP_STM32F411)
  /* USART2 on PA2 (TX) / PA3 (RX), AF7 (UM1724: ST-LINK VCP); kernel clock PCLK1. */
  RCC->AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
  RCC->APB1ENR |= RCC_APB1ENR_USART2EN;
  (void)RCC->APB1ENR;
  gpio_af(GPIOA, 2u, 7u);
  gpio_af(GPIOA, 3u, 7u);
#endif
  uint32_t brr = brr_for(VCP_BAUD);
  VCP->CR1 = 0;
  VCP->BRR = brr ? brr : 16u;
  vcp_clear_flags();
  VCP->CR1 = VCP_ENABLE;
  NVIC_SetPriority(VCP_IRQn, 0);
  NVIC_EnableIRQ(VCP_IRQn);
}

static void vcp_irq(void) {
  if (vcp_overrun()) rx_overruns++;
  while (VCP_RX_READY()) {
    uint8_t b = (uint8_t)VCP_RDR;
    uint32_t next = (rx_head + 1u) % sizeof rx_ring;
    if (next != rx_tail) { /* a full ring drops the byte; the frame's CRC then fails and the host retries */
      rx_ring[rx_head] = b;
      rx_head = next;
    } else {
      rx_overruns++;
    }
  }
}

#if defined(EP_STM32_BARE)
/* startup_cortexm.c routes every external interrupt here; only the VCP's is enabled. */
void ep_port_irq(void) { vcp_irq(); }
void ep_port_nmi(void) { NVIC_SystemReset(); }
#else
void VCP_IRQHandler(void) { vcp_irq(); }
#endif

int ep_port_getc(void) {
  if (rx_tail == rx_head) return -1;
  uint8_t b = rx_ring[rx_tail];
  rx_tail = (rx_tail + 1u) % sizeof rx_ring;
  return b;
}

void ep_port_write(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; i++) {
    while (!VCP_TX_EMPTY()) {
    }
    VCP_TDR = data[i];
  }
}

/* ---- counter -------------------------------------------------------------------------------------- */

static uint64_t ticks64(void) {
  uint32_t w1, v, w2;
  do {
    w1 = ep_systick_wraps;
    v = SysTick->VAL;
    w2 = ep_systick_wraps;
  } while (w1 != w2); /* a wrap between the reads: its interrupt ran, read again */
  return ((uint64_t)w1 << 24) + (0x00FFFFFFu - v);
}

/* SysTick free-running over 24 bits at the core clock, its wraps counted by the interrupt. */
static void systick_free_run(void) {
  SysTick->LOAD = 0x00FFFFFFu;
  SysTick->VAL = 0;
  SysTick->CTRL = SysTick_CTRL_CLKSOURCE_Msk | SysTick_CTRL_TICKINT_Msk | SysTick_CTRL_ENABLE_Msk;
  /* The first reload from 0 raises no wrap interrupt; wait for it so every later wrap is counted. */
  for (uint32_t i = 0; i < 1000000u && SysTick->VAL == 0u; i++) {
  }
}

#if !defined(EP_NO_DWT)
/* SysTick ticks across `iterations` turns of a two-instruction loop (SUBS, BNE), interrupts off. */
static uint32_t systick_span(uint32_t iterations) {
  uint32_t v0 = SysTick->VAL;
  __asm volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(iterations) : : "cc");
  uint32_t v1 = SysTick->VAL;
  return (v0 - v1) & 0x00FFFFFFu;
}

/* SysTick's rate in instructions: the difference of two loops cancels the fixed cost around them, leaving
 * 4 x CAL_N instructions; under QEMU -icount shift=0 those take 4 x CAL_N ns of virtual time. */
#define CAL_N 1000000u
static void systick_calibrate(void) {
  uint32_t ticks = systick_span(3u * CAL_N) - systick_span(CAL_N);
  if (ticks == 0u) return;
  /* ticks per 4 ms of virtual time -> Hz, to the nearest 10 kHz (an emulated clock is whole MHz) */
  uint64_t hz = (uint64_t)ticks * (1000000000u / (4u * CAL_N));
  hz = (hz + 5000u) / 10000u * 10000u;
  systick_hz = (uint32_t)hz;
  info.clock_hz = systick_hz;
  info.counter_scale_milli = (uint32_t)((1000000000000ull + hz / 2u) / hz); /* 1000 x instructions per tick */
  info.counter = EP_COUNTER_ICOUNT;
}

/* Whether DWT CYCCNT advances across a short busy loop (QEMU models no DWT: it reads 0 there). */
static int dwt_counts(void) {
  CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk;
#if defined(EP_STM32H743)
  *(volatile uint32_t *)0xE0001FB0u = 0xC5ACCE55u; /* DWT lock access register: the M7's DWT is locked */
#endif
  DWT->CYCCNT = 0;
  DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
  uint32_t c0 = DWT->CYCCNT;
  (void)systick_span(100u);
  return DWT->CYCCNT != c0;
}
#endif

static void counter_init(void) {
  systick_hz = SystemCoreClock;
#if defined(EP_NO_DWT)
  systick_counts = 1;
  systick_free_run();
#else
  if (dwt_counts()) {
    /* SysTick (10 Hz) only ends the idle WFI often enough to feed the watchdog, and counts tenths of a second for
     * ep_port_ms (DWT CYCCNT stops while the core sleeps). Its interrupt is off during an inference
     * (ep_port_mark), so the clock runs slow then: fine for a grace period. */
    SysTick->LOAD = SystemCoreClock / 10u - 1u;
    SysTick->VAL = 0;
    SysTick->CTRL = SysTick_CTRL_CLKSOURCE_Msk | SysTick_CTRL_TICKINT_Msk | SysTick_CTRL_ENABLE_Msk;
    return;
  }
  /* No counting DWT: SysTick becomes the counter, timed against a loop of known instruction count. */
  systick_counts = 1;
  SysTick->LOAD = 0x00FFFFFFu;
  SysTick->VAL = 0;
  SysTick->CTRL = SysTick_CTRL_CLKSOURCE_Msk | SysTick_CTRL_ENABLE_Msk;
  __disable_irq(); /* a UART interrupt inside the loops would add its instructions */
  systick_calibrate();
  __enable_irq();
  systick_free_run();
#endif
}

uint32_t ep_port_ticks(void) {
#if defined(EP_NO_DWT)
  return (uint32_t)ticks64();
#else
  return systick_counts ? (uint32_t)ticks64() : DWT->CYCCNT;
#endif
}

uint32_t ep_port_ms(void) {
  if (systick_counts) return (uint32_t)(ticks64() / (systick_hz / 1000u));
  uint32_t t1, v, t2;
  do {
    t1 = ep_systick_wraps;
    v = SysTick->VAL;
    t2 = ep_systick_wraps;
  } while (t1 != t2);
  return t1 * 100u + (SysTick->LOAD - v) / (SystemCoreClock / 1000u);
}

/* With DWT counting, the 10 Hz wake-up tick is kept out of the measured window; when SysTick is the counter its
 * wraps must be counted throughout (one interrupt per 2^24 ticks). */
static void wake_timer(int on) {
  if (systick_counts) return;
  if (on)
    SysTick->CTRL |= SysTick_CTRL_TICKINT_Msk;
  else
    SysTick->CTRL &= ~SysTick_CTRL_TICKINT_Msk;
}

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
#elif defined(EP_STM32F411)
  const uint32_t power = RCC_CSR_PORRSTF | RCC_CSR_BORRSTF;
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
  for (uint32_t i = 0; i < 1000000u && !VCP_TX_DONE(); i++) {
  }
  NVIC_SystemReset();
}

int ep_port_baud_ok(uint32_t rate) { return brr_for(rate) != 0u; }

void ep_port_set_baud(uint32_t rate) {
  uint32_t brr = brr_for(rate);
  if (brr == 0u) return;
  /* The reply's last byte must leave the shift register at the old rate (TC), then BRR is written with the
   * UART disabled (it is read-only while UE is set on the v2 USART). */
  for (uint32_t i = 0; i < 1000000u && !VCP_TX_DONE(); i++) {
  }
  VCP->CR1 &= ~VCP_UE;
  VCP->BRR = brr;
  vcp_clear_flags();
  VCP->CR1 |= VCP_UE;
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
#elif defined(EP_STM32L475)
  RCC->AHB2ENR |= RCC_AHB2ENR_GPIOAEN;
#elif defined(EP_STM32F411)
  RCC->AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
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
