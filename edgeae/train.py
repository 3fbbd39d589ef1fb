"""The training loop: data -> normalized tensors -> Adam + cosine schedule -> best checkpoint.

The trainer knows nothing of model internals beyond the :class:`edgeae.models.Autoencoder`
contract (``model(x)`` returns an ``AEOutput``). A run folder holds ``config.json``,
``weights.safetensors`` (best validation loss), ``metrics.json``, ``loss.png`` and, for
images, ``reconstructions.png``; ``last.safetensors`` + ``optimizer.safetensors`` +
``state.json`` let ``--resume`` continue.
"""

from __future__ import annotations

import json
import math
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from edgeae.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    atomic_write_text,
    load_weights,
    save_weights,
)
from edgeae.config import (
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    parse_int_list,
    parse_noise,
)
from edgeae.data import Dataset, fit_normalization, load_dataset, split_indices
from edgeae.errors import ConfigError, DataError, TrainingError
from edgeae.losses import check_loss_targets, kl_divergence, reconstruction_loss
from edgeae.models import Autoencoder, build_model, default_code_size, default_hidden
from edgeae.runtime.metrics import psnr_from_mse as psnr
from edgeae.runtime.metrics import psnr_peak
from edgeae.runtime.preprocess import Normalizer

__all__ = ["TrainResult", "train", "apply_noise", "random_shift", "default_run_dir", "prepare_data"]


_WARMUP_STEPS = 100  # learning-rate warm-up steps at the start of training (at most one epoch)
_MAX_DEVICE_DATA_BYTES = 2 << 30  # keep training data on the GPU when it is at most this big


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path  # the run folder
    config: RunConfig  # settings as saved in config.json
    metrics: dict[str, Any]  # as saved in metrics.json
    model: Autoencoder  # the best model, eval mode, on CPU
    interrupted: bool = False  # Ctrl-C stopped training early (the best checkpoint is kept)


@dataclass
class _Split:
    train: torch.Tensor  # (N_train, *shape) normalized
    val: torch.Tensor  # (N_val, *shape) normalized
    val_raw: np.ndarray = field(repr=False, default=None)  # raw validation samples


def apply_noise(x: torch.Tensor, noise: tuple[str, float] | None, generator: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """Corrupt a batch for denoising training: gaussian (sigma), saltpepper / mask (probability)."""
    if noise is None:
        return x
    kind, level = noise
    # Random numbers come from the seeded CPU generator on every device, so runs repeat.
    if kind == "gaussian":
        return (x + level * torch.randn(x.shape, generator=generator).to(x.device)).clamp(lo, hi)
    hit = (torch.rand(x.shape, generator=generator) < level).to(x.device)
    if kind == "mask":
        return torch.where(hit, torch.zeros_like(x), x)
    salt = (torch.rand(x.shape, generator=generator) < 0.5).to(x.device)
    return torch.where(hit, torch.where(salt, torch.full_like(x, hi), torch.full_like(x, lo)), x)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image of ``x`` (B, C, H, W) by up to ``max_shift`` pixels, zero-filled.

    Data augmentation for small image sets: an autoencoder trained on 9,000 MNIST digits
    otherwise memorises them (train/validation PSNR gap of ~5 dB for wide conv models).
    """
    if max_shift <= 0:
        return x
    b, _, h, w = x.shape
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator).to(x.device)
    padded = torch.nn.functional.pad(x, (max_shift,) * 4)  # (B, C, H + 2s, W + 2s)
    rows = (torch.arange(h, device=x.device)[None, :] + dy[:, None])[:, :, None]  # (B, H, 1)
    cols = (torch.arange(w, device=x.device)[None, :] + dx[:, None])[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def default_run_dir(data: str, model: str, code_size: int) -> Path:
    """``runs/<data>-<model>-<code>``: a readable default that does not clash across data sets."""
    stem = Path(str(data)).name.split(".")[0] or "data"
    return Path("runs") / f"{stem}-{model}-{code_size}"


def prepare_data(dataset: Dataset, data_cfg: DataConfig, norm=None) -> tuple[_Split, Any]:
    """Split, fit normalization on the training part, and normalize both parts.

    For a trained run (``data_cfg.n_train`` set) the data must still be the data it was
    trained on: same sample shape and count, else the split and normalization would differ.
    """
    if data_cfg.n_train and (tuple(dataset.x.shape[1:]) != tuple(data_cfg.sample_shape)
                             or len(dataset.x) != data_cfg.n_train + data_cfg.n_val):
        raise DataError(
            f"{dataset.source} holds {len(dataset.x)} samples of shape {tuple(dataset.x.shape[1:])}, but the run "
            f"was trained on {data_cfg.n_train + data_cfg.n_val} samples of shape {tuple(data_cfg.sample_shape)}; "
            "point --data at the run's own data set"
        )
    train_idx, val_idx = split_indices(len(dataset.x), data_cfg.val_fraction, data_cfg.seed, data_cfg.split == "ordered")
    if norm is None:
        norm = fit_normalization(dataset.x[train_idx])
    normalizer = Normalizer(norm, dataset.x.shape[1:])
    x = torch.from_numpy(np.ascontiguousarray(normalizer.normalize(dataset.x)))
    return _Split(x[train_idx], x[val_idx], dataset.x[val_idx]), norm


def _resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but PyTorch sees no CUDA GPU; use --device cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _loss(model: Autoencoder, out, target: torch.Tensor, tcfg: TrainConfig) -> torch.Tensor:
    if model.variational:
        recon = reconstruction_loss(out.x_hat, target, tcfg.loss, per_sample_sum=True)
        return recon + tcfg.beta * kl_divergence(out.mean, out.log_var)
    return reconstruction_loss(out.x_hat, target, tcfg.loss)


@torch.no_grad()
def _evaluate(model: Autoencoder, x_in: torch.Tensor, target: torch.Tensor, tcfg: TrainConfig, device, batch: int = 1024) -> dict[str, float]:
    model.eval()
    loss_sum, se_sum, n, elbo_sum = 0.0, 0.0, 0, 0.0
    for i in range(0, len(x_in), batch):
        xb, tb = x_in[i : i + batch].to(device), target[i : i + batch].to(device)
        out = model(xb)
        loss_sum += float(_loss(model, out, tb, tcfg)) * len(xb)
        se_sum += float(((out.x_hat - tb) ** 2).mean()) * len(xb)
        if model.variational:
            recon = reconstruction_loss(out.x_hat, tb, tcfg.loss, per_sample_sum=True)
            elbo_sum += -float(recon + kl_divergence(out.mean, out.log_var)) * len(xb)
        n += len(xb)
    result = {"loss": loss_sum / n, "mse": se_sum / n}
    if model.variational:
        result["elbo"] = elbo_sum / n
    return result


def _save_resume_state(run_dir: Path, model, opt, sched, state: dict) -> None:
    save_weights(model, run_dir / "last.safetensors")
    tensors, groups = {}, opt.state_dict()
    for idx, pstate in groups["state"].items():
        for name, value in pstate.items():
            tensors[f"{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    save_file(tensors, str(run_dir / "optimizer.safetensors.tmp"))
    (run_dir / "optimizer.safetensors.tmp").replace(run_dir / "optimizer.safetensors")
    state = dict(state, param_groups=groups["param_groups"], scheduler=sched.state_dict())
    atomic_write_text(run_dir / "state.json", json.dumps(state))


def _load_resume_state(run_dir: Path, model, opt, sched) -> dict:
    needed = ("state.json", "last.safetensors", "optimizer.safetensors")
    missing = [name for name in needed if not (run_dir / name).is_file()]
    if missing:
        raise ConfigError(f"cannot --resume {run_dir}: {', '.join(missing)} missing (no earlier run state there)")
    try:
        state = json.loads((run_dir / "state.json").read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"cannot --resume {run_dir}: state.json is not valid JSON ({exc})") from None
    load_weights(model, run_dir / "last.safetensors")
    tensors = load_file(str(run_dir / "optimizer.safetensors"))
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        opt_state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": opt_state, "param_groups": state.pop("param_groups")})
    sched.load_state_dict(state.pop("scheduler"))
    return state


_RUN_FILES = ("weights.safetensors", "last.safetensors", "optimizer.safetensors", "state.json", "metrics.json",
              "loss.png", "reconstructions.png")  # what a run folder holds besides config.json


def _progress(total: int, enabled: bool):
    import click

    return click.progressbar(length=total, label="training", file=sys.stderr, show_eta=True,
                             item_show_func=lambda s: s, width=24) if enabled else None


def train(
    data: str = "digits",
    model: str = "mlp",
    out: str | Path | None = None,
    *,
    hidden: str | tuple[int, ...] | None = None,
    code_size: int | None = None,
    channels: str | tuple[int, ...] = (16, 32),
    activation: str = "relu",
    output_activation: str | None = None,
    code_activation: str | None = None,
    loss: str | None = None,
    noise: str | None = None,
    augment_shift: int = 0,
    epochs: int = 50,
    batch_size: int = 64,
    lr: float = 5e-3,
    beta: float = 1.0,
    patience: int = 8,
    seed: int = 0,
    val_fraction: float = 0.1,
    split: str = "random",
    resize: tuple[int, int] | None = None,
    device: str = "auto",
    latent_bits: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train an autoencoder and write a run folder; see the module docstring for its files.

    Example::

        result = edgeae.train("digits", model="conv", code_size=16, epochs=20, out="runs/digits")
        print(result.metrics["val_psnr"])
    """
    log = log or (lambda msg: None)
    run_dir = Path(out) if out is not None else None
    if resume:
        if run_dir is None or not (run_dir / CONFIG_FILE).is_file():
            raise ConfigError(f"--resume needs --out pointing at an earlier run folder (no {CONFIG_FILE} in {run_dir})")
        cfg = RunConfig.load(run_dir / CONFIG_FILE)
        more_epochs = epochs > cfg.train.epochs
        cfg.train.epochs = max(cfg.train.epochs, epochs)
        dataset = load_dataset(cfg.data.source, cfg.data.resize)
        split_data, _ = prepare_data(dataset, cfg.data, cfg.normalization)
    else:
        dataset = load_dataset(data, resize)
        data_cfg = DataConfig(source=str(data), format=dataset.format, sample_shape=dataset.x.shape[1:],
                              is_image=dataset.is_image, resize=resize, val_fraction=val_fraction, split=split, seed=seed)
        split_data, norm = prepare_data(dataset, data_cfg)
        data_cfg.n_train, data_cfg.n_val = len(split_data.train), len(split_data.val)
        shape = tuple(dataset.x.shape[1:])
        size = math.prod(shape)
        code = code_size or default_code_size(size)
        in_unit = bool(split_data.train.min() >= 0 and split_data.train.max() <= 1)
        mcfg = ModelConfig(
            kind=model, input_shape=shape, code_size=code,
            hidden=parse_int_list(hidden, "hidden") if hidden else default_hidden(size, code),
            channels=channels, activation=activation,
            output_activation=output_activation or ("sigmoid" if in_unit else "identity"),
            code_activation=code_activation or ("sigmoid" if latent_bits else "identity"),
        )
        # A VAE's KL term swamps a per-pixel MSE on [0, 1] data (posterior collapse): BCE is the
        # likelihood that keeps both terms in proportion, so it is the VAE default there.
        loss = loss or ("bce" if mcfg.is_variational and in_unit else "mse")
        if augment_shift and not dataset.is_image:
            raise ConfigError("--augment-shift moves image pixels; this data set holds vectors, not images")
        tcfg = TrainConfig(loss=loss, epochs=epochs, batch_size=batch_size, lr=lr, beta=beta, noise=noise,
                           augment_shift=augment_shift,
                           patience=patience, seed=seed, device=device, latent_bits=latent_bits)
        cfg = RunConfig(model=mcfg, data=data_cfg, normalization=norm, train=tcfg)
        check_loss_targets(loss, float(split_data.train.min()), float(split_data.train.max()), mcfg.output_activation)
        run_dir = run_dir or default_run_dir(data, model, code)
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--out {run_dir} is a file; give a folder for the run")
        if run_dir.exists() and any(run_dir.iterdir()):
            if not overwrite:
                raise ConfigError(
                    f"{run_dir} is not empty; choose another --out, --resume to continue that run, or --overwrite"
                )
            for name in _RUN_FILES:  # an earlier run's results must not pass for this run's
                (run_dir / name).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    tcfg = cfg.train
    torch.manual_seed(tcfg.seed)
    dev = _resolve_device(tcfg.device)
    net = build_model(cfg.model, tcfg.latent_bits).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=tcfg.epochs, eta_min=tcfg.lr / 20)
    state = {"epoch": 0, "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0, "history": []}
    if resume:
        state.update(_load_resume_state(run_dir, net, opt, sched))
        sched.T_max = tcfg.epochs  # the cosine runs over the (possibly raised) total, not the old one
        if more_epochs:
            state["bad_epochs"] = 0  # more epochs asked for: early stopping starts counting afresh
        net.to(dev)
    cfg.save(run_dir / CONFIG_FILE)

    noise_spec = parse_noise(tcfg.noise)
    lo, hi = float(split_data.train.min()), float(split_data.train.max())
    gen = torch.Generator()
    val_in = apply_noise(split_data.val, noise_spec, torch.Generator().manual_seed(tcfg.seed + 7), lo, hi)
    n_train = len(split_data.train)
    peak = _peak(cfg, split_data.val)
    # Small data sets live on the training device once, instead of one copy per batch.
    on_device = dev.type != "cpu" and split_data.train.nbytes <= _MAX_DEVICE_DATA_BYTES
    train_x = split_data.train.to(dev) if on_device else split_data.train
    # A last batch of a single sample is skipped (it moves to another position next epoch):
    # batch normalization cannot train on one sample, and one sample is a noisy step anyway.
    steps = n_train // tcfg.batch_size + (1 if n_train % tcfg.batch_size > 1 else 0)
    warmup = min(steps, _WARMUP_STEPS)
    bar = _progress(steps * (tcfg.epochs - state["epoch"]), progress)
    interrupted, start = False, time.perf_counter()
    try:
        if bar is not None:
            bar.__enter__()
        for epoch in range(state["epoch"] + 1, tcfg.epochs + 1):
            net.train()
            net.set_training_progress((epoch - 1) / tcfg.epochs)
            # Every epoch's randomness derives from (seed, epoch), so a resumed run continues
            # exactly as an uninterrupted one would.
            gen.manual_seed(tcfg.seed * 100_003 + epoch)
            torch.manual_seed(tcfg.seed * 100_003 + epoch)
            perm = torch.randperm(n_train, generator=gen)
            total = 0.0
            for b in range(steps):
                if epoch == 1 and b < warmup:
                    # Linear learning-rate warm-up over the first steps: Adam's first, poorly
                    # scaled updates at the full rate can kill every ReLU of a wide layer, after
                    # which the network outputs a constant and never recovers.
                    for group in opt.param_groups:
                        group["lr"] = tcfg.lr * (b + 1) / warmup
                idx = perm[b * tcfg.batch_size : (b + 1) * tcfg.batch_size]
                target = train_x[idx.to(train_x.device)].to(dev)
                if tcfg.augment_shift:
                    target = random_shift(target, tcfg.augment_shift, gen)
                xb = apply_noise(target, noise_spec, gen, lo, hi)
                loss_value = _loss(net, net(xb), target, tcfg)
                if not torch.isfinite(loss_value):
                    raise TrainingError(
                        f"the loss became {loss_value.item()} at epoch {epoch}, batch {b + 1}; lower --lr "
                        f"(now {tcfg.lr:g}) or check the data. The best checkpoint so far is kept in {run_dir}"
                    )
                opt.zero_grad(set_to_none=True)
                loss_value.backward()
                opt.step()
                batch_loss = loss_value.item()
                total += batch_loss * len(idx)
                if bar is not None:
                    bar.update(1, f"epoch {epoch}/{tcfg.epochs} loss {batch_loss:.4g} val {state['best_val']:.4g}")
            sched.step()
            val = _evaluate(net, val_in, split_data.val, tcfg, dev)
            row = {"epoch": epoch, "train_loss": total / n_train, "val_loss": val["loss"],
                   "val_psnr": psnr(val["mse"], peak), "lr": opt.param_groups[0]["lr"]}
            state["history"].append(row)
            state["epoch"] = epoch
            if val["loss"] < state["best_val"]:
                state.update(best_val=val["loss"], best_epoch=epoch, bad_epochs=0)
                save_weights(net, run_dir / WEIGHTS_FILE)
            else:
                state["bad_epochs"] += 1
            _save_resume_state(run_dir, net, opt, sched, state)
            if bar is None:
                log(f"epoch {epoch:3d}  loss {row['train_loss']:.5f}  val {val['loss']:.5f}  psnr {row['val_psnr']:.2f} dB")
            if state["bad_epochs"] >= tcfg.patience:
                log(f"early stop: no validation improvement for {tcfg.patience} epochs")
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if not (run_dir / WEIGHTS_FILE).is_file():
        raise TrainingError(f"training stopped before the first epoch finished; nothing was saved in {run_dir}")
    load_weights(net, run_dir / WEIGHTS_FILE)
    net = net.cpu().eval()
    metrics = _final_metrics(net, split_data, val_in, cfg, state, time.perf_counter() - start, interrupted)
    metrics["device"] = dev.type
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    _write_pictures(run_dir, net, split_data, val_in, cfg, state["history"])
    return TrainResult(run_dir, cfg, metrics, net, interrupted)


def _peak(cfg: RunConfig, target: torch.Tensor) -> float:
    """PSNR peak: 1 for data in [0, 1], else the range of the validation targets."""
    return psnr_peak(cfg.normalization.mode, target.numpy())


def _final_metrics(net, split_data: _Split, val_in, cfg: RunConfig, state, seconds: float, interrupted: bool) -> dict:
    tcfg = cfg.train
    val = _evaluate(net, val_in, split_data.val, tcfg, "cpu")
    peak = _peak(cfg, split_data.val)
    metrics: dict[str, Any] = {
        "epochs_run": state["epoch"], "best_epoch": state["best_epoch"], "seconds": round(seconds, 2),
        "interrupted": interrupted, "val_loss": val["loss"], "val_mse": val["mse"],
        "val_psnr": psnr(val["mse"], peak), "psnr_peak": peak,
        "n_train": len(split_data.train), "n_val": len(split_data.val), "history": state["history"],
    }
    if "elbo" in val:
        metrics["val_elbo"] = val["elbo"]
    if tcfg.noise:
        noisy_mse = float(((val_in - split_data.val) ** 2).mean())
        metrics["val_psnr_noisy"] = psnr(noisy_mse, peak)
        metrics["val_psnr_denoised"] = metrics["val_psnr"]
        clean = _evaluate(net, split_data.val, split_data.val, tcfg, "cpu")
        metrics["val_psnr_clean_input"] = psnr(clean["mse"], peak)
    return metrics


def _write_pictures(run_dir: Path, net, split_data: _Split, val_in, cfg: RunConfig, history: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if history:
        fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["train_loss"] for h in history], label="train")
        ax.plot(epochs, [h["val_loss"] for h in history], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{cfg.train.loss} loss")
        ax.set_yscale("log")
        ax.legend()
        fig.tight_layout()
        fig.savefig(run_dir / "loss.png")
        plt.close(fig)
    if cfg.data.is_image and cfg.normalization.mode != "standardize":
        from edgeae.imageio import save_grid

        n = min(12, len(split_data.val))
        with torch.no_grad():
            recon = net(val_in[:n]).x_hat.numpy()
        rows = [split_data.val[:n].numpy()]
        if cfg.train.noise:
            rows.append(val_in[:n].numpy())
        rows.append(recon)
        save_grid(rows, run_dir / "reconstructions.png")


class _CallableModule(types.ModuleType):
    """Lets ``edgeae.train(...)`` call :func:`train` although ``edgeae.train`` is also this module."""

    def __call__(self, *args: Any, **kwargs: Any) -> TrainResult:
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
