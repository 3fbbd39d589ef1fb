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
              ["tests/test_c_codec.py", "tests/test_c_mutants.py"]),
    "kernels": (tuple(f"edgeae/codegen/c/{k}.c" for k in ("dense_f32", "conv_f32", "convt_f32", "conv_tile_f32")),
                ["tests/test_codegen.py",
                 "tests/test_c_mutants.py::test_generated_requant_rounds_half_to_even_like_the_reference"]),
    # the int8 templates (dense rows, convolution tiles and stores, requantization); the host
    # tests build the portable and SSE2 forms: DSP-only and AVX2-only lines need a Cortex-M
    # or an -march build to be reached
    "int8": (tuple(f"edgeae/codegen/c/{k}.c" for k in ("qdense", "qrows", "qconv", "qconvt", "qtile", "qstore",
                                                      "requant")),
             ["tests/test_codegen.py",
              "tests/test_c_mutants.py::test_generated_requant_rounds_half_to_even_like_the_reference"]),
}

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


def run_target(name: str, sample: int | None, seed: int, timeout: float) -> dict:
    files, tests = TARGETS[name]
    rel = ", ".join(files)
    work = _scratch()
    originals = {f: (work / f).read_text(encoding="utf-8") for f in files}
    every = [m for f in files for m in mutants_of(work / f, f)]
    chosen = sorted(random.Random(seed).sample(every, sample), key=lambda m: (m.file, m.start)) if sample and \
        sample < len(every) else every
    status, t_clean = _pytest(work, tests, timeout)
    if status != "survived":
        raise SystemExit(f"Error: the tests of {name} do not pass on the unmutated copy ({status})")
    limit = max(timeout, 3 * t_clean + 30)
    rows = []
    try:
        for i, m in enumerate(chosen, 1):
            original = originals[m.file]
            assert original[m.start : m.start + len(m.old)] == m.old
            (work / m.file).write_text(original[: m.start] + m.new + original[m.start + len(m.old):], encoding="utf-8")
            st, secs = _pytest(work, tests, limit)
            (work / m.file).write_text(original, encoding="utf-8")
            rows.append({"file": m.file, "line": m.line, "old": m.old, "new": m.new, "status": st,
                         "seconds": round(secs, 1)})
            print(f"[{i}/{len(chosen)}] {st:8s} {m.describe()}", flush=True)
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
        print(f"  survived: {r['file']} line {r['line']}: {r['old']!r} -> {r['new']!r}")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", help=f"targets (default: all): {', '.join(TARGETS)}")
    ap.add_argument("--list", action="store_true", help="count the mutants of each target and stop")
    ap.add_argument("--sample", type=int, default=None, help="run a random sample of this many mutants per target")
    ap.add_argument("--seed", type=int, default=1, help="seed of the sample (default 1)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds before a test run counts as a timeout")
    args = ap.parse_args(argv)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        print(f"Error: unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    for t in args.targets or list(TARGETS):
        if args.list:
            print(f"{t}: {sum(len(mutants_of(ROOT / f)) for f in TARGETS[t][0])} mutants in {', '.join(TARGETS[t][0])}")
        else:
            run_target(t, args.sample, args.seed, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
