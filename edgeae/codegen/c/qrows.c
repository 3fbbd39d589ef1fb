/* y[n] = clamp(yzp + requant(bias[n] - wzp[n] * sx + sum_k x[k] * w[n][k])), sx = sum_k x[k]
   (the caller's), for the rows-by-four weight layout; rows go four at a time. With Helium, four
   blocks (64 bytes, 16 inputs) at a time first: VLD4 of 32-bit elements gives each row's 16
   bytes as one vector (element b of vector r: block b's word of row r). */
PFX_KERNEL void ${name}(const ${xt} *PFX_RESTRICT x, const ${wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift, int32_t sx,
        ${yt} *PFX_RESTRICT y, size_t ys, int K, int N, int32_t yzp, int32_t lo, int32_t hi)
{
    const ${wt} *PFX_RESTRICT g = w;
    const int T = K % 4, N4 = N - N % 4;
    int n, k, t;
    int32_t v;
    (void)wzp;
    (void)sx;
    n = 0;
#if defined(PFX_REQUANT8)
    for (; n + 8 <= N4; n += 8, g += 8 * (size_t)K) { /* AVX2: 8 rows (two of four) at a time */
        const ${wt} *PFX_RESTRICT ga = g, *PFX_RESTRICT gb = g + 4 * (size_t)K;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, a;
        int32_t sum[8];
        __m128i c;
        for (k = 0; k + 4 <= K; k += 4, ga += 16, gb += 16) { /* PMADDWD of 4 rows x 4 inputs, as pairs */
            uint32_t xq;
            __m256i xv;
            memcpy(&xq, x + k, 4);
            xv = _mm256_broadcastq_epi64(${xcvt}(_mm_cvtsi32_si128((int32_t)xq)));
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(${wcvt}(_mm_loadu_si128((const __m128i *)(const void *)ga)), xv));
            s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(${wcvt}(_mm_loadu_si128((const __m128i *)(const void *)gb)), xv));
        }
        a = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(s0, s1), _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7));
        _mm256_storeu_si256((__m256i *)(void *)sum, a);
        for (t = 0; t < T; ++t) { /* the K % 4 last inputs of each row */
            const int32_t xk = (int32_t)x[k + t];
            int r;
            for (r = 0; r < 4; ++r) {
                sum[r] += xk * (int32_t)ga[r * T + t];
                sum[4 + r] += xk * (int32_t)gb[r * T + t];
            }
        }
        a = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(const void *)sum),
                             _mm256_loadu_si256((const __m256i *)(const void *)(bias + n)));
        ${vcorr}
        a = _mm256_add_epi32(PFX_requant8(a, _mm256_loadu_si256((const __m256i *)(const void *)(mult + n)),
                                          _mm256_loadu_si256((const __m256i *)(const void *)(shift + n)),
                                          lo - yzp, hi - yzp), _mm256_set1_epi32(yzp));
        c = _mm_packs_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1)); /* in [lo, hi]: exact */
        c = ${pack8}(c, c);
        if (ys == 1u) {
            _mm_storel_epi64((__m128i *)(void *)(y + n), c);
        } else {
            ${yt} b[16];
            int r;
            _mm_storeu_si128((__m128i *)(void *)b, c);
            for (r = 0; r < 8; ++r) y[(size_t)(n + r) * ys] = b[r];
        }
    }
#endif
    for (; n < N4; n += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        k = 0;
#if PFX_MVE
        ${mve}
#endif
#if PFX_DSP
        uint32_t xv, wv;
        int32_t xe, xo;
        for (; k + 4 <= K; k += 4, g += 16) { /* (a row pair's words by one LDRD each: two registers fewer live) */
            uint32_t wb;
            xv = PFX_load4(x + k + 0); xe = ${xe}e(xv); xo = ${xe}o(xv);
            PFX_LOAD8(g, 0, wv, wb);
            a0 = __smlad(${we}e(wv), xe, a0); a0 = __smlad(${we}o(wv), xo, a0);
            a1 = __smlad(${we}e(wb), xe, a1); a1 = __smlad(${we}o(wb), xo, a1);
            PFX_LOAD8(g, 8, wv, wb);
            a2 = __smlad(${we}e(wv), xe, a2); a2 = __smlad(${we}o(wv), xo, a2);
            a3 = __smlad(${we}e(wb), xe, a3); a3 = __smlad(${we}o(wb), xo, a3);
        }
#elif defined(__thumb__) || defined(__arm__)
        for (k = 0; k + 4 <= K; k += 4, g += 16) {
            const int32_t x0 = (int32_t)x[k], x1 = (int32_t)x[k + 1], x2 = (int32_t)x[k + 2], x3 = (int32_t)x[k + 3];
            a0 += x0 * (int32_t)g[0] + x1 * (int32_t)g[1] + x2 * (int32_t)g[2] + x3 * (int32_t)g[3];
            a1 += x0 * (int32_t)g[4] + x1 * (int32_t)g[5] + x2 * (int32_t)g[6] + x3 * (int32_t)g[7];
            a2 += x0 * (int32_t)g[8] + x1 * (int32_t)g[9] + x2 * (int32_t)g[10] + x3 * (int32_t)g[11];
            a3 += x0 * (int32_t)g[12] + x1 * (int32_t)g[13] + x2 * (int32_t)g[14] + x3 * (int32_t)g[15];
        }
#else
        { /* hosts: 16 lanes (4 rows x 4 inputs), the inputs repeated to match; vectorizes */
            int32_t acc[16];
            ${xt} xr[16];
            int l;
            for (l = 0; l < 16; ++l) acc[l] = 0;
            for (k = 0; k + 4 <= K; k += 4, g += 16) {
                memcpy(xr, x + k, 4);
                memcpy(xr + 4, x + k, 4);
                memcpy(xr + 8, x + k, 4);
                memcpy(xr + 12, x + k, 4);
#pragma GCC unroll 1
                for (l = 0; l < 16; ++l) acc[l] += (int32_t)xr[l] * (int32_t)g[l];
            }
            a0 = acc[0] + acc[1] + acc[2] + acc[3];
            a1 = acc[4] + acc[5] + acc[6] + acc[7];
            a2 = acc[8] + acc[9] + acc[10] + acc[11];
            a3 = acc[12] + acc[13] + acc[14] + acc[15];
        }
#endif
        for (t = 0; t < T; ++t) {
            const int32_t xk = (int32_t)x[k + t];
            a0 += xk * (int32_t)g[t];
            a1 += xk * (int32_t)g[T + t];
            a2 += xk * (int32_t)g[2 * T + t];
            a3 += xk * (int32_t)g[3 * T + t];
        }
        g += 4 * T;
#if PFX_MVE
        if (shift[n] > 32 && shift[n + 1] > 32 && shift[n + 2] > 32 && shift[n + 3] > 32) { /* the 4 rows as one vector */
            int32_t s4[4];
            int32x4_t q;
            s4[0] = a0${corr0} + bias[n + 0]; s4[1] = a1${corr1} + bias[n + 1];
            s4[2] = a2${corr2} + bias[n + 2]; s4[3] = a3${corr3} + bias[n + 3];
            q = vaddq_n_s32(PFX_requant_mve4(vldrwq_s32(s4), vldrwq_s32(mult + n), vldrwq_s32(shift + n)), yzp);
            q = vminq_s32(vmaxq_s32(q, vdupq_n_s32(lo)), vdupq_n_s32(hi));
            y[(size_t)(n + 0) * ys] = (${yt})vgetq_lane_s32(q, 0);
            y[(size_t)(n + 1) * ys] = (${yt})vgetq_lane_s32(q, 1);
            y[(size_t)(n + 2) * ys] = (${yt})vgetq_lane_s32(q, 2);
            y[(size_t)(n + 3) * ys] = (${yt})vgetq_lane_s32(q, 3);
            continue;
        }
#endif
        {
            v = yzp + PFX_requant(a0${corr0} + bias[n + 0], mult[n + 0], shift[n + 0]);
            y[(size_t)(n + 0) * ys] = (${yt})(v < lo ? lo : (v > hi ? hi : v));
            v = yzp + PFX_requant(a1${corr1} + bias[n + 1], mult[n + 1], shift[n + 1]);
            y[(size_t)(n + 1) * ys] = (${yt})(v < lo ? lo : (v > hi ? hi : v));
            v = yzp + PFX_requant(a2${corr2} + bias[n + 2], mult[n + 2], shift[n + 2]);
            y[(size_t)(n + 2) * ys] = (${yt})(v < lo ? lo : (v > hi ? hi : v));
            v = yzp + PFX_requant(a3${corr3} + bias[n + 3], mult[n + 3], shift[n + 3]);
            y[(size_t)(n + 3) * ys] = (${yt})(v < lo ? lo : (v > hi ? hi : v));
        }
    }
    for (n = N4; n < N; ++n, g += K) { /* the last N % 4 rows, plain */
        int32_t a0 = 0;
        for (k = 0; k < K; ++k) a0 += (int32_t)x[k] * (int32_t)g[k];
        v = yzp + PFX_requant(a0${corr0} + bias[n + 0], mult[n + 0], shift[n + 0]);
            y[(size_t)(n + 0) * ys] = (${yt})(v < lo ? lo : (v > hi ? hi : v));
    }
}
