"""What the stream tests share: stand-in codes and decoder digest."""

from __future__ import annotations

import numpy as np

SHA = "0123456789abcdef" * 4  # a stand-in decoder digest


def codes(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    """``(n, d)`` float32 codes with per-dimension spreads from 3 down to 0.2."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)) * np.linspace(3, 0.2, d)).astype(np.float32)
