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
