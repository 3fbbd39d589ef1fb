"""Training's data: the split of a row source, normalized and read a batch at a time (torch).

    data set -> RowSource (edgeae.data) -> split_indices + scan_statistics (one pass)
             -> Split(train=Rows, val=Rows) -> DataLoader / the training loop

Training used to normalize the whole data set into one tensor; :class:`Rows` instead holds
a row source, the row indices of one part of the split (training or validation) and the
normalizer, and reads a batch when it is asked for one. A batch is gathered in sorted row
order (sequential reads from a memory map) and put back into the order asked for, so the
samples, and therefore the trained weights, are those of the in-memory path. This is the
torch side of :mod:`edgeae.data`, which stays torch-free for the runtime CLI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeae.config import DataConfig, Normalization
from edgeae.data import (
    ArraySource,
    Dataset,
    RowSource,
    SignalSpec,
    open_training_source,
    scan_statistics,
    split_indices,
)
from edgeae.errors import DataError
from edgeae.runtime.preprocess import Normalizer

__all__ = ["Rows", "Split", "prepare_data"]


class Rows(torch.utils.data.Dataset):
    """Normalized samples ``source[indices]``; indexing with an int, slice or index array
    returns a float32 tensor (torch's batched ``__getitems__`` is supported as well)."""

    device = torch.device("cpu")  # where indexing returns samples (the loop moves batches)

    def __init__(self, source: RowSource, indices: np.ndarray, normalizer: Normalizer,
                 raw_range: tuple[np.ndarray, np.ndarray]):
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.normalizer = normalizer
        bounds = normalizer.normalize(np.stack([raw_range[0], raw_range[1]]).reshape(2, *source.sample_shape))
        # Normalization is increasing per feature: these are the normalized data's extremes.
        self._lo, self._hi = np.float32(bounds[0].min()), np.float32(bounds[1].max())

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.source.sample_shape)

    @property
    def nbytes(self) -> int:
        """Bytes of all the normalized samples (float32), were they held in memory."""
        return len(self) * math.prod(self.source.sample_shape) * 4

    def min(self) -> np.float32:
        return self._lo

    def max(self) -> np.float32:
        return self._hi

    def raw(self, key) -> np.ndarray:
        """Raw samples (as stored: uint8 images stay uint8) at ``key`` of this part."""
        rows = self.indices[_as_index(key)]
        scalar = rows.ndim == 0
        rows = np.atleast_1d(rows)
        order = np.argsort(rows, kind="stable")
        got = self.source.take(rows[order])  # sorted: sequential reads
        out = np.empty_like(got)
        out[order] = got
        return out[0] if scalar else out

    def __getitem__(self, key) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.normalizer.normalize(self.raw(key))))

    def __getitems__(self, keys: list[int]) -> torch.Tensor:
        return self[np.asarray(keys, dtype=np.int64)]

    def load(self) -> torch.Tensor:
        """All the samples of this part as one tensor (small parts, or a device copy)."""
        return self[slice(None)]

    def numpy(self) -> np.ndarray:
        return self.load().numpy()


def _as_index(key):
    if isinstance(key, torch.Tensor):
        return key.cpu().numpy()
    return key


@dataclass
class Split:
    """A data set split for training (what :func:`prepare_data` returns).

    ``train`` and ``val`` are :class:`Rows`: index arrays into the data set, read and
    normalized a batch at a time (``split.train[idx]`` is a tensor), so a memory-mapped
    ``.npy`` larger than memory trains in bounded memory.
    """

    train: Rows  # (N_train, *shape) normalized, read on demand
    val: Rows  # (N_val, *shape) normalized, read on demand

    @property
    def val_raw(self) -> np.ndarray:
        """All the raw validation samples (small data; else ``split.val.raw(slice)``)."""
        return self.val.raw(slice(None))


def prepare_data(dataset: Dataset | RowSource | str | Path | Any, data_cfg: DataConfig,
                 norm: Normalization | None = None,
                 resize: tuple[int, int] | None = None) -> tuple[Split, Normalization]:
    """Split, fit normalization on the training part (one streaming pass), and hand out
    both parts as on-demand :class:`Rows`.

    ``dataset`` is a loaded :class:`~edgeae.data.Dataset`, an opened
    :class:`~edgeae.data.RowSource` or a source path (``digits``, a file or folder, read
    with ``resize``, and as signals cut as ``data_cfg`` says: ``signal``, ``window``,
    ``hop``): a ``.npy``, raw IDX file or image folder is then never read whole.
    For a trained run (``data_cfg.n_train`` set) the data must still be the data it was
    trained on: same sample shape and count, else the split and normalization would differ.
    """
    if isinstance(dataset, Dataset):
        source = ArraySource.of(dataset.x, dataset.source)
    elif isinstance(dataset, RowSource):
        source = dataset
    else:
        spec = SignalSpec(data_cfg.signal, data_cfg.window, data_cfg.hop)
        source = open_training_source(dataset, resize, spec)[0]
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
