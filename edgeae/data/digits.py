"""The built-in data set: scikit-learn's 8x8 digits as 8-bit images (imported lazily)."""

from __future__ import annotations

import numpy as np

from edgeae.data.source import Dataset
from edgeae.errors import DataError

__all__ = ["load_digits"]


def load_digits() -> Dataset:
    """1,797 digits ``(1797, 1, 8, 8)`` uint8 (0..16 scaled to 0..255) with their labels."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise DataError(
            "the 'digits' dataset needs scikit-learn: pip install 'edgeae[train]' (or give a data file)"
        ) from None
    d = sk_digits()
    x = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
    return Dataset(x, d.target.astype(np.int64), "digits", "digits", True)
