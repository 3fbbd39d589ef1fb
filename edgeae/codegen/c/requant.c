/* Requantization: round(acc * mult / 2^shift) with ties to even, exactly, in integers.
   mult (< 2^31) and shift (1..62) encode the real multiplier x_scale * w_scale / y_scale,
   computed at generation time; the product fits in 64 bits because |acc| < 2^31.
   With p = q * 2^shift + r (q = p >> shift, floor; 0 <= r < 2^shift), adding 2^(shift-1) - 1
   and q's lowest bit before the shift carries into q exactly when r > 2^(shift-1), or
   r == 2^(shift-1) and q is odd: round half to even, for either sign, without branches.
   (>> of a negative int64 is an arithmetic shift on every compiler this targets: gcc, clang,
   armcc, MSVC.) The result saturates at +-65535, beyond any 8-bit output anyway. */
static inline int32_t PFX_requant(int32_t acc, int32_t mult, int32_t shift)
{
    const int64_t p = (int64_t)acc * (int64_t)mult;
    int64_t q = (p + ((((int64_t)1) << (shift - 1)) - 1) + ((p >> shift) & 1)) >> shift;
    q = q < -65535 ? -65535 : (q > 65535 ? 65535 : q);
    return (int32_t)q;
}
