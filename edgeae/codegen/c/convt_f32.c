/* 2-D transposed convolution, NCHW, as a gather by sub-pixel phase: output (oy, ox) receives
   input (iy, ix) through tap (ky, kx) when iy*SH = oy + PT - ky*DH and ix*SW = ox + PL - kx*DW,
   so the outputs of one phase (oy mod SH, ox mod SW) share their taps: the ky with
   (ry + PT - ky*DH) mod SH == 0, and likewise kx. Each phase is a stride-1 convolution with
   those taps; its weights are one (taps, M/G) matrix (see edgeae.codegen.conv_layout), phases
   in the order ry, rx, per group. Its output pixels go eight at a time through col and
   PFX_tile4_f32 as in PFX_conv_f32. Every output receives b, then its terms in the order
   c, ky, kx (taps that fall outside the input add 0 * w). */
PFX_KERNEL void PFX_convt_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                              const float *PFX_RESTRICT b, float *PFX_RESTRICT y, float *PFX_RESTRICT col,
                              int C, int H, int W, int M, int OH, int OW, int KH, int KW,
                              int SH, int SW, int PT, int PL, int DH, int DW, int G)
{
    const int cg = C / G, mg = M / G;
    const float *PFX_RESTRICT wp = w; /* walks the phases' matrices forward */
    float tile[32];
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
                for (q0 = 0; q0 < Q; q0 += 8) {
                    const int nq = Q - q0 < 8 ? Q - q0 : 8;
                    int at[8]; /* where each pixel of the block goes in a channel's plane */
                    for (j = 0; j < 8; ++j) {
                        float *cj = col + j;
                        const int oy = ry + SH * ((q0 + j) / GW), ox = rx + SW * ((q0 + j) % GW);
                        at[j] = oy * OW + ox;
                        if (j >= nq) {
                            for (c = 0; c < taps; ++c) cj[(size_t)c * 8u] = 0.0f;
                            continue;
                        }
                        for (c = 0; c < cg; ++c) {
                            const float *xc = xg + (size_t)c * (size_t)(H * W);
                            for (ky = 0; ky < KH; ++ky) {
                                const int ty = oy + PT - ky * DH, iy = ty / SH;
                                if ((ty % SH + SH) % SH != 0) continue; /* another phase's tap */
                                for (kx = 0; kx < KW; ++kx) {
                                    const int tx = ox + PL - kx * DW, ix = tx / SW;
                                    if ((tx % SW + SW) % SW != 0) continue;
                                    *cj = (ty >= 0 && iy < H && tx >= 0 && ix < W) ? xc[iy * W + ix] : 0.0f;
                                    cj += 8;
                                }
                            }
                        }
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
                wp += (size_t)taps * (size_t)mg;
            }
        }
    }
}
