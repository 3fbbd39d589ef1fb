/* Requantization: round(acc * mult / 2^shift) with ties to even, exactly, in integers.
   mult (< 2^31) and shift (1..62) encode the real multiplier x_scale * w_scale / y_scale,
   computed at generation time; the product fits in 64 bits because |acc| < 2^31. */
static inline int32_t PFX_requant(int32_t acc, int32_t mult, int32_t shift)
{
    const int64_t p = (int64_t)acc * (int64_t)mult;
    const uint64_t u = p < 0 ? (uint64_t)0 - (uint64_t)p : (uint64_t)p;
    uint64_t q = u >> shift;
    const uint64_t rem = u - (q << shift);
    const uint64_t half = (uint64_t)1 << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    if (q > 65535u) q = 65535u; /* saturates below anyway */
    return p < 0 ? -(int32_t)q : (int32_t)q;
}
