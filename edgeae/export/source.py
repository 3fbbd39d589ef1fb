"""What an export writes and checks against: the torch modules and their held-out data.

::

    run folder (config.json + weights)  -> Source.from_run(...)     -> Source
    encoder/decoder modules + samples   -> Source.from_modules(...) -> Source
                                                     Source -> pipeline.write_bundle

Both constructors take keyword arguments only, so the many array fields of a
:class:`Source` are never matched by position.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgeae.config import CONV_KINDS, Normalization
from edgeae.errors import ConfigError
from edgeae.runtime.metrics import psnr_peak
from edgeae.runtime.preprocess import Normalizer

__all__ = ["Source", "MAX_VALIDATION_SAMPLES", "MAX_CODEC_SAMPLES", "DEFAULT_CALIBRATION_SAMPLES"]

DEFAULT_CALIBRATION_SAMPLES = 512  # training samples for int8-static activation ranges
MAX_VALIDATION_SAMPLES = 2048  # held-out samples kept in memory for checks and PSNR
MAX_CODEC_SAMPLES = 20000  # training samples whose codes build the compression tables


@dataclass
class Source:
    """What to export and the data to check it with."""

    encoder: nn.Module  # x (B, *shape) -> code (B, K) | (mean, log_var)
    decoder: nn.Module  # code (B, K) -> x_hat (B, *shape)
    variational: bool  # encoder returns (mean, log_var)
    sample_shape: tuple[int, ...]  # one sample, no batch axis
    normalization: Normalization  # raw <-> model units
    kind: str  # mlp | conv | vae | conv-vae
    model: dict[str, Any]  # ModelConfig as a dict (may be empty for foreign modules)
    is_image: bool  # samples are (C, H, W) images
    val_x: np.ndarray  # (N, *shape) float32 held-out samples in model units
    val_raw: np.ndarray | None  # (N, *shape) the same samples raw (uint8 / float32)
    calib_x: np.ndarray | None  # (M, *shape) float32 training samples for int8-static
    calib_raw: np.ndarray | None  # (M, *shape) the same raw
    peak: float  # PSNR peak in model units
    codec_x: np.ndarray | None = None  # (K, *shape) training samples (model units) for codec tables
    codec_range: tuple[float, float] | None = None  # fixed code range of a quantization-trained model
    latent_bits: int | None = None  # bits the codes were quantized to in training (None: not)

    @classmethod
    def from_run(cls, *, run_dir: str | Path, data: str | Path | None = None,
                 calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES, raw_io: bool = False,
                 codec: bool = True) -> Source:
        """A run folder's model with held-out, calibration and (``codec``) codec-table samples.

        ``data`` overrides where the run's dataset is read from (default: the source in its
        config.json); held-out samples come from the run's own validation split. The data
        set is opened, not loaded: only those rows are read.
        """
        from edgeae.checkpoint import load_run
        from edgeae.rows import prepare_data

        if calibration_samples <= 0:
            raise ConfigError(f"calibration samples must be a positive integer, got {calibration_samples}")
        cfg, model = load_run(run_dir)
        split, _ = prepare_data(data if data is not None else cfg.data.source, cfg.data, cfg.normalization,
                                cfg.data.resize)
        norm, shape = cfg.normalization, tuple(cfg.model.input_shape)
        val_raw = np.ascontiguousarray(split.val.raw(slice(0, MAX_VALIDATION_SAMPLES))).reshape((-1, *shape))
        train_idx = np.linspace(0, len(split.train) - 1, min(calibration_samples, len(split.train))).astype(int)
        calib_x = split.train[train_idx].numpy().astype(np.float32)
        # raw calibration samples for the raw-I/O variants: invert the normalization
        calib_raw = Normalizer(norm, shape).denormalize(calib_x) if raw_io else None
        val_x = split.val[:MAX_VALIDATION_SAMPLES].numpy().astype(np.float32)
        codec_x = split.train[:MAX_CODEC_SAMPLES].numpy().astype(np.float32) if codec else None
        # A model trained with quantization in the loop decodes exactly the grid it learned on:
        # sigmoid codes rounded to 2**bits levels over [0, 1].
        bits = cfg.train.latent_bits
        return cls(encoder=model.encoder, decoder=model.decoder, variational=cfg.model.is_variational,
                   sample_shape=shape, normalization=norm, kind=cfg.model.kind, model=asdict(cfg.model),
                   is_image=cfg.data.is_image, val_x=val_x, val_raw=val_raw, calib_x=calib_x, calib_raw=calib_raw,
                   peak=psnr_peak(norm.mode, val_x), codec_x=codec_x, codec_range=(0.0, 1.0) if bits else None,
                   latent_bits=bits)

    @classmethod
    def from_modules(cls, *, encoder: nn.Module, decoder: nn.Module, example_input: Any,
                     calibration_data: Any = None, normalization: Normalization | None = None,
                     raw_io: bool = False, kind: str | None = None) -> Source:
        """Any encoder/decoder pair of torch modules, checked on ``example_input``.

        ``example_input``: real samples in model units, ``(N, *sample_shape)``;
        ``calibration_data``: training samples for int8-static. The code size, whether the
        encoder is variational (returns ``(mean, log_var)``) and, unless given, the model
        kind follow from running the encoder on two samples.
        """
        x = _as_array(example_input, "example_input")[:MAX_VALIDATION_SAMPLES]
        calib = None if calibration_data is None else _as_array(calibration_data, "calibration_data")
        encoder, decoder = encoder.eval(), decoder.eval()
        with torch.no_grad():
            out = encoder(torch.from_numpy(x[:2]))
        variational = isinstance(out, (tuple, list))
        if variational and len(out) != 2:
            raise ConfigError(f"encoder returns {len(out)} tensors; expected one code or (mean, log_var)")
        code_size = int((out[0] if variational else out).shape[1])
        shape = tuple(int(v) for v in x.shape[1:])
        if kind is None:
            family = CONV_KINDS if len(shape) == 3 else ("mlp", "vae")  # (plain, variational)
            kind = family[1] if variational else family[0]
        norm = normalization or Normalization()
        nz = Normalizer(norm, shape)
        return cls(encoder=encoder, decoder=decoder, variational=variational, sample_shape=shape,
                   normalization=norm, kind=kind, model={"code_size": code_size}, is_image=len(shape) == 3,
                   val_x=x, val_raw=nz.denormalize(x) if raw_io else None, calib_x=calib,
                   calib_raw=nz.denormalize(calib) if raw_io and calib is not None else None,
                   peak=psnr_peak(norm.mode, x))


def _as_array(value: Any, name: str) -> np.ndarray:
    """Samples (tensor or array-like) as contiguous float32 ``(N, *shape)``, N >= 1."""
    arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if arr.ndim < 2 or len(arr) == 0:
        raise ConfigError(f"{name} must be a batch of samples (N, *sample_shape) with N >= 1, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)
