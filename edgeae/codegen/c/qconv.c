/* int8 2-D convolution, NCHW, weight (M, C/G, KH, KW) stored rows-by-four per group: for each
   group and output pixel, the pixel's input patch is copied to col (C/G*KH*KW codes of the
   arena; padding = the input zero point xzp) and the group's M/G outputs are computed by
   ${rows} as a dense layer (input zero point folded into the bias at generation). */
PFX_KERNEL void ${name}(const ${xt} *PFX_RESTRICT x, const ${wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift, ${yt} *PFX_RESTRICT y,
        ${xt} *PFX_RESTRICT col,
        int C, int H, int W, int M, int OH, int OW, int KH, int KW,
        int SH, int SW, int PT, int PL, int DH, int DW, int G, int32_t xzp, int32_t yzp, int32_t lo_q, int32_t hi_q)
{
    const int cg = C / G, mg = M / G, taps = cg * KH * KW;
    int gi, oy, ox, c, ky, kx;
    for (gi = 0; gi < G; ++gi) {
        const ${wt} *PFX_RESTRICT wg = w + (size_t)gi * (size_t)mg * (size_t)taps;
        for (oy = 0; oy < OH; ++oy) {
            for (ox = 0; ox < OW; ++ox) {
                int32_t sx = 0;
                int t = 0;
                for (c = 0; c < cg; ++c) {
                    const ${xt} *xc = x + (size_t)(gi * cg + c) * (size_t)(H * W);
                    for (ky = 0; ky < KH; ++ky) {
                        const int iy = oy * SH - PT + ky * DH;
                        for (kx = 0; kx < KW; ++kx) {
                            const int ix = ox * SW - PL + kx * DW;
                            const ${xt} v = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? xc[iy * W + ix] : (${xt})xzp;
                            col[t++] = v;
                            sx += (int32_t)v;
                        }
                    }
                }
                ${rows}(col, wg, bias + (size_t)gi * (size_t)mg, ${zoff}, mult + (size_t)gi * (size_t)mg,
                    shift + (size_t)gi * (size_t)mg, sx, y + (size_t)gi * (size_t)mg * (size_t)(OH * OW) + (size_t)(oy * OW + ox),
                    (size_t)(OH * OW), taps, mg, yzp, lo_q, hi_q);
            }
        }
    }
}
