"""Classical image codecs as rate-distortion baselines (Pillow + numpy; no torch).

    images (N, H, W) or (N, C, H, W) uint8 -> Pillow encoder -> bytes per image
                                          -> Pillow decoder -> PSNR on the [0, 1] scale

Each image is coded on its own (one file per image, as a device would send it), so the
byte count includes the format's own headers: that is the honest comparison with one
latent stream of many samples only when read as "bytes per image". The latent codec's
numbers come from :mod:`benchmarks.rd`; this module is the reference they are held to.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass

import numpy as np

from edgeae.errors import InputError
from edgeae.runtime.metrics import psnr

__all__ = ["CODECS", "CodecPoint", "encode_image", "measure", "psnr_uint8", "sweep"]

CODECS = ("png", "webp-lossless", "webp", "jpeg")  # names accepted by encode_image / measure
_LOSSY = ("webp", "jpeg")  # codecs that take a quality setting


@dataclass(frozen=True)
class CodecPoint:
    """One (codec, quality) operating point measured on a set of images."""

    codec: str  # one of CODECS
    quality: int | None  # 0..100 for webp / jpeg; None for lossless codecs
    images: int  # number of images coded
    bytes_per_image: float  # mean encoded file size in bytes
    bits_per_pixel: float  # 8 * bytes_per_image / pixels per image
    psnr: float  # dB on the [0, 1] scale, from the mean squared error over all images

    def to_dict(self) -> dict:
        """JSON-safe record (inf PSNR of lossless codecs becomes None)."""
        d = asdict(self)
        if not math.isfinite(d["psnr"]):
            d["psnr"] = None
        return d

    @property
    def label(self) -> str:
        """Short name for tables and plot legends, e.g. ``jpeg q50``."""
        return self.codec if self.quality is None else f"{self.codec} q{self.quality}"


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 arrays, on the [0, 1] scale (peak 255 in pixel units)."""
    if a.shape != b.shape:
        raise InputError(f"PSNR needs equal shapes, got {a.shape} and {b.shape}")
    return psnr(a, b, 255.0)


def _to_hwc(img: np.ndarray) -> np.ndarray:
    """(H, W), (1, H, W) or (3, H, W) uint8 -> (H, W) or (H, W, 3) for Pillow."""
    if img.ndim == 3:
        if img.shape[0] == 1:
            return img[0]
        if img.shape[0] == 3:
            return np.moveaxis(img, 0, -1)
    if img.ndim == 2:
        return img
    raise InputError(
        f"image of shape {img.shape} is not (H, W), (1, H, W) or (3, H, W); "
        "classical codecs take grey or RGB pictures"
    )


def _check(codec: str, quality: int | None) -> None:
    if codec not in CODECS:
        raise InputError(f"unknown codec {codec!r}; choose one of: {', '.join(CODECS)}")
    if codec in _LOSSY:
        if not (isinstance(quality, int) and 0 <= quality <= 100):
            raise InputError(f"{codec} needs an integer quality 0..100, got {quality!r}")
    elif quality is not None:
        raise InputError(f"{codec} is lossless and takes no quality (got {quality!r}); pass None")


def encode_image(img: np.ndarray, codec: str, quality: int | None = None) -> tuple[bytes, np.ndarray]:
    """One uint8 image -> (file bytes, decoded image in the input's shape)."""
    from PIL import Image

    _check(codec, quality)
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise InputError(f"images must be uint8 pixels, got dtype {arr.dtype}; convert with to_uint8")
    pil = Image.fromarray(np.ascontiguousarray(_to_hwc(arr)))
    buf = io.BytesIO()
    if codec == "png":
        pil.save(buf, format="PNG", optimize=True)
    elif codec == "webp-lossless":
        pil.save(buf, format="WEBP", lossless=True, quality=100, method=6)
    elif codec == "webp":
        pil.save(buf, format="WEBP", quality=quality, method=6)
    else:
        pil.save(buf, format="JPEG", quality=quality, optimize=True)
    data = buf.getvalue()
    dec = Image.open(io.BytesIO(data))
    dec = dec.convert("L" if pil.mode == "L" else "RGB")
    out = np.asarray(dec, dtype=np.uint8)
    if arr.ndim == 3:
        out = out[None] if arr.shape[0] == 1 else np.moveaxis(out, -1, 0)
    return data, out.reshape(arr.shape)


def measure(images: np.ndarray, codec: str, quality: int | None = None) -> CodecPoint:
    """Code every image of ``images`` (N, ...) on its own; mean bytes and pooled PSNR."""
    x = np.asarray(images)
    if x.ndim < 3 or x.shape[0] == 0:
        raise InputError(f"images have shape {x.shape}; expected (N, H, W) or (N, C, H, W), N >= 1")
    _check(codec, quality)
    total, decoded = 0, np.empty_like(x)
    for i, img in enumerate(x):
        data, decoded[i] = encode_image(img, codec, quality)
        total += len(data)
    per = total / len(x)
    return CodecPoint(codec, quality, len(x), per, 8.0 * per / x[0].size, psnr_uint8(x, decoded))


def sweep(
    images: np.ndarray,
    webp_qualities: tuple[int, ...] = (0, 5, 10, 20, 30, 50, 70, 90),
    jpeg_qualities: tuple[int, ...] = (5, 10, 20, 30, 50, 70, 90),
) -> list[CodecPoint]:
    """PNG, WebP lossless, and every WebP / JPEG quality given: the baseline curves."""
    points = [measure(images, "png"), measure(images, "webp-lossless")]
    points += [measure(images, "webp", q) for q in webp_qualities]
    points += [measure(images, "jpeg", q) for q in jpeg_qualities]
    return points
