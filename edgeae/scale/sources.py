"""Row sources: read the samples of a data file a block of rows at a time.

``load_array_input`` reads a whole file into memory. A :class:`RowSource` instead knows
where the samples are (a ``.npy`` or raw IDX file is memory-mapped, a gzipped IDX file is
read forwards, a CSV file is indexed once, an image folder is a sorted file list) and
returns rows ``[start, stop)`` as exactly the array ``load_array_input`` would have
returned for them: same dtype (uint8 images stay uint8, the rest float32), same layout,
same resize. It holds a path and a few numbers, so it pickles cheaply: a Dask worker reads
its own block instead of receiving it from the client.

Small or unindexable inputs (``.npz``, ``digits``, one image file) are read whole once and
kept in the source.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgeae.csvfile import decode_line, is_blank, is_header, parse_rows, split_cells
from edgeae.data import (
    IMAGE_SUFFIXES,
    _as_samples,
    _detect_format,
    _resize_array,
    load_array_input,
    shape_mismatch,
)
from edgeae.errors import DataError, InputError
from edgeae.idxfile import (
    READ_ERRORS,
    IdxLayout,
    check_gz_length,
    idx_images_file,
    idx_layout,
    idx_read_error,
    read_idx_rows,
)
from edgeae.npyfile import read_npy

__all__ = ["RowSource", "open_source", "open_training_source", "iter_blocks", "streaming_normalization",
           "scan_statistics"]

_CSV_STRIDE = 1024  # rows between two remembered byte offsets of a CSV file
_GRAY_MODES = ("L", "1", "LA", "I", "F")  # Pillow modes that read_image returns as (H, W)


@dataclass(frozen=True)
class RowSource:
    """Samples ``(n, *sample_shape)`` of ``dtype`` in a file, readable by row ranges."""

    path: str  # the file (or folder) as given
    kind: str  # npy | idx | idx-gz | csv | images | memory
    n: int  # number of samples
    sample_shape: tuple[int, ...]  # shape of one delivered sample (the model's)
    dtype: str  # delivered dtype: as stored for .npy, else uint8 (8-bit images) or float32
    want: tuple[int, ...] = ()  # the model's sample shape (vectors <-> images reshape)
    resize: tuple[int, int] | None = None  # images: (H, W) applied while reading
    file: str = ""  # the file holding the samples (an IDX folder's images file)
    offset: int = 0  # idx: byte offset of the first sample
    file_dtype: str = ""  # idx: stored dtype
    file_shape: tuple[int, ...] = ()  # idx: stored shape of one sample
    index: tuple = ()  # csv: byte offset of every _CSV_STRIDE-th data row; images: file names
    colour: bool = False  # images: any colour image makes every image RGB (as load_dataset does)
    columns: tuple[str, ...] | None = None  # csv: the header's names (named in errors), None without one
    array: np.ndarray | None = field(default=None, repr=False)  # memory: the samples
    samples: bool = False  # npy: deliver load_dataset's samples (uint8 or float32, channels first)

    def __len__(self) -> int:
        return self.n

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as ``load_array_input`` would return them."""
        start, stop = max(0, start), min(self.n, stop)
        if stop <= start:
            return np.empty((0, *self.sample_shape), dtype=self.dtype)
        if self.kind == "memory":
            return self.array[start:stop]
        if self.kind == "npy":
            raw = read_npy(self.file, mmap=True)[start:stop]
        elif self.kind == "idx":
            raw = np.memmap(self.file, dtype=self.file_dtype, mode="r", offset=self.offset,
                            shape=(self.n, *self.file_shape))[start:stop]
        elif self.kind == "idx-gz":
            layout = self._layout()
            try:
                with gzip.open(self.file, "rb") as f:
                    f.seek(self.offset + start * layout.row_bytes)
                    raw = read_idx_rows(f, layout, stop - start, start)
            except READ_ERRORS as exc:
                raise idx_read_error(self.file, exc) from None
        elif self.kind == "csv":
            return self._finish(self._csv_rows(start, stop))
        else:
            return self._finish(self._images(self.index[start:stop]))
        return self._finish(np.asarray(raw))

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Rows at ``indices`` (sorted ascending reads best): only those rows are read.

        A memory map is opened for the call and dropped after it, so pages read for one
        batch do not stay mapped (and counted in the resident set) for the whole run.
        """
        idx = np.asarray(indices, dtype=np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"row index out of range 0..{self.n - 1}")
        if self.kind == "memory":
            return self.array[idx]
        if self.kind == "npy":
            raw = read_npy(self.file, mmap=True)[idx]
        elif self.kind == "idx":
            raw = np.memmap(self.file, dtype=self.file_dtype, mode="r", offset=self.offset,
                            shape=(self.n, *self.file_shape))[idx]
        elif self.kind == "images":
            return self._finish(self._images(tuple(self.index[i] for i in idx)))
        else:  # csv, idx-gz: contiguous runs of the (sorted) indices
            if not len(idx):
                return self.read(0, 0)
            cuts = np.flatnonzero(np.diff(idx) != 1) + 1
            runs = [self.read(int(r[0]), int(r[-1]) + 1) for r in np.split(idx, cuts)]
            return np.concatenate(runs)  # runs follow idx's order
        return self._finish(np.asarray(raw))

    # --- helpers ---------------------------------------------------------------------
    def _finish(self, raw: np.ndarray) -> np.ndarray:
        """Stored rows -> delivered samples: load_array_input's conversions, block by block."""
        x = raw  # a .npy keeps its stored dtype (the model's input contract casts it)
        if self.kind in ("idx", "idx-gz") or (self.kind == "npy" and (self.resize is not None or self.samples)):
            x = _as_samples(raw, self.path)
        if self.resize is not None and self.kind != "images":
            x = _resize_array(x, self.resize, x.ndim == 4, self.path)
        if not self.want or tuple(x.shape[1:]) == self.want:
            return x
        from edgeae.runtime.contract import SampleContract

        try:  # the input contract's layouts (channel-last, flat, ...), as load_array_input
            return SampleContract(self.want, "standardize", "float32").arrange(x, self.path)[0]
        except InputError:
            raise shape_mismatch(self.path, tuple(x.shape[1:]), self.want) from None

    def _layout(self) -> IdxLayout:
        return IdxLayout(Path(self.file), (self.n, *self.file_shape), np.dtype(self.file_dtype), self.offset,
                         self.kind == "idx-gz")

    def _csv_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)``: the index holds (byte offset, line number) of every stride-th row."""
        base = start - start % _CSV_STRIDE
        offset, line_no = self.index[base // _CSV_STRIDE]
        rows: list[tuple[int, list[str]]] = []
        with open(self.file, "rb") as f:
            f.seek(offset)
            row = base
            while row < stop:
                raw = f.readline()
                if not raw:
                    break
                cells = split_cells(decode_line(raw.rstrip(b"\n"), self.file, line_no), self.file, line_no)
                line_no += 1
                if is_blank(cells):
                    continue  # blank rows are skipped, as load_dataset does
                if row >= start:
                    rows.append((line_no - 1, cells))
                row += 1
        width = self.file_shape[0]
        try:
            values = np.loadtxt([",".join(c) for _, c in rows], delimiter=",", dtype=np.float32, ndmin=2,
                                comments=None)
            fast = values.shape == (len(rows), width)
        except ValueError:
            fast = False
        if not fast:  # names the line and column at fault, as load_dataset does
            values = parse_rows(self.file, rows, width, None if self.columns is None else list(self.columns))
        _check_finite(values, self.file)
        return values

    def _images(self, names: tuple) -> np.ndarray:
        from edgeae.imageio import read_image

        arrays = [read_image(Path(self.file) / name, self.resize) for name in names]
        if self.colour:
            arrays = [a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in arrays]
            return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))  # (n, 3, H, W)
        return np.stack(arrays)[:, None]  # (n, 1, H, W)


def _check_finite(x: np.ndarray, where: str) -> None:
    if not np.isfinite(x).all():
        raise DataError(f"{where} contains NaN or infinite values; clean or drop them first")


def open_source(path: str | Path, sample_shape: tuple[int, ...] = (),
                resize: tuple[int, int] | None = None) -> RowSource:
    """A :class:`RowSource` for ``path``; ``sample_shape`` is the model's (empty: as stored)."""
    p = Path(path)
    want = tuple(int(v) for v in sample_shape)
    if str(path) != "digits" and not p.exists():
        raise DataError(f"{path} not found: give a .npy/.npz, IDX, image folder or CSV file")
    fmt = "memory" if str(path) == "digits" else _detect_format(p)
    if fmt == "npy" and want and _one_sample(p, want):
        fmt = "memory"
    if fmt == "npy":
        src = _npy_source(p)
    elif fmt == "idx":
        src = _idx_source(p)
    elif fmt == "csv":
        src = _csv_source(p)
    elif fmt == "images" and p.is_dir():
        src = _image_source(p, resize)
    else:  # npz, digits, one image: small; read whole
        x = load_array_input(path, want, resize) if want else _whole(path, resize)
        return RowSource(str(path), "memory", len(x), tuple(x.shape[1:]), x.dtype.name, want, array=x)
    src = replace(src, path=str(path), want=want, resize=resize)
    first = src.read(0, 1)  # checks dtype, shape and conversions on one row before any work
    return replace(src, sample_shape=tuple(first.shape[1:]), dtype=first.dtype.name)


def _one_sample(p: Path, want: tuple[int, ...]) -> bool:
    """A .npy holding one sample in any layout of the input contract: read it whole."""
    from edgeae.runtime.contract import SampleContract

    mm = read_npy(p, mmap=True)  # the header checked: a bad file is refused here as everywhere
    try:
        return mm.ndim < 2 or SampleContract(want, "standardize", "float32").arrange(mm)[1]  # views: no data read
    except (InputError, ValueError):
        return True  # let load_array_input report it


def _whole(path: str | Path, resize: tuple[int, int] | None) -> np.ndarray:
    from edgeae.data import load_dataset

    return load_dataset(path, resize).x


def _npy_source(p: Path) -> RowSource:
    mm = read_npy(p, mmap=True)
    if mm.ndim >= 2 and mm.shape[0] == 0:
        raise DataError(f"{p} holds no samples (shape {mm.shape}); give at least one")  # as load_array_input
    if mm.ndim < 2:
        raise DataError(f"{p} holds an array of shape {mm.shape}; give samples as (N, ...) with N >= 1 "
                        "(one sample: use load_array_input)")
    return RowSource(str(p), "npy", int(mm.shape[0]), (), "", file=str(p))


def _idx_source(p: Path) -> RowSource:
    """An IDX images file (or the one in a folder), checked by the same rules as load_dataset."""
    layout = idx_layout(idx_images_file(p))
    if len(layout.dims) < 2:
        raise DataError(f"{layout.path} holds a 1-D array (labels?); give the images file")
    if layout.gz:  # a cut or overlong file is refused before any sample is read, as load_dataset does
        check_gz_length(layout)
    return RowSource(str(layout.path), "idx-gz" if layout.gz else "idx", layout.dims[0], (), "",
                     file=str(layout.path), offset=layout.offset, file_dtype=layout.dtype.str,
                     file_shape=layout.dims[1:])


def _csv_source(p: Path) -> RowSource:
    """Index a CSV file in one pass: its header, width, row count and row offsets (edgeae.csvfile's rules)."""
    index, n, width, pos, seen, columns = [], 0, 0, 0, False, None
    with open(p, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            start, pos = pos, pos + len(raw)
            cells = split_cells(decode_line(raw.rstrip(b"\n"), p, line_no), p, line_no)
            if is_blank(cells):
                continue  # blank rows are skipped, as load_dataset does
            if not seen:
                seen = True
                if is_header(cells):
                    width, columns = len(cells), tuple(c.strip() for c in cells)
                    continue
            if n % _CSV_STRIDE == 0:
                index.append((start, line_no))
            width = width or len(cells)
            n += 1
    if n == 0:
        raise DataError(f"{p} has no data rows; give one sample per line of comma-separated numbers")
    return RowSource(str(p), "csv", n, (), "", file=str(p), file_shape=(width,), index=tuple(index),
                     columns=columns)


def _image_source(p: Path, resize: tuple[int, int] | None) -> RowSource:
    """Scan image headers only (mode, size): colour and size checks without decoding pixels."""
    from PIL import Image, UnidentifiedImageError

    from edgeae.imageio import check_one_frame

    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
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
            raise DataError(f"images in {p} have different sizes: {first[0].name} is {first[1][1]}x{first[1][0]} "
                            f"and {f.name} is {size[1]}x{size[0]} (HxW); pass --resize HxW to resize them all")
    return RowSource(str(p), "images", len(files), (), "", file=str(p), index=tuple(f.name for f in files),
                     colour=colour)


def iter_blocks(source: RowSource, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, block)`` of at most ``rows`` samples, in order, with constant memory.

    A gzipped IDX file is read forwards through one open file instead of re-seeking.
    """
    if source.kind == "idx-gz":
        layout = source._layout()
        try:
            with gzip.open(source.file, "rb") as f:
                f.seek(source.offset)
                for start in range(0, source.n, rows):
                    count = min(rows, source.n - start)
                    yield start, source._finish(read_idx_rows(f, layout, count, start))
        except READ_ERRORS as exc:
            raise idx_read_error(source.file, exc) from None
        return
    for start in range(0, source.n, rows):
        yield start, source.read(start, start + rows)


def streaming_normalization(source: RowSource, rows: int | None = None, indices: np.ndarray | None = None):
    """The :func:`edgeae.data.fit_normalization` result of ``source`` (or of its rows
    ``indices``, sorted), from one pass.

    Sums of squared deviations are merged block by block in float64 per feature (Chan et
    al.'s pairwise update), so memory stays one block plus a few feature vectors however
    many samples there are. When the rows fit in one block the arithmetic is numpy's own
    ``mean``/``std``, so the result is bit-equal to ``fit_normalization``; over several
    blocks it agrees to float64 rounding.
    """
    return scan_statistics(source, rows, indices)[0]


def scan_statistics(source: RowSource, rows: int | None = None, train: np.ndarray | None = None,
                    val: np.ndarray | None = None):
    """One pass over ``source``: (normalization fitted on the rows ``train``, per-feature
    raw ``(min, max)`` of the ``train`` rows, of the ``val`` rows).

    ``train`` / ``val`` are sorted row indices (``None``: every row for ``train``, none for
    ``val``). The ranges give training's value bounds without a second pass: normalization
    is an increasing map per feature, so the normalized extremes are the normalized raw ones.
    """
    from edgeae.config import Normalization

    d = math.prod(source.sample_shape)
    if rows is None:  # a block of float64 rows stays within 32 MiB; a source in memory is one block
        rows = source.n if source.kind == "memory" else max(1, (32 << 20) // (8 * max(d, 1)))
    moments = source.dtype != "uint8"
    mean, m2, n = np.zeros(d), np.zeros(d), 0
    ranges = [[None, None], [None, None]]
    for start, block in iter_blocks(source, rows):
        stop = start + len(block)
        flat_block = block.reshape(len(block), -1)
        for which, idx in enumerate((train, val)):
            if idx is None:
                sel = flat_block if which == 0 else flat_block[:0]
            else:
                part = idx[np.searchsorted(idx, start):np.searchsorted(idx, stop)] - start
                sel = flat_block if len(part) == len(block) else flat_block[part]
            if not len(sel):
                continue
            lo, hi = sel.min(axis=0), sel.max(axis=0)
            r = ranges[which]
            r[0] = lo if r[0] is None else np.minimum(r[0], lo)
            r[1] = hi if r[1] is None else np.maximum(r[1], hi)
            if which == 0 and moments:
                flat = sel.astype(np.float64)
                k = len(flat)
                bmean = flat.mean(axis=0)
                delta = bmean - mean
                m2 += np.square(flat - bmean).sum(axis=0) + np.square(delta) * (n * k / (n + k))
                mean += delta * (k / (n + k))
                n += k
    if ranges[0][0] is None:
        raise DataError(f"{source.path}: no samples to fit a normalization to")
    if not (np.issubdtype(np.dtype(source.dtype), np.number) or source.dtype == "bool"):
        raise DataError(f"cannot fit a normalization to {source.dtype} data; give numeric samples")
    if not moments:
        norm = Normalization(mode="scale255", raw_dtype="uint8", offset=[0.0], scale=[255.0])
    elif float(ranges[0][0].min()) >= 0.0 and float(ranges[0][1].max()) <= 1.0:
        norm = Normalization(mode="identity", raw_dtype="float32", offset=[0.0], scale=[1.0])
    else:
        std = np.sqrt(m2 / n)
        std[std < 1e-12] = 1.0  # constant features: leave them centred, never divide by 0
        norm = Normalization(mode="standardize", raw_dtype="float32", offset=mean.tolist(), scale=std.tolist())
    return norm, tuple(ranges[0]), tuple(ranges[1]) if ranges[1][0] is not None else None


def open_training_source(source: str | Path, resize: tuple[int, int] | None = None) -> tuple[RowSource, str, bool]:
    """``(rows, format, is_image)`` of a training data set, delivering exactly the samples
    :func:`edgeae.data.load_dataset` reads, without reading them all.

    A ``.npy`` or raw IDX file is memory-mapped and an image folder is a file list; the
    other sources (``digits``, ``.npz``, CSV, gzipped IDX, one image) are read whole.
    """
    from edgeae.data import load_dataset

    name, p = str(source), Path(source)
    fmt = "" if name == "digits" or not p.exists() else _detect_format(p)
    src = None
    if fmt == "npy":
        src = replace(_npy_source(p), samples=True)
    elif fmt == "idx":
        src = _idx_source(p)
        src = src if src.kind == "idx" else None
    elif fmt == "images" and p.is_dir():
        src = _image_source(p, resize)
    if src is None:
        ds = load_dataset(source, resize)
        return (RowSource(name, "memory", len(ds), ds.sample_shape, ds.x.dtype.name, array=ds.x),
                ds.format, ds.is_image)
    src = replace(src, path=name, resize=resize)
    first = src.read(0, 1)
    return replace(src, sample_shape=tuple(first.shape[1:]), dtype=first.dtype.name), fmt, first.ndim == 4
