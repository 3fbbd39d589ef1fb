/* int8 2-D convolution, NCHW, weight (M, C/G, KH, KW) stored rows-by-four per group. The output
   pixels go eight at a time (a block, row-major across rows): their input patches are copied
   to col as int16 codes (C/G*KH*KW taps each, padding = the input zero point xzp, whose
   products cancel in the bias, folded at generation; see ${tile4}), and every four output
   channels of the group are one tile of int32 sums, requantized by ${store}. With Helium the
   column is written by gathers and scatters, as bytes where input and weights share a
   signedness (the tiles ${tile4}b / ${tile1}b). */
PFX_KERNEL void ${name}(const ${xt} *PFX_RESTRICT x, const ${wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift, ${yt} *PFX_RESTRICT y,
        int16_t *PFX_RESTRICT col,
        int C, int H, int W, int M, int OH, int OW, int KH, int KW,
        int SH, int SW, int PT, int PL, int DH, int DW, int G, int32_t xzp, int32_t yzp, int32_t lo_q, int32_t hi_q)
{
    const int cg = C / G, mg = M / G, taps = cg * KH * KW, T4 = PFX_COLTAPS(taps), P = OH * OW;
    int32_t acc[32], sx[8];
    int at[8], iy0[8], ix0[8], off[8]; /* off: a tap's input element per pixel; -1 padding, -2 no pixel */
    int gi, p0, j, t, c, ky, kx, m;
#if PFX_MVE
    (void)off; /* (the offsets are vectors there) */
    const uint32x4_t place0 = vmulq_n_u32(vidupq_n_u32(0u, 1), 16u), place1 = vaddq_n_u32(place0, 64u); /* PFX_COL(0, j) */
#if ${mvcol8} /* input and weights of one signedness: the column holds bytes (PFX_COL8), VMLADAV takes 16 at once */
    ${xt} *c8 = (${xt} *)(void *)col;
#endif
#endif
    for (gi = 0; gi < G; ++gi) {
        const ${wt} *PFX_RESTRICT wg = w + (size_t)gi * (size_t)mg * (size_t)taps;
        const ${xt} *PFX_RESTRICT xg = x + (size_t)gi * (size_t)cg * (size_t)(H * W);
        for (p0 = 0; p0 < P; p0 += 8) {
            const int np = P - p0 < 8 ? P - p0 : 8;
            for (j = 0; j < 8; ++j) { /* the block's pixels: top-left input of each patch */
                iy0[j] = (p0 + j) / OW * SH - PT;
                ix0[j] = (p0 + j) % OW * SW - PL;
                sx[j] = 0;
            }
#if PFX_MVE
            { /* the block's patch corners as vectors, which pixels are real, and their padding value */
                const mve_pred16_t real[2] = {vctp32q((uint32_t)np), vctp32q((uint32_t)(np > 4 ? np - 4 : 0))};
                const int32x4_t iy4[2] = {vldrwq_s32((const int32_t *)(const void *)iy0),
                                          vldrwq_s32((const int32_t *)(const void *)(iy0 + 4))};
                const int32x4_t ix4[2] = {vldrwq_s32((const int32_t *)(const void *)ix0),
                                          vldrwq_s32((const int32_t *)(const void *)(ix0 + 4))};
                const int32x4_t pad4[2] = {vpselq_s32(vdupq_n_s32(xzp), vdupq_n_s32(0), real[0]),
                                           vpselq_s32(vdupq_n_s32(xzp), vdupq_n_s32(0), real[1])};
#endif
            for (ky = 0; ky < KH; ++ky) {
                for (kx = 0; kx < KW; ++kx) {
#if PFX_MVE
                    { /* a tap's 8 inputs: two gathers (none where padding), the padding put in, two scatters */
                        const int32x4_t y0 = vaddq_n_s32(iy4[0], ky * DH), y1 = vaddq_n_s32(iy4[1], ky * DH);
                        const int32x4_t x0 = vaddq_n_s32(ix4[0], kx * DW), x1 = vaddq_n_s32(ix4[1], kx * DW);
                        /* inside: 0 <= iy < H and 0 <= ix < W, as unsigned compares (vector forms: gcc 12
                           fails on the _n forms here), on the block's real pixels */
                        const uint32x4_t hv = vdupq_n_u32((uint32_t)H), wv = vdupq_n_u32((uint32_t)W);
                        const mve_pred16_t k0 = vcmphiq_u32(hv, vreinterpretq_u32_s32(y0)) &
                                                vcmphiq_u32(wv, vreinterpretq_u32_s32(x0)) & real[0];
                        const mve_pred16_t k1 = vcmphiq_u32(hv, vreinterpretq_u32_s32(y1)) &
                                                vcmphiq_u32(wv, vreinterpretq_u32_s32(x1)) & real[1];
                        const uint32x4_t q0 = vreinterpretq_u32_s32(vmlaq_n_s32(x0, y0, W)); /* iy * W + ix */
                        const uint32x4_t q1 = vreinterpretq_u32_s32(vmlaq_n_s32(x1, y1, W));
                        const int32x4_t z0 = pad4[0], z1 = pad4[1];
                        for (c = 0, t = ky * KW + kx; c < cg; ++c, t += KH * KW) {
                            const ${xt} *PFX_RESTRICT xc = xg + (size_t)c * (size_t)(H * W);
#if ${mvcol8}
                            ${xt} *ct = c8 + PFX_COL8(t, 0);
                            ${mvscatter}(ct, place0, ${mvcast}(vpselq_s32(${mvgather0}, z0, k0)));
                            ${mvscatter}(ct, place1, ${mvcast}(vpselq_s32(${mvgather1}, z1, k1)));
#else
                            int16_t *PFX_RESTRICT ct = col + PFX_COL(t, 0);
                            vstrhq_scatter_shifted_offset_s32(ct, place0, vpselq_s32(${mvgather0}, z0, k0));
                            vstrhq_scatter_shifted_offset_s32(ct, place1, vpselq_s32(${mvgather1}, z1, k1));
#endif
                        }
                    }
#else
                    for (j = 0; j < 8; ++j) {
                        const int iy = iy0[j] + ky * DH, ix = ix0[j] + kx * DW;
                        off[j] = j >= np ? -2 : (iy >= 0 && iy < H && ix >= 0 && ix < W) ? iy * W + ix : -1;
                    }
                    for (c = 0, t = ky * KW + kx; c < cg; ++c, t += KH * KW) {
                        const ${xt} *PFX_RESTRICT xc = xg + (size_t)c * (size_t)(H * W);
                        PFX_UNROLL8
                        for (j = 0; j < 8; ++j) { /* padding: xzp (a pixel past the end: 0) */
                            const int32_t v = xc[off[j] >= 0 ? off[j] : 0];
                            const int16_t u = (int16_t)(off[j] >= 0 ? v : off[j] == -1 ? xzp : 0);
                            col[PFX_COL(t, j)] = u;
                            sx[j] += u;
                        }
                    }
#endif
                }
            }
#if PFX_MVE
            }
#endif
#if PFX_MVE && ${mvcol8}
            for (t = taps; t < T4; ++t)
                for (j = 0; j < 8; ++j) c8[PFX_COL8(t, j)] = 0;
            for (j = 0; j < 8; ++j) /* sx[j]: the sum of pixel j's column, 16 taps (a vector) at a time */
                for (t = 0; t < T4; t += 16) sx[j] = (int32_t)${mvsum};
#else
            for (t = taps; t < T4; ++t)
                for (j = 0; j < 8; ++j) col[PFX_COL(t, j)] = 0;
#if PFX_MVE
            for (j = 0; j < 8; ++j) /* sx[j]: the sum of pixel j's column, 16 taps (two vectors) at a time */
                for (t = 0; t < T4; t += 16) {
                    sx[j] = vaddvaq_s16(sx[j], vldrhq_s16(col + PFX_COL(t, j)));
                    sx[j] = vaddvaq_s16(sx[j], vldrhq_s16(col + PFX_COL(t, j) + 8));
                }
#endif
#endif
            for (j = 0; j < 8; ++j) at[j] = p0 + j;
            for (m = 0; m + 4 <= mg; m += 4) {
#if PFX_MVE && ${mvcol8}
                ${tile4}b(c8, wg + (size_t)m * (size_t)taps, taps, np, acc);
#else
                ${tile4}(col, wg + (size_t)m * (size_t)taps, taps, np, acc);
#endif
                ${store}(acc, 4, gi * mg + m, bias, wzp, mult, shift, sx, y, (size_t)P, at, np, yzp, lo_q, hi_q);
            }
            for (; m < mg; ++m) {
#if PFX_MVE && ${mvcol8}
                ${tile1}b(c8, wg + (size_t)m * (size_t)taps, taps, np, acc);
#else
                ${tile1}(col, wg + (size_t)m * (size_t)taps, taps, np, acc);
#endif
                ${store}(acc, 1, gi * mg + m, bias, wzp, mult, shift, sx, y, (size_t)P, at, np, yzp, lo_q, hi_q);
            }
        }
    }
}
