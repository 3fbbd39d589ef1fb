"""Program -> one C99 header + source pair, stb style: one prefix, the top comment is the manual."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeae.codegen import kernels as K
from edgeae.codegen.program import CTYPES, Program, Step
from edgeae.codegen.x86 import avx2_copy

__all__ = ["Unit", "emit"]


@dataclass
class Unit:
    """What :func:`emit` produces for one graph."""

    name: str  # symbol prefix and file stem, e.g. "model_encoder_int8"
    header: str  # <name>.h
    source: str  # <name>.c
    arena_bytes: int
    weight_bytes: int
    inputs: list[tuple[str, str, int]]  # (tensor, C type, elements)
    outputs: list[tuple[str, str, int]]


def _lit(v, dtype: np.dtype) -> str:
    if dtype == np.float32:
        f = float(v)
        s = f"{f:.9g}"
        if "e" not in s and "." not in s and "n" not in s:
            s += ".0"
        return s + "f"
    return str(int(v))


def _array(name: str, values: np.ndarray) -> str:
    flat = values.reshape(-1)
    ctype = CTYPES[values.dtype.name]
    if values.dtype == np.float32 and not np.all(np.isfinite(flat)):
        raise ValueError(f"constant {name} holds non-finite values")
    items = [_lit(v, values.dtype) for v in flat]
    lines, line = [], "   "
    for it in items:
        if len(line) + len(it) + 2 > 100:
            lines.append(line)
            line = "   "
        line += " " + it + ","
    lines.append(line)
    shape = "x".join(str(d) for d in values.shape) or "1"
    align = " PFX_ALIGNED" if values.dtype.itemsize == 1 else ""  # byte weights on a word (VLD4.32)
    return f"static const {ctype} PFX_{name}[{len(flat)}]{align} = {{ /* {shape} */\n" + "\n".join(lines) + "\n};\n"


def _param(t: str) -> str:
    from edgeae.codegen.program import c_ident

    return c_ident(t)


class _Emitter:
    def __init__(self, p: Program, name: str):
        self.p, self.name = p, name
        self.kernels: dict[str, str] = {}

    def ptr(self, b: str) -> str:
        buf = self.p.buffers[b]
        if buf.kind in ("input", "output"):
            return _param(b)
        return f"(({buf.ctype} *)(a + {buf.offset}))"

    def cptr(self, b: str) -> str:
        buf = self.p.buffers[b]
        if buf.kind == "input":
            return _param(b)
        return f"((const {buf.ctype} *)(a + {buf.offset}))" if buf.kind == "arena" else _param(b)

    def step(self, s: Step) -> str:
        fn = getattr(self, f"s_{s.kind}")
        return fn(s)

    def _conv_args(self, q: dict) -> str:
        return ", ".join(str(q[k]) for k in ("C", "H", "W", "M", "OH", "OW", "KH", "KW", "SH", "SW", "PT", "PL", "DH",
                                             "DW", "G"))

    def s_dense_f32(self, s: Step) -> str:
        self.kernels["dense_f32"] = K.FP32["dense_f32"]
        q = s.params
        return (f"PFX_dense_f32({self.cptr(s.reads[0])}, PFX_{q['w']}, PFX_{q['b']}, {self.ptr(s.writes[0])}, "
                f"{self.ptr(s.writes[1])}, {q['K']}, {q['N']});")

    def s_conv_f32(self, s: Step, kind: str = "conv_f32") -> str:
        self.kernels.setdefault("conv_tile_f32", K.FP32["conv_tile_f32"])
        self.kernels[kind] = K.FP32[kind]
        q = s.params
        col = "".join(f" {self.ptr(b)}," for b in s.writes[1:])  # the column of 8 pixels' patches
        return (f"PFX_{kind}({self.cptr(s.reads[0])}, PFX_{q['w']}, PFX_{q['b']}, {self.ptr(s.writes[0])},{col}\n"
                f"        {self._conv_args(q)});")

    def s_convt_f32(self, s: Step) -> str:
        return self.s_conv_f32(s, "convt_f32")

    def s_copy(self, s: Step) -> str:
        src, dst = s.reads[0], s.writes[0]
        ct = self.p.buffers[dst].ctype
        return (f"{{ size_t i; const {self.p.buffers[src].ctype} *s = {self.cptr(src)}; {ct} *d = {self.ptr(dst)};\n"
                f"      for (i = 0; i < {s.params['n']}u; ++i) d[i] = ({ct})s[i]; }}")

    def s_pointwise(self, s: Step) -> str:
        src, dst = s.reads[0], s.writes[0]
        st, dt = self.p.buffers[src].ctype, self.p.buffers[dst].ctype
        other = s.params.get("other")
        lines = [f"{{ size_t i; const {st} *s = {self.cptr(src)}; {dt} *d = {self.ptr(dst)};"]
        if other:
            lines.append(f"  const {self.p.buffers[other].ctype} *u = {self.cptr(other)};")
        lines.append(f"  for (i = 0; i < {s.params['n']}u; ++i) {{")
        lines.append("    float v = (float)s[i];")
        lines += [f"    {e}" for e in s.params["exprs"]]
        lines.append(f"    d[i] = ({dt})v;")
        lines.append("  } }")
        return "\n      ".join(lines)

    # ---- int8 ------------------------------------------------------------------------------
    def _q(self, s: Step) -> tuple[str, str, str]:
        xt = self.p.buffers[s.reads[0]].ctype
        yt = self.p.buffers[s.writes[0]].ctype
        wt = CTYPES[self.p.consts[s.params["w"]].dtype.name]
        self.kernels["requant"] = K.INT8_REQUANT
        self.kernels.setdefault("dsp", K.DSP)
        if s.kind == "qdense":  # the row kernel
            rows, text = K.qrows(xt, wt, yt, s.params["wzp"] is not None)
            self.kernels[rows] = text
        else:  # the convolutions' tiles and requantize-and-store
            for name, text in K.conv_helpers(wt, yt, s.params["wzp"] is not None).items():
                self.kernels.setdefault(name, text)
        return xt, wt, yt

    def s_qdense(self, s: Step) -> str:
        xt, wt, yt = self._q(s)
        q = s.params
        name, text = K.qdense(xt, wt, yt, q["wzp"] is not None)
        self.kernels[name] = text
        wzp = f"PFX_{q['wzp']}" if q["wzp"] else "0"
        return (f"{name}({self.cptr(s.reads[0])}, PFX_{q['w']}, PFX_{q['bias']}, {wzp}, PFX_{q['mult']}, "
                f"PFX_{q['shift']},\n        {self.ptr(s.writes[0])}, {q['K']}, {q['N']}, {q['yzp']}, {q['lo']}, "
                f"{q['hi']});")

    def s_qconv(self, s: Step, fn=K.qconv) -> str:
        """The scratch of both is the int16 column of 8 output pixels' inputs."""
        xt, wt, yt = self._q(s)
        q = s.params
        name, text = fn(xt, wt, yt, q["wzp"] is not None)
        self.kernels[name] = text
        wzp = f"PFX_{q['wzp']}" if q["wzp"] else "0"
        return (f"{name}({self.cptr(s.reads[0])}, PFX_{q['w']}, PFX_{q['bias']}, {wzp}, PFX_{q['mult']}, "
                f"PFX_{q['shift']},\n        {self.ptr(s.writes[0])}, {self.ptr(s.writes[1])}, {self._conv_args(q)}, "
                f"{q['xzp']}, {q['yzp']}, "
                f"{q['lo']}, {q['hi']});")

    def s_qconvt(self, s: Step) -> str:
        return self.s_qconv(s, K.qconvt)

    def s_lut(self, s: Step) -> str:
        src, dst = s.reads[0], s.writes[0]
        st, dt = self.p.buffers[src].ctype, self.p.buffers[dst].ctype
        idx = "s[i]" if st == "uint8_t" else "(uint8_t)(s[i] + 128)"
        tv = s.params["table_v"]
        if tv.ndim == 2:  # one table per position, period P along the sample
            P = len(tv)
            idx = "s[i + j]" if st == "uint8_t" else "(uint8_t)(s[i + j] + 128)"
            return (f"{{ size_t i, j; const {st} *s = {self.cptr(src)}; {dt} *d = {self.ptr(dst)};\n"
                    f"      for (i = 0; i < {s.params['n']}u; i += {P}u)\n"
                    f"        for (j = 0; j < {P}u; ++j) d[i + j] = PFX_{s.params['table']}[j * 256u + {idx}]; }}")
        return (f"{{ size_t i; const {st} *s = {self.cptr(src)}; {dt} *d = {self.ptr(dst)};\n"
                f"      for (i = 0; i < {s.params['n']}u; ++i) d[i] = PFX_{s.params['table']}[{idx}]; }}")

    def s_dequantize(self, s: Step) -> str:
        src, dst = s.reads[0], s.writes[0]
        q = s.params
        return (f"{{ size_t i; const {self.p.buffers[src].ctype} *s = {self.cptr(src)}; float *d = {self.ptr(dst)};\n"
                f"      for (i = 0; i < {q['n']}u; ++i) d[i] = (float)((int32_t)s[i] - {q['zp']}) * "
                f"{_lit(q['scale'], np.dtype(np.float32))}; /* DequantizeLinear */ }}")

    def s_quantize(self, s: Step) -> str:
        src, dst = s.reads[0], s.writes[0]
        dt = self.p.buffers[dst].ctype
        q = s.params
        return (f"{{ size_t i; const float *s = {self.cptr(src)}; {dt} *d = {self.ptr(dst)};\n"
                f"      for (i = 0; i < {q['n']}u; ++i) {{\n"
                f"        /* QuantizeLinear: round(x / {q['scale_text']}) to even, + {q['zp']}, saturate */\n"
                f"        float t = s[i] / {_lit(q['scale'], np.dtype(np.float32))};\n"
                f"        int32_t v;\n"
                f"        if (!(t >= -32768.0f)) t = -32768.0f; /* NaN too */\n"
                f"        if (t > 32768.0f) t = 32768.0f;\n"
                f"        t = (t + 12582912.0f) - 12582912.0f; /* 1.5 * 2^23: rounds to an integer, ties to even */\n"
                f"        v = (int32_t)t + {q['zp']};\n"
                f"        d[i] = ({dt})(v < {q['lo']} ? {q['lo']} : (v > {q['hi']} ? {q['hi']} : v));\n"
                f"      }} }}")


@dataclass
class _Facts:
    """What the header and the source both need to know about one program."""

    name: str
    up: str
    meta: dict
    arena: int
    ins: list
    outs: list
    sig_args: str
    fp: bool
    wide: bool
    libm: bool
    fastmath_guard: bool  # float input quantized with a rounding that -ffast-math folds away


def _facts(p: Program, name: str, meta: dict, arena: int) -> _Facts:
    """Gather the signature, alignment and libm needs, so both texts agree on them."""
    ins = [(t, p.buffers[t].ctype, p.buffers[t].numel) for t in p.inputs]
    outs = [(t, p.buffers[t].ctype, p.buffers[t].numel) for t in p.outputs]
    sig_args = ", ".join([f"const {ct} *{_param(t)}" for t, ct, _ in ins] + [f"{ct} *{_param(t)}" for t, ct, _ in outs])
    fp = p.precision == "fp32"
    # 4-byte alignment when the arena holds floats or an int16 column (int8 convolutions)
    wide = fp or any(b.kind == "arena" and b.dtype in ("float32", "int32", "int16") for b in p.buffers.values())
    libm = fp and any(("expf" in x or "tanhf" in x or "rintf" in x) for s in p.steps
                      for x in s.params.get("exprs", []))
    guard = any(s.kind == "quantize" for s in p.steps)
    return _Facts(name, name.upper(), meta, arena, ins, outs, sig_args, fp, wide, libm, guard)


_FASTMATH_DOC = """ * Not with -ffast-math: float input is quantized by one IEEE division and a round half to
 * even ((t + 1.5 * 2^23) - 1.5 * 2^23) that -ffast-math, -fassociative-math and
 * -freciprocal-math rewrite, which changes codes. The source refuses to
 * compile under -ffast-math (#error when __FAST_MATH__ is defined); build this one file
 * without those flags when the rest of the project uses them.
"""

_FASTMATH_ERROR = """
#if defined(__FAST_MATH__)
#error "PFXNAME.c quantizes float input exactly (IEEE division, ties to even): build it without -ffast-math"
#endif
"""


def _manual(p: Program, f: _Facts) -> str:
    """The header's top comment: how to call, build and size the generated code."""
    name, up, meta, arena, ins, outs, wide, libm = f.name, f.up, f.meta, f.arena, f.ins, f.outs, f.wide, f.libm
    io_doc = "\n".join(f" *   {'in ' if (t, ct, n) in ins else 'out'} {_param(t):<8} {ct} [{n}]" for t, ct, n in ins + outs)
    notes = "".join(f" * {line}\n" for line in meta.get("notes", []))
    manual = f"""/* {name}.h - {meta['role']} of an edgeae bundle as dependency-free C99 ({meta['precision']})
 *
 * Generated by edgeae {meta['version']} from {meta['graph']}
 * graph SHA-256: {meta['sha256']}
 *
 * Usage (one sample per call; no malloc, no VLAs, no recursion):
 *
 *   #include "{name}.h"
 *   {name}({", ".join(_param(t) for t, _, _ in ins + outs)});                 // static arena: not reentrant
 *   {name}_arena({", ".join(_param(t) for t, _, _ in ins + outs)}, arena);    // caller's arena: reentrant
 *
 * Arguments:
{io_doc}
 *   arena: {up}_ARENA_BYTES bytes, {'aligned to 4 bytes' if wide else 'any alignment'} (e.g. a static
 *          array, or a stack array in the calling thread); it holds the intermediate tensors.
 *
 * Build: add {name}.c to the project (cc -std=c99 -O2 -c {name}.c{' ; link with -lm' if libm else ''}).
 * It compiles as C99 and C++ (extern "C" below). {'Uses expf/tanhf/rintf from libm.' if libm else 'Needs no libm.'}
 * x86-64 with gcc (no -mavx2 / -march=native): the kernels are also built for AVX2, without FMA
 * (the same bits), and a call runs that copy when the CPU has AVX2; define {up}_NO_DISPATCH
 * to build the baseline copy alone.
 * Memory: weights {p.weight_bytes} bytes of const data (flash), arena {arena} bytes (RAM),
 * both computed at generation time; plus the stack of one call, which depends on compiler and
 * core: edgeae.codegen.cortexm.run_generated measures it on emulated Cortex-M (stack painted,
 * one call run, scanned), as do the published figures.
{notes}{_FASTMATH_DOC if f.fastmath_guard else ''} */"""
    return manual


def _header(p: Program, f: _Facts) -> str:
    """The header text (still with the PFX_ placeholder prefix)."""
    name, up, meta, arena, ins, outs, sig_args = f.name, f.up, f.meta, f.arena, f.ins, f.outs, f.sig_args
    sizes = []
    names = {_param(t) for t, _, _ in ins + outs}
    for t, ct, n in ins + outs:
        shape = "x".join(str(d) for d in p.buffers[t].shape)
        sizes.append(f"#define {up}_{_param(t).upper()}_SIZE {n} /* {ct} elements, shape {shape} */")
    manual = _manual(p, f)
    header = f"""{manual}
#ifndef {up}_H
#define {up}_H

#include <stdint.h>

{chr(10).join(sizes)}
#define {up}_INPUT_SIZE {ins[0][2]} /* elements of the first input */
#define {up}_OUTPUT_SIZE {outs[0][2]} /* elements of the first output */
{'' if 'code' in names else f"#define {up}_CODE_SIZE {meta['code_size']} /* width of the latent code */"}
#define {up}_ARENA_BYTES {arena} /* scratch RAM per call */
#define {up}_WEIGHT_BYTES {p.weight_bytes} /* const weights and tables */

#ifdef __cplusplus
extern "C" {{
#endif

/* Runs the graph on one sample using a static arena; returns 0. Not reentrant. */
int {name}({sig_args});

/* The same with the caller's arena ({up}_ARENA_BYTES bytes); reentrant. Returns 0, or -1
   when arena is NULL or misaligned. */
int {name}_arena({sig_args}, void *arena);

#ifdef __cplusplus
}}
#endif

#endif /* {up}_H */
"""
    return header


def _source(p: Program, f: _Facts, e: _Emitter, body: list[str]) -> str:
    """The source text: weights, the kernels the steps used, and the graph function."""
    name, meta, arena, ins, outs, sig_args = f.name, f.meta, f.arena, f.ins, f.outs, f.sig_args
    fp, wide, libm = f.fp, f.wide, f.libm
    arena_c = max(arena, 1)
    consts = "".join(_array(n, v) for n, v in p.consts.items())
    align_check = " || (((uintptr_t)arena) & 3u) != 0u" if wide else ""
    storage = (f"static float PFX_arena_storage[{(arena_c + 3) // 4}];" if fp else
               f"static int32_t PFX_arena_storage[{(arena_c + 3) // 4}];" if wide else
               f"static uint8_t PFX_arena_storage[{arena_c}];")
    call_args = ", ".join(_param(t) for t, _, _ in ins + outs)
    kernels = "".join(e.kernels.values())
    avx2, avx2_graph, dispatch = avx2_copy(kernels, chr(10).join(body), sig_args)
    source = f"""/* {name}.c - generated by edgeae {meta['version']} from {meta['graph']} (SHA-256 {meta['sha256'][:16]}...).
 * See {name}.h for the manual. */
#include "{name}.h"

#include <stddef.h>
{'#include <math.h>' if libm else ''}{_FASTMATH_ERROR.replace('PFXNAME', name) if f.fastmath_guard else ''}

/* How kernels are declared: one static copy each (define it as
   "static inline __attribute__((always_inline))" to inline them at every call instead). */
#ifndef PFX_KERNEL
#define PFX_KERNEL static
#endif
#if defined(__cplusplus)
#define PFX_RESTRICT __restrict
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L
#define PFX_RESTRICT restrict
#else
#define PFX_RESTRICT
#endif
/* Byte arrays start on a word: the Helium row kernel reads weights as 32-bit elements. */
#if defined(__GNUC__)
#define PFX_ALIGNED __attribute__((aligned(4)))
#else
#define PFX_ALIGNED
#endif

/* ---- weights ({p.weight_bytes} bytes) ---- */
{consts}
/* ---- kernels ---- */
{kernels}{avx2}
/* ---- the graph ---- */
{avx2_graph}
int {name}_arena({sig_args}, void *arena)
{{
    unsigned char *a = (unsigned char *)arena;
    if (arena == NULL{align_check}) return -1;
    (void)a;
{dispatch}
{chr(10).join(body)}
    return 0;
}}

{storage}

int {name}({sig_args})
{{
    return {name}_arena({call_args}, PFX_arena_storage);
}}
"""
    return source


def emit(p: Program, name: str, meta: dict) -> Unit:
    """Write the header and source text of ``p`` with every symbol prefixed by ``name``.

    ``meta``: graph (file name), sha256, role, precision, version, code_size, notes (list of lines).
    """
    arena = p.plan_arena()
    e = _Emitter(p, name)
    body = []
    for s in p.steps:
        body.append(f"    /* {s.node} */\n    {e.step(s)}")
    f = _facts(p, name, meta, arena)
    up = f.up
    header = _header(p, f)
    source = _source(p, f, e, body)
    for macro in ("RESTRICT", "KERNEL", "ALIGNED", "NO_DSP", "DSP", "NO_MVE", "MVE", "NO_DISPATCH", "NO_VECTOR"):
        source = source.replace(f"PFX_{macro}", f"{up}_{macro}")
    source = source.replace("PFX_", f"{name}_")
    header = header.replace("PFX_", f"{name}_")
    return Unit(name, header, source, arena, p.weight_bytes, f.ins, f.outs)
