"""Decode new samples from a trained model: prior draws (VAE) or code interpolations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from edgeae.checkpoint import load_run
from edgeae.errors import ConfigError
from edgeae.rows import prepare_data

__all__ = ["sample_codes", "sample_grid"]


def sample_codes(run_dir: str | Path, n: int, seed: int = 0, loaded=None) -> tuple[torch.Tensor, str]:
    """Codes to decode: N(0, I) draws for a VAE; otherwise rows of 8 interpolation steps
    between the codes of two real validation samples (so n=64 gives 8 pairs)."""
    cfg, model = loaded or load_run(run_dir)  # loaded: (RunConfig, model) already at hand
    gen = torch.Generator().manual_seed(seed)
    if model.variational:
        return torch.randn(n, cfg.model.code_size, generator=gen), "draws from the prior"
    split, _ = prepare_data(cfg.data.source, cfg.data, cfg.normalization, cfg.data.resize)
    steps = min(8, n)
    pairs = math.ceil(n / steps)
    idx = torch.randperm(len(split.val), generator=gen)[: 2 * pairs]
    if len(idx) < 2:
        raise ConfigError("interpolation needs at least 2 validation samples")
    with torch.no_grad():
        codes = model.encode(split.val[idx])  # (2P, K)
    t = torch.linspace(0, 1, steps).reshape(1, steps, 1)
    a, b = codes[0::2].unsqueeze(1), codes[1::2].unsqueeze(1)  # (P, 1, K)
    m = min(len(a), len(b))
    rows = (1 - t) * a[:m] + t * b[:m]  # (P, steps, K)
    return rows.reshape(-1, codes.shape[1])[:n], "interpolations between real samples"


def sample_grid(run_dir: str | Path, n: int, output: str | Path, seed: int = 0) -> tuple[Path, str]:
    """Decode :func:`sample_codes` and save them as a PNG grid (8 per row)."""
    from edgeae.data.imageio import save_grid

    cfg, model = load_run(run_dir)
    if not cfg.data.is_image or cfg.normalization.mode == "standardize":
        raise ConfigError(f"{run_dir} was trained on non-image data; sample grids need images")
    codes, how = sample_codes(run_dir, n, seed, loaded=(cfg, model))
    with torch.no_grad():
        images = model.decoder(codes).clamp(0, 1).numpy()  # (n, C, H, W)
    per_row = min(8, n)
    rows = [images[i : i + per_row] for i in range(0, len(images), per_row)]
    if len(rows[-1]) < per_row:
        pad = np.zeros((per_row - len(rows[-1]), *images.shape[1:]), dtype=images.dtype)
        rows[-1] = np.concatenate([rows[-1], pad])
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_grid(rows, path)
    return path, how
