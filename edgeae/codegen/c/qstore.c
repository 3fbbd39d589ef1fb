/* y[n][at[j]] = clamp(yzp + requant(acc[r][j]${corrdoc} + bias[n], mult[n], shift[n])) for the
   R rows n = n0 + r of a block of 8 pixels (np of them real); plane = the elements of one channel.
   With AVX2 (PFX_requant8) a row's 8 pixels are requantized at once: the same integers. */
static void ${name}(const int32_t *PFX_RESTRICT acc, int R, int n0, const int32_t *PFX_RESTRICT bias,
        const int32_t *PFX_RESTRICT wzp, const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift,
        const int32_t *PFX_RESTRICT sx, ${yt} *PFX_RESTRICT y, size_t plane, const int *PFX_RESTRICT at, int np,
        int32_t yzp, int32_t lo, int32_t hi)
{
    int r, j;
    (void)wzp;
    (void)sx;
#if defined(PFX_REQUANT8)
    for (r = 0; r < R; ++r) {
        const int n = n0 + r;
        ${yt} *PFX_RESTRICT yn = y + (size_t)n * plane;
        __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(acc + 8 * r)),
                                     _mm256_set1_epi32(bias[n]));
        __m128i c;
        ${vcorr}
        v = _mm256_add_epi32(PFX_requant8(v, _mm256_set1_epi32(mult[n]), _mm256_set1_epi32(shift[n]), lo - yzp,
                                                 hi - yzp), _mm256_set1_epi32(yzp));
        c = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)); /* in [lo, hi]: exact */
        c = ${pack8}(c, c);
        if (np == 8 && at[7] - at[0] == 7) {
            _mm_storel_epi64((__m128i *)(void *)(yn + at[0]), c);
        } else {
            ${yt} b[16];
            _mm_storeu_si128((__m128i *)(void *)b, c);
            for (j = 0; j < np; ++j) yn[at[j]] = b[j];
        }
    }
#else
    for (r = 0; r < R; ++r) {
        const int n = n0 + r;
        ${yt} *PFX_RESTRICT yn = y + (size_t)n * plane;
        for (j = 0; j < np; ++j) {
            const int32_t v = yzp + PFX_requant(acc[8 * r + j]${corr} + bias[n], mult[n], shift[n]);
            yn[at[j]] = (${yt})(v < lo ? lo : (v > hi ? hi : v));
        }
    }
#endif
}
