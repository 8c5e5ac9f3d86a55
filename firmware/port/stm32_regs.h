/*
 * The registers firmware/port/stm32.c touches on the boards it builds without ST's CMSIS headers (offline, with the
 * project-local platform): STM32L475 (B-L475E-IOT01A) and STM32F411 (NUCLEO-F411RE). Names follow CMSIS so the
 * port's shared code reads the same against either; addresses, offsets and bit positions are taken from the
 * reference manuals, RM0351 (STM32L4x5/L4x6) and RM0383 (STM32F411xC/E), and the Cortex-M4 core from the
 * ARMv7-M Architecture Reference Manual. Only what the port uses is here.
 */
#ifndef EP_STM32_REGS_H
#define EP_STM32_REGS_H

#include <stdint.h>

#include "ep_cortexm.h"

#define __IO volatile

/* ---- Cortex-M4 core (ARMv7-M ARM B3.3 SysTick, C1.8 DWT, C1.6 DEMCR) ------------------------------ */
typedef struct { __IO uint32_t CTRL, LOAD, VAL, CALIB; } SysTick_Type;
typedef struct { __IO uint32_t CTRL, CYCCNT; } DWT_Type;
typedef struct { __IO uint32_t DHCSR, DCRSR, DCRDR, DEMCR; } CoreDebug_Type;
#define SysTick ((SysTick_Type *)0xE000E010u)
#define DWT ((DWT_Type *)0xE0001000u)
#define CoreDebug ((CoreDebug_Type *)0xE000EDF0u)
#define SysTick_CTRL_ENABLE_Msk (1u << 0)
#define SysTick_CTRL_TICKINT_Msk (1u << 1)
#define SysTick_CTRL_CLKSOURCE_Msk (1u << 2) /* 1: the processor clock (HCLK), 0: HCLK/8 on STM32 */
#define CoreDebug_DEMCR_TRCENA_Msk (1u << 24)
#define DWT_CTRL_CYCCNTENA_Msk (1u << 0)

typedef int IRQn_Type;
#define NVIC_IPR8(n) (*(volatile uint8_t *)(0xE000E400u + (uint32_t)(n)))
static inline void NVIC_EnableIRQ(IRQn_Type n) { NVIC_ISER((uint32_t)n >> 5) = 1u << ((uint32_t)n & 31u); }
/* Four priority bits on STM32 (the upper nibble of each IPR byte). */
static inline void NVIC_SetPriority(IRQn_Type n, uint32_t p) { NVIC_IPR8(n) = (uint8_t)(p << 4); }
static inline void NVIC_SystemReset(void) { ep_sysreset(); }
static inline void __enable_irq(void) { ep_irq_enable(); }
static inline void __disable_irq(void) { ep_irq_disable(); }
static inline void __DSB(void) { __asm volatile("dsb" ::: "memory"); }
static inline void __WFI(void) { __asm volatile("wfi" ::: "memory"); }

/* ---- GPIO (same layout on L4 and F4: RM0351 8.5, RM0383 8.4) ------------------------------------ */
typedef struct { __IO uint32_t MODER, OTYPER, OSPEEDR, PUPDR, IDR, ODR, BSRR, LCKR, AFR[2]; } GPIO_TypeDef;

/* ---- independent watchdog (RM0351 32.7, RM0383 17.4; same base on both) ------------------------- */
typedef struct { __IO uint32_t KR, PR, RLR, SR, WINR; } IWDG_TypeDef;
#define IWDG ((IWDG_TypeDef *)0x40003000u)

#if defined(EP_STM32L475)
/* ---- STM32L475 (RM0351) ------------------------------------------------------------------------- */
typedef struct {
  __IO uint32_t CR, ICSCR, CFGR, PLLCFGR, PLLSAI1CFGR, PLLSAI2CFGR, CIER, CIFR, CICR, RESERVED0, AHB1RSTR, AHB2RSTR,
      AHB3RSTR, RESERVED1, APB1RSTR1, APB1RSTR2, APB2RSTR, RESERVED2, AHB1ENR, AHB2ENR, AHB3ENR, RESERVED3, APB1ENR1,
      APB1ENR2, APB2ENR, RESERVED4, AHB1SMENR, AHB2SMENR, AHB3SMENR, RESERVED5, APB1SMENR1, APB1SMENR2, APB2SMENR,
      RESERVED6, CCIPR, RESERVED7, BDCR, CSR;
} RCC_TypeDef; /* CSR at 0x94 (RM0351 6.4.29) */
typedef struct { __IO uint32_t ACR; } FLASH_TypeDef;
/* USART v2 (RM0351 40.8): ISR/ICR/RDR/TDR */
typedef struct { __IO uint32_t CR1, CR2, CR3, BRR, GTPR, RTOR, RQR, ISR, ICR, RDR, TDR; } USART_TypeDef;
#define RCC ((RCC_TypeDef *)0x40021000u)
#define FLASH ((FLASH_TypeDef *)0x40022000u)
#define GPIOA ((GPIO_TypeDef *)0x48000000u)
#define GPIOB ((GPIO_TypeDef *)0x48000400u)
#define USART1 ((USART_TypeDef *)0x40013800u)
#define USART1_IRQn 37
#define RCC_CR_MSIRANGE_Msk (0xFu << 4)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW (3u << 0)
#define RCC_CFGR_SW_PLL (3u << 0)
#define RCC_CFGR_SWS (3u << 2)
#define RCC_CFGR_SWS_PLL (3u << 2)
#define RCC_CFGR_HPRE (0xFu << 4)
#define RCC_PLLCFGR_PLLSRC_MSI (1u << 0)
#define RCC_PLLCFGR_PLLM_Pos 4  /* M = PLLM + 1 */
#define RCC_PLLCFGR_PLLN_Pos 8  /* 8..86 */
#define RCC_PLLCFGR_PLLREN (1u << 24)
#define RCC_PLLCFGR_PLLR_Pos 25 /* 0: /2, 1: /4, 2: /6, 3: /8 */
#define RCC_AHB2ENR_GPIOAEN (1u << 0)
#define RCC_AHB2ENR_GPIOBEN (1u << 1)
#define RCC_APB2ENR_USART1EN (1u << 14)
#define RCC_CSR_RMVF (1u << 23)
#define RCC_CSR_BORRSTF (1u << 27)
#define RCC_CSR_SFTRSTF (1u << 28)
#define RCC_CSR_IWDGRSTF (1u << 29)
#define FLASH_ACR_LATENCY (7u << 0)
#define FLASH_ACR_LATENCY_4WS 4u
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

#elif defined(EP_STM32F411)
/* ---- STM32F411 (RM0383) ------------------------------------------------------------------------- */
typedef struct {
  __IO uint32_t CR, PLLCFGR, CFGR, CIR, AHB1RSTR, AHB2RSTR, RESERVED0[2], APB1RSTR, APB2RSTR, RESERVED1[2], AHB1ENR,
      AHB2ENR, RESERVED2[2], APB1ENR, APB2ENR, RESERVED3[2], AHB1LPENR, AHB2LPENR, RESERVED4[2], APB1LPENR, APB2LPENR,
      RESERVED5[2], BDCR, CSR;
} RCC_TypeDef; /* CSR at 0x74 (RM0383 6.3.20) */
typedef struct { __IO uint32_t ACR; } FLASH_TypeDef;
typedef struct { __IO uint32_t CR, CSR; } PWR_TypeDef;
/* USART v1 (RM0383 19.6): one status register SR, one data register DR */
typedef struct { __IO uint32_t SR, DR, BRR, CR1, CR2, CR3, GTPR; } USART_TypeDef;
#define RCC ((RCC_TypeDef *)0x40023800u)
#define FLASH ((FLASH_TypeDef *)0x40023C00u)
#define PWR ((PWR_TypeDef *)0x40007000u)
#define GPIOA ((GPIO_TypeDef *)0x40020000u)
#define USART2 ((USART_TypeDef *)0x40004400u)
#define USART2_IRQn 38
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_PLLCFGR_PLLM_Pos 0  /* 2..63 */
#define RCC_PLLCFGR_PLLN_Pos 6  /* 50..432 */
#define RCC_PLLCFGR_PLLP_Pos 16 /* 0: /2, 1: /4, 2: /6, 3: /8 */
#define RCC_PLLCFGR_PLLSRC (1u << 22) /* 0: HSI */
#define RCC_PLLCFGR_PLLQ_Pos 24
#define RCC_CFGR_SW (3u << 0)
#define RCC_CFGR_SW_PLL (2u << 0)
#define RCC_CFGR_SWS (3u << 2)
#define RCC_CFGR_SWS_PLL (2u << 2)
#define RCC_CFGR_HPRE (0xFu << 4)
#define RCC_CFGR_PPRE1 (7u << 10)
#define RCC_CFGR_PPRE1_DIV2 (4u << 10)
#define RCC_CFGR_PPRE2 (7u << 13)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR_USART2EN (1u << 17)
#define RCC_APB1ENR_PWREN (1u << 28)
#define RCC_CSR_RMVF (1u << 24)
#define RCC_CSR_BORRSTF (1u << 25)
#define RCC_CSR_PORRSTF (1u << 27)
#define RCC_CSR_SFTRSTF (1u << 28)
#define RCC_CSR_IWDGRSTF (1u << 29)
#define PWR_CR_VOS (3u << 14) /* 3: scale 1, needed above 84 MHz */
#define FLASH_ACR_LATENCY (0xFu << 0)
#define FLASH_ACR_LATENCY_3WS 3u
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)
#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TC (1u << 6)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_UE (1u << 13)
#endif

#include <stddef.h>
/* The offsets the reference manuals give for the registers read back at boot. */
_Static_assert(offsetof(RCC_TypeDef, CFGR) == 0x08, "RCC_CFGR offset");
#if defined(EP_STM32L475)
_Static_assert(offsetof(RCC_TypeDef, APB2ENR) == 0x60 && offsetof(RCC_TypeDef, CSR) == 0x94, "RM0351 RCC layout");
_Static_assert(offsetof(USART_TypeDef, ISR) == 0x1C && offsetof(USART_TypeDef, TDR) == 0x28, "RM0351 USART layout");
#else
_Static_assert(offsetof(RCC_TypeDef, APB1ENR) == 0x40 && offsetof(RCC_TypeDef, CSR) == 0x74, "RM0383 RCC layout");
_Static_assert(offsetof(USART_TypeDef, CR1) == 0x0C, "RM0383 USART layout");
#endif
_Static_assert(offsetof(GPIO_TypeDef, AFR) == 0x20, "GPIO layout");

#if !defined(EP_STM32L475) && !defined(EP_STM32F411)
#error "stm32_regs.h: only the STM32L475 and STM32F411 ports build without ST's headers"
#endif

#endif
