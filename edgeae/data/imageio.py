"""Image files in and out (numpy + Pillow, no torch): read images, save grids and samples.

Used by the data loaders (PNG/JPEG files and folders, whole or as an
:class:`ImageFolderSource`), by training (``reconstructions.png``:
originals over reconstructions) and by the runtime CLI (one PNG per decoded sample).
Arrays are channels-first ``(N, C, H, W)``, ``uint8`` pixels or floats in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from edgeae.data.source import Dataset, RowSource
from edgeae.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "ImageFolderSource", "check_one_frame", "image_files", "is_image_shape",
           "load_images", "open_image_folder", "read_image", "save_grid", "save_images", "to_uint8"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_GRAY_MODES = ("L", "1", "LA", "I", "F")  # Pillow modes that read_image returns as (H, W)
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_GAP = 128  # grey 1-pixel border between tiles, visible on black and white images


def is_image_shape(shape: tuple[int, ...]) -> bool:
    """True for one sample's shape ``(C, H, W)`` with C in 1, 3, 4 (gray, RGB, RGBA)."""
    shape = tuple(int(v) for v in shape)
    return len(shape) == 3 and shape[0] in _MODES and shape[1] >= 1 and shape[2] >= 1


def to_uint8(x: np.ndarray) -> np.ndarray:
    """uint8 stays as is; floats are taken as [0, 1], clipped, scaled to 0..255 and rounded."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    return np.rint(np.clip(np.nan_to_num(x.astype(np.float32)), 0.0, 1.0) * 255.0).astype(np.uint8)


def check_one_frame(img, path: str | Path) -> None:
    """Refuse an animated PNG or a multi-page TIFF: one file is one sample, never its first frame only."""
    frames = int(getattr(img, "n_frames", 1) or 1)
    if frames > 1:
        raise DataError(f"{path} holds {frames} frames ({img.format} animation or pages); edgeae reads one image "
                        "per file: save each frame as its own PNG file")


def read_image(path: str | Path, resize: tuple[int, int] | None = None) -> np.ndarray:
    """One image file -> ``(H, W)`` uint8 (grayscale) or ``(H, W, 3)`` uint8 (colour).

    Palette and alpha images become RGB (alpha dropped), 16-bit grayscale is scaled to
    8 bits; ``resize=(H, W)`` resizes with a bilinear filter. Images larger than Pillow's
    decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) are refused before decoding,
    and any failure of Pillow's decoders on a broken file becomes a :class:`DataError`.
    """
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # refuse, do not decode
            with Image.open(path) as img:
                check_one_frame(img, path)
                if img.mode.startswith("I;16"):
                    img = Image.fromarray((np.asarray(img, dtype=np.uint32) // 257).astype(np.uint8))
                elif img.mode in ("1", "LA", "I", "F", "La"):
                    img = img.convert("L")
                elif img.mode in ("P", "PA"):
                    img = img.convert("RGBA").convert("RGB")
                elif img.mode != "L":
                    img = img.convert("RGB")  # RGB, RGBA, CMYK, YCbCr, ...
                if resize is not None and img.size != (resize[1], resize[0]):
                    img = img.resize((resize[1], resize[0]), Image.BILINEAR)
                return np.asarray(img, dtype=np.uint8)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{path} is too large to decode safely ({exc}); shrink the image first") from None
    except MemoryError:
        raise DataError(f"{path} is too large to decode in the memory available; shrink the image first") from None
    except Exception as exc:  # Pillow's decoders raise OSError, SyntaxError, ValueError, struct.error, ...
        raise DataError(f"{path} could not be read as an image ({type(exc).__name__}: {exc}); "
                        "remove or replace it") from None


def _check_images(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4 or not is_image_shape(x.shape[1:]):
        raise DataError(
            f"{what} must be images of shape (N, C, H, W) with C in 1, 3, 4, got {x.shape}"
        )
    return to_uint8(x)


def _to_pil(img: np.ndarray):
    """(C, H, W) uint8 -> PIL image."""
    from PIL import Image

    # Pillow picks the mode from the array: (H, W) -> L, (H, W, 3) -> RGB, (H, W, 4) -> RGBA.
    return Image.fromarray(img[0] if img.shape[0] == 1 else np.ascontiguousarray(img.transpose(1, 2, 0)))


def save_grid(rows: list[np.ndarray], path: str | Path, scale: int = 4) -> Path:
    """Save image rows (each ``(N, C, H, W)``) as one PNG grid, row under row.

    E.g. ``[originals, reconstructions]`` puts each reconstruction under its original.
    Rows may differ in N (short rows are left grey) and in C (gray rows are shown as RGB
    next to colour rows); ``scale`` enlarges pixels (nearest neighbour) for viewing.
    """
    if not rows:
        raise DataError("save_grid needs at least one row of images")
    if int(scale) < 1:
        raise DataError(f"grid scale must be a positive integer, got {scale}")
    imgs = [_check_images(r, f"grid row {i}") for i, r in enumerate(rows)]
    h, w = imgs[0].shape[2:]
    if any(r.shape[2:] != (h, w) for r in imgs):
        sizes = ", ".join(f"{r.shape[2]}x{r.shape[3]}" for r in imgs)
        raise DataError(f"grid rows must share one image size (HxW), got {sizes}")
    c = max(r.shape[1] for r in imgs)
    cols = max(max(r.shape[0] for r in imgs), 1)
    grid = np.full((c, len(imgs) * (h + 1) + 1, cols * (w + 1) + 1), _GAP, dtype=np.uint8)
    if c == 4:
        grid[3] = 255  # opaque background
    for i, row in enumerate(imgs):
        if row.shape[1] == 1 and c > 1:
            row = np.repeat(row, 3, axis=1)  # gray -> RGB
        if row.shape[1] == 3 and c == 4:
            row = np.concatenate([row, np.full_like(row[:, :1], 255)], axis=1)  # opaque alpha
        for j, img in enumerate(row):
            top, left = 1 + i * (h + 1), 1 + j * (w + 1)
            grid[:, top : top + h, left : left + w] = img
    s = int(scale)
    grid = np.repeat(np.repeat(grid, s, axis=1), s, axis=2)  # (c, H*s, W*s)
    from edgeae.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # never half a PNG, even with several writers
        _to_pil(grid).save(tmp, format="PNG")
    return path


def save_images(x: np.ndarray, folder: str | Path) -> list[Path]:
    """Write one PNG per sample of ``(N, C, H, W)`` images as ``folder/00000.png`` ...

    Sorted file names keep the sample order, so :func:`edgeae.data.load_dataset` reads the
    folder back into the same array (lossless for uint8).
    """
    imgs = _check_images(x, "images to save")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    digits = max(5, len(str(len(imgs) - 1)))
    paths = []
    for i, img in enumerate(imgs):
        p = folder / f"{i:0{digits}d}.png"
        _to_pil(img).save(p, format="PNG")
        paths.append(p)
    return paths


# --- data sets and row sources ------------------------------------------------------------------


def image_files(folder: Path) -> list[Path]:
    """The images of a folder in sample order (sorted names), other files left out."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _stack(arrays: list[np.ndarray], colour: bool) -> np.ndarray:
    """Decoded images -> (n, C, H, W): any colour image makes every image RGB."""
    if colour:
        arrays = [a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in arrays]
        return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))  # (n, H, W, 3) -> (n, 3, H, W)
    return np.stack(arrays)[:, None]  # (n, 1, H, W)


def load_images(path: Path, resize: tuple[int, int] | None) -> Dataset:
    """One image file or a folder of them, decoded whole, resized while decoding."""
    files = image_files(path) if path.is_dir() else [path]
    arrays = [read_image(f, resize) for f in files]
    first = arrays[0].shape[:2]
    for f, a in zip(files, arrays, strict=True):
        if a.shape[:2] != first:
            raise DataError(
                f"images in {path} have different sizes: {files[0].name} is "
                f"{first[0]}x{first[1]} and {f.name} is {a.shape[0]}x{a.shape[1]} (HxW); "
                f"pass --resize HxW (e.g. --resize {first[0]}x{first[1]}) to resize them all"
            )
    x = _stack(arrays, any(a.ndim == 3 for a in arrays))
    return Dataset(np.ascontiguousarray(x), None, str(path), "images", True)


@dataclass(frozen=True)
class ImageFolderSource(RowSource):
    """The images of a folder, one file per sample, decoded when read."""

    file: str = ""  # the folder
    index: tuple[str, ...] = ()  # file names in sample order
    colour: bool = False  # any colour image makes every image RGB (as load_images does)

    kind: ClassVar[str] = "images"
    _resizes_itself: ClassVar[bool] = True

    def _decode(self, names) -> np.ndarray:
        return _stack([read_image(Path(self.file) / name, self.resize) for name in names], self.colour)

    def _rows(self, start: int, stop: int) -> np.ndarray:
        return self._decode(self.index[start:stop])

    def _take(self, idx: np.ndarray) -> np.ndarray:
        return self._decode([self.index[i] for i in idx])


def open_image_folder(path: Path, resize: tuple[int, int] | None) -> ImageFolderSource:
    """Scan image headers only (mode, size): colour and size checks without decoding pixels."""
    from PIL import Image, UnidentifiedImageError

    files = image_files(path)
    colour, first = False, None
    for f in files:
        try:
            with Image.open(f) as img:
                mode, size = img.mode, img.size
                check_one_frame(img, f)
        except DataError:
            raise
        except Image.DecompressionBombError as exc:
            raise DataError(f"{f} is too large to decode safely ({exc}); shrink the image first") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{f} could not be read as an image ({exc}); remove or replace it") from None
        except Exception as exc:  # Pillow's frame scan raises EOFError, SyntaxError, ... on damaged files
            raise DataError(f"{f} could not be read as an image ({type(exc).__name__}: {exc}); "
                            "remove or replace it") from None
        colour = colour or not (mode in _GRAY_MODES or mode.startswith("I;16"))
        first = first or (f, size)
        if resize is None and size != first[1]:
            raise DataError(f"images in {path} have different sizes: {first[0].name} is {first[1][1]}x{first[1][0]} "
                            f"and {f.name} is {size[1]}x{size[0]} (HxW); pass --resize HxW to resize them all")
    return ImageFolderSource(str(path), len(files), (), "", resize=resize, file=str(path),
                             index=tuple(f.name for f in files), colour=colour)
