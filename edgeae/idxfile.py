"""Reading MNIST-style IDX files (raw or gzipped) that may be malformed or hostile.

One header check for every reader: :func:`idx_layout` is what both the whole-file reader
(:func:`read_idx`, used by ``load_dataset`` and ``reconstruct``) and the block reader
(:class:`edgeae.scale.sources.RowSource`, used by ``encode``, ``compress`` and Dask) see,
so a file is accepted or refused the same way by every command. A header is checked
against the bytes there before anything is allocated: a raw file must be exactly as long
as its dims say; a gzipped one may not claim more than deflate can expand to (the cap of
:func:`edgeae.npyfile.expansion_cap`), and is read in bounded blocks.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeae.errors import DataError
from edgeae.npyfile import CAP_HINT, expansion_cap

__all__ = ["IDX_DTYPES", "IdxLayout", "check_gz_length", "idx_images_file", "idx_layout", "idx_read_error", "read_idx", "read_idx_rows",
           "READ_ERRORS"]

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
