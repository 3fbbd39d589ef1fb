"""The ``.eae`` container: a header plus appendable, CRC-checked chunks of coded codes.

Byte layout (full table in docs/FORMAT.md)::

    stream = header chunk*
    header = b"EA" | version (1 byte) | model id (8 bytes) | code_size (varint)
    chunk  = n samples (varint) | payload length (varint) | payload | CRC-32 (4 bytes, LE)

The payload is one range-coded message of the chunk's ``n x code_size`` symbols, dim-major
(all samples' dim 0 with dim 0's table, then dim 1, ...). Each chunk's CRC-32 covers its
framing and payload and is seeded with the CRC-32 of the header, so every byte of a stream
is checked. Appending writes one more chunk and never touches earlier bytes.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from edgeae.atomic import atomic_append
from edgeae.errors import ConfigError, InputError, StreamError
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.varint import get_varint, put_varint

__all__ = ["MAGIC", "VERSION", "MAX_CHUNK_SYMBOLS", "StreamInfo", "StreamWriter", "compress_codes", "append_codes",
           "append_file", "decompress_codes", "decompress_symbols", "read_header", "read_header_file",
           "stream_model_id"]

MAGIC = b"EA"  # two bytes, like gzip's, to keep the fixed overhead within budget
VERSION = 1  # container version; readers refuse others
MODEL_ID_SIZE = 8
MAX_CHUNK_SYMBOLS = 1 << 18  # writer splits larger inputs; reader refuses larger chunks
_TRIM_TRIES = 7  # tail bytes the writer tries to drop from each payload


@dataclass(frozen=True)
class StreamInfo:
    """What a stream holds, read and checked without decoding any payload."""

    version: int  # container version byte
    model_id: bytes  # 8-byte id of the (decoder, codec tables) that wrote it
    code_size: int  # D: symbols per sample
    samples: int  # total samples over all chunks
    chunks: int  # number of chunks (one per compress / append call, or more)
    header_size: int  # bytes before the first chunk
    payload_bytes: int  # coded bytes, framing excluded
    size: int  # total stream length in bytes


# ------------------------------------------------------------------- header
def _header(model_id: bytes, code_size: int) -> bytes:
    if not (isinstance(model_id, bytes) and len(model_id) == MODEL_ID_SIZE):
        raise InputError(f"model id {model_id!r} must be {MODEL_ID_SIZE} bytes")
    return MAGIC + bytes([VERSION]) + model_id + put_varint(code_size)


def _parse_header(data: bytes) -> tuple[int, bytes, int, int]:
    """-> (version, model id, code size, header length)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise StreamError(f"stream is {type(data).__name__}; expected bytes")
    if len(data) == 0:
        raise StreamError("stream is empty (0 bytes); expected an .eae stream")
    head = bytes(data[: len(MAGIC)])
    if head != MAGIC[: len(head)]:
        raise StreamError(
            f"stream starts with {bytes(data[:4])!r}, not the .eae magic {MAGIC!r}; "
            "not an edgeae compressed stream"
        )
    if len(data) < len(MAGIC) + 1:
        raise StreamError(f"stream truncated in its header ({len(data)} bytes)")
    version = data[2]
    if version != VERSION:
        raise StreamError(
            f"stream version {version} is not supported; this edgeae reads version {VERSION}"
        )
    end = 3 + MODEL_ID_SIZE
    if len(data) < end:
        raise StreamError(f"stream truncated in its header ({len(data)} bytes)")
    model_id = bytes(data[3:end])
    code_size, pos = get_varint(data, end, "code size")
    if code_size == 0:
        raise StreamError("stream header says code size 0; stream corrupt")
    return version, model_id, code_size, pos


def _check_model(model_id: bytes, code_size: int, codec: LatentCodec, expect_id: bytes) -> None:
    if model_id != expect_id:
        raise StreamError(
            f"stream was written for model id {model_id.hex()}, not this model "
            f"({expect_id.hex()}); decompress it with the bundle (and codec) that wrote it"
        )
    if code_size != codec.code_size:
        raise StreamError(
            f"stream code size {code_size} does not match the codec's {codec.code_size}; "
            "stream corrupt"
        )


def _chunks(data: bytes, pos: int, seed: int, code_size: int):
    """Yield (n, payload) per chunk after checking framing, bounds and CRC-32."""
    total = len(data)
    while pos < total:
        start = pos
        n, pos = get_varint(data, pos, "chunk sample count")
        length, pos = get_varint(data, pos, "chunk payload length")
        if n == 0 or n > max(1, MAX_CHUNK_SYMBOLS // code_size):
            raise StreamError(
                f"chunk at byte {start} claims {n} samples; allowed 1.."
                f"{MAX_CHUNK_SYMBOLS // code_size} for code size {code_size}; stream corrupt"
            )
        if length > total - pos - 4:
            raise StreamError(
                f"chunk at byte {start} claims {length} payload bytes but only "
                f"{max(total - pos - 4, 0)} remain before its CRC; stream truncated or corrupt"
            )
        end = pos + length
        crc = zlib.crc32(data[start:end], seed)
        if crc != int.from_bytes(data[end : end + 4], "little"):
            raise StreamError(f"CRC-32 mismatch in the chunk at byte {start}; stream corrupt")
        yield n, bytes(data[pos:end])
        pos = end + 4


# --------------------------------------------------------------- coding
def _decode(codec: LatentCodec, payload: bytes, n: int) -> np.ndarray:
    """payload -> (n, D) int32 symbols; any coder complaint becomes StreamError."""
    return codec.decode_symbols(payload, n)


def _encode(codec: LatentCodec, q: np.ndarray) -> bytes:
    """(n, D) symbols -> shortest payload that decodes back to exactly ``q``.

    The range coder's 32-bit words less up to ``_TRIM_TRIES`` tail bytes (optionally
    rounding the last kept byte up) when the decoder, reading zeros beyond the end, still
    recovers every symbol (:meth:`LatentCodec.encode_symbols`).
    """
    return codec.encode_symbols(q, _TRIM_TRIES)


def _symbols(codec: LatentCodec, q_or_codes: np.ndarray) -> np.ndarray:
    arr = np.asarray(q_or_codes)
    if np.issubdtype(arr.dtype, np.integer):
        return codec.check_symbols(arr)
    return codec.quantize(arr)


class StreamWriter:
    """An open ``.eae`` stream written chunk by chunk: the Python ``eae_writer`` (eae_codec.h).

        begin(codec, id[, file]) -> header | resume(codec, id, stream) -> append(q)* -> finish()

    ``begin`` starts a stream and ``resume`` continues one whose header names this codec
    (model id and code size, as ``eae_writer_resume`` checks; Python also checks every chunk
    it is given, so nothing is appended behind a damaged tail where no reader reaches it).
    ``append`` codes samples into chunks of at most ``MAX_CHUNK_SYMBOLS`` symbols and returns
    the bytes added; ``append_chunks`` adds chunks another writer of the same stream coded
    (a Dask worker). Without a file the bytes are only returned, like the C caller's buffer.

    With a file the writer writes there, and the stream in it is valid after ``begin`` (no
    samples) and after every append returns: chunks are coded and checked before any byte is
    written, written whole and flushed, and an append that fails half way (a full disk) is
    cut back to the stream as it was. A crash between appends leaves a readable stream of the
    earlier chunks. ``finish`` makes the stream durable (fsync) and returns its StreamInfo.
    """

    def __init__(self, codec: LatentCodec, model_id: bytes, info: StreamInfo, header: bytes,
                 file: BinaryIO | None = None) -> None:
        """Use :meth:`begin` or :meth:`resume`; ``info`` describes the stream so far."""
        self.codec, self.model_id, self.header, self.file = codec, model_id, header, file
        self._seed = zlib.crc32(header)  # every chunk's CRC-32 starts from the header's
        self._info = info

    @classmethod
    def begin(cls, codec: LatentCodec, model_id: bytes, file: BinaryIO | None = None) -> StreamWriter:
        """Start a stream: its header goes to ``file`` (a new, empty binary file) if given."""
        header = _header(model_id, codec.code_size)
        w = cls(codec, model_id, StreamInfo(VERSION, model_id, codec.code_size, 0, 0, len(header), 0, 0),
                header, file)
        if file is not None and os.fstat(file.fileno()).st_size != 0:
            raise InputError("begin needs an empty file; resume a stream to add to it")
        w._add(header, 0, 0, 0)
        return w

    @classmethod
    def resume(cls, codec: LatentCodec, model_id: bytes, stream: bytes | BinaryIO) -> StreamWriter:
        """Continue ``stream`` (bytes, or a binary file opened for reading and writing).

        StreamError when its header is not this codec's or a chunk it holds is damaged.
        """
        if isinstance(stream, (bytes, bytearray, memoryview)):
            return cls._resume(codec, model_id, stream, None)
        with _mapped(stream.fileno()) as view:
            return cls._resume(codec, model_id, view, stream)

    @classmethod
    def _resume(cls, codec: LatentCodec, model_id: bytes, data, file: BinaryIO | None) -> StreamWriter:
        _, got_id, code_size, hlen = _parse_header(data)
        _check_model(got_id, code_size, codec, model_id)
        info = read_header(data)  # every chunk's framing and CRC-32
        return cls(codec, model_id, info, bytes(data[:hlen]), file)

    @property
    def info(self) -> StreamInfo:
        """The whole stream so far (earlier chunks included)."""
        return self._info

    def append(self, q_or_codes: np.ndarray) -> bytes:
        """Add codes ``(n, D)`` (floats, quantized here) or symbols (ints); -> the bytes added."""
        q = _symbols(self.codec, q_or_codes)
        per = max(1, MAX_CHUNK_SYMBOLS // self.codec.code_size)
        out, payload = bytearray(), 0
        for s in range(0, q.shape[0], per):
            part = q[s : s + per]
            coded = _encode(self.codec, part)
            body = put_varint(part.shape[0]) + put_varint(len(coded)) + coded
            out += body + zlib.crc32(body, self._seed).to_bytes(4, "little")
            payload += len(coded)
        self._add(bytes(out), q.shape[0], -(-q.shape[0] // per), payload)
        return bytes(out)

    def append_chunks(self, data: bytes) -> int:
        """Add whole chunks coded by another writer of this stream; -> their sample count.

        Their framing and CRC-32s are checked first: chunks of another codec or stream fail
        the CRC (it is seeded by the header) and nothing is written.
        """
        samples = chunks = payload = 0
        for n, body in _chunks(data, 0, self._seed, self.codec.code_size):
            samples, chunks, payload = samples + n, chunks + 1, payload + len(body)
        self._add(bytes(data), samples, chunks, payload)
        return samples

    def finish(self) -> StreamInfo:
        """Make what was written durable (fsync: on disk even if power fails); -> the whole stream's info."""
        if self.file is not None:
            os.fsync(self.file.fileno())
        return self._info

    def _add(self, data: bytes, samples: int, chunks: int, payload: int) -> None:
        """Write ``data`` behind the stream, all of it or (cut back) none of it; then count it."""
        if self.file is not None and data:
            end = self._info.size
            fd = self.file.fileno()
            try:
                self.file.flush()  # the file object's own buffer first: the writer owns the file now
                os.lseek(fd, end, os.SEEK_SET)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            except BaseException:
                os.ftruncate(fd, end)  # the stream as it was: earlier chunks intact, no partial chunk
                raise
        i = self._info
        self._info = dataclasses.replace(i, samples=i.samples + samples, chunks=i.chunks + chunks,
                                         payload_bytes=i.payload_bytes + payload, size=i.size + len(data))


# ------------------------------------------------------------------ public
def compress_codes(codec: LatentCodec, model_id: bytes, q_or_codes: np.ndarray) -> bytes:
    """Codes ``(N, D)`` (floats, quantized here) or symbols (ints) -> a whole stream."""
    w = StreamWriter.begin(codec, model_id)
    return w.header + w.append(q_or_codes)


def append_codes(codec: LatentCodec, model_id: bytes, stream: bytes, q_or_codes: np.ndarray) -> bytes:
    """The bytes to append to ``stream`` (at least its header) to add ``q_or_codes``.

    ``stream + append_codes(...)`` is a valid stream; what ``stream`` holds is checked first.
    """
    return StreamWriter.resume(codec, model_id, stream).append(q_or_codes)


def append_file(codec: LatentCodec, model_id: bytes, path: str | os.PathLike, q_or_codes: np.ndarray) -> StreamInfo:
    """Append samples to the stream file at ``path`` (created if missing or empty): all or nothing.

    The existing file is checked first (header, framing, CRCs; :meth:`StreamWriter.resume`)
    so samples are never appended behind a damaged tail where no reader could reach them.
    The new chunks are added to a copy that replaces the file in one rename
    (:func:`edgeae.atomic.atomic_append`): a crash, a full disk or ``kill -9`` leaves the
    stream as it was, with none of the new samples, never some of them. Returns the whole
    stream's :class:`StreamInfo`.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give the stream file to append to (e.g. {path / 'out.eae'})")
    try:
        with atomic_append(path) as (tmp, size), open(tmp, "r+b") as f:
            w = StreamWriter.resume(codec, model_id, f) if size else StreamWriter.begin(codec, model_id, f)
            w.append(q_or_codes)
            return w.finish()
    except OSError as exc:
        raise ConfigError(f"cannot append to {path}: {exc.strerror or exc}; the stream is unchanged") from None


def stream_model_id(data: bytes) -> bytes:
    """The model id in a stream's header (only the header is read; chunks are not checked)."""
    return _parse_header(data)[1]


def read_header(data: bytes) -> StreamInfo:
    """Check a stream's structure and CRCs without a codec; returns its StreamInfo."""
    version, model_id, code_size, hlen = _parse_header(data)
    seed = zlib.crc32(bytes(data[:hlen]))
    samples = chunks = payload = 0
    for n, body in _chunks(data, hlen, seed, code_size):
        samples += n
        chunks += 1
        payload += len(body)
    return StreamInfo(version, model_id, code_size, samples, chunks, hlen, payload, len(data))


def decompress_symbols(codec: LatentCodec, model_id: bytes, data: bytes) -> np.ndarray:
    """A stream -> int32 symbols ``(N, D)``; StreamError on any damage or wrong model."""
    _, got_id, code_size, hlen = _parse_header(data)
    _check_model(got_id, code_size, codec, model_id)
    seed = zlib.crc32(bytes(data[:hlen]))
    # A range coder cannot spend fewer bits on a sample than its likeliest symbols cost:
    # bound the claimed count by the payload size before allocating (2x margin + slack).
    min_bits = codec.min_bits_per_sample() / 2
    parts = []
    for n, payload in _chunks(data, hlen, seed, code_size):
        if n * min_bits > 8 * len(payload) + 128:
            raise StreamError(
                f"a chunk claims {n} samples in {len(payload)} payload bytes, more than the "
                "codec can fit; stream corrupt"
            )
        parts.append(_decode(codec, payload, n))
    if not parts:
        return np.zeros((0, code_size), dtype=np.int32)
    return np.concatenate(parts, axis=0)


def decompress_codes(codec: LatentCodec, model_id: bytes, data: bytes) -> np.ndarray:
    """A stream -> float32 codes ``(N, D)`` at the quantization bin centres."""
    return codec.dequantize(decompress_symbols(codec, model_id, data))


def read_header_file(path: str | os.PathLike) -> StreamInfo:
    """:func:`read_header` of a stream file, memory-mapped (every chunk checked)."""
    with open(path, "rb") as f, _mapped(f.fileno()) as view:
        return read_header(view)


@contextmanager
def _mapped(fd: int) -> Iterator[memoryview]:
    """A read-only memory map of the open file ``fd`` (``b""`` for an empty file, which mmap refuses)."""
    if os.fstat(fd).st_size == 0:
        yield memoryview(b"")
        return
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        try:
            yield view
        finally:
            view.release()
