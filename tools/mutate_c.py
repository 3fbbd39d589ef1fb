"""Mutation testing of the C sources: operator and constant swaps, each built and run against the C tests.

Targets: the C codec (``edgeae/codegen/eae_codec.c``), the fp32 C kernel templates
(``edgeae/codegen/c/{dense,conv,convt,conv_tile}_f32.c``) and the int8 ones
(``edgeae/codegen/c/q*.c``, ``requant.c``). Each mutant changes one token of C code (comments,
string literals and ``#include`` lines are left alone):

    <  <=  >  >=  ==  !=     relational operators, each to its neighbour or negation
    &&  ||  <<  >>           logical and shift operators swapped
    +  -  ++  --  +=  -=     arithmetic swapped
    integer literals         n -> n + 1 (0 -> 1, 1 -> 0 as well)

A scratch copy of ``edgeae`` and ``tests`` under ``build/mutation-c`` is mutated, never the
tree itself; the target's test files run with that copy first on ``PYTHONPATH``. A mutant is
*killed* when the tests fail (a build error counts: the tests build the C), *survived*
when they pass. With ``--sample N`` a seeded random sample of N mutants is run (the full set
is large); the report says how many exist and how many ran.

    python tools/mutate_c.py --list                     # count the mutants of each target
    python tools/mutate_c.py codec --sample 40 --seed 1
    python tools/mutate_c.py kernels --sample 40
    python tools/mutate_c.py int8 --line qstore.c:60     # every mutant of one line

For ``int8`` each mutant runs only the tests that build and run its line: the preprocessor
region it lies in (AVX2, SSE2, portable C, Cortex-M0/M3, DSP, Helium; see ``int8_regions``)
picks the cases of ``tests/test_int8_paths.py``, plus the target's host tests where a default
or NO_DISPATCH host build runs the line. ``--list`` counts the mutants of each region.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "mutation-c"

# target -> (files, test selection)
TARGETS: dict[str, tuple[tuple[str, ...], list[str]]] = {
    "codec": (("edgeae/codegen/eae_codec.c",),
              ["tests/test_c_codec.py", "tests/test_c_mutants.py", "tests/test_c_codec_api.py"]),
    "kernels": (tuple(f"edgeae/codegen/c/{k}.c" for k in ("dense_f32", "conv_f32", "convt_f32", "conv_tile_f32")),
                ["tests/test_codegen.py",
                 "tests/test_c_mutants.py::test_generated_requant_rounds_half_to_even_like_the_reference"]),
    # the int8 templates (dense rows, convolution tiles and stores, requantization): these tests
    # run for lines a host build runs; each mutant also gets the cases of tests/test_int8_paths.py
    # for the builds that reach its line (see int8_tests)
    "int8": (tuple(f"edgeae/codegen/c/{k}.c" for k in ("qdense", "qrows", "qconv", "qconvt", "qtile", "qstore",
                                                      "requant")),
             ["tests/test_codegen.py",
              "tests/test_c_mutants.py::test_generated_requant_rounds_half_to_even_like_the_reference"]),
}

# The int8 templates in the order a unit holds them (dsp.c sets PFX_DSP / PFX_MVE, requant.c
# PFX_REQUANT8, qtile.c PFX_SSE2 / PFX_AVX2 / PFX_COL), and the builds that run them: the
# compiler's predefined macros (and the unit's knobs) of each. A line's region is the set of
# builds whose preprocessor keeps it. x86-avx2 is the default host build where the CPU has
# AVX2 (it runs the AVX2 copy, compiled with __AVX2__); x86-sse2 defines <UNIT>_NO_DISPATCH;
# portable adds <UNIT>_NO_VECTOR (the plain C tiles, as on Cortex-M0/M3).
INT8_ORDER = ("dsp", "requant", "qtile", "qstore", "qrows", "qdense", "qconv", "qconvt")
_GCC = {"__GNUC__": 12, "__STDC_VERSION__": 199901}
_X86 = {**_GCC, "__x86_64__": 1, "__SSE2__": 1}
_ARM = {**_GCC, "__thumb__": 1, "__arm__": 1}
INT8_BUILDS: dict[str, dict[str, int]] = {
    "x86-avx2": {**_X86, "__AVX2__": 1},
    "x86-sse2": dict(_X86),
    "portable": {**_X86, "PFX_NO_VECTOR": 1},
    "cortex-m3": dict(_ARM),
    "cortex-m4f": {**_ARM, "__ARM_FEATURE_DSP": 1, "__ARM_FEATURE_SIMD32": 1},
    "cortex-m55": {**_ARM, "__ARM_FEATURE_DSP": 1, "__ARM_FEATURE_SIMD32": 1, "__ARM_FEATURE_MVE": 3},
}
# the quantizations of tests/test_int8_paths.py and the template parameters they give
INT8_VARIANTS: dict[str, dict[str, int]] = {"u8u8z": {"mvcol8": 1}, "u8s8": {"mvcol8": 0}}
_PATHS = "tests/test_int8_paths.py"
_HOST_CASE = _PATHS + "::test_int8_host_path_equals_the_reference[{}-{}]"
_ARM_CASE = _PATHS + "::test_int8_cortex_m_path_equals_the_reference[{}-{}]"
_TILE_CASE = _PATHS + "::test_int8_tiles_sum_exactly[{}]"  # qtile.c's lines: the tiles on their own, per build
_ROWS_CASE = _PATHS + "::test_int8_rows_store_at_a_stride[{}]"  # qrows.c's lines on the host: a strided output
_DIRECTIVE = re.compile(r"\s*#\s*(if|ifdef|ifndef|elif|else|endif|define|undef)\b(.*)")


def _pp_value(expr: str, defs: dict[str, int], params: dict[str, int]) -> bool:
    """An #if expression of the templates (defined(), !, &&, ||, &, comparisons, ${param}) under ``defs``."""
    e = re.sub(r"/\*.*?\*/|//.*", "", expr)
    e = re.sub(r"\$\{(\w+)\}", lambda m: str(params.get(m.group(1), 0)), e)
    e = re.sub(r"defined\s*\(\s*(\w+)\s*\)|defined\s+(\w+)",
               lambda m: "1" if (m.group(1) or m.group(2)) in defs else "0", e)
    e = re.sub(r"\b[A-Za-z_]\w*\b", lambda m: str(defs.get(m.group(0), 0)), e)
    e = e.replace("&&", " and ").replace("||", " or ")
    e = re.sub(r"!(?!=)", " not ", e)
    return bool(eval(e, {"__builtins__": {}}, {}))  # digits, operators and parentheses only


def preprocessor_lines(texts: list[tuple[str, str]], macros: dict[str, int],
                       params: dict[str, int]) -> dict[str, set[int]]:
    """name -> the line numbers the preprocessor keeps, for ``texts`` read in order (#defines carry
    over) with ``macros`` predefined. Directives count as kept where their enclosing block is."""
    defs = dict(macros)
    kept: dict[str, set[int]] = {}
    for name, text in texts:
        lines = kept.setdefault(name, set())
        stack: list[list[bool]] = []  # [enclosing block kept, a branch taken]
        active = True
        for no, line in enumerate(text.splitlines(), 1):
            m = _DIRECTIVE.match(line)
            if m is None:
                if active:
                    lines.add(no)
                continue
            d, rest = m.groups()
            if d in ("if", "ifdef", "ifndef"):
                cond = {"if": rest, "ifdef": f"defined({rest.strip()})", "ifndef": f"!defined({rest.strip()})"}[d]
                stack.append([active, active and _pp_value(cond, defs, params)])
                lines.update({no} if active else set())
                active = stack[-1][1]
            elif d in ("elif", "else"):
                outer, taken = stack[-1]
                lines.update({no} if outer else set())
                active = outer and not taken and (d == "else" or _pp_value(rest, defs, params))
                stack[-1][1] = taken or active
            elif d == "endif":
                active = stack.pop()[0]
                lines.update({no} if active else set())
            elif active:
                lines.add(no)
                word = rest.split(None, 1)
                if d == "define" and word:
                    value = word[1].strip() if len(word) > 1 else "1"
                    defs[re.match(r"\w+", word[0]).group(0)] = int(value) if value.isdigit() else 1
                elif d == "undef" and word:
                    defs.pop(word[0], None)
    return kept


def int8_regions(root: Path = ROOT) -> dict[tuple[str, int], set[tuple[str, str]]]:
    """(file, line) -> the (build, variant) pairs of tests/test_int8_paths.py that compile and run that line."""
    texts = [(f"edgeae/codegen/c/{k}.c", (root / "edgeae" / "codegen" / "c" / f"{k}.c").read_text(encoding="utf-8"))
             for k in INT8_ORDER]
    where: dict[tuple[str, int], set[tuple[str, str]]] = {}
    for build, macros in INT8_BUILDS.items():
        for variant, params in INT8_VARIANTS.items():
            for name, lines in preprocessor_lines(texts, macros, params).items():
                for no in lines:
                    where.setdefault((name, no), set()).add((build, variant))
    return where


def int8_tests(m: Mutant, regions: dict[tuple[str, int], set[tuple[str, str]]]) -> tuple[list[str], list[str]]:
    """(the builds that reach mutant ``m``'s line, the tests to run for it): for qtile.c the tile
    checks of those builds (for qrows.c the strided-output check of the host ones), the path
    cases of those builds, then the int8 target's host tests where an x86 build that the suite's
    own builds make (the default one and its NO_DISPATCH check) reaches it."""
    order = list(INT8_BUILDS)
    pairs = sorted(regions.get((m.file, m.line), set()), key=lambda bv: (order.index(bv[0]), bv[1]))
    builds = sorted({b for b, _ in pairs}, key=order.index)
    cases = [_TILE_CASE.format(b) for b in builds] if m.file.endswith("/qtile.c") else []
    if m.file.endswith("/qrows.c"):
        cases += [_ROWS_CASE.format(b) for b in builds if not b.startswith("cortex")]
    cases += [(_ARM_CASE if b.startswith("cortex") else _HOST_CASE).format(b, v) for b, v in pairs]
    if not pairs or {"x86-avx2", "x86-sse2"} & set(builds):
        cases += TARGETS["int8"][1]
    return builds, cases

_SWAPS = {"<": ["<="], "<=": ["<"], ">": [">="], ">=": [">"], "==": ["!="], "!=": ["=="],
          "&&": ["||"], "||": ["&&"], "<<": [">>"], ">>": ["<<"], "+": ["-"], "-": ["+"],
          "++": ["--"], "--": ["++"], "+=": ["-="], "-=": ["+="]}
# longest first, so "<<=" is never read as "<<" then "="; "->" and "<<=" / ">>=" are left alone
_TOKEN = re.compile(r"->|<<=|>>=|\+\+|--|\+=|-=|<<|>>|<=|>=|==|!=|&&|\|\||[<>+-]|\b(?:0[xX][0-9a-fA-F]+|\d+)[uUlL]*\b")


@dataclass(frozen=True)
class Mutant:
    start: int  # offset in the file's text
    old: str
    new: str
    line: int
    file: str = ""  # relative to the root

    def describe(self) -> str:
        return f"{self.file} line {self.line}: {self.old!r} -> {self.new!r}"


def _c_regions(path: Path, text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of C code: the whole .c file, or the long string literals of a .py file."""
    if path.suffix == ".c":
        return [(0, len(text))]
    regions = []
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING and "{" in tok.string and ";" in tok.string and len(tok.string) > 200:
            regions.append((offsets[tok.start[0] - 1] + tok.start[1], offsets[tok.end[0] - 1] + tok.end[1]))
    return regions


def _skipped(text: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """Comments, C string/char literals and preprocessor include lines inside [lo, hi)."""
    spans = []
    for m in re.finditer(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'|^[ \t]*#[ \t]*include[^\n]*",
                         text[lo:hi], re.S | re.M):
        spans.append((lo + m.start(), lo + m.end()))
    return spans


def mutants_of(path: Path, rel: str = "") -> list[Mutant]:
    """Every mutant of ``path`` (``rel``: its name relative to the root, kept on each mutant)."""
    text = path.read_text(encoding="utf-8")
    out = []
    for lo, hi in _c_regions(path, text):
        skip = _skipped(text, lo, hi)
        for m in _TOKEN.finditer(text, lo, hi):
            s, tok = m.start(), m.group(0)
            if tok in ("->", "<<=", ">>=") or any(a <= s < b for a, b in skip):
                continue
            line = text.count("\n", 0, s) + 1
            if tok[0].isdigit():
                digits = re.match(r"0[xX][0-9a-fA-F]+|\d+", tok).group(0)
                suffix = tok[len(digits):]
                value = int(digits, 0)
                news = {value + 1} | ({1 - value} if value in (0, 1) else set())
                for v in sorted(news):
                    new = (hex(v) if digits.lower().startswith("0x") else str(v)) + suffix
                    out.append(Mutant(s, tok, new, line, rel))
            else:
                prev = text[s - 1] if s else " "
                if tok in ("+", "-") and (prev in "eE" or text[s + 1 : s + 2] == "="):
                    continue  # an exponent (1e-6) or part of a compound operator
                out.extend(Mutant(s, tok, new, line, rel) for new in _SWAPS[tok])
    return out


def _scratch() -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    for name in ("edgeae", "tests", "docs"):  # docs: the example main() a codegen test builds
        shutil.rmtree(WORK / name, ignore_errors=True)
        shutil.copytree(ROOT / name, WORK / name, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
    return WORK


def _pytest(work: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    env = dict(os.environ, PYTHONPATH=str(work), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", *tests]
    t0 = time.monotonic()
    try:
        res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - t0
    return ("survived" if res.returncode == 0 else "killed"), time.monotonic() - t0


def run_target(name: str, sample: int | None, seed: int, timeout: float, lines: list[str] | None = None) -> dict:
    """Run ``name``'s mutants (a seeded sample of ``sample``; only those on ``lines``, "file.c:N", if given)."""
    files, tests = TARGETS[name]
    rel = ", ".join(files)
    work = _scratch()
    originals = {f: (work / f).read_text(encoding="utf-8") for f in files}
    every = [m for f in files for m in mutants_of(work / f, f)]
    if lines:
        every = [m for m in every if f"{Path(m.file).name}:{m.line}" in lines]
    chosen = sorted(random.Random(seed).sample(every, sample), key=lambda m: (m.file, m.start)) if sample and \
        sample < len(every) else every
    regions = int8_regions(work) if name == "int8" else None
    status, t_clean = _pytest(work, tests + ([_PATHS] if regions is not None else []), timeout)
    if status != "survived":
        raise SystemExit(f"Error: the tests of {name} do not pass on the unmutated copy ({status})")
    limit = max(timeout, 3 * t_clean + 30)
    rows = []
    try:
        for i, m in enumerate(chosen, 1):
            original = originals[m.file]
            assert original[m.start : m.start + len(m.old)] == m.old
            builds, selected = int8_tests(m, regions) if regions is not None else ([], tests)
            (work / m.file).write_text(original[: m.start] + m.new + original[m.start + len(m.old):], encoding="utf-8")
            st, secs = _pytest(work, selected, limit)
            (work / m.file).write_text(original, encoding="utf-8")
            rows.append({"file": m.file, "line": m.line, "old": m.old, "new": m.new, "status": st,
                         "seconds": round(secs, 1), "builds": builds, "tests": selected})
            where = f" [{', '.join(builds)}]" if regions is not None else ""
            print(f"[{i}/{len(chosen)}] {st:8s} {m.describe()}{where}", flush=True)
    finally:
        for f, original in originals.items():
            (work / f).write_text(original, encoding="utf-8")
    caught = sum(r["status"] != "survived" for r in rows)
    summary = {"target": name, "file": rel, "tests": tests, "mutants": len(every), "ran": len(rows),
               "seed": seed if chosen is not every else None, "caught": caught,
               "survived": [r for r in rows if r["status"] == "survived"], "rows": rows,
               "date": time.strftime("%Y-%m-%d", time.gmtime())}
    (WORK / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"{name} ({rel}): {caught}/{len(rows)} caught ({100 * caught / max(len(rows), 1):.1f}%) "
          f"of {len(rows)} run, {len(every)} mutants in all")
    for r in summary["survived"]:
        where = f" [{', '.join(r['builds'])}]" if regions is not None else ""
        print(f"  survived: {r['file']} line {r['line']}: {r['old']!r} -> {r['new']!r}{where}")
    return summary


def _list(name: str) -> None:
    """Count a target's mutants; for int8, also by the set of builds that reach them."""
    every = [m for f in TARGETS[name][0] for m in mutants_of(ROOT / f, f)]
    print(f"{name}: {len(every)} mutants in {', '.join(TARGETS[name][0])}")
    if name == "int8":
        regions = int8_regions()
        counts: dict[str, int] = {}
        for m in every:
            key = ", ".join(int8_tests(m, regions)[0]) or "no build"
            counts[key] = counts.get(key, 0) + 1
        for key, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(f"  {n:5d}  {key}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", help=f"targets (default: all): {', '.join(TARGETS)}")
    ap.add_argument("--list", action="store_true", help="count the mutants of each target and stop")
    ap.add_argument("--sample", type=int, default=None, help="run a random sample of this many mutants per target")
    ap.add_argument("--seed", type=int, default=1, help="seed of the sample (default 1)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds before a test run counts as a timeout")
    ap.add_argument("--line", action="append", metavar="FILE:N",
                    help="only the mutants of this line (e.g. qstore.c:60; repeatable): rerun survivors")
    args = ap.parse_args(argv)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        print(f"Error: unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    for t in args.targets or list(TARGETS):
        if args.list:
            _list(t)
        else:
            run_target(t, args.sample, args.seed, args.timeout, args.line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
