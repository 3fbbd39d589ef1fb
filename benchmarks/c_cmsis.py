"""ARM's CMSIS-NN on the same layer shapes as a generated int8 unit, on the same QEMU harness.

    int8 Program (edgeae.codegen.lower_int8) -> its dense / Conv steps, in order
      -> arm_fully_connected_s8 / arm_convolve_s8 calls with those shapes, the unit's weights
         (as signed codes), biases and multipliers; the sample's codes as input
      -> arm-none-eabi-gcc -O2 with CMSIS-NN's sources (path from --cmsis-nn or $CMSIS_NN_PATH)
      -> QEMU -icount shift=0: instructions per inference (SysTick, calibrated), stack painted

CMSIS-NN is built from a local checkout, never shipped: without one the rows are skipped.
Only the layers are timed (no float quantization of the input, no output tables): compare with
the edgeae raw-I/O unit's figure, which adds its table lookups. Weights are symmetric int8
(filter offset 0, as CMSIS-NN's s8 kernels take them); outputs are not compared, the figure
is the instruction count of the same shapes.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

_DIRS = ("ConvolutionFunctions", "FullyConnectedFunctions", "NNSupportFunctions")
_MAIN = r"""#include <stdio.h>
#include <stdint.h>
#include "arm_nnfunctions.h"
{arrays}
static int8_t ctx_buf[{buf}] __attribute__((aligned(4)));
static int run(void)
{{
    cmsis_nn_context ctx = {{ctx_buf, {buf}}};
{calls}
    return 0;
}}
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
int main(void)
{{
    uint32_t t0, t1;
    uintptr_t sp;
    volatile uint32_t *p;
    int r;
    SYST_RVR = 0xFFFFFFu; SYST_CVR = 0u; SYST_CSR = 5u;
    t0 = SYST_CVR;
    __asm volatile(".syntax unified\n ldr r0, ={calib}\n1: subs r0, #1\n bne 1b" ::: "r0", "cc");
    t1 = SYST_CVR;
    printf("calib %lu\n", (unsigned long)((t0 - t1) & 0xFFFFFFu));
    if (run() != 0) return 3;
    t0 = SYST_CVR;
    for (r = 0; r < {repeats}; ++r) (void)run();
    t1 = SYST_CVR;
    printf("ticks %lu\n", (unsigned long)((t0 - t1) & 0xFFFFFFu));
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (p = (uint32_t *)(sp - {paint}u); p < (uint32_t *)sp; ++p) *p = 0xA5A5A5A5u;
    (void)run();
    for (p = (uint32_t *)(sp - {paint}u); p < (uint32_t *)sp && *p == 0xA5A5A5A5u; ++p) {{
    }}
    printf("stack %lu\n", (unsigned long)(sp - (uintptr_t)p));
    return 0;
}}
"""
_FC = """    {{
        const cmsis_nn_fc_params fp = {{{xoff}, 0, {yoff}, {{{lo}, {hi}}}}};
        const cmsis_nn_per_tensor_quant_params qp = {{{mult}, {shift}}};
        const cmsis_nn_dims id = {{1, 1, 1, {k}}}, fd = {{{k}, 1, 1, {n}}}, bd = {{1, 1, 1, {n}}}, od = {{1, 1, 1, {n}}};
        if (arm_fully_connected_s8(&ctx, &fp, &qp, &id, {x}, &fd, {w}, &bd, {b}, &od, {y}) != ARM_CMSIS_NN_SUCCESS) return 1;
    }}"""
_CONV = """    {{
        const cmsis_nn_conv_params cp = {{{xoff}, {yoff}, {{{sw}, {sh}}}, {{{pl}, {pt}}}, {{{dw}, {dh}}}, {{{lo}, {hi}}}}};
        const cmsis_nn_per_channel_quant_params qp = {{(int32_t *){mult}, (int32_t *){shift}}};
        const cmsis_nn_dims id = {{1, {h}, {w_}, {c}}}, fd = {{{m}, {kh}, {kw}, {c}}}, bd = {{1, 1, 1, {m}}},
                            od = {{1, {oh}, {ow}, {m}}};
        if (arm_convolve_s8_get_buffer_size(&id, &fd) > {buf}) return 2;
        if (arm_convolve_s8(&ctx, &cp, &qp, &id, {x}, &fd, {w}, &bd, {b}, NULL, &od, {y}) != ARM_CMSIS_NN_SUCCESS) return 1;
    }}"""


def cmsis_root(path: str | None) -> Path | None:
    """The CMSIS-NN checkout (its Include/ and Source/), from the option or $CMSIS_NN_PATH."""
    p = path or os.environ.get("CMSIS_NN_PATH")
    if not p:
        return None
    root = Path(p)
    return root if (root / "Include" / "arm_nnfunctions.h").is_file() else None


def _s8(v: np.ndarray) -> np.ndarray:
    return (v.astype(np.int64) - 128).astype(np.int8) if v.dtype == np.uint8 else v.astype(np.int8)


def off(z: int, dtype: str) -> int:
    """A zero point of ``dtype`` codes as the zero point of the same values in int8 codes."""
    return z - 128 if dtype == "uint8" else z


def _c_array(name: str, ctype: str, v: np.ndarray, const: bool = True) -> str:
    body = ", ".join(str(int(t)) for t in v.reshape(-1))
    return f"static {'const ' if const else ''}{ctype} {name}[{v.size}] = {{{body}}};\n"


def _layers(program, x_codes: np.ndarray) -> tuple[str, str]:
    """C arrays and calls for the program's dense / Conv steps, chained through int8 buffers."""
    arrays = [_c_array("act0", "int8_t", _s8(x_codes), const=False)]
    calls, cur, size = [], "act0", x_codes.size
    steps = [s for s in program.steps if s.kind in ("qdense", "qconv")]
    for i, s in enumerate(steps):
        q = s.params
        xdt = program.buffers[s.reads[0]].dtype
        ydt = program.buffers[s.writes[0]].dtype
        arrays += [_c_array(f"w{i}", "int8_t", _s8(q["w_v"])), _c_array(f"b{i}", "int32_t", q["bias_q_v"]),
                   _c_array(f"m{i}", "int32_t", q["mult_v"]), _c_array(f"s{i}", "int32_t", 31 - q["shift_v"])]
        common = dict(xoff=-off(q["xzp"], xdt), yoff=off(q["yzp"], ydt), lo=off(q["lo"], ydt), hi=off(q["hi"], ydt),
                      x=cur, w=f"w{i}", b=f"b{i}", y=f"act{i + 1}")
        if s.kind == "qdense":
            calls.append(_FC.format(k=q["K"], n=q["N"], mult=int(q["mult_v"][0]), shift=int(31 - q["shift_v"][0]),
                                    **common))
            size = q["N"]
        else:
            calls.append(_CONV.format(sw=q["SW"], sh=q["SH"], pl=q["PL"], pt=q["PT"], dw=q["DW"], dh=q["DH"],
                                      mult=f"m{i}", shift=f"s{i}", h=q["H"], w_=q["W"], c=q["C"], m=q["M"],
                                      kh=q["KH"], kw=q["KW"], oh=q["OH"], ow=q["OW"], buf=8192, **common))
            size = q["M"] * q["OH"] * q["OW"]
        arrays.append(f"static int8_t act{i + 1}[{size}];\n")
        cur = f"act{i + 1}"
    return "".join(arrays), "\n".join(calls)


def _library(root: Path, flags: list[str], work: Path) -> list[Path]:
    """Objects of CMSIS-NN's int8 sources for these flags (built once per target, two at a time)."""
    work.mkdir(parents=True, exist_ok=True)
    srcs = [f for d in _DIRS for f in sorted((root / "Source" / d).glob("*.c"))]

    def build(src: Path) -> Path | None:
        obj = work / f"{src.stem}.o"
        if not obj.exists():
            res = subprocess.run(["arm-none-eabi-gcc", *flags, "-O2", "-ffunction-sections", "-fdata-sections",
                                  "-I", str(root / "Include"), "-c", str(src), "-o", str(obj)], capture_output=True)
            if res.returncode != 0:  # float16/32 kernels a core lacks: not needed for int8
                return None
        return obj

    with ThreadPoolExecutor(2) as pool:
        return [o for o in pool.map(build, srcs) if o is not None]


def run_cmsis(program, x_codes: np.ndarray, target: str, root: Path, work: Path) -> dict:
    """Instructions per inference and measured stack of CMSIS-NN on ``program``'s layer shapes."""
    from edgeae.codegen import toolchain as cm

    flags, machine = cm.TARGETS[target]
    objs = _library(root, flags, work / f"lib-{target}")
    arrays, calls = _layers(program, x_codes)
    fw = work / f"fw-{target}-{program.precision}-{abs(hash(calls)) % 10**8}"
    fw.mkdir(parents=True, exist_ok=True)
    (fw / "main.c").write_text(_MAIN.format(arrays=arrays, calls=calls, buf=8192, calib=cm.CALIBRATION_LOOPS,
                                            repeats=cm.REPEATS, paint=cm.STACK_PAINT))
    (fw / "startup.c").write_text(cm.STARTUP_SOURCE)
    (fw / "link.ld").write_text(cm.linker_script(machine))
    elf = fw / "fw.elf"
    cm.run_tool([*cm.arm_gcc(target, "-O2", "-std=gnu99", "-ffunction-sections", "-fdata-sections"),
                 "-I", root / "Include", "--specs=rdimon.specs", "-nostartfiles", "-T", fw / "link.ld",
                 fw / "startup.c", fw / "main.c", *objs, "-o", elf, "-lm", "-Wl,--gc-sections"],
                "linking the CMSIS-NN firmware")
    _, per_tick, ticks, stack = cm.qemu_run(elf, machine, "CMSIS-NN layers")
    kinds = [s.kind for s in program.steps if s.kind in ("qdense", "qconv")]
    return {"target": target, "instructions": round(ticks * per_tick / cm.REPEATS), "stack_bytes": stack,
            "layers": ["arm_fully_connected_s8" if k == "qdense" else "arm_convolve_s8" for k in kinds]}
