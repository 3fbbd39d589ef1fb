/* 2-D convolution, NCHW; the weight is stored per group as (C/G*KH*KW taps, M/G outputs).
   The output pixels go eight at a time (a block, in row-major order across rows): their input
   patches are copied to col (8 x taps floats of the arena, tap-major, padding 0; for each tap
   (ky, kx) the 8 pixels' offsets are found once, then copied for every input channel) and every
   four output channels of the group are one tile (PFX_tile4_f32). Every output receives b,
   then its terms in the order c, ky, kx (a padded tap adds 0 * w). */
PFX_KERNEL void PFX_conv_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                             const float *PFX_RESTRICT b, float *PFX_RESTRICT y, float *PFX_RESTRICT col,
                             int C, int H, int W, int M, int OH, int OW, int KH, int KW,
                             int SH, int SW, int PT, int PL, int DH, int DW, int G)
{
    const int cg = C / G, mg = M / G, taps = cg * KH * KW, P = OH * OW;
    float tile[32];
    int iy0[8], ix0[8], off[8]; /* off: the input element of a tap for each pixel, -1 for padding */
    int gi, p0, j, c, ky, kx, m, r;
    for (gi = 0; gi < G; ++gi) {
        const float *PFX_RESTRICT wg = w + (size_t)gi * (size_t)taps * (size_t)mg;
        const float *PFX_RESTRICT bg = b + (size_t)gi * (size_t)mg;
        const float *PFX_RESTRICT xg = x + (size_t)gi * (size_t)cg * (size_t)(H * W);
        float *PFX_RESTRICT yg = y + (size_t)gi * (size_t)mg * (size_t)P;
        for (p0 = 0; p0 < P; p0 += 8) {
            const int np = P - p0 < 8 ? P - p0 : 8;
            for (j = 0; j < 8; ++j) { /* the block's pixels: top-left input of each patch */
                iy0[j] = (p0 + j) / OW * SH - PT;
                ix0[j] = (p0 + j) % OW * SW - PL;
            }
            for (ky = 0; ky < KH; ++ky) {
                for (kx = 0; kx < KW; ++kx) {
                    float *PFX_RESTRICT ct = col + (size_t)(ky * KW + kx) * 8u; /* tap (c, ky, kx), c = 0 */
                    for (j = 0; j < 8; ++j) {
                        const int iy = iy0[j] + ky * DH, ix = ix0[j] + kx * DW;
                        off[j] = (j < np && iy >= 0 && iy < H && ix >= 0 && ix < W) ? iy * W + ix : -1;
                    }
                    for (c = 0; c < cg; ++c, ct += (size_t)(KH * KW) * 8u) {
                        const float *PFX_RESTRICT xc = xg + (size_t)c * (size_t)(H * W);
                        PFX_UNROLL8
                        for (j = 0; j < 8; ++j) { /* padding reads element 0 and keeps 0 */
                            const float v = xc[off[j] >= 0 ? off[j] : 0];
                            ct[j] = off[j] >= 0 ? v : 0.0f;
                        }
                    }
                }
            }
            m = 0;
#if PFX_TILE8
            for (; m + 8 <= mg; m += 8) {
                float tile8[64];
                PFX_tile8_f32(col, wg + m, mg, bg + m, taps, tile8);
                for (r = 0; r < 8; ++r)
                    memcpy(yg + (size_t)(m + r) * (size_t)P + (size_t)p0, tile8 + 8 * r, (size_t)np * sizeof(float));
            }
#endif
            for (; m + 4 <= mg; m += 4) {
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
