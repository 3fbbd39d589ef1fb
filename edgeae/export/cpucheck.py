"""Check quantized graphs against onnx.reference on this CPU, or on an emulated one.

ONNX Runtime picks its integer kernels from the CPU's features, so an int8 graph can
compute differently on a CPU without VNNI than where it was exported. This module runs the
exporter's own reference check (:func:`edgeae.export.validate.reference_check`, the runtime's
session settings, batches 1, 7, 64) on given graphs, here or under qemu user-mode emulation
of another x86 model (its CPUID makes ONNX Runtime choose that model's kernels)::

    python -m edgeae.export.cpucheck '{"bundle/encoder.int8-static.onnx": "x.npy"}'
    report = run_emulated("haswell", {"bundle/encoder.int8-static.onnx": "x.npy"})
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.errors import EdgeAEError
from edgeae.export.validate import BATCHES, Checks, reference_check, run, session, take_batch

__all__ = ["EMULATED_CPUS", "check_graphs", "qemu", "run_emulated"]

# short name -> qemu CPU model: AVX2 without VNNI (u8 x s8 products saturate in int16 there)
EMULATED_CPUS = {"haswell": "Haswell-v4", "epyc": "EPYC-Milan", "nehalem": "Nehalem"}


def check_graphs(graphs: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``{graph path: .npy of inputs}`` -> per graph: checks made, failures, max error, the largest
    share of its bound any element used (<= 1 passes), notes."""
    report = {}
    for path, inputs in graphs.items():
        x = np.load(inputs)
        checks = Checks()
        sess = session(Path(path))
        for b in BATCHES:
            xb = take_batch(x, b)
            reference_check(Path(path), xb, run(sess, xb), checks, b, against="onnxruntime")
        report[path] = {"checks": len(checks.items), "failures": [c.line() for c in checks.failures()],
                        "max_error": max((c.max_abs_error for c in checks.items), default=None),
                        "max_share": max((c.share for c in checks.items), default=None),
                        "notes": checks.notes}
    return report


def qemu() -> str | None:
    """The qemu x86-64 user-mode emulator, or None (Debian package: qemu-user-static)."""
    return shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")


def run_emulated(cpu: str, graphs: dict[str, str], timeout: float = 3600) -> dict[str, dict[str, Any]]:
    """:func:`check_graphs` in a Python process emulated as ``cpu`` (a key of EMULATED_CPUS)."""
    emulator = qemu()
    if emulator is None:
        raise EdgeAEError("qemu-x86_64-static is not installed; on Debian: apt-get install qemu-user-static")
    if cpu not in EMULATED_CPUS:
        raise EdgeAEError(f"unknown CPU {cpu!r}; choose one of: {', '.join(EMULATED_CPUS)}")
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([emulator, "-cpu", EMULATED_CPUS[cpu], sys.executable, "-m", "edgeae.export.cpucheck",
                           json.dumps(graphs)], capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        # qemu warns once per CPUID feature it cannot emulate; keep only the program's own output
        err = "\n".join(line for line in proc.stderr.splitlines() if "TCG doesn't support" not in line)
        raise EdgeAEError(f"the check under emulated {cpu} failed: {err.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(check_graphs(json.loads(sys.argv[1]))))
