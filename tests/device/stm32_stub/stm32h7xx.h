#include "common.h"
typedef struct { __IO uint32_t AHB4ENR, APB1LENR, RSR; } RCC_TypeDef;
#define RCC ((RCC_TypeDef*)0x40000005u) 
#define USART3 ((USART_TypeDef*)0x40000008u)
#define IWDG1 ((IWDG_TypeDef*)0x40000009u)
#define USART3_IRQn 39
#define RCC_AHB4ENR_GPIODEN (1u<<3)
#define RCC_AHB4ENR_GPIOFEN (1u<<5)
#define RCC_APB1LENR_USART3EN (1u<<18)
#define RCC_RSR_IWDG1RSTF (1u<<26)
#define RCC_RSR_SFTRSTF (1u<<24)
#define RCC_RSR_PORRSTF (1u<<23)
#define RCC_RSR_BORRSTF (1u<<21)
#define RCC_RSR_RMVF (1u<<16)
