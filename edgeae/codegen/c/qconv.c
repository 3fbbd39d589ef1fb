/* int8 2-D convolution, NCHW, weight (M, C/G, KH, KW) stored rows-by-four per group. The output
   pixels go eight at a time (a block, row-major across rows): their input patches are copied
   to col as int16 codes (C/G*KH*KW taps each, padding = the input zero point xzp, whose
   products cancel in the bias, folded at generation; see ${tile4}), and every four output
   channels of the group are one tile of int32 sums, requantized by ${store}. */
PFX_KERNEL void ${name}(const ${xt} *PFX_RESTRICT x, const ${wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift, ${yt} *PFX_RESTRICT y,
        int16_t *PFX_RESTRICT col,
        int C, int H, int W, int M, int OH, int OW, int KH, int KW,
        int SH, int SW, int PT, int PL, int DH, int DW, int G, int32_t xzp, int32_t yzp, int32_t lo_q, int32_t hi_q)
{
    const int cg = C / G, mg = M / G, taps = cg * KH * KW, T4 = (taps + 3) / 4 * 4, P = OH * OW;
    int32_t acc[32], sx[8];
    int at[8];
    int gi, p0, j, t, c, ky, kx, m;
    for (gi = 0; gi < G; ++gi) {
        const ${wt} *PFX_RESTRICT wg = w + (size_t)gi * (size_t)mg * (size_t)taps;
        const ${xt} *PFX_RESTRICT xg = x + (size_t)gi * (size_t)cg * (size_t)(H * W);
        for (p0 = 0; p0 < P; p0 += 8) {
            const int np = P - p0 < 8 ? P - p0 : 8;
            for (j = 0; j < 8; ++j) { /* pixel p0 + j's patch */
                const int oy = (p0 + j) / OW, ox = (p0 + j) % OW;
                const int iy0 = oy * SH - PT, ix0 = ox * SW - PL;
                int32_t s = 0;
                at[j] = p0 + j;
                t = 0;
                if (j >= np) {
                    for (; t < taps; ++t) col[PFX_COL(t, j)] = 0;
                } else if (iy0 >= 0 && iy0 + (KH - 1) * DH < H && ix0 >= 0 && ix0 + (KW - 1) * DW < W) {
                    for (c = 0; c < cg; ++c) { /* inside the image: no tests */
                        const ${xt} *xc = xg + (size_t)c * (size_t)(H * W) + iy0 * W + ix0;
                        for (ky = 0; ky < KH; ++ky)
                            for (kx = 0; kx < KW; ++kx, ++t) {
                                const int16_t v = (int16_t)xc[ky * DH * W + kx * DW];
                                col[PFX_COL(t, j)] = v;
                                s += v;
                            }
                    }
                } else {
                    for (c = 0; c < cg; ++c) {
                        const ${xt} *xc = xg + (size_t)c * (size_t)(H * W);
                        for (ky = 0; ky < KH; ++ky) {
                            const int iy = iy0 + ky * DH;
                            for (kx = 0; kx < KW; ++kx, ++t) {
                                const int ix = ix0 + kx * DW;
                                const int16_t v = (int16_t)((iy >= 0 && iy < H && ix >= 0 && ix < W) ? (int32_t)xc[iy * W + ix] : xzp);
                                col[PFX_COL(t, j)] = v;
                                s += v;
                            }
                        }
                    }
                }
                for (; t < T4; ++t) col[PFX_COL(t, j)] = 0;
                sx[j] = s;
            }
            for (m = 0; m + 4 <= mg; m += 4) {
                ${tile4}(col, wg + (size_t)m * (size_t)taps, taps, acc);
                ${store}(acc, 4, gi * mg + m, bias, wzp, mult, shift, sx, y, (size_t)P, at, np, yzp, lo_q, hi_q);
            }
            for (; m < mg; ++m) {
                ${tile1}(col, wg + (size_t)m * (size_t)taps, taps, acc);
                ${store}(acc, 1, gi * mg + m, bias, wzp, mult, shift, sx, y, (size_t)P, at, np, yzp, lo_q, hi_q);
            }
        }
    }
}
