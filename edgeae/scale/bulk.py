"""Encode and compress inputs of any size block by block, with constant memory.

    source (RowSource) -> blocks of R rows -> model.encode -> codes block -> .npy rows
                                                           -> codec -> one .eae chunk

The block plan is shared by every executor: this module runs the blocks in order in
one process; :mod:`edgeae.scale.dask` runs the same block functions as Dask tasks and
hands their results, in block order, to the same writers. So both write the same bytes.

Blocks are ``R = MAX_CHUNK_SYMBOLS // code_size`` samples: exactly the samples of one
``.eae`` chunk as :func:`edgeae.runtime.stream.compress_codes` splits a whole array. A
stream written block by block is therefore byte-equal to ``compress(model, x)`` on the
whole array, and each block is encoded with the same ``batch_size`` calls as a whole-array
``model.encode(x, batch_size)`` whenever ``batch_size`` divides ``R`` (the default 4096
does for every power-of-two code size up to 64); otherwise it is equal to this block plan.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.atomic import atomic_append, atomic_path
from edgeae.data import RowSource, iter_blocks
from edgeae.errors import ConfigError
from edgeae.runtime.compress import codec_of_stream, codecs_of, pick_codec
from edgeae.runtime.contract import NonFiniteInput
from edgeae.runtime.model import DEFAULT_BATCH_SIZE
from edgeae.runtime.stream import MAX_CHUNK_SYMBOLS, StreamWriter, decompress_codes, stream_model_id

__all__ = ["block_rows", "BlockStats", "encode_block", "compress_block", "encode_to_npy", "compress_to_file",
           "stream_codec"]

Progress = Callable[[int], Any]


def block_rows(code_size: int) -> int:
    """Samples per block: one full ``.eae`` chunk (the writer's own split of a whole array)."""
    return max(1, MAX_CHUNK_SYMBOLS // code_size)


@dataclass
class BlockStats:
    """What the compression report needs from one block (sums, so blocks add up)."""

    samples: int = 0
    raw_bytes: int = 0  # bytes of the raw input samples
    stream_bytes: int = 0  # bytes of the chunk(s) written
    se: float = 0.0  # summed squared error in model units, after decoding the chunk again
    values: int = 0  # number of values compared

    def __iadd__(self, other: BlockStats) -> BlockStats:
        for name in ("samples", "raw_bytes", "stream_bytes", "se", "values"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


def encode_block(model: Any, x: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE, where: str = "the input",
                 first: int = 0) -> np.ndarray:
    """One block of raw samples -> codes ``(n, D)`` float32, through the bundle's input contract.

    ``first``: the block's first sample in the whole input, so a refusal names the sample there.
    """
    x, _ = model.contract.samples(x, where)
    try:
        model.contract.check_values(x, where)
    except NonFiniteInput as exc:  # the sample of the input, not of the block
        raise exc.shifted(first) from None
    return np.asarray(model.encode(x, batch_size=batch_size), dtype=np.float32)


def compress_block(model: Any, x: np.ndarray, bits: int | None, batch_size: int = DEFAULT_BATCH_SIZE,
                   check: bool = True, where: str = "the input", first: int = 0) -> tuple[bytes, BlockStats]:
    """One block of raw samples -> its ``.eae`` chunk bytes and report sums.

    With ``check`` the chunk is decoded again (as a receiver would) for the PSNR.
    """
    codec, mid = pick_codec(codecs_of(model.manifest), bits)
    writer = StreamWriter.begin(codec, mid)  # the chunk a writer of this stream appends, here or on a worker
    codes = encode_block(model, x, batch_size, where, first).reshape(-1, codec.code_size)
    chunk = writer.append(codes)
    stats = BlockStats(len(x), int(x.nbytes), len(chunk))
    if check:
        x_hat = model.decode(decompress_codes(codec, mid, writer.header + chunk), batch_size=batch_size, raw=True)
        d = model.to_model_units(x).astype(np.float64) - model.to_model_units(x_hat)
        stats.se, stats.values = float(np.sum(d * d)), int(d.size)
    return chunk, stats


def stream_codec(model: Any, path: str | os.PathLike, bits: int | None, append: bool, where: str | None = None):
    """(codec, model id) for a new stream, or for an append to ``path``: the codec its header names.

    Only the header is read here; the writer checks the rest when it resumes the stream.
    ``where`` names the stream in messages (``path`` may be the private copy an append adds to).
    """
    p, codecs = Path(path), codecs_of(model.manifest)
    if append and p.exists() and p.stat().st_size > 0:
        with p.open("rb") as f:
            head = f.read(16)  # magic, version, model id, varint code size
        return codec_of_stream(codecs, stream_model_id(head), where or str(path), bits)
    return pick_codec(codecs, bits)


def local_blocks(source: RowSource, rows: int, fn: Callable[[np.ndarray, int], Any]) -> Iterator[tuple[int, Any]]:
    """``(start, fn(block, start))`` for every block of ``source``, computed here, in order."""
    for start, block in iter_blocks(source, rows):
        yield start, fn(block, start)


def encode_to_npy(model: Any, source: RowSource | None, output: str | os.PathLike, *,
                  batch_size: int = DEFAULT_BATCH_SIZE, progress: Progress | None = None,
                  results: Iterable[tuple[int, np.ndarray]] | None = None, n: int | None = None
                  ) -> tuple[int, int]:
    """Encode every sample of ``source`` into the ``.npy`` file ``output``; -> its shape.

    The ``(N, D)`` float32 array is written block by block and renamed into place when
    complete. ``results`` (with the sample count ``n``) lets another
    executor supply the code blocks.
    """
    d = int(model.code_size)
    n = source.n if source is not None else n
    if results is None:
        results = local_blocks(source, block_rows(d),
                               lambda b, first: encode_block(model, b, batch_size, source.path, first))
    existed = Path(output).exists()
    try:
        with atomic_path(output) as tmp, open(tmp, "wb") as f:  # removed on failure; the earlier file stays
            _write_rows(f, results, n, d, progress)
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror or exc}"
                          f"{' (the earlier file is unchanged)' if existed else ''}") from None
    return n, d


def _write_rows(f, results: Iterable[tuple[int, np.ndarray]], n: int, d: int, progress: Progress | None) -> None:
    """A .npy header for ``(n, d)`` float32, then the blocks in order with plain writes.

    Not a memory map: its dirty pages would count as resident memory until unmapped.
    """
    np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (n, d)})
    done = 0
    for start, codes in results:
        if start != done or codes.shape[1:] != (d,):
            raise RuntimeError(f"block at row {start} {codes.shape} out of order (expected row {done})")
        f.write(np.ascontiguousarray(codes, dtype="<f4").tobytes())
        done += len(codes)
        if progress is not None:
            progress(len(codes))
    if done != n:
        raise RuntimeError(f"{done} code rows written, expected {n}")


def compress_to_file(model: Any, source: RowSource | None, output: str | os.PathLike, *, bits: int | None = None,
                     append: bool = False, batch_size: int = DEFAULT_BATCH_SIZE, check: bool = True,
                     progress: Progress | None = None,
                     results: Callable[[int], Iterable[tuple[int, tuple[bytes, BlockStats]]]] | None = None
                     ) -> dict[str, Any]:
    """Compress ``source`` into the stream ``output`` one chunk per block; -> the report.

    A new stream appears whole (temporary file + rename); an append adds chunks behind the
    checked existing ones in a copy renamed over the stream, so it is all or nothing.
    ``report["stream_samples"]`` is the sample count of the whole stream afterwards. The report holds bytes per sample, ratio and (with ``check``)
    the MSE / PSNR of the decoded stream, accumulated block by block. ``results(bits)``
    lets another executor supply the chunks, given the bit depth picked here.
    """
    if append:
        return _append(Path(output), lambda tmp: _compress_into(model, source, tmp, bits, True, batch_size, check,
                                                                progress, results, str(output)))
    codec_mid = stream_codec(model, output, bits, False)
    return _write_new(Path(output), lambda tmp: _compress_into(model, source, tmp, bits, False, batch_size, check,
                                                               progress, results, str(output), codec_mid))


def _compress_into(model, source, path: Path, bits, append, batch_size, check, progress, results, where,
                   codec_mid=None) -> dict[str, Any]:
    """Write the stream (or, appending, the new chunks after the copy's) to ``path``; -> the report."""
    codec, mid = codec_mid or stream_codec(model, path, bits, append, where)
    with path.open("r+b") as f:
        resume = append and path.stat().st_size > 0  # the one full check of the stream, before any block is coded
        writer = StreamWriter.resume(codec, mid, f) if resume else StreamWriter.begin(codec, mid, f)
        total = BlockStats(stream_bytes=0 if resume else len(writer.header))  # the bytes this call adds
        if results is None:
            blocks = local_blocks(source, block_rows(codec.code_size), lambda b, first: compress_block(
                model, b, codec.bits, batch_size, check, source.path, first))
        else:
            blocks = results(codec.bits)
        for _, (chunk, stats) in blocks:
            writer.append_chunks(chunk)
            total += stats
            if progress is not None:
                progress(stats.samples)
        info = writer.finish()  # on a device that may lose power, the chunks are on disk on return
    report = _report(model, total, check)
    report["stream_samples"] = info.samples  # the whole stream's
    return report


def _write_new(path: Path, write: Callable[[Path], dict]) -> dict:
    """A new stream appears whole or not at all; the earlier file is kept on failure."""
    existed = path.exists()
    try:
        with atomic_path(path) as tmp:
            return write(tmp)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}"
                          f"{' (the earlier file is unchanged)' if existed else ''}") from None


def _append(path: Path, write: Callable[[Path], dict]) -> dict:
    """Chunks behind the existing ones, in a copy renamed over the stream: all of them or none."""
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give the stream file to append to")
    try:
        with atomic_append(path) as (tmp, _):
            return write(tmp)
    except OSError as exc:
        raise ConfigError(f"cannot append to {path}: {exc.strerror or exc}; the stream is unchanged") from None


def _report(model: Any, total: BlockStats, check: bool) -> dict[str, Any]:
    from edgeae.runtime.metrics import is_bounded, psnr_from_mse

    n = total.samples
    report: dict[str, Any] = {"samples": n, "bytes": total.stream_bytes,
                              "bytes_per_sample": total.stream_bytes / max(n, 1),
                              "raw_bytes": total.raw_bytes, "ratio": total.raw_bytes / max(total.stream_bytes, 1)}
    if check and total.values:
        report["mse"] = total.se / total.values
        if is_bounded(model.manifest.normalization["mode"]):
            report["psnr"] = psnr_from_mse(report["mse"])
    return report
