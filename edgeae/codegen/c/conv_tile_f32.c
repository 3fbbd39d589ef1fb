/* The inner product of the fp32 convolutions: a block of 8 output pixels. The caller copies
   their inputs to col (for each tap t, the 8 pixels' inputs at col[8t .. 8t+7], 0 where a tap
   is padding or a pixel is past the end), and a tile computes R output channels of the block:
   out[r][j] = b[r] + sum_t w[t * ws + r] * col[8t + j], terms in the order t = 0, 1, 2, ... (a
   lone channel, PFX_tile1_f32, in two sums, even and odd taps, added at the end).
   Where the compiler has GNU C vectors (gcc, clang) the 8 lanes of a channel are one vector
   (two SSE registers, one AVX register), so a tap is one column load and R multiply-adds by a
   broadcast weight, and R independent sums hide the adder's latency; elsewhere (Cortex-M,
   other compilers) the same sums run as plain loops. Define PFX_NO_VECTOR for those. */
#include <string.h>
#if defined(__GNUC__)
#define PFX_UNROLL8 _Pragma("GCC unroll 8") /* the 8 lanes of a block as straight code */
#else
#define PFX_UNROLL8
#endif
#if defined(__GNUC__) && !defined(__thumb__) && !defined(__arm__) && !defined(PFX_NO_VECTOR)
#define PFX_VEC 1
typedef float PFX_f8 __attribute__((vector_size(32)));
#else
#define PFX_VEC 0
#endif

#if PFX_VEC && !defined(__AVX__)
/* 16-byte vectors (SSE, NEON): two per channel; gcc keeps wider generic vectors in memory there */
typedef float PFX_f4 __attribute__((vector_size(16)));
#endif

#if PFX_VEC && defined(__AVX__) && defined(__FMA__)
#define PFX_TILE8 1
/* Hosts with FMA (-march=native builds, which contract the multiply-adds): 8 output channels of
   the block (out[r][j], r < 8), 8 independent sums, enough to hide the FMA's latency (4 sums
   wait on it); each sum has the tile4 one's terms in its order. Without FMA tile4 is faster. */
static void PFX_tile8_f32(const float *PFX_RESTRICT col, const float *PFX_RESTRICT w, int ws,
                          const float *PFX_RESTRICT b, int T, float *PFX_RESTRICT out)
{
    PFX_f8 a0, a1, a2, a3, a4, a5, a6, a7, xv;
    const PFX_f8 z = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    int t;
    a0 = z + b[0]; a1 = z + b[1]; a2 = z + b[2]; a3 = z + b[3];
    a4 = z + b[4]; a5 = z + b[5]; a6 = z + b[6]; a7 = z + b[7];
    for (t = 0; t < T; ++t, w += ws) {
        memcpy(&xv, col + (size_t)t * 8u, sizeof xv);
        a0 += xv * w[0]; a1 += xv * w[1]; a2 += xv * w[2]; a3 += xv * w[3];
        a4 += xv * w[4]; a5 += xv * w[5]; a6 += xv * w[6]; a7 += xv * w[7];
    }
    memcpy(out, &a0, sizeof a0); memcpy(out + 8, &a1, sizeof a1);
    memcpy(out + 16, &a2, sizeof a2); memcpy(out + 24, &a3, sizeof a3);
    memcpy(out + 32, &a4, sizeof a4); memcpy(out + 40, &a5, sizeof a5);
    memcpy(out + 48, &a6, sizeof a6); memcpy(out + 56, &a7, sizeof a7);
}
#else
#define PFX_TILE8 0
#endif

static void PFX_tile4_f32(const float *PFX_RESTRICT col, const float *PFX_RESTRICT w, int ws,
                          const float *PFX_RESTRICT b, int T, float *PFX_RESTRICT out)
{
    int t;
#if PFX_VEC && defined(__AVX__)
    PFX_f8 a0, a1, a2, a3, xv;
    const PFX_f8 z = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    a0 = z + b[0]; a1 = z + b[1]; a2 = z + b[2]; a3 = z + b[3];
    for (t = 0; t < T; ++t, w += ws) {
        memcpy(&xv, col + (size_t)t * 8u, sizeof xv);
        a0 += xv * w[0];
        a1 += xv * w[1];
        a2 += xv * w[2];
        a3 += xv * w[3];
    }
    memcpy(out, &a0, sizeof a0);
    memcpy(out + 8, &a1, sizeof a1);
    memcpy(out + 16, &a2, sizeof a2);
    memcpy(out + 24, &a3, sizeof a3);
#elif PFX_VEC
    PFX_f4 a0, a1, a2, a3, a4, a5, a6, a7, xl, xh;
    const PFX_f4 z = {0.0f, 0.0f, 0.0f, 0.0f};
    a0 = a1 = z + b[0]; a2 = a3 = z + b[1]; a4 = a5 = z + b[2]; a6 = a7 = z + b[3];
    for (t = 0; t < T; ++t, w += ws) {
        memcpy(&xl, col + (size_t)t * 8u, sizeof xl);
        memcpy(&xh, col + (size_t)t * 8u + 4u, sizeof xh);
        a0 += xl * w[0]; a1 += xh * w[0];
        a2 += xl * w[1]; a3 += xh * w[1];
        a4 += xl * w[2]; a5 += xh * w[2];
        a6 += xl * w[3]; a7 += xh * w[3];
    }
    memcpy(out, &a0, sizeof a0); memcpy(out + 4, &a1, sizeof a1);
    memcpy(out + 8, &a2, sizeof a2); memcpy(out + 12, &a3, sizeof a3);
    memcpy(out + 16, &a4, sizeof a4); memcpy(out + 20, &a5, sizeof a5);
    memcpy(out + 24, &a6, sizeof a6); memcpy(out + 28, &a7, sizeof a7);
#else
    int r;
    for (r = 0; r < 4; ++r) { /* the 8 sums in registers (a Cortex-M4F's FPU has 32) */
        const float *PFX_RESTRICT wr = w + r;
        float a0 = b[r], a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (t = 0; t < T; ++t) {
            const float wv = wr[(size_t)t * (size_t)ws];
            const float *PFX_RESTRICT c = col + (size_t)t * 8u;
            a0 += c[0] * wv; a1 += c[1] * wv; a2 += c[2] * wv; a3 += c[3] * wv;
            a4 += c[4] * wv; a5 += c[5] * wv; a6 += c[6] * wv; a7 += c[7] * wv;
        }
        out[r * 8] = a0; out[r * 8 + 1] = a1; out[r * 8 + 2] = a2; out[r * 8 + 3] = a3;
        out[r * 8 + 4] = a4; out[r * 8 + 5] = a5; out[r * 8 + 6] = a6; out[r * 8 + 7] = a7;
    }
#endif
}

static void PFX_tile1_f32(const float *PFX_RESTRICT col, const float *PFX_RESTRICT w, int ws,
                          float b, int T, float *PFX_RESTRICT out)
{
    int t;
#if PFX_VEC && defined(__AVX__)
    PFX_f8 a0, a1, xv;
    const PFX_f8 z = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    a0 = z + b;
    a1 = z;
    for (t = 0; t + 2 <= T; t += 2, w += 2 * ws) { /* two sums in turn: taps 0, 2, 4 ... and 1, 3, 5 ... */
        memcpy(&xv, col + (size_t)t * 8u, sizeof xv);
        a0 += xv * w[0];
        memcpy(&xv, col + (size_t)t * 8u + 8u, sizeof xv);
        a1 += xv * w[ws];
    }
    if (t < T) {
        memcpy(&xv, col + (size_t)t * 8u, sizeof xv);
        a0 += xv * w[0];
    }
    a0 += a1;
    memcpy(out, &a0, sizeof a0);
#elif PFX_VEC
    PFX_f4 a0, a1, a2, a3, xv;
    const PFX_f4 z = {0.0f, 0.0f, 0.0f, 0.0f};
    a0 = a1 = z + b;
    a2 = a3 = z;
    for (t = 0; t + 2 <= T; t += 2, w += 2 * ws) { /* two sums in turn: taps 0, 2, 4 ... and 1, 3, 5 ... */
        memcpy(&xv, col + (size_t)t * 8u, sizeof xv); a0 += xv * w[0];
        memcpy(&xv, col + (size_t)t * 8u + 4u, sizeof xv); a1 += xv * w[0];
        memcpy(&xv, col + (size_t)t * 8u + 8u, sizeof xv); a2 += xv * w[ws];
        memcpy(&xv, col + (size_t)t * 8u + 12u, sizeof xv); a3 += xv * w[ws];
    }
    if (t < T) {
        memcpy(&xv, col + (size_t)t * 8u, sizeof xv); a0 += xv * w[0];
        memcpy(&xv, col + (size_t)t * 8u + 4u, sizeof xv); a1 += xv * w[0];
    }
    a0 += a2;
    a1 += a3;
    memcpy(out, &a0, sizeof a0);
    memcpy(out + 4, &a1, sizeof a1);
#else
    float a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b; /* in registers */
    for (t = 0; t < T; ++t, w += ws) {
        const float wv = w[0];
        const float *PFX_RESTRICT c = col + (size_t)t * 8u;
        a0 += c[0] * wv; a1 += c[1] * wv; a2 += c[2] * wv; a3 += c[3] * wv;
        a4 += c[4] * wv; a5 += c[5] * wv; a6 += c[6] * wv; a7 += c[7] * wv;
    }
    out[0] = a0; out[1] = a1; out[2] = a2; out[3] = a3; out[4] = a4; out[5] = a5; out[6] = a6; out[7] = a7;
#endif
}
