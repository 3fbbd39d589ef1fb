"""Run folders: weights (safetensors) beside ``config.json``, and the state ``--resume`` needs.

Loading never unpickles or executes code: weights are safetensors, settings are JSON.
A run folder holds ``config.json``, ``weights.safetensors`` (best validation loss),
``metrics.json``, pictures, and the resume state: ``last.safetensors`` (latest weights),
``optimizer.safetensors`` (Adam moments) and ``state.json`` (epoch, history, schedule).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from edgeae.atomic import atomic_path, atomic_write_text
from edgeae.config import RunConfig
from edgeae.errors import CheckpointError, ConfigError
from edgeae.models import Autoencoder, build_model

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "RUN_FILES", "save_weights", "load_weights", "load_run",
           "save_resume_state", "load_resume_state"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
_LAST, _OPTIMIZER, _STATE = "last.safetensors", "optimizer.safetensors", "state.json"
# What a run folder holds besides config.json (an overwritten run loses all of them).
RUN_FILES = (WEIGHTS_FILE, _LAST, _OPTIMIZER, _STATE, "metrics.json", "loss.png", "reconstructions.png")


def save_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Save a state dict as safetensors, atomically."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))


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


def save_resume_state(run_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any,
                      state: dict[str, Any]) -> None:
    """Write what ``--resume`` needs after an epoch: latest weights, optimizer, schedule, ``state``."""
    save_weights(model, run_dir / _LAST)
    tensors, groups = {}, opt.state_dict()
    for idx, pstate in groups["state"].items():
        for name, value in pstate.items():
            tensors[f"{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    with atomic_path(run_dir / _OPTIMIZER) as tmp:
        save_file(tensors, str(tmp))
    state = dict(state, param_groups=groups["param_groups"], scheduler=sched.state_dict())
    atomic_write_text(run_dir / _STATE, json.dumps(state))


def load_resume_state(run_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
                      sched: Any) -> dict[str, Any]:
    """Restore model, optimizer and schedule written by :func:`save_resume_state`; returns the state."""
    missing = [name for name in (_STATE, _LAST, _OPTIMIZER) if not (run_dir / name).is_file()]
    if missing:
        raise ConfigError(f"cannot --resume {run_dir}: {', '.join(missing)} missing (no earlier run state there)")
    try:
        state = json.loads((run_dir / _STATE).read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"cannot --resume {run_dir}: state.json is not valid JSON ({exc})") from None
    load_weights(model, run_dir / _LAST)
    tensors = load_file(str(run_dir / _OPTIMIZER))
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        opt_state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": opt_state, "param_groups": state.pop("param_groups")})
    sched.load_state_dict(state.pop("scheduler"))
    return state
