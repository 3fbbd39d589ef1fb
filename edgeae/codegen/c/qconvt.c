/* int8 2-D transposed convolution, NCHW, weight (C, M/G, KH, KW), scattered: input pixel
   (iy, ix) adds (x - xzp) * w to output (iy*SH - PT + ky*DH, ix*SW - PL + kx*DW);
   then y = clamp(yzp + requant(bias[m] + sum (x - xzp) * (w - wzp[m]))). Padded taps add nothing. */
PFX_KERNEL void ${name}(const ${xt} *PFX_RESTRICT x, const ${wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift, ${yt} *PFX_RESTRICT y,
        int32_t *PFX_RESTRICT acc,
        int C, int H, int W, int M, int OH, int OW, int KH, int KW,
        int SH, int SW, int PT, int PL, int DH, int DW, int G, int32_t xzp, int32_t yzp, int32_t lo_q, int32_t hi_q)
{
    const int cg = C / G, mg = M / G;
    int m, oy, ox, ky, kx, i;
    (void)wzp;
    for (m = 0; m < M; ++m) {
        ${zw}
        ${yt} *PFX_RESTRICT ym = y + (size_t)m * (size_t)(OH * OW);
        for (i = 0; i < OH * OW; ++i) acc[i] = bias[m];
        {
        const int g = m / mg, mi = m % mg;
        int c;
        for (c = g * cg; c < (g + 1) * cg; ++c) {
            const ${xt} *xc = x + (size_t)c * (size_t)(H * W);
            for (ky = 0; ky < KH; ++ky) {
                for (kx = 0; kx < KW; ++kx) {
                    const ${wt} wq = w[((size_t)c * (size_t)mg + (size_t)mi) * (size_t)(KH * KW) + (size_t)(ky * KW + kx)];
                    const int32_t wv = ${wterm};
                    const int dx = kx * DW - PL;
                    int lo = 0, hi = W;
                while (lo < W && lo * SW + dx < 0) ++lo;
                while (hi > lo && (hi - 1) * SW + dx >= OW) --hi;
                for (oy = 0; oy < H; ++oy) { /* oy walks the input rows here */
                    const int ty = oy * SH - PT + ky * DH;
                    const ${xt} *xr;
                    int32_t *ar;
                    if (ty < 0 || ty >= OH) continue;
                    xr = xc + oy * W;
                    ar = acc + ty * OW + dx;
                    for (ox = lo; ox < hi; ++ox) ar[ox * SW] += ((int32_t)xr[ox] - xzp) * wv;
                }
                }
            }
        }
        }
        for (i = 0; i < OH * OW; ++i) {
            const int32_t v = yzp + PFX_requant(acc[i], mult[m], shift[m]);
            ym[i] = (${yt})(v < lo_q ? lo_q : (v > hi_q ? hi_q : v));
        }
    }
}
