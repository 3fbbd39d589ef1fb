/* Cortex-M4/M7/M33/M55 (ARMv7E-M / ARMv8-M DSP): two 8x8-bit products per SMLAD. Four bytes
   are loaded as one word; SXTB16/UXTB16 widen bytes 0 and 2, and (rotated by 8) bytes 1 and
   3, into 16-bit pairs. Define PFX_NO_DSP to build the portable loops instead.
   Cortex-M55 (ARMv8.1-M with Helium, integer MVE; gcc or clang): the dense row kernel also
   takes 16 inputs of four rows per VLD4 (four vectors, one per row) and VMLADAV (16 products
   added to a row's sum); define PFX_NO_MVE to keep to the SMLAD loops there. */
#include <string.h>
#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && !defined(PFX_NO_DSP)
#define PFX_DSP 1
#include <arm_acle.h>
static inline uint32_t PFX_load4(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline int32_t PFX_s16e(uint32_t v) { return (int32_t)__sxtb16((int32_t)v); }
static inline int32_t PFX_u16e(uint32_t v) { return (int32_t)__uxtb16(v); }
#if defined(__GNUC__)
static inline int32_t PFX_s16o(uint32_t v) { int32_t r; __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v)); return r; }
static inline int32_t PFX_u16o(uint32_t v) { int32_t r; __asm__("uxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v)); return r; }
#else
static inline int32_t PFX_s16o(uint32_t v) { return (int32_t)__sxtb16((int32_t)((v >> 8) | (v << 24))); }
static inline int32_t PFX_u16o(uint32_t v) { return (int32_t)__uxtb16((v >> 8) | (v << 24)); }
#endif
/* four words from a pointer on a word: (a, b), (c, d); two LDRD (compilers split such pairs) */
#if defined(__GNUC__)
static inline void PFX_load16(const void *p, int32_t *a, int32_t *b, int32_t *c, int32_t *d)
{
    __asm__("ldrd %0, %1, [%4]\n\tldrd %2, %3, [%4, #8]" : "=&r"(*a), "=&r"(*b), "=r"(*c), "=r"(*d)
            : "r"(p), "m"(*(const uint32_t(*)[4])p));
}
/* two words at p + o (o a constant, a multiple of 4 up to 1020) */
#define PFX_LOAD8(p, o, a, b) __asm__("ldrd %0, %1, [%2, %3]" : "=r"(a), "=r"(b) \
                                      : "r"(p), "n"(o), "m"(*(const uint32_t(*)[2])(const void *)((p) + (o))))
#else
#define PFX_LOAD8(p, o, a, b) PFX_load8((p) + (o), &(a), &(b))
static inline void PFX_load8(const void *p, uint32_t *a, uint32_t *b) /* two words */
{
    uint32_t v[2];
    memcpy(v, p, 8);
    *a = v[0]; *b = v[1];
}
static inline void PFX_load16(const void *p, int32_t *a, int32_t *b, int32_t *c, int32_t *d)
{
    uint32_t v[4];
    memcpy(v, p, 16);
    *a = (int32_t)v[0]; *b = (int32_t)v[1]; *c = (int32_t)v[2]; *d = (int32_t)v[3];
}
#endif
#else
#define PFX_DSP 0
#endif
#if PFX_DSP && defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1) && defined(__GNUC__) && !defined(PFX_NO_MVE)
#define PFX_MVE 1
#include <arm_mve.h>
/* PFX_requant (c/requant.c) of 4 lanes for shift = 32 + k, k >= 1, without saturation (the
   callers clamp to 8 bits after adding the zero point). With p = hi * 2^32 + lo (hi = VMULH, the
   floor of p / 2^32; lo = VMUL, p mod 2^32) and b = (p >> shift) & 1 = (hi >> k) & 1, adding
   2^(shift-1) - 1 + b to p carries (hi + 2^(k-1) - 1 + t) into the high word, t = b | (lo != 0),
   so the result is that sum >> k (VSHL by a negative count: an arithmetic shift right, the
   floor): the scalar formula's integers, to the bit. PFX_requant_mve: one multiplier and k for
   the 4 lanes (rk = 2^(k-1) - 1, hoisted by the caller); PFX_requant_mve4: each lane its own. */
static inline int32x4_t PFX_requant_mve(int32x4_t acc, int32x4_t mult, int k, int32_t rk)
{
    const int32x4_t zero = vdupq_n_s32(0), one = vdupq_n_s32(1);
    const int32x4_t hi = vmulhq_s32(acc, mult);
    const int32x4_t t = vorrq_s32(vandq_s32(vshlq_r_s32(hi, -k), one),
                                  vpselq_s32(one, zero, vcmpneq_s32(vmulq_s32(acc, mult), zero)));
    return vshlq_r_s32(vaddq_s32(vaddq_n_s32(hi, rk), t), -k);
}
static inline int32x4_t PFX_requant_mve4(int32x4_t acc, int32x4_t mult, int32x4_t shift)
{
    const int32x4_t zero = vdupq_n_s32(0), one = vdupq_n_s32(1);
    const int32x4_t nk = vsubq_s32(vdupq_n_s32(32), shift); /* -k */
    const int32x4_t rk = vsubq_s32(vshlq_s32(one, vsubq_s32(shift, vdupq_n_s32(33))), one); /* 2^(k-1) - 1 */
    const int32x4_t hi = vmulhq_s32(acc, mult);
    const int32x4_t t = vorrq_s32(vandq_s32(vshlq_s32(hi, nk), one),
                                  vpselq_s32(one, zero, vcmpneq_s32(vmulq_s32(acc, mult), zero)));
    return vshlq_s32(vaddq_s32(vaddq_s32(hi, rk), t), nk);
}
#else
#define PFX_MVE 0
#endif
