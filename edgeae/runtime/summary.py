"""Numbers and text about bundles and reconstructions: PSNR/MSE, the ``edgeae info`` table.

Kept out of the CLI so scripts and benchmarks report the same figures the commands print.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.runtime.bundle import Manifest, file_problem, read_manifest

__all__ = ["psnr", "psnr_from_mse", "psnr_peak", "is_bounded", "mse", "ReconstructionSummary", "reconstruction_summary", "describe_bundle"]


def mse(x: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error over all elements (float64 accumulation)."""
    d = np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return float(np.mean(d * d)) if d.size else float("nan")


def is_bounded(mode: str) -> bool:
    """Whether a normalization mode puts the data on [0, 1] (so PSNR has a natural peak of 1)."""
    return mode != "standardize"


def psnr_peak(mode: str, x: np.ndarray) -> float:
    """PSNR peak in model units: 1 for [0, 1] data, else the range of the reference samples."""
    if is_bounded(mode):
        return 1.0
    return max(float(np.max(x) - np.min(x)), 1e-12) if np.size(x) else 1.0


def psnr_from_mse(err: float, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of a mean squared error: ``10 log10(range^2 / MSE)``."""
    return math.inf if err <= 0 else 10.0 * math.log10(data_range * data_range / err)


def psnr(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of two arrays; inf for identical arrays.

    The one definition used by training, export, the runtime and the benchmarks: the MSE
    over all elements of a whole set (not an average of per-sample PSNRs).
    """
    return psnr_from_mse(mse(x, y), data_range)


@dataclass
class ReconstructionSummary:
    """Reconstruction quality of a set of samples, in model units."""

    count: int  # samples compared
    mse: float  # mean squared error in model units (the normalized scale)
    psnr: float | None  # dB on the [0, 1] scale; None for standardized / unbounded data
    max_abs_error: float  # largest absolute difference in model units

    def __str__(self) -> str:
        text = f"{self.count} samples: MSE {self.mse:.6g} (model units), max |error| {self.max_abs_error:.4g}"
        if self.psnr is not None:
            text += f", PSNR {self.psnr:.2f} dB (on the [0, 1] scale)"
        return text


def reconstruction_summary(x_model: np.ndarray, x_hat: np.ndarray, normalization: str) -> ReconstructionSummary:
    """Compare inputs and reconstructions, both in model units.

    PSNR is reported for ``scale255`` / ``identity`` data (which live on [0, 1]); for
    ``standardize`` data only the MSE in model units is meaningful.
    """
    bounded = is_bounded(normalization)
    d = np.abs(np.asarray(x_model, np.float32) - np.asarray(x_hat, np.float32))
    return ReconstructionSummary(
        count=int(len(x_model)),
        mse=mse(x_model, x_hat),
        psnr=psnr(x_model, x_hat, 1.0) if bounded else None,
        max_abs_error=float(d.max()) if d.size else float("nan"),
    )


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _specs(specs: list[Any]) -> str:
    return ", ".join(f"{t.name}[{','.join(map(str, t.shape))}]:{t.dtype}" for t in specs)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def describe_bundle(bundle_dir: str | Path, manifest: Manifest | None = None) -> tuple[str, list[str]]:
    """The ``edgeae info`` text and the list of problems found (empty = every hash OK).

    Raises :class:`edgeae.errors.BundleError` only if the manifest itself is unreadable.
    """
    from edgeae.runtime.session import max_supported_opset

    folder = Path(bundle_dir)
    m = manifest if manifest is not None else read_manifest(folder)
    norm = m.normalization
    lines = [
        f"bundle        {folder}",
        f"format        edgeae-bundle v{m.format_version}, created {m.created}",
        f"model         {m.kind}{' (variational)' if m.variational else ''}, code size {m.code_size}",
        f"input         shape {list(m.sample_shape)} {m.input.get('dtype', 'float32')}, "
        f"{'image' if m.is_image else 'vector'}",
        f"normalization {norm['mode']} (raw {norm['raw_dtype']}, {len(norm['offset'])} offset/scale values)",
        "tools         " + (", ".join(f"{k} {v}" for k, v in m.tools.items()) or "-"),
        "",
    ]
    limit = max_supported_opset()
    problems: list[str] = []
    rows = [["role", "precision", "file", "size", "opset", "io", "inputs -> outputs", "sha256"]]
    for g in m.graphs:
        problem = file_problem(folder / g.file, g.size, g.sha256)
        if problem:
            problems.append(problem)
        status = "OK" if not problem else ("MISSING" if "missing" in problem else "BAD")
        opset = f"{g.opset}" + ("" if g.opset <= limit else f" (> {limit}!)")
        if g.opset > limit:
            problems.append(f"{g.file}: opset {g.opset} is newer than this onnxruntime supports ({limit})")
        io = ("raw" if g.raw_io else "norm") + (f" b{g.fixed_batch}" if g.fixed_batch else "")
        rows.append([g.role, g.precision, g.file, _human(g.size), opset, io,
                     f"{_specs(g.inputs)} -> {_specs(g.outputs)}", f"{g.sha256[:12]}.. {status}"])
    lines += _table(rows)
    if m.samples:
        s = m.samples
        _, p = m.samples_file(folder)
        if p:
            problems.append(p)
        lines += ["", f"samples       {s.get('file')} ({s.get('count')} raw samples) {'BAD' if p else 'OK'}"]
    if m.validation:
        lines += ["", "validation"]
        vrows = [["precision", "passed", "psnr", "psnr drop", "max abs error", "latency ms"]]
        for prec, v in m.validation.items():
            v = v if isinstance(v, dict) else {}
            vrows.append([prec, str(v.get("passed", "-")), _num(v.get("psnr")), _num(v.get("psnr_drop")),
                          _compact(v.get("max_abs_error")), _compact(v.get("latency_ms"))])
        lines += ["  " + r for r in _table(vrows)]
    if m.codec:
        lines += ["", _describe_codec(m)]
    lines += ["", "verification  " + ("all files OK" if not problems else f"{len(problems)} problem(s)")]
    lines += [f"  - {p}" for p in problems]
    return "\n".join(lines), problems


def _num(v: Any) -> str:
    return f"{v:.2f}" if isinstance(v, (int, float)) else "-"


def _compact(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={_num(x) if not isinstance(x, float) or x >= 0.01 else f'{x:.2e}'}"
                         for k, x in v.items())
    return _num(v) if v is not None else "-"


def _describe_codec(m: Manifest) -> str:
    """One line per codec table set: bit depth (the first is the default) and held-out rate."""
    records = m.codec if isinstance(m.codec, list) else [m.codec]
    measured = (m.validation or {}).get("fp32", {}).get("codec") or {}
    rows = []
    for i, rec in enumerate(records):
        bits = rec.get("bits") if isinstance(rec, dict) else None
        r = measured.get(str(bits))
        rate = f": {r['bytes_per_sample']:.1f} bytes/sample, PSNR {r['psnr']:.2f} dB held out" if r else ""
        rows.append(f"{bits}-bit{' (default)' if i == 0 else ''}{rate}")
    return "codec         " + "\n              ".join(rows)
