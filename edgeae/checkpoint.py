"""Run folders: save and load weights (safetensors) beside ``config.json``.

Loading never unpickles or executes code: weights are safetensors, settings are JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from edgeae.config import RunConfig
from edgeae.errors import CheckpointError, ConfigError
from edgeae.models import Autoencoder, build_model

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "save_weights", "load_weights", "load_run", "atomic_write_text"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Save a state dict as safetensors, atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp))
    os.replace(tmp, path)


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load safetensors weights, naming every tensor that does not fit the model."""
    path = Path(path)
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path} not found: the run folder has no weights; train it first") from None
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    expected = model.state_dict()
    problems = []
    for key in sorted(set(expected) - set(state)):
        problems.append(f"missing {key} {tuple(expected[key].shape)}")
    for key in sorted(set(state) - set(expected)):
        problems.append(f"unexpected {key} {tuple(state[key].shape)}")
    for key in sorted(set(state) & set(expected)):
        if state[key].shape != expected[key].shape:
            problems.append(f"{key}: file has {tuple(state[key].shape)}, config needs {tuple(expected[key].shape)}")
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise CheckpointError(
            f"weights in {path} do not fit the model described by config.json ({shown}); "
            "was config.json edited, or the weights copied from another run?"
        )
    model.load_state_dict(state)


def load_run(run_dir: str | Path, device: str = "cpu") -> tuple[RunConfig, Autoencoder]:
    """Rebuild a trained model from a run folder; the model is in eval mode."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder {run_dir} not found; train one with `edgeae train --out {run_dir}`")
    cfg_path, weights = run_dir / CONFIG_FILE, run_dir / WEIGHTS_FILE
    if not cfg_path.is_file():
        raise CheckpointError(f"{run_dir} is not a run folder: {CONFIG_FILE} is missing")
    if not weights.is_file():
        raise CheckpointError(f"{run_dir} has no weights ({WEIGHTS_FILE} is missing); train or --resume it first")
    try:
        cfg = RunConfig.load(cfg_path)
    except (ConfigError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{cfg_path}: {exc}") from None
    model = build_model(cfg.model, cfg.train.latent_bits)
    load_weights(model, weights)
    return cfg, model.to(device).eval()
