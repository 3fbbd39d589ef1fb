"""Normalization between raw samples and model inputs (numpy only).

``model_x = (raw - offset) / scale`` with one value or one per feature of the flattened
sample; the inverse maps reconstructions back to raw units (uint8 pixels are rounded and
clipped). The same definition is used by training, export (``--raw-io``) and the runtime.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Normalizer"]


class Normalizer:
    """Applies a normalization record (``mode``, ``raw_dtype``, ``offset``, ``scale``).

    Built once (e.g. when a bundle loads) so per-call work is two vector operations.
    """

    def __init__(self, record: Any, sample_shape: tuple[int, ...]):
        get = record.get if isinstance(record, dict) else lambda k: getattr(record, k)
        self.mode: str = get("mode")
        self.raw_dtype = np.dtype(get("raw_dtype"))
        self.sample_shape = tuple(int(v) for v in sample_shape)
        offset = np.asarray(get("offset"), dtype=np.float32)
        scale = np.asarray(get("scale"), dtype=np.float32)
        if offset.size == 1:
            self.offset = offset.reshape(())
            self.scale = scale.reshape(())
        else:
            self.offset = offset.reshape(self.sample_shape)
            self.scale = scale.reshape(self.sample_shape)
        self.inv_scale = (1.0 / self.scale).astype(np.float32)
        self.is_identity = self.mode == "identity" or (
            self.offset.size == 1 and float(self.offset) == 0.0 and float(self.scale) == 1.0
        )
        self.has_offset = bool(np.any(self.offset != 0))  # scale255: no subtraction per call

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """Raw samples ``(N, *sample_shape)`` -> float32 model inputs."""
        x = np.asarray(raw)
        if self.is_identity:
            return x.astype(np.float32, copy=False)
        y = x.astype(np.float32)  # a fresh array: the steps below work in place
        if self.has_offset:
            y -= self.offset
        y *= self.inv_scale
        return y

    def denormalize(self, x: np.ndarray) -> np.ndarray:
        """Model outputs -> raw units; uint8 data is rounded and clipped to 0..255."""
        y = np.asarray(x, dtype=np.float32)
        if not self.is_identity:
            y = y * self.scale  # a fresh array: the steps below work in place
            if self.has_offset:
                y += self.offset
        if self.raw_dtype == np.uint8:
            if y is x:
                y = y.copy()
            np.rint(y, out=y)
            np.clip(y, 0, 255, out=y)
            return y.astype(np.uint8)
        return y
