"""Normalization fitting and the train/validation split (numpy only).

Normalization is fitted on the training rows and stored in the run config / bundle
manifest, so the torch-free runtime normalizes its inputs the same way.
:func:`scan_statistics` fits it in one pass over a :class:`~edgeae.data.source.RowSource`
(with the raw value ranges training needs), so a data set larger than memory is never
read whole; :func:`fit_normalization` is the same rule on an array in memory.
"""

from __future__ import annotations

import math

import numpy as np

from edgeae.config import Normalization
from edgeae.data.source import ArraySource, RowSource, check_finite
from edgeae.errors import DataError

__all__ = ["fit_normalization", "split_indices", "scan_statistics", "streaming_normalization"]



def _scale255() -> Normalization:
    return Normalization(mode="scale255", raw_dtype="uint8", offset=[0.0], scale=[255.0])


def _identity() -> Normalization:
    return Normalization(mode="identity", raw_dtype="float32", offset=[0.0], scale=[1.0])


def fit_normalization(x: np.ndarray) -> Normalization:
    """Choose how raw samples map to model inputs, from the training samples ``(N, ...)``.

    uint8 -> ``scale255`` (pixels / 255); floats already in [0, 1] -> ``identity``; anything
    else -> ``standardize`` with per-feature mean and std of the flattened sample.
    """
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise DataError(f"cannot fit a normalization to an array of shape {x.shape}; need (N, ...) with N >= 1")
    if x.dtype == np.uint8:
        return _scale255()
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"cannot fit a normalization to {x.dtype} data; give numeric samples")
    flat = x.reshape(x.shape[0], -1).astype(np.float64)
    check_finite(flat, "the array to fit a normalization to")
    if flat.min() >= 0.0 and flat.max() <= 1.0:
        return _identity()
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


def streaming_normalization(source: RowSource, rows: int | None = None,
                            indices: np.ndarray | None = None) -> Normalization:
    """The :func:`fit_normalization` result of ``source`` (or of its rows ``indices``,
    sorted), from one pass.

    Sums of squared deviations are merged block by block in float64 per feature (Chan et
    al.'s pairwise update), so memory stays one block plus a few feature vectors however
    many samples there are. When the rows fit in one block the arithmetic is numpy's own
    ``mean``/``std``, so the result is bit-equal to ``fit_normalization``; over several
    blocks it agrees to float64 rounding.
    """
    return scan_statistics(source, rows, indices)[0]


class _Moments:
    """Per-feature count, mean and sum of squared deviations, merged block by block."""

    def __init__(self, d: int):
        self.mean, self.m2, self.n = np.zeros(d), np.zeros(d), 0

    def add(self, sel: np.ndarray) -> None:
        flat = sel.astype(np.float64)
        k = len(flat)
        bmean = flat.mean(axis=0)
        delta = bmean - self.mean
        self.m2 += np.square(flat - bmean).sum(axis=0) + np.square(delta) * (self.n * k / (self.n + k))
        self.mean += delta * (k / (self.n + k))
        self.n += k


def _selected(flat_block: np.ndarray, idx: np.ndarray | None, start: int, everything: bool) -> np.ndarray:
    """The rows of one block ``[start, start + len)`` named by sorted ``idx`` (None: all or none)."""
    if idx is None:
        return flat_block if everything else flat_block[:0]
    stop = start + len(flat_block)
    part = idx[np.searchsorted(idx, start):np.searchsorted(idx, stop)] - start
    return flat_block if len(part) == len(flat_block) else flat_block[part]


def scan_statistics(source: RowSource, rows: int | None = None, train: np.ndarray | None = None,
                    val: np.ndarray | None = None):
    """One pass over ``source``: (normalization fitted on the rows ``train``, per-feature
    raw ``(min, max)`` of the ``train`` rows, of the ``val`` rows).

    ``train`` / ``val`` are sorted row indices (``None``: every row for ``train``, none for
    ``val``). The ranges give training's value bounds without a second pass: normalization
    is an increasing map per feature, so the normalized extremes are the normalized raw ones.
    """
    d = math.prod(source.sample_shape)
    if rows is None:  # a block of float64 rows stays within 32 MiB; a source in memory is one block
        rows = source.n if isinstance(source, ArraySource) else max(1, (32 << 20) // (8 * max(d, 1)))
    moments = _Moments(d) if source.dtype != "uint8" else None
    ranges = [[None, None], [None, None]]
    for start, block in source.blocks(rows):
        flat_block = block.reshape(len(block), -1)
        for which, idx in enumerate((train, val)):
            sel = _selected(flat_block, idx, start, which == 0)
            if not len(sel):
                continue
            lo, hi = sel.min(axis=0), sel.max(axis=0)
            r = ranges[which]
            r[0] = lo if r[0] is None else np.minimum(r[0], lo)
            r[1] = hi if r[1] is None else np.maximum(r[1], hi)
            if which == 0 and moments is not None:
                moments.add(sel)
    if ranges[0][0] is None:
        raise DataError(f"{source.path}: no samples to fit a normalization to")
    if not (np.issubdtype(np.dtype(source.dtype), np.number) or source.dtype == "bool"):
        raise DataError(f"cannot fit a normalization to {source.dtype} data; give numeric samples")
    if moments is None:
        norm = _scale255()
    elif float(ranges[0][0].min()) >= 0.0 and float(ranges[0][1].max()) <= 1.0:
        norm = _identity()
    else:
        std = np.sqrt(moments.m2 / moments.n)
        std[std < 1e-12] = 1.0  # constant features: leave them centred, never divide by 0
        norm = Normalization(mode="standardize", raw_dtype="float32", offset=moments.mean.tolist(),
                             scale=std.tolist())
    return norm, tuple(ranges[0]), tuple(ranges[1]) if ranges[1][0] is not None else None
