/* The inner product of the int8 convolutions: a block of 8 output pixels. The caller copies
   their input codes to col as int16 (PFX_COL(t, j): tap t of pixel j; taps rounded up to a
   multiple of 4 with zeros) and a tile computes the int32 sums of R output rows of the block,
   acc[r][j] = sum_t w[r][t] * col(t, j), for the rows-by-four weight layout (R = 4: blocks of
   4 taps x 4 rows, 16 bytes, then the 4 rows' T % 4 last taps; R = 1: a plain row of T bytes).
   Layouts of col, and how a tap pair meets a weight pair:
   - x86 (SSE2, AVX2): for each tap pair (t, t+1), the 8 pixels' two codes in turn, so one
     PMADDWD multiplies 4 (SSE2) or 8 (AVX2) pixels' pairs by a broadcast weight pair and adds
     each pair's two products: 16 products in 2 instructions per row;
   - Cortex-M with DSP: for each 4 taps, each pixel's codes in the order t, t+2, t+1, t+3, the
     order in which SXTB16 / UXTB16 widen a weight word, so two SMLAD take 4 products;
   - Cortex-M55 with Helium: for each 16 taps, each pixel's 8 even taps then its 8 odd ones
     (taps rounded up to a multiple of 16 with zeros), the order in which VMOVLB / VMOVLT
     widen the 16 weight bytes of a row that one VLD4 of 4 blocks gives: two VMLADAV take 16;
   - elsewhere: the x86 order, plain loops.
   Every order gives the same integers (exact int32 sums). */
#if !defined(PFX_QTILE)
#define PFX_QTILE 1
#if defined(__GNUC__)
#define PFX_UNROLL8 _Pragma("GCC unroll 8") /* the 8 lanes of a block as straight code */
#else
#define PFX_UNROLL8
#endif
#if (defined(__SSE2__) || defined(_M_X64)) && !defined(PFX_NO_VECTOR)
#include <emmintrin.h>
#if defined(__AVX2__)
#include <immintrin.h>
#define PFX_AVX2 1
#else
#define PFX_AVX2 0
#endif
#define PFX_SSE2 1
#else
#define PFX_SSE2 0
#define PFX_AVX2 0
#endif
#if PFX_MVE
#define PFX_COL(t, j) ((size_t)((t) >> 4) * 128u + (size_t)(j) * 16u + (size_t)(((t) & 1) << 3) + (size_t)(((t) & 15) >> 1))
#define PFX_COLTAPS(n) (((n) + 15) / 16 * 16)
#define PFX_COL8(t, j) ((size_t)((t) >> 4) * 128u + (size_t)(j) * 16u + (size_t)((t) & 15)) /* a byte column */
#elif PFX_DSP
#define PFX_COL(t, j) ((size_t)((t) >> 2) * 32u + (size_t)(j) * 4u + (size_t)((((t) & 1) << 1) | (((t) >> 1) & 1)))
#define PFX_COLTAPS(n) (((n) + 3) / 4 * 4)
#else
#define PFX_COL(t, j) ((size_t)((t) >> 1) * 16u + (size_t)(j) * 2u + (size_t)((t) & 1))
#define PFX_COLTAPS(n) (((n) + 3) / 4 * 4)
#endif
#endif
#if PFX_MVE /* a row's 16 weight bytes (one VLD4 vector) as int16: the even taps, the odd taps */
static inline int16x8_t PFX_qwb_${w}(uint32x4_t v) { return ${mvb}; }
static inline int16x8_t PFX_qwt_${w}(uint32x4_t v) { return ${mvt}; }
#endif

/* acc[8 r + j], r < 4: the four rows of one rows-by-four block against the 8 pixels of col */
static void PFX_qtile4_${w}(const int16_t *PFX_RESTRICT col, const ${wt} *PFX_RESTRICT g, int T, int np, int32_t *PFX_RESTRICT acc)
{
    const int T4 = T - T % 4, TL = T % 4;
    int t, r, j, u;
#if PFX_AVX2
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    const __m256i k0 = _mm256_set1_epi32(0), k1 = _mm256_set1_epi32(1), k2 = _mm256_set1_epi32(2),
                  k3 = _mm256_set1_epi32(3), k4 = _mm256_set1_epi32(4), k5 = _mm256_set1_epi32(5),
                  k6 = _mm256_set1_epi32(6), k7 = _mm256_set1_epi32(7);
    for (t = 0; t < T4; t += 4, g += 16) {
        const __m256i wv = ${cvt256}(_mm_loadu_si128((const __m128i *)(const void *)g)); /* rows 0-3 x taps t..t+3 */
        const __m256i c0 = _mm256_loadu_si256((const __m256i *)(const void *)(col + (size_t)t * 8u));
        const __m256i c1 = _mm256_loadu_si256((const __m256i *)(const void *)(col + (size_t)t * 8u + 16u));
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(c0, _mm256_permutevar8x32_epi32(wv, k0)));
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(c1, _mm256_permutevar8x32_epi32(wv, k1)));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(c0, _mm256_permutevar8x32_epi32(wv, k2)));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(c1, _mm256_permutevar8x32_epi32(wv, k3)));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(c0, _mm256_permutevar8x32_epi32(wv, k4)));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(c1, _mm256_permutevar8x32_epi32(wv, k5)));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(c0, _mm256_permutevar8x32_epi32(wv, k6)));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(c1, _mm256_permutevar8x32_epi32(wv, k7)));
    }
    _mm256_storeu_si256((__m256i *)(void *)acc, a0);
    _mm256_storeu_si256((__m256i *)(void *)(acc + 8), a1);
    _mm256_storeu_si256((__m256i *)(void *)(acc + 16), a2);
    _mm256_storeu_si256((__m256i *)(void *)(acc + 24), a3);
#elif PFX_SSE2
    __m128i a00 = _mm_setzero_si128(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    for (t = 0; t < T4; t += 4, g += 16) {
        const __m128i wv = _mm_loadu_si128((const __m128i *)(const void *)g);
        const __m128i wl = ${lo128}, wh = ${hi128}; /* rows 0, 1 and rows 2, 3 as int16 */
        const int16_t *c = col + (size_t)t * 8u;
        const __m128i c0 = _mm_loadu_si128((const __m128i *)(const void *)c); /* pair t, t+1: pixels 0-3 */
        const __m128i c1 = _mm_loadu_si128((const __m128i *)(const void *)(c + 8)); /* pixels 4-7 */
        const __m128i c2 = _mm_loadu_si128((const __m128i *)(const void *)(c + 16)); /* pair t+2, t+3 */
        const __m128i c3 = _mm_loadu_si128((const __m128i *)(const void *)(c + 24));
        __m128i p = _mm_shuffle_epi32(wl, 0x00);
        a00 = _mm_add_epi32(a00, _mm_madd_epi16(c0, p)); a01 = _mm_add_epi32(a01, _mm_madd_epi16(c1, p));
        p = _mm_shuffle_epi32(wl, 0x55);
        a00 = _mm_add_epi32(a00, _mm_madd_epi16(c2, p)); a01 = _mm_add_epi32(a01, _mm_madd_epi16(c3, p));
        p = _mm_shuffle_epi32(wl, 0xaa);
        a10 = _mm_add_epi32(a10, _mm_madd_epi16(c0, p)); a11 = _mm_add_epi32(a11, _mm_madd_epi16(c1, p));
        p = _mm_shuffle_epi32(wl, 0xff);
        a10 = _mm_add_epi32(a10, _mm_madd_epi16(c2, p)); a11 = _mm_add_epi32(a11, _mm_madd_epi16(c3, p));
        p = _mm_shuffle_epi32(wh, 0x00);
        a20 = _mm_add_epi32(a20, _mm_madd_epi16(c0, p)); a21 = _mm_add_epi32(a21, _mm_madd_epi16(c1, p));
        p = _mm_shuffle_epi32(wh, 0x55);
        a20 = _mm_add_epi32(a20, _mm_madd_epi16(c2, p)); a21 = _mm_add_epi32(a21, _mm_madd_epi16(c3, p));
        p = _mm_shuffle_epi32(wh, 0xaa);
        a30 = _mm_add_epi32(a30, _mm_madd_epi16(c0, p)); a31 = _mm_add_epi32(a31, _mm_madd_epi16(c1, p));
        p = _mm_shuffle_epi32(wh, 0xff);
        a30 = _mm_add_epi32(a30, _mm_madd_epi16(c2, p)); a31 = _mm_add_epi32(a31, _mm_madd_epi16(c3, p));
    }
    _mm_storeu_si128((__m128i *)(void *)acc, a00); _mm_storeu_si128((__m128i *)(void *)(acc + 4), a01);
    _mm_storeu_si128((__m128i *)(void *)(acc + 8), a10); _mm_storeu_si128((__m128i *)(void *)(acc + 12), a11);
    _mm_storeu_si128((__m128i *)(void *)(acc + 16), a20); _mm_storeu_si128((__m128i *)(void *)(acc + 20), a21);
    _mm_storeu_si128((__m128i *)(void *)(acc + 24), a30); _mm_storeu_si128((__m128i *)(void *)(acc + 28), a31);
#elif PFX_MVE
    if (((uintptr_t)(const void *)g & 3u) == 0u) { /* weights on a word (VLD4.32); else the plain loop */
        const int T16 = T4 - T4 % 16, R = T - T16; /* R < 16: the taps past the last 16 (blocks, then the tail) */
        int16_t wr[4][16]; /* those taps' weights as int16, per row its even taps then its odd ones, 0 past R */
        if (R > 0) {
            const uint32x4_t step = vmulq_n_u32(vidupq_n_u32(0u, 1), 16u); /* a row's words of blocks 0..3 */
            const mve_pred16_t p = vctp32q((uint32_t)(T4 - T16) / 4u);
            for (r = 0; r < 4; ++r) {
                const uint32x4_t wv = vldrwq_gather_offset_z_u32((const uint32_t *)(const void *)(g + 4 * T16 + 4 * r), step, p);
                vstrhq_s16(wr[r], PFX_qwb_${w}(wv));
                vstrhq_s16(wr[r] + 8, PFX_qwt_${w}(wv));
                for (u = 0; u < TL; ++u) {
                    const int v = T4 - T16 + u; /* its place in the last 16 */
                    wr[r][((v & 1) << 3) + (v >> 1)] = (int16_t)g[4 * T4 + r * TL + u];
                }
            }
        }
        for (j = 0; j < np; ++j) { /* four rows of one pixel, 16 taps at a time */
            const ${wt} *PFX_RESTRICT h = g;
            const int16_t *PFX_RESTRICT c = col + (size_t)j * 16u;
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (t = 0; t < T16; t += 16, h += 64, c += 128) {
                const uint32x4x4_t wq = vld4q_u32((const uint32_t *)(const void *)h); /* row r: wq.val[r] */
                const int16x8_t ce = vldrhq_s16(c), co = vldrhq_s16(c + 8);
                s0 = vmladavaq_s16(s0, ce, PFX_qwb_${w}(wq.val[0])); s0 = vmladavaq_s16(s0, co, PFX_qwt_${w}(wq.val[0]));
                s1 = vmladavaq_s16(s1, ce, PFX_qwb_${w}(wq.val[1])); s1 = vmladavaq_s16(s1, co, PFX_qwt_${w}(wq.val[1]));
                s2 = vmladavaq_s16(s2, ce, PFX_qwb_${w}(wq.val[2])); s2 = vmladavaq_s16(s2, co, PFX_qwt_${w}(wq.val[2]));
                s3 = vmladavaq_s16(s3, ce, PFX_qwb_${w}(wq.val[3])); s3 = vmladavaq_s16(s3, co, PFX_qwt_${w}(wq.val[3]));
            }
            if (R > 0) { /* col's padding past the taps is zero */
                const int16x8_t ce = vldrhq_s16(c), co = vldrhq_s16(c + 8);
                s0 = vmladavaq_s16(s0, ce, vldrhq_s16(wr[0])); s0 = vmladavaq_s16(s0, co, vldrhq_s16(wr[0] + 8));
                s1 = vmladavaq_s16(s1, ce, vldrhq_s16(wr[1])); s1 = vmladavaq_s16(s1, co, vldrhq_s16(wr[1] + 8));
                s2 = vmladavaq_s16(s2, ce, vldrhq_s16(wr[2])); s2 = vmladavaq_s16(s2, co, vldrhq_s16(wr[2] + 8));
                s3 = vmladavaq_s16(s3, ce, vldrhq_s16(wr[3])); s3 = vmladavaq_s16(s3, co, vldrhq_s16(wr[3] + 8));
            }
            acc[j] = s0; acc[8 + j] = s1; acc[16 + j] = s2; acc[24 + j] = s3;
        }
        return; /* the T % 4 last taps are in wr */
    }
    for (r = 0; r < 4; ++r)
        for (j = 0; j < np; ++j) {
            int32_t s0 = 0;
            for (t = 0; t < T4; ++t) s0 += (int32_t)g[(t >> 2) * 16 + 4 * r + (t & 3)] * (int32_t)col[PFX_COL(t, j)];
            acc[8 * r + j] = s0;
        }
    g += 4 * T4;
#elif PFX_DSP
/* rows r, r + 1 (weight words w0, w1) x pixels j, j + 1 (tap pairs x0, x1 and y0, y1): 8 SMLAD */
#define PFX_TILE2X2() do { \
        e = ${we}e(w0); o = ${we}o(w0); \
        s00 = __smlad(e, x0, s00); s00 = __smlad(o, x1, s00); \
        s01 = __smlad(e, y0, s01); s01 = __smlad(o, y1, s01); \
        e = ${we}e(w1); o = ${we}o(w1); \
        s10 = __smlad(e, x0, s10); s10 = __smlad(o, x1, s10); \
        s11 = __smlad(e, y0, s11); s11 = __smlad(o, y1, s11); \
    } while (0)
    {
        uint32_t wl[4] = {0u, 0u, 0u, 0u}; /* each row's T % 4 last weights as one word, zeros above */
        for (r = 0; r < 4; ++r)
            for (u = 0; u < TL; ++u) wl[r] |= (uint32_t)(uint8_t)g[4 * T4 + r * TL + u] << (8 * u);
        for (j = 0; j < np; j += 2) /* two rows x two pixels: 8 SMLAD per 8 weight bytes (one LDRD) */
            for (r = 0; r < 4; r += 2) {
                const ${wt} *PFX_RESTRICT h = g + 4 * r;
                /* pixel j; pixel j + 1 at c + 4 (the column is on a word: an arena buffer) */
                const int16_t *PFX_RESTRICT c = col + (size_t)j * 4u;
                int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
                uint32_t w0, w1;
                for (t = 0; t < T4; t += 4, h += 16, c += 32) {
                    int32_t x0, x1, y0, y1, e, o; /* pixel j's (t, t+2), (t+1, t+3); pixel j + 1's */
                    PFX_load16(c, &x0, &x1, &y0, &y1);
                    w0 = PFX_load4(h);
                    w1 = PFX_load4(h + 4);
                    PFX_TILE2X2();
                }
                if (TL > 0) { /* the column is zero past the taps */
                    const int32_t x0 = (int32_t)PFX_load4(c), x1 = (int32_t)PFX_load4(c + 2);
                    const int32_t y0 = (int32_t)PFX_load4(c + 4), y1 = (int32_t)PFX_load4(c + 6);
                    int32_t e, o;
                    w0 = wl[r];
                    w1 = wl[r + 1];
                    PFX_TILE2X2();
                }
                acc[8 * r + j] = s00; acc[8 * r + j + 1] = s01; acc[8 * r + 8 + j] = s10; acc[8 * r + 9 + j] = s11;
            }
        return;
    }
#undef PFX_TILE2X2
#else
    for (j = 0; j < np; ++j) { /* four rows of one pixel, the sums in registers (Cortex-M0/M3) */
        const ${wt} *PFX_RESTRICT h = g;
        const int16_t *PFX_RESTRICT c = col + (size_t)j * 2u;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (t = 0; t < T4; t += 4, h += 16, c += 32) {
            const int32_t x0 = c[0], x1 = c[1], x2 = c[16], x3 = c[17];
            s0 += x0 * (int32_t)h[0] + x1 * (int32_t)h[1] + x2 * (int32_t)h[2] + x3 * (int32_t)h[3];
            s1 += x0 * (int32_t)h[4] + x1 * (int32_t)h[5] + x2 * (int32_t)h[6] + x3 * (int32_t)h[7];
            s2 += x0 * (int32_t)h[8] + x1 * (int32_t)h[9] + x2 * (int32_t)h[10] + x3 * (int32_t)h[11];
            s3 += x0 * (int32_t)h[12] + x1 * (int32_t)h[13] + x2 * (int32_t)h[14] + x3 * (int32_t)h[15];
        }
        acc[j] = s0; acc[8 + j] = s1; acc[16 + j] = s2; acc[24 + j] = s3;
    }
    g += 4 * T4;
#endif
    for (r = 0; r < 4; ++r) /* the T % 4 last taps of each row */
        for (u = 0; u < TL; ++u) {
            const int32_t wv = (int32_t)g[r * TL + u];
            for (j = 0; j < np; ++j) acc[8 * r + j] += wv * (int32_t)col[PFX_COL(T4 + u, j)];
        }
}

/* acc[j]: one plain row of T weights against the 8 pixels of col */
static void PFX_qtile1_${w}(const int16_t *PFX_RESTRICT col, const ${wt} *PFX_RESTRICT g, int T, int np, int32_t *PFX_RESTRICT acc)
{
    int t, j;
    (void)np; /* (the vector paths take all 8 pixels) */
#if PFX_SSE2
    __m128i a0 = _mm_setzero_si128(), a1 = a0, b0 = a0, b1 = a0;
    for (t = 0; t + 4 <= T; t += 4) { /* two tap pairs, two sums each */
        const int16_t *c = col + (size_t)t * 8u;
        const __m128i p = _mm_set1_epi32((int32_t)((uint32_t)(uint16_t)(int16_t)g[t] | ((uint32_t)(uint16_t)(int16_t)g[t + 1] << 16)));
        const __m128i q = _mm_set1_epi32((int32_t)((uint32_t)(uint16_t)(int16_t)g[t + 2] | ((uint32_t)(uint16_t)(int16_t)g[t + 3] << 16)));
        a0 = _mm_add_epi32(a0, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(const void *)c), p));
        a1 = _mm_add_epi32(a1, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(const void *)(c + 8)), p));
        b0 = _mm_add_epi32(b0, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(const void *)(c + 16)), q));
        b1 = _mm_add_epi32(b1, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(const void *)(c + 24)), q));
    }
    _mm_storeu_si128((__m128i *)(void *)acc, _mm_add_epi32(a0, b0));
    _mm_storeu_si128((__m128i *)(void *)(acc + 4), _mm_add_epi32(a1, b1));
    for (; t < T; ++t) {
        const int32_t wv = (int32_t)g[t];
        for (j = 0; j < 8; ++j) acc[j] += wv * (int32_t)col[PFX_COL(t, j)];
    }
#else
    for (j = 0; j < np; ++j) { /* one pixel at a time, its sum in a register */
        int32_t s0 = 0;
        for (t = 0; t < T; ++t) s0 += (int32_t)g[t] * (int32_t)col[PFX_COL(t, j)];
        acc[j] = s0;
    }
#endif
}

#if PFX_MVE
/* (with byte columns in every convolution of a unit, the int16 tiles go unused) */
static void PFX_qtile4_${w}(const int16_t *PFX_RESTRICT col, const ${wt} *PFX_RESTRICT g, int T, int np, int32_t *PFX_RESTRICT acc)
    __attribute__((unused));
static void PFX_qtile1_${w}(const int16_t *PFX_RESTRICT col, const ${wt} *PFX_RESTRICT g, int T, int np, int32_t *PFX_RESTRICT acc)
    __attribute__((unused));

/* acc[8 r + j], r < 4: as PFX_qtile${w}_4, against a byte column of codes of the weights' type (PFX_COL8:
   each pixel's 16 taps of each 16 in order), so one VMLADAV multiplies a row's 16 weights by 16 codes */
static inline void PFX_qtile${w}_4b(const ${wt} *PFX_RESTRICT col, const ${wt} *PFX_RESTRICT g, int T, int np, int32_t *PFX_RESTRICT acc)
{
    const int T4 = T - T % 4, TL = T % 4, T16 = T4 - T4 % 16, R = T - T16;
    int t, r, j, u;
    ${wt} wr[4][16]; /* the R < 16 taps past the last 16 (blocks, then the tail): a row's weights, 0 past R */
    if (((uintptr_t)(const void *)g & 3u) != 0u) { /* weights not on a word: plain */
        for (r = 0; r < 4; ++r)
            for (j = 0; j < np; ++j) {
                int32_t s0 = 0;
                for (t = 0; t < T4; ++t) s0 += (int32_t)g[(t >> 2) * 16 + 4 * r + (t & 3)] * (int32_t)col[PFX_COL8(t, j)];
                for (u = 0; u < TL; ++u) s0 += (int32_t)g[4 * T4 + r * TL + u] * (int32_t)col[PFX_COL8(T4 + u, j)];
                acc[8 * r + j] = s0;
            }
        return;
    }
    if (R > 0) {
        const uint32x4_t step = vmulq_n_u32(vidupq_n_u32(0u, 1), 16u); /* a row's words of blocks 0..3 */
        const mve_pred16_t p = vctp32q((uint32_t)(T4 - T16) / 4u);
        for (r = 0; r < 4; ++r) {
            const uint32x4_t wv = vldrwq_gather_offset_z_u32((const uint32_t *)(const void *)(g + 4 * T16 + 4 * r), step, p);
            vstrbq_${mvs}(wr[r], vreinterpretq_${mvs}_u32(wv));
            for (u = 0; u < TL; ++u) wr[r][T4 - T16 + u] = g[4 * T4 + r * TL + u];
        }
    }
    for (j = 0; j < np; j += 2) { /* four rows of two pixels, 16 taps at a time: one VLD4 serves both */
        const ${wt} *PFX_RESTRICT h = g;
        const ${wt} *PFX_RESTRICT c = col + (size_t)j * 16u; /* pixel j; pixel j + 1 at c + 16 */
        ${mvat} s0 = 0, s1 = 0, s2 = 0, s3 = 0, u0 = 0, u1 = 0, u2 = 0, u3 = 0;
        for (t = 0; t < T16; t += 16, h += 64, c += 128) {
            const uint32x4x4_t wq = vld4q_u32((const uint32_t *)(const void *)h); /* row r: wq.val[r] */
            const ${mvvt} cv = vldrbq_${mvs}(c), dv = vldrbq_${mvs}(c + 16);
            s0 = vmladavaq_${mvs}(s0, cv, vreinterpretq_${mvs}_u32(wq.val[0]));
            u0 = vmladavaq_${mvs}(u0, dv, vreinterpretq_${mvs}_u32(wq.val[0]));
            s1 = vmladavaq_${mvs}(s1, cv, vreinterpretq_${mvs}_u32(wq.val[1]));
            u1 = vmladavaq_${mvs}(u1, dv, vreinterpretq_${mvs}_u32(wq.val[1]));
            s2 = vmladavaq_${mvs}(s2, cv, vreinterpretq_${mvs}_u32(wq.val[2]));
            u2 = vmladavaq_${mvs}(u2, dv, vreinterpretq_${mvs}_u32(wq.val[2]));
            s3 = vmladavaq_${mvs}(s3, cv, vreinterpretq_${mvs}_u32(wq.val[3]));
            u3 = vmladavaq_${mvs}(u3, dv, vreinterpretq_${mvs}_u32(wq.val[3]));
        }
        if (R > 0) { /* the column's padding past the taps is zero */
            const ${mvvt} cv = vldrbq_${mvs}(c), dv = vldrbq_${mvs}(c + 16);
            ${mvvt} wv = vldrbq_${mvs}(wr[0]);
            s0 = vmladavaq_${mvs}(s0, cv, wv); u0 = vmladavaq_${mvs}(u0, dv, wv);
            wv = vldrbq_${mvs}(wr[1]);
            s1 = vmladavaq_${mvs}(s1, cv, wv); u1 = vmladavaq_${mvs}(u1, dv, wv);
            wv = vldrbq_${mvs}(wr[2]);
            s2 = vmladavaq_${mvs}(s2, cv, wv); u2 = vmladavaq_${mvs}(u2, dv, wv);
            wv = vldrbq_${mvs}(wr[3]);
            s3 = vmladavaq_${mvs}(s3, cv, wv); u3 = vmladavaq_${mvs}(u3, dv, wv);
        }
        acc[j] = (int32_t)s0; acc[8 + j] = (int32_t)s1; acc[16 + j] = (int32_t)s2; acc[24 + j] = (int32_t)s3;
        acc[j + 1] = (int32_t)u0; acc[9 + j] = (int32_t)u1; acc[17 + j] = (int32_t)u2; acc[25 + j] = (int32_t)u3;
    }
}

/* acc[j]: one plain row of T weights against the 8 pixels of a byte column */
static inline void PFX_qtile${w}_1b(const ${wt} *PFX_RESTRICT col, const ${wt} *PFX_RESTRICT g, int T, int np, int32_t *PFX_RESTRICT acc)
{
    int t, j;
    for (j = 0; j < np; ++j) {
        int32_t s0 = 0;
        for (t = 0; t < T; ++t) s0 += (int32_t)g[t] * (int32_t)col[PFX_COL8(t, j)];
        acc[j] = s0;
    }
}
#endif
