"""Reconstruction quality: MSE and PSNR, the one definition every part of edgeae reports.

Training, export, the runtime, the compression report and the benchmarks all call these
functions, so a PSNR printed by one command is comparable with any other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["mse", "psnr", "psnr_from_mse", "psnr_peak", "is_bounded", "ReconstructionSummary",
           "reconstruction_summary"]


def mse(x: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error over all elements (float64 accumulation)."""
    d = np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return float(np.mean(d * d)) if d.size else float("nan")


def is_bounded(mode: str) -> bool:
    """Whether a normalization mode puts the data on [0, 1] (so PSNR has a natural peak of 1)."""
    return mode != "standardize"  # scale255 and identity data live on [0, 1]


def psnr_peak(mode: str, x: np.ndarray) -> float:
    """PSNR peak in model units: 1 for [0, 1] data, else the range of the reference samples."""
    if is_bounded(mode):
        return 1.0
    return max(float(np.max(x) - np.min(x)), 1e-12) if np.size(x) else 1.0


def psnr_from_mse(err: float, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of a mean squared error: ``10 log10(range^2 / MSE)``."""
    return math.inf if err <= 0 else 10.0 * math.log10(data_range * data_range / err)


def psnr(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of two arrays; inf for identical arrays.

    The MSE over all elements of a whole set (not an average of per-sample PSNRs).
    """
    return psnr_from_mse(mse(x, y), data_range)


@dataclass
class ReconstructionSummary:
    """Reconstruction quality of a set of samples, in model units."""

    count: int  # samples compared
    mse: float  # mean squared error in model units (the normalized scale)
    psnr: float | None  # dB on the [0, 1] scale; None for standardized / unbounded data
    max_abs_error: float  # largest absolute difference in model units

    def __str__(self) -> str:
        text = f"{self.count} samples: MSE {self.mse:.6g} (model units), max |error| {self.max_abs_error:.4g}"
        if self.psnr is not None:
            text += f", PSNR {self.psnr:.2f} dB (on the [0, 1] scale)"
        return text


def reconstruction_summary(x_model: np.ndarray, x_hat: np.ndarray, normalization: str) -> ReconstructionSummary:
    """Compare inputs and reconstructions, both in model units.

    PSNR is reported for ``scale255`` / ``identity`` data (which live on [0, 1]); for
    ``standardize`` data only the MSE in model units is meaningful.
    """
    bounded = is_bounded(normalization)
    d = np.abs(np.asarray(x_model, np.float32) - np.asarray(x_hat, np.float32))
    return ReconstructionSummary(
        count=int(len(x_model)),
        mse=mse(x_model, x_hat),
        psnr=psnr(x_model, x_hat, 1.0) if bounded else None,
        max_abs_error=float(d.max()) if d.size else float("nan"),
    )
