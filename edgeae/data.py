"""Dataset loaders, normalization fitting and the train/validation split (numpy + Pillow).

One entry point, :func:`load_dataset`, reads every supported source into raw samples
``(N, *sample_shape)``: 8-bit images stay ``uint8`` (so the exact pixels travel to the
runtime), everything else becomes ``float32``. Normalization is fitted separately
(:func:`fit_normalization`) and stored in the run config / bundle manifest, so the
torch-free runtime can read the same files (:func:`load_array_input`) and normalize them
the same way. :func:`prepare_data` hands the split to training, export and sampling as
index arrays over the data, read and normalized a batch at a time (a ``.npy`` larger than
memory is memory-mapped, docs/scaling.md); torch is imported there only, since the
runtime CLI imports this module.

Sources: ``digits`` (scikit-learn's 8x8 digits), MNIST-style IDX files (``.gz`` or raw,
or a folder holding them), ``.npy`` / ``.npz`` arrays, PNG/JPEG files or folders, CSV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.config import DataConfig, Normalization
from edgeae.csvfile import decode_line, is_blank, is_header, parse_rows, split_cells
from edgeae.errors import DataError
from edgeae.idxfile import idx_images_file, idx_layout, read_idx
from edgeae.imageio import read_image
from edgeae.runtime.preprocess import Normalizer

__all__ = [
    "FORMATS",
    "IMAGE_SUFFIXES",
    "Dataset",
    "load_dataset",
    "load_array_input",
    "parse_resize",
    "shape_mismatch",
    "fit_normalization",
    "split_indices",
    "Split",
    "prepare_data",
]

FORMATS = ("digits", "idx", "npy", "npz", "images", "csv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_SUPPORTED = (
    "'digits', an MNIST IDX file (*-idx3-ubyte[.gz]) or a folder holding one, "
    "a .npy/.npz array, a PNG/JPEG image or a folder of them, or a .csv file"
)


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


def load_dataset(source: str | Path = "digits", resize: tuple[int, int] | None = None) -> Dataset:
    """Read a dataset from ``source`` into raw samples; see the module docstring for formats.

    ``resize=(H, W)`` resizes images (bilinear) as they are read; it is refused for vectors.
    """
    name = str(source)
    if name == "digits":
        ds = _load_digits()
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(f"{path} not found: give {_SUPPORTED}")
        fmt = _detect_format(path)
        if fmt == "idx":
            ds = _load_idx(path)
        elif fmt in ("npy", "npz"):
            arr, labels = _read_array_file(path, fmt)
            ds = Dataset(_as_samples(arr, path), labels, name, fmt, arr.ndim >= 3)
        elif fmt == "images":
            return _load_images(path, resize)  # resized while decoding
        else:
            ds = _load_csv(path)
    if ds.labels is not None and len(ds.labels) != len(ds.x):
        raise DataError(
            f"{name}: {len(ds.labels)} labels for {len(ds.x)} samples; give labels of the same length"
        )
    if resize is not None:
        ds.x = _resize_array(ds.x, resize, ds.is_image, name)
    return ds


def load_array_input(
    path: str | Path, sample_shape: tuple[int, ...], resize: tuple[int, int] | None = None
) -> np.ndarray:
    """Read raw samples ``(N, *sample_shape)`` from any supported file for a trained model.

    The file's array goes through the runtime's input contract (docs/INPUT.md): one sample
    or a batch, grayscale without a channel axis, channel-last or flat vectors of the same
    size are all arranged into the model's layout. The dtype is left as stored (the
    loaded model's contract casts it); ``resize`` applies to images.
    """
    from edgeae.errors import InputError
    from edgeae.runtime.contract import SampleContract

    want = tuple(int(v) for v in sample_shape)
    p = Path(path)
    if p.suffix.lower() in (".npy", ".npz") and p.is_file():
        x, _ = _read_array_file(p, p.suffix.lower()[1:])
        if x.ndim >= 2 and x.shape[0] == 0:  # before arranging: the file's own shape, as the block reader says
            raise DataError(f"{path} holds no samples (shape {x.shape}); give at least one")
        if resize is not None:
            x = _resize_array(_as_samples(x, p), resize, x.ndim >= 3, str(path))
    elif p.exists() and _detect_format(p) == "idx":  # the samples only: labels are no input (nor read by encode)
        ds = _load_idx(p, labels=False)
        x = ds.x if resize is None else _resize_array(ds.x, resize, ds.is_image, str(path))
    else:
        x = load_dataset(path, resize).x
    try:
        x, _ = SampleContract(want, "standardize", "float32").arrange(x, str(path))
    except InputError:
        raise shape_mismatch(path, tuple(x.shape[1:]) if x.ndim > 1 else tuple(x.shape), want) from None
    if len(x) == 0:
        raise DataError(f"{path} holds no samples (shape {x.shape}); give at least one")
    return x


def shape_mismatch(path: str | Path, got: tuple[int, ...], want: tuple[int, ...]) -> DataError:
    """The one error for samples of another shape than the model's (whole-file and block readers)."""
    fix = "pass --resize HxW to resize images" if len(want) == 3 and len(got) in (2, 3) else (
        "give data with the shape the model was trained on"
    )
    return DataError(f"{path} holds samples of shape {got}, but the model expects {want}; {fix}")


def fit_normalization(x: np.ndarray) -> Normalization:
    """Choose how raw samples map to model inputs, from the training samples ``(N, ...)``.

    uint8 -> ``scale255`` (pixels / 255); floats already in [0, 1] -> ``identity``; anything
    else -> ``standardize`` with per-feature mean and std of the flattened sample.
    """
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise DataError(f"cannot fit a normalization to an array of shape {x.shape}; need (N, ...) with N >= 1")
    if x.dtype == np.uint8:
        return Normalization(mode="scale255", raw_dtype="uint8", offset=[0.0], scale=[255.0])
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"cannot fit a normalization to {x.dtype} data; give numeric samples")
    flat = x.reshape(x.shape[0], -1).astype(np.float64)
    bad = int(np.count_nonzero(~np.isfinite(flat)))
    if bad:
        raise DataError(f"cannot fit a normalization: {bad} values are NaN or infinite; clean the data first")
    if flat.min() >= 0.0 and flat.max() <= 1.0:
        return Normalization(mode="identity", raw_dtype="float32", offset=[0.0], scale=[1.0])
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std[std < 1e-12] = 1.0  # constant features: leave them centred, never divide by 0
    return Normalization(mode="standardize", raw_dtype="float32", offset=mean.tolist(), scale=std.tolist())


def split_indices(
    n: int, val_fraction: float, seed: int, ordered: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``n`` samples into (train, validation) index arrays.

    Random (seeded ``default_rng`` permutation, each part sorted) unless ``ordered``, which
    holds out the last ``round(n * val_fraction)`` samples, e.g. MNIST's fixed test split.
    """
    if not (0.0 < val_fraction < 1.0):
        raise DataError(f"val fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    n_val = int(math.floor(n * val_fraction + 0.5))  # round half up
    if n_val < 1 or n_val >= n:
        raise DataError(
            f"cannot split {n} samples with val fraction {val_fraction}: that leaves "
            f"{n - n_val} for training and {n_val} for validation; both need at least one, "
            "so give more samples or change --val-fraction"
        )
    if ordered:
        return np.arange(n - n_val, dtype=np.int64), np.arange(n - n_val, n, dtype=np.int64)
    perm = np.random.default_rng(seed).permutation(n).astype(np.int64)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


@dataclass
class Split:
    """A data set split for training (what :func:`prepare_data` returns).

    ``train`` and ``val`` are :class:`edgeae.scale.stream.Rows`: index arrays into the
    data set, read and normalized a batch at a time (``split.train[idx]`` is a tensor), so
    a memory-mapped ``.npy`` larger than memory trains in bounded memory.
    """

    train: Any  # Rows: (N_train, *shape) normalized, read on demand
    val: Any  # Rows: (N_val, *shape) normalized, read on demand

    @property
    def val_raw(self) -> np.ndarray:
        """All the raw validation samples (small data; else ``split.val.raw(slice)``)."""
        return self.val.raw(slice(None))


def prepare_data(dataset: Dataset | str | Path | Any, data_cfg: DataConfig, norm: Normalization | None = None,
                 resize: tuple[int, int] | None = None) -> tuple[Split, Any]:
    """Split, fit normalization on the training part (one streaming pass), and hand out
    both parts as on-demand :class:`~edgeae.scale.stream.Rows`.

    ``dataset`` is a loaded :class:`Dataset`, an opened :class:`~edgeae.scale.sources.RowSource`
    or a source path (``digits``, a file or folder, read with ``resize``): a ``.npy``, raw IDX file or image folder is then never read whole.
    For a trained run (``data_cfg.n_train`` set) the data must still be the data it was
    trained on: same sample shape and count, else the split and normalization would differ.
    """
    from edgeae.scale.sources import RowSource, open_training_source, scan_statistics
    from edgeae.scale.stream import Rows

    if isinstance(dataset, Dataset):
        source = RowSource(dataset.source, "memory", len(dataset), dataset.sample_shape, dataset.x.dtype.name,
                           array=dataset.x)
    elif isinstance(dataset, RowSource):
        source = dataset
    else:
        source = open_training_source(dataset, resize)[0]
    if data_cfg.n_train and (tuple(source.sample_shape) != tuple(data_cfg.sample_shape)
                             or len(source) != data_cfg.n_train + data_cfg.n_val):
        raise DataError(
            f"{source.path} holds {len(source)} samples of shape {tuple(source.sample_shape)}, but the run "
            f"was trained on {data_cfg.n_train + data_cfg.n_val} samples of shape {tuple(data_cfg.sample_shape)}; "
            "point --data at the run's own data set"
        )
    train_idx, val_idx = split_indices(len(source), data_cfg.val_fraction, data_cfg.seed, data_cfg.split == "ordered")
    fitted, train_range, val_range = scan_statistics(source, None, train_idx, val_idx)
    norm = norm or fitted
    normalizer = Normalizer(norm, source.sample_shape)
    return Split(Rows(source, train_idx, normalizer, train_range), Rows(source, val_idx, normalizer, val_range)), norm


# --- format detection ------------------------------------------------------------------


def _detect_format(path: Path) -> str:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        if any("images-idx3-ubyte" in p.name for p in files):
            return "idx"
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
            return "images"
        raise DataError(
            f"{path} holds no *images-idx3-ubyte* file and no {'/'.join(IMAGE_SUFFIXES)} images; "
            f"give {_SUPPORTED}"
        )
    suffix = path.suffix.lower()
    if "ubyte" in path.name or ("idx" in path.name.lower() and suffix in (".gz", "")):
        return "idx"
    for fmt, suffixes in (("npy", (".npy",)), ("npz", (".npz",)), ("images", IMAGE_SUFFIXES), ("csv", (".csv",))):
        if suffix in suffixes:
            return fmt
    raise DataError(f"{path}: unknown data format {suffix or '(no extension)'!r}; give {_SUPPORTED}")


def _check_finite(x: np.ndarray, where: object) -> None:
    if x.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise DataError(f"{where} contains {bad} NaN or infinite values; clean or drop them first")


# --- digits ------------------------------------------------------------------------------


def _load_digits() -> Dataset:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(
            "the 'digits' dataset needs scikit-learn: pip install 'edgeae[train]' (or give a data file)"
        ) from None
    d = load_digits()
    x = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
    return Dataset(x, d.target.astype(np.int64), "digits", "digits", True)


# --- IDX -----------------------------------------------------------------------------------


def _load_idx(path: Path, labels: bool = True) -> Dataset:
    """The images of an IDX file or folder, with the matching labels file's labels when ``labels``."""
    image_file = idx_images_file(path)
    if len(idx_layout(image_file).dims) == 1:  # before the body: the block reader's order of checks
        raise DataError(f"{image_file} holds a 1-D array (labels?); give the images file")
    arr = read_idx(image_file)
    x = _as_samples(arr, image_file)
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


# --- numpy arrays ----------------------------------------------------------------------------


def _read_array_file(path: Path, fmt: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Load the array of a .npy, or the ``x`` (or only) array of a .npz, plus ``y``/``labels``.

    Headers are checked against the file before anything is allocated (edgeae.npyfile).
    """
    from edgeae.npyfile import npz_keys, read_npy, read_npz

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


def _as_samples(arr: np.ndarray, path: object) -> np.ndarray:
    """Map an array ``(N, ...)`` to raw samples: vectors (N, D) or channels-first images."""
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{path} holds {arr.dtype} values; give a numeric array (integers or floats)")
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise DataError(
            f"{path} holds an array of shape {arr.shape}; give samples as (N, D) vectors or "
            "(N, H, W) / (N, C, H, W) / (N, H, W, C) images with N >= 1"
        )
    if arr.ndim == 3:
        arr = arr[:, None]  # (N, H, W) -> (N, 1, H, W)
    elif arr.ndim == 4 and arr.shape[1] not in (1, 3, 4):
        if arr.shape[3] not in (1, 3):
            raise DataError(
                f"{path} holds images of shape {arr.shape[1:]}; give (C, H, W) with C in 1, 3, 4 "
                "or (H, W, C) with C in 1, 3"
            )
        arr = arr.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    elif arr.ndim > 4:
        raise DataError(f"{path} holds an array of shape {arr.shape}; at most 4 dimensions (N, C, H, W)")
    x = np.ascontiguousarray(arr, dtype=np.uint8 if arr.dtype == np.uint8 else np.float32)
    _check_finite(x, path)
    return x


def _resize_array(x: np.ndarray, size: tuple[int, int], is_image: bool, name: str) -> np.ndarray:
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


# --- images --------------------------------------------------------------------------------


def _load_images(path: Path, resize: tuple[int, int] | None) -> Dataset:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        files = [path]
    arrays = [read_image(f, resize) for f in files]
    first = arrays[0].shape[:2]
    for f, a in zip(files, arrays, strict=True):
        if a.shape[:2] != first:
            raise DataError(
                f"images in {path} have different sizes: {files[0].name} is "
                f"{first[0]}x{first[1]} and {f.name} is {a.shape[0]}x{a.shape[1]} (HxW); "
                f"pass --resize HxW (e.g. --resize {first[0]}x{first[1]}) to resize them all"
            )
    if any(a.ndim == 3 for a in arrays):  # mixed gray and colour: make all RGB
        arrays = [a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in arrays]
        x = np.stack(arrays).transpose(0, 3, 1, 2)  # (N, H, W, 3) -> (N, 3, H, W)
    else:
        x = np.stack(arrays)[:, None]  # (N, 1, H, W)
    return Dataset(np.ascontiguousarray(x), None, str(path), "images", True)


# --- CSV -----------------------------------------------------------------------------------


def _load_csv(path: Path) -> Dataset:
    """Numeric CSV -> float32 (N, D); a first row with any non-number is the header.

    Lines are decoded and split by :mod:`edgeae.csvfile` (the block reader's rules too);
    numpy's C parser reads well-formed files; on any problem the rows are parsed again
    cell by cell to name the line and column at fault.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path} could not be read as CSV text ({exc.strerror or exc})") from None
    lines = [decode_line(b, path, i) for i, b in enumerate(raw.split(b"\n"), start=1)]
    rows = [(i, cells) for i, cells in ((i, split_cells(t, path, i)) for i, t in enumerate(lines, start=1))
            if not is_blank(cells)]
    columns = None
    if rows and is_header(rows[0][1]):
        columns = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
    if not rows:
        raise DataError(f"{path} has no data rows; give one sample per line of comma-separated numbers")
    width = len(columns) if columns is not None else len(rows[0][1])
    try:
        values = np.loadtxt([lines[i - 1] for i, _ in rows], delimiter=",", dtype=np.float32, ndmin=2,
                            comments=None)
        fast = values.shape == (len(rows), width)
    except ValueError:
        fast = False
    if not fast:
        values = parse_rows(path, rows, width, columns)
    _check_finite(values, path)
    return Dataset(values, None, str(path), "csv", False, columns)
