"""int8 C99 kernels (see :mod:`edgeae.codegen.kernels`): the exact requantization, the row
kernel shared by dense layers and convolutions (SMLAD where the core has DSP), and the
transposed convolution. The C is in ``c/requant.c``, ``c/dsp.c``, ``c/qrows.c``,
``c/qdense.c``, ``c/qconv.c`` and ``c/qconvt.c``; this module only picks the C types (input,
weight, output) and the pieces that exist only with weight zero points."""

from __future__ import annotations

from edgeae.codegen.templates import fill, read

__all__ = ["DSP", "INT8_REQUANT", "qconv", "qconvt", "qdense", "qrows"]

INT8_REQUANT = "\n" + read("requant.c")
DSP = "\n" + read("dsp.c")


def _name(kind: str, xt: str, wt: str, yt: str, wzp: bool) -> str:
    """``PFX_<kind>_<x><w><y>[z]``: one kernel per type combination (u: uint8_t, i: int8_t)."""
    return f"PFX_{kind}_{xt[0]}{wt[0]}{yt[0]}{'z' if wzp else ''}"


def _types(xt: str, wt: str, yt: str) -> dict[str, str]:
    """The C types and, for the DSP path, the byte-pair widening of x and w (unsigned or signed)."""
    return {"xt": xt, "wt": wt, "yt": yt, "xe": "PFX_u16" if xt == "uint8_t" else "PFX_s16",
            "we": "PFX_u16" if wt == "uint8_t" else "PFX_s16"}


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
    loop before the vectorizer sees it). With weight zero points each row subtracts
    ``wzp[n] * sx`` (``${corr0..3}`` in the template)."""
    name = _name("qrows", xt, wt, yt, wzp)
    corr = {f"corr{j}": (f" - wzp[n + {j}] * sx" if wzp else "") for j in range(4)}
    return name, "\n" + fill("qrows.c", name=name, **_types(xt, wt, yt), **corr)


def qdense(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    """(name, C text) of an int8 dense kernel (it calls :func:`qrows`' kernel, emitted with it).

    With weight zero points the products are of raw codes and ``wzp[n] * sum_k x[k]`` is
    subtracted once per row (exact: the generator checks that K * max|x| * max|w| < 2^31); the
    input zero point is folded into the bias at generation time."""
    rows, _ = qrows(xt, wt, yt, wzp)
    name = _name("qdense", xt, wt, yt, wzp)
    sumx = ("int32_t sx = 0;\n    int k;\n    for (k = 0; k < K; ++k) sx += (int32_t)x[k];" if wzp else
            "const int32_t sx = 0;")
    return name, "\n" + fill("qdense.c", name=name, rows=rows, sumx=sumx, **_types(xt, wt, yt))


def qconv(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    """(name, C text) of an int8 2-D convolution: im2col of one pixel, then :func:`qrows`.

    The column holds the C/G * KH * KW input codes of one output pixel, padding as the input
    zero point (whose products cancel in the bias fold), so it is exactly a dense layer's input."""
    rows, _ = qrows(xt, wt, yt, wzp)
    name = _name("qconv", xt, wt, yt, wzp)
    zoff = "wzp + (size_t)gi * (size_t)mg" if wzp else "wzp"
    return name, "\n" + fill("qconv.c", name=name, rows=rows, zoff=zoff, **_types(xt, wt, yt))


def qconvt(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    """(name, C text) of an int8 transposed convolution (scatter into OH*OW int32 sums)."""
    name = _name("qconvt", xt, wt, yt, wzp)
    zw = "const int32_t zw = wzp[m];" if wzp else ""
    wterm = "((int32_t)wq - zw)" if wzp else "(int32_t)wq"
    return name, "\n" + fill("qconvt.c", name=name, zw=zw, wterm=wterm, **_types(xt, wt, yt))
