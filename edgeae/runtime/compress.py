"""Samples <-> compressed streams through a loaded model (torch-free).

    x (N, *input_shape) -> model.encode -> codes (N, D) -> codec -> .eae bytes
    .eae bytes -> codec -> codes_hat -> model.decode(raw=True) -> x_hat (raw units)

``model`` is an :class:`edgeae.runtime.model.EdgeModel` (anything with ``.encode``,
``.decode(codes, raw=True)`` and ``.manifest``). The codec tables come from
``manifest["codec"]``: one codec record, or a list of them (one per bit depth).
"""

from __future__ import annotations

import os
import time
import weakref
from typing import Any

import numpy as np

from edgeae.errors import BundleError, ConfigError, StreamError
from edgeae.runtime.bundle import Manifest
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.stream import (
    StreamInfo,
    append_file,
    compress_codes,
    decompress_codes,
    stream_model_id,
)

_HEADER_MAX = 16  # bytes: magic, version, model id and a varint code size (docs/FORMAT.md)

__all__ = ["compress", "decompress", "append", "codecs_of", "pick_codec", "codec_of_stream", "decoder_sha256",
           "compression_report"]

Codecs = list[tuple[LatentCodec, bytes]]  # every (codec, model id) of a bundle, manifest order


def _manifest(manifest: Any) -> Manifest:
    """The runtime :class:`Manifest`, given one or its dict form (validated on the way)."""
    if isinstance(manifest, Manifest):
        return manifest
    if isinstance(manifest, dict):
        return Manifest.from_dict(manifest)
    raise BundleError(f"manifest is {type(manifest).__name__}; expected a manifest record (a dict or Manifest)")


def decoder_sha256(manifest: Manifest | dict[str, Any]) -> str:
    """SHA-256 of the bundle's reference decoder (fp32 ONNX, dynamic batch).

    All precisions of one bundle share this id, so a stream written with an int8 encoder
    decodes with an fp16 decoder of the same bundle.
    """
    ref = _manifest(manifest).find_graph("decoder", "fp32")
    if ref is None:
        raise BundleError(
            "manifest lists no fp32 decoder graph with a sha256; compression needs it to "
            "tag streams (re-export the bundle)"
        )
    return ref.sha256


def codecs_of(manifest: Manifest | dict[str, Any]) -> Codecs:
    """Every (codec, model id) a bundle's manifest (``manifest.json`` as a dict, or a Manifest) offers, in order.

    The tables are validated and the model ids hashed here; a loaded model's are built once
    and kept (:func:`compress` and friends), since that costs far more than coding a sample.
    """
    manifest = _manifest(manifest)
    record = manifest.codec
    if record is None:
        raise BundleError(
            "bundle has no codec tables (manifest 'codec' is null); re-export it with "
            "codec tables to compress"
        )
    records = record if isinstance(record, list) else [record]
    sha = decoder_sha256(manifest)
    out = []
    for rec in records:
        codec = LatentCodec.from_dict(rec)
        if manifest.code_size != codec.code_size:
            raise BundleError(
                f"codec tables cover {codec.code_size} dims but the bundle's code_size is "
                f"{manifest.code_size}; re-export the bundle"
            )
        out.append((codec, codec.model_id(sha)))
    return out


def pick_codec(codecs: Codecs, bits: int | None = None) -> tuple[LatentCodec, bytes]:
    """The codec for ``bits`` (None: the bundle's first, its default); ConfigError naming those it has."""
    if bits is None:
        return codecs[0]
    for codec, mid in codecs:
        if codec.bits == bits:
            return codec, mid
    have = sorted({c.bits for c, _ in codecs})
    raise ConfigError(
        f"bits={bits} has no codec tables in this bundle; available: {have} "
        "(omit bits, or re-export with tables for that bit depth)"
    )


def codec_of_stream(codecs: Codecs, stream_id: bytes, where: str = "stream",
                    bits: int | None = None) -> tuple[LatentCodec, bytes]:
    """The codec whose model id a stream's header names (the one to decode or append with).

    ``bits``, when given, must be that codec's (an append keeps the stream's bit depth).
    StreamError when the stream was written by another bundle, naming both ids.
    """
    for codec, mid in codecs:
        if mid == stream_id:
            if bits is not None and codec.bits != bits:
                raise ConfigError(f"{where} holds {codec.bits}-bit codes; omit --bits or pass --bits {codec.bits}")
            return codec, mid
    have = ", ".join(m.hex() for _, m in codecs)
    raise StreamError(
        f"{where} was written for model id {stream_id.hex()}, not this model ({have}); "
        "use the bundle that wrote it"
    )


_CODECS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its Codecs


def _model_codecs(model: Any) -> Codecs:
    """:func:`codecs_of` a loaded model's manifest, built once per model."""
    try:
        return _CODECS[model]
    except (KeyError, TypeError):
        pass
    out = codecs_of(model.manifest)
    try:
        _CODECS[model] = out
    except TypeError:  # an object that cannot be weakly referenced: no caching
        pass
    return out


def compress(model: Any, x: np.ndarray, bits: int | None = None, batch_size: int | None = None) -> bytes:
    """Raw samples ``(N, *input_shape)`` -> one .eae stream (see docs/FORMAT.md).

    ``batch_size``: samples per encoder call (None: the model's default).
    """
    codec, mid = pick_codec(_model_codecs(model), bits)
    codes = np.asarray(_encode(model, x, batch_size))
    return compress_codes(codec, mid, codes.reshape(-1, codec.code_size))  # one sample: (1, D)


def decompress(model: Any, data: bytes, batch_size: int | None = None) -> np.ndarray:
    """A stream -> raw reconstructions ``(N, *input_shape)``; the codec is found by id.

    ``batch_size``: codes per decoder call (None: the model's default).
    """
    # the header picks the codec; decoding checks the chunks
    codec, mid = codec_of_stream(_model_codecs(model), stream_model_id(data))
    codes = decompress_codes(codec, mid, data)
    if batch_size is None:
        return model.decode(codes, raw=True)
    return model.decode(codes, raw=True, batch_size=batch_size)


def append(
    model: Any, path: str | os.PathLike, x: np.ndarray, bits: int | None = None, batch_size: int | None = None
) -> StreamInfo:
    """Append raw samples to the stream file ``path`` (created if missing); all or nothing.

    The stream keeps its codec (the one its header names). Returns the whole stream's
    :class:`StreamInfo` (``.samples``: every sample it now holds).
    """
    codecs = _model_codecs(model)
    if os.path.isdir(path):
        raise ConfigError(f"{path} is a folder; give the stream file to append to (e.g. {os.path.join(path, 'out.eae')})")
    codec, mid = pick_codec(codecs, bits)
    if os.path.exists(path) and os.path.getsize(path) > 0:
        try:
            with open(path, "rb") as f:
                head = f.read(_HEADER_MAX)
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        codec, mid = codec_of_stream(codecs, stream_model_id(head), str(path), bits)
    codes = np.asarray(_encode(model, x, batch_size)).reshape(-1, codec.code_size)  # one sample: (1, D)
    return append_file(codec, mid, path, codes)


def _encode(model: Any, x: np.ndarray, batch_size: int | None) -> np.ndarray:
    """``model.encode``, chunked by ``batch_size`` when one is given (any model-like object otherwise)."""
    return model.encode(x) if batch_size is None else model.encode(x, batch_size=batch_size)


def compression_report(model: Any, x: np.ndarray, data: bytes, seconds: float,
                       batch_size: int | None = None) -> dict[str, Any]:
    """Measured rate and quality of a stream that holds the samples ``x`` (raw units).

    Decodes the stream again, so the PSNR is what a receiver gets, quantization included.
    """
    from edgeae.runtime.metrics import is_bounded, mse, psnr

    t0 = time.perf_counter()
    x_hat = decompress(model, data, batch_size)
    decode_s = time.perf_counter() - t0
    n = len(x_hat)
    raw_bytes = int(np.asarray(x).nbytes)
    target = model.to_model_units(x)
    recon = model.to_model_units(x_hat)
    err = mse(target, recon) if n else 0.0
    report = {
        "samples": n,
        "bytes": len(data),
        "bytes_per_sample": len(data) / max(n, 1),
        "raw_bytes": raw_bytes,
        "ratio": raw_bytes / max(len(data), 1),
        "mse": err,
        "compress_samples_per_s": n / seconds if seconds > 0 else float("inf"),
        "decompress_samples_per_s": n / decode_s if decode_s > 0 else float("inf"),
    }
    if is_bounded(_manifest(model.manifest).normalization["mode"]):
        report["psnr"] = psnr(target, recon)
    return report
