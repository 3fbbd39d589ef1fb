"""Settings as dataclasses: model, data/preprocessing, training. Standard library only.

Everything needed to rebuild a trained model and its preprocessing lives in one
:class:`RunConfig`, saved as ``config.json`` beside the weights. The exporter copies the
relevant parts into the bundle manifest so the runtime can normalize raw inputs without
this package's training side.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgeae.atomic import atomic_write_text
from edgeae.errors import ConfigError

__all__ = [
    "MODEL_KINDS",
    "CONV_KINDS",
    "CONV1D_KINDS",
    "VARIATIONAL_KINDS",
    "NORMALIZATION_MODES",
    "MIN_LATENT_BITS",
    "MAX_LATENT_BITS",
    "LOSSES",
    "ACTIVATIONS",
    "OUTPUT_ACTIVATIONS",
    "NOISE_KINDS",
    "ModelConfig",
    "Normalization",
    "DataConfig",
    "TrainConfig",
    "RunConfig",
    "parse_int_list",
    "parse_noise",
]

CONFIG_VERSION = 1
MODEL_KINDS = ("mlp", "conv", "vae", "conv-vae", "conv1d", "conv1d-vae")
CONV_KINDS = ("conv", "conv-vae")  # images (C, H, W): stride-2 conv encoder, transposed-conv decoder
CONV1D_KINDS = ("conv1d", "conv1d-vae")  # signals (C, T): the same over time, channels = sensor axes
VARIATIONAL_KINDS = ("vae", "conv-vae", "conv1d-vae")  # encoder returns (mean, log_var)
# How raw samples become model inputs: uint8 / 255 | floats as they are | (x - mean) / std.
NORMALIZATION_MODES = ("scale255", "identity", "standardize")
MIN_LATENT_BITS, MAX_LATENT_BITS = 2, 8  # bits per code dimension: quantized training and codec tables
LOSSES = ("mse", "bce", "mae")
ACTIVATIONS = ("relu", "leaky_relu", "gelu", "tanh", "sigmoid", "elu", "silu")
OUTPUT_ACTIVATIONS = ("sigmoid", "identity", "tanh")
NOISE_KINDS = ("gaussian", "saltpepper", "mask")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")


def parse_int_list(text: str | list[int] | tuple[int, ...], name: str = "list") -> tuple[int, ...]:
    """Parse ``"512,128"`` (or a sequence) into a tuple of positive ints; ``""`` gives ``()``."""
    if isinstance(text, (list, tuple)):
        items = list(text)
    else:
        items = [t for t in str(text).replace(" ", "").split(",") if t]
    try:
        values = tuple(int(v) for v in items)
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated positive integers, got {text!r}") from None
    if any(v <= 0 for v in values):
        raise ConfigError(f"{name} must be positive integers, got {text!r}")
    return values


def parse_noise(text: str | None) -> tuple[str, float] | None:
    """Parse ``"gaussian:0.3"`` into ``("gaussian", 0.3)``; ``None``/``""``/``"none"`` give None."""
    if text is None or text == "" or text == "none":
        return None
    kind, sep, level = str(text).partition(":")
    if not sep:
        raise ConfigError(
            f"noise must look like KIND:LEVEL (e.g. gaussian:0.3, saltpepper:0.1, mask:0.25), got {text!r}"
        )
    _choice("noise kind", kind, NOISE_KINDS)
    try:
        value = float(level)
    except ValueError:
        raise ConfigError(f"noise level must be a number, got {level!r} in {text!r}") from None
    if not (0.0 < value <= (1.0 if kind != "gaussian" else 10.0)):
        raise ConfigError(
            f"noise level {value} out of range for {kind}: use (0, 1] for saltpepper/mask, (0, 10] for gaussian"
        )
    return kind, value


@dataclass
class ModelConfig:
    """Architecture of an autoencoder; enough to rebuild it with :func:`edgeae.models.build_model`."""

    kind: str = "mlp"  # mlp | conv | vae (MLP-based VAE) | conv-vae | conv1d | conv1d-vae
    input_shape: tuple[int, ...] = (64,)  # one sample, no batch axis: (D,), (C, T) signals or (C, H, W)
    hidden: tuple[int, ...] = ()  # MLP encoder hidden sizes; () = textbook default scaled to input
    decoder_hidden: tuple[int, ...] | None = None  # None mirrors `hidden`
    code_size: int = 16  # bottleneck width
    activation: str = "relu"  # hidden-layer activation
    output_activation: str = "sigmoid"  # decoder output: sigmoid for [0, 1] data, identity otherwise
    channels: tuple[int, ...] = (16, 32)  # conv / conv1d encoder channels, one strided conv per entry
    code_activation: str = "identity"  # activation on the code (textbook MLP uses relu)

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(v) for v in self.input_shape)
        self.hidden = parse_int_list(self.hidden, "hidden")
        if self.decoder_hidden is not None:
            self.decoder_hidden = parse_int_list(self.decoder_hidden, "decoder hidden")
        self.channels = parse_int_list(self.channels, "channels")
        _choice("model", self.kind, MODEL_KINDS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("output activation", self.output_activation, OUTPUT_ACTIVATIONS)
        _choice("code activation", self.code_activation, ("identity",) + ACTIVATIONS)
        if not self.input_shape or any(v <= 0 for v in self.input_shape):
            raise ConfigError(f"input shape must be positive, got {self.input_shape}")
        if self.code_size <= 0:
            raise ConfigError(f"code size must be a positive integer, got {self.code_size}")
        if self.is_conv and len(self.input_shape) != 3:
            raise ConfigError(
                f"model {self.kind!r} needs image data of shape (C, H, W), got samples of shape "
                f"{self.input_shape}; use --model mlp for vectors" + (
                    ", conv1d for (C, T) signals" if len(self.input_shape) == 2 else "")
            )
        if self.is_conv1d and len(self.input_shape) != 2:
            raise ConfigError(
                f"model {self.kind!r} needs signals of shape (C, T) (channels x time steps), got samples of "
                f"shape {self.input_shape}; use --model conv for images, mlp for vectors (a (N, C, T) .npy "
                "reads as grayscale images unless --signal says it holds signals)"
            )
        if (self.is_conv or self.is_conv1d) and not self.channels:
            raise ConfigError(f"model {self.kind!r} needs at least one conv layer: give --channels, e.g. 16,32")
        if self.is_conv and self.input_shape[0] not in (1, 3):
            raise ConfigError(
                f"model {self.kind!r} supports 1 or 3 channels, got {self.input_shape[0]}"
            )
        if not self.is_conv and not self.is_conv1d and not self.channels:
            self.channels = (16, 32)

    @property
    def is_conv(self) -> bool:
        """A 2-D conv model over images (C, H, W)."""
        return self.kind in CONV_KINDS

    @property
    def is_conv1d(self) -> bool:
        """A 1-D conv model over signals (C, T)."""
        return self.kind in CONV1D_KINDS

    @property
    def is_variational(self) -> bool:
        return self.kind in VARIATIONAL_KINDS

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)


@dataclass
class Normalization:
    """How raw samples map to model inputs: ``model_x = (raw - offset) / scale``.

    ``offset`` and ``scale`` hold one value (applied everywhere) or one per feature of the
    flattened sample. ``raw_dtype`` is the dtype the data arrived in (``uint8`` images or
    ``float32``); ``mode`` says why: ``scale255`` (uint8 -> [0, 1]), ``identity`` (floats
    already in [0, 1]) or ``standardize`` (per-feature mean / std).
    """

    mode: str = "identity"  # scale255 | identity | standardize
    raw_dtype: str = "float32"  # uint8 | float32
    offset: list[float] = field(default_factory=lambda: [0.0])
    scale: list[float] = field(default_factory=lambda: [1.0])

    def __post_init__(self) -> None:
        _choice("normalization", self.mode, NORMALIZATION_MODES)
        _choice("raw dtype", self.raw_dtype, ("uint8", "float32"))
        self.offset = [float(v) for v in self.offset]
        self.scale = [float(v) for v in self.scale]
        if len(self.offset) != len(self.scale):
            raise ConfigError("normalization offset and scale must have the same length")
        if any(not math.isfinite(v) for v in self.offset + self.scale) or any(
            v == 0 for v in self.scale
        ):
            raise ConfigError("normalization values must be finite and scales non-zero")


@dataclass
class DataConfig:
    """Where the data came from and how it was split."""

    source: str = "digits"  # digits | path to IDX / .npy / .npz / image folder / CSV / .ts
    format: str = "digits"  # digits | idx | npy | npz | images | csv | ts
    sample_shape: tuple[int, ...] = (1, 8, 8)  # one sample as fed to the model
    is_image: bool = True  # (C, H, W) samples that can be shown as pictures
    resize: tuple[int, int] | None = None  # (H, W) for image folders
    signal: bool = False  # (C, T) signal windows: a .ts file, --signal or --window (read again so on export)
    window: int | None = None  # steps per window cut from the recordings / cases (None: windows as stored)
    hop: int | None = None  # steps between window starts (None: the window length)
    val_fraction: float = 0.1  # share of samples held out for validation
    split: str = "random"  # random (seeded shuffle) | ordered (last samples held out)
    seed: int = 0  # split seed
    n_train: int = 0
    n_val: int = 0

    def __post_init__(self) -> None:
        self.sample_shape = tuple(int(v) for v in self.sample_shape)
        if self.resize is not None:
            self.resize = (int(self.resize[0]), int(self.resize[1]))
        _choice("split", self.split, ("random", "ordered"))
        for name in ("window", "hop"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ConfigError(f"data {name} must be a positive whole number of time steps, got {value!r}")
        if self.hop is not None and self.window is None:
            raise ConfigError("a data hop needs a window length")
        if not (0.0 < self.val_fraction < 1.0):
            raise ConfigError(f"val fraction must be between 0 and 1 (exclusive), got {self.val_fraction}")


@dataclass
class TrainConfig:
    """Optimisation settings."""

    loss: str = "mse"  # mse | bce | mae (KL is added for VAEs)
    epochs: int = 50  # maximum epochs
    batch_size: int = 64
    lr: float = 5e-3  # Adam learning rate (cosine-annealed to lr/20)
    weight_decay: float = 0.0
    beta: float = 1.0  # KL weight for VAEs
    noise: str | None = None  # denoising: gaussian:0.3 | saltpepper:0.1 | mask:0.25
    augment_shift: int = 0  # images: random translations of up to N pixels (input and target)
    patience: int = 8  # early stopping: epochs without validation improvement
    seed: int = 0  # weights init, shuffling and noise
    device: str = "auto"  # auto | cpu | cuda
    latent_bits: int | None = None  # train with code quantization to this many bits (2-8)

    def __post_init__(self) -> None:
        _choice("loss", self.loss, LOSSES)
        _choice("device", self.device, ("auto", "cpu", "cuda"))
        parse_noise(self.noise)
        if not (0 <= self.augment_shift <= 16):
            raise ConfigError(f"augment shift must be 0..16 pixels, got {self.augment_shift}")
        if self.epochs <= 0:
            raise ConfigError(f"epochs must be a positive integer, got {self.epochs}")
        if self.batch_size <= 0:
            raise ConfigError(f"batch size must be a positive integer, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"learning rate must be positive, got {self.lr}")
        if self.beta < 0:
            raise ConfigError(f"beta must be >= 0, got {self.beta}")
        if self.patience <= 0:
            raise ConfigError(f"patience must be a positive integer, got {self.patience}")
        if self.latent_bits is not None and not (MIN_LATENT_BITS <= self.latent_bits <= MAX_LATENT_BITS):
            raise ConfigError(f"latent bits must be between {MIN_LATENT_BITS} and {MAX_LATENT_BITS}, "
                              f"got {self.latent_bits}")


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
    return cls(**data)


@dataclass
class RunConfig:
    """Everything saved as ``config.json`` beside a checkpoint."""

    model: ModelConfig
    data: DataConfig
    normalization: Normalization
    train: TrainConfig
    version: int = CONFIG_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        try:
            version = data.get("version", CONFIG_VERSION)
            if version != CONFIG_VERSION:
                raise ConfigError(
                    f"config version {version} is not supported (this edgeae reads version {CONFIG_VERSION})"
                )
            return cls(
                model=_from_dict(ModelConfig, data["model"]),
                data=_from_dict(DataConfig, data["data"]),
                normalization=_from_dict(Normalization, data["normalization"]),
                train=_from_dict(TrainConfig, data["train"]),
                version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed config: {exc}") from None

    def save(self, path: str | Path) -> None:
        """Write atomically (temporary file + rename), so a crash never leaves half a config."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path} not found: is this a run folder written by `edgeae train`?") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc})") from None
        return cls.from_dict(data)
