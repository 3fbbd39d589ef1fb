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
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeae.atomic import atomic_append
from edgeae.errors import ConfigError, InputError, StreamError
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.varint import get_varint, put_varint

__all__ = [
    "MAGIC",
    "VERSION",
    "StreamInfo",
    "compress_codes",
    "decompress_codes",
    "decompress_symbols",
    "append_codes",
    "append_file",
    "read_header",
    "read_header_file",
]

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


def _chunk_bytes(codec: LatentCodec, q: np.ndarray, seed: int) -> bytes:
    per = max(1, MAX_CHUNK_SYMBOLS // codec.code_size)
    out = bytearray()
    for s in range(0, q.shape[0], per):
        part = q[s : s + per]
        payload = _encode(codec, part)
        body = put_varint(part.shape[0]) + put_varint(len(payload)) + payload
        out += body + zlib.crc32(body, seed).to_bytes(4, "little")
    return bytes(out)


# ------------------------------------------------------------------ public
def compress_codes(codec: LatentCodec, model_id: bytes, q_or_codes: np.ndarray) -> bytes:
    """Codes ``(N, D)`` (floats, quantized here) or symbols (ints) -> a whole stream."""
    q = _symbols(codec, q_or_codes)
    header = _header(model_id, codec.code_size)
    return header + _chunk_bytes(codec, q, zlib.crc32(header))


def append_codes(
    codec: LatentCodec, model_id: bytes, stream: bytes, q_or_codes: np.ndarray
) -> bytes:
    """The bytes to append to ``stream`` (at least its header) to add ``q_or_codes``.

    ``stream + append_codes(...)`` is a valid stream; only the header is read.
    """
    _, got_id, code_size, hlen = _parse_header(stream)
    _check_model(got_id, code_size, codec, model_id)
    q = _symbols(codec, q_or_codes)
    return _chunk_bytes(codec, q, zlib.crc32(bytes(stream[:hlen])))


def append_file(
    codec: LatentCodec, model_id: bytes, path: str | os.PathLike, q_or_codes: np.ndarray
) -> StreamInfo:
    """Append samples to the stream file at ``path`` (created if missing or empty): all or nothing.

    The existing file is checked first (header, framing, CRCs) so samples are never
    appended behind a damaged tail where no reader could reach them. The new chunks are
    added to a copy that replaces the file in one rename (:func:`edgeae.atomic.atomic_append`):
    a crash, a full disk or ``kill -9`` leaves the stream as it was, with none of the new
    samples, never some of them. Returns the whole stream's :class:`StreamInfo`.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give the stream file to append to (e.g. {path / 'out.eae'})")
    try:
        with atomic_append(path) as (tmp, size):
            if size == 0:
                data = compress_codes(codec, model_id, q_or_codes)
                tmp.write_bytes(data)
                return read_header(data)
            old = tmp.read_bytes()
            info = read_header(old)  # the one full check of the existing stream
            _check_model(info.model_id, info.code_size, codec, model_id)
            extra = append_codes(codec, model_id, old, q_or_codes)
            with tmp.open("ab") as f:
                f.write(extra)
                f.flush()
                os.fsync(f.fileno())  # on a device that may lose power, the chunk is on disk on return
    except OSError as exc:
        raise ConfigError(f"cannot append to {path}: {exc.strerror or exc}; the stream is unchanged") from None
    new = read_header(old[: info.header_size] + extra)  # header + the new chunks only
    return dataclasses.replace(info, samples=info.samples + new.samples, chunks=info.chunks + new.chunks,
                               payload_bytes=info.payload_bytes + new.payload_bytes, size=info.size + len(extra))


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
    import mmap

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        try:
            return read_header(view)
        finally:
            view.release()
