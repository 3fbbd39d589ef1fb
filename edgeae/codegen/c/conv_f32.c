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
