/* Requantization: round(acc * mult / 2^shift) with ties to even, exactly, in integers.
   mult (< 2^31) and shift (1..62) encode the real multiplier x_scale * w_scale / y_scale,
   computed at generation time; the product fits in 64 bits because |acc| < 2^31.
   With p = q * 2^shift + r (q = p >> shift, floor; 0 <= r < 2^shift), adding 2^(shift-1) - 1
   and q's lowest bit before the shift carries into q exactly when r > 2^(shift-1), or
   r == 2^(shift-1) and q is odd: round half to even, for either sign, without branches.
   (>> of a negative int64 is an arithmetic shift on every compiler this targets: gcc, clang,
   armcc, MSVC.) The result saturates at +-65535, beyond any 8-bit output anyway.
   Where shift >= 32 (multipliers below 1/4: the usual case) PFX_requant_hi takes the same
   integers without a 64-bit shift: with k = shift - 32 and hi = p >> 32 (the high word),
   p >> shift = hi >> k, and (p + rnd + b) >> shift = ((p + rnd + b) >> 32) >> k, rnd =
   2^(shift-1) - 1 (per channel, hoisted by the callers): one SMULL, two 64-bit adds (ADDS/ADC)
   and three 32-bit shifts on a Cortex-M. |p| < 2^62 there, so |q| < 2^30 and the result is
   returned unsaturated: yzp + q, clamped to 8 bits by every caller, is the same code. */
static inline int32_t PFX_requant_hi(int32_t acc, int32_t mult, int32_t k, int64_t rnd)
{
    const int64_t p = (int64_t)acc * (int64_t)mult;
    const int32_t b = ((int32_t)(p >> 32) >> k) & 1;
    return (int32_t)((p + rnd + b) >> 32) >> k;
}
static inline int32_t PFX_requant(int32_t acc, int32_t mult, int32_t shift)
{
    const int64_t p = (int64_t)acc * (int64_t)mult;
    int64_t q;
#if !defined(__ARM_FEATURE_MVE) /* (ARMv8.1-M shifts 64 bits in one instruction: ASRL) */
    if (shift >= 32) {
        q = PFX_requant_hi(acc, mult, shift - 32, (((int64_t)1) << (shift - 1)) - 1);
    } else
#endif
    {
        q = (p + ((((int64_t)1) << (shift - 1)) - 1) + ((p >> shift) & 1)) >> shift;
    }
    q = q < -65535 ? -65535 : (q > 65535 ? 65535 : q);
    return (int32_t)q;
}
#if defined(__AVX2__) && !defined(PFX_NO_VECTOR) && !defined(PFX_REQUANT8)
#define PFX_REQUANT8 1
#include <immintrin.h>
/* PFX_requant of 8 lanes, each with its mult and shift (int32 lanes), clamped to [lo, hi]
   (|lo|, |hi| < 65535, so the saturation at +-65535 is implied): the same integers. VPMULDQ
   takes the 64-bit products of the even and the odd lanes; AVX2 has no arithmetic 64-bit
   shift, so x >> shift is ~(~x >>> shift) for negative x (>>> logical), by an XOR with the sign
   mask on both sides. */
static inline __m256i PFX_requant8(__m256i acc, __m256i mult, __m256i shift, int32_t lo, int32_t hi)
{
    const __m256i one = _mm256_set1_epi64x(1), zero = _mm256_setzero_si256();
    const __m256i l = _mm256_set1_epi64x(lo), h = _mm256_set1_epi64x(hi);
    __m256i p[2], s[2];
    int k;
    p[0] = _mm256_mul_epi32(acc, mult);
    p[1] = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), _mm256_srli_epi64(mult, 32));
    s[0] = _mm256_and_si256(shift, _mm256_set1_epi64x(0xffffffff));
    s[1] = _mm256_srli_epi64(shift, 32);
    for (k = 0; k < 2; ++k) {
        const __m256i rnd = _mm256_sub_epi64(_mm256_sllv_epi64(one, _mm256_sub_epi64(s[k], one)), one);
        __m256i q = _mm256_add_epi64(_mm256_add_epi64(p[k], rnd), _mm256_and_si256(_mm256_srlv_epi64(p[k], s[k]), one));
        const __m256i sign = _mm256_cmpgt_epi64(zero, q);
        q = _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(q, sign), s[k]), sign);
        q = _mm256_blendv_epi8(q, h, _mm256_cmpgt_epi64(q, h));
        p[k] = _mm256_blendv_epi8(q, l, _mm256_cmpgt_epi64(l, q));
    }
    return _mm256_blend_epi32(p[0], _mm256_slli_epi64(p[1], 32), 0xaa);
}
#endif
