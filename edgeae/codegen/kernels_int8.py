"""int8 C99 kernels (see :mod:`edgeae.codegen.kernels`): the exact requantization, the row
kernel of dense layers, the convolutions' tiles and the transposed convolution (SMLAD where
the core has DSP, Helium/MVE where it has that, SSE2/AVX2 on x86). The C is in
``c/requant.c``, ``c/dsp.c``, ``c/qrows.c``, ``c/qdense.c``, ``c/qtile.c``, ``c/qstore.c``,
``c/qconv.c`` and ``c/qconvt.c``; this module only picks the C types (input, weight, output),
the intrinsics that depend on them, and the pieces that exist only with weight zero points."""

from __future__ import annotations

from edgeae.codegen.templates import fill, read

__all__ = ["DSP", "INT8_REQUANT", "conv_helpers", "qconv", "qconvt", "qdense", "qrows", "qstore", "qtile"]

INT8_REQUANT = "\n" + read("requant.c")
DSP = "\n" + read("dsp.c")


def _name(kind: str, xt: str, wt: str, yt: str, wzp: bool) -> str:
    """``PFX_<kind>_<x><w><y>[z]``: one kernel per type combination (u: uint8_t, i: int8_t)."""
    return f"PFX_{kind}_{xt[0]}{wt[0]}{yt[0]}{'z' if wzp else ''}"


def _types(xt: str, wt: str, yt: str) -> dict[str, str]:
    """The C types and, for the DSP path, the byte-pair widening of x and w (unsigned or signed)."""
    return {"xt": xt, "wt": wt, "yt": yt, "xe": "PFX_u16" if xt == "uint8_t" else "PFX_s16",
            "we": "PFX_u16" if wt == "uint8_t" else "PFX_s16"}


def _mve(xt: str, wt: str) -> str:
    """The Helium loop of :func:`qrows`: 16 inputs of four rows at a time. VLD4 of 32-bit
    elements splits 64 bytes of the layout (4 blocks of [rows 0..3 x 4 inputs]) into one vector
    per row, its 16 bytes in input order. With x and w of one signedness a VMLADAV adds a row's
    16 products (uint8 sums as uint32: exact under the generator's 2^31 bound); with mixed signs
    both sides widen to int16, the even bytes (VMOVLB) and the odd ones (VMOVLT) in turn."""
    def vec(t: str) -> str:
        return "u8" if t == "uint8_t" else "s8"
    head = ["for (; k + 16 <= K; k += 16, g += 64) {",
            "    const uint32x4x4_t wq = vld4q_u32((const uint32_t *)(const void *)g); /* row r: wq.val[r] */",
            f"    const {xt[:-2]}x16_t xv = vldrbq_{vec(xt)}(x + k);"]
    if xt == wt:
        s, at = vec(xt), ("uint32_t" if xt == "uint8_t" else "int32_t")
        body = [f"    a{j} = (int32_t)vmladavaq_{s}(({at})a{j}, xv, vreinterpretq_{s}_u32(wq.val[{j}]));"
                for j in range(4)]
    else:
        def wide(half: str, t: str, v: str) -> str:
            s = vec(t)
            w = f"vmovl{half}q_{s}({v})"
            return w if s == "s8" else f"vreinterpretq_s16_u16({w})"
        body = [f"    const int16x8_t xb = {wide('b', xt, 'xv')}, xt = {wide('t', xt, 'xv')};"]
        for j in range(4):
            wr = f"vreinterpretq_{vec(wt)}_u32(wq.val[{j}])"
            body += [f"    a{j} = vmladavaq_s16(a{j}, xb, {wide('b', wt, wr)});",
                     f"    a{j} = vmladavaq_s16(a{j}, xt, {wide('t', wt, wr)});"]
    return "\n        ".join([*head, *body, "}"])


def qrows(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    """(name, C text) of the int8 row kernel: N outputs of one column (a dense layer), y[n * ys]
    for n < N.

    The weight is stored rows-by-four (see :func:`edgeae.codegen.lower_int8.rows_by_four`):
    for each group of four rows, blocks of 4 inputs (row 0's 4 bytes, row 1's, 2's, 3's), then
    the K % 4 last inputs of each row; any N % 4 last rows follow in plain order. One pointer
    walks it forward, so on a Cortex-M four int32 sums, the input pair and the pointer stay in
    registers: with DSP each 16 products take 3 loads (two LDRD), 10 byte-pair widenings and
    8 SMLAD; without, plain C. With Helium (Cortex-M55) four blocks at a time are one VLD4 (a
    vector per row), one input load and four VMLADAV: 64 products in 9 instructions
    (:func:`_mve`); the K % 16 last inputs take the SMLAD loop. On hosts a block is 16 lanes
    against the 4 inputs repeated four times, which compilers vectorize at -O2 (the unroll
    pragma stops -O3 from unrolling the lane loop before the vectorizer sees it). Every path
    gives the same integers (exact int32 sums). With weight zero points each row subtracts
    ``wzp[n] * sx`` (``${corr0..3}`` in the template)."""
    name = _name("qrows", xt, wt, yt, wzp)
    corr = {f"corr{j}": (f" - wzp[n + {j}] * sx" if wzp else "") for j in range(4)}
    vcorr = ("a = _mm256_sub_epi32(a, _mm256_mullo_epi32(_mm256_loadu_si256((const __m256i *)(const void *)"
             "(wzp + n)), _mm256_set1_epi32(sx)));" if wzp else "")
    return name, "\n" + fill("qrows.c", name=name, mve=_mve(xt, wt), **_types(xt, wt, yt), **corr,
                             **_avx2(xt, wt, yt), vcorr=vcorr)


def _avx2(xt: str, wt: str, yt: str) -> dict[str, str]:
    """The AVX2 paths' widening of x and w codes to int16 and narrowing of output codes (exact in range)."""
    return {"xcvt": "_mm_cvtepu8_epi16" if xt == "uint8_t" else "_mm_cvtepi8_epi16",
            "wcvt": "_mm256_cvtepu8_epi16" if wt == "uint8_t" else "_mm256_cvtepi8_epi16",
            "pack8": "_mm_packus_epi16" if yt == "uint8_t" else "_mm_packs_epi16"}


def _sumx(xt: str) -> str:
    """``sx = sum_k x[k]`` for the weight zero points: 16 codes per VADDVA with Helium."""
    s, at = ("u8", "uint32_t") if xt == "uint8_t" else ("s8", "int32_t")
    return "\n    ".join(["int32_t sx = 0;", "int k = 0;", "#if PFX_MVE",
                           f"for (; k + 16 <= K; k += 16) sx = (int32_t)vaddvaq_{s}(({at})sx, vldrbq_{s}(x + k));",
                           "#endif", "for (; k < K; ++k) sx += (int32_t)x[k];"])


def qdense(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    """(name, C text) of an int8 dense kernel (it calls :func:`qrows`' kernel, emitted with it).

    With weight zero points the products are of raw codes and ``wzp[n] * sum_k x[k]`` is
    subtracted once per row (exact: the generator checks that K * max|x| * max|w| < 2^31); the
    input zero point is folded into the bias at generation time."""
    rows, _ = qrows(xt, wt, yt, wzp)
    name = _name("qdense", xt, wt, yt, wzp)
    sumx = _sumx(xt) if wzp else "const int32_t sx = 0;"
    return name, "\n" + fill("qdense.c", name=name, rows=rows, sumx=sumx, **_types(xt, wt, yt))


def _mve_bytes(t: str) -> dict[str, str]:
    """Helium names for 16 codes of C type ``t``: suffix, vector type, VMLADAV's accumulator type."""
    signed = t == "int8_t"
    return {"mvs": "s8" if signed else "u8", "mvvt": "int8x16_t" if signed else "uint8x16_t",
            "mvat": "int32_t" if signed else "uint32_t"}


def qtile(wt: str) -> tuple[str, str]:
    """(name stem, C text) of the convolutions' int8 tiles for weight type ``wt``:
    ``<stem>4`` (a rows-by-four block of 4 output rows) and ``<stem>1`` (a plain row), each
    against the 8 pixels of an int16 column (``c/qtile.c``: SSE2 / AVX2 PMADDWD on x86, VLD4 +
    VMLADAV with Helium, SMLAD with DSP, plain C elsewhere; the same integers on all)."""
    w = wt[0]
    signed = wt == "int8_t"
    lo128 = "_mm_srai_epi16(_mm_unpacklo_epi8(wv, wv), 8)" if signed else "_mm_unpacklo_epi8(wv, _mm_setzero_si128())"
    hi128 = "_mm_srai_epi16(_mm_unpackhi_epi8(wv, wv), 8)" if signed else "_mm_unpackhi_epi8(wv, _mm_setzero_si128())"
    cvt = "_mm256_cvtepi8_epi16" if signed else "_mm256_cvtepu8_epi16"
    mvb, mvt = (f"vmovl{h}q_s8(vreinterpretq_s8_u32(v))" if signed else
                f"vreinterpretq_s16_u16(vmovl{h}q_u8(vreinterpretq_u8_u32(v)))" for h in "bt")
    text = fill("qtile.c", w=w, wt=wt, lo128=lo128, hi128=hi128, cvt256=cvt, we="PFX_s16" if signed else "PFX_u16",
                mvb=mvb, mvt=mvt, **_mve_bytes(wt))
    return f"PFX_qtile{w}_", "\n" + text.replace(f"PFX_qtile4_{w}", f"PFX_qtile{w}_4").replace(
        f"PFX_qtile1_{w}", f"PFX_qtile{w}_1")


def qstore(yt: str, wzp: bool) -> tuple[str, str]:
    """(name, C text) of the convolutions' requantize-and-store of a tile (``c/qstore.c``)."""
    name = f"PFX_qstore_{yt[0]}{'z' if wzp else ''}"
    u = yt == "uint8_t"
    vcorr = ("v = _mm256_sub_epi32(v, _mm256_mullo_epi32(_mm256_set1_epi32(wzp[n]), "
             "_mm256_loadu_si256((const __m256i *)(const void *)sx)));" if wzp else "")
    return name, "\n" + fill("qstore.c", name=name, yt=yt, corr=" - wzp[n] * sx[j]" if wzp else "",
                             corrdoc=" - wzp[n] * sx[j]" if wzp else "", vcorr=vcorr, pack8=_avx2(yt, yt, yt)["pack8"],
                             mvcorr="vmlaq_n_s32(a, vldrwq_s32(sx + j), -wzp[n])" if wzp else "a",
                             mvstore=f"vstrbq_scatter_offset_p_{'u' if u else 's'}32",
                             mvstore4=f"vstrbq_scatter_offset_{'u' if u else 's'}32",
                             satok="lo == 0 && hi == 255" if u else "lo == -128 && hi == 127",
                             sat="__usat" if u else "__ssat",
                             mvwneg="const int32x4_t wneg = vnegq_s32(vldrwq_s32(wzp + n0));" if wzp else "",
                             mvcorr4="vmlaq_n_s32(a, wneg, sx[j])" if wzp else "a",
                             mvcast="vreinterpretq_u32_s32" if u else "")


def conv_helpers(wt: str, yt: str, wzp: bool) -> dict[str, str]:
    """name -> C text of what :func:`qconv` and :func:`qconvt` call (emitted once per unit)."""
    tile, tile_text = qtile(wt)
    store, store_text = qstore(yt, wzp)
    return {tile: tile_text, store: store_text}


def _conv_fill(template: str, kind: str, xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    name = _name(kind, xt, wt, yt, wzp)
    tile, _ = qtile(wt)
    store, _ = qstore(yt, wzp)
    def gather(j: int) -> str:  # 4 input codes as int32 lanes (Helium, qconv.c)
        g = f"vldrbq_gather_offset_z_{'s' if xt == 'int8_t' else 'u'}32(xc, q{j}, k{j})"
        return g if xt == "int8_t" else f"vreinterpretq_s32_u32({g})"
    same = xt == wt  # qconv's byte column (Helium)
    b = _mve_bytes(xt)
    return name, "\n" + fill(template, name=name, tile4=f"{tile}4", tile1=f"{tile}1", store=store,
                             mvgather0=gather(0), mvgather1=gather(1), mvcol8="1" if same else "0",
                             mvscatter=f"vstrbq_scatter_offset_{b['mvs'][0]}32",
                             mvcast="" if xt == "int8_t" else "vreinterpretq_u32_s32",
                             mvsum=f"vaddvaq_{b['mvs']}(({b['mvat']})sx[j], vldrbq_{b['mvs']}(c8 + PFX_COL8(t, j)))",
                             **_types(xt, wt, yt))


def qconv(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    """(name, C text) of an int8 2-D convolution: 8 pixels' patches to an int16 column, then
    tiles of 4 output rows x 8 pixels (:func:`conv_helpers`, emitted with it).

    The column holds raw input codes, padding as the input zero point (whose products cancel in
    the bias fold), so each pixel is exactly a dense layer's input."""
    return _conv_fill("qconv.c", "qconv", xt, wt, yt, wzp)


def qconvt(xt: str, wt: str, yt: str, wzp: bool) -> tuple[str, str]:
    """(name, C text) of an int8 transposed convolution: a gather by sub-pixel phase (inputs minus
    the input zero point in the column), on the same tiles as :func:`qconv`."""
    return _conv_fill("qconvt.c", "qconvt", xt, wt, yt, wzp)
