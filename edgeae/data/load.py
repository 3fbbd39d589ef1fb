"""Opening a data set: format detection, whole data sets and row sources (numpy + Pillow).

    "digits" | IDX | .npy | .npz | image file/folder | CSV | .ts
        -> detect_format -> the format's module -> RowSource (read(start, count))
                                                -> Dataset (every row, + labels)
    signals (.ts, or a SignalSpec: --signal / --window / --hop) -> signals.WindowSource

:func:`open_training_source` gives the samples training reads, without reading them all: a
``.npy`` or raw IDX file is memory-mapped and an image folder is a file list; the other
sources (``digits``, ``.npz``, CSV, gzipped IDX, one image) are read whole once and held
as an :class:`~edgeae.data.source.ArraySource`. :func:`load_dataset` reads all of a data
set's rows (8-bit images stay ``uint8`` so the exact pixels travel to the runtime,
everything else becomes ``float32``) plus its labels. A ``.ts`` file, and any file read
with an active :class:`~edgeae.data.signals.SignalSpec`, gives signal windows ``(N, C, T)``
(:mod:`edgeae.data.signals`). :func:`open_source` and
:func:`load_array_input` read files for a trained model (``encode``, ``compress``, Dask,
``reconstruct``): rows arranged into the model's sample shape by the runtime's input
contract (docs/INPUT.md).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from edgeae.data.csvfile import open_csv, read_csv
from edgeae.data.digits import load_digits
from edgeae.data.idxfile import load_idx, open_idx
from edgeae.data.imageio import IMAGE_SUFFIXES, load_images, open_image_folder
from edgeae.data.npyfile import open_npy, read_array_file, read_npy
from edgeae.data.signals import SignalSpec, load_signals, open_signals
from edgeae.data.source import ArraySource, Dataset, RowSource, arrange, as_samples, resize_array
from edgeae.errors import DataError, InputError

__all__ = ["FORMATS", "SUPPORTED", "detect_format", "load_dataset", "load_array_input", "open_source",
           "open_training_source", "parse_resize"]

FORMATS = ("digits", "idx", "npy", "npz", "images", "csv", "ts")
SUPPORTED = (
    "'digits', an MNIST IDX file (*-idx3-ubyte[.gz]) or a folder holding one, "
    "a .npy/.npz array, a PNG/JPEG image or a folder of them, a .csv file, or a UCR/UEA .ts file"
)


def parse_resize(text: str | None) -> tuple[int, int] | None:
    """Parse ``"28x28"`` (HxW) into ``(28, 28)``; ``None`` or ``""`` give None."""
    if text is None or str(text).strip() == "":
        return None
    h, sep, w = str(text).strip().lower().partition("x")
    try:
        size = (int(h), int(w))
    except ValueError:
        size = None
    if not sep or size is None or min(size) <= 0:
        raise DataError(f"resize must look like HxW with positive integers (e.g. 28x28), got {text!r}")
    return size


def detect_format(path: Path) -> str:
    """The format of an existing file or folder: one of :data:`FORMATS` but ``digits``."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        if any("images-idx3-ubyte" in p.name for p in files):
            return "idx"
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
            return "images"
        raise DataError(
            f"{path} holds no *images-idx3-ubyte* file and no {'/'.join(IMAGE_SUFFIXES)} images; "
            f"give {SUPPORTED}"
        )
    suffix = path.suffix.lower()
    if "ubyte" in path.name or ("idx" in path.name.lower() and suffix in (".gz", "")):
        return "idx"
    for fmt, suffixes in (("npy", (".npy",)), ("npz", (".npz",)), ("images", IMAGE_SUFFIXES), ("csv", (".csv",)),
                          ("ts", (".ts",))):
        if suffix in suffixes:
            return fmt
    raise DataError(f"{path}: unknown data format {suffix or '(no extension)'!r}; give {SUPPORTED}")


def _signals(name: str, fmt: str, signal: SignalSpec | None, resize: tuple[int, int] | None) -> SignalSpec | None:
    """The spec to read ``name`` as signals with (``.ts`` files always), or None: not signals."""
    if fmt != "ts" and (signal is None or not signal.active):
        return None
    if fmt not in ("ts", "npy", "npz", "csv"):
        raise DataError(f"{name} holds {'images' if fmt != 'idx' else 'IDX images'}; signals (--signal, "
                        "--window) are read from .ts, .npy/.npz or .csv files")
    if resize is not None:
        raise DataError(f"--resize applies to images only; {name} is read as signals")
    return signal or SignalSpec()


def load_dataset(source: str | Path = "digits", resize: tuple[int, int] | None = None,
                 signal: SignalSpec | None = None) -> Dataset:
    """Read every sample of ``source`` (and its labels); see the module docstring for formats.

    ``resize=(H, W)`` resizes images (bilinear) as they are read; it is refused for vectors.
    ``signal`` reads the file as signal windows (:mod:`edgeae.data.signals`).
    """
    name = str(source)
    if name == "digits":
        _signals(name, "digits", signal, resize)
        ds = load_digits()
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(f"{path} not found: give {SUPPORTED}")
        fmt = detect_format(path)
        spec = _signals(name, fmt, signal, resize)
        if spec is not None:
            return load_signals(path, fmt, spec)
        if fmt == "idx":
            ds = load_idx(path)
        elif fmt in ("npy", "npz"):
            arr, labels = read_array_file(path, fmt)
            ds = Dataset(as_samples(arr, path), labels, name, fmt, arr.ndim >= 3)
        elif fmt == "images":
            return load_images(path, resize)  # resized while decoding
        else:
            ds = read_csv(path)
    if ds.labels is not None and len(ds.labels) != len(ds.x):
        raise DataError(
            f"{name}: {len(ds.labels)} labels for {len(ds.x)} samples; give labels of the same length"
        )
    if resize is not None:
        ds.x = resize_array(ds.x, resize, ds.is_image, name)
    return ds


def _settle(src: RowSource, path: str) -> RowSource:
    """The source as given by ``path``, its delivered sample shape and dtype fixed by reading
    one row: dtype, shape and conversions are checked before any work."""
    src = replace(src, path=path)
    first = src.read(0, 1)
    return replace(src, sample_shape=tuple(first.shape[1:]), dtype=first.dtype.name)


def open_training_source(source: str | Path, resize: tuple[int, int] | None = None,
                         signal: SignalSpec | None = None) -> tuple[RowSource, str, bool]:
    """``(rows, format, is_image)`` of a training data set: exactly the samples
    :func:`load_dataset` reads, without reading them all (see the module docstring)."""
    name, p = str(source), Path(source)
    fmt = "" if name == "digits" or not p.exists() else detect_format(p)
    spec = _signals(name, fmt or "digits", signal, resize) if fmt or name == "digits" else None
    if spec is not None:
        return _settle(open_signals(p, fmt, spec), name), fmt, False
    src = None
    if fmt == "npy":
        src = open_npy(p, samples=True)
    elif fmt == "idx":
        src = open_idx(p)
        src = None if src.gz else src
    elif fmt == "images" and p.is_dir():
        src = open_image_folder(p, resize)
    if src is None:
        ds = load_dataset(source, resize, signal)
        return ArraySource.of(ds.x, name), ds.format, ds.is_image
    src = _settle(replace(src, resize=resize), name)
    return src, fmt, len(src.sample_shape) == 3


def open_source(path: str | Path, sample_shape: tuple[int, ...] = (),
                resize: tuple[int, int] | None = None, signal: SignalSpec | None = None) -> RowSource:
    """A :class:`RowSource` of ``path`` for a model of ``sample_shape`` (empty: rows as stored).

    Blocks read exactly as :func:`load_array_input` reads the whole file; ``signal`` cuts
    signal files into windows (:mod:`edgeae.data.signals`).
    """
    p = Path(path)
    want = tuple(int(v) for v in sample_shape)
    if str(path) != "digits" and not p.exists():
        raise DataError(f"{path} not found: give a .npy/.npz, IDX, image folder, CSV or .ts file")
    fmt = "memory" if str(path) == "digits" else detect_format(p)
    spec = _signals(str(path), "digits" if fmt == "memory" else fmt, signal, resize)
    if spec is not None:
        return _settle(replace(open_signals(p, fmt, spec), want=want), str(path))
    if fmt == "npy" and want and _one_sample(p, want):
        fmt = "memory"
    if fmt == "npy":
        src = open_npy(p)
    elif fmt == "idx":
        src = open_idx(p)
    elif fmt == "csv":
        src = open_csv(p)
    elif fmt == "images" and p.is_dir():
        src = open_image_folder(p, resize)
    else:  # npz, digits, one image: small; read whole, rows as stored (as the .npy rows above)
        return ArraySource.of(load_array_input(path, want, resize), str(path), want)
    return _settle(replace(src, want=want, resize=resize), str(path))


def _one_sample(p: Path, want: tuple[int, ...]) -> bool:
    """A .npy holding one sample in any layout of the input contract: read it whole."""
    from edgeae.runtime.contract import SampleContract

    mm = read_npy(p, mmap=True)  # the header checked: a bad file is refused here as everywhere
    try:
        return mm.ndim < 2 or SampleContract(want, "standardize", "float32").arrange(mm)[1]  # views: no data read
    except (InputError, ValueError):
        return True  # let load_array_input report it


def load_array_input(
    path: str | Path, sample_shape: tuple[int, ...], resize: tuple[int, int] | None = None,
    signal: SignalSpec | None = None,
) -> np.ndarray:
    """Read raw samples ``(N, *sample_shape)`` from any supported file for a trained model.

    The file's array goes through the runtime's input contract (docs/INPUT.md): one sample
    or a batch, grayscale without a channel axis, channel-last or flat vectors of the same
    size are all arranged into the model's layout. The dtype is left as stored (the
    loaded model's contract casts it); ``resize`` applies to images, ``signal`` cuts signal
    files into windows.
    """
    want = tuple(int(v) for v in sample_shape)
    p = Path(path)
    fmt = detect_format(p) if p.exists() else ""
    if fmt == "ts" or (signal is not None and signal.active):
        x = load_dataset(path, resize, signal).x
    elif p.suffix.lower() in (".npy", ".npz") and p.is_file():
        x, _ = read_array_file(p, p.suffix.lower()[1:])
        if x.ndim >= 2 and x.shape[0] == 0:  # before arranging: the file's own shape, as the block reader says
            raise DataError(f"{path} holds no samples (shape {x.shape}); give at least one")
        if resize is not None:
            x = resize_array(as_samples(x, p), resize, x.ndim >= 3, str(path))
    elif p.exists() and detect_format(p) == "idx":  # the samples only: labels are no input (nor read by encode)
        ds = load_idx(p, labels=False)
        x = ds.x if resize is None else resize_array(ds.x, resize, ds.is_image, str(path))
    else:
        x = load_dataset(path, resize).x
    x = arrange(x, want, path)
    if len(x) == 0:
        raise DataError(f"{path} holds no samples (shape {x.shape}); give at least one")
    return x
