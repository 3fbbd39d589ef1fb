"""Normalized training samples read on demand: a torch Dataset over a :class:`RowSource`.

Training used to normalize the whole data set into one tensor; :class:`Rows` instead holds
a row source, the row indices of one part of the split (training or validation) and the
normalizer, and reads a batch when it is asked for one. A batch is gathered in sorted row
order (sequential reads from a memory map) and put back into the order asked for, so the
samples, and therefore the trained weights, are those of the in-memory path.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from edgeae.runtime.preprocess import Normalizer
from edgeae.scale.sources import RowSource

__all__ = ["Rows"]


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
