"""Compile generated C on the host and run it on samples: the generator's own check.

Each unit is compiled twice with warnings as errors (``gcc -std=c99 -Wall -Wextra -Werror
-pedantic`` and ``g++ -std=c++17 -Wall -Werror``, the C++ build proves the header works
from C++), linked with a small harness that reads samples from stdin and writes outputs to
stdout, alternating the static-arena and caller-arena entry points.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from edgeae.codegen.emit import Unit
from edgeae.errors import ExportError

__all__ = ["C_FLAGS", "CXX_FLAGS", "find_compiler", "harness_source", "build_harness", "run_harness"]

C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
CXX_FLAGS = ["-std=c++17", "-Wall", "-Werror"]
_NP = {"float": np.float32, "uint8_t": np.uint8, "int8_t": np.int8}


def find_compiler(name: str) -> str:
    """Path of ``name`` (gcc, g++), or a clear error saying how to install it."""
    path = shutil.which(name)
    if path is None:
        raise ExportError(f"{name} is needed to check the generated C but is not on PATH: install it "
                          "(Debian/Ubuntu: apt-get install build-essential), or pass verify=False / --no-verify")
    return path


def harness_source(unit: Unit) -> str:
    """A C program: samples on stdin -> outputs on stdout; odd samples use the caller's arena."""
    decl = [f"static {ct} in{k}[{n}];" for k, (_, ct, n) in enumerate(unit.inputs)]
    decl += [f"static {ct} out{k}[{n}];" for k, (_, ct, n) in enumerate(unit.outputs)]
    reads = " && ".join(f"fread(in{k}, sizeof in{k}, 1, stdin) == 1" for k in range(len(unit.inputs)))
    args = ", ".join([f"in{k}" for k in range(len(unit.inputs))] + [f"out{k}" for k in range(len(unit.outputs))])
    writes = "\n        ".join(f"fwrite(out{k}, sizeof out{k}, 1, stdout);" for k in range(len(unit.outputs)))
    up = unit.name.upper()
    return f"""/* Test harness for {unit.name}: raw samples on stdin, raw outputs on stdout. */
#include <stdio.h>
#include "{unit.name}.h"

{chr(10).join(decl)}
static float arena_f[({up}_ARENA_BYTES + 3) / 4 + 1];

int main(void)
{{
    long k = 0;
    while ({reads}) {{
        int rc = (k & 1) ? {unit.name}_arena({args}, arena_f) : {unit.name}({args});
        if (rc != 0) return 2;
        {writes}
        ++k;
    }}
    return 0;
}}
"""


def _run(cmd: list[str], what: str) -> None:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise ExportError(f"{what} timed out: {' '.join(cmd)}") from None
    if res.returncode != 0:
        raise ExportError(f"{what} failed ({' '.join(cmd)}):\n{(res.stderr or res.stdout)[-3000:]}")


def build_harness(unit: Unit, folder: Path, cc: str = "gcc", flags: list[str] | None = None,
                  cxx: str | None = "g++", tag: str = "host") -> Path:
    """Compile ``unit`` (already written into ``folder``) as C99 and C++17; link the harness."""
    folder = Path(folder)
    harness = folder / f"{unit.name}_harness.c"
    if not harness.exists():
        harness.write_text(harness_source(unit), encoding="utf-8")
    src = folder / f"{unit.name}.c"
    cc = find_compiler(cc)
    opt = flags if flags is not None else ["-O2"]
    if cxx:
        _run([find_compiler(cxx), *CXX_FLAGS, "-x", "c++", "-c", str(src), "-o", str(folder / f"{unit.name}.cpp.o")],
             f"compiling {src.name} as C++17")
    exe = folder / f"{unit.name}_{tag}"
    _run([cc, *C_FLAGS, *opt, "-I", str(folder), str(src), str(harness), "-o", str(exe), "-lm"],
         f"compiling {src.name} as C99")
    return exe


def run_harness(exe: Path, unit: Unit, inputs: list[np.ndarray], prefix: list[str] | None = None) -> list[np.ndarray]:
    """Run the harness on ``inputs`` (one array per graph input, (N, ...)); returns outputs (N, n)."""
    n = len(inputs[0])
    parts = []
    for i in range(n):
        for arr, (_, ct, size) in zip(inputs, unit.inputs, strict=True):
            parts.append(np.ascontiguousarray(arr[i], dtype=_NP[ct]).reshape(-1)[:size].tobytes())
    cmd = [*(prefix or []), str(exe)]
    try:
        res = subprocess.run(cmd, input=b"".join(parts), capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise ExportError(f"{exe.name} timed out") from None
    if res.returncode != 0:
        raise ExportError(f"{exe.name} exited with {res.returncode}: {res.stderr.decode(errors='replace')[-3000:]}")
    dtypes = [np.dtype(_NP[ct]) for _, ct, _ in unit.outputs]
    per = sum(d.itemsize * size for d, (_, _, size) in zip(dtypes, unit.outputs, strict=True))
    if len(res.stdout) != per * n:
        raise ExportError(f"{exe.name} wrote {len(res.stdout)} bytes, expected {per * n}; "
                          f"stderr: {res.stderr.decode(errors='replace')[-2000:]}")
    out = np.frombuffer(res.stdout, np.uint8).reshape(n, per)
    result, at = [], 0
    for d, (_, _, size) in zip(dtypes, unit.outputs, strict=True):
        nb = d.itemsize * size
        result.append(np.ascontiguousarray(out[:, at:at + nb]).view(d).reshape(n, size))
        at += nb
    return result
