#include "common.h"
typedef struct { __IO uint32_t CR, ICSCR, CFGR, PLLCFGR, AHB2ENR, APB1ENR1, APB1ENR2, CSR; } RCC_TypeDef;
typedef struct { __IO uint32_t CR1, CR2, CR5; } PWR_TypeDef;
typedef struct { __IO uint32_t ACR; } FLASH_TypeDef;
#define RCC ((RCC_TypeDef*)0x40000005u) 
#define PWR ((PWR_TypeDef*)0x40000006u)
#define FLASH ((FLASH_TypeDef*)0x40000007u)
#define LPUART1 ((USART_TypeDef*)0x40000008u)
#define IWDG ((IWDG_TypeDef*)0x40000009u)
#define LPUART1_IRQn 70
#define RCC_APB1ENR1_PWREN (1u<<28)
#define PWR_CR5_R1MODE (1u<<8)
#define PWR_CR2_IOSV (1u<<9)
#define FLASH_ACR_LATENCY 0xFu
#define FLASH_ACR_LATENCY_5WS 5u
#define FLASH_ACR_PRFTEN (1u<<8)
#define FLASH_ACR_ICEN (1u<<9)
#define FLASH_ACR_DCEN (1u<<10)
#define RCC_PLLCFGR_PLLSRC_MSI 1u
#define RCC_PLLCFGR_PLLM_Pos 4
#define RCC_PLLCFGR_PLLN_Pos 8
#define RCC_PLLCFGR_PLLR_Pos 25
#define RCC_PLLCFGR_PLLREN (1u<<24)
#define RCC_CR_PLLON (1u<<24)
#define RCC_CR_PLLRDY (1u<<25)
#define RCC_CFGR_HPRE (0xFu<<4)
#define RCC_CFGR_HPRE_DIV2 (8u<<4)
#define RCC_CFGR_SW 3u
#define RCC_CFGR_SW_PLL 3u
#define RCC_CFGR_SWS (3u<<2)
#define RCC_CFGR_SWS_PLL (3u<<2)
#define RCC_AHB2ENR_GPIOGEN (1u<<6)
#define RCC_AHB2ENR_GPIOFEN (1u<<5)
#define RCC_APB1ENR2_LPUART1EN 1u
#define RCC_CSR_IWDGRSTF (1u<<29)
#define RCC_CSR_SFTRSTF (1u<<28)
#define RCC_CSR_BORRSTF (1u<<27)
#define RCC_CSR_RMVF (1u<<23)
