"""Reading MNIST-style IDX files (raw or gzipped) that may be malformed or hostile.

One header check for every reader: :func:`idx_layout` is what both the whole-file reader
(:func:`read_idx`, used by ``load_dataset`` and ``reconstruct``) and the block reader
(:class:`IdxSource`, used by training, ``encode``, ``compress`` and Dask) see,
so a file is accepted or refused the same way by every command. A header is checked
against the bytes there before anything is allocated: a raw file must be exactly as long
as its dims say; a gzipped one may not claim more than deflate can expand to (the cap of
:func:`edgeae.data.npyfile.expansion_cap`), and is read in bounded blocks.
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeae.data.npyfile import CAP_HINT, expansion_cap
from edgeae.data.source import Dataset, RowSource, as_samples
from edgeae.errors import DataError

__all__ = ["IDX_DTYPES", "IdxLayout", "IdxSource", "check_gz_length", "idx_images_file", "idx_layout",
           "idx_read_error", "load_idx", "open_idx", "read_idx", "read_idx_rows", "READ_ERRORS"]

# IDX type codes -> big-endian numpy dtypes (http://yann.lecun.com/exdb/mnist/).
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# What reading a damaged raw or gzipped file raises (EOFError: a gzip stream cut short).
READ_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class IdxLayout:
    """Where an IDX file's values are: checked header facts, no values read."""

    path: Path
    dims: tuple[int, ...]  # every dim >= 1
    dtype: np.dtype  # stored (big-endian) dtype
    offset: int  # bytes before the first value (in the decompressed stream for .gz)
    gz: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.dims) * self.dtype.itemsize

    @property
    def row_bytes(self) -> int:
        """Bytes of one sample (one entry of the first dim)."""
        return math.prod(self.dims[1:]) * self.dtype.itemsize


def idx_images_file(path: str | Path) -> Path:
    """The images file to read for ``path``: itself, or a folder's (the training set's first).

    A labels file is refused: it is a common slip to pass the wrong one of the pair.
    """
    path = Path(path)
    if path.is_dir():
        images = sorted((p for p in path.iterdir() if p.is_file() and "images-idx3-ubyte" in p.name),
                        key=lambda p: (not p.name.startswith("train"), p.name))
        if not images:
            raise DataError(f"{path} holds no *images-idx3-ubyte* file; give an MNIST-style IDX file or folder")
        path = images[0]
    if "labels-idx1" in path.name:
        raise DataError(f"{path} is a labels file; give the matching *images-idx3-ubyte* file")
    return path


def idx_read_error(path: str | Path, exc: BaseException) -> DataError:
    """The one message for an IDX file that fails while read (a cut gzip stream, an I/O error)."""
    return DataError(f"{path} could not be read as an IDX file ({exc}); is it a complete download?")


def _open(path: Path, gz: bool):
    return gzip.open(path, "rb") if gz else open(path, "rb")


def idx_layout(path: str | Path) -> IdxLayout:
    """Check an IDX file's header against the file; -> its layout, or one DataError naming the file."""
    path = Path(path)
    gz = path.name.endswith(".gz")
    try:
        with _open(path, gz) as f:
            magic = f.read(4)
            ok = len(magic) == 4 and magic[:2] == b"\0\0" and magic[2] in IDX_DTYPES and magic[3] > 0
            head = f.read(4 * magic[3]) if ok else b""
    except READ_ERRORS as exc:
        raise idx_read_error(path, exc) from None
    if not ok:
        raise DataError(f"{path} is not an IDX file (bad magic number {magic.hex() or 'none'}); "
                        "give an MNIST-style *-idx3-ubyte[.gz] file")
    ndim, dtype = magic[3], np.dtype(IDX_DTYPES[magic[2]])
    offset = 4 + 4 * ndim
    if len(head) != 4 * ndim:
        raise DataError(f"{path} is truncated: its header names {ndim} dims but the file ends after "
                        f"{len(head) // 4}; download it again")
    dims = tuple(int(d) for d in np.frombuffer(head, dtype=">u4"))
    if 0 in dims:  # checked first: keeps the other (possibly absurd) dims out of any product
        raise DataError(f"{path} holds no values (header dims {dims}); give a file with samples")
    layout = IdxLayout(path, dims, dtype, offset, gz)
    size = path.stat().st_size
    if not gz and size != offset + layout.nbytes:
        raise DataError(f"{path} is truncated or corrupt: header says {dims} values of {dtype.name} "
                        f"({offset + layout.nbytes} bytes), file has {size} bytes; download it again")
    if gz and offset + layout.nbytes > expansion_cap(size):
        raise DataError(f"{path} is truncated or corrupt: header says {dims} values of {dtype.name} "
                        f"({layout.nbytes} bytes), more than {size} gzipped bytes may expand to (at most {expansion_cap(size)}: "
                        f"{CAP_HINT}); download it again")
    return layout


def _truncated(layout: IdxLayout, body: int) -> DataError:
    return DataError(f"{layout.path} is truncated: header says {layout.dims[0]} samples, the file ends inside "
                     f"sample {body // layout.row_bytes + 1}; download it again")


def _too_long(layout: IdxLayout) -> DataError:
    return DataError(f"{layout.path} is corrupt: it holds more bytes than its header's {layout.dims} values "
                     f"of {layout.dtype.name}; download it again")


def check_gz_length(layout: IdxLayout) -> None:
    """A gzipped file's values end exactly where its header says: one pass in 1 MiB blocks.

    Both readers call it before reading any sample, so a cut download or trailing bytes
    are reported first, the same way, whichever command reads the file.
    """
    need, got = layout.offset + layout.nbytes, 0
    try:
        with _open(layout.path, True) as f:
            while block := f.read(1 << 20):
                got += len(block)
                if got > need:
                    raise _too_long(layout)
    except READ_ERRORS as exc:
        raise idx_read_error(layout.path, exc) from None
    if got < need:
        raise _truncated(layout, got - layout.offset)


def read_idx_rows(f, layout: IdxLayout, count: int, start: int = 0) -> np.ndarray:
    """``count`` rows (first-dim entries) from an open file positioned at row ``start``."""
    row = layout.row_bytes
    try:
        data = _read_at_most(f, count * row)
    except READ_ERRORS as exc:
        raise idx_read_error(layout.path, exc) from None
    if len(data) != count * row:
        raise _truncated(layout, start * row + len(data))
    return np.frombuffer(data, dtype=layout.dtype).reshape((count, *layout.dims[1:]))


def read_idx(path: str | Path) -> np.ndarray:
    """A whole IDX file -> its (writable) array; memory follows the bytes there, not the header's claim."""
    layout = idx_layout(path)
    if layout.gz:
        check_gz_length(layout)
    try:
        with _open(layout.path, layout.gz) as f:
            f.seek(layout.offset)
            arr = read_idx_rows(f, layout, layout.dims[0])
            extra = f.read(1)
    except READ_ERRORS as exc:
        raise idx_read_error(layout.path, exc) from None
    if extra:
        raise _too_long(layout)
    return arr.reshape(layout.dims).copy()


def _read_at_most(f, limit: int) -> bytes:
    """Read up to ``limit`` bytes in 1 MiB blocks: memory follows the data, not a header's claim."""
    blocks, got = [], 0
    while got < limit:
        block = f.read(min(1 << 20, limit - got))
        if not block:
            break
        blocks.append(block)
        got += len(block)
    return b"".join(blocks)


# --- whole data sets and row sources ------------------------------------------------------------


def load_idx(path: str | Path, labels: bool = True) -> Dataset:
    """The images of an IDX file or folder, with the matching labels file's labels when ``labels``."""
    image_file = idx_images_file(path)
    if len(idx_layout(image_file).dims) == 1:  # before the body: the block reader's order of checks
        raise DataError(f"{image_file} holds a 1-D array (labels?); give the images file")
    x = as_samples(read_idx(image_file), image_file)
    label_file = image_file.with_name(image_file.name.replace("images-idx3", "labels-idx1"))
    if not labels or label_file == image_file or not label_file.exists():
        return Dataset(x, None, str(path), "idx", x.ndim == 4)
    lab = read_idx(label_file)
    if lab.ndim != 1 or len(lab) != len(x):
        raise DataError(
            f"{label_file} holds labels of shape {lab.shape}, but {image_file} has {len(x)} images; "
            "give the matching pair of files"
        )
    return Dataset(x, lab.astype(np.int64), str(path), "idx", x.ndim == 4)


@dataclass(frozen=True)
class IdxSource(RowSource):
    """The samples of an IDX images file: memory-mapped when raw, read forwards when gzipped."""

    file: str = ""  # the images file (an IDX folder's)
    offset: int = 0  # byte offset of the first sample (in the decompressed stream for .gz)
    file_dtype: str = ""  # stored (big-endian) dtype
    file_shape: tuple[int, ...] = ()  # stored shape of one sample
    gz: bool = False

    @property
    def kind(self) -> str:
        return "idx-gz" if self.gz else "idx"

    def _layout(self) -> IdxLayout:
        return IdxLayout(Path(self.file), (self.n, *self.file_shape), np.dtype(self.file_dtype), self.offset,
                         self.gz)

    def _map(self) -> np.ndarray:
        """A memory map for one call, dropped after it (pages read stay out of the resident set)."""
        return np.memmap(self.file, dtype=self.file_dtype, mode="r", offset=self.offset,
                         shape=(self.n, *self.file_shape))

    def _rows(self, start: int, stop: int) -> np.ndarray:
        if not self.gz:
            return self._map()[start:stop]
        layout = self._layout()
        try:
            with gzip.open(self.file, "rb") as f:
                f.seek(self.offset + start * layout.row_bytes)
                return read_idx_rows(f, layout, stop - start, start)
        except READ_ERRORS as exc:
            raise idx_read_error(self.file, exc) from None

    def _take(self, idx: np.ndarray) -> np.ndarray:
        return super()._take(idx) if self.gz else self._map()[idx]

    def _convert(self, raw: np.ndarray, first_row: int | None) -> np.ndarray:
        return as_samples(raw, self.path, first_row)

    def blocks(self, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """A gzipped file is read forwards through one open file instead of re-seeking."""
        if not self.gz:
            yield from super().blocks(rows)
            return
        layout = self._layout()
        try:
            with gzip.open(self.file, "rb") as f:
                f.seek(self.offset)
                for start in range(0, self.n, rows):
                    count = min(rows, self.n - start)
                    yield start, self._finish(read_idx_rows(f, layout, count, start), start)
        except READ_ERRORS as exc:
            raise idx_read_error(self.file, exc) from None


def open_idx(path: str | Path) -> IdxSource:
    """An IDX images file (or the one in a folder), checked by the same rules as :func:`load_idx`.

    A gzipped file is checked end to end first, so a cut or overlong download is refused
    before any sample is read, as the whole-file reader does. The sample shape is settled
    by the caller (:func:`edgeae.data.load.settle`).
    """
    layout = idx_layout(idx_images_file(path))
    if len(layout.dims) < 2:
        raise DataError(f"{layout.path} holds a 1-D array (labels?); give the images file")
    if layout.gz:
        check_gz_length(layout)
    return IdxSource(str(layout.path), layout.dims[0], (), "", file=str(layout.path), offset=layout.offset,
                     file_dtype=layout.dtype.str, file_shape=layout.dims[1:], gz=layout.gz)
