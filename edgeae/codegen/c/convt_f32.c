/* 2-D transposed convolution, NCHW, as a gather by sub-pixel phase: output (oy, ox) receives
   input (iy, ix) through tap (ky, kx) when iy*SH = oy + PT - ky*DH and ix*SW = ox + PL - kx*DW,
   so the outputs of one phase (oy mod SH, ox mod SW) share their taps: the ky with
   (ry + PT - ky*DH) mod SH == 0, and likewise kx. Each phase is a stride-1 convolution with
   those taps; its weights are one (taps, M/G) matrix (see edgeae.codegen.conv_layout), phases
   in the order ry, rx, per group. Its output pixels go eight at a time through col and
   PFX_tile4_f32 as in PFX_conv_f32. Every output receives b, then its terms in the order
   c, ky, kx (taps that fall outside the input add 0 * w). */
#if PFX_VEC
/* One phase (ry, rx) of PFX_convt_f32 on hosts: the blocks are 8 pixels along one row of the
   phase grid (a row's last block may be shorter), so a tap's inputs for a block are a run of
   one input row and the column fills with vector copies. Each output's sum is the one the
   row-major blocks compute (same terms, same order); only which pixels share a tile differs. */
static void PFX_convt_rows_f32(const float *PFX_RESTRICT xg, const float *PFX_RESTRICT wp,
                               const float *PFX_RESTRICT bg, float *PFX_RESTRICT yg, float *PFX_RESTRICT col,
                               int cg, int mg, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW,
                               int PT, int PL, int DH, int DW, int ry, int rx, int nky, int nkx)
{
    const int GH = (OH - ry + SH - 1) / SH, GW = (OW - rx + SW - 1) / SW, taps = cg * nky * nkx;
    const size_t plane = (size_t)(H * W), step = (size_t)(nky * nkx) * 8u;
    float tile[32];
    int at[8];
    int gy, gx0, ky, kx, c, j, m, r;
    for (gy = 0; gy < GH; ++gy) {
        for (gx0 = 0; gx0 < GW; gx0 += 8) {
            const int nq = GW - gx0 < 8 ? GW - gx0 : 8;
            int kyi = 0;
            for (j = 0; j < 8; ++j) at[j] = (ry + SH * gy) * OW + rx + SW * (gx0 + j);
            for (ky = 0; ky < KH; ++ky) {
                const int dy = ry + PT - ky * DH, iy = gy + dy / SH;
                int kxi = 0;
                if ((dy % SH + SH) % SH != 0) continue; /* another phase's tap */
                for (kx = 0; kx < KW; ++kx) {
                    const int dx = rx + PL - kx * DW, ix = gx0 + dx / SW;
                    const int lo = ix < 0 ? -ix : 0, hi = W - ix < nq ? W - ix : nq; /* lanes inside the input */
                    float *PFX_RESTRICT ct = col + (size_t)(kyi * nkx + kxi) * 8u; /* tap (c, ky, kx), c = 0 */
                    const float *PFX_RESTRICT xc;
                    if ((dx % SW + SW) % SW != 0) continue;
                    if (iy < 0 || iy >= H || hi <= lo) {
                        for (c = 0; c < cg; ++c, ct += step) memset(ct, 0, 8u * sizeof(float));
                    } else if (lo == 0 && hi == 8) {
                        for (c = 0, xc = xg + (size_t)(iy * W + ix); c < cg; ++c, ct += step, xc += plane)
                            memcpy(ct, xc, 8u * sizeof(float));
                    } else { /* 0 for the lanes outside the input (and past the row's end) */
                        for (c = 0, xc = xg + (size_t)(iy * W + ix + lo); c < cg; ++c, ct += step, xc += plane) {
                            memset(ct, 0, 8u * sizeof(float));
                            for (j = lo; j < hi; ++j) ct[j] = xc[j - lo];
                        }
                    }
                    ++kxi;
                }
                ++kyi;
            }
            m = 0;
#if PFX_TILE8
            for (; m + 8 <= mg; m += 8) {
                float tile8[64];
                PFX_tile8_f32(col, wp + m, mg, bg + m, taps, tile8);
                for (r = 0; r < 8; ++r)
                    for (j = 0; j < nq; ++j) yg[(size_t)(m + r) * (size_t)(OH * OW) + (size_t)at[j]] = tile8[8 * r + j];
            }
#endif
            for (; m + 4 <= mg; m += 4) {
                PFX_tile4_f32(col, wp + m, mg, bg + m, taps, tile);
                for (r = 0; r < 4; ++r)
                    for (j = 0; j < nq; ++j) yg[(size_t)(m + r) * (size_t)(OH * OW) + (size_t)at[j]] = tile[8 * r + j];
            }
            for (; m < mg; ++m) {
                PFX_tile1_f32(col, wp + m, mg, bg[m], taps, tile);
                for (j = 0; j < nq; ++j) yg[(size_t)m * (size_t)(OH * OW) + (size_t)at[j]] = tile[j];
            }
        }
    }
}
#endif

PFX_KERNEL void PFX_convt_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                              const float *PFX_RESTRICT b, float *PFX_RESTRICT y, float *PFX_RESTRICT col,
                              int C, int H, int W, int M, int OH, int OW, int KH, int KW,
                              int SH, int SW, int PT, int PL, int DH, int DW, int G)
{
    const int cg = C / G, mg = M / G;
    const float *PFX_RESTRICT wp = w; /* walks the phases' matrices forward */
    float tile[32];
    int gy[8], gx[8], at[8], off[8]; /* at: where each pixel of a block goes in a channel's plane */
    int gi, ry, rx, ky, kx, c, j, m, r, q0;
    for (gi = 0; gi < G; ++gi) {
        const float *PFX_RESTRICT xg = x + (size_t)gi * (size_t)cg * (size_t)(H * W);
        const float *PFX_RESTRICT bg = b + (size_t)gi * (size_t)mg;
        float *PFX_RESTRICT yg = y + (size_t)gi * (size_t)mg * (size_t)(OH * OW);
        for (ry = 0; ry < SH; ++ry) {
            for (rx = 0; rx < SW; ++rx) {
                const int GH = (OH - ry + SH - 1) / SH, GW = (OW - rx + SW - 1) / SW, Q = GH * GW;
                int nky = 0, nkx = 0, taps;
                for (ky = 0; ky < KH; ++ky) nky += ((ry + PT - ky * DH) % SH + SH) % SH == 0;
                for (kx = 0; kx < KW; ++kx) nkx += ((rx + PL - kx * DW) % SW + SW) % SW == 0;
                taps = cg * nky * nkx;
#if PFX_VEC
                PFX_convt_rows_f32(xg, wp, bg, yg, col, cg, mg, H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW,
                                   ry, rx, nky, nkx);
                (void)Q, (void)gy, (void)gx, (void)at, (void)off, (void)c, (void)j, (void)m, (void)r, (void)q0,
                    (void)tile;
#else
                for (q0 = 0; q0 < Q; q0 += 8) {
                    const int nq = Q - q0 < 8 ? Q - q0 : 8;
                    int kyi = 0;
                    for (j = 0; j < 8; ++j) { /* the block's pixels: phase grid (gy, gx) */
                        gy[j] = (q0 + j) / GW;
                        gx[j] = (q0 + j) % GW;
                        at[j] = (ry + SH * gy[j]) * OW + rx + SW * gx[j];
                    }
                    for (ky = 0; ky < KH; ++ky) {
                        const int dy = ry + PT - ky * DH; /* iy = gy + dy / SH for this phase's taps */
                        int kxi = 0;
                        if ((dy % SH + SH) % SH != 0) continue; /* another phase's tap */
                        for (kx = 0; kx < KW; ++kx) {
                            const int dx = rx + PL - kx * DW;
                            float *PFX_RESTRICT ct;
                            if ((dx % SW + SW) % SW != 0) continue;
                            ct = col + (size_t)(kyi * nkx + kxi) * 8u; /* tap (c, ky, kx), c = 0 */
                            for (j = 0; j < 8; ++j) {
                                const int iy = gy[j] + dy / SH, ix = gx[j] + dx / SW;
                                off[j] = (j < nq && iy >= 0 && iy < H && ix >= 0 && ix < W) ? iy * W + ix : -1;
                            }
                            for (c = 0; c < cg; ++c, ct += (size_t)(nky * nkx) * 8u) {
                                const float *PFX_RESTRICT xc = xg + (size_t)c * (size_t)(H * W);
                                PFX_UNROLL8
                        for (j = 0; j < 8; ++j) { /* padding reads element 0 and keeps 0 */
                            const float v = xc[off[j] >= 0 ? off[j] : 0];
                            ct[j] = off[j] >= 0 ? v : 0.0f;
                        }
                            }
                            ++kxi;
                        }
                        ++kyi;
                    }
                    for (m = 0; m + 4 <= mg; m += 4) {
                        PFX_tile4_f32(col, wp + m, mg, bg + m, taps, tile);
                        for (r = 0; r < 4; ++r)
                            for (j = 0; j < nq; ++j) yg[(size_t)(m + r) * (size_t)(OH * OW) + (size_t)at[j]] = tile[8 * r + j];
                    }
                    for (; m < mg; ++m) {
                        PFX_tile1_f32(col, wp + m, mg, bg[m], taps, tile);
                        for (j = 0; j < nq; ++j) yg[(size_t)m * (size_t)(OH * OW) + (size_t)at[j]] = tile[j];
                    }
                }
#endif
                wp += (size_t)taps * (size_t)mg;
            }
        }
    }
}
