"""The export API: a run folder, or any encoder/decoder pair of torch modules, to a checked bundle.

::

    Source.from_run | Source.from_modules -> pipeline.write_bundle -> ExportResult

Options are checked here, before any file is read or written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from edgeae.config import MAX_LATENT_BITS, MIN_LATENT_BITS, Normalization
from edgeae.errors import ConfigError
from edgeae.export.graphs import DEFAULT_OPSET, check_opset
from edgeae.export.pipeline import Options, write_bundle
from edgeae.export.quantize import CALIBRATION_METHODS, parse_precisions
from edgeae.export.source import DEFAULT_CALIBRATION_SAMPLES, Source

__all__ = ["ExportResult", "export", "export_modules", "format_table", "DEFAULT_CODEC_BITS"]

DEFAULT_CODEC_BITS = (6, 4, 8)  # 6 bits: near-lossless vs unquantized codes; 4: smallest


def _codec_bits(value: str | tuple[int, ...] | list[int] | None, trained_bits: int | None) -> tuple[int, ...]:
    """Parse ``--codec-bits``: "auto", "none", "4,6,8" or a sequence of ints in 2..8 (edgeae.config)."""
    if value is None or value == "none" or value == "":
        return ()
    if value == "auto":
        bits = DEFAULT_CODEC_BITS if trained_bits is None else (trained_bits,)
        return tuple(dict.fromkeys(bits))
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        bits = tuple(int(b) for b in items)
    except ValueError:
        raise ConfigError(f"codec bits must be comma-separated integers {MIN_LATENT_BITS}..{MAX_LATENT_BITS}, "
                          f"'auto' or 'none', got {value!r}") from None
    if not bits or any(not MIN_LATENT_BITS <= b <= MAX_LATENT_BITS for b in bits):
        raise ConfigError(f"codec bits must be integers {MIN_LATENT_BITS}..{MAX_LATENT_BITS}, got {value!r}")
    return tuple(dict.fromkeys(bits))


@dataclass
class ExportResult:
    """What :func:`export` returns."""

    bundle_dir: Path  # the written bundle folder
    manifest: Any  # edgeae.runtime.bundle.Manifest as written
    validation: dict[str, Any]  # per precision: errors, PSNR, latency, size (also in the manifest)
    notes: list[str]  # checks that could not run, and why

    def table(self) -> str:
        return format_table(self.validation)


def format_table(validation: dict[str, Any]) -> str:
    """The per-precision summary printed by ``edgeae export``."""
    head = f"{'precision':<13}{'size KB':>9}{'ratio':>7}{'max err':>10}{'PSNR dB':>9}{'drop':>7}{'b1 ms':>9}{'b64 ms':>9}  notes"
    lines = [head, "-" * len(head)]
    for p, r in validation.items():
        err = max(r["max_abs_error"].values()) if r["max_abs_error"] else float("nan")
        lines.append(
            f"{p:<13}{r['size'] / 1024:>9.1f}{r['size_ratio']:>7.2f}{err:>10.2e}{r['psnr']:>9.2f}"
            f"{r['psnr_drop']:>7.2f}{r['latency_ms']['batch1']:>9.3f}{r['latency_ms']['batch64']:>9.3f}  "
            + "; ".join(n for n in r["notes"] if not n.startswith(("encoder", "decoder")))
        )
    return "\n".join(lines)


def _options(precisions, opset, atol, raw_io, calibration_method, max_psnr_drop, ort, fixed_batch,
             overwrite, latency_repeats) -> Options:
    precs = parse_precisions(precisions)
    opset = DEFAULT_OPSET if opset is None else int(opset)
    check_opset(opset, precs + (["raw_io"] if raw_io else []))
    if calibration_method not in CALIBRATION_METHODS:
        raise ConfigError(f"unknown calibration method {calibration_method!r}; choose one of: {', '.join(CALIBRATION_METHODS)}")
    if atol is not None and not (atol >= 0 and math.isfinite(atol)):
        raise ConfigError(f"atol must be a number >= 0 (an allowance added to the derived bounds), got {atol}")
    if fixed_batch is not None and int(fixed_batch) <= 0:
        raise ConfigError(f"fixed batch must be a positive integer, got {fixed_batch}")
    if int(latency_repeats) < 1:
        raise ConfigError(f"latency repeats must be a positive integer, got {latency_repeats}")
    if max_psnr_drop < 0:
        raise ConfigError(f"max PSNR drop must be >= 0 dB, got {max_psnr_drop}")
    return Options(precs, opset, None if atol is None else float(atol), bool(raw_io), calibration_method, float(max_psnr_drop), bool(ort),
                   None if fixed_batch is None else int(fixed_batch), bool(overwrite), int(latency_repeats))


def export(
    run_dir: str | Path,
    out_dir: str | Path,
    precisions: str | tuple[str, ...] | list[str] = ("fp32",),
    opset: int | None = None,
    atol: float | None = None,
    raw_io: bool = False,
    calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    calibration_method: str = "minmax",
    max_psnr_drop: float = 1.0,
    ort: bool = False,
    fixed_batch: int | None = None,
    overwrite: bool = False,
    data: str | Path | None = None,
    latency_repeats: int = 30,
    codec_bits: str | tuple[int, ...] | None = "auto",
) -> ExportResult:
    """Export the run in ``run_dir`` to a bundle in ``out_dir``; checks fail the export.

    ``data`` overrides where the run's dataset is read from (default: the source in its
    config.json); held-out samples come from the run's own validation split.
    ``codec_bits`` lists the latent bit depths to build compression tables for (the
    first is the default of ``edgeae compress``); ``"auto"`` = 6, 4, 8, or the run's
    ``latent_bits`` first; ``None``/``"none"`` builds none.
    """
    opts = _options(precisions, opset, atol, raw_io, calibration_method, max_psnr_drop, ort, fixed_batch,
                    overwrite, latency_repeats)
    wants_codec = bool(_codec_bits(codec_bits, None))  # checked before the run is read
    src = Source.from_run(run_dir=run_dir, data=data, calibration_samples=calibration_samples,
                          raw_io=opts.raw_io, codec=wants_codec)
    opts.codec_bits = _codec_bits(codec_bits, src.latent_bits)
    manifest, checks = write_bundle(src, Path(out_dir), opts)
    return ExportResult(Path(out_dir), manifest, manifest.validation, checks.notes)


def export_modules(
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
    example_input: Any = None,
    out_dir: str | Path | None = None,
    model: nn.Module | None = None,
    *,
    precisions: str | tuple[str, ...] | list[str] = ("fp32",),
    opset: int | None = None,
    atol: float | None = None,
    calibration_data: Any = None,
    calibration_method: str = "minmax",
    max_psnr_drop: float = 1.0,
    normalization: Normalization | None = None,
    raw_io: bool = False,
    ort: bool = False,
    fixed_batch: int | None = None,
    overwrite: bool = False,
    kind: str | None = None,
    latency_repeats: int = 30,
) -> ExportResult:
    """Export any encoder/decoder pair of torch modules (or ``model`` with ``.encoder`` and
    ``.decoder``) as a bundle, validated on ``example_input`` (real samples, model units,
    ``(N, *sample_shape)``). ``calibration_data`` (training samples) enables int8-static.
    """
    if model is not None:
        if not (hasattr(model, "encoder") and hasattr(model, "decoder")):
            raise ConfigError("model must have .encoder and .decoder submodules; or pass encoder= and decoder=")
        encoder, decoder = model.encoder, model.decoder
    if encoder is None or decoder is None:
        raise ConfigError("give encoder= and decoder= (torch modules) or model= with .encoder/.decoder")
    if example_input is None or out_dir is None:
        raise ConfigError("export_modules needs example_input= (real samples, (N, *sample_shape)) and out_dir=")
    opts = _options(precisions, opset, atol, raw_io, calibration_method, max_psnr_drop, ort, fixed_batch,
                    overwrite, latency_repeats)
    if "int8-static" in opts.precisions and calibration_data is None:
        raise ConfigError(
            "int8-static needs calibration data (training samples) to set activation ranges; "
            "pass calibration_data=... or use int8-dynamic"
        )
    src = Source.from_modules(encoder=encoder, decoder=decoder, example_input=example_input,
                              calibration_data=calibration_data, normalization=normalization, raw_io=raw_io,
                              kind=kind)
    manifest, checks = write_bundle(src, Path(out_dir), opts)
    return ExportResult(Path(out_dir), manifest, manifest.validation, checks.notes)
