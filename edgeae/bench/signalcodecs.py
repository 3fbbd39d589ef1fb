"""Classical compressors for sensor windows, for rate-distortion against ``.eae`` streams.

Each codec codes ONE window ``(C, T)`` float32 alone into bytes that hold everything a
receiver needs besides the window's shape (which it knows, as it knows the model of a
``.eae`` stream): the codec's own header or frame is counted, nothing is left out.

    window -> encode(window, bound) -> bytes -> decode(bytes, shape) -> window'

- ``sz3``: SZ3 (PyPI ``pysz``), absolute error-bounded mode: every value within ``bound``.
- ``zfp``: ZFP (PyPI ``zfpy``), fixed-accuracy mode with tolerance ``bound`` (a target, which
  ZFP may overshoot on some values).
- ``zstd16``: uniform quantization with step ``2 * bound`` (every value within ``bound``),
  differences along time per channel as 16-bit integers (32-bit where they do not fit),
  zstd level 19. A byte of flags and the float32 step precede the zstd frame.
- ``dct``: orthonormal DCT-II per channel, coefficients uniformly quantized with step
  ``bound`` (no per-value bound: the error spreads over the window), then as ``zstd16``.

SZ3, ZFP and zstd are imported when first used; a codec whose package is missing is
reported by :func:`missing_codecs` instead of failing the others.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeae.errors import ConfigError

__all__ = ["SIGNAL_CODECS", "SignalCodec", "get_codec", "missing_codecs", "window_metrics", "measure_codec"]

SIGNAL_CODECS = ("sz3", "zfp", "zstd16", "dct")
_PACKAGES = {"sz3": "pysz", "zfp": "zfpy", "zstd16": "zstandard", "dct": "zstandard"}
_ZSTD_LEVEL = 19  # the strongest regular level: these baselines are timed by nobody
_HEAD = struct.Struct("<Bf")  # flags (bit 0: 32-bit integers), float32 quantization step


@dataclass(frozen=True)
class SignalCodec:
    """One compressor: ``encode(window, bound) -> bytes``, ``decode(bytes, shape) -> window``."""

    name: str
    encode: Callable[[np.ndarray, float], bytes]
    decode: Callable[[bytes, tuple[int, ...]], np.ndarray]
    bounded: bool  # True: every value is within ``bound`` by construction


def _sz3_encode(window: np.ndarray, bound: float) -> bytes:
    from pysz import sz, szConfig, szErrorBoundMode

    cfg = szConfig()
    cfg.errorBoundMode = szErrorBoundMode.ABS
    cfg.absErrorBound = float(bound)
    blob, _ = sz.compress(np.ascontiguousarray(window, dtype=np.float32), cfg)
    return bytes(blob)


def _sz3_decode(blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
    from pysz import sz

    out, _ = sz.decompress(np.frombuffer(blob, dtype=np.uint8).copy(), np.float32, tuple(shape))
    return np.asarray(out, dtype=np.float32).reshape(shape)


def _zfp_encode(window: np.ndarray, bound: float) -> bytes:
    import zfpy

    return bytes(zfpy.compress_numpy(np.ascontiguousarray(window, dtype=np.float32), tolerance=float(bound)))


def _zfp_decode(blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
    import zfpy

    return np.asarray(zfpy.decompress_numpy(blob), dtype=np.float32).reshape(shape)


def _pack_ints(q: np.ndarray, step: float) -> bytes:
    """Integers (C, T) -> flags + step + zstd frame (no content size, no checksum: the receiver
    knows the window's shape, and a frame's integrity is the container's business)."""
    import zstandard

    wide = bool(q.min() < -32768 or q.max() > 32767)
    body = q.astype("<i4" if wide else "<i2").tobytes()
    frame = zstandard.ZstdCompressor(level=_ZSTD_LEVEL, write_content_size=False, write_checksum=False,
                                     write_dict_id=False).compress(body)
    return _HEAD.pack(int(wide), step) + frame


def _unpack_ints(blob: bytes, shape: tuple[int, ...]) -> tuple[np.ndarray, float]:
    import zstandard

    flags, step = _HEAD.unpack_from(blob)
    width = 4 if flags & 1 else 2
    body = zstandard.ZstdDecompressor().decompress(blob[_HEAD.size:], max_output_size=math.prod(shape) * width)
    return np.frombuffer(body, dtype="<i4" if width == 4 else "<i2").astype(np.int64).reshape(shape), step


def _step(bound: float) -> float:
    """A float32 step (what the header stores, so both sides use the same value)."""
    return float(np.float32(bound))


def _zstd16_encode(window: np.ndarray, bound: float) -> bytes:
    step = _step(2.0 * bound)
    q = np.rint(np.asarray(window, dtype=np.float64) / step).astype(np.int64)  # (C, T)
    deltas = np.diff(q, axis=-1, prepend=0)  # first value absolute, then steps along time
    return _pack_ints(deltas, step)


def _zstd16_decode(blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
    deltas, step = _unpack_ints(blob, shape)
    return (np.cumsum(deltas, axis=-1) * step).astype(np.float32)


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix ``(n, n)``: ``coeffs = x @ D.T``, ``x = coeffs @ D``."""
    k = np.arange(n)[:, None]
    d = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d


def _dct_encode(window: np.ndarray, bound: float) -> bytes:
    step = _step(bound)
    w = np.asarray(window, dtype=np.float64)
    coeffs = w @ _dct_matrix(w.shape[-1]).T  # (C, T) per channel
    return _pack_ints(np.rint(coeffs / step).astype(np.int64), step)


def _dct_decode(blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
    q, step = _unpack_ints(blob, shape)
    return ((q * step) @ _dct_matrix(shape[-1])).astype(np.float32)


_CODECS = {
    "sz3": SignalCodec("sz3", _sz3_encode, _sz3_decode, True),
    "zfp": SignalCodec("zfp", _zfp_encode, _zfp_decode, False),
    "zstd16": SignalCodec("zstd16", _zstd16_encode, _zstd16_decode, True),
    "dct": SignalCodec("dct", _dct_encode, _dct_decode, False),
}


def get_codec(name: str) -> SignalCodec:
    """The codec called ``name`` (one of :data:`SIGNAL_CODECS`)."""
    if name not in _CODECS:
        raise ConfigError(f"unknown signal codec {name!r}; choose one of: {', '.join(SIGNAL_CODECS)}")
    return _CODECS[name]


def missing_codecs() -> dict[str, str]:
    """Codecs whose package is not installed -> why (``pip install 'edgeae[dev]'``)."""
    import importlib.util

    return {name: f"{pkg} is not installed (pip install {pkg}, or edgeae[dev])"
            for name, pkg in _PACKAGES.items() if importlib.util.find_spec(pkg) is None}


def window_metrics(x: np.ndarray, x_hat: np.ndarray, sizes: list[int] | np.ndarray, data_range: float,
                   std: float) -> dict[str, float]:
    """Rate and distortion of windows ``(N, C, T)`` coded into ``sizes`` bytes each.

    RMSE over every value (also in units of ``std``, the data's standard deviation), PSNR
    over ``data_range`` (max - min of the data), the largest absolute error.
    """
    x64, y64 = np.asarray(x, dtype=np.float64), np.asarray(x_hat, dtype=np.float64)
    if x64.shape != y64.shape:
        raise ConfigError(f"reconstructions of shape {y64.shape} for windows of shape {x64.shape}")
    err = y64 - x64
    rmse = float(np.sqrt(np.mean(err**2)))
    sizes = np.asarray(sizes, dtype=np.float64)
    return {
        "windows": int(len(x64)),
        "bytes_per_window": float(sizes.mean()),
        "raw_bytes_per_window": int(math.prod(x64.shape[1:]) * 4),
        "rmse": rmse,
        "rmse_std": rmse / std,
        "psnr": 20 * math.log10(data_range / rmse) if rmse > 0 else float("inf"),
        "max_error": float(np.max(np.abs(err))),
    }


def measure_codec(name: str, windows: np.ndarray, bound: float, data_range: float, std: float) -> dict[str, Any]:
    """Code each window alone at ``bound``, decode it again, and measure (:func:`window_metrics`)."""
    codec = get_codec(name)
    x = np.ascontiguousarray(windows, dtype=np.float32)
    sizes, recon = [], np.empty_like(x)
    for i, w in enumerate(x):
        blob = codec.encode(w, bound)
        sizes.append(len(blob))
        recon[i] = codec.decode(blob, w.shape)
    row = window_metrics(x, recon, sizes, data_range, std)
    row.update(codec=name, bound=float(bound), bound_std=float(bound) / std, bounded=codec.bounded)
    return row
