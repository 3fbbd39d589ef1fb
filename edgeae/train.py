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
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeae import distributed as ddp
from edgeae.atomic import (
    atomic_write_text,
    clean_leftovers,
    commit_staging_dir,
    interrupt_handled,
    staging_dir,
)
from edgeae.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    load_resume_state,
    load_weights,
    save_resume_state,
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
from edgeae.errors import ConfigError, TrainingError
from edgeae.losses import check_loss_targets, kl_divergence, reconstruction_loss
from edgeae.models import Autoencoder, build_model, default_code_size, default_hidden
from edgeae.rows import Split, prepare_data
from edgeae.runtime.metrics import psnr_from_mse as psnr
from edgeae.runtime.metrics import psnr_peak

__all__ = ["TrainResult", "TrainProgress", "train", "apply_noise", "random_shift", "default_run_dir"]


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


@dataclass(frozen=True)
class TrainProgress:
    """What a ``progress`` callback of :func:`train` is told after every training batch."""

    step: int  # batches done by this call so far (1-based)
    total: int  # batches this call runs at most (early stopping may end sooner)
    epoch: int  # current epoch (1-based)
    epochs: int  # last epoch of the run
    loss: float  # this batch's training loss
    best_val: float  # best validation loss so far (inf before the first epoch ends)


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
        xb = x_in[i : i + batch].to(device)
        tb = xb if x_in is target else target[i : i + batch].to(device)  # clean inputs: read once
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


def train(
    data: str | Path | Any = "digits",
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
    signal: bool = False,
    window: int | None = None,
    hop: int | None = None,
    device: str = "auto",
    latent_bits: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: Callable[[TrainProgress], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train an autoencoder and write a run folder; see the module docstring for its files.

    ``data`` is a source path (see :mod:`edgeae.data`), a loaded :class:`edgeae.data.Dataset`
    or an array of samples: ``(N, C, T)`` signals (e.g. windows from :mod:`edgeae.data.tsfile`, each
    channel standardized with the training part's statistics), ``(N, D)`` vectors or
    ``(N, C, H, W)`` images. A run trained from memory is exported with ``export(..., data=)``
    given the same samples.

    Signal files (docs/timeseries.md): a UCR/UEA ``.ts`` file is read as ``(N, C, T)``
    cases; ``window=LENGTH`` (``hop=STEPS``) cuts a ``(T, C)`` recording (``.csv`` with one
    column per channel, 2-D ``.npy``) or each case into windows; ``signal=True`` reads a
    ``(N, C, T)`` ``.npy`` as signal windows (not grayscale images). Each channel is
    standardized with the training split's mean and std, and ``config.json`` records the
    windowing, so ``export`` and ``resume`` read the same windows again.

    ``progress`` is called after every batch (a progress bar, say); without it ``log``
    gets one line per epoch.

    Example::

        from edgeae.train import train

        result = train("digits", model="conv", code_size=16, epochs=20, out="runs/digits")
        print(result.metrics["val_psnr"])
    """
    log = log or (lambda msg: None)
    ctx = ddp.setup(device)  # under torchrun: join the process group (rank 0 writes, all train)
    try:
        result = _train(ctx, data, model, out, resume, overwrite, progress, log, epochs=epochs, hidden=hidden,
                        code_size=code_size, channels=channels, activation=activation,
                        output_activation=output_activation, code_activation=code_activation, loss=loss,
                        noise=noise, augment_shift=augment_shift, batch_size=batch_size, lr=lr, beta=beta,
                        patience=patience, seed=seed, val_fraction=val_fraction, split=split, resize=resize,
                        signal=signal, window=window, hop=hop, device=device, latent_bits=latent_bits)
    except BaseException:
        ddp.shutdown(ctx, wait=False)  # no barrier: the other ranks may be inside a collective call
        raise
    ddp.shutdown(ctx)
    return result


def _train(ctx: ddp.DistContext | None, data, model, out, resume, overwrite, progress, log, *, epochs,
           **options) -> TrainResult:
    """:func:`train` in one process of the job ``ctx`` (None: the only process)."""
    if ctx is not None and not ctx.is_main:
        progress, log = None, (lambda msg: None)  # one rank reports
    if resume:
        cfg, split_data, run_dir, more_epochs = _resume_config(out, epochs)
        where = run_dir
    else:
        cfg, split_data = _new_config(data, model, epochs=epochs, **options)
        dirs = _prepare_run_dir(out, cfg, overwrite) if ctx is None or ctx.is_main else None
        run_dir, where = ddp.broadcast_object(dirs, ctx)  # the others wait until rank 0 has prepared it
        more_epochs = False
    main = ctx is None or ctx.is_main
    try:
        loop = _Loop.start(cfg, split_data, where, resume, more_epochs, ctx)
        if loop.is_main:
            cfg.save(where / CONFIG_FILE)
        start = time.perf_counter()
        interrupted = _fit(loop, progress, log)
        result = _finish(loop, time.perf_counter() - start, interrupted)
    except BaseException as exc:
        if where == run_dir:
            raise
        if main:
            shutil.rmtree(where, ignore_errors=True)  # the earlier run stays as it was
        if isinstance(exc, TrainingError):
            raise TrainingError(_staged(str(exc), where, run_dir)) from None
        raise
    if where != run_dir:
        if main:
            commit_staging_dir(where, run_dir)
        result.run_dir = run_dir
    return result


def _staged(message: str, where: Path, run_dir: Path) -> str:
    """A failure message of a run built beside ``run_dir`` (now removed): what is left is the earlier run."""
    earlier = f"{run_dir} still holds the earlier run"
    for said in (f"The best checkpoint so far is kept in {where}", f"nothing was saved in {where}"):
        message = message.replace(said, earlier)
    return message.replace(str(where), str(run_dir))


def _resume_config(out: str | Path | None, epochs: int) -> tuple[RunConfig, Split, Path, bool]:
    """The saved settings of the run in ``out`` (epochs raised to ``epochs``) and its data."""
    run_dir = Path(out) if out is not None else None
    if run_dir is None or not (run_dir / CONFIG_FILE).is_file():
        raise ConfigError(f"--resume needs --out pointing at an earlier run folder (no {CONFIG_FILE} in {run_dir})")
    cfg = RunConfig.load(run_dir / CONFIG_FILE)
    more_epochs = epochs > cfg.train.epochs
    cfg.train.epochs = max(cfg.train.epochs, epochs)
    split_data, _ = prepare_data(cfg.data.source, cfg.data, cfg.normalization, cfg.data.resize)
    return cfg, split_data, run_dir, more_epochs


def _new_config(data: str, model: str, *, hidden, code_size, channels, activation, output_activation,
                code_activation, loss, noise, augment_shift, epochs, batch_size, lr, beta, patience, seed,
                val_fraction, split, resize, signal, window, hop, device, latent_bits) -> tuple[RunConfig, Split]:
    """Settings of a new run, defaults filled in from the data (sizes, activations, loss)."""
    from edgeae.data import SignalSpec

    spec = SignalSpec(bool(signal), window, hop)
    source, fmt, is_image, norm = _open_data(data, resize, val_fraction, split, seed, spec)
    data_cfg = DataConfig(source=str(data) if isinstance(data, (str, Path)) else source.path, format=fmt,
                          sample_shape=source.sample_shape, is_image=is_image, resize=resize,
                          signal=spec.active or fmt == "ts", window=spec.window, hop=spec.hop,
                          val_fraction=val_fraction, split=split, seed=seed)
    split_data, norm = prepare_data(source, data_cfg, norm)
    data_cfg.n_train, data_cfg.n_val = len(split_data.train), len(split_data.val)
    shape = tuple(source.sample_shape)
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
    if augment_shift and not is_image:
        raise ConfigError("--augment-shift moves image pixels; this data set holds vectors, not images")
    tcfg = TrainConfig(loss=loss, epochs=epochs, batch_size=batch_size, lr=lr, beta=beta, noise=noise,
                       augment_shift=augment_shift,
                       patience=patience, seed=seed, device=device, latent_bits=latent_bits)
    check_loss_targets(loss, float(split_data.train.min()), float(split_data.train.max()), mcfg.output_activation)
    return RunConfig(model=mcfg, data=data_cfg, normalization=norm, train=tcfg), split_data


def _open_data(data, resize, val_fraction: float, split: str, seed: int, spec):
    """``(rows, format, is_image, normalization or None)`` of a path, a Dataset or an array.

    Signals ``(N, C, T)`` (a signal file, or in memory) get one mean and std per channel,
    fitted on the samples the split gives to training
    (:func:`edgeae.data.tsfile.fit_channel_normalization`); other data leave the choice to
    :func:`edgeae.rows.prepare_data` (None).
    """
    from edgeae.data import (
        ArraySource,
        Dataset,
        channel_normalization,
        open_training_source,
        split_indices,
    )

    if not isinstance(data, (Dataset, np.ndarray)):
        rows, fmt, is_image = open_training_source(data, resize, spec)  # a .npy is memory-mapped, not read
        if not (spec.active or fmt == "ts"):
            return rows, fmt, is_image, None
        train_idx, _ = split_indices(len(rows), val_fraction, seed, split == "ordered")
        return rows, fmt, is_image, channel_normalization(rows, train_idx)
    if spec.active:
        raise ConfigError("signal / window / hop read signal files; cut arrays in memory with "
                          "edgeae.data.tsfile.window_series before training")
    if isinstance(data, np.ndarray):
        if data.dtype.kind not in "biuf" or data.ndim not in (2, 3, 4) or len(data) == 0:
            raise ConfigError(f"train on an array of samples: (N, C, T) signals, (N, D) vectors or (N, C, H, W) "
                              f"images with N >= 1, got a {data.dtype} array of shape {data.shape}")
        x = data if data.dtype == np.uint8 else np.ascontiguousarray(data, dtype=np.float32)
        data = Dataset(x, None, "array", "array", x.ndim == 4)
    if resize is not None:
        raise ConfigError("--resize applies to image files; resize samples in memory before training")
    norm = None
    if data.x.ndim == 3 and not data.is_image and data.x.dtype.kind == "f":
        from edgeae.data.tsfile import fit_channel_normalization

        train_idx, _ = split_indices(len(data), val_fraction, seed, split == "ordered")
        norm = fit_channel_normalization(data.x[train_idx])
    rows = ArraySource.of(data.x, data.source)
    return rows, data.format, data.is_image, norm


def _prepare_run_dir(out: str | Path | None, cfg: RunConfig, overwrite: bool) -> tuple[Path, Path]:
    """-> (run folder, folder to write the run in).

    A new run is written in place (each file atomically, so ``--resume`` can continue a
    run that was stopped). One that replaces an earlier run (``--overwrite``, only over a
    folder holding config.json) is built in a staging folder beside it and swapped in when
    it ends (:func:`edgeae.atomic.commit_staging_dir`): a run that fails or is killed
    leaves the earlier one as it was.
    """
    run_dir = Path(out) if out is not None else default_run_dir(cfg.data.source, cfg.model.kind, cfg.model.code_size)
    clean_leftovers(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} is a file; give a folder for the run")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"{run_dir} is not empty; choose another --out, --resume to continue that run, or --overwrite"
            )
        if not (run_dir / CONFIG_FILE).is_file():
            raise ConfigError(f"{run_dir} is not an edgeae run folder (no {CONFIG_FILE}); --overwrite only "
                              "replaces runs: choose another --out")
        return run_dir, staging_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, run_dir


@dataclass
class _Loop:
    """Everything the epochs share: model, optimizer, schedule, data on its device, run state."""

    cfg: RunConfig
    run_dir: Path
    data: Split  # normalized train / validation samples, read on demand
    dev: torch.device  # training device
    net: Autoencoder
    opt: torch.optim.Optimizer
    sched: Any  # cosine learning-rate schedule
    state: dict[str, Any]  # epoch, best_val, best_epoch, bad_epochs, history (saved for --resume)
    train_x: Any  # training samples: a tensor on the device when small enough, else on-demand Rows
    val_in: torch.Tensor  # validation inputs (noisy for a denoiser, fixed seed)
    noise: tuple[str, float] | None  # parsed --noise
    lo: float  # smallest training value (noise clamps to [lo, hi])
    hi: float  # largest training value
    steps: int  # batches per epoch (per rank)
    peak: float  # PSNR peak in model units
    ctx: ddp.DistContext | None = None  # the torchrun job this process belongs to (None: alone)
    fwd: Any = None  # the training forward: DistributedDataParallel(net) in a job, else net
    batch: int = 0  # samples per step on this rank (the global batch over the ranks)
    best_state: dict | None = None  # best weights so far, in memory (every rank, for the result)

    @property
    def is_main(self) -> bool:
        return self.ctx is None or self.ctx.is_main

    @classmethod
    def start(cls, cfg: RunConfig, data: Split, run_dir: Path, resume: bool, more_epochs: bool,
              ctx: ddp.DistContext | None = None) -> _Loop:
        """Build the model and optimizer (restored on ``resume``) and place the data."""
        tcfg = cfg.train
        torch.manual_seed(tcfg.seed)
        dev = _resolve_device(tcfg.device)
        net = build_model(cfg.model, tcfg.latent_bits).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=tcfg.epochs, eta_min=tcfg.lr / 20)
        state = {"epoch": 0, "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0, "history": []}
        if resume:
            state.update(load_resume_state(run_dir, net, opt, sched))
            sched.T_max = tcfg.epochs  # the cosine runs over the (possibly raised) total, not the old one
            if more_epochs:
                state["bad_epochs"] = 0  # more epochs asked for: early stopping starts counting afresh
            net.to(dev)
        state = ddp.broadcast_object(state, ctx)  # every rank continues from rank 0's state
        noise = parse_noise(tcfg.noise)
        lo, hi = float(data.train.min()), float(data.train.max())
        # Clean validation inputs are read a batch at a time; noisy ones are drawn once, in memory.
        val_in = data.val if noise is None else apply_noise(
            data.val.load(), noise, torch.Generator().manual_seed(tcfg.seed + 7), lo, hi)
        # Small data sets live on the training device once, instead of one copy per batch;
        # otherwise batches are read (memory-mapped) and normalized as the loop asks for them.
        on_device = dev.type != "cpu" and data.train.nbytes <= _MAX_DEVICE_DATA_BYTES
        n = len(data.train) if ctx is None else -(-len(data.train) // ctx.world)  # samples per rank
        batch = ddp.local_batch(tcfg.batch_size, ctx)
        # A last batch of a single sample is skipped (it moves to another position next epoch):
        # batch normalization cannot train on one sample, and one sample is a noisy step anyway.
        steps = n // batch + (1 if n % batch > 1 else 0)
        return cls(cfg, run_dir, data, dev, net, opt, sched, state, data.train.load().to(dev) if on_device else data.train,
                   val_in, noise, lo, hi, steps, _peak(cfg, data.val), ctx, ddp.wrap(net, ctx, dev), batch)


def _fit(loop: _Loop, progress: Callable[[TrainProgress], None] | None, log: Callable[[str], None]) -> bool:
    """Run epochs until the last one or early stopping; True when Ctrl-C stopped it."""
    tcfg, state = loop.cfg.train, loop.state
    total = loop.steps * (tcfg.epochs - state["epoch"])
    done = 0
    try:
        for epoch in range(state["epoch"] + 1, tcfg.epochs + 1):
            def step(loss: float, e: int = epoch) -> None:
                nonlocal done
                done += 1
                if progress is not None:
                    progress(TrainProgress(done, total, e, tcfg.epochs, loss, state["best_val"]))

            row = _epoch(loop, epoch, step)
            if progress is None:
                log(f"epoch {epoch:3d}  loss {row['train_loss']:.5f}  val {row['val_loss']:.5f}  "
                    f"psnr {row['val_psnr']:.2f} dB")
            if state["bad_epochs"] >= tcfg.patience:
                log(f"early stop: no validation improvement for {tcfg.patience} epochs")
                break
    except KeyboardInterrupt:
        interrupt_handled()  # stopped on purpose: the best weights so far are saved as the run
        return True
    return False


def _epoch(loop: _Loop, epoch: int, step: Callable[[float], None]) -> dict[str, float]:
    """Train one epoch, validate, keep the best weights and save the resume state; the history row."""
    tcfg, state = loop.cfg.train, loop.state
    loop.net.train()
    loop.net.set_training_progress((epoch - 1) / tcfg.epochs)
    total = ddp.sum_all(_train_batches(loop, epoch, step), loop.ctx)
    loop.sched.step()
    val = ddp.broadcast_object(_evaluate(loop.net, loop.val_in, loop.data.val, tcfg, loop.dev), loop.ctx)
    seen = len(loop.data.train) if loop.ctx is None else loop.ctx.world * loop.steps * loop.batch
    row = {"epoch": epoch, "train_loss": total / min(seen, len(loop.data.train)), "val_loss": val["loss"],
           "val_psnr": psnr(val["mse"], loop.peak), "lr": loop.opt.param_groups[0]["lr"]}
    state["history"].append(row)
    state["epoch"] = epoch
    if val["loss"] < state["best_val"]:
        state.update(best_val=val["loss"], best_epoch=epoch, bad_epochs=0)
        loop.best_state = {k: v.detach().clone() for k, v in loop.net.state_dict().items()}
        if loop.is_main:
            save_weights(loop.net, loop.run_dir / WEIGHTS_FILE)
    else:
        state["bad_epochs"] += 1
    if loop.is_main:
        save_resume_state(loop.run_dir, loop.net, loop.opt, loop.sched, state)
    return row


def _train_batches(loop: _Loop, epoch: int, step: Callable[[float], None]) -> float:
    """One pass over the shuffled training data; the summed (per-sample) training loss."""
    tcfg, net, opt = loop.cfg.train, loop.net, loop.opt
    # Every epoch's randomness derives from (seed, epoch), so a resumed run continues
    # exactly as an uninterrupted one would.
    rank = 0 if loop.ctx is None else loop.ctx.rank
    gen = torch.Generator().manual_seed(tcfg.seed * 100_003 + epoch + 7_919 * rank)  # per-rank noise
    torch.manual_seed(tcfg.seed * 100_003 + epoch + 7_919 * rank)
    if loop.ctx is None:
        perm = torch.randperm(len(loop.data.train), generator=gen)
    else:  # this rank's shard of one shared shuffle
        perm = ddp.shard(len(loop.data.train), epoch, tcfg.seed, loop.ctx)
    bs = loop.batch
    warmup = min(loop.steps, _WARMUP_STEPS)
    total = 0.0
    for b in range(loop.steps):
        if epoch == 1 and b < warmup:
            # Linear learning-rate warm-up over the first steps: Adam's first, poorly
            # scaled updates at the full rate can kill every ReLU of a wide layer, after
            # which the network outputs a constant and never recovers.
            for group in opt.param_groups:
                group["lr"] = tcfg.lr * (b + 1) / warmup
        idx = perm[b * bs : (b + 1) * bs]
        target = loop.train_x[idx.to(loop.train_x.device)].to(loop.dev)
        if tcfg.augment_shift:
            target = random_shift(target, tcfg.augment_shift, gen)
        xb = apply_noise(target, loop.noise, gen, loop.lo, loop.hi)
        loss_value = _loss(net, loop.fwd(xb), target, tcfg)
        if not torch.isfinite(loss_value):
            raise TrainingError(
                f"the loss became {loss_value.item()} at epoch {epoch}, batch {b + 1}; lower --lr "
                f"(now {tcfg.lr:g}) or check the data. The best checkpoint so far is kept in {loop.run_dir}"
            )
        opt.zero_grad(set_to_none=True)
        loss_value.backward()
        opt.step()
        batch_loss = loss_value.item()
        total += batch_loss * len(idx)
        step(batch_loss)
    return total


def _finish(loop: _Loop, seconds: float, interrupted: bool) -> TrainResult:
    """Reload the best weights, write metrics.json and the pictures; the result."""
    run_dir = loop.run_dir
    if loop.best_state is not None:
        loop.net.load_state_dict(loop.best_state)
    elif (run_dir / WEIGHTS_FILE).is_file():  # resumed, and no better epoch since
        load_weights(loop.net, run_dir / WEIGHTS_FILE)
    else:
        raise TrainingError(f"training stopped before the first epoch finished; nothing was saved in {run_dir}")
    net = loop.net.cpu().eval()
    digests = ddp.gather_objects(ddp.params_digest(net), loop.ctx)
    metrics = _final_metrics(net, loop.data, loop.val_in, loop.cfg, loop.state, seconds, interrupted)
    metrics["device"] = loop.dev.type
    if loop.ctx is not None:  # proof that DDP kept every rank's weights identical
        metrics.update(processes=loop.ctx.world, backend=loop.ctx.backend, rank_params_sha256=digests)
    if loop.is_main:
        atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        _write_pictures(run_dir, net, loop.data, loop.val_in, loop.cfg, loop.state["history"])
    return TrainResult(run_dir, loop.cfg, metrics, net, interrupted)


def _peak(cfg: RunConfig, target) -> float:
    """PSNR peak: 1 for data in [0, 1], else the range of the validation targets."""
    return psnr_peak(cfg.normalization.mode, np.array([target.min(), target.max()], dtype=np.float32))


def _final_metrics(net, split_data: Split, val_in, cfg: RunConfig, state, seconds: float, interrupted: bool) -> dict:
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
        noisy_mse = float(((val_in - split_data.val.load()) ** 2).mean())
        metrics["val_psnr_noisy"] = psnr(noisy_mse, peak)
        metrics["val_psnr_denoised"] = metrics["val_psnr"]
        clean = _evaluate(net, split_data.val, split_data.val, tcfg, "cpu")
        metrics["val_psnr_clean_input"] = psnr(clean["mse"], peak)
    return metrics


def _write_pictures(run_dir: Path, net, split_data: Split, val_in, cfg: RunConfig, history: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgeae.outputs import save_figure

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
        save_figure(fig, run_dir / "loss.png")
        plt.close(fig)
    if cfg.data.is_image and cfg.normalization.mode != "standardize":
        from edgeae.data.imageio import save_grid

        n = min(12, len(split_data.val))
        with torch.no_grad():
            recon = net(val_in[:n]).x_hat.numpy()
        rows = [split_data.val[:n].numpy()]
        if cfg.train.noise:
            rows.append(val_in[:n].numpy())
        rows.append(recon)
        save_grid(rows, run_dir / "reconstructions.png")
