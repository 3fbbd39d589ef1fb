"""Bulk encode / compress on Dask: :mod:`edgeae.scale.bulk`'s blocks as Dask tasks.

    dask.array x (N, ...) -> rechunk to R-row blocks -> map_blocks(encode) -> codes (N, D)
                                                     -> one task per block -> .eae chunk
                                                        -> written on the client, in block order

Each worker process loads the bundle once (:func:`worker_model`, cached per process) and
runs the block functions the single-process path runs, on the same block boundaries, so
codes are bit-equal and streams byte-equal to ``edgeae encode`` / ``edgeae compress``
without ``--dask``. The bundle (and an input file read by workers) must be at the same
path on every worker: a shared file system, or a copy on each machine.

Example::

    import dask.array as da
    from dask.distributed import Client
    from edgeae.scale import dask as eae_dask

    client = Client("tcp://scheduler:8786")          # or Client(LocalCluster(...))
    x = da.from_zarr("images.zarr")                    # (N, 1, 28, 28) uint8
    codes = eae_dask.encode("bundles/mnist", x)        # lazy (N, D) float32
    eae_dask.compress("bundles/mnist", x, "images.eae", bits=4)

Needs ``pip install 'edgeae[dask]'``; :mod:`edgeae.runtime` never imports this module.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np

from edgeae.data import ArraySource, RowSource
from edgeae.errors import ConfigError
from edgeae.runtime.model import DEFAULT_BATCH_SIZE
from edgeae.scale import bulk

__all__ = ["ModelSpec", "worker_model", "as_dask_array", "encode", "encode_to_npy", "compress", "connect"]


@dataclass(frozen=True)
class ModelSpec:
    """How every worker loads the bundle: small and picklable, unlike a loaded model."""

    bundle: str  # bundle folder, at this path on every worker
    precision: str = "fp32"  # graph precision to run
    provider: str = "cpu"  # onnxruntime execution provider (auto | cpu | cuda | ...)
    threads: int | None = 1  # intra-op threads per worker task (1: one core per Dask thread)
    format: str = "onnx"  # onnx | ort graph files


_MODELS: dict[ModelSpec, Any] = {}
_LOCK = threading.Lock()


def worker_model(spec: ModelSpec):
    """The loaded :class:`EdgeModel` for ``spec`` in this process, loaded on first use only."""
    with _LOCK:
        model = _MODELS.get(spec)
        if model is None:
            from edgeae.runtime import load

            model = load(spec.bundle, precision=spec.precision, providers=spec.provider, threads=spec.threads,
                         format=spec.format)
            _MODELS[spec] = model
        return model


def _spec(bundle: str | os.PathLike | ModelSpec) -> ModelSpec:
    return bundle if isinstance(bundle, ModelSpec) else ModelSpec(os.path.abspath(os.fspath(bundle)))


def connect(address: str):
    """A ``distributed.Client`` for ``local:N`` (a LocalCluster of N one-thread worker
    processes) or a scheduler address ``tcp://HOST:PORT``; the caller closes it."""
    from distributed import Client, LocalCluster

    if address.startswith("local:"):
        try:
            workers = int(address.split(":", 1)[1])
        except ValueError:
            workers = 0
        if workers < 1:
            raise ConfigError(f"--dask {address!r}: give local:N with N >= 1 workers, e.g. local:2")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", host="127.0.0.1")
        return Client(cluster, set_as_default=True)
    if "://" not in address:
        raise ConfigError(f"--dask {address!r}: give local:N or a scheduler address such as tcp://HOST:8786")
    return Client(address, set_as_default=True, timeout="30s")


def as_dask_array(source: RowSource, rows: int = 8192) -> da.Array:
    """A dask array over a :class:`RowSource` in blocks of ``rows`` samples, each read by the
    worker that uses it (pass ``bulk.block_rows(code_size)`` so no block is split again)."""
    if isinstance(source, ArraySource):
        return da.from_array(source.array, chunks=(rows, *source.sample_shape))
    parts = []
    for start in range(0, source.n, rows):
        count = min(rows, source.n - start)
        block = dask.delayed(_read, pure=True)(source, start, count)
        parts.append(da.from_delayed(block, shape=(count, *source.sample_shape), dtype=source.dtype))
    return da.concatenate(parts, axis=0)


def _read(source: RowSource, start: int, count: int) -> np.ndarray:
    return source.read(start, count)


def _blocks(x: da.Array, code_size: int) -> da.Array:
    """``x`` with one block per ``bulk.block_rows`` samples: the single-process boundaries."""
    if not isinstance(x, da.Array):
        raise ConfigError(f"expected a dask.array, got {type(x).__name__}; wrap it with dask.array.from_array")
    return x.rechunk({0: bulk.block_rows(code_size), **{i: -1 for i in range(1, x.ndim)}})


def _encode_task(block: np.ndarray, spec: ModelSpec, batch_size: int, where: str, block_info=None) -> np.ndarray:
    first = block_info[0]["array-location"][0][0] if block_info else 0  # dask passes where the block is
    return bulk.encode_block(worker_model(spec), block, batch_size, where, first)


def encode(bundle: str | os.PathLike | ModelSpec, x: da.Array, batch_size: int = DEFAULT_BATCH_SIZE,
           where: str = "the input") -> da.Array:
    """Lazy codes ``(N, D)`` float32 of the raw samples ``x`` (a dask array ``(N, ...)``)."""
    from edgeae.runtime import read_manifest

    spec = _spec(bundle)
    d = int(read_manifest(spec.bundle).code_size)
    x = _blocks(x, d)
    return x.map_blocks(_encode_task, spec, batch_size, where, dtype=np.float32, chunks=(x.chunks[0], (d,)),
                        drop_axis=list(range(2, x.ndim)) or None)


def ordered(tasks: list[tuple[int, Any]], window: int | None = None) -> Iterator[tuple[int, Any]]:
    """Compute delayed ``tasks`` ``[(start, task)]`` and yield results in order, with at
    most ``window`` in flight, so the client holds a bounded number of block results."""
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        client = None
    window = window or max(2, 2 * _workers(client))
    if client is None:
        for i in range(0, len(tasks), window):
            part = tasks[i:i + window]
            yield from zip((s for s, _ in part), dask.compute(*(t for _, t in part)), strict=True)
        return
    pending: deque = deque()
    todo = iter(tasks)
    for start, task in todo:
        pending.append((start, client.compute(task)))
        if len(pending) >= window:
            break
    while pending:
        start, future = pending.popleft()
        nxt = next(todo, None)
        if nxt is not None:
            pending.append((nxt[0], client.compute(nxt[1])))
        yield start, future.result()


def _workers(client) -> int:
    if client is None:
        return os.cpu_count() or 1
    return max(1, len(client.scheduler_info().get("workers", {})))


def _starts(x: da.Array) -> list[int]:
    return [int(s) for s in np.cumsum((0, *x.chunks[0][:-1]))]


def encode_to_npy(bundle: str | os.PathLike | ModelSpec, x: da.Array, output: str | os.PathLike, *,
                  batch_size: int = DEFAULT_BATCH_SIZE, progress=None, where: str = "the input"
                  ) -> tuple[int, int]:
    """Codes of ``x`` into the ``.npy`` file ``output``, written block by block on the client."""
    codes = encode(bundle, x, batch_size, where)
    tasks = list(zip(_starts(codes), codes.to_delayed().ravel(), strict=True))
    return bulk.encode_to_npy(worker_model(_spec(bundle)), None, output, n=int(codes.shape[0]),
                              progress=progress, results=ordered(tasks))


def _compress_task(block: np.ndarray, spec: ModelSpec, bits: int, batch_size: int, check: bool, where: str,
                   first: int = 0):
    return bulk.compress_block(worker_model(spec), block, bits, batch_size, check, where, first)


def compress(bundle: str | os.PathLike | ModelSpec, x: da.Array, output: str | os.PathLike, *,
             bits: int | None = None, append: bool = False, batch_size: int = DEFAULT_BATCH_SIZE,
             check: bool = True, progress=None, where: str = "the input") -> dict[str, Any]:
    """Compress ``x`` into the ``.eae`` stream ``output``: one chunk per block, appended in
    block order by the client; -> the report of :func:`edgeae.scale.bulk.compress_to_file`."""
    spec = _spec(bundle)
    model = worker_model(spec)  # on the client: picks the codec and writes the header
    blocks = _blocks(x, int(model.code_size))

    def results(codec_bits: int):
        task = dask.delayed(_compress_task, pure=True)
        parts = blocks.to_delayed().ravel()
        return ordered([(s, task(p, spec, codec_bits, batch_size, check, where, s))
                        for s, p in zip(_starts(blocks), parts, strict=True)])

    return bulk.compress_to_file(model, None, output, bits=bits, append=append, check=check, progress=progress,
                                 results=results)
