/* int8 2-D transposed convolution, NCHW, as a gather by sub-pixel phase (see the fp32 kernel:
   the outputs of phase (oy mod SH, ox mod SW) take the taps ky with (ry + PT - ky*DH) mod SH
   == 0, and likewise kx). The weight is one (M/G, taps) matrix per group and phase
   (edgeae.codegen.conv_layout), each stored rows-by-four. Eight output pixels of a phase at a
   time: their inputs minus the input zero point go to col as int16 (taps that fall outside
   the input add 0), then ${tile4} / ${tile1} and ${store}:
   y = clamp(yzp + requant(bias[m] + sum (x - xzp) * (w - wzp[m]))). */
PFX_KERNEL void ${name}(const ${xt} *PFX_RESTRICT x, const ${wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift, ${yt} *PFX_RESTRICT y,
        int16_t *PFX_RESTRICT col,
        int C, int H, int W, int M, int OH, int OW, int KH, int KW,
        int SH, int SW, int PT, int PL, int DH, int DW, int G, int32_t xzp, int32_t yzp, int32_t lo_q, int32_t hi_q)
{
    const int cg = C / G, mg = M / G;
    const ${wt} *PFX_RESTRICT wp = w; /* walks the phases' matrices forward */
    int32_t acc[32], sx[8];
    int at[8];
    int gi, ry, rx, ky, kx, c, j, t, m, q0;
    for (gi = 0; gi < G; ++gi) {
        const ${xt} *PFX_RESTRICT xg = x + (size_t)gi * (size_t)cg * (size_t)(H * W);
        for (ry = 0; ry < SH; ++ry) {
            for (rx = 0; rx < SW; ++rx) {
                const int GH = (OH - ry + SH - 1) / SH, GW = (OW - rx + SW - 1) / SW, Q = GH * GW;
                int nky = 0, nkx = 0, taps, T4;
                for (ky = 0; ky < KH; ++ky) nky += ((ry + PT - ky * DH) % SH + SH) % SH == 0;
                for (kx = 0; kx < KW; ++kx) nkx += ((rx + PL - kx * DW) % SW + SW) % SW == 0;
                taps = cg * nky * nkx;
                T4 = (taps + 3) / 4 * 4;
                for (q0 = 0; q0 < Q; q0 += 8) {
                    const int nq = Q - q0 < 8 ? Q - q0 : 8;
                    for (j = 0; j < 8; ++j) {
                        const int oy = ry + SH * ((q0 + j) / GW), ox = rx + SW * ((q0 + j) % GW);
                        int32_t s = 0;
                        at[j] = oy * OW + ox;
                        t = 0;
                        if (j < nq) {
                            for (c = 0; c < cg; ++c) {
                                const ${xt} *xc = xg + (size_t)c * (size_t)(H * W);
                                for (ky = 0; ky < KH; ++ky) {
                                    const int ty = oy + PT - ky * DH, iy = ty / SH;
                                    if ((ty % SH + SH) % SH != 0) continue; /* another phase's tap */
                                    for (kx = 0; kx < KW; ++kx) {
                                        const int tx = ox + PL - kx * DW, ix = tx / SW;
                                        int16_t v;
                                        if ((tx % SW + SW) % SW != 0) continue;
                                        v = (int16_t)((ty >= 0 && iy < H && tx >= 0 && ix < W) ? (int32_t)xc[iy * W + ix] - xzp : 0);
                                        col[PFX_COL(t, j)] = v;
                                        s += v;
                                        ++t;
                                    }
                                }
                            }
                        }
                        for (; t < T4; ++t) col[PFX_COL(t, j)] = 0;
                        sx[j] = s;
                    }
                    for (m = 0; m + 4 <= mg; m += 4) {
                        ${tile4}(col, wp + (size_t)m * (size_t)taps, taps, acc);
                        ${store}(acc, 4, gi * mg + m, bias, wzp, mult, shift, sx, y, (size_t)(OH * OW), at, nq, yzp, lo_q, hi_q);
                    }
                    for (; m < mg; ++m) {
                        ${tile1}(col, wp + (size_t)m * (size_t)taps, taps, acc);
                        ${store}(acc, 1, gi * mg + m, bias, wzp, mult, shift, sx, y, (size_t)(OH * OW), at, nq, yzp, lo_q, hi_q);
                    }
                }
                wp += (size_t)taps * (size_t)mg;
            }
        }
    }
}
