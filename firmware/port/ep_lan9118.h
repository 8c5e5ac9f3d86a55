/*
 * SMSC LAN9118 (as on the Arm MPS2 boards and in QEMU's mps2 machines) used as a byte pipe for the link.
 *
 * Why: QEMU's CMSDK UART holds one received byte, so every byte costs the emulator a main-loop round trip
 * (measured 6-12 KiB/s). An Ethernet frame carries up to EP_ETH_MAX_DATA link bytes per round trip.
 * Frames are raw Ethernet II with EtherType EP_ETH_TYPE and this payload: [len u16 LE][len link bytes].
 * The bytes are the same COBS frames the UART carries; the NIC is only a faster wire.
 */
#ifndef EP_LAN9118_H
#define EP_LAN9118_H

#include <stddef.h>
#include <stdint.h>

#define EP_ETH_TYPE 0x88B5u     /* IEEE 802 "local experimental" EtherType */
#define EP_ETH_MAX_DATA 1400u   /* link bytes per frame (fits a 1500-byte MTU with the headers) */

/* Returns 1 if a LAN9118 answers at base (BYTE_TEST register), then enables RX/TX and the RX interrupt. */
int ep_eth_init(uintptr_t base);
/* Next link byte received over Ethernet, or -1 if none is waiting (never blocks). */
int ep_eth_getc(void);
/* 1 if a byte is buffered or a frame is waiting in the NIC. */
int ep_eth_pending(void);
/* Send n link bytes (split into frames of at most EP_ETH_MAX_DATA). */
void ep_eth_write(const uint8_t *data, size_t n);
/* Acknowledge the NIC's interrupt (call from the IRQ handler). */
void ep_eth_irq(void);

#endif
