"""C99 kernel templates. ``PFX`` becomes the graph's symbol prefix; types are filled per use.

Every kernel is ``static`` (one translation unit per graph, nothing leaks into the link),
loops only, no allocation, no recursion. Sizes are arguments so one kernel text serves all
layers (``PFX_KERNEL``, ``static`` unless the user defines it otherwise). ``PFX_RESTRICT``
pointers let the compiler vectorize the output loops without run-time alias checks.
"""

from __future__ import annotations

__all__ = ["FP32", "INT8_REQUANT", "qdense", "qconv", "qconvt"]

FP32 = {
    "dense_f32": r"""
/* y[n] = b[n] + sum_k x[k] * w[k][n]; w is stored (K, N) so the inner loop runs over outputs. */
PFX_KERNEL void PFX_dense_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                          const float *PFX_RESTRICT b, float *PFX_RESTRICT y, int K, int N)
{
    const int K4 = K - K % 4;
    int k, n;
    for (n = 0; n < N; ++n) y[n] = b[n];
    /* four inputs per pass: y[n] stays in a register; the additions keep the order k = 0, 1, 2, ... */
    for (k = 0; k < K4; k += 4) {
        const float x0 = x[k], x1 = x[k + 1], x2 = x[k + 2], x3 = x[k + 3];
        const float *PFX_RESTRICT w0 = w + (size_t)k * (size_t)N;
        const float *PFX_RESTRICT w1 = w0 + N;
        const float *PFX_RESTRICT w2 = w1 + N;
        const float *PFX_RESTRICT w3 = w2 + N;
        for (n = 0; n < N; ++n) {
            float acc = y[n];
            acc += x0 * w0[n];
            acc += x1 * w1[n];
            acc += x2 * w2[n];
            acc += x3 * w3[n];
            y[n] = acc;
        }
    }
    for (k = K4; k < K; ++k) {
        const float xk = x[k];
        const float *PFX_RESTRICT wk = w + (size_t)k * (size_t)N;
        for (n = 0; n < N; ++n) y[n] += xk * wk[n];
    }
}
""",
    "conv_f32": r"""
/* 2-D convolution, NCHW, weight (M, C/G, KH, KW); padded taps are skipped. */
PFX_KERNEL void PFX_conv_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                         const float *PFX_RESTRICT b, float *PFX_RESTRICT y,
                         int C, int H, int W, int M, int OH, int OW, int KH, int KW,
                         int SH, int SW, int PT, int PL, int DH, int DW, int G)
{
    const int cg = C / G, mg = M / G;
    int m, oy, ox, c, ky, kx;
    for (m = 0; m < M; ++m) {
        const int c0 = (m / mg) * cg;
        const float *wm = w + (size_t)m * (size_t)(cg * KH * KW);
        for (oy = 0; oy < OH; ++oy) {
            for (ox = 0; ox < OW; ++ox) {
                float acc = b[m];
                for (c = 0; c < cg; ++c) {
                    const float *xc = x + (size_t)(c0 + c) * (size_t)(H * W);
                    const float *wc = wm + c * KH * KW;
                    for (ky = 0; ky < KH; ++ky) {
                        const int iy = oy * SH - PT + ky * DH;
                        if (iy < 0 || iy >= H) continue;
                        for (kx = 0; kx < KW; ++kx) {
                            const int ix = ox * SW - PL + kx * DW;
                            if (ix < 0 || ix >= W) continue;
                            acc += xc[iy * W + ix] * wc[ky * KW + kx];
                        }
                    }
                }
                y[((size_t)m * (size_t)OH + (size_t)oy) * (size_t)OW + (size_t)ox] = acc;
            }
        }
    }
}
""",
    "convt_f32": r"""
/* 2-D transposed convolution, NCHW, weight (C, M/G, KH, KW), gathered per output pixel:
   input pixel (iy, ix) reaches output oy = iy*SH - PT + ky*DH (likewise x). */
PFX_KERNEL void PFX_convt_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                          const float *PFX_RESTRICT b, float *PFX_RESTRICT y,
                          int C, int H, int W, int M, int OH, int OW, int KH, int KW,
                          int SH, int SW, int PT, int PL, int DH, int DW, int G)
{
    const int cg = C / G, mg = M / G;
    int m, oy, ox, c, ky, kx;
    for (m = 0; m < M; ++m) {
        const int g = m / mg, mi = m % mg;
        for (oy = 0; oy < OH; ++oy) {
            for (ox = 0; ox < OW; ++ox) {
                float acc = b[m];
                for (c = g * cg; c < (g + 1) * cg; ++c) {
                    const float *wc = w + ((size_t)c * (size_t)mg + (size_t)mi) * (size_t)(KH * KW);
                    const float *xc = x + (size_t)c * (size_t)(H * W);
                    for (ky = 0; ky < KH; ++ky) {
                        const int ty = oy + PT - ky * DH;
                        int iy;
                        if (ty < 0 || ty % SH) continue;
                        iy = ty / SH;
                        if (iy >= H) continue;
                        for (kx = 0; kx < KW; ++kx) {
                            const int tx = ox + PL - kx * DW;
                            int ix;
                            if (tx < 0 || tx % SW) continue;
                            ix = tx / SW;
                            if (ix >= W) continue;
                            acc += xc[iy * W + ix] * wc[ky * KW + kx];
                        }
                    }
                }
                y[((size_t)m * (size_t)OH + (size_t)oy) * (size_t)OW + (size_t)ox] = acc;
            }
        }
    }
}
""",
}

INT8_REQUANT = r"""
/* Requantization: round(acc * mult / 2^shift) with ties to even, exactly, in integers.
   mult (< 2^31) and shift (1..62) encode the real multiplier x_scale * w_scale / y_scale,
   computed at generation time; the product fits in 64 bits because |acc| < 2^31. */
static int32_t PFX_requant(int32_t acc, int32_t mult, int32_t shift)
{
    const int64_t p = (int64_t)acc * (int64_t)mult;
    const uint64_t u = p < 0 ? (uint64_t)0 - (uint64_t)p : (uint64_t)p;
    uint64_t q = u >> shift;
    const uint64_t rem = u - (q << shift);
    const uint64_t half = (uint64_t)1 << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    if (q > 65535u) q = 65535u; /* saturates below anyway */
    return p < 0 ? -(int32_t)q : (int32_t)q;
}
"""


def _wterm(wzp: bool) -> str:
    return "((int32_t)wr[k] - zw)" if wzp else "(int32_t)wr[k]"


def qdense(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    """(name, C text) of an int8 dense kernel for these element types."""
    name = f"PFX_qdense_{xt[0]}{wt[0]}{yt[0]}{'z' if wzp else ''}"
    zw = "const int32_t zw = wzp[n];" if wzp else ""
    wterm = "((int32_t)wn[k] - zw)" if wzp else "(int32_t)wn[k]"
    text = rf"""
/* y[n] = clamp(yzp + requant(bias[n] + sum_k x[k] * (w[n][k] - wzp[n]))); the input zero point
   is folded into bias[n] at generation time (bias[n] -= xzp * sum_k (w[n][k] - wzp[n])). */
PFX_KERNEL void {name}(const {xt} *PFX_RESTRICT x, const {wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift,
        {yt} *PFX_RESTRICT y, int K, int N, int32_t yzp, int32_t lo, int32_t hi)
{{
    int n, k;
    (void)wzp;
    for (n = 0; n < N; ++n) {{
        const {wt} *PFX_RESTRICT wn = w + (size_t)n * (size_t)K;
        int32_t acc = 0, v;
        {zw}
        for (k = 0; k < K; ++k) acc += (int32_t)x[k] * {wterm};
        v = yzp + PFX_requant(acc + bias[n], mult[n], shift[n]);
        y[n] = ({yt})(v < lo ? lo : (v > hi ? hi : v));
    }}
}}
"""
    return name, text


def _qconv(kind: str, xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    name = f"PFX_{kind}_{xt[0]}{wt[0]}{yt[0]}{'z' if wzp else ''}"
    zw = "const int32_t zw = wzp[m];" if wzp else ""
    wterm = "((int32_t)wc[ky * KW + kx] - zw)" if wzp else "(int32_t)wc[ky * KW + kx]"
    if kind == "qconv":
        head = "const int c0 = (m / mg) * cg;\n        const " + wt + " *wm = w + (size_t)m * (size_t)(cg * KH * KW);"
        chan = "for (c = 0; c < cg; ++c) {\n                    const " + xt + " *xc = x + (size_t)(c0 + c) * (size_t)(H * W);\n                    const " + wt + " *wc = wm + c * KH * KW;"
        ypos = """const int iy = oy * SH - PT + ky * DH;
                        if (iy < 0 || iy >= H) continue;"""
        xpos = """const int ix = ox * SW - PL + kx * DW;
                            if (ix < 0 || ix >= W) continue;"""
        doc = "2-D convolution, NCHW, weight (M, C/G, KH, KW)"
    else:
        head = "const int g = m / mg, mi = m % mg;"
        chan = "for (c = g * cg; c < (g + 1) * cg; ++c) {\n                    const " + wt + " *wc = w + ((size_t)c * (size_t)mg + (size_t)mi) * (size_t)(KH * KW);\n                    const " + xt + " *xc = x + (size_t)c * (size_t)(H * W);"
        ypos = """const int ty = oy + PT - ky * DH;
                        int iy;
                        if (ty < 0 || ty % SH) continue;
                        iy = ty / SH;
                        if (iy >= H) continue;"""
        xpos = """const int tx = ox + PL - kx * DW;
                            int ix;
                            if (tx < 0 || tx % SW) continue;
                            ix = tx / SW;
                            if (ix >= W) continue;"""
        doc = "2-D transposed convolution, NCHW, weight (C, M/G, KH, KW), gathered per output pixel"
    text = rf"""
/* int8 {doc}:
   y = clamp(yzp + requant(bias[m] + sum (x - xzp) * (w - wzp[m]))); padded taps add nothing. */
PFX_KERNEL void {name}(const {xt} *PFX_RESTRICT x, const {wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift, {yt} *PFX_RESTRICT y,
        int C, int H, int W, int M, int OH, int OW, int KH, int KW,
        int SH, int SW, int PT, int PL, int DH, int DW, int G, int32_t xzp, int32_t yzp, int32_t lo, int32_t hi)
{{
    const int cg = C / G, mg = M / G;
    int m, oy, ox, c, ky, kx;
    (void)wzp;
    for (m = 0; m < M; ++m) {{
        {head}
        {zw}
        for (oy = 0; oy < OH; ++oy) {{
            for (ox = 0; ox < OW; ++ox) {{
                int32_t acc = bias[m], v;
                {chan}
                    for (ky = 0; ky < KH; ++ky) {{
                        {ypos}
                        for (kx = 0; kx < KW; ++kx) {{
                            {xpos}
                            acc += ((int32_t)xc[iy * W + ix] - xzp) * {wterm};
                        }}
                    }}
                }}
                v = yzp + PFX_requant(acc, mult[m], shift[m]);
                y[((size_t)m * (size_t)OH + (size_t)oy) * (size_t)OW + (size_t)ox] = ({yt})(v < lo ? lo : (v > hi ? hi : v));
            }}
        }}
    }}
}}
"""
    return name, text


def qconv(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    return _qconv("qconv", xt, wt, yt, wzp)


def qconvt(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    return _qconv("qconvt", xt, wt, yt, wzp)
