"""Reading ``.npy`` / ``.npz`` files that may be malformed or hostile (numpy only).

``np.load`` trusts a file's header: a 100-byte file that claims a (10^6, 10^6) array makes
it allocate terabytes before noticing the data is missing, and a zip member that claims
a huge size is decompressed into an array of that size. These readers check the header
against the bytes actually there first, so memory never exceeds what the file holds,
and every malformed file becomes one :class:`edgeae.errors.DataError` naming it.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from edgeae.errors import DataError

__all__ = ["npz_keys", "read_npy", "read_npz"]

_DEFLATE_MAX_RATIO = 1032  # deflate expands at most ~1032x: a larger declared size is a lie


def _why(exc: BaseException) -> str:
    """An exception as one line (numpy's messages span several)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _header(fp: IO[bytes], where: object, fmt: str = "npy") -> tuple[tuple[int, ...], np.dtype]:
    """Parse a .npy header at the current position -> (shape, dtype); refuses what numpy would."""
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(fp)
        if version == (1, 0):
            shape, _, dtype = npformat.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, _, dtype = npformat.read_array_header_2_0(fp)
        else:
            raise ValueError(f"format version {version} is not supported (1.0 and 2.0 are)")
    except Exception as exc:  # numpy raises ValueError, SyntaxError, EOFError, ... for bad headers
        raise DataError(f"{where} could not be read as a numpy {fmt} file ({_why(exc)})") from None
    if dtype.hasobject:
        raise DataError(f"{where} holds Python objects (an object array); save a numeric array instead "
                        "(e.g. np.save(path, np.asarray(x, dtype=np.float32)))")
    return tuple(int(v) for v in shape), dtype


def _check_size(shape: tuple[int, ...], dtype: np.dtype, available: int, where: object) -> None:
    need = math.prod(shape) * dtype.itemsize
    if need != available:
        raise DataError(f"{where} is truncated or corrupt: its header says {shape} {dtype} ({need} bytes of data), "
                        f"the file holds {available}; write it again with np.save")


def read_npy(path: str | Path) -> np.ndarray:
    """A .npy file -> its array, after checking that the file holds every byte the header claims."""
    try:
        with open(path, "rb") as f:
            shape, dtype = _header(f, path)
            start = f.tell()
            _check_size(shape, dtype, f.seek(0, 2) - start, path)
            f.seek(0)
            return np.load(f, allow_pickle=False)
    except DataError:
        raise
    except Exception as exc:  # OSError, ValueError, EOFError, MemoryError: never a traceback
        raise DataError(f"{path} could not be read as a numpy npy file ({_why(exc)})") from None


def read_npz(path: str | Path, keys: list[str] | None = None) -> dict[str, np.ndarray]:
    """Arrays of a .npz archive (``keys``, or all of them), each checked before it is read."""
    try:
        with zipfile.ZipFile(path) as z:
            members = {i.filename[:-4]: i for i in z.infolist() if i.filename.endswith(".npy")}
            out = {}
            for key in (keys if keys is not None else list(members)):
                info = members[key]
                where = f"{path} (array {key!r})"
                if info.compress_type != zipfile.ZIP_STORED and \
                        info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 4096:
                    raise DataError(f"{where} claims {info.file_size} bytes from {info.compress_size} compressed; "
                                    "the archive is corrupt")
                with z.open(info) as f:
                    shape, dtype = _header(f, where, "npz")
                    header = f.tell()
                _check_size(shape, dtype, info.file_size - header, where)
                with z.open(info) as f:
                    out[key] = np.lib.format.read_array(f, allow_pickle=False)
            return out
    except DataError:
        raise
    except Exception as exc:  # BadZipFile, zlib.error, NotImplementedError, OSError, ...
        raise DataError(f"{path} could not be read as a numpy npz file ({_why(exc)})") from None


def npz_keys(path: str | Path) -> list[str]:
    """Names of the arrays in a .npz archive (reads the zip directory only)."""
    try:
        with zipfile.ZipFile(path) as z:
            return [i.filename[:-4] for i in z.infolist() if i.filename.endswith(".npy")]
    except Exception as exc:
        raise DataError(f"{path} could not be read as a numpy npz file ({_why(exc)})") from None
