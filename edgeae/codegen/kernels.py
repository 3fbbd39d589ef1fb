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
/* y[n] = b[n] + sum_k x[k] * w[k][n]; w is stored (K, N) so the inner loops run over outputs.
   Inputs are summed in blocks of 32 into t[] (N floats of the arena) and each block is added
   to y[]: the rounding error grows with 32 + K/32 terms instead of K, which keeps long sums
   (K = 1568 in an MNIST conv head) within 1e-5 of ONNX Runtime. Four inputs per pass keep
   t[n] in a register; the additions stay in the order k = 0, 1, 2, ... */
PFX_KERNEL void PFX_dense_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                              const float *PFX_RESTRICT b, float *PFX_RESTRICT y, float *PFX_RESTRICT t,
                              int K, int N)
{
    int k, n, k0;
    for (n = 0; n < N; ++n) y[n] = b[n];
    for (k0 = 0; k0 < K; k0 += 32) {
        const int ke = k0 + 32 < K ? k0 + 32 : K;
        const int k4 = k0 + (ke - k0) / 4 * 4;
        for (n = 0; n < N; ++n) t[n] = 0.0f;
        for (k = k0; k < k4; k += 4) {
            const float x0 = x[k], x1 = x[k + 1], x2 = x[k + 2], x3 = x[k + 3];
            const float *PFX_RESTRICT w0 = w + (size_t)k * (size_t)N;
            const float *PFX_RESTRICT w1 = w0 + N;
            const float *PFX_RESTRICT w2 = w1 + N;
            const float *PFX_RESTRICT w3 = w2 + N;
            for (n = 0; n < N; ++n) {
                float acc = t[n];
                acc += x0 * w0[n];
                acc += x1 * w1[n];
                acc += x2 * w2[n];
                acc += x3 * w3[n];
                t[n] = acc;
            }
        }
        for (k = k4; k < ke; ++k) {
            const float xk = x[k];
            const float *PFX_RESTRICT wk = w + (size_t)k * (size_t)N;
            for (n = 0; n < N; ++n) t[n] += xk * wk[n];
        }
        for (n = 0; n < N; ++n) y[n] += t[n];
    }
}
""",
    "conv_f32": r"""
/* 2-D convolution, NCHW, weight (M, C/G, KH, KW), weight-stationary: each tap's weight is
   applied to a whole output row whose valid range is found first (no test in the inner
   loop). Every output still receives its terms in the order c, ky, kx. */
PFX_KERNEL void PFX_conv_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                             const float *PFX_RESTRICT b, float *PFX_RESTRICT y,
                             int C, int H, int W, int M, int OH, int OW, int KH, int KW,
                             int SH, int SW, int PT, int PL, int DH, int DW, int G)
{
    const int cg = C / G, mg = M / G;
    int m, oy, ox, c, ky, kx;
    for (m = 0; m < M; ++m) {
        const int c0 = (m / mg) * cg;
        float *PFX_RESTRICT ym = y + (size_t)m * (size_t)(OH * OW);
        for (oy = 0; oy < OH * OW; ++oy) ym[oy] = b[m];
        for (c = 0; c < cg; ++c) {
            const float *xc = x + (size_t)(c0 + c) * (size_t)(H * W);
            for (ky = 0; ky < KH; ++ky) {
                for (kx = 0; kx < KW; ++kx) {
                    const float wv = w[(((size_t)m * (size_t)cg + (size_t)c) * (size_t)KH + (size_t)ky) * (size_t)KW + (size_t)kx];
                    const int dx = kx * DW - PL;
                    int lo = 0, hi = OW;
                    while (lo < OW && lo * SW + dx < 0) ++lo;
                    while (hi > lo && (hi - 1) * SW + dx >= W) --hi;
                    for (oy = 0; oy < OH; ++oy) {
                        const int iy = oy * SH - PT + ky * DH;
                        const float *xr;
                        float *yr;
                        if (iy < 0 || iy >= H) continue;
                        xr = xc + iy * W + dx;
                        yr = ym + oy * OW;
                        for (ox = lo; ox < hi; ++ox) yr[ox] += wv * xr[ox * SW];
                    }
                }
            }
        }
    }
}
""",
    "convt_f32": r"""
/* 2-D transposed convolution, NCHW, weight (C, M/G, KH, KW), scattered: input pixel (iy, ix)
   adds w * x to output (iy*SH - PT + ky*DH, ix*SW - PL + kx*DW). Loops run m, c, ky, kx, so
   every output still receives its terms in the order c, ky, kx. */
PFX_KERNEL void PFX_convt_f32(const float *PFX_RESTRICT x, const float *PFX_RESTRICT w,
                              const float *PFX_RESTRICT b, float *PFX_RESTRICT y,
                              int C, int H, int W, int M, int OH, int OW, int KH, int KW,
                              int SH, int SW, int PT, int PL, int DH, int DW, int G)
{
    const int cg = C / G, mg = M / G;
    int m, iy, ix, c, ky, kx;
    for (m = 0; m < M; ++m) {
        const int g = m / mg, mi = m % mg;
        float *PFX_RESTRICT ym = y + (size_t)m * (size_t)(OH * OW);
        for (iy = 0; iy < OH * OW; ++iy) ym[iy] = b[m];
        for (c = g * cg; c < (g + 1) * cg; ++c) {
            const float *xc = x + (size_t)c * (size_t)(H * W);
            const float *wc = w + ((size_t)c * (size_t)mg + (size_t)mi) * (size_t)(KH * KW);
            for (ky = 0; ky < KH; ++ky) {
                for (kx = 0; kx < KW; ++kx) {
                    const float wv = wc[ky * KW + kx];
                    const int dx = kx * DW - PL;
                    int lo = 0, hi = W;
                    while (lo < W && lo * SW + dx < 0) ++lo;
                    while (hi > lo && (hi - 1) * SW + dx >= OW) --hi;
                    for (iy = 0; iy < H; ++iy) {
                        const int oy = iy * SH - PT + ky * DH;
                        const float *xr;
                        float *yr;
                        if (oy < 0 || oy >= OH) continue;
                        xr = xc + iy * W;
                        yr = ym + oy * OW + dx;
                        for (ix = lo; ix < hi; ++ix) yr[ix * SW] += wv * xr[ix];
                    }
                }
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
    """(name, C text) of an int8 dense kernel for these element types.

    Four output rows share each input load (four independent int32 sums); with weight zero
    points the inner loop is the plain product x[k] * w[n][k] and ``wzp[n] * sum_k x[k]`` is
    subtracted once per row (exact: the generator checks that K * max|x| * max|w| < 2^31)."""
    name = f"PFX_qdense_{xt[0]}{wt[0]}{yt[0]}{'z' if wzp else ''}"
    sumx = ("int32_t sx = 0;\n    for (k = 0; k < K; ++k) sx += (int32_t)x[k];" if wzp else
            "const int32_t sx = 0;")
    corr = " - wzp[n + J] * sx" if wzp else ""

    def fin(j: str) -> str:
        return (f"v = yzp + PFX_requant(a{j}{corr.replace('J', j)} + bias[n + {j}], mult[n + {j}], shift[n + {j}]);\n"
                f"            y[n + {j}] = ({yt})(v < lo ? lo : (v > hi ? hi : v));")

    text = rf"""
/* y[n] = clamp(yzp + requant(bias[n] + sum_k x[k] * (w[n][k] - wzp[n]))); the input zero point
   is folded into bias[n] at generation time (bias[n] -= xzp * sum_k (w[n][k] - wzp[n])), the
   weight zero point is applied once per row as wzp[n] * sum_k x[k]. Rows go four at a time. */
PFX_KERNEL void {name}(const {xt} *PFX_RESTRICT x, const {wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift,
        {yt} *PFX_RESTRICT y, int K, int N, int32_t yzp, int32_t lo, int32_t hi)
{{
    int n, k, r;
    int32_t v;
    {sumx}
    (void)wzp;
    (void)sx;
    for (n = 0; n + 4 <= N; n += 4) {{
        const {wt} *PFX_RESTRICT w0 = w + (size_t)n * (size_t)K;
        const {wt} *PFX_RESTRICT w1 = w0 + K;
        const {wt} *PFX_RESTRICT w2 = w1 + K;
        const {wt} *PFX_RESTRICT w3 = w2 + K;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (k = 0; k < K; ++k) {{
            const int32_t xk = (int32_t)x[k];
            a0 += xk * (int32_t)w0[k];
            a1 += xk * (int32_t)w1[k];
            a2 += xk * (int32_t)w2[k];
            a3 += xk * (int32_t)w3[k];
        }}
        {{
            {fin("0")}
            {fin("1")}
            {fin("2")}
            {fin("3")}
        }}
    }}
    for (r = 0; r < N % 4; ++r) {{ /* the last N % 4 rows */
        const {wt} *PFX_RESTRICT wn = w + (size_t)(n + r) * (size_t)K;
        int32_t a0 = 0;
        for (k = 0; k < K; ++k) a0 += (int32_t)x[k] * (int32_t)wn[k];
        v = yzp + PFX_requant(a0{corr.replace("n + J", "n + r")} + bias[n + r], mult[n + r], shift[n + r]);
        y[n + r] = ({yt})(v < lo ? lo : (v > hi ? hi : v));
    }}
}}
"""
    return name, text


def _qconv(kind: str, xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    name = f"PFX_{kind}_{xt[0]}{wt[0]}{yt[0]}{'z' if wzp else ''}"
    zw = "const int32_t zw = wzp[m];" if wzp else ""
    wterm = "((int32_t)wq - zw)" if wzp else "(int32_t)wq"
    if kind == "qconv":
        doc = ("2-D convolution, NCHW, weight (M, C/G, KH, KW), weight-stationary: each tap's weight\n"
               "   is applied to a whole row of one output channel's int32 sums (acc: OH*OW of the arena)")
        chans = "const int c0 = (m / mg) * cg;\n        int ci;\n        for (ci = 0; ci < cg; ++ci) {\n            const int c = c0 + ci;"
        widx = "(((size_t)m * (size_t)cg + (size_t)ci) * (size_t)KH + (size_t)ky) * (size_t)KW + (size_t)kx"
        rows = """int lo = 0, hi = OW;
                    while (lo < OW && lo * SW + dx < 0) ++lo;
                    while (hi > lo && (hi - 1) * SW + dx >= W) --hi;
                    for (oy = 0; oy < OH; ++oy) {
                        const int iy = oy * SH - PT + ky * DH;
                        const """ + xt + """ *xr;
                        int32_t *ar;
                        if (iy < 0 || iy >= H) continue;
                        xr = xc + iy * W + dx;
                        ar = acc + oy * OW;
                        for (ox = lo; ox < hi; ++ox) ar[ox] += ((int32_t)xr[ox * SW] - xzp) * wv;
                    }"""
    else:
        doc = ("2-D transposed convolution, NCHW, weight (C, M/G, KH, KW), scattered: input pixel\n"
               "   (iy, ix) adds (x - xzp) * w to output (iy*SH - PT + ky*DH, ix*SW - PL + kx*DW)")
        chans = "const int g = m / mg, mi = m % mg;\n        int c;\n        for (c = g * cg; c < (g + 1) * cg; ++c) {"
        widx = "((size_t)c * (size_t)mg + (size_t)mi) * (size_t)(KH * KW) + (size_t)(ky * KW + kx)"
        rows = """int lo = 0, hi = W;
                    while (lo < W && lo * SW + dx < 0) ++lo;
                    while (hi > lo && (hi - 1) * SW + dx >= OW) --hi;
                    for (oy = 0; oy < H; ++oy) { /* oy walks the input rows here */
                        const int ty = oy * SH - PT + ky * DH;
                        const """ + xt + """ *xr;
                        int32_t *ar;
                        if (ty < 0 || ty >= OH) continue;
                        xr = xc + oy * W;
                        ar = acc + ty * OW + dx;
                        for (ox = lo; ox < hi; ++ox) ar[ox * SW] += ((int32_t)xr[ox] - xzp) * wv;
                    }"""
    text = rf"""
/* int8 {doc};
   then y = clamp(yzp + requant(bias[m] + sum (x - xzp) * (w - wzp[m]))). Padded taps add nothing. */
PFX_KERNEL void {name}(const {xt} *PFX_RESTRICT x, const {wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift, {yt} *PFX_RESTRICT y,
        int32_t *PFX_RESTRICT acc,
        int C, int H, int W, int M, int OH, int OW, int KH, int KW,
        int SH, int SW, int PT, int PL, int DH, int DW, int G, int32_t xzp, int32_t yzp, int32_t lo_q, int32_t hi_q)
{{
    const int cg = C / G, mg = M / G;
    int m, oy, ox, ky, kx, i;
    (void)wzp;
    for (m = 0; m < M; ++m) {{
        {zw}
        {yt} *PFX_RESTRICT ym = y + (size_t)m * (size_t)(OH * OW);
        for (i = 0; i < OH * OW; ++i) acc[i] = bias[m];
        {{
        {chans}
            const {xt} *xc = x + (size_t)c * (size_t)(H * W);
            for (ky = 0; ky < KH; ++ky) {{
                for (kx = 0; kx < KW; ++kx) {{
                    const {wt} wq = w[{widx}];
                    const int32_t wv = {wterm};
                    const int dx = kx * DW - PL;
                    {rows}
                }}
            }}
        }}
        }}
        for (i = 0; i < OH * OW; ++i) {{
            const int32_t v = yzp + PFX_requant(acc[i], mult[m], shift[m]);
            ym[i] = ({yt})(v < lo_q ? lo_q : (v > hi_q ? hi_q : v));
        }}
    }}
}}
"""
    return name, text


def qconv(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    return _qconv("qconv", xt, wt, yt, wzp)


def qconvt(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    return _qconv("qconvt", xt, wt, yt, wzp)
