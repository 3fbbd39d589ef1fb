"""Generated C on an emulated Cortex-M: cross-compile, run under QEMU, measure, compare with the host.

::

    unit .c/.h + held-out samples (const arrays) + the SysTick harness (this module)
      -> toolchain: arm-none-eabi-gcc (Cortex-M4F hard-float | Cortex-M3 / M0 soft-float | M55),
         -fstack-usage; qemu-system-arm -M mps2-an386 | mps2-an385 | mps3-an547, semihosting,
         -icount shift=0
      -> outputs (bit patterns) vs the host build; instructions per inference;
         flash = text + data of the unit's own object file; RAM = its data + bss + the stack
         one call uses, measured by painting the stack in QEMU and scanning it afterwards

How instructions and the stack are counted: :mod:`edgeae.codegen.toolchain`, which runs every
compiler and QEMU; this module writes the firmware's ``main`` and reads what it printed.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.codegen.build import NUMPY_TYPES
from edgeae.codegen.templates import fill
from edgeae.codegen.toolchain import (
    CALIBRATION_LOOPS,
    OPT,
    REPEATS,
    STACK_PAINT,
    TARGETS,
    arm_gcc,
    firmware_files,
    object_sizes,
    qemu_run,
    run_tool,
    toolchain_problem,
)
from edgeae.errors import ExportError

__all__ = ["TARGETS", "CortexResult", "c_array", "run_generated", "run_unit", "toolchain_problem"]


@dataclass
class CortexResult:
    """One unit on one target."""

    unit: str
    target: str
    samples: int  # held-out samples run on the target
    instructions: int  # per inference (sample 0, averaged over REPEATS calls)
    flash_bytes: int  # text + data of the unit's object file
    ram_bytes: int  # data + bss + measured stack
    stack_bytes: int  # measured: stack painted in QEMU, one call run, lowest changed word found
    stack_estimate_bytes: int  # -fstack-usage (entry + deepest kernel + requant): misses libc and clones
    bss_bytes: int
    arena_bytes: int  # the header's prediction
    weight_bytes: int  # the header's prediction
    max_abs_vs_host: float  # 0.0 = the same bits as the host build
    instructions_per_tick: float

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


def c_array(name: str, ctype: str, values: np.ndarray) -> str:
    """``static const`` C array of ``values`` (floats as exact %.9g literals), for firmware samples."""
    flat = values.reshape(-1)
    if ctype == "float":
        items = [f"{float(v):.9g}f" if ("." in f"{float(v):.9g}" or "e" in f"{float(v):.9g}") else f"{float(v):.1f}f"
                 for v in flat]
    else:
        items = [str(int(v)) for v in flat]
    return f"static const {ctype} {name}[{len(flat)}] = {{{', '.join(items)}}};\n"


def _main(unit: Any, inputs: list[np.ndarray]) -> str:
    """The firmware's main.c (c/cortexm_main.c): samples as const arrays, outputs printed in hex/decimal."""
    n = len(inputs[0])
    arrays = [c_array(f"samples{k}", ct, np.asarray(arr).reshape(n, -1)[:, :size])
              for k, (arr, (_, ct, size)) in enumerate(zip(inputs, unit.inputs, strict=True))]
    arrays += [f"static {ct} out{k}[{size}];" for k, (_, ct, size) in enumerate(unit.outputs)]
    arrays += [f"static {ct} in{k}[{size}];" for k, (_, ct, size) in enumerate(unit.inputs)]
    args = ", ".join([f"in{k}" for k in range(len(unit.inputs))] + [f"out{k}" for k in range(len(unit.outputs))])
    load = " ".join(f"memcpy(in{k}, samples{k} + (size_t)i * {size}u, sizeof in{k});"
                    for k, (_, _, size) in enumerate(unit.inputs))
    prints = []
    for k, (_, ct, size) in enumerate(unit.outputs):
        if ct == "float":
            prints.append(f'for (j = 0; j < {size}; ++j) {{ uint32_t b; memcpy(&b, &out{k}[j], 4); '
                          f'printf(" %08lx", (unsigned long)b); }}')
        else:
            prints.append(f'for (j = 0; j < {size}; ++j) printf(" %d", (int)out{k}[j]);')
    return fill("cortexm_main.c", unit=unit.name, arrays="\n".join(arrays), n=n, args=args, load=load,
                load0=load.replace("(size_t)i", "(size_t)0"), prints=" ".join(prints), calib=CALIBRATION_LOOPS,
                repeats=REPEATS, paint=STACK_PAINT)


def _stack(su: Path, entry: str) -> int:
    """Worst-case stack of one call: the entry function + its deepest callee chain (static kernels
    and the requantization helper), from gcc's -fstack-usage file."""
    sizes: dict[str, int] = {}
    for line in su.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            sizes[parts[0].rsplit(":", 1)[-1]] = int(parts[1])
    if any("dynamic" in line and "bounded" not in line for line in su.read_text().splitlines()):
        raise ExportError(f"{su.name}: unbounded (dynamic) stack use in generated code")
    top = sizes.get(f"{entry}_arena", 0) + sizes.get(entry, 0)
    kernels = [v for k, v in sizes.items() if k not in (entry, f"{entry}_arena") and not k.endswith("_requant")]
    req = max([v for k, v in sizes.items() if k.endswith("_requant")], default=0)
    return top + max(kernels, default=0) + req


def _firmware(unit: Any, folder: Path, inputs: list[np.ndarray], target: str, work: Path) -> tuple[Path, Path]:
    """Cross-compile ``unit`` (its .c/.h in ``folder``) and link it with the harness; (firmware, object)."""
    work.mkdir(parents=True, exist_ok=True)
    for ext in (".c", ".h"):
        shutil.copyfile(Path(folder) / f"{unit.name}{ext}", work / f"{unit.name}{ext}")
    startup, link = firmware_files(work, TARGETS[target][1])
    (work / "main.c").write_text(_main(unit, inputs))
    cc = arm_gcc(target, *OPT, "-std=c99", "-Wall", "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections")
    obj = work / f"{unit.name}.o"
    run_tool([*cc, "-pedantic", "-fstack-usage", "-c", work / f"{unit.name}.c", "-o", obj],
             f"cross-compiling {unit.name}.c for {target}")
    elf = work / "fw.elf"
    run_tool([*cc, "-Wno-pedantic", "--specs=rdimon.specs", "-nostartfiles", "-T", link, "-I", work,
              startup, work / "main.c", obj, "-o", elf, "-lm", "-Wl,--gc-sections"],
             f"linking the {target} test firmware")
    return elf, obj


def _outputs(unit: Any, out: str) -> list[list[np.ndarray]]:
    """The ``out <i> ...`` lines the firmware printed -> per output, one array per sample."""
    got: list[list[np.ndarray]] = [[] for _ in unit.outputs]
    for line in re.findall(r"^out \d+ (.*)$", out, re.M):
        vals = line.split()
        at = 0
        for k, (_, ct, size) in enumerate(unit.outputs):
            chunk = vals[at:at + size]
            at += size
            if ct == "float":
                got[k].append(np.array([int(v, 16) for v in chunk], np.uint32).view(np.float32))
            else:
                got[k].append(np.array([int(v) for v in chunk]).astype(NUMPY_TYPES[ct]))
    return got


def run_unit(unit: Any, folder: Path, inputs: list[np.ndarray], host_outputs: list[np.ndarray], target: str,
             work: Path) -> CortexResult:
    """Build ``unit`` (its .c/.h in ``folder``) for ``target``, run it in QEMU on ``inputs``; compare."""
    if target not in TARGETS:
        raise ExportError(f"unknown Cortex-M target {target!r}; choose from {', '.join(TARGETS)}")
    problem = toolchain_problem()
    if problem:
        raise ExportError(f"cannot run on Cortex-M: {problem}")
    work = Path(work) / f"{unit.name}-{target}"
    elf, obj = _firmware(unit, folder, inputs, target, work)
    text, data, bss = object_sizes([obj])[obj.stem]
    out, per_tick, ticks, stack = qemu_run(elf, TARGETS[target][1], unit.name)
    got = _outputs(unit, out)
    n = len(inputs[0])
    if any(len(g) != n for g in got):
        raise ExportError(f"{unit.name} on {target}: expected {n} outputs, the firmware printed:\n{out[-2000:]}")
    worst = 0.0
    for g, h in zip(got, host_outputs, strict=True):
        worst = max(worst, float(np.max(np.abs(np.stack(g).astype(np.float64) - h[:n].astype(np.float64)))))
    head = (Path(folder) / f"{unit.name}.h").read_text()
    arena = int(re.search(r"_ARENA_BYTES (\d+)", head).group(1))
    weights = int(re.search(r"_WEIGHT_BYTES (\d+)", head).group(1))
    estimate = _stack(work / f"{unit.name}.su", unit.name)
    return CortexResult(unit.name, target, n, round(ticks * per_tick / REPEATS), text + data, data + bss + stack, stack,
                        estimate, bss, arena, weights, worst, round(per_tick, 3))


def run_generated(bundle_dir: str | Path, c_dir: str | Path, targets: list[str] | None = None, samples: int = 8,
                  work: str | Path | None = None, units: list[str] | None = None) -> list[CortexResult]:
    """Run every unit of a folder written by :func:`edgeae.codegen.generate_c` on Cortex-M targets.

    Default targets: Cortex-M4F for fp32 units; Cortex-M4F, M3 and M0 for int8 units. Outputs
    are compared with the same unit built for the host (bit patterns; 0.0 = identical).
    """
    import json
    import tempfile
    from types import SimpleNamespace

    from edgeae.codegen.build import build_harness, run_harness
    from edgeae.codegen.verify import unit_inputs
    from edgeae.runtime.bundle import read_manifest

    bundle_dir, c_dir = Path(bundle_dir), Path(c_dir)
    report = json.loads((c_dir / "codegen.json").read_text())
    manifest = read_manifest(bundle_dir)
    x_raw = np.load(bundle_dir / manifest.samples["file"])[:samples]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(work) if work else Path(tmp)
        for g in report["graphs"]:
            if units and g["name"] not in units:
                continue
            unit = SimpleNamespace(name=g["name"], inputs=[tuple(t) for t in g["inputs"]],
                                   outputs=[tuple(t) for t in g["outputs"]])
            x = unit_inputs(bundle_dir, manifest, g["role"], report["io"] == "raw", x_raw)
            host_dir = base / f"{unit.name}-host"
            host_dir.mkdir(parents=True, exist_ok=True)
            for ext in (".c", ".h"):
                shutil.copyfile(c_dir / f"{unit.name}{ext}", host_dir / f"{unit.name}{ext}")
            host = run_harness(build_harness(unit, host_dir, cxx=None), unit, [x])
            chosen = targets or (["cortex-m4f"] if g["precision"] == "fp32" else ["cortex-m4f", "cortex-m3", "cortex-m0"])
            for t in chosen:
                results.append(run_unit(unit, c_dir, [x], host, t, base))
    return results
