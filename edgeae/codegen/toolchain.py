"""The one place that runs compilers and QEMU: builds for the host, builds and runs for Cortex-M.

::

    run_tool(cmd)        every subprocess of edgeae.codegen: a timeout, captured output, an
                         error naming the command and the tail of its output; a tool that is
                         not installed -> an error naming it and the package that installs it
    host                 build_c (gcc -std=c99 -Wall -Wextra -Werror -pedantic),
                         check_cxx (g++ -std=c++17 -Wall -Werror: the header works from C++),
                         run_program (bytes on stdin -> bytes on stdout)
    Cortex-M (QEMU)      TARGETS: core flags + board (mps2-an386 M4F, mps2-an385 M3 / M0,
                         mps3-an547 M55); arm_gcc, firmware_files (startup + linker script,
                         c/cortexm_startup.c, c/cortexm_link.ld), object_sizes,
                         run_qemu (semihosting, -icount shift=0), read_counters

Instructions are counted with SysTick: under ``-icount shift=0`` QEMU advances virtual time
by 1 ns per instruction, and a calibration loop of known length fixes instructions per tick
(40 at the boards' 25 MHz). A firmware reports ``calib``, ``ticks`` and ``stack`` lines
(:func:`read_counters`); the stack is measured by painting it, running one call and finding
the lowest changed word. The Cortex-M0 build (ARMv6-M instructions only) runs on the AN385
board's Cortex-M3, which executes every ARMv6-M instruction.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from edgeae.codegen.templates import fill, read
from edgeae.errors import ConfigError, EdgeAEError, ExportError

__all__ = ["C_FLAGS", "CXX_FLAGS", "TARGETS", "OPT", "CALIBRATION_LOOPS", "REPEATS", "STACK_PAINT",
           "STARTUP_SOURCE", "LINKER_SCRIPT", "install_hint", "find_tool", "find_compiler", "run_tool", "build_c",
           "check_cxx", "run_program", "toolchain_problem", "arm_gcc", "linker_script", "firmware_files",
           "object_sizes", "run_qemu", "read_counters", "qemu_run", "run_firmware", "require_target"]

C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
CXX_FLAGS = ["-std=c++17", "-Wall", "-Werror"]
# tool -> the Debian/Ubuntu packages that install it (`make c-tools` installs the Cortex-M ones)
_PACKAGES = {"gcc": "build-essential", "g++": "build-essential", "cc": "build-essential",
             "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
             "arm-none-eabi-size": "binutils-arm-none-eabi", "qemu-system-arm": "qemu-system-arm"}

# target -> (compiler flags, QEMU machine)
TARGETS = {
    "cortex-m4f": (["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], "mps2-an386"),
    "cortex-m3": (["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"], "mps2-an385"),
    # ARMv6-M code only (no 32x32->64 multiply, no divide); the AN385's Cortex-M3 runs it
    "cortex-m0": (["-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft"], "mps2-an385"),
    "cortex-m55": (["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"], "mps3-an547"),
}
# machine -> (code memory, data memory): MPS2 boards map 4 MiB of each; the AN547 its 512 KiB TCMs
_MEMORY = {"mps3-an547": ("512K", "512K")}
OPT = ["-O2"]
CALIBRATION_LOOPS = 100000  # 2 instructions each (subs + bne)
REPEATS = 4  # timed calls on sample 0
STACK_PAINT = 32768  # bytes of stack painted below main's frame before the measured call

STARTUP_SOURCE = read("cortexm_startup.c")  # vector table, .data/.bss, FPU on, semihosting, main, exit


def install_hint(tool: str) -> str:
    """How to install ``tool`` on Debian/Ubuntu."""
    return f"Debian/Ubuntu: apt-get install {_PACKAGES.get(Path(tool).name, Path(tool).name)}"


def find_tool(name: str, why: str = "", remedy: str = "", error: type[EdgeAEError] = ExportError) -> str:
    """Path of ``name``, or ``error`` naming the tool, what it is needed for and its package."""
    path = shutil.which(name)
    if path is None:
        raise error(f"{name} is needed{why} but is not on PATH: install it ({install_hint(name)}){remedy}")
    return path


def find_compiler(name: str) -> str:
    """Path of a host compiler (gcc, g++, a cross gcc), or a clear error saying how to install it."""
    return find_tool(name, " to check the generated C", ", or pass verify=False / --no-verify")


def run_tool(cmd: list, what: str, *, timeout: float = 300, stdin: bytes | None = None, binary: bool = False,
             error: type[EdgeAEError] = ExportError) -> subprocess.CompletedProcess:
    """Run ``cmd`` (captured, no terminal input); ``error`` on a missing tool, a timeout or a failure.

    ``stdin``: bytes fed to the program (its output is then bytes too); ``binary``: bytes out.
    """
    cmd = [str(c) for c in cmd]
    try:
        res = subprocess.run(cmd, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                             capture_output=True, text=not (binary or stdin is not None), timeout=timeout)
    except FileNotFoundError:
        raise error(f"{what}: {cmd[0]} is not installed ({install_hint(cmd[0])})") from None
    except subprocess.TimeoutExpired:
        raise error(f"{what} timed out after {timeout:g} s: {' '.join(cmd)}") from None
    if res.returncode != 0:
        tail = res.stderr or res.stdout
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        raise error(f"{what} failed with exit status {res.returncode} ({' '.join(cmd)}):\n{tail[-3000:]}")
    return res


# ------------------------------------------------------------------ host
def build_c(sources: list[Path], exe: Path, what: str, *, include: Path | None = None, cc: str = "gcc",
            opt: list[str] | None = None) -> Path:
    """Compile and link C99 ``sources`` into ``exe`` with warnings as errors (``opt``: -O2 by default)."""
    inc = ["-I", str(include)] if include is not None else []
    run_tool([find_compiler(cc), *C_FLAGS, *(opt if opt is not None else ["-O2"]), *inc, *sources, "-o", exe, "-lm"],
             what)
    return Path(exe)


def check_cxx(source: Path, obj: Path, *, include: Path | None = None, cxx: str = "g++") -> Path:
    """Compile ``source`` as C++17 with warnings as errors (the header's extern "C" is right)."""
    inc = ["-I", str(include)] if include is not None else []
    run_tool([find_compiler(cxx), *CXX_FLAGS, *inc, "-x", "c++", "-c", source, "-o", obj],
             f"compiling {Path(source).name} as C++17")
    return Path(obj)


def run_program(cmd: list, stdin: bytes, what: str, timeout: float = 600) -> bytes:
    """Run a built program (``cmd``: an emulator prefix allowed) on ``stdin``; its stdout."""
    return run_tool(cmd, what, stdin=stdin, timeout=timeout).stdout


# ------------------------------------------------------------------ Cortex-M under QEMU
def toolchain_problem() -> str | None:
    """Why Cortex-M runs cannot happen here, or None."""
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed ({install_hint(tool)})"
    try:
        probe = run_tool(["arm-none-eabi-gcc", "-print-file-name=librdimon.a"], "probing newlib").stdout
    except EdgeAEError:
        probe = ""
    if "/" not in probe:
        return "newlib's semihosting library is missing (Debian/Ubuntu: apt-get install libnewlib-arm-none-eabi)"
    return None


def require_target(target: str) -> None:
    """Refuse a run on Cortex-M ``target`` before any work: the toolchain missing (ExportError)
    or a target it does not know (ConfigError)."""
    problem = toolchain_problem()
    if problem:
        raise ExportError(f"cannot run on Cortex-M: {problem}")
    if target not in TARGETS:
        raise ConfigError(f"unknown Cortex-M target {target!r}; choose from {', '.join(TARGETS)}")


def arm_gcc(target: str, *flags: str) -> list[str]:
    """The cross-compiler command for ``target``: arm-none-eabi-gcc, the core's flags, ``flags``."""
    if target not in TARGETS:
        raise ExportError(f"unknown Cortex-M target {target!r}; choose from {', '.join(TARGETS)}")
    return [find_tool("arm-none-eabi-gcc", " to build for Cortex-M"), *TARGETS[target][0], *flags]


def linker_script(machine: str) -> str:
    """The firmware's linker script for a QEMU machine (its code and data memory sizes)."""
    code, data = _MEMORY.get(machine, ("4M", "4M"))
    return fill("cortexm_link.ld", code=code, data=data)


LINKER_SCRIPT = linker_script("mps2-an386")


def firmware_files(work: Path, machine: str) -> tuple[Path, Path]:
    """Write ``startup.c`` and ``link.ld`` for ``machine`` into ``work``; their paths."""
    startup, link = Path(work) / "startup.c", Path(work) / "link.ld"
    startup.write_text(STARTUP_SOURCE)
    link.write_text(linker_script(machine))
    return startup, link


def object_sizes(objects: list[Path]) -> dict[str, tuple[int, int, int]]:
    """(text, data, bss) bytes of each object file, by file stem (arm-none-eabi-size)."""
    size = find_tool("arm-none-eabi-size", " to measure Cortex-M objects")
    rows = [line.split() for line in run_tool([size, *objects], "arm-none-eabi-size").stdout.splitlines()[1:]]
    return {Path(r[5]).stem: (int(r[0]), int(r[1]), int(r[2])) for r in rows}


def run_qemu(elf: Path, machine: str, what: str, timeout: float = 600,
             error: type[EdgeAEError] = ExportError) -> str:
    """Run a semihosting firmware under qemu-system-arm (``-icount shift=0``); what it printed."""
    qemu = find_tool("qemu-system-arm", " to run Cortex-M firmware", error=error)
    res = run_tool([qemu, "-M", machine, "-nographic", "-monitor", "none", "-serial", "none",
                    "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", elf],
                   f"running {what} on {machine}", timeout=timeout, error=error)
    return res.stdout + res.stderr


def run_firmware(work: Path, c_dir: Path, target: str, main_source: str, units: list[str],
                 what: str) -> tuple[str, dict[str, tuple[int, int, int]]]:
    """Build a semihosting firmware in ``work`` from ``main_source`` and the generated ``units``
    (``c_dir/<unit>.c``, -O2, warnings as errors), link it with --gc-sections, run it under
    qemu: what it printed and the (text, data, bss) of each unit's object."""
    cc = arm_gcc(target, "-O2", "-std=c99", "-Wall", "-Wextra", "-ffunction-sections", "-fdata-sections",
                 "-I", str(c_dir))
    machine = TARGETS[target][1]
    startup, link = firmware_files(work, machine)
    (work / "main.c").write_text(main_source)
    objs = []
    for name in units:
        objs.append(work / f"{name}.o")
        run_tool([*cc, "-Werror", "-c", c_dir / f"{name}.c", "-o", objs[-1]], f"cross-compiling {name}.c")
    elf = work / "fw.elf"
    run_tool([*cc, "--specs=rdimon.specs", "-nostartfiles", "-T", link, startup, work / "main.c", *objs, "-o", elf,
              "-lm", "-Wl,--gc-sections"], f"linking the {target} {what}")
    # what the firmware keeps: sizes of the sections --gc-sections left, per object
    return run_qemu(elf, machine, f"the {what}"), object_sizes(objs)


def read_counters(out: str, what: str) -> tuple[float, int, int]:
    """Instructions per SysTick tick (from ``calib``), the printed ``ticks`` and ``stack`` bytes."""
    found = {k: re.search(rf"^{k} (\d+)", out, re.M) for k in ("calib", "ticks", "stack")}
    missing = [k for k, m in found.items() if m is None]
    if missing:
        raise ExportError(f"{what} printed no {', '.join(missing)} line:\n{out[-2000:]}")
    calib, ticks, stack = (int(found[k].group(1)) for k in ("calib", "ticks", "stack"))
    return 2 * CALIBRATION_LOOPS / calib, ticks, stack


def qemu_run(elf: Path, machine: str, what: str) -> tuple[str, float, int, int]:
    """Run a firmware built on the SysTick harness's pattern; its output, instructions per tick,
    ``ticks`` and ``stack`` (an error when the call used the whole painted stack)."""
    out = run_qemu(elf, machine, what)
    per_tick, ticks, stack = read_counters(out, f"{what} on {machine}")
    if stack >= STACK_PAINT:
        raise ExportError(f"{what} on {machine}: the call used all {STACK_PAINT} painted stack bytes")
    return out, per_tick, ticks, stack
