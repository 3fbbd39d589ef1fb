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
    int gy[8], gx[8], at[8], off[8]; /* off: a tap's input element per pixel, -1 outside */
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
                T4 = PFX_COLTAPS(taps);
                for (q0 = 0; q0 < Q; q0 += 8) {
                    const int nq = Q - q0 < 8 ? Q - q0 : 8;
                    int kyi = 0;
                    for (j = 0; j < 8; ++j) { /* the block's pixels: phase grid (gy, gx) */
                        gy[j] = (q0 + j) / GW;
                        gx[j] = (q0 + j) % GW;
                        at[j] = (ry + SH * gy[j]) * OW + rx + SW * gx[j];
                        sx[j] = 0;
                    }
                    for (ky = 0; ky < KH; ++ky) {
                        const int dy = ry + PT - ky * DH; /* iy = gy + dy / SH for this phase's taps */
                        int kxi = 0;
                        if ((dy % SH + SH) % SH != 0) continue; /* another phase's tap */
                        for (kx = 0; kx < KW; ++kx) {
                            const int dx = rx + PL - kx * DW;
                            if ((dx % SW + SW) % SW != 0) continue;
                            for (j = 0; j < 8; ++j) {
                                const int iy = gy[j] + dy / SH, ix = gx[j] + dx / SW;
                                off[j] = (j < nq && iy >= 0 && iy < H && ix >= 0 && ix < W) ? iy * W + ix : -1;
                            }
                            for (c = 0, t = kyi * nkx + kxi; c < cg; ++c, t += nky * nkx) {
                                const ${xt} *PFX_RESTRICT xc = xg + (size_t)c * (size_t)(H * W);
                                PFX_UNROLL8
                                for (j = 0; j < 8; ++j) { /* outside the input: 0 */
                                    const int32_t v = xc[off[j] >= 0 ? off[j] : 0];
                                    const int16_t u = (int16_t)(off[j] >= 0 ? v - xzp : 0);
                                    col[PFX_COL(t, j)] = u;
                                    sx[j] += u;
                                }
                            }
                            ++kxi;
                        }
                        ++kyi;
                    }
                    for (t = taps; t < T4; ++t)
                        for (j = 0; j < 8; ++j) col[PFX_COL(t, j)] = 0;
                    for (m = 0; m + 4 <= mg; m += 4) {
                        ${tile4}(col, wp + (size_t)m * (size_t)taps, taps, nq, acc);
                        ${store}(acc, 4, gi * mg + m, bias, wzp, mult, shift, sx, y, (size_t)(OH * OW), at, nq, yzp, lo_q, hi_q);
                    }
                    for (; m < mg; ++m) {
                        ${tile1}(col, wp + (size_t)m * (size_t)taps, taps, nq, acc);
                        ${store}(acc, 1, gi * mg + m, bias, wzp, mult, shift, sx, y, (size_t)(OH * OW), at, nq, yzp, lo_q, hi_q);
                    }
                }
                wp += (size_t)taps * (size_t)mg;
            }
        }
    }
}
