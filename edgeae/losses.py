"""Reconstruction losses (mse, bce, mae) and the VAE's KL term.

Plain autoencoders use the per-element mean. VAEs sum over a sample's features and average
over the batch, so the reconstruction term and the KL term keep their ELBO proportions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgeae.config import LOSSES
from edgeae.errors import ConfigError

__all__ = ["reconstruction_loss", "kl_divergence", "check_loss_targets"]


def reconstruction_loss(x_hat: torch.Tensor, target: torch.Tensor, kind: str, per_sample_sum: bool = False) -> torch.Tensor:
    """Loss between reconstruction and target; ``per_sample_sum`` gives the ELBO-style scale."""
    if kind == "mse":
        err = F.mse_loss(x_hat, target, reduction="none")
    elif kind == "mae":
        err = F.l1_loss(x_hat, target, reduction="none")
    elif kind == "bce":
        err = F.binary_cross_entropy(x_hat.clamp(1e-7, 1 - 1e-7), target, reduction="none")
    else:
        raise ConfigError(f"unknown loss {kind!r}; choose one of: {', '.join(LOSSES)}")
    if per_sample_sum:
        return err.flatten(1).sum(1).mean()
    return err.mean()


def kl_divergence(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) summed over code dims, averaged over the batch."""
    return (-0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(1)).mean()


def check_loss_targets(kind: str, target_min: float, target_max: float, output_activation: str) -> None:
    """Refuse BCE where it is undefined: targets outside [0, 1] or an unbounded output."""
    if kind != "bce":
        return
    if target_min < 0.0 or target_max > 1.0:
        raise ConfigError(
            f"--loss bce needs targets in [0, 1], but the data spans [{target_min:.3g}, {target_max:.3g}] "
            "after normalization; use --loss mse or mae for standardized data"
        )
    if output_activation != "sigmoid":
        raise ConfigError(
            f"--loss bce needs --output-activation sigmoid (outputs in [0, 1]), got {output_activation!r}"
        )
