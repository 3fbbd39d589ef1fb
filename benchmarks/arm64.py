"""An emulated 64-bit ARM (aarch64) machine: Debian's arm64 userland + PyPI's aarch64 wheels.

``tools/arm64_sysroot.sh`` (``make arm64-tools``) fetches the userland into build/arm64/;
this module runs programs there under ``qemu-aarch64-static -cpu MODEL``: the runtime's CLI
on the aarch64 CPython 3.11 and onnxruntime wheel, and cross-compiled C/C++ programs.

qemu's user mode gives a program the emulated CPU's HWCAP bits and ID registers, but
qemu 7.2 passes the host's /proc/cpuinfo through for aarch64; ONNX Runtime's CPU detection
(cpuinfo) finds no ARM core there and crashes. Each CPU model therefore gets a prefix
directory (``-L``) whose proc/cpuinfo is written from what a probe program reads on that
emulated CPU (MIDR_EL1, HWCAP, HWCAP2), as Linux would print it on the real core.

The in-emulator side (``python -m benchmarks.arm64 cli-batch JOBS.json OUT.json``) runs a
list of ``edgeae`` commands in one interpreter, since starting emulated Python costs seconds.
Only the stdlib is imported at module level, so it runs on the bare aarch64 userland.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["ARM64_DIR", "CPUS", "SETUP", "cli_batch", "cpu_root", "cpuinfo_text", "cross_problem", "emulated", "features",
           "emulated_python", "missing_wheels", "problem", "qemu", "run_batch", "setup"]

ROOT = Path(__file__).resolve().parents[1]
ARM64_DIR = Path(os.environ.get("ARM64_DIR", ROOT / "build" / "arm64"))
SETUP = ROOT / "tools" / "arm64_sysroot.sh"
SYSROOT = ARM64_DIR / "sysroot"
PYTHON = SYSROOT / "usr" / "bin" / "python3.11"
CROSS_CC, CROSS_CXX = "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++"

# qemu CPU model -> what it has that picks ONNX Runtime's kernels (MLAS: NEON, UDOT/SDOT, I8MM)
CPUS = {
    "cortex-a53": "ARMv8.0-A, NEON, no dot product (Raspberry Pi 3, many phones' little cores)",
    "cortex-a76": "ARMv8.2-A, NEON + dot product (Raspberry Pi 5's core)",
    "neoverse-n1": "ARMv8.2-A, NEON + dot product (Graviton2, Ampere Altra)",
    "max": "every feature qemu implements: dot product, I8MM, SVE2, BF16",
}

# Linux's names of the HWCAP / HWCAP2 bits (arch/arm64/kernel/cpuinfo.c), bit order
_HWCAP = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma "
          "lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg").split()
_HWCAP2 = ("dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm svef32mm svef64mm "
           "svebf16 i8mm bf16 dgh rng bti mte ecv afp rpres mte3 sme sme_i16i64 sme_f64f64 sme_i8i32 "
           "sme_f16f32 sme_b16f32 sme_f32f32 sme_fa64 wfxt").split()
_PROBE = r"""#include <stdio.h>
#include <sys/auxv.h>
int main(void) {
    unsigned long midr;
    __asm__ volatile("mrs %0, midr_el1" : "=r"(midr));
    printf("%lx %lx %lx\n", midr, getauxval(AT_HWCAP), getauxval(AT_HWCAP2));
    return 0;
}
"""


def qemu() -> str | None:
    """The aarch64 user-mode emulator (Debian: qemu-user-static), or None."""
    return shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")


def problem() -> str | None:
    """Why the emulated runtime cannot run here, or None when it can."""
    if qemu() is None:
        return "qemu-aarch64-static is not installed (Debian: apt-get install qemu-user-static)"
    if not (ARM64_DIR / ".ready").is_file() or not PYTHON.is_file():
        return f"no aarch64 userland in {ARM64_DIR}: run {SETUP.relative_to(ROOT)} (make arm64-tools)"
    return None


def cross_problem() -> str | None:
    """Why aarch64 programs cannot be cross-compiled here, or None."""
    missing = [c for c in (CROSS_CC, CROSS_CXX) if shutil.which(c) is None]
    if missing:
        return (f"{' and '.join(missing)} not installed "
                "(Debian: apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu)")
    return None


def setup(python: str = sys.executable) -> str | None:
    """Run tools/arm64_sysroot.sh (a no-op once done); returns why it failed, or None."""
    res = subprocess.run([str(SETUP)], capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "PYTHON": python, "ARM64_DIR": str(ARM64_DIR)})
    return None if res.returncode == 0 else (res.stderr.strip() or f"{SETUP.name} exited {res.returncode}")


def missing_wheels() -> list[str]:
    """Runtime packages with no aarch64 wheel on PyPI (written by the setup script)."""
    path = ARM64_DIR / "missing"
    return path.read_text().split() if path.is_file() else []


def cpuinfo_text(midr: int, hwcap: int, hwcap2: int, cpus: int) -> str:
    """/proc/cpuinfo as Linux prints it on an arm64 core with this MIDR and these HWCAPs."""
    feats = [n for i, n in enumerate(_HWCAP) if hwcap >> i & 1] + [n for i, n in enumerate(_HWCAP2) if hwcap2 >> i & 1]
    block = (f"BogoMIPS\t: 50.00\nFeatures\t: {' '.join(feats)}\nCPU implementer\t: 0x{midr >> 24 & 0xff:02x}\n"
             f"CPU architecture: 8\nCPU variant\t: 0x{midr >> 20 & 0xf:x}\nCPU part\t: 0x{midr >> 4 & 0xfff:03x}\n"
             f"CPU revision\t: {midr & 0xf}\n\n")
    return "".join(f"processor\t: {i}\n{block}" for i in range(cpus))


def _probe(model: str) -> tuple[int, int, int]:
    """(MIDR_EL1, HWCAP, HWCAP2) of the emulated CPU, read by a static aarch64 program."""
    exe = ARM64_DIR / "probe" / "cpuid"
    if not exe.is_file():
        if cross_problem():
            raise RuntimeError(cross_problem())
        exe.parent.mkdir(parents=True, exist_ok=True)
        (exe.parent / "cpuid.c").write_text(_PROBE)
        subprocess.run([CROSS_CC, "-O2", "-static", str(exe.parent / "cpuid.c"), "-o", str(exe)], check=True,
                       capture_output=True, timeout=300)
    out = subprocess.run([qemu(), "-cpu", model, str(exe)], capture_output=True, text=True, check=True, timeout=120)
    midr, hwcap, hwcap2 = (int(v, 16) for v in out.stdout.split())
    return midr, hwcap, hwcap2


def cpu_root(model: str) -> Path:
    """The ``-L`` prefix for ``model``: the sysroot's folders plus that CPU's proc/cpuinfo."""
    root = ARM64_DIR / "cpu" / model
    info = root / "proc" / "cpuinfo"
    if not info.is_file():
        info.parent.mkdir(parents=True, exist_ok=True)
        for entry in SYSROOT.iterdir():
            link = root / entry.name
            if entry.name != "proc" and not link.exists():
                link.symlink_to(entry.resolve())
        tmp = info.with_suffix(".tmp")
        tmp.write_text(cpuinfo_text(*_probe(model), os.cpu_count() or 1))
        tmp.replace(info)
    return root


def features(model: str) -> str:
    """The emulated CPU's MIDR and feature names, as its /proc/cpuinfo states them."""
    text = (cpu_root(model) / "proc" / "cpuinfo").read_text().split("\n\n")[0]
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    get = {k.strip(): v.strip() for k, v in fields.items()}
    return f"implementer {get['CPU implementer']} part {get['CPU part']}: {get['Features']}"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "LD_", "VIRTUAL_ENV", "OMP_", "EDGEAE_"))}
    env["PYTHONPATH"] = f"{ARM64_DIR / 'site'}{os.pathsep}{ROOT}"
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the tree's __pycache__ stays the host's
    return env


def emulated(model: str, argv: list[str], timeout: float = 1800, **kw) -> subprocess.CompletedProcess:
    """Run an aarch64 program (dynamically linked against the sysroot) on emulated ``model``."""
    return subprocess.run([qemu(), "-cpu", model, "-L", str(cpu_root(model)), *map(str, argv)],
                          capture_output=True, timeout=timeout, env=_env(), **kw)


def emulated_python(model: str, args: list[str], timeout: float = 1800) -> subprocess.CompletedProcess:
    """``python3.11 ARGS`` on emulated ``model`` with the aarch64 wheels and this tree importable."""
    return emulated(model, [str(PYTHON), *args], timeout=timeout, text=True, cwd=str(ROOT))


def cli_batch(jobs: list[list[str]]) -> list[dict]:
    """Run ``edgeae`` commands in this interpreter: per job, its exit code and output."""
    from edgeae.cli import cli

    results = []
    for argv in jobs:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main(argv, prog_name="edgeae", standalone_mode=True)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception as exc:  # noqa: BLE001 - an uncaught error is a finding, not the end of the batch
                code = -1
                err.write(f"uncaught {type(exc).__name__}: {exc}")
        results.append({"argv": argv, "exit": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
    return results


def run_batch(model: str | None, jobs: list[list[str]], work: Path, timeout: float = 1800) -> list[dict]:
    """:func:`cli_batch` on emulated ``model`` (None: this machine's interpreter)."""
    work.mkdir(parents=True, exist_ok=True)
    tag = model or "host"
    (work / f"jobs-{tag}.json").write_text(json.dumps(jobs))
    args = ["-m", "benchmarks.arm64", "cli-batch", str(work / f"jobs-{tag}.json"), str(work / f"out-{tag}.json")]
    if model is None:
        res = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=str(ROOT),
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    else:
        res = emulated_python(model, args, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"the CLI batch on {tag} failed: {res.stderr[-3000:]}")
    return json.loads((work / f"out-{tag}.json").read_text())


if __name__ == "__main__":
    if sys.argv[1:2] == ["cli-batch"]:
        Path(sys.argv[3]).write_text(json.dumps(cli_batch(json.loads(Path(sys.argv[2]).read_text()))))
    else:
        from benchmarks.arm64_matrix import main

        main(sys.argv[1:])
