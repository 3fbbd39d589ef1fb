"""Autoencoder models: MLP, convolutional (images, or 1-D over signals), and variational.

Every model follows one contract so that export can split it::

    x -> encoder -> code -> decoder -> x_hat        (B, *input_shape) -> (B, K) -> (B, *input_shape)

``input_shape`` is ``(D,)`` for vectors, ``(C, H, W)`` for images (``conv``) and ``(C, T)``
for multi-channel signals (``conv1d``: channels are sensor axes, strided along time).

- ``model.encoder(x)`` returns the code ``(B, K)``; for VAEs it returns ``(mean, log_var)``
  and the deterministic code is the mean.
- ``model.decoder(code)`` returns the reconstruction in model units ``(B, *input_shape)``.
- ``model(x)`` returns :class:`AEOutput` for training (reparameterized code for VAEs,
  noisy (training) or rounded (evaluation) code when ``latent_bits`` is set).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgeae.config import ModelConfig
from edgeae.errors import ConfigError

__all__ = [
    "AEOutput",
    "Autoencoder",
    "build_model",
    "default_hidden",
    "default_code_size",
    "conv_sizes",
]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "identity": nn.Identity,
}


def _act(name: str) -> nn.Module:
    return _ACTIVATIONS[name]()


def default_code_size(input_size: int) -> int:
    """The textbook uses a 32-wide code for 784 inputs; small inputs get a quarter of their size."""
    return min(32, max(2, input_size // 4))


def default_hidden(input_size: int, code_size: int) -> tuple[int, ...]:
    """The textbook 784-128-code shape, scaled: one hidden layer of ~16% of the input, at least 64."""
    width = max(64, 2 * code_size, int(round(input_size * 128 / 784 / 16)) * 16)
    return (width,)


def conv_sizes(size: int, layers: int) -> list[int]:
    """Spatial sizes after each stride-2 conv (kernel 3, padding 1): ``s -> ceil(s / 2)``."""
    sizes = [size]
    for _ in range(layers):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


@dataclass
class AEOutput:
    """What ``model(x)`` returns while training."""

    x_hat: torch.Tensor  # (B, *input_shape) reconstruction in model units
    code: torch.Tensor  # (B, K) code fed to the decoder
    mean: torch.Tensor | None = None  # (B, K) VAE posterior mean
    log_var: torch.Tensor | None = None  # (B, K) VAE posterior log-variance


class _MLPBody(nn.Sequential):
    def __init__(self, sizes: list[int], activation: str):
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), _act(activation)]
        super().__init__(*layers)


class _ConvBody(nn.Sequential):
    """Stride-2 convolutions: (B, C, H, W) -> (B, channels[-1] * h * w)."""

    def __init__(self, in_channels: int, channels: tuple[int, ...], activation: str):
        layers: list[nn.Module] = []
        prev = in_channels
        for ch in channels:
            layers += [nn.Conv2d(prev, ch, 3, stride=2, padding=1), _act(activation)]
            prev = ch
        layers.append(nn.Flatten())
        super().__init__(*layers)


_KERNEL_1D = 5  # conv1d kernel (stride 2, padding 2: T -> ceil(T / 2), as conv_sizes): 5 steps see a
# sensor's local shape at every level; the transposed convolutions mirror it


class _Conv1dBody(nn.Sequential):
    """Stride-2 1-D convolutions over time: (B, C, T) -> (B, channels[-1] * t)."""

    def __init__(self, in_channels: int, channels: tuple[int, ...], activation: str):
        layers: list[nn.Module] = []
        prev = in_channels
        for ch in channels:
            layers += [nn.Conv1d(prev, ch, _KERNEL_1D, stride=2, padding=_KERNEL_1D // 2), _act(activation)]
            prev = ch
        layers.append(nn.Flatten())
        super().__init__(*layers)


def _conv1d_decoder(cfg: ModelConfig) -> list[nn.Module]:
    """code (B, K) -> (B, C, T): a linear layer to the deepest level, then transposed 1-D convs."""
    c, t = cfg.input_shape
    n = len(cfg.channels)
    ts = conv_sizes(t, n)
    chans = list(cfg.channels)
    layers: list[nn.Module] = [nn.Linear(cfg.code_size, chans[-1] * ts[-1]), _act(cfg.activation),
                               nn.Unflatten(1, (chans[-1], ts[-1]))]
    for i in range(n - 1, -1, -1):
        out_ch = chans[i - 1] if i > 0 else c
        pad = ts[i] - (2 * ts[i + 1] - 1)  # output_padding restoring the encoder's length at this level
        layers.append(nn.ConvTranspose1d(chans[i], out_ch, _KERNEL_1D, stride=2, padding=_KERNEL_1D // 2,
                                         output_padding=pad))
        if i > 0:
            layers.append(_act(cfg.activation))
    return layers


class Encoder(nn.Module):
    """x (B, *input_shape) -> code (B, K), or (mean, log_var) for a VAE."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.variational = cfg.is_variational
        if cfg.is_conv1d:
            c, t = cfg.input_shape
            self.body: nn.Module = _Conv1dBody(c, cfg.channels, cfg.activation)
            feat = cfg.channels[-1] * conv_sizes(t, len(cfg.channels))[-1]
        elif cfg.is_conv:
            c, h, w = cfg.input_shape
            hs, ws = conv_sizes(h, len(cfg.channels)), conv_sizes(w, len(cfg.channels))
            self.body = _ConvBody(c, cfg.channels, cfg.activation)
            feat = cfg.channels[-1] * hs[-1] * ws[-1]
        else:
            self.body = nn.Sequential(nn.Flatten(), _MLPBody([cfg.input_size, *cfg.hidden], cfg.activation))
            feat = cfg.hidden[-1] if cfg.hidden else cfg.input_size
        self.head = nn.Linear(feat, cfg.code_size)
        if self.variational:
            self.log_var_head = nn.Linear(feat, cfg.code_size)
        # Bounded code activations saturate within the first epoch when the head's outputs
        # drift (every sample then gets the same code); batch normalization keeps them in
        # the activation's working range. In eval mode it is a fixed affine map (exports as such).
        bounded = cfg.code_activation in ("sigmoid", "tanh")
        self.code_act = nn.Sequential(nn.BatchNorm1d(cfg.code_size), _act(cfg.code_activation)) if bounded \
            else _act(cfg.code_activation)

    def forward(self, x: torch.Tensor):
        h = self.body(x)
        if self.variational:
            return self.head(h), self.log_var_head(h)  # (B, K), (B, K)
        return self.code_act(self.head(h))  # (B, K)


class Decoder(nn.Module):
    """code (B, K) -> x_hat (B, *input_shape)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.is_conv1d:
            self.net = nn.Sequential(*_conv1d_decoder(cfg), _act(cfg.output_activation))
        elif cfg.is_conv:
            c, h, w = cfg.input_shape
            n = len(cfg.channels)
            hs, ws = conv_sizes(h, n), conv_sizes(w, n)
            chans = list(cfg.channels)
            layers: list[nn.Module] = [
                nn.Linear(cfg.code_size, chans[-1] * hs[-1] * ws[-1]),
                _act(cfg.activation),
                nn.Unflatten(1, (chans[-1], hs[-1], ws[-1])),
            ]
            for i in range(n - 1, -1, -1):
                out_ch = chans[i - 1] if i > 0 else c
                # ConvTranspose(k=3, s=2, p=1) maps s -> 2s - 1 + output_padding; pick the
                # padding that restores the encoder's size at this level exactly.
                pad = (hs[i] - (2 * hs[i + 1] - 1), ws[i] - (2 * ws[i + 1] - 1))
                layers.append(nn.ConvTranspose2d(chans[i], out_ch, 3, stride=2, padding=1, output_padding=pad))
                if i > 0:
                    layers.append(_act(cfg.activation))
            layers.append(_act(cfg.output_activation))
            self.net = nn.Sequential(*layers)
        else:
            hidden = cfg.decoder_hidden if cfg.decoder_hidden is not None else tuple(reversed(cfg.hidden))
            sizes = [cfg.code_size, *hidden]
            self.net = nn.Sequential(
                _MLPBody(sizes, cfg.activation),
                nn.Linear(sizes[-1], cfg.input_size),
                _act(cfg.output_activation),
                nn.Unflatten(1, cfg.input_shape),
            )

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code)


class _LatentQuantizer(nn.Module):
    """Quantization in the loop for codes in [0, 1] with ``2**bits`` levels.

    Training adds uniform noise of up to one quantization step (the usual differentiable
    proxy of rounding), scaled by ``strength``: at initialisation every sample's sigmoid
    code sits near 0.5, far inside one step, so full noise (or straight-through rounding)
    from the start lets the decoder ignore the code and training collapses to the mean
    sample. The trainer ramps ``strength`` from 0 to 1 over the first half of training.
    Evaluation rounds, so validation measures what the exported codec transmits.
    """

    def __init__(self, bits: int):
        super().__init__()
        self.levels = float(2**bits - 1)
        self.strength = 1.0  # share of the quantization noise applied while training

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        if self.training:
            return code + self.strength * (torch.rand_like(code) - 0.5) / self.levels
        return torch.round(code.clamp(0, 1) * self.levels) / self.levels


class Autoencoder(nn.Module):
    """An autoencoder with exportable ``encoder`` and ``decoder`` submodules.

    ``x -> encoder -> code [-> reparameterize (VAE, training)] [-> quantize (latent_bits)] -> decoder -> x_hat``
    """

    def __init__(self, cfg: ModelConfig, latent_bits: int | None = None):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quantizer = _LatentQuantizer(latent_bits) if latent_bits else None

    @property
    def variational(self) -> bool:
        return self.config.is_variational

    def set_training_progress(self, fraction: float) -> None:
        """Called by the trainer each epoch (0 -> 1); ramps in quantization noise."""
        if self.quantizer is not None:
            self.quantizer.strength = min(1.0, max(0.0, 2.0 * fraction))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic code (the posterior mean for VAEs)."""
        out = self.encoder(x)
        return out[0] if self.variational else out

    def forward(self, x: torch.Tensor) -> AEOutput:
        if self.variational:
            mean, log_var = self.encoder(x)
            code = mean
            if self.training:
                code = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
            return AEOutput(self.decoder(code), code, mean, log_var)
        code = self.encoder(x)
        if self.quantizer is not None:
            code = self.quantizer(code)
        return AEOutput(self.decoder(code), code)


def build_model(cfg: ModelConfig, latent_bits: int | None = None) -> Autoencoder:
    """Build the model a config describes; errors name sizes that cannot be mapped."""
    if cfg.is_conv1d:
        c, t = cfg.input_shape
        n = len(cfg.channels)
        if t < 2**n:
            raise ConfigError(
                f"signals of {t} steps are too short for {n} stride-2 conv1d layers (channels "
                f"{','.join(map(str, cfg.channels))}); need at least {2**n} steps: use fewer --channels "
                f"or longer windows"
            )
    elif cfg.is_conv:
        _, h, w = cfg.input_shape
        n = len(cfg.channels)
        if min(h, w) < 2**n:
            raise ConfigError(
                f"image size {h}x{w} is too small for {n} stride-2 conv layers (channels "
                f"{','.join(map(str, cfg.channels))}); need at least {2**n}x{2**n}: use fewer --channels "
                f"or --resize to a larger size"
            )
    elif not cfg.hidden:
        raise ConfigError("an MLP needs at least one hidden layer size (e.g. --hidden 128)")
    if latent_bits and cfg.is_variational:
        raise ConfigError("--latent-bits quantizes deterministic codes; use it with --model mlp or conv, not a VAE")
    if latent_bits and cfg.code_activation != "sigmoid":
        raise ConfigError("training with --latent-bits needs codes in [0, 1]: use --code-activation sigmoid")
    return Autoencoder(cfg, latent_bits)
