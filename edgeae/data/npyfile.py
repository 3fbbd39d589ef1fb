"""Reading ``.npy`` / ``.npz`` files that may be malformed or hostile (numpy only).

``np.load`` trusts a file's header: a 100-byte file that claims a (10^6, 10^6) array makes
it allocate terabytes before noticing the data is missing, and a zip member that claims
a huge size is decompressed into an array of that size. These readers check the header
against the bytes actually there first, so memory never exceeds what the file holds,
and every malformed file becomes one :class:`edgeae.errors.DataError` naming it.

Compressed data (an ``.npz`` member, a gzipped IDX file) may expand to at most
:func:`expansion_cap` of its compressed size: real arrays compress a few times, a
deflate bomb a thousand times. ``EDGEAE_MAX_EXPANSION`` raises the ratio for data that
truly compresses that well.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar

import numpy as np

from edgeae.data.source import RowSource, as_samples, check_samples
from edgeae.errors import DataError

__all__ = ["CAP_HINT", "NpyLayout", "NpySource", "expansion_cap", "npy_layout", "npz_keys", "open_npy",
           "read_array_file", "read_npy", "read_npz"]

_DEFLATE_MAX_RATIO = 1032  # deflate expands at most ~1032x: a larger declared size is a lie
_MAX_DIM = np.iinfo(np.intp).max  # numpy cannot index past it, even in an empty array
_EXPANSION_ENV = "EDGEAE_MAX_EXPANSION"
_DEFAULT_EXPANSION = 200  # x the compressed size: far above real data, far below a bomb's ~1000x
_EXPANSION_FLOOR = 64 << 20  # bytes any compressed input may expand to, whatever its ratio
CAP_HINT = f"set {_EXPANSION_ENV}=RATIO (default {_DEFAULT_EXPANSION}) to allow more for data that compresses that well"


def expansion_cap(compressed: int) -> int:
    """Bytes that ``compressed`` bytes of deflate data may expand to before a reader refuses them.

    ``max(64 MiB, ratio x compressed)`` with ratio ``$EDGEAE_MAX_EXPANSION`` (default 200).
    """
    raw = os.environ.get(_EXPANSION_ENV, "").strip()
    try:
        ratio = float(raw) if raw else _DEFAULT_EXPANSION
    except ValueError:
        raise DataError(f"{_EXPANSION_ENV}={raw!r} is not a number; give a ratio such as 500") from None
    if not ratio > 0 or not math.isfinite(ratio):
        raise DataError(f"{_EXPANSION_ENV}={raw!r} must be a positive ratio such as 500")
    return max(_EXPANSION_FLOOR, int(ratio * max(compressed, 0)))


def _why(exc: BaseException) -> str:
    """An exception as one line (numpy's messages span several)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _header(fp: IO[bytes], where: object, fmt: str = "npy") -> tuple[tuple[int, ...], np.dtype, bool]:
    """Parse a .npy header at the current position -> (shape, dtype, fortran order); refuses what numpy would."""
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(fp)
        else:
            raise ValueError(f"format version {version} is not supported (1.0 and 2.0 are)")
    except Exception as exc:  # numpy raises ValueError, SyntaxError, EOFError, ... for bad headers
        raise DataError(f"{where} could not be read as a numpy {fmt} file ({_why(exc)})") from None
    if dtype.hasobject:
        raise DataError(f"{where} holds Python objects (an object array); save a numeric array instead "
                        "(e.g. np.save(path, np.asarray(x, dtype=np.float32)))")
    shape = tuple(int(v) for v in shape)
    if any(v < 0 for v in shape):
        raise DataError(f"{where} is corrupt: its header gives the negative shape {shape}; write it again with np.save")
    if math.prod(v for v in shape if v) * dtype.itemsize > _MAX_DIM:  # even an empty array must be indexable
        raise DataError(f"{where} is corrupt: its header gives the shape {shape}, larger than {_MAX_DIM} bytes; "
                        "write it again with np.save")
    return shape, dtype, bool(fortran)


def _check_size(shape: tuple[int, ...], dtype: np.dtype, available: int, where: object) -> None:
    need = math.prod(shape) * dtype.itemsize
    if need != available:
        raise DataError(f"{where} is truncated or corrupt: its header says {shape} {dtype} ({need} bytes of data), "
                        f"the file holds {available}; write it again with np.save")


@dataclass(frozen=True)
class NpyLayout:
    """A checked .npy header: the file holds exactly ``shape`` x ``dtype`` from ``offset``."""

    shape: tuple[int, ...]  # every dim >= 0
    dtype: np.dtype
    fortran_order: bool
    offset: int  # bytes before the data


def npy_layout(path: str | Path) -> NpyLayout:
    """Check a .npy file's header against its size; -> its layout, or one DataError naming the file.

    The one header check of every reader (whole file, memory map, row blocks), so every
    command accepts or refuses a file alike.
    """
    try:
        with open(path, "rb") as f:
            shape, dtype, fortran = _header(f, path)
            start = f.tell()
            _check_size(shape, dtype, f.seek(0, 2) - start, path)
    except DataError:
        raise
    except Exception as exc:  # OSError (a folder, no permission), ...: never a traceback
        raise DataError(f"{path} could not be read as a numpy npy file ({_why(exc)})") from None
    return NpyLayout(shape, dtype, fortran, start)


def read_npy(path: str | Path, mmap: bool = False) -> np.ndarray:
    """A .npy file -> its array (``mmap``: memory-mapped, read-only), after :func:`npy_layout`'s checks."""
    layout = npy_layout(path)
    try:
        if mmap:
            if math.prod(layout.shape) == 0:
                return np.empty(layout.shape, dtype=layout.dtype)  # numpy cannot map 0 bytes
            return np.memmap(path, dtype=layout.dtype, mode="r", offset=layout.offset, shape=layout.shape,
                             order="F" if layout.fortran_order else "C")
        with open(path, "rb") as f:
            return np.load(f, allow_pickle=False)
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
                if info.compress_type != zipfile.ZIP_STORED and info.file_size > expansion_cap(info.compress_size):
                    raise DataError(f"{where} expands from {info.compress_size} to {info.file_size} bytes, more than "
                                    f"the cap of {expansion_cap(info.compress_size)} (a decompression bomb?); "
                                    f"{CAP_HINT}, or save it uncompressed (np.savez)")
                with z.open(info) as f:
                    shape, dtype, _ = _header(f, where, "npz")
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


# --- data sets and row sources ------------------------------------------------------------------


def read_array_file(path: str | Path, fmt: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The array of a .npy, or the ``x`` (or only) array of a .npz, plus ``y``/``labels``.

    Headers are checked against the file before anything is allocated.
    """
    labels = None
    if fmt == "npy":
        arr = read_npy(path)
    else:
        keys = npz_keys(path)
        if "x" in keys:
            key = "x"
        elif len(keys) == 1:
            key = keys[0]
        else:
            raise DataError(
                f"{path} holds arrays {keys or '(none)'}; name the samples 'x' "
                "(np.savez(path, x=samples, y=labels)) or save one array"
            )
        label_key = next((k for k in ("y", "labels") if key == "x" and k in keys), None)
        arrays = read_npz(path, [key] + ([label_key] if label_key else []))
        arr, labels = arrays[key], arrays.get(label_key) if label_key else None
    if labels is not None:
        if labels.ndim != 1 or labels.dtype.kind not in "iub":
            raise DataError(f"{path}: labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
        labels = labels.astype(np.int64)
    return arr, labels


@dataclass(frozen=True)
class NpySource(RowSource):
    """The rows of a ``.npy`` file, memory-mapped: the stored dtype and shape, any rank.

    With ``samples`` (training) rows become :func:`~edgeae.data.source.as_samples`'s
    uint8 / float32 channels-first samples, as the whole-file reader gives them.
    """

    file: str = ""

    kind: ClassVar[str] = "npy"

    def _rows(self, start: int, stop: int) -> np.ndarray:
        return read_npy(self.file, mmap=True)[start:stop]

    def _take(self, idx: np.ndarray) -> np.ndarray:
        """A memory map for the call, dropped after it: pages read stay out of the resident set."""
        return read_npy(self.file, mmap=True)[idx]

    def _convert(self, raw: np.ndarray, first_row: int | None) -> np.ndarray:
        if self.samples or self.resize is not None:
            return as_samples(raw, self.path, first_row)
        return raw  # the stored dtype: the model's input contract casts it


def open_npy(path: str | Path, samples: bool = False) -> NpySource:
    """A memory-mapped ``.npy`` of ``(N, ...)`` rows (the header checked, nothing read).

    ``samples`` checks the header as training samples (numeric, 2 to 4 dims, N >= 1).
    """
    mm = read_npy(path, mmap=True)
    if samples:
        check_samples(mm.shape, mm.dtype, path)
    elif mm.ndim >= 2 and mm.shape[0] == 0:
        raise DataError(f"{path} holds no samples (shape {mm.shape}); give at least one")
    elif mm.ndim < 2:
        raise DataError(f"{path} holds an array of shape {mm.shape}; give samples as (N, ...) with N >= 1 "
                        "(one sample: use load_array_input)")
    return NpySource(str(path), int(mm.shape[0]), (), "", samples=samples, file=str(path))
