/* Test stub, NOT ST's header: just the CMSIS names firmware/port/stm32.c uses, so the port's C can be
 * compiled and its ep_port_* API checked without the ststm32 platform. Values are placeholders. */
#ifndef EP_STM32_STUB_COMMON_H
#define EP_STM32_STUB_COMMON_H
#include <stdint.h>
#define __IO volatile
typedef struct { __IO uint32_t MODER, OTYPER, OSPEEDR, PUPDR, IDR, ODR, BSRR, LCKR, AFR[2]; } GPIO_TypeDef;
typedef struct { __IO uint32_t CR1, CR2, CR3, BRR, GTPR, RTOR, RQR, ISR, ICR, RDR, TDR, PRESC; } USART_TypeDef;
typedef struct { __IO uint32_t KR, PR, RLR, SR, WINR; } IWDG_TypeDef;
typedef struct { __IO uint32_t CTRL, LOAD, VAL, CALIB; } SysTick_Type;
typedef struct { __IO uint32_t CTRL, CYCCNT; } DWT_Type;
typedef struct { __IO uint32_t DHCSR, DCRSR, DCRDR, DEMCR; } CoreDebug_Type;
#define SysTick ((SysTick_Type *)0xE000E010)
#define DWT ((DWT_Type *)0xE0001000)
#define CoreDebug ((CoreDebug_Type *)0xE000EDF0)
#define SysTick_CTRL_CLKSOURCE_Msk 4u
#define SysTick_CTRL_TICKINT_Msk 2u
#define SysTick_CTRL_ENABLE_Msk 1u
#define CoreDebug_DEMCR_TRCENA_Msk (1u<<24)
#define DWT_CTRL_CYCCNTENA_Msk 1u
typedef int IRQn_Type;
static inline void NVIC_SetPriority(IRQn_Type n, uint32_t p) { (void)n; (void)p; }
static inline void NVIC_EnableIRQ(IRQn_Type n) { (void)n; }
static inline void NVIC_SystemReset(void) { for (;;) {} }
static inline void __enable_irq(void) {}
static inline void __disable_irq(void) {}
static inline void __DSB(void) {}
static inline void __WFI(void) {}
extern uint32_t SystemCoreClock;
void SystemCoreClockUpdate(void);
static inline void SCB_EnableICache(void) {}
static inline void SCB_EnableDCache(void) {}
#define GPIOA ((GPIO_TypeDef*)0x40000001u) 
#define GPIOD ((GPIO_TypeDef*)0x40000002u)
#define GPIOF ((GPIO_TypeDef*)0x40000003u)
#define GPIOG ((GPIO_TypeDef*)0x40000004u)

#endif
