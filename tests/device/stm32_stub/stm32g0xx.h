#include "common.h"
typedef struct { __IO uint32_t CR, ICSCR, CFGR, PLLCFGR, IOPENR, APBENR1, CSR; } RCC_TypeDef;
typedef struct { __IO uint32_t ACR; } FLASH_TypeDef;
#define RCC ((RCC_TypeDef*)0x40000005u) 
#define FLASH ((FLASH_TypeDef*)0x40000007u)
#define USART2 ((USART_TypeDef*)0x40000008u)
#define IWDG ((IWDG_TypeDef*)0x40000009u)
#define USART2_LPUART2_IRQn 28
#define FLASH_ACR_LATENCY 7u
#define FLASH_ACR_LATENCY_1 2u
#define FLASH_ACR_PRFTEN (1u<<8)
#define FLASH_ACR_ICEN (1u<<9)
#define RCC_PLLCFGR_PLLSRC_HSI 2u
#define RCC_PLLCFGR_PLLM_Pos 4
#define RCC_PLLCFGR_PLLN_Pos 8
#define RCC_PLLCFGR_PLLR_Pos 29
#define RCC_PLLCFGR_PLLREN (1u<<28)
#define RCC_CR_PLLON (1u<<24)
#define RCC_CR_PLLRDY (1u<<25)
#define RCC_CFGR_SW 7u
#define RCC_CFGR_SW_Pos 0
#define RCC_CFGR_SWS (7u<<3)
#define RCC_CFGR_SWS_Pos 3
#define RCC_IOPENR_GPIOAEN 1u
#define RCC_APBENR1_USART2EN (1u<<17)
#define RCC_CSR_IWDGRSTF (1u<<29)
#define RCC_CSR_SFTRSTF (1u<<28)
#define RCC_CSR_PWRRSTF (1u<<27)
#define RCC_CSR_RMVF (1u<<23)
