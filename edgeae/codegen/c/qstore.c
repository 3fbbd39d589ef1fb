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
#if PFX_MVE
    if (R == 4 && shift[n0] > 32 && shift[n0 + 1] > 32 && shift[n0 + 2] > 32 && shift[n0 + 3] > 32) {
        /* Helium, the 4 rows of one pixel at a time (PFX_requant_mve4, c/dsp.c): a gather of the
           pixel's 4 sums, one scatter of its 4 codes */
        const int32x4_t mv = vldrwq_s32(mult + n0), sv = vldrwq_s32(shift + n0), bv = vldrwq_s32(bias + n0);
        const int32x4_t lov = vdupq_n_s32(lo), hiv = vdupq_n_s32(hi);
        const uint32x4_t rows = vmulq_n_u32(vidupq_n_u32(0u, 1), 8u), planes = vmulq_n_u32(vidupq_n_u32(0u, 1), (uint32_t)plane);
        ${yt} *PFX_RESTRICT y0 = y + (size_t)n0 * plane;
        ${mvwneg}
        for (j = 0; j < np; ++j) {
            const int32x4_t a = vaddq_s32(vldrwq_gather_shifted_offset_s32(acc + j, rows), bv);
            const int32x4_t v = ${mvcorr4};
            const int32x4_t q = vaddq_n_s32(PFX_requant_mve4(v, mv, sv), yzp);
            ${mvstore4}(y0 + at[j], planes, ${mvcast}(vminq_s32(vmaxq_s32(q, lov), hiv)));
        }
        return;
    }
#endif
#if PFX_DSP && !PFX_MVE
    const int full = ${satok}; /* [lo, hi] is the output type's whole range: one SAT clamps */
#endif
    for (r = 0; r < R; ++r) {
        const int n = n0 + r;
        ${yt} *PFX_RESTRICT yn = y + (size_t)n * plane;
#if PFX_MVE
        if (shift[n] > 32) { /* Helium, 4 pixels at a time: PFX_requant_mve (c/dsp.c) */
            const int32x4_t mv = vdupq_n_s32(mult[n]), lov = vdupq_n_s32(lo), hiv = vdupq_n_s32(hi);
            const int k = shift[n] - 32;
            const int32_t rk = (int32_t)((1u << (k - 1)) - 1u), bn = bias[n];
            for (j = 0; j < np; j += 4) {
                const int32x4_t a = vaddq_n_s32(vldrwq_s32(acc + 8 * r + j), bn);
                const int32x4_t v = ${mvcorr};
                const int32x4_t q = vaddq_n_s32(PFX_requant_mve(v, mv, k, rk), yzp);
                ${mvstore}(yn, vreinterpretq_u32_s32(vldrwq_s32((const int32_t *)(const void *)(at + j))),
                        ${mvcast}(vminq_s32(vmaxq_s32(q, lov), hiv)), vctp32q((uint32_t)(np - j)));
            }
            continue;
        }
#endif
        if (shift[n] >= 32) { /* the channel's constants hoisted: see PFX_requant_hi */
            const int32_t k = shift[n] - 32, mn = mult[n], bn = bias[n];
            const int64_t rnd = (((int64_t)1) << (shift[n] - 1)) - 1;
#if PFX_DSP && !PFX_MVE
            if (full) {
                for (j = 0; j < np; ++j)
                    yn[at[j]] = (${yt})${sat}(yzp + PFX_requant_hi(acc[8 * r + j]${corr} + bn, mn, k, rnd), 8);
                continue;
            }
#endif
            for (j = 0; j < np; ++j) {
                const int32_t v = yzp + PFX_requant_hi(acc[8 * r + j]${corr} + bn, mn, k, rnd);
                yn[at[j]] = (${yt})(v < lo ? lo : (v > hi ? hi : v));
            }
            continue;
        }
        for (j = 0; j < np; ++j) {
            const int32_t v = yzp + PFX_requant(acc[8 * r + j]${corr} + bias[n], mult[n], shift[n]);
            yn[at[j]] = (${yt})(v < lo ? lo : (v > hi ? hi : v));
        }
    }
#endif
}
