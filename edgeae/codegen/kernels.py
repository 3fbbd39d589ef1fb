"""C99 kernel templates. ``PFX`` becomes the graph's symbol prefix; types are filled per use.

Every kernel is ``static`` (one translation unit per graph, nothing leaks into the link),
loops only, no allocation, no recursion. Sizes are arguments so one kernel text serves all
layers (``PFX_KERNEL``, ``static`` unless the user defines it otherwise). ``PFX_RESTRICT``
pointers let the compiler vectorize the output loops without run-time alias checks.
The fp32 kernels are here; the int8 ones in :mod:`edgeae.codegen.kernels_int8`.
"""

from __future__ import annotations

from edgeae.codegen.kernels_int8 import DSP, INT8_REQUANT, qconv, qconvt, qdense, qrows

__all__ = ["DSP", "FP32", "INT8_REQUANT", "qconv", "qconvt", "qdense", "qrows"]

FP32 = {
    "dense_f32": r"""
/* y[n] = b[n] + sum_k x[k] * w[k][n]; w is stored (K, N) so the inner loops run over outputs.
   Inputs are summed in blocks of 32 into t[] (N floats of the arena) and each block is added
   to y[]: the rounding error grows with 32 + K/32 terms instead of K, which keeps long sums
   (K = 1568 in an MNIST conv head) within 1e-5 of ONNX Runtime. Four inputs per pass keep
   t[n] in a register; the additions stay in the order k = 0, 1, 2, ... */
PFX_KERNEL void PFX_dense_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                              const float *PFX_RESTRICT b, float *PFX_RESTRICT y, float *PFX_RESTRICT t,
                              int K, int N)
{
    int k, n, k0;
    for (n = 0; n < N; ++n) y[n] = b[n];
    for (k0 = 0; k0 < K; k0 += 32) {
        const int ke = k0 + 32 < K ? k0 + 32 : K;
        const int k4 = k0 + (ke - k0) / 4 * 4;
        for (n = 0; n < N; ++n) t[n] = 0.0f;
        for (k = k0; k < k4; k += 4) {
            const float x0 = x[k], x1 = x[k + 1], x2 = x[k + 2], x3 = x[k + 3];
            const float *PFX_RESTRICT w0 = w + (size_t)k * (size_t)N;
            const float *PFX_RESTRICT w1 = w0 + N;
            const float *PFX_RESTRICT w2 = w1 + N;
            const float *PFX_RESTRICT w3 = w2 + N;
            for (n = 0; n < N; ++n) {
                float acc = t[n];
                acc += x0 * w0[n];
                acc += x1 * w1[n];
                acc += x2 * w2[n];
                acc += x3 * w3[n];
                t[n] = acc;
            }
        }
        for (k = k4; k < ke; ++k) {
            const float xk = x[k];
            const float *PFX_RESTRICT wk = w + (size_t)k * (size_t)N;
            for (n = 0; n < N; ++n) t[n] += xk * wk[n];
        }
        for (n = 0; n < N; ++n) y[n] += t[n];
    }
}
""",
    "conv_f32": r"""
/* 2-D convolution, NCHW; the weight is stored per group as (C/G*KH*KW taps, M/G outputs). For
   each group and output pixel the input patch is copied to col (taps floats of the arena,
   padding 0) and the outputs go eight at a time, their sums in eight lanes that a compiler
   keeps in vector registers: a tap is one broadcast and eight multiply-adds over contiguous
   weights. Every output still receives b, then its terms in the order c, ky, kx (a padded
   tap adds 0 * w). */
PFX_KERNEL void PFX_conv_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                             const float *PFX_RESTRICT b, float *PFX_RESTRICT y, float *PFX_RESTRICT col,
                             int C, int H, int W, int M, int OH, int OW, int KH, int KW,
                             int SH, int SW, int PT, int PL, int DH, int DW, int G)
{
    const int cg = C / G, mg = M / G, taps = cg * KH * KW, P = OH * OW;
    int gi, oy, ox, c, ky, kx, m, t, j;
    for (gi = 0; gi < G; ++gi) {
        const float *PFX_RESTRICT wg = w + (size_t)gi * (size_t)taps * (size_t)mg;
        const float *PFX_RESTRICT bg = b + (size_t)gi * (size_t)mg;
        float *PFX_RESTRICT yg = y + (size_t)gi * (size_t)mg * (size_t)P;
        for (oy = 0; oy < OH; ++oy) {
            for (ox = 0; ox < OW; ++ox) {
                const size_t p = (size_t)(oy * OW + ox);
                t = 0;
                for (c = 0; c < cg; ++c) {
                    const float *xc = x + (size_t)(gi * cg + c) * (size_t)(H * W);
                    for (ky = 0; ky < KH; ++ky) {
                        const int iy = oy * SH - PT + ky * DH;
                        for (kx = 0; kx < KW; ++kx) {
                            const int ix = ox * SW - PL + kx * DW;
                            col[t++] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? xc[iy * W + ix] : 0.0f;
                        }
                    }
                }
                for (m = 0; m + 8 <= mg; m += 8) {
                    float acc[8];
                    for (j = 0; j < 8; ++j) acc[j] = bg[m + j];
                    for (t = 0; t < taps; ++t) {
                        const float xv = col[t];
                        const float *PFX_RESTRICT wr = wg + (size_t)t * (size_t)mg + (size_t)m;
#if !defined(__thumb__) /* hosts: one vector op, which -O3 must not unroll before vectorizing */
#pragma GCC unroll 1
#endif
                        for (j = 0; j < 8; ++j) acc[j] += xv * wr[j];
                    }
                    for (j = 0; j < 8; ++j) yg[(size_t)(m + j) * (size_t)P + p] = acc[j];
                }
                for (; m < mg; ++m) {
                    float acc = bg[m];
                    for (t = 0; t < taps; ++t) acc += col[t] * wg[(size_t)t * (size_t)mg + (size_t)m];
                    yg[(size_t)m * (size_t)P + p] = acc;
                }
            }
        }
    }
}
""",
    "convt_f32": r"""
/* 2-D transposed convolution, NCHW, weight (C, M/G, KH, KW), scattered: input pixel (iy, ix)
   adds w * x to output (iy*SH - PT + ky*DH, ix*SW - PL + kx*DW). Loops run m, c, ky, kx, so
   every output still receives its terms in the order c, ky, kx. */
PFX_KERNEL void PFX_convt_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                              const float *PFX_RESTRICT b, float *PFX_RESTRICT y,
                              int C, int H, int W, int M, int OH, int OW, int KH, int KW,
                              int SH, int SW, int PT, int PL, int DH, int DW, int G)
{
    const int cg = C / G, mg = M / G;
    int m, iy, ix, c, ky, kx;
    for (m = 0; m < M; ++m) {
        const int g = m / mg, mi = m % mg;
        float *PFX_RESTRICT ym = y + (size_t)m * (size_t)(OH * OW);
        for (iy = 0; iy < OH * OW; ++iy) ym[iy] = b[m];
        for (c = g * cg; c < (g + 1) * cg; ++c) {
            const float *xc = x + (size_t)c * (size_t)(H * W);
            const float *wc = w + ((size_t)c * (size_t)mg + (size_t)mi) * (size_t)(KH * KW);
            for (ky = 0; ky < KH; ++ky) {
                for (kx = 0; kx < KW; ++kx) {
                    const float wv = wc[ky * KW + kx];
                    const int dx = kx * DW - PL;
                    int lo = 0, hi = W;
                    while (lo < W && lo * SW + dx < 0) ++lo;
                    while (hi > lo && (hi - 1) * SW + dx >= OW) --hi;
                    for (iy = 0; iy < H; ++iy) {
                        const int oy = iy * SH - PT + ky * DH;
                        const float *xr;
                        float *yr;
                        if (oy < 0 || oy >= OH) continue;
                        xr = xc + iy * W;
                        yr = ym + oy * OW + dx;
                        for (ix = lo; ix < hi; ++ix) yr[ix * SW] += wv * xr[ix];
                    }
                }
            }
        }
    }
}
""",
}
