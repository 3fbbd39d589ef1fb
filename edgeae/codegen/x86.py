"""x86-64 hosts: a second copy of a unit's kernels and graph built for AVX2, chosen at run time.

A plain ``gcc -O2`` build for x86-64 may use SSE2 only, so the kernels' 8-lane float vectors
and PMADDWD tiles run at half width. When the compiler is gcc (which defines ``__AVX__`` /
``__AVX2__`` inside ``#pragma GCC target`` regions, so the kernels' own ``#if __AVX2__`` paths
are taken) and the build does not already target AVX2, the unit holds the kernels and the graph
twice: a copy compiled for AVX2 under ``#pragma GCC target("avx2")`` and the baseline one; the
graph function takes the AVX2 copy when ``__builtin_cpu_supports("avx2")`` says the CPU (and
the OS) can run it. Results are the same bits: "avx2" does not enable FMA, so no multiply-add
is contracted and every sum runs in the same order as in the baseline copy.

Elsewhere (Cortex-M, other architectures, clang, MSVC, builds with -mavx2 or -march=native)
the preprocessor removes the copy and the source compiles to exactly what it did without it.
Define ``PFX_NO_DISPATCH`` to build the baseline copy alone.
"""

from __future__ import annotations

import re

__all__ = ["GUARD", "avx2_copy"]

# gcc >= 5 on x86-64, not already building for AVX2, not clang / icc (which define __GNUC__ but
# do not set __AVX2__ inside #pragma GCC target regions)
GUARD = ("defined(__x86_64__) && defined(__GNUC__) && __GNUC__ >= 5 && !defined(__clang__) && "
         "!defined(__INTEL_COMPILER) && !defined(__AVX2__) && !defined(PFX_NO_DISPATCH)")
_KEEP = ("RESTRICT", "KERNEL", "NO_DSP", "NO_MVE", "NO_VECTOR", "NO_DISPATCH")  # the user's knobs: one name for both copies
_NAME = re.compile(r"\bPFX_(?!(?:" + "|".join(_KEEP) + r")\b)(\w+)")


def avx2_copy(kernels: str, body: str, sig_args: str) -> tuple[str, str, str]:
    """(C text to follow the baseline kernels, the graph function's copy to precede it, the
    dispatch line that starts it).

    The copy renames every ``PFX_`` name the kernels define (functions, helper macros, types) to
    ``PFX_avx2_...``; in the graph's body only the calls of those kernels change, weights and
    tables are shared.
    """
    defined = set(_NAME.findall(kernels))
    copy = _NAME.sub(r"PFX_avx2_\1", kernels)
    graph = _NAME.sub(lambda m: f"PFX_avx2_{m.group(1)}" if m.group(1) in defined else m.group(0), body)
    args = ", ".join(re.findall(r"(\w+)(?:,|$)", sig_args))
    text = f"""
#if {GUARD}
/* the same kernels for AVX2, chosen at run time (edgeae.codegen.x86) */
#pragma GCC push_options
#pragma GCC target("avx2")
{copy}
#pragma GCC pop_options
#endif
"""
    graph_copy = f"""#if {GUARD}
#pragma GCC push_options
#pragma GCC target("avx2")
static int PFX_avx2_graph({sig_args}, unsigned char *a)
{{
{graph}
    return 0;
}}
#pragma GCC pop_options
#endif
"""
    dispatch = f"""#if {GUARD}
    if (__builtin_cpu_supports("avx2")) return PFX_avx2_graph({args}, a);
#endif"""
    return text, graph_copy, dispatch
