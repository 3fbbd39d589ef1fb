"""The one timing loop of edgeae (warm up, then interleave A B A B ...) and memory probes.

Used by the benchmark harness, the matmul ceiling and the exporter's latency record, so
every latency edgeae reports is measured the same way (docs/performance.md).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

try:  # Unix only; peak memory is reported as unknown elsewhere
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None

__all__ = ["interleave", "rss_mb", "peak_rss_mb", "timed_load"]

MIN_ROUNDS = 5  # timed calls per runner, even when the duration is tiny
MAX_ROUNDS = 200_000  # safety cap for very fast calls


def interleave(runners: Sequence[Callable[[], Any]], iterations: int | None = None, duration: float = 1.0,
               warmup: int = 3) -> list[list[int]]:
    """Warm every runner up, then time them round-robin (A B A B ...); ns per call, per runner.

    ``iterations`` fixes the rounds; otherwise rounds continue until ``duration`` seconds of
    wall time passed (at least :data:`MIN_ROUNDS`). Interleaving makes drift on a shared
    machine hit every runner alike.
    """
    for run in runners:
        for _ in range(warmup):
            run()
    times: list[list[int]] = [[] for _ in runners]
    clock = time.perf_counter_ns
    end = clock() + int(duration * 1e9)
    rounds = 0
    while True:
        for i, run in enumerate(runners):
            t0 = clock()
            run()
            times[i].append(clock() - t0)
        rounds += 1
        if iterations is not None:
            if rounds >= iterations:
                break
        elif (rounds >= MIN_ROUNDS and clock() >= end) or rounds >= MAX_ROUNDS:
            break
    return times


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc/self/statm); falls back to the peak elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (``ru_maxrss``); NaN where unknown."""
    if resource is None:
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def timed_load(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()`` with its wall time (ms) and the resident memory it added (MiB): a cold start."""
    rss, t0 = rss_mb(), time.perf_counter_ns()
    obj = fn()
    return obj, (time.perf_counter_ns() - t0) / 1e6, rss_mb() - rss


_ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp", "i8mm", "sve")


def machine() -> dict[str, object]:
    """CPU model, the ISA features that change ONNX Runtime's kernels (AVX2, AVX-512, VNNI,
    NEON dot product), and cores: every published figure names the machine it ran on."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model", "CPU part") and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features"):
                flags |= set(value.split())
    except OSError:  # not Linux: the model name from platform is all there is
        pass
    return {"cpu": model, "isa": [f for f in _ISA_FLAGS if f in flags], "cores": os.cpu_count(),
            "arch": platform.machine()}
