"""The numpy matmul ceiling, run as its own process: ``python -m edgeae.bench.ceiling``.

:func:`edgeae.bench.harness.measure_ceiling` starts this module with every BLAS thread
count set to 1 in the environment, before numpy loads: the one way to pin whichever BLAS
numpy was built with, without extra packages. It times a chain of one-thread matmuls of
the encoder's GEMM shapes and, given a bundle and an input file, the fp32 encoder on one
thread, interleaved with it in blocks (:func:`edgeae.bench.timing.blocks`).

    python -m edgeae.bench.ceiling SHAPES_JSON SECONDS [BUNDLE FEED.npy]

Prints one JSON list: each timed runner's nanoseconds per call (median over rounds of its
block means), then the number of timed calls of the first.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import numpy as np

from edgeae.bench.timing import blocks

__all__ = ["matmul_chain", "main"]


def matmul_chain(shapes: list[tuple[int, int, int]], seed: int = 0) -> Callable[[], None]:
    """A call that runs ``(M, K) @ (K, N)`` for every shape into preallocated outputs."""
    rng = np.random.default_rng(seed)
    mats = [(rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32),
             np.empty((m, n), np.float32)) for m, k, n in shapes]

    def chain() -> None:
        for a, b, o in mats:
            np.matmul(a, b, out=o)

    return chain


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    shapes, seconds = json.loads(args[0]), float(args[1])
    runners = [matmul_chain([tuple(s) for s in shapes])]
    if len(args) > 3 and args[2]:
        from edgeae.runtime.model import load

        model, x = load(args[2], "fp32", providers=["CPUExecutionProvider"], threads=1), np.load(args[3])
        runners.append(lambda: model.encode(x))
    timed = blocks(runners, duration=seconds, warmup=3)
    print(json.dumps([float(np.median(r)) for r in timed.rounds] + [len(timed.calls[0])]))


if __name__ == "__main__":
    main()
