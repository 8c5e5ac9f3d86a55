/*
 * The v7E-M / v8-M DSP-extension instructions the int8 kernels are written with (SXTB16, SMLABB/SMLATT, SADD16,
 * SSUB8/SEL, BFI), as inline functions, and whether this build has them (EP_SIMD_DSP). Used by the windowed kernels
 * (ep_window.h) and the element-wise ADD/SUB (ep_add.c); internal to the runtime.
 */
#ifndef EP_SIMD_H
#define EP_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__) && defined(__OPTIMIZE__)
#define EP_SIMD_DSP 1 /* the same test as ep_fc.c's */
#else
#define EP_SIMD_DSP 0
#endif

#if EP_SIMD_DSP
static inline uint32_t ld32u(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4); /* one LDR: v7E-M/v8-M tolerate unaligned word loads */
  return v;
}
static inline uint32_t sxtb16(uint32_t v) {
  uint32_t r;
  __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(v));
  return r;
}
static inline uint32_t sxtb16_r8(uint32_t v) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
  return r;
}
static inline int32_t smlabb(uint32_t a, uint32_t b, int32_t acc) {
  int32_t r;
  __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}
static inline int32_t smlatt(uint32_t a, uint32_t b, int32_t acc) {
  int32_t r;
  __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}

/* Four int8 values (already saturated) in one word, then the activation clamp lane by lane: SSUB8 sets the GE
 * flags, SEL picks (a max and a min in four instructions for four outputs). */
static inline uint32_t pack4(int32_t b0, int32_t b1, int32_t b2, int32_t b3) {
  uint32_t v = (uint32_t)b0; /* bits 8..31 are all replaced */
  __asm__("bfi %0, %1, #8, #8\n\tbfi %0, %2, #16, #8\n\tbfi %0, %3, #24, #8" : "+r"(v) : "r"(b1), "r"(b2), "r"(b3));
  return v;
}
static inline uint32_t clamp4(uint32_t v, uint32_t lo4, uint32_t hi4) {
  uint32_t t;
  __asm__("ssub8 %1, %0, %2\n\tsel %0, %0, %2\n\tssub8 %1, %3, %0\n\tsel %0, %0, %3"
          : "+r"(v), "=&r"(t)
          : "r"(lo4), "r"(hi4)
          : "cc");
  return v;
}

/* Both int16 lanes doubled (SADD16: no carry between lanes). */
static inline uint32_t dbl16(uint32_t v) {
  uint32_t r;
  __asm__("sadd16 %0, %1, %1" : "=r"(r) : "r"(v));
  return r;
}
#endif /* EP_SIMD_DSP */

#endif /* EP_SIMD_H */
