"""edgeae's timing loops and memory probes (docs/performance.md).

- :func:`blocks`: the benchmark's loop. Variants run in *blocks* (a block of A calls, then
  a block of B, ...), every round visiting every variant once, so that machine noise hits
  all of them alike while each block runs a variant as a user runs one model: warm, with
  its own weights in cache. Alternating call by call instead charges each variant for the
  cache misses (and the thread-pool wake-ups) the previous one left behind.
- :func:`alone`: a plain :mod:`timeit` loop of one variant, the benchmark's self-check.
- :func:`median_ci`: the distribution-free 95% interval of a median, used to say whether a
  ratio measured across rounds resolves a difference at all.
- :func:`interleave`: call-by-call rounds (A B A B ...), kept for the exporter's short
  latency record of variants that are all loaded together.
"""

from __future__ import annotations

import math
import os
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

try:  # Unix only; peak memory is reported as unknown elsewhere
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None

__all__ = ["BlockTimes", "blocks", "block_order", "block_sizes", "alone", "median_ci", "interleave", "rss_mb",
           "peak_rss_mb", "timed_load"]

MIN_ROUNDS = 5  # timed calls per runner, even when the duration is tiny
MAX_ROUNDS = 200_000  # safety cap for very fast calls
ROUNDS = 12  # block rounds per cell: enough for a 95% interval of the median between the 3rd and 10th
MAX_BLOCK_CALLS = 100_000  # safety cap for very fast calls


@dataclass
class BlockTimes:
    """What :func:`blocks` measured, per runner."""

    calls: list[list[int]]  # ns of every timed call
    rounds: list[list[float]]  # ns per call, median of each round's block (round r of every runner is adjacent in time)
    per_block: list[int]  # timed calls per block


def block_order(n: int, rounds: int) -> list[list[int]]:
    """Runner indices per round: every round runs each runner once, the first one rotating,
    so no runner always follows the same neighbour (``[[0, 1, 2], [1, 2, 0], [2, 0, 1], ...]``)."""
    return [[(r + i) % n for i in range(n)] for r in range(rounds)]


def block_sizes(call_ns: Sequence[float], rounds: int, duration: float, iterations: int | None = None) -> list[int]:
    """Timed calls per block for each runner: ``iterations`` split over the rounds, or
    ``duration`` shared equally (in time) by runners and rounds, given each runner's cost per call."""
    if iterations is not None:
        return [max(1, math.ceil(iterations / rounds))] * len(call_ns)
    share = duration * 1e9 / (rounds * max(len(call_ns), 1))
    return [int(min(MAX_BLOCK_CALLS, max(1, share // max(ns, 1.0)))) for ns in call_ns]


def blocks(runners: Sequence[Callable[[], Any]], rounds: int = ROUNDS, duration: float = 1.0,
           iterations: int | None = None, warmup: int = 3, settle: int = 1) -> BlockTimes:
    """Warm every runner up, then time them in blocks, round after round (see the module docstring).

    Each block starts with ``settle`` untimed calls (the variant's weights come back into
    cache), then times its calls one by one with ``perf_counter_ns``; a block's figure is
    the median of its calls, robust to other processes' bursts on a shared machine. Block sizes come from
    the warm-up's fastest call (:func:`block_sizes`); with ``iterations``, every runner makes
    ``ceil(iterations / rounds)`` timed calls per block.
    """
    clock = time.perf_counter_ns
    cost = []
    for run in runners:
        best = float("inf")
        for _ in range(max(warmup, 1)):
            t0 = clock()
            run()
            best = min(best, clock() - t0)
        cost.append(best)
    if iterations is not None:
        rounds = max(1, min(rounds, iterations))
    sizes = block_sizes(cost, rounds, duration, iterations)
    calls: list[list[int]] = [[] for _ in runners]
    medians: list[list[float]] = [[] for _ in runners]
    for order in block_order(len(runners), rounds):
        for i in order:
            run, got = runners[i], []
            for _ in range(settle):
                run()
            for _ in range(sizes[i]):
                t0 = clock()
                run()
                got.append(clock() - t0)
            calls[i] += got
            medians[i].append(_median(got))
    return BlockTimes(calls, medians, sizes)


def alone(run: Callable[[], Any], calls: int) -> float:
    """ns per call of ``run`` by itself in a plain ``timeit`` loop: the median of ``calls``
    one-call repeats (a median, like the blocks', so that other processes' bursts on a shared
    machine count in neither)."""
    return _median([t * 1e9 for t in timeit.Timer(run).repeat(repeat=max(calls, 1), number=1)])


def _median(values: Sequence[float]) -> float:
    v = sorted(values)
    n = len(v)
    return float(v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2)


def median_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float | None, float | None]:
    """Median of ``values`` and its distribution-free confidence interval (order statistics of
    the binomial sign test); ``(median, None, None)`` when there are too few values for ``level``."""
    v = sorted(values)
    n = len(v)
    if n == 0:
        return float("nan"), None, None
    med = _median(v)
    k, tail = 0, 0.0  # the largest k with P(Binomial(n, 1/2) < k) <= (1 - level) / 2
    while k < n // 2:
        tail += math.comb(n, k) / 2**n
        if tail > (1 - level) / 2:
            break
        k += 1
    if k == 0:
        return med, None, None
    return med, v[k - 1], v[n - k]


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
