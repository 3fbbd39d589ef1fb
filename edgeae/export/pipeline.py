"""The export pipeline, all or nothing::

    _write_graphs (fp32 + variants) -> _check_graphs (vs PyTorch, onnx.reference: export/compare.py)
      -> validation_records (PSNR, latency, size) -> refuse_failures (export/records.py)
      -> _package (.ort, fixed batch) -> _write_manifest (samples, codec tables, manifest.json)

Everything is written into a temporary sibling folder (``.<name>.partial-<pid>``,
:func:`edgeae.atomic.staging_dir`) and renamed into place only when every check passed, so
a failed export leaves nothing behind.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeae.atomic import claim_output_dir, commit_staging_dir
from edgeae.errors import ExportError, ValidationError
from edgeae.export import graphs as G
from edgeae.export import package as P
from edgeae.export.compare import TorchReference, compare_with_torch
from edgeae.export.package import graph_file
from edgeae.export.quantize import INT8_FORMATS, quantize_graph
from edgeae.export.records import SAMPLES_KEPT, refuse_failures, validation_records
from edgeae.export.source import Source
from edgeae.export.validate import (
    Checks,
    check_copy,
    run,
    session,
    structure_problems,
    take_batch,
)
from edgeae.export.weightcheck import weight_check
from edgeae.runtime.metrics import psnr
from edgeae.runtime.preprocess import Normalizer

__all__ = ["SAMPLES_KEPT", "Options", "write_bundle", "graph_file"]



@dataclass
class Options:
    """Export settings, already validated."""

    precisions: list[str]  # fp32 first; stored names (the alias int8 is resolved when parsed)
    opset: int  # ai.onnx opset
    atol: float | None  # extra absolute allowance on top of every derived bound (None: none)
    raw_io: bool  # also write raw-I/O graphs
    calibration_method: str  # minmax | entropy | percentile
    max_psnr_drop: float  # dB a variant may lose vs fp32
    ort: bool  # write .ort copies + required_operators.config
    fixed_batch: int | None  # also write fixed-batch variants
    overwrite: bool  # replace a non-empty out_dir
    latency_repeats: int = 30  # timed rounds per batch size
    codec_bits: tuple[int, ...] = ()  # bit depths to build latent codec tables for (first = default)


def _start(out_dir: Path, overwrite: bool) -> Path:
    """Refuse an output folder that is not ours to replace; the staging folder to build in."""
    return claim_output_dir(out_dir, overwrite, "manifest.json", "is not an edgeae bundle (no manifest.json); "
                            "--overwrite only replaces bundles", ExportError, what="the bundle ")


def _metadata(src: Source, role: str, precision: str, raw: bool) -> dict[str, Any]:
    from edgeae import __version__

    dtype = src.normalization.raw_dtype if raw else "float32"
    return {"role": role, "code_size": str(src.model["code_size"]), "input_shape": list(src.sample_shape),
            "input_dtype": dtype, "normalization": asdict(src.normalization), "raw_io": "true" if raw else "false",
            "precision": precision, "version": __version__,
            **({"quantization": INT8_FORMATS[precision]} if precision in INT8_FORMATS else {})}


def write_bundle(src: Source, out_dir: Path, opts: Options) -> tuple[Any, Checks]:
    """Export, check, quantize, measure and write a bundle; returns (Manifest, Checks)."""
    tmp = _start(out_dir, opts.overwrite)
    try:
        manifest, checks = _build(src, tmp, opts)
        commit_staging_dir(tmp, out_dir)
        return manifest, checks
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass
class _Job:
    """One export in progress: what every step reads, and the checks they add to."""

    src: Source
    d: Path  # the temporary bundle folder
    opts: Options
    ref: TorchReference  # PyTorch on model units
    ref_raw: TorchReference | None  # PyTorch wrapped for raw I/O (--raw-io)
    code_size: int  # width of the code, as the encoder computes it
    variants: list[str]  # precisions beyond fp32, the int8 alias expanded
    raws: list[bool]  # [False] or [False, True] with --raw-io
    checks: Checks = field(default_factory=Checks)
    problems: list[str] = field(default_factory=list)  # structural faults (a layer left in float, a weight moved)
    weights: dict[str, Any] = field(default_factory=dict)  # int8 graph file -> its weight criterion (weight_check)

    @property
    def precisions(self) -> list[str]:
        return ["fp32", *self.variants]


def _build(src: Source, d: Path, opts: Options) -> tuple[Any, Checks]:
    """The whole export into ``d``: graphs -> checks against PyTorch -> validation records ->
    packaging -> manifest. Any failed check raises before the manifest is written."""
    job = _start_job(src, d, opts)
    _write_graphs(job)
    _check_graphs(job)
    validation = validation_records(d, src, job.precisions, job.raws, job.checks, opts, job.weights)
    refuse_failures(validation, job.checks, job.problems, opts.max_psnr_drop)
    entries = _package(job, [p for p in job.precisions if p in validation])
    return _write_manifest(job, entries, validation), job.checks


def _start_job(src: Source, d: Path, opts: Options) -> _Job:
    """PyTorch references (raw-I/O wrappers too) and the precisions to write."""
    ref = TorchReference(src.encoder, src.decoder, src.variational)
    code_size = int(ref.encode(take_batch(src.val_x, 2))["code"].shape[1])
    src.model.setdefault("code_size", code_size)
    ref_raw = None
    if opts.raw_io:
        nz = Normalizer(src.normalization, src.sample_shape)
        raw_enc = G.RawEncoder(src.encoder, nz.offset, nz.scale)
        raw_dec = G.RawDecoder(src.decoder, nz.offset, nz.scale, src.normalization.raw_dtype == "uint8")
        ref_raw = TorchReference(raw_enc, raw_dec, src.variational)
    variants = [p for p in opts.precisions if p != "fp32"]
    return _Job(src, d, opts, ref, ref_raw, code_size, variants, [False, True] if opts.raw_io else [False])


def _write_graphs(job: _Job) -> None:
    """1. fp32 graphs (+ raw-I/O wrappers), every variant quantized from them, metadata, ONNX checker."""
    src, d, opts = job.src, job.d, job.opts
    example = torch.from_numpy(take_batch(src.val_x, 2))
    code_ex = torch.from_numpy(job.ref.encode(example.numpy())["code"])
    for raw in job.raws:
        ref = job.ref_raw if raw else job.ref
        x_ex = torch.from_numpy(take_batch(src.val_raw, 2)) if raw else example
        G.export_graph(ref.enc, x_ex, d / graph_file("encoder", "fp32", raw), "x", ["code"], opts.opset,
                       src.variational)
        G.export_graph(ref.dec, code_ex, d / graph_file("decoder", "fp32", raw), "code", ["x_hat"], opts.opset)
    calib_codes = job.ref.encode(src.calib_x)["code"] if src.calib_x is not None else None
    for raw in job.raws:
        for role in ("encoder", "decoder"):
            base = d / graph_file(role, "fp32", raw)
            G.set_metadata(base, _metadata(src, role, "fp32", raw))
            for p in job.variants:
                calib = (src.calib_raw if raw else src.calib_x) if role == "encoder" else calib_codes
                dst = d / graph_file(role, p, raw)
                quantize_graph(base, dst, p, calib, opts.calibration_method, "x" if role == "encoder" else "code")
                G.set_metadata(dst, _metadata(src, role, p, raw))
    for f in sorted(d.glob("*.onnx")):
        G.check_graph(f)


def _check_graphs(job: _Job) -> None:
    """2. int8 graphs' structure and 8-bit weights (vs the fp32 graph's), then every graph vs
    PyTorch at batches 1, 7, 64, and in onnx.reference."""
    src, opts = job.src, job.opts
    for p in job.precisions:
        for raw in job.raws:
            if p in INT8_FORMATS:
                for role in ("encoder", "decoder"):
                    path = job.d / graph_file(role, p, raw)
                    job.problems += structure_problems(path, p)
                    record, problems, notes, steps = weight_check(path, job.d / graph_file(role, "fp32", raw))
                    job.problems += problems
                    job.checks.notes += notes
                    job.checks.weight_steps[path.name] = steps
                    if record is not None:
                        job.weights[path.name] = record
            ref, x = (job.ref_raw, src.val_raw) if raw else (job.ref, src.val_x)
            compare_with_torch(job.d, p, raw, ref, x, job.checks, opts.atol or 0.0)


def _package(job: _Job, kept: list[str]) -> list[Any]:
    """4. Manifest entries of the kept graphs, plus fixed-batch and .ort copies checked against them."""
    from edgeae.runtime.bundle import graph_entry

    d, opts, checks = job.d, job.opts, job.checks
    entries = []
    for p in kept:
        for raw in job.raws:
            for role in ("encoder", "decoder"):
                path = d / graph_file(role, p, raw)
                ins, outs = G.tensor_specs(path)
                entries.append(graph_entry(path, role, p, opts.opset, ins, outs, raw_io=raw))
                x_in = _role_input(job.src, job.ref, role, raw)
                if opts.fixed_batch and not raw:
                    fb = d / graph_file(role, p, fixed_batch=opts.fixed_batch)
                    P.write_fixed_batch(path, fb, opts.fixed_batch)
                    check_copy(fb, path, x_in, opts.fixed_batch, checks, opts.atol or 0.0)
                    fi, fo = G.tensor_specs(fb)
                    entries.append(graph_entry(fb, role, p, opts.opset, fi, fo, fixed_batch=opts.fixed_batch))
                if opts.ort:
                    o = d / graph_file(role, p, raw, format="ort")
                    P.write_ort(path, o)
                    check_copy(o, path, x_in, 7, checks, opts.atol or 0.0)
                    entries.append(graph_entry(o, role, p, opts.opset, ins, outs, raw_io=raw, format="ort"))
    if opts.ort:
        P.write_required_operators(sorted(d.glob("*.ort")), d / P.ORT_CONFIG)
    if checks.failures():
        raise ValidationError("packaged graphs disagree with their sources; nothing was written:\n  "
                              + "\n  ".join(c.line() for c in checks.failures()))
    return entries


def _write_manifest(job: _Job, entries: list[Any], validation: dict[str, Any]) -> Any:
    """5. Held-out samples, codec tables and manifest.json: the bundle's last files."""
    from edgeae.runtime.bundle import Manifest, file_sha256, write_manifest

    src, d = job.src, job.d
    samples = None
    if src.val_raw is not None:
        np.save(d / "samples.npy", np.ascontiguousarray(src.val_raw[:SAMPLES_KEPT]))
        samples = {"file": "samples.npy", "sha256": file_sha256(d / "samples.npy"),
                   "count": int(min(SAMPLES_KEPT, len(src.val_raw)))}
    codec = _codec_tables(src, job.ref, job.opts, d, src.val_x, validation)
    manifest = Manifest(
        kind=src.kind, code_size=job.code_size, model=src.model, variational=src.variational,
        input={"shape": [int(v) for v in src.sample_shape], "dtype": "float32", "is_image": bool(src.is_image)},
        normalization=asdict(src.normalization), graphs=entries, samples=samples, validation=validation,
        codec=codec, tools=_tools(),
    )
    write_manifest(d, manifest)
    return manifest


def _codec_tables(src: Source, ref: TorchReference, opts: Options, d: Path, x_eval: np.ndarray,
                  validation: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Latent codec tables per bit depth, fitted on training codes; rate and PSNR measured on
    held-out samples through the real stream format and the fp32 ONNX decoder."""
    if not opts.codec_bits or src.codec_x is None:
        return None
    from edgeae.runtime.bundle import file_sha256
    from edgeae.runtime.codec import LatentCodec
    from edgeae.runtime.stream import compress_codes, decompress_codes

    train_codes = ref.encode(src.codec_x)["code"]  # (K, code_size)
    held_out = ref.encode(x_eval)["code"]
    dec = session(d / graph_file("decoder", "fp32"))
    sha = file_sha256(d / graph_file("decoder", "fp32"))
    tables, report = [], {}
    for bits in opts.codec_bits:
        codec = LatentCodec.fit(train_codes, bits, value_range=src.codec_range)
        stream = compress_codes(codec, codec.model_id(sha), held_out)
        x_hat = run(dec, decompress_codes(codec, codec.model_id(sha), stream))["x_hat"]
        report[str(bits)] = {"bytes_per_sample": round(len(stream) / len(x_eval), 3),
                             "psnr": round(psnr(x_eval, x_hat, src.peak), 4), "samples": len(x_eval)}
        tables.append(codec.to_dict())
    validation["fp32"]["codec"] = report
    return tables


def _role_input(src: Source, ref: TorchReference, role: str, raw: bool) -> np.ndarray:
    if role == "encoder":
        return src.val_raw[:64] if raw else src.val_x[:64]
    return ref.encode(src.val_x[:64])["code"].astype(np.float32)


def _tools() -> dict[str, str]:
    import onnx
    import onnxruntime

    from edgeae import __version__

    return {"edgeae": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}
