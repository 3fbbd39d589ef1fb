"""The host test harness of a generated unit: samples on stdin -> outputs on stdout.

Each unit is compiled twice with warnings as errors (``gcc -std=c99 -Wall -Wextra -Werror
-pedantic`` and ``g++ -std=c++17 -Wall -Werror``, the C++ build proves the header works
from C++), linked with a small harness that reads samples from stdin and writes outputs to
stdout, alternating the static-arena and caller-arena entry points. The compilers and the
program run through :mod:`edgeae.codegen.toolchain`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeae.codegen.emit import Unit
from edgeae.codegen.templates import fill
from edgeae.codegen.toolchain import build_c, check_cxx, run_program
from edgeae.errors import ExportError

__all__ = ["NUMPY_TYPES", "harness_source", "build_harness", "run_harness"]

NUMPY_TYPES = {"float": np.float32, "uint8_t": np.uint8, "int8_t": np.int8}  # C type -> numpy dtype


def harness_source(unit: Unit) -> str:
    """A C program (c/host_harness.c): samples on stdin -> outputs on stdout; odd samples use the caller's arena."""
    decl = [f"static {ct} in{k}[{n}];" for k, (_, ct, n) in enumerate(unit.inputs)]
    decl += [f"static {ct} out{k}[{n}];" for k, (_, ct, n) in enumerate(unit.outputs)]
    reads = " && ".join(f"fread(in{k}, sizeof in{k}, 1, stdin) == 1" for k in range(len(unit.inputs)))
    args = ", ".join([f"in{k}" for k in range(len(unit.inputs))] + [f"out{k}" for k in range(len(unit.outputs))])
    writes = "\n        ".join(f"fwrite(out{k}, sizeof out{k}, 1, stdout);" for k in range(len(unit.outputs)))
    return fill("host_harness.c", unit=unit.name, up=unit.name.upper(), buffers="\n".join(decl), reads=reads,
                args=args, writes=writes)


def build_harness(unit: Unit, folder: Path, cc: str = "gcc", flags: list[str] | None = None,
                  cxx: str | None = "g++", tag: str = "host") -> Path:
    """Compile ``unit`` (already written into ``folder``) as C99 and C++17; link the harness."""
    folder = Path(folder)
    harness = folder / f"{unit.name}_harness.c"
    if not harness.exists():
        harness.write_text(harness_source(unit), encoding="utf-8")
    src = folder / f"{unit.name}.c"
    if cxx:
        check_cxx(src, folder / f"{unit.name}.cpp.o", cxx=cxx)
    return build_c([src, harness], folder / f"{unit.name}_{tag}", f"compiling {src.name} as C99", include=folder,
                   cc=cc, opt=flags)


def run_harness(exe: Path, unit: Unit, inputs: list[np.ndarray], prefix: list[str] | None = None) -> list[np.ndarray]:
    """Run the harness on ``inputs`` (one array per graph input, (N, ...)); returns outputs (N, n)."""
    n = len(inputs[0])
    parts = []
    for i in range(n):
        for arr, (_, ct, size) in zip(inputs, unit.inputs, strict=True):
            parts.append(np.ascontiguousarray(arr[i], dtype=NUMPY_TYPES[ct]).reshape(-1)[:size].tobytes())
    stdout = run_program([*(prefix or []), exe], b"".join(parts), f"running {Path(exe).name}")
    dtypes = [np.dtype(NUMPY_TYPES[ct]) for _, ct, _ in unit.outputs]
    per = sum(d.itemsize * size for d, (_, _, size) in zip(dtypes, unit.outputs, strict=True))
    if len(stdout) != per * n:
        raise ExportError(f"{Path(exe).name} wrote {len(stdout)} bytes, expected {per * n}")
    out = np.frombuffer(stdout, np.uint8).reshape(n, per)
    result, at = [], 0
    for d, (_, _, size) in zip(dtypes, unit.outputs, strict=True):
        nb = d.itemsize * size
        result.append(np.ascontiguousarray(out[:, at:at + nb]).view(d).reshape(n, size))
        at += nb
    return result
