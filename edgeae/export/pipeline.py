"""The export pipeline, all or nothing::

    _write_graphs (fp32 + variants) -> _check_graphs (vs PyTorch, onnx.reference)
      -> _validation_records (PSNR, latency, size) -> _refuse_failures
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
from torch import nn

from edgeae.atomic import claim_output_dir, commit_staging_dir
from edgeae.errors import ExportError, ValidationError
from edgeae.export import graphs as G
from edgeae.export import package as P
from edgeae.export.package import graph_file
from edgeae.export.quantize import INT8_FORMATS, quantize_graph
from edgeae.export.source import Source
from edgeae.export.validate import (
    BATCHES,
    Checks,
    check_copy,
    criteria_by_graph,
    measure_latency,
    reference_check,
    run,
    session,
    structure_problems,
    take_batch,
)
from edgeae.numerics import deviation_bounds
from edgeae.runtime.metrics import psnr
from edgeae.runtime.preprocess import Normalizer

__all__ = ["SAMPLES_KEPT", "Options", "write_bundle", "graph_file"]

SAMPLES_KEPT = 256  # held-out samples a bundle carries (samples.npy) for later checks


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


class _Torch:
    """PyTorch reference outputs (fp32, no grad)."""

    def __init__(self, enc: nn.Module, dec: nn.Module, variational: bool):
        self.enc, self.dec, self.variational = enc.eval(), dec.eval(), variational

    @torch.no_grad()
    def encode(self, x: np.ndarray) -> dict[str, np.ndarray]:
        out = self.enc(torch.from_numpy(np.ascontiguousarray(x)))
        if self.variational:
            return {"code": out[0].numpy(), "mean": out[0].numpy(), "log_var": out[1].numpy()}
        return {"code": out.numpy()}

    @torch.no_grad()
    def decode(self, code: np.ndarray) -> np.ndarray:
        return self.dec(torch.from_numpy(np.ascontiguousarray(code))).numpy()


_MODE = {"fp32": "float", "fp16": "fp16"}  # precision -> deviation mode vs PyTorch (int8: "quantized")


def _compare(folder: Path, p: str, raw: bool, ref: _Torch, x: np.ndarray, checks: Checks, atol: float) -> None:
    """encoder, decoder and decode(encode(x)) vs PyTorch at every batch size, plus onnx.reference.

    Each output element is held to its own bound (:func:`edgeae.numerics.deviation_bounds`):
    fp32 the rounding of two float evaluations, fp16 that plus float16 weights and
    activations, int8 the graph's own quantization error measured at every quantizer. The
    end-to-end bound starts from the codes' measured deviation. onnx.reference runs fp32
    graphs against PyTorch (batch 7), fp16 graphs against ONNX Runtime unoptimized (batch 7)
    and int8 graphs against ONNX Runtime as the runtime runs them (every batch: the kernels it
    picks for *this* CPU must compute the graph's exact integer semantics, one step per tie).
    """
    enc_file, dec_file = graph_file("encoder", p, raw), graph_file("decoder", p, raw)
    mode = _MODE.get(p, "quantized")
    crit = mode
    enc, dec = session(folder / enc_file), session(folder / dec_file)
    for b in BATCHES:
        xb = take_batch(x, b)
        want = ref.encode(xb)
        got = run(enc, xb)
        eb = deviation_bounds(folder / enc_file, xb, mode).bounds
        for name, value in want.items():
            checks.add_bounded(enc_file, name, b, got.get(name, np.empty(0)), value, eb.get(name, 0.0), crit,
                               atol=atol)
        x_hat = ref.decode(want["code"])
        code = want["code"].astype(np.float32)
        dec_got = run(dec, code)
        db = deviation_bounds(folder / dec_file, code, mode).bounds["x_hat"]
        checks.add_bounded(dec_file, "x_hat", b, dec_got["x_hat"], x_hat, db, crit, atol=atol)
        e2e = run(dec, got["code"])["x_hat"]
        moved = np.abs(got["code"].astype(np.float64) - want["code"]) if got["code"].shape == code.shape else None
        if moved is not None and np.isfinite(moved).all():  # centred on the codes ONNX Runtime decoded
            db = deviation_bounds(folder / dec_file, got["code"], mode, d_in=moved).bounds["x_hat"]
        checks.add_bounded(f"{enc_file}+{dec_file}", "end_to_end", b, e2e, x_hat, db, crit, atol=atol)
        if p in INT8_FORMATS:
            reference_check(folder / enc_file, xb, got, checks, b, against="onnxruntime", atol=atol)
            reference_check(folder / dec_file, code, dec_got, checks, b, against="onnxruntime", atol=atol)
        elif b == 7 and not raw:
            as_torch = p == "fp32"
            reference_check(folder / enc_file, xb, want if as_torch else None, checks, b, p == "fp16", atol=atol)
            reference_check(folder / dec_file, code, {"x_hat": x_hat} if as_torch else None, checks, b,
                            p == "fp16", atol=atol)


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
    ref: _Torch  # PyTorch on model units
    ref_raw: _Torch | None  # PyTorch wrapped for raw I/O (--raw-io)
    code_size: int  # width of the code, as the encoder computes it
    variants: list[str]  # precisions beyond fp32, the int8 alias expanded
    raws: list[bool]  # [False] or [False, True] with --raw-io
    checks: Checks = field(default_factory=Checks)
    problems: list[str] = field(default_factory=list)  # structural faults (a layer left in float)

    @property
    def precisions(self) -> list[str]:
        return ["fp32", *self.variants]


def _build(src: Source, d: Path, opts: Options) -> tuple[Any, Checks]:
    """The whole export into ``d``: graphs -> checks against PyTorch -> validation records ->
    packaging -> manifest. Any failed check raises before the manifest is written."""
    job = _start_job(src, d, opts)
    _write_graphs(job)
    _check_graphs(job)
    validation = _validation_records(job)
    _refuse_failures(job, validation)
    entries = _package(job, [p for p in job.precisions if p in validation])
    return _write_manifest(job, entries, validation), job.checks


def _start_job(src: Source, d: Path, opts: Options) -> _Job:
    """PyTorch references (raw-I/O wrappers too) and the precisions to write."""
    ref = _Torch(src.encoder, src.decoder, src.variational)
    code_size = int(ref.encode(take_batch(src.val_x, 2))["code"].shape[1])
    src.model.setdefault("code_size", code_size)
    ref_raw = None
    if opts.raw_io:
        nz = Normalizer(src.normalization, src.sample_shape)
        raw_enc = G.RawEncoder(src.encoder, nz.offset, nz.scale)
        raw_dec = G.RawDecoder(src.decoder, nz.offset, nz.scale, src.normalization.raw_dtype == "uint8")
        ref_raw = _Torch(raw_enc, raw_dec, src.variational)
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
    """2. Every graph vs PyTorch at batches 1, 7, 64, and in onnx.reference; int8 graphs' structure."""
    src, opts = job.src, job.opts
    for p in job.precisions:
        for raw in job.raws:
            ref, x = (job.ref_raw, src.val_raw) if raw else (job.ref, src.val_x)
            _compare(job.d, p, raw, ref, x, job.checks, opts.atol or 0.0)
            if p in INT8_FORMATS:
                for role in ("encoder", "decoder"):
                    job.problems += structure_problems(job.d / graph_file(role, p, raw), p)


def _validation_records(job: _Job) -> dict[str, Any]:
    """3. Per precision: errors, the tightest criterion per graph and its margin, held-out PSNR
    (all held-out samples and the bundle's own samples) and its drop, latency, size, notes."""
    d, src, checks = job.d, job.src, job.checks
    x_eval = src.val_x  # held-out samples, capped at MAX_VALIDATION_SAMPLES by export and export_modules
    pairs = {p: (session(d / graph_file("encoder", p)), session(d / graph_file("decoder", p)))
             for p in job.precisions}
    quality = {p: psnr(x_eval, run(dec, run(enc, x_eval)["code"])["x_hat"], src.peak)
               for p, (enc, dec) in pairs.items()}
    carried = _carried_psnr(src, pairs)
    latency = measure_latency(pairs, src.val_x, repeats=job.opts.latency_repeats)
    sizes = {p: sum((d / graph_file(r, p)).stat().st_size for r in ("encoder", "decoder")) for p in pairs}
    validation: dict[str, Any] = {}
    for p in pairs:
        files = _pair_files(p, raw=False)
        refs: dict[str, float] = {}
        for c in checks.items:
            if c.graph in files and c.against.startswith("reference"):
                refs[c.output] = max(refs.get(c.output, 0.0), c.max_abs_error)
        rec: dict[str, Any] = {
            "max_abs_error": checks.max_errors(files), "bounds": "derived per element (docs/export.md)",
            "atol": job.opts.atol, "criteria": criteria_by_graph(checks, [graph_file(r, p, raw) for raw in job.raws for r in ("encoder", "decoder")]),
            "reference_evaluator_max_abs_error": refs or None, "psnr": round(quality[p], 4),
            "samples_psnr": carried.get(p), "psnr_peak": src.peak,
            "psnr_drop": round(quality["fp32"] - quality[p], 4), "latency_ms": latency[p], "threads": 1,
            "size": sizes[p], "size_ratio": round(sizes[p] / sizes["fp32"], 4), "notes": [],
        }
        if p in INT8_FORMATS:
            rec["quantization"] = dict(INT8_FORMATS[p])
        if p != "fp32":
            for b in ("batch1", "batch64"):
                if latency[p][b] > latency["fp32"][b]:
                    rec["notes"].append(f"slower than fp32 at {b.replace('batch', 'batch ')}")
        if job.opts.raw_io:
            rec["raw_io"] = {"max_abs_error": checks.max_errors(_pair_files(p, raw=True))}
        rec["notes"] += [n for n in checks.notes if n.split(":")[0] in files]
        validation[p] = rec
    validation["fp32"].update(_fingerprints(job))
    return validation


def _carried_psnr(src: Source, pairs: dict[str, tuple[Any, Any]]) -> dict[str, float]:
    """PSNR per precision on the held-out samples the bundle carries (samples.npy), normalized
    as the runtime does: what a later check of the bundle (``edgeae codegen``) recomputes."""
    if src.val_raw is None:
        return {}
    xs = Normalizer(src.normalization, src.sample_shape).normalize(src.val_raw[:SAMPLES_KEPT]).astype(np.float32)
    return {p: round(psnr(xs, run(dec, run(enc, xs)["code"])["x_hat"], src.peak), 4) for p, (enc, dec) in pairs.items()}


def _fingerprints(job: _Job) -> dict[str, list[float]]:
    """Per carried sample, the squared error of the fp32 pair's reconstruction (model units, and
    raw units with --raw-io): the fingerprint a later check of one graph of the bundle compares
    with, within the bound its rounding allows (a graph from another model is far off)."""
    src, d = job.src, job.d
    if src.val_raw is None:
        return {}
    raw = np.asarray(src.val_raw[:SAMPLES_KEPT])
    out = {}
    for is_raw in job.raws:
        x = raw if is_raw else Normalizer(src.normalization, src.sample_shape).normalize(raw).astype(np.float32)
        enc, dec = session(d / graph_file("encoder", "fp32", is_raw)), session(d / graph_file("decoder", "fp32", is_raw))
        x_hat = run(dec, run(enc, x)["code"])["x_hat"]
        err = (np.asarray(x, np.float64) - np.asarray(x_hat, np.float64)).reshape(len(x), -1)
        out["samples_mse_raw" if is_raw else "samples_mse"] = [float(v) for v in np.mean(err * err, axis=1)]
    return out


def _pair_files(precision: str, raw: bool) -> set[str]:
    """The names checks are recorded under for one encoder/decoder pair (and the pair end to end)."""
    enc, dec = graph_file("encoder", precision, raw), graph_file("decoder", precision, raw)
    return {enc, dec, f"{enc}+{dec}"}


def _refuse_failures(job: _Job, validation: dict[str, Any]) -> None:
    """Mark each precision passed or not; any failed check or PSNR budget stops the export here."""
    opts, checks = job.opts, job.checks
    problems = [c.line() for c in checks.failures()] + job.problems
    for p, rec in validation.items():
        rec["passed"] = rec["psnr_drop"] <= opts.max_psnr_drop
        share = max(rec["psnr_drop"], 0.0) / opts.max_psnr_drop if opts.max_psnr_drop > 0 else float(rec["psnr_drop"] > 0)
        rec["psnr_criterion"] = {"criterion": "psnr", "share": round(share, 4), "max_psnr_drop": opts.max_psnr_drop,
                                 "margin_db": round(opts.max_psnr_drop - rec["psnr_drop"], 4)}
        if not rec["passed"]:
            problems.append(
                f"{p}: held-out PSNR drops {rec['psnr_drop']:.2f} dB (fp32 {validation['fp32']['psnr']:.2f} dB -> "
                f"{rec['psnr']:.2f} dB), more than --max-psnr-drop {opts.max_psnr_drop:g}; try another "
                "--calibration-method or more --calibration-samples, raise --max-psnr-drop, or leave it out")
    validation["fp32"]["passed"] = validation["fp32"]["passed"] and not checks.failures() and not job.problems
    if problems:
        raise ValidationError(f"export validation failed ({len(problems)} problem(s)); nothing was written:\n  "
                              + "\n  ".join(problems))


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


def _codec_tables(src: Source, ref: _Torch, opts: Options, d: Path, x_eval: np.ndarray,
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


def _role_input(src: Source, ref: _Torch, role: str, raw: bool) -> np.ndarray:
    if role == "encoder":
        return src.val_raw[:64] if raw else src.val_x[:64]
    return ref.encode(src.val_x[:64])["code"].astype(np.float32)


def _tools() -> dict[str, str]:
    import onnx
    import onnxruntime

    from edgeae import __version__

    return {"edgeae": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}
