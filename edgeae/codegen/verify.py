"""Check one generated unit on the bundle's held-out samples (called by :func:`generate_c`).

- fp32: C vs ONNX Runtime running the same graph (one thread, default optimizations): float
  outputs within :data:`FP32_TOLERANCE` absolute; uint8 outputs (rounded pixels) within 1.
- int8: C vs the integer reference (:mod:`edgeae.codegen.reference`) with 0 LSB difference;
  the differences from ONNX Runtime (optimizations on, and off) are measured and reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeae.codegen.build import build_harness, run_harness
from edgeae.codegen.emit import Unit
from edgeae.codegen.program import Program
from edgeae.errors import ValidationError

__all__ = ["FP32_TOLERANCE", "unit_inputs", "check_unit", "compare"]

FP32_TOLERANCE = 1e-5


def _session(path: Path, optimize: bool = True):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _run(path: Path, x: np.ndarray, optimize: bool = True) -> list[np.ndarray]:
    sess = _session(path, optimize)
    return [np.asarray(v).reshape(len(x), -1) for v in sess.run(None, {sess.get_inputs()[0].name: x})]


def unit_inputs(bundle_dir: Path, manifest: Any, role: str, raw: bool, samples: np.ndarray) -> np.ndarray:
    """The graph input for ``samples``: raw or normalized samples (encoder), fp32 codes (decoder)."""
    from edgeae.runtime.preprocess import Normalizer

    x = samples if raw else Normalizer(manifest.normalization, manifest.sample_shape).normalize(samples)
    x = np.ascontiguousarray(x)
    if role == "encoder":
        return x
    enc = next(g for g in manifest.graphs if (g.role, g.precision, g.format, g.raw_io, g.fixed_batch)
               == ("encoder", "fp32", "onnx", raw, None))
    return np.ascontiguousarray(_run(bundle_dir / enc.file, x)[0].astype(np.float32))


def compare(got: np.ndarray, want: np.ndarray) -> dict[str, Any]:
    """max abs difference and how many elements differ."""
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    return {"max_abs": float(diff.max()) if diff.size else 0.0, "differ": int(np.count_nonzero(diff)),
            "elements": int(diff.size)}


def check_unit(unit: Unit, program: Program, bundle_dir: Path, manifest: Any, entry: Any, raw: bool,
               samples: np.ndarray, build_dir: Path) -> tuple[int, dict[str, Any]]:
    """Compile, run on the samples, compare; raises ValidationError (nothing is written) on a mismatch."""
    build_dir.mkdir(parents=True, exist_ok=True)
    for ext in (".h", ".c"):
        (build_dir / f"{unit.name}{ext}").write_text(getattr(unit, "header" if ext == ".h" else "source"),
                                                     encoding="utf-8")
    exe = build_harness(unit, build_dir)
    x = unit_inputs(bundle_dir, manifest, entry.role, raw, samples)
    got = run_harness(exe, unit, [x])
    ort_opt = _run(bundle_dir / entry.file, x)
    checks: dict[str, Any] = {}
    problems = []
    names = [t for t, _, _ in unit.outputs]
    if entry.precision == "fp32":
        per = {}
        for name, g, w in zip(names, got, ort_opt, strict=True):
            c = compare(g, w)
            tol = 1.0 if g.dtype == np.uint8 else FP32_TOLERANCE
            c["tolerance"] = tol
            per[name] = c
            if c["max_abs"] > tol:
                problems.append(f"{unit.name}: output {name} differs from ONNX Runtime by {c['max_abs']:.3g} "
                                f"(tolerance {tol:g}) on {c['differ']} of {c['elements']} elements")
        worst = max(v["max_abs"] for v in per.values())
        checks["onnxruntime"] = {"outputs": per, "summary": f"max abs {worst:.2e} vs ONNX Runtime"}
    else:
        from edgeae.codegen.reference import run_reference

        ref = run_reference(program, [x])
        per = {n: compare(g, r) for n, g, r in zip(names, got, ref, strict=True)}
        bad = {n: c for n, c in per.items() if c["differ"]}
        for n, c in bad.items():
            problems.append(f"{unit.name}: output {n} differs from the integer reference on {c['differ']} of "
                            f"{c['elements']} elements (max {c['max_abs']:.3g}); the C kernels are wrong")
        checks["reference"] = {"outputs": per, "summary": "0 LSB vs integer reference" if not bad else "MISMATCH"}
        ort_off = _run(bundle_dir / entry.file, x, optimize=False)
        for label, want in (("onnxruntime", ort_opt), ("onnxruntime_unoptimized", ort_off)):
            per_o = {n: compare(g, w) for n, g, w in zip(names, got, want, strict=True)}
            first = per_o[names[0]]
            checks[label] = {"outputs": per_o, "summary": f"{first['differ']}/{first['elements']} {names[0]} differ "
                             f"(max {first['max_abs']:.3g}) vs ORT{' unopt' if 'unopt' in label else ''}"}
    if problems:
        raise ValidationError("generated C failed its check; nothing was written:\n  " + "\n  ".join(problems))
    return len(x), checks
