"""Row sources: the samples of a data set, read a block of rows at a time (numpy only).

    file -> RowSource (shape, dtype) -> read(start, count) -> stored rows -> samples (N, *sample_shape)

Every format module (:mod:`~edgeae.data.idxfile`, :mod:`~edgeae.data.npyfile`,
:mod:`~edgeae.data.csvfile`, :mod:`~edgeae.data.imageio`) gives a :class:`RowSource`
subclass that knows where its rows are: a ``.npy`` or raw IDX file is memory-mapped, a
gzipped IDX file is read forwards, a CSV file is indexed once, an image folder is a
sorted file list. :class:`ArraySource` holds samples already in memory (the built-in
digits, ``.npz``, one image). The conversions shared by all of them live here once: the
numeric / shape check of raw samples, the finite-value check, resizing, and arranging rows
into a model's sample shape, so a block reads exactly like the same rows of the whole file.

A source holds a path and a few numbers, so it pickles cheaply: a Dask worker reads its
own block instead of receiving it from the client. Sample shapes of any rank pass through
unchanged unless the format itself says they are images.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from edgeae.errors import DataError, InputError

__all__ = ["Dataset", "RowSource", "ArraySource", "arrange", "iter_blocks", "check_finite", "as_samples", "check_samples",
           "resize_array", "shape_mismatch"]


@dataclass
class Dataset:
    """Raw samples as read from a source, before normalization."""

    x: np.ndarray  # (N, *sample_shape): uint8 for 8-bit images, float32 otherwise
    labels: np.ndarray | None  # (N,) int64 class labels when the source has them
    source: str  # what the user passed (path or "digits")
    format: str  # digits | idx | npy | npz | images | csv
    is_image: bool  # samples are (C, H, W) images
    columns: list[str] | None = None  # CSV header names, when the file has a header

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.x.shape[1:])

    def __len__(self) -> int:
        return int(self.x.shape[0])


def check_finite(x: np.ndarray, where: object, first_row: int | None = 0) -> None:
    """Refuse NaN or infinite values in float samples (integers are always finite).

    The one rule for every reader: ``first_row`` is the file row of ``x[0]``, so a block
    names the same sample the whole file would (``None``: rows picked out of order, no
    sample named).
    """
    if x.dtype.kind != "f":
        return
    bad = ~np.isfinite(x.reshape(len(x), -1) if x.ndim > 1 else x.reshape(-1, 1))
    if bad.any():
        at = "" if first_row is None else (
            f" (the first in sample {int(np.flatnonzero(bad.any(axis=1))[0]) + first_row + 1})")
        raise DataError(f"{where} contains NaN or infinite values{at}; clean or drop them first")


def shape_mismatch(path: str | Path, got: tuple[int, ...], want: tuple[int, ...]) -> DataError:
    """The one error for samples of another shape than the model's (whole-file and block readers)."""
    if len(want) == 3 and len(got) in (2, 3):
        fix = "pass --resize HxW to resize images"
    elif len(want) == 2 and len(got) <= 1:  # a signal model given the time steps of a recording
        fix = (f"give (N, {want[0]}, {want[1]}) windows, or cut a (T, {want[0]}) recording into the model's "
               f"windows with --window {want[1]} (and --hop STEPS)")
    elif len(want) == 2 and len(got) == 2 and got[0] == want[0] and got[1] > want[1]:  # longer cases
        fix = f"cut each case into the model's windows with --window {want[1]} (and --hop STEPS)"
    else:
        fix = "give data with the shape the model was trained on"
    return DataError(f"{path} holds samples of shape {got}, but the model expects {want}; {fix}")


def check_samples(shape: tuple[int, ...], dtype: np.dtype, path: object) -> None:
    """The checks of :func:`as_samples` on a shape and dtype alone (a header: nothing read)."""
    if np.dtype(dtype).kind not in "biuf":
        raise DataError(f"{path} holds {dtype} values; give a numeric array (integers or floats)")
    if len(shape) < 2 or shape[0] == 0:
        raise DataError(
            f"{path} holds an array of shape {tuple(shape)}; give samples as (N, D) vectors or "
            "(N, H, W) / (N, C, H, W) / (N, H, W, C) images with N >= 1"
        )
    if len(shape) == 4 and shape[1] not in (1, 3, 4) and shape[3] not in (1, 3):
        raise DataError(
            f"{path} holds images of shape {tuple(shape[1:])}; give (C, H, W) with C in 1, 3, 4 "
            "or (H, W, C) with C in 1, 3"
        )
    if len(shape) > 4:
        raise DataError(f"{path} holds an array of shape {tuple(shape)}; at most 4 dimensions (N, C, H, W)")


def as_samples(arr: np.ndarray, path: object, first_row: int | None = 0) -> np.ndarray:
    """Map a training array ``(N, ...)`` to raw samples: vectors (N, D) or channels-first images.

    8-bit data stays ``uint8`` (the exact pixels travel to the runtime); the rest becomes
    ``float32``, checked finite.
    """
    check_samples(arr.shape, arr.dtype, path)
    if arr.ndim == 3:
        arr = arr[:, None]  # (N, H, W) -> (N, 1, H, W)
    elif arr.ndim == 4 and arr.shape[1] not in (1, 3, 4):
        arr = arr.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    x = np.ascontiguousarray(arr, dtype=np.uint8 if arr.dtype == np.uint8 else np.float32)
    check_finite(x, path, first_row)
    return x


def resize_array(x: np.ndarray, size: tuple[int, int], is_image: bool, name: str) -> np.ndarray:
    """Resize images (N, C, H, W) to (N, C, *size) with Pillow's bilinear filter."""
    if not is_image:
        raise DataError(f"--resize applies to images only; {name} holds vectors of shape {x.shape[1:]}")
    if tuple(x.shape[2:]) == tuple(size):
        return x
    from PIL import Image

    out = np.empty((*x.shape[:2], *size), dtype=x.dtype)  # (N, C, H', W')
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            img = Image.fromarray(x[i, c])  # mode L for uint8, F for float32
            out[i, c] = np.asarray(img.resize((size[1], size[0]), Image.BILINEAR))
    return out


def arrange(x: np.ndarray, want: tuple[int, ...], where: object) -> np.ndarray:
    """Samples ``x`` in the model's layout ``want`` (the runtime's input contract, docs/INPUT.md)."""
    if not want or tuple(x.shape[1:]) == tuple(want):
        return x
    from edgeae.runtime.contract import SampleContract

    try:  # channel-last, flat, one sample, ...: every layout the contract accepts
        return SampleContract(tuple(want), "standardize", "float32").arrange(x, str(where))[0]
    except InputError:
        raise shape_mismatch(where, tuple(x.shape[1:]) if x.ndim > 1 else tuple(x.shape), tuple(want)) from None


@dataclass(frozen=True)
class RowSource:
    """Samples ``(n, *sample_shape)`` of ``dtype``, readable by row ranges.

    Subclasses say where stored rows are (:meth:`_rows`, :meth:`_take`) and how stored rows
    become samples (:meth:`_convert`); delivery (resize, the model's layout) is shared.
    """

    path: str  # the file (or folder) as given
    n: int  # number of samples
    sample_shape: tuple[int, ...]  # shape of one delivered sample
    dtype: str  # delivered dtype
    want: tuple[int, ...] = ()  # the model's sample shape (empty: deliver as stored)
    resize: tuple[int, int] | None = None  # images: (H, W) applied while reading
    samples: bool = False  # deliver training samples (uint8 or float32, channels first)

    kind: ClassVar[str] = ""  # npy | idx | idx-gz | csv | images | memory
    _resizes_itself: ClassVar[bool] = False  # images are resized while decoded

    def __len__(self) -> int:
        return self.n

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n, *sample_shape)``: the whole data set's shape."""
        return (self.n, *self.sample_shape)

    def read(self, start: int, count: int) -> np.ndarray:
        """``count`` samples from row ``start`` (fewer at the end), as the whole file reads them."""
        start, stop = max(0, start), min(self.n, start + count)
        if stop <= start:
            return np.empty((0, *self.sample_shape), dtype=self.dtype)
        return self._finish(self._rows(start, stop), start)

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Rows at ``indices`` (sorted ascending reads best): only those rows are read."""
        idx = np.asarray(indices, dtype=np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"row index out of range 0..{self.n - 1}")
        if not len(idx):
            return self.read(0, 0)
        return self._finish(self._take(idx), None)

    def blocks(self, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, block)`` of at most ``rows`` samples, in order, with constant memory."""
        for start in range(0, self.n, rows):
            yield start, self.read(start, rows)

    # --- what a format says ----------------------------------------------------------
    def _rows(self, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def _take(self, idx: np.ndarray) -> np.ndarray:
        """Stored rows at sorted ``idx``: contiguous runs read with :meth:`_rows`."""
        cuts = np.flatnonzero(np.diff(idx) != 1) + 1
        return np.concatenate([self._rows(int(r[0]), int(r[-1]) + 1) for r in np.split(idx, cuts)])

    def _convert(self, raw: np.ndarray, first_row: int | None) -> np.ndarray:
        """Stored rows -> samples (the default: as stored)."""
        return raw

    def _finish(self, raw: np.ndarray, first_row: int | None) -> np.ndarray:
        """Stored rows -> delivered samples: the whole-file conversions, block by block."""
        x = self._convert(np.asarray(raw), first_row)
        if self.resize is not None and not self._resizes_itself:
            x = resize_array(x, self.resize, x.ndim == 4, self.path)
        return arrange(x, self.want, self.path)


@dataclass(frozen=True)
class ArraySource(RowSource):
    """Samples already in memory (built-in digits, ``.npz``, one image, a caller's array)."""

    array: np.ndarray | None = field(default=None, repr=False)  # (n, *sample_shape)

    kind: ClassVar[str] = "memory"

    @classmethod
    def of(cls, array: np.ndarray, path: str = "(array)", want: tuple[int, ...] = ()) -> ArraySource:
        """A source over ``array`` ``(N, *sample_shape)``, delivered as it is."""
        return cls(str(path), len(array), tuple(int(v) for v in array.shape[1:]), array.dtype.name, want,
                   array=array)

    def read(self, start: int, count: int) -> np.ndarray:
        start, stop = max(0, start), min(self.n, start + count)
        return self.array[start:max(start, stop)]

    def take(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"row index out of range 0..{self.n - 1}")
        return self.array[idx]


def iter_blocks(source: RowSource, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, block)`` of at most ``rows`` samples of ``source``, in order."""
    return source.blocks(rows)
