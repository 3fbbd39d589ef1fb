"""The validation record of each precision (manifest ``validation``) and the export's verdict.

After every graph was compared (:mod:`edgeae.export.compare`), each precision gets its
record: largest errors, the tightest criterion per graph and its margin, held-out PSNR and
its drop, latency, size; the fp32 record also carries each carried sample's reconstruction
error (the fingerprint later checks of one graph compare with). :func:`refuse_failures`
then stops the export on any failed check or PSNR budget, listing every problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeae.errors import ValidationError
from edgeae.export.package import graph_file
from edgeae.export.quantize import INT8_FORMATS
from edgeae.export.validate import Checks, criteria_by_graph, measure_latency, run, session
from edgeae.runtime.metrics import psnr
from edgeae.runtime.preprocess import Normalizer

__all__ = ["SAMPLES_KEPT", "validation_records", "refuse_failures"]

SAMPLES_KEPT = 256  # held-out samples a bundle carries (samples.npy) for later checks


def validation_records(d: Path, src: Any, precisions: list[str], raws: list[bool], checks: Checks,
                       opts: Any, weights: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per precision: errors, the tightest criterion per graph and its margin, held-out PSNR
    (all held-out samples and the bundle's own samples) and its drop, latency, size, notes.
    ``src`` is the export's Source, ``opts`` its Options; ``weights``: int8 graph file -> its
    8-bit weights' criterion (:func:`edgeae.export.validate.weight_check`)."""
    x_eval = src.val_x  # held-out samples, capped at MAX_VALIDATION_SAMPLES by export and export_modules
    pairs = {p: (session(d / graph_file("encoder", p)), session(d / graph_file("decoder", p))) for p in precisions}
    quality = {p: psnr(x_eval, run(dec, run(enc, x_eval)["code"])["x_hat"], src.peak)
               for p, (enc, dec) in pairs.items()}
    carried, fp32_hat = _carried_psnr(src, pairs)
    latency = measure_latency(pairs, src.val_x, repeats=opts.latency_repeats)
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
            "atol": opts.atol,
            "criteria": criteria_by_graph(checks, [graph_file(r, p, raw) for raw in raws for r in ("encoder", "decoder")]),
            "reference_evaluator_max_abs_error": refs or None, "psnr": round(quality[p], 4),
            "samples_psnr": carried.get(p), "psnr_peak": src.peak,
            "psnr_drop": round(quality["fp32"] - quality[p], 4), "latency_ms": latency[p], "threads": 1,
            "size": sizes[p], "size_ratio": round(sizes[p] / sizes["fp32"], 4), "notes": [],
        }
        if p in INT8_FORMATS:
            rec["quantization"] = dict(INT8_FORMATS[p])
            graphs = [graph_file(r, p, raw) for raw in raws for r in ("encoder", "decoder")]
            rec["weights_criterion"] = {f: (weights or {})[f] for f in graphs if f in (weights or {})} or None
        if p != "fp32":
            for b in ("batch1", "batch64"):
                if latency[p][b] > latency["fp32"][b]:
                    rec["notes"].append(f"slower than fp32 at {b.replace('batch', 'batch ')}")
        if opts.raw_io:
            rec["raw_io"] = {"max_abs_error": checks.max_errors(_pair_files(p, raw=True))}
        rec["notes"] += [n for n in checks.notes if n.split(":")[0] in files]
        validation[p] = rec
    validation["fp32"].update(_fingerprints(d, src, raws, fp32_hat))
    return validation


def _carried_input(src: Any, raw: bool) -> np.ndarray:
    """The held-out samples the bundle carries (samples.npy), raw or normalized as the runtime does."""
    x = np.asarray(src.val_raw[:SAMPLES_KEPT])
    return x if raw else Normalizer(src.normalization, src.sample_shape).normalize(x).astype(np.float32)


def _carried_psnr(src: Any, pairs: dict[str, tuple[Any, Any]]) -> tuple[dict[str, float], np.ndarray | None]:
    """PSNR per precision on the samples the bundle carries: what a later check of the bundle
    (``edgeae codegen``) recomputes; plus the fp32 pair's reconstruction, for the fingerprint."""
    if src.val_raw is None:
        return {}, None
    xs = _carried_input(src, raw=False)
    hats = {p: run(dec, run(enc, xs)["code"])["x_hat"] for p, (enc, dec) in pairs.items()}
    return {p: round(psnr(xs, x_hat, src.peak), 4) for p, x_hat in hats.items()}, hats["fp32"]


def _fingerprints(d: Path, src: Any, raws: list[bool], fp32_hat: np.ndarray | None) -> dict[str, list[float]]:
    """Per carried sample, the squared error of the fp32 pair's reconstruction (model units, and
    raw units with --raw-io): the fingerprint a later check of one graph of the bundle compares
    with, within the bound its rounding allows (a graph from another model is far off).
    ``fp32_hat``: the fp32 pair's reconstruction of the model-unit samples, already computed."""
    if src.val_raw is None:
        return {}
    out = {}
    for is_raw in raws:
        x = _carried_input(src, is_raw)
        if is_raw or fp32_hat is None:
            enc, dec = (session(d / graph_file(r, "fp32", is_raw)) for r in ("encoder", "decoder"))
            x_hat = run(dec, run(enc, x)["code"])["x_hat"]
        else:
            x_hat = fp32_hat
        err = (np.asarray(x, np.float64) - np.asarray(x_hat, np.float64)).reshape(len(x), -1)
        out["samples_mse_raw" if is_raw else "samples_mse"] = [float(v) for v in np.mean(err * err, axis=1)]
    return out


def _pair_files(precision: str, raw: bool) -> set[str]:
    """The names checks are recorded under for one encoder/decoder pair (and the pair end to end)."""
    enc, dec = graph_file("encoder", precision, raw), graph_file("decoder", precision, raw)
    return {enc, dec, f"{enc}+{dec}"}


def refuse_failures(validation: dict[str, Any], checks: Checks, problems: list[str], max_psnr_drop: float) -> None:
    """Mark each precision passed or not; any failed check, structural ``problems`` or PSNR
    budget stops the export here, with every problem listed."""
    structural = list(problems)
    problems = [c.line() for c in checks.failures()] + structural
    for p, rec in validation.items():
        rec["passed"] = rec["psnr_drop"] <= max_psnr_drop
        share = max(rec["psnr_drop"], 0.0) / max_psnr_drop if max_psnr_drop > 0 else float(rec["psnr_drop"] > 0)
        rec["psnr_criterion"] = {"criterion": "psnr", "share": round(share, 4), "max_psnr_drop": max_psnr_drop,
                                 "margin_db": round(max_psnr_drop - rec["psnr_drop"], 4)}
        if not rec["passed"]:
            problems.append(
                f"{p}: held-out PSNR drops {rec['psnr_drop']:.2f} dB (fp32 {validation['fp32']['psnr']:.2f} dB -> "
                f"{rec['psnr']:.2f} dB), more than --max-psnr-drop {max_psnr_drop:g}; try another "
                "--calibration-method or more --calibration-samples, raise --max-psnr-drop, or leave it out")
    validation["fp32"]["passed"] = validation["fp32"]["passed"] and not checks.failures() and not structural
    if problems:
        raise ValidationError(f"export validation failed ({len(problems)} problem(s)); nothing was written:\n  "
                              + "\n  ".join(problems))
