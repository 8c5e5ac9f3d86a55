/* LAN9118 register-level driver: just enough for the link (see ep_lan9118.h). */
#include "ep_lan9118.h"

#include <string.h>

#include "ep_cortexm.h"

#define R(off) EP_REG(eth_base + (off))
#define RX_DATA 0x00u
#define TX_DATA 0x20u
#define RX_STATUS 0x40u
#define TX_STATUS 0x48u
#define IRQ_CFG 0x54u
#define INT_STS 0x58u
#define INT_EN 0x5Cu
#define BYTE_TEST 0x64u
#define RX_CFG 0x6Cu
#define TX_CFG 0x70u
#define RX_FIFO_INF 0x7Cu
#define TX_FIFO_INF 0x80u
#define PMT_CTRL 0x84u
#define MAC_CSR_CMD 0xA4u
#define MAC_CSR_DATA 0xA8u

#define BYTE_TEST_MAGIC 0x87654321u
#define IRQ_ACTIVE_HIGH 0x111u /* IRQ_EN | IRQ_POL | IRQ_TYPE (push-pull, active high) */
#define INT_RSFL 0x8u          /* RX status FIFO level: a frame has arrived */
#define TX_ON 0x2u
#define MAC_CR 1u
#define MAC_CR_RXEN 0x4u
#define MAC_CR_TXEN 0x8u
#define MAC_CR_FDPX 0x100000u
#define MAC_CR_PRMS 0x40000u   /* promiscuous: the wire is point-to-point, no address to match */
#define CSR_BUSY 0x80000000u

#define HDR 16u /* dst 6, src 6, EtherType 2, length 2 */
#define MAX_FRAME 1536u

static uintptr_t eth_base;
static uint8_t rx_buf[MAX_FRAME] __attribute__((aligned(4)));
static uint32_t rx_pos, rx_len;
static uint32_t tx_words[(HDR + EP_ETH_MAX_DATA + 3u) / 4u];

static const uint8_t host_mac[6] = {0x02, 0x45, 0x50, 0x00, 0x00, 0x01};
static const uint8_t dev_mac[6] = {0x02, 0x45, 0x50, 0x00, 0x00, 0x02};

static void mac_write(uint32_t reg, uint32_t val) {
  R(MAC_CSR_DATA) = val;
  R(MAC_CSR_CMD) = CSR_BUSY | reg;
  for (uint32_t i = 0; i < 100000u && (R(MAC_CSR_CMD) & CSR_BUSY); i++) {
  }
}

int ep_eth_init(uintptr_t base) {
  eth_base = base;
  if (R(BYTE_TEST) != BYTE_TEST_MAGIC) {
    eth_base = 0;
    return 0;
  }
  for (uint32_t i = 0; i < 100000u && !(R(PMT_CTRL) & 1u); i++) { /* READY after reset */
  }
  mac_write(MAC_CR, MAC_CR_RXEN | MAC_CR_TXEN | MAC_CR_FDPX | MAC_CR_PRMS);
  R(TX_CFG) = TX_ON;
  R(RX_CFG) = 0; /* no offset, no end padding: status + whole words */
  R(INT_STS) = 0xFFFFFFFFu;
  R(INT_EN) = INT_RSFL;
  R(IRQ_CFG) = IRQ_ACTIVE_HIGH;
  rx_pos = rx_len = 0;
  return 1;
}

void ep_eth_irq(void) {
  if (eth_base) R(INT_STS) = INT_RSFL;
}

/* Pull the next frame out of the NIC into rx_buf; frames that are not ours are read and dropped. */
static void rx_frame(void) {
  while (rx_pos >= rx_len && ((R(RX_FIFO_INF) >> 16) & 0xFFu) != 0u) {
    uint32_t status = R(RX_STATUS);
    uint32_t bytes = (status >> 16) & 0x3FFFu; /* includes the 4-byte FCS */
    uint32_t words = (bytes + 3u) / 4u;
    uint32_t keep = words * 4u <= MAX_FRAME ? words : MAX_FRAME / 4u;
    uint32_t *dst = (uint32_t *)(void *)rx_buf;
    for (uint32_t i = 0; i < words; i++) {
      uint32_t w = R(RX_DATA);
      if (i < keep) dst[i] = w;
    }
    if ((status & 0x8000u) || bytes < HDR + 4u || words > keep) continue; /* error summary, runt, too long */
    if (rx_buf[12] != (uint8_t)(EP_ETH_TYPE >> 8) || rx_buf[13] != (uint8_t)EP_ETH_TYPE) continue;
    uint32_t n = rx_buf[14] | ((uint32_t)rx_buf[15] << 8);
    if (n > bytes - 4u - HDR) continue;
    rx_pos = HDR;
    rx_len = HDR + n;
  }
}

int ep_eth_getc(void) {
  if (!eth_base) return -1;
  if (rx_pos >= rx_len) rx_frame();
  if (rx_pos >= rx_len) return -1;
  return rx_buf[rx_pos++];
}

int ep_eth_pending(void) {
  if (!eth_base) return 0;
  return rx_pos < rx_len || ((R(RX_FIFO_INF) >> 16) & 0xFFu) != 0u;
}

void ep_eth_write(const uint8_t *data, size_t n) {
  if (!eth_base) return;
  while (n) {
    uint32_t chunk = n > EP_ETH_MAX_DATA ? EP_ETH_MAX_DATA : (uint32_t)n;
    uint32_t len = HDR + chunk;
    uint8_t *p = (uint8_t *)tx_words;
    memcpy(p, host_mac, 6);
    memcpy(p + 6, dev_mac, 6);
    p[12] = (uint8_t)(EP_ETH_TYPE >> 8);
    p[13] = (uint8_t)EP_ETH_TYPE;
    p[14] = (uint8_t)chunk;
    p[15] = (uint8_t)(chunk >> 8);
    memcpy(p + HDR, data, chunk);
    uint32_t words = (len + 3u) / 4u;
    while ((R(TX_FIFO_INF) & 0xFFFFu) < words * 4u + 8u) {
    }
    R(TX_DATA) = (1u << 13) | (1u << 12) | len; /* command A: first + last segment, buffer size */
    R(TX_DATA) = (len << 16) | len;              /* command B: tag, packet length */
    for (uint32_t i = 0; i < words; i++) R(TX_DATA) = tx_words[i];
    /* Nobody needs TX statuses; drain them so the status FIFO never fills. */
    while ((R(TX_FIFO_INF) >> 16) & 0xFFu) (void)R(TX_STATUS);
    data += chunk;
    n -= chunk;
  }
}
