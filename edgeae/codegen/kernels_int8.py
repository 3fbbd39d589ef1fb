"""int8 C99 kernel templates (see :mod:`edgeae.codegen.kernels`): the exact requantization,
the row kernel shared by dense layers and convolutions (SMLAD where the core has DSP), and
the transposed convolution."""

from __future__ import annotations

__all__ = ["DSP", "INT8_REQUANT", "qconv", "qconvt", "qdense", "qrows"]

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


DSP = r"""
/* Cortex-M4/M7/M33/M55 (ARMv7E-M / ARMv8-M DSP): two 8x8-bit products per SMLAD. Four bytes
   are loaded as one word; SXTB16/UXTB16 widen bytes 0 and 2, and (rotated by 8) bytes 1 and
   3, into 16-bit pairs. Define PFX_NO_DSP to build the portable loops instead. */
#include <string.h>
#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && !defined(PFX_NO_DSP)
#define PFX_DSP 1
#include <arm_acle.h>
static inline uint32_t PFX_load4(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline int32_t PFX_s16e(uint32_t v) { return (int32_t)__sxtb16((int32_t)v); }
static inline int32_t PFX_u16e(uint32_t v) { return (int32_t)__uxtb16(v); }
#if defined(__GNUC__)
static inline int32_t PFX_s16o(uint32_t v) { int32_t r; __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v)); return r; }
static inline int32_t PFX_u16o(uint32_t v) { int32_t r; __asm__("uxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v)); return r; }
#else
static inline int32_t PFX_s16o(uint32_t v) { return (int32_t)__sxtb16((int32_t)((v >> 8) | (v << 24))); }
static inline int32_t PFX_u16o(uint32_t v) { return (int32_t)__uxtb16((v >> 8) | (v << 24)); }
#endif
#else
#define PFX_DSP 0
#endif
"""


def _ext(t: str) -> str:
    return "PFX_u16" if t == "uint8_t" else "PFX_s16"


def qrows(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    """(name, C text) of the int8 row kernel: N outputs of one column (a dense layer, or one
    pixel of a convolution after im2col), y[n * ys] for n < N.

    The weight is stored rows-by-four (see :func:`edgeae.codegen.lower_int8.rows_by_four`):
    for each group of four rows, blocks of 4 inputs (row 0's 4 bytes, row 1's, 2's, 3's), then
    the K % 4 last inputs of each row; any N % 4 last rows follow in plain order. One pointer
    walks it forward, so on a Cortex-M four int32 sums, the input pair and the pointer stay in
    registers: with DSP each 16 products take 3 loads (two LDRD), 10 byte-pair widenings and
    8 SMLAD; without, plain C. On hosts a block is 16 lanes against the 4 inputs repeated four
    times, which compilers vectorize at -O2 (the unroll pragma stops -O3 from unrolling the lane
    loop before the vectorizer sees it)."""
    name = f"PFX_qrows_{xt[0]}{wt[0]}{yt[0]}{'z' if wzp else ''}"
    corr = " - wzp[n + J] * sx" if wzp else ""
    xe, we = _ext(xt), _ext(wt)

    def fin(j: str) -> str:
        return (f"v = yzp + PFX_requant(a{j}{corr.replace('J', j)} + bias[n + {j}], mult[n + {j}], shift[n + {j}]);\n"
                f"            y[(size_t)(n + {j}) * ys] = ({yt})(v < lo ? lo : (v > hi ? hi : v));")

    def dsp(block: int, sub: int) -> str:
        lines = [f"xv = PFX_load4(x + k + {4 * sub}); xe = {xe}e(xv); xo = {xe}o(xv);"]
        for r in range(4):
            lines.append(f"wv = PFX_load4(g + {block * r + 4 * sub}); a{r} = __smlad({we}e(wv), xe, a{r}); "
                         f"a{r} = __smlad({we}o(wv), xo, a{r});")
        return "\n            ".join(lines)

    def port(j: int) -> str:
        return (f"a{j} += x0 * (int32_t)g[{4 * j}] + x1 * (int32_t)g[{4 * j + 1}] + x2 * (int32_t)g[{4 * j + 2}]"
                f" + x3 * (int32_t)g[{4 * j + 3}];")

    text = rf"""
/* y[n] = clamp(yzp + requant(bias[n] - wzp[n] * sx + sum_k x[k] * w[n][k])), sx = sum_k x[k]
   (the caller's), for the rows-by-four weight layout; rows go four at a time. */
PFX_KERNEL void {name}(const {xt} *PFX_RESTRICT x, const {wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift, int32_t sx,
        {yt} *PFX_RESTRICT y, size_t ys, int K, int N, int32_t yzp, int32_t lo, int32_t hi)
{{
    const {wt} *PFX_RESTRICT g = w;
    const int T = K % 4, N4 = N - N % 4;
    int n, k, t;
    int32_t v;
    (void)wzp;
    (void)sx;
    for (n = 0; n < N4; n += 4) {{
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#if PFX_DSP
        uint32_t xv, wv;
        int32_t xe, xo;
        for (k = 0; k + 4 <= K; k += 4, g += 16) {{
            {dsp(4, 0)}
        }}
#elif defined(__thumb__) || defined(__arm__)
        for (k = 0; k + 4 <= K; k += 4, g += 16) {{
            const int32_t x0 = (int32_t)x[k], x1 = (int32_t)x[k + 1], x2 = (int32_t)x[k + 2], x3 = (int32_t)x[k + 3];
            {port(0)}
            {port(1)}
            {port(2)}
            {port(3)}
        }}
#else
        {{ /* hosts: 16 lanes (4 rows x 4 inputs), the inputs repeated to match; vectorizes */
            int32_t acc[16];
            {xt} xr[16];
            int l;
            for (l = 0; l < 16; ++l) acc[l] = 0;
            for (k = 0; k + 4 <= K; k += 4, g += 16) {{
                memcpy(xr, x + k, 4);
                memcpy(xr + 4, x + k, 4);
                memcpy(xr + 8, x + k, 4);
                memcpy(xr + 12, x + k, 4);
#pragma GCC unroll 1
                for (l = 0; l < 16; ++l) acc[l] += (int32_t)xr[l] * (int32_t)g[l];
            }}
            a0 = acc[0] + acc[1] + acc[2] + acc[3];
            a1 = acc[4] + acc[5] + acc[6] + acc[7];
            a2 = acc[8] + acc[9] + acc[10] + acc[11];
            a3 = acc[12] + acc[13] + acc[14] + acc[15];
        }}
#endif
        for (t = 0; t < T; ++t) {{
            const int32_t xk = (int32_t)x[k + t];
            a0 += xk * (int32_t)g[t];
            a1 += xk * (int32_t)g[T + t];
            a2 += xk * (int32_t)g[2 * T + t];
            a3 += xk * (int32_t)g[3 * T + t];
        }}
        g += 4 * T;
        {{
            {fin("0")}
            {fin("1")}
            {fin("2")}
            {fin("3")}
        }}
    }}
    for (n = N4; n < N; ++n, g += K) {{ /* the last N % 4 rows, plain */
        int32_t a0 = 0;
        for (k = 0; k < K; ++k) a0 += (int32_t)x[k] * (int32_t)g[k];
        {fin("0")}
    }}
}}
"""
    return name, text


def qdense(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    """(name, C text) of an int8 dense kernel (it calls :func:`qrows`' kernel, emitted with it).

    With weight zero points the products are of raw codes and ``wzp[n] * sum_k x[k]`` is
    subtracted once per row (exact: the generator checks that K * max|x| * max|w| < 2^31); the
    input zero point is folded into the bias at generation time."""
    rows, _ = qrows(xt, wt, yt, wzp)
    name = f"PFX_qdense_{xt[0]}{wt[0]}{yt[0]}{'z' if wzp else ''}"
    sumx = ("int32_t sx = 0;\n    int k;\n    for (k = 0; k < K; ++k) sx += (int32_t)x[k];" if wzp else
            "const int32_t sx = 0;")
    text = rf"""
/* y[n] = clamp(yzp + requant(bias[n] + sum_k x[k] * (w[n][k] - wzp[n]))); the input zero point
   is folded into bias[n] at generation time (bias[n] -= xzp * sum_k (w[n][k] - wzp[n])). */
PFX_KERNEL void {name}(const {xt} *PFX_RESTRICT x, const {wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift,
        {yt} *PFX_RESTRICT y, int K, int N, int32_t yzp, int32_t lo, int32_t hi)
{{
    {sumx}
    {rows}(x, w, bias, wzp, mult, shift, sx, y, 1u, K, N, yzp, lo, hi);
}}
"""
    return name, text


def qconv(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    """(name, C text) of an int8 2-D convolution: im2col of one pixel, then :func:`qrows`.

    The column holds the C/G * KH * KW input codes of one output pixel, padding as the input
    zero point (whose products cancel in the bias fold), so it is exactly a dense layer's input."""
    rows, _ = qrows(xt, wt, yt, wzp)
    name = f"PFX_qconv_{xt[0]}{wt[0]}{yt[0]}{'z' if wzp else ''}"
    zoff = "wzp + (size_t)gi * (size_t)mg" if wzp else "wzp"
    text = rf"""
/* int8 2-D convolution, NCHW, weight (M, C/G, KH, KW) stored rows-by-four per group: for each
   group and output pixel, the pixel's input patch is copied to col (C/G*KH*KW codes of the
   arena; padding = the input zero point xzp) and the group's M/G outputs are computed by
   {rows} as a dense layer (input zero point folded into the bias at generation). */
PFX_KERNEL void {name}(const {xt} *PFX_RESTRICT x, const {wt} *PFX_RESTRICT w,
        const int32_t *PFX_RESTRICT bias, const int32_t *PFX_RESTRICT wzp,
        const int32_t *PFX_RESTRICT mult, const int32_t *PFX_RESTRICT shift, {yt} *PFX_RESTRICT y,
        {xt} *PFX_RESTRICT col,
        int C, int H, int W, int M, int OH, int OW, int KH, int KW,
        int SH, int SW, int PT, int PL, int DH, int DW, int G, int32_t xzp, int32_t yzp, int32_t lo_q, int32_t hi_q)
{{
    const int cg = C / G, mg = M / G, taps = cg * KH * KW;
    int gi, oy, ox, c, ky, kx;
    for (gi = 0; gi < G; ++gi) {{
        const {wt} *PFX_RESTRICT wg = w + (size_t)gi * (size_t)mg * (size_t)taps;
        for (oy = 0; oy < OH; ++oy) {{
            for (ox = 0; ox < OW; ++ox) {{
                int32_t sx = 0;
                int t = 0;
                for (c = 0; c < cg; ++c) {{
                    const {xt} *xc = x + (size_t)(gi * cg + c) * (size_t)(H * W);
                    for (ky = 0; ky < KH; ++ky) {{
                        const int iy = oy * SH - PT + ky * DH;
                        for (kx = 0; kx < KW; ++kx) {{
                            const int ix = ox * SW - PL + kx * DW;
                            const {xt} v = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? xc[iy * W + ix] : ({xt})xzp;
                            col[t++] = v;
                            sx += (int32_t)v;
                        }}
                    }}
                }}
                {rows}(col, wg, bias + (size_t)gi * (size_t)mg, {zoff}, mult + (size_t)gi * (size_t)mg,
                    shift + (size_t)gi * (size_t)mg, sx, y + (size_t)gi * (size_t)mg * (size_t)(OH * OW) + (size_t)(oy * OW + ox),
                    (size_t)(OH * OW), taps, mg, yzp, lo_q, hi_q);
            }}
        }}
    }}
}}
"""
    return name, text


def qconvt(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    """(name, C text) of an int8 transposed convolution (scatter into OH*OW int32 sums)."""
    kind = "qconvt"
    name = f"PFX_{kind}_{xt[0]}{wt[0]}{yt[0]}{'z' if wzp else ''}"
    zw = "const int32_t zw = wzp[m];" if wzp else ""
    wterm = "((int32_t)wq - zw)" if wzp else "(int32_t)wq"
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

