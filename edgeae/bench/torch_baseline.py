"""The PyTorch eager baseline for ``edgeae bench --torch RUN_DIR`` (needs the train extra).

Same weights as the bundle (the run folder it was exported from), ``torch.inference_mode``,
``torch.set_num_threads`` matched to the ONNX Runtime thread count of each cell. Inputs
are the same numpy arrays in model units; the numpy <-> tensor conversion is part of the
call, as it would be for an application holding numpy data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.bench.timing import timed_load

__all__ = ["TorchBaseline", "load_torch"]


@dataclass
class TorchBaseline:
    """What :func:`edgeae.bench.harness.run_bench` needs to time PyTorch eager."""

    calls: dict[str, Any]  # graph -> callable(np.ndarray) -> np.ndarray (encoder, decoder, end-to-end)
    sizes: dict[str, int]  # graph -> bytes of the weights file
    sample_shape: tuple[int, ...]  # one sample, no batch axis
    load_ms: float  # time to read config + weights and build the model
    load_mb: float = 0.0  # current-RSS growth while loading

    def set_threads(self, n: int) -> None:
        import torch

        torch.set_num_threads(int(n))


def load_torch(run_dir: str | Path) -> TorchBaseline:
    """Load a run folder's model for eager timing (encoder returns the code; VAE: the mean)."""
    import torch

    from edgeae.checkpoint import WEIGHTS_FILE, load_run

    (cfg, model), load_ms, load_mb = timed_load(lambda: load_run(run_dir))
    variational = cfg.model.is_variational

    def encode(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model.encoder(torch.from_numpy(x))
            return (out[0] if variational else out).numpy()

    def decode(code: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.decoder(torch.from_numpy(code)).numpy()

    def reconstruct(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model.encoder(torch.from_numpy(x))
            return model.decoder(out[0] if variational else out).numpy()

    size = (Path(run_dir) / WEIGHTS_FILE).stat().st_size
    return TorchBaseline(
        calls={"encoder": encode, "decoder": decode, "end-to-end": reconstruct},
        sizes={"encoder": size, "decoder": size, "end-to-end": size},
        sample_shape=tuple(cfg.model.input_shape), load_ms=load_ms, load_mb=load_mb,
    )
