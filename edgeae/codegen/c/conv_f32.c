/* 2-D convolution, NCHW; the weight is stored per group as (C/G*KH*KW taps, M/G outputs).
   The output pixels go eight at a time (a block, in row-major order across rows): their input
   patches are copied to col (8 x taps floats of the arena, tap-major, padding 0) and every
   four output channels of the group are one tile (PFX_tile4_f32). Every output receives b,
   then its terms in the order c, ky, kx (a padded tap adds 0 * w). */
PFX_KERNEL void PFX_conv_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                             const float *PFX_RESTRICT b, float *PFX_RESTRICT y, float *PFX_RESTRICT col,
                             int C, int H, int W, int M, int OH, int OW, int KH, int KW,
                             int SH, int SW, int PT, int PL, int DH, int DW, int G)
{
    const int cg = C / G, mg = M / G, taps = cg * KH * KW, P = OH * OW;
    float tile[32];
    int gi, p0, j, c, ky, kx, m, r;
    for (gi = 0; gi < G; ++gi) {
        const float *PFX_RESTRICT wg = w + (size_t)gi * (size_t)taps * (size_t)mg;
        const float *PFX_RESTRICT bg = b + (size_t)gi * (size_t)mg;
        const float *PFX_RESTRICT xg = x + (size_t)gi * (size_t)cg * (size_t)(H * W);
        float *PFX_RESTRICT yg = y + (size_t)gi * (size_t)mg * (size_t)P;
        for (p0 = 0; p0 < P; p0 += 8) {
            const int np = P - p0 < 8 ? P - p0 : 8;
            for (j = 0; j < 8; ++j) { /* pixel p0 + j's patch, every 8th float of col */
                float *cj = col + j;
                const int oy = (p0 + j) / OW, ox = (p0 + j) % OW;
                const int iy0 = oy * SH - PT, ix0 = ox * SW - PL;
                if (j >= np) {
                    for (c = 0; c < taps; ++c) cj[(size_t)c * 8u] = 0.0f;
                } else if (iy0 >= 0 && iy0 + (KH - 1) * DH < H && ix0 >= 0 && ix0 + (KW - 1) * DW < W) {
                    for (c = 0; c < cg; ++c) { /* inside the image: no tests */
                        const float *xc = xg + (size_t)c * (size_t)(H * W) + iy0 * W + ix0;
                        for (ky = 0; ky < KH; ++ky)
                            for (kx = 0; kx < KW; ++kx, cj += 8) *cj = xc[ky * DH * W + kx * DW];
                    }
                } else {
                    for (c = 0; c < cg; ++c) {
                        const float *xc = xg + (size_t)c * (size_t)(H * W);
                        for (ky = 0; ky < KH; ++ky) {
                            const int iy = iy0 + ky * DH;
                            for (kx = 0; kx < KW; ++kx, cj += 8) {
                                const int ix = ix0 + kx * DW;
                                *cj = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? xc[iy * W + ix] : 0.0f;
                            }
                        }
                    }
                }
            }
            for (m = 0; m + 4 <= mg; m += 4) {
                PFX_tile4_f32(col, wg + m, mg, bg + m, taps, tile);
                for (r = 0; r < 4; ++r)
                    memcpy(yg + (size_t)(m + r) * (size_t)P + (size_t)p0, tile + 8 * r, (size_t)np * sizeof(float));
            }
            for (; m < mg; ++m) {
                PFX_tile1_f32(col, wg + m, mg, bg[m], taps, tile);
                memcpy(yg + (size_t)m * (size_t)P + (size_t)p0, tile, (size_t)np * sizeof(float));
            }
        }
    }
}
