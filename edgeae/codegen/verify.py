"""Check one generated unit on the bundle's held-out samples (called by :func:`generate_c`).

The criteria are the exporter's (docs/export.md, "Validation"):

- fp32: C vs ONNX Runtime running the same graph (one thread, default optimizations), each
  output element within the bound two correct float evaluations of that graph can differ
  by (:func:`edgeae.numerics.deviation_bounds`: the rounding of every sum over its length
  and magnitude; a rounded uint8 pixel one level at a tie).
- int8: C vs the integer reference (:mod:`edgeae.codegen.reference`) with 0 LSB difference;
  the differences from ONNX Runtime (optimizations on, and off) are measured and reported,
  with the share of the integer-semantics bound (one step per tie) they use.
- x86-64 hosts: the unit's baseline copy (built with ``<UNIT>_NO_DISPATCH``) gives the same
  bytes as the build that runs its AVX2 copy (:mod:`edgeae.codegen.x86`) where the CPU has it.
- every unit, end to end on the samples: the C encoder's codes decoded by the bundle's fp32
  decoder, or the C decoder on the fp32 encoder's codes, must keep the held-out PSNR the
  manifest records for fp32 within that export's ``--max-psnr-drop`` (a graph swapped in
  from another model computes consistently, and wrongly).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.codegen.build import build_harness, run_harness
from edgeae.codegen.emit import Unit
from edgeae.codegen.program import Program
from edgeae.errors import ValidationError

__all__ = ["PSNR_SLACK_DB", "unit_inputs", "check_unit", "compare"]

PSNR_SLACK_DB = 0.01  # PSNR a correct C unit may lose beyond --max-psnr-drop (float rounding of the sums)


def _session(path: Path, optimize: bool = True):
    import onnxruntime as ort

    from edgeae.runtime.session import session_options

    opts = session_options(1, optimization="all" if optimize else "disabled")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _run(path: Path, x: np.ndarray, optimize: bool = True) -> list[np.ndarray]:
    sess = _session(path, optimize)
    return [np.asarray(v).reshape(len(x), -1) for v in sess.run(None, {sess.get_inputs()[0].name: x})]


class _Memo:
    """ONNX Runtime outputs and rounding bounds of the bundle's graphs, once per graph and input:
    the unit's own check, the PSNR check and the fingerprint check share them."""

    def __init__(self) -> None:
        self._done: dict[tuple, Any] = {}

    def _key(self, what: str, path: Path, x: np.ndarray) -> tuple:
        import hashlib

        x = np.ascontiguousarray(x)
        return what, str(path), x.shape, x.dtype.str, hashlib.blake2b(x.tobytes(), digest_size=16).digest()

    def run(self, path: Path, x: np.ndarray, optimize: bool = True) -> list[np.ndarray]:
        key = self._key(f"run{optimize}", path, x)
        if key not in self._done:
            self._done[key] = _run(path, np.ascontiguousarray(x), optimize)
        return self._done[key]

    def bounds(self, path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
        from edgeae.numerics import deviation_bounds

        key = self._key("bounds", path, x)
        if key not in self._done:
            self._done[key] = deviation_bounds(path, np.ascontiguousarray(x)).bounds
        return self._done[key]


def unit_inputs(bundle_dir: Path, manifest: Any, role: str, raw: bool, samples: np.ndarray) -> np.ndarray:
    """The graph input for ``samples``: raw or normalized samples (encoder), fp32 codes (decoder)."""
    x = _samples_input(manifest, raw, samples)
    return x if role == "encoder" else _fp32_codes(bundle_dir, manifest, raw, x)


def _samples_input(manifest: Any, raw: bool, samples: np.ndarray) -> np.ndarray:
    """The samples as an encoder with this I/O takes them: raw, or normalized as the runtime does."""
    from edgeae.runtime.preprocess import Normalizer

    x = samples if raw else Normalizer(manifest.normalization, manifest.sample_shape).normalize(samples)
    return np.ascontiguousarray(x)


def _fp32_codes(bundle_dir: Path, manifest: Any, raw: bool, x: np.ndarray, memo: _Memo | None = None) -> np.ndarray:
    """The bundle's fp32 encoder (this I/O) on encoder inputs ``x``, in ONNX Runtime."""
    enc = bundle_dir / _fp32_pair(manifest, raw)[0]
    return np.ascontiguousarray((memo or _Memo()).run(enc, x)[0].astype(np.float32))


def compare(got: np.ndarray, want: np.ndarray) -> dict[str, Any]:
    """max abs difference and how many elements differ."""
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    return {"max_abs": float(diff.max()) if diff.size else 0.0, "differ": int(np.count_nonzero(diff)),
            "elements": int(diff.size)}


def _bounded(got: np.ndarray, want: np.ndarray, bound: np.ndarray) -> dict[str, Any]:
    from edgeae.numerics import compare_bounded

    _, share, over = compare_bounded(got, want, bound)
    largest = float(np.max(bound, initial=0.0))
    return {"share": share, "over": over, "largest_bound": largest, "tolerance": largest}


def _int8_checks(unit: Unit, program: Program, bundle_dir: Path, entry: Any, x: np.ndarray, names: list[str],
                 got: list[np.ndarray], memo: _Memo, checks: dict[str, Any]) -> list[str]:
    """0 LSB vs the integer reference (enforced); vs ONNX Runtime measured, with the share of
    the integer-semantics bound used."""
    from edgeae.codegen.reference import run_reference

    ref = run_reference(program, [x])
    per = {n: compare(g, r) for n, g, r in zip(names, got, ref, strict=True)}
    bad = {n: c for n, c in per.items() if c["differ"]}
    problems = [f"{unit.name}: output {n} differs from the integer reference on {c['differ']} of "
                f"{c['elements']} elements (max {c['max_abs']:.3g}); the C kernels are wrong" for n, c in bad.items()]
    checks["reference"] = {"outputs": per, "summary": "0 LSB vs integer reference" if not bad else "MISMATCH"}
    bounds = memo.bounds(bundle_dir / entry.file, x)
    ort_opt, ort_off = memo.run(bundle_dir / entry.file, x), memo.run(bundle_dir / entry.file, x, optimize=False)
    for label, want in (("onnxruntime", ort_opt), ("onnxruntime_unoptimized", ort_off)):
        per_o = {n: {**compare(g, w), **_bounded(g, w, np.asarray(bounds[n], np.float64).reshape(len(x), -1))}
                 for n, g, w in zip(names, got, want, strict=True)}
        first = per_o[names[0]]
        checks[label] = {"outputs": per_o, "summary": f"{first['differ']}/{first['elements']} {names[0]} differ "
                         f"(max {first['max_abs']:.3g}, {first['share']:.2g} of the tie bound) vs "
                         f"ORT{' unopt' if 'unopt' in label else ''}"}
    return problems


def _psnr_check(bundle_dir: Path, manifest: Any, entry: Any, raw: bool, samples: np.ndarray, out: np.ndarray,
                problems: list[str], unit_name: str, memo: _Memo) -> dict[str, Any] | None:
    """End to end on the samples: C encoder -> fp32 decoder, or fp32 encoder -> C decoder, vs the
    fp32 PSNR the manifest records (skipped for bundles written before it was recorded)."""
    from edgeae.runtime.metrics import psnr, psnr_peak
    from edgeae.runtime.preprocess import Normalizer

    rec = (manifest.validation or {}).get("fp32") or {}
    want = rec.get("samples_psnr")
    if want is None or len(samples) != int((manifest.samples or {}).get("count", -1)):
        return None
    nz = Normalizer(manifest.normalization, manifest.sample_shape)
    x = nz.normalize(samples).astype(np.float32)
    out = out.reshape((len(x), -1))
    if entry.role == "encoder":
        x_hat = memo.run(bundle_dir / _fp32_pair(manifest, False)[1], out.astype(np.float32))[0]
    else:
        x_hat = nz.normalize(out.reshape(samples.shape)) if raw else out
    peak = float(rec.get("psnr_peak") or psnr_peak(manifest.normalization["mode"], x))
    got = psnr(x.reshape(len(x), -1), np.asarray(x_hat, np.float64).reshape(len(x), -1), peak)
    allowed = float((rec.get("psnr_criterion") or {}).get("max_psnr_drop", 0.0)) + PSNR_SLACK_DB
    if got < want - allowed:
        problems.append(f"{unit_name}: end to end on the bundle's {len(x)} samples PSNR {got:.2f} dB, more than "
                        f"{allowed:g} dB below the {want:.2f} dB the manifest records for fp32 (a drop "
                        f"{(want - got) / allowed:.3g} x the allowed): the graph does not belong to this model")
    return {"psnr": round(got, 4), "manifest_fp32": want, "allowed_drop_db": allowed,
            "summary": f"end to end {got:.2f} dB on {len(x)} samples (fp32 recorded {want:.2f} dB)"}


def _fp32_pair(manifest: Any, raw: bool) -> tuple[str, str]:
    """The bundle's fp32 encoder and decoder files with this I/O."""
    pick = {g.role: g.file for g in manifest.graphs if (g.precision, g.format, g.raw_io, g.fixed_batch)
            == ("fp32", "onnx", raw, None)}
    return pick["encoder"], pick["decoder"]


def _fingerprint_check(bundle_dir: Path, manifest: Any, entry: Any, raw: bool, samples: np.ndarray, out: np.ndarray,
                       problems: list[str], unit_name: str, memo: _Memo) -> dict[str, Any] | None:
    """Per carried sample, the reconstruction's squared error vs the fp32 pair's the manifest
    records; each may move only by what the rounding bound ``D`` of the reconstruction allows:
    ``|mse(a) - mse(b)| <= mean(D (2 |x - a| + D))``. An fp32 graph from another model fails."""
    from edgeae.numerics import deviation_bounds

    want = ((manifest.validation or {}).get("fp32") or {}).get("samples_mse_raw" if raw else "samples_mse")
    if want is None or len(want) != len(samples):
        return None
    x = _samples_input(manifest, raw, samples)
    enc_file, dec_file = (bundle_dir / f for f in _fp32_pair(manifest, raw))
    d_enc = memo.bounds(enc_file, x)["code"]
    if entry.role == "encoder":
        codes = np.ascontiguousarray(out.reshape(len(x), -1).astype(np.float32))
        d_in = np.abs(codes - memo.run(enc_file, x)[0]) + d_enc
        x_hat = memo.run(dec_file, codes)[0]
    else:
        codes, d_in, x_hat = _fp32_codes(bundle_dir, manifest, raw, x, memo), d_enc, out
    bound = deviation_bounds(dec_file, codes, d_in=d_in).bounds["x_hat"]
    n = len(x)
    err = np.abs(np.asarray(x, np.float64).reshape(n, -1) - np.asarray(x_hat, np.float64).reshape(n, -1))
    d = np.asarray(bound, np.float64).reshape(n, -1)
    mse = np.mean(err * err, axis=1)
    allowed = np.mean(d * (2 * err + d), axis=1) + 1e-12 * (1 + mse)
    moved = np.abs(mse - np.asarray(want, np.float64))
    over = int(np.count_nonzero(moved > allowed))
    share = float(np.max(np.where(allowed > 0, moved / allowed, 0.0), initial=0.0))
    if over:
        problems.append(f"{unit_name}: on {over} of {n} carried samples the reconstruction error moved beyond its "
                        f"rounding bound from the fp32 value the manifest records (largest {moved.max():.3g}, "
                        f"{share:.3g} x the bound): the graph does not belong to this model")
    return {"samples": n, "over": over, "share": share,
            "summary": f"per-sample error {share:.2g} of its bound on {n} samples"}


def _baseline_copy_check(unit: Unit, build_dir: Path, x: np.ndarray, got: list[np.ndarray]) -> list[str]:
    """x86-64 with gcc: the unit built without its AVX2 copy must give the bytes ``got`` (the
    default build, which runs the AVX2 copy where the CPU has AVX2)."""
    knob = f"{unit.name.upper()}_NO_DISPATCH"
    if platform.machine().lower() not in ("x86_64", "amd64") or knob not in unit.source:
        return []
    exe = build_harness(unit, build_dir, flags=["-O2", f"-D{knob}"], cxx=None, tag="baseline")
    base = run_harness(exe, unit, [x])
    if all(np.array_equal(a.view(np.uint8), b.view(np.uint8)) for a, b in zip(got, base, strict=True)):
        return []
    return [f"{unit.name}: the AVX2 copy and the baseline copy ({knob}) give different outputs"]


def check_unit(unit: Unit, program: Program, bundle_dir: Path, manifest: Any, entry: Any, raw: bool,
               samples: np.ndarray, build_dir: Path) -> tuple[int, dict[str, Any]]:
    """Compile, run on the samples, compare; raises ValidationError (nothing is written) on a mismatch."""
    build_dir.mkdir(parents=True, exist_ok=True)
    for ext in (".h", ".c"):
        (build_dir / f"{unit.name}{ext}").write_text(getattr(unit, "header" if ext == ".h" else "source"),
                                                     encoding="utf-8")
    exe = build_harness(unit, build_dir)
    memo = _Memo()
    x = _samples_input(manifest, raw, samples)
    x = x if entry.role == "encoder" else _fp32_codes(bundle_dir, manifest, raw, x, memo)
    got = run_harness(exe, unit, [x])
    checks: dict[str, Any] = {}
    problems = _baseline_copy_check(unit, build_dir, x, got)
    names = [t for t, _, _ in unit.outputs]
    if entry.precision == "fp32":
        ort_opt, bounds = memo.run(bundle_dir / entry.file, x), memo.bounds(bundle_dir / entry.file, x)
        per = {}
        for name, g, w in zip(names, got, ort_opt, strict=True):
            c = compare(g, w)
            b = np.asarray(bounds[name], np.float64).reshape(len(x), -1)
            c.update(_bounded(g, w, b))
            per[name] = c
            if c["over"]:
                problems.append(f"{unit.name}: output {name} differs from ONNX Runtime beyond its rounding bound on "
                                f"{c['over']} of {c['elements']} elements (max {c['max_abs']:.3g}, "
                                f"{c['share']:.3g} x the bound)")
        worst = max(v["share"] for v in per.values())
        checks["onnxruntime"] = {"outputs": per, "summary": f"{worst:.2g} of the rounding bound vs ONNX Runtime"}
    else:
        problems += _int8_checks(unit, program, bundle_dir, entry, x, names, got, memo, checks)
    carried = _psnr_check(bundle_dir, manifest, entry, raw, samples, got[0], problems, unit.name, memo)
    if carried is not None:
        checks["psnr"] = carried
    if entry.precision == "fp32":
        fp = _fingerprint_check(bundle_dir, manifest, entry, raw, samples, got[0], problems, unit.name, memo)
        if fp is not None:
            checks["fingerprint"] = fp
    if problems:
        raise ValidationError("generated C failed its check; nothing was written:\n  " + "\n  ".join(problems))
    return len(x), checks
