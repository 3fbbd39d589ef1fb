"""Which int8 form does ONNX Runtime run fastest, and is it exact on every x86 CPU?

One fp32 encoder is quantized in the forms ONNX Runtime offers (dynamic MatMulInteger, fused
by ORT into DynamicQuantizeMatMul; static QDQ, fused into QGemm / QLinearConv; static
QOperator; uint8 or int8 weights; per-tensor or per-channel), then, on one thread at one
batch size, with ``session.x64quantprecision=1``:

1. speed: every form and fp32 in interleaved blocks (:func:`edgeae.bench.timing.blocks`),
   each ratio to fp32 the median of per-round ratios with its 95% interval;
2. where the time goes: ONNX Runtime's profiler, median microseconds per node;
3. exactness: each form's outputs here, with the option off and on, and (``--cpus``) under
   qemu emulation of CPUs without VNNI (Haswell: AVX2; Nehalem: SSE4.2), compared bit for bit.

    python -m benchmarks.int8_forms [--model mnist-mlp] [--batch 256] [--cpus haswell,nehalem]

Needs the bundles of ``python -m benchmarks.run`` (benchmarks/work/<model>/bundle); writes
benchmarks/results/int8_forms-<model>.json and .md.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OPTION = "session.x64quantprecision"
# name -> (kind, quant format, activation type, weight type, per channel)
FORMS = {
    "dynamic u8 weights (edgeae int8-dynamic)": ("dynamic", None, None, "u8", False),
    "dynamic s8 weights": ("dynamic", None, None, "s8", False),
    "dynamic s8 weights, per channel": ("dynamic", None, None, "s8", True),
    "QDQ u8/u8, per channel (edgeae int8-static)": ("static", "QDQ", "u8", "u8", True),
    "QDQ u8/s8, per channel": ("static", "QDQ", "u8", "s8", True),
    "QDQ u8/s8, per tensor": ("static", "QDQ", "u8", "s8", False),
    "QDQ s8/s8, per channel": ("static", "QDQ", "s8", "s8", True),
    "QOperator u8/s8, per channel": ("static", "QOperator", "u8", "s8", True),
    "QOperator u8/u8, per channel": ("static", "QOperator", "u8", "u8", True),
}


class _Reader:
    """Calibration batches of 32 samples for ``quantize_static``."""

    def __init__(self, data: np.ndarray):
        self._batches = iter([{"x": data[i:i + 32]} for i in range(0, len(data) - len(data) % 32, 32)])

    def get_next(self):
        return next(self._batches, None)


def _write_forms(fp32: Path, calibration: np.ndarray, out: Path) -> dict[str, Path]:
    """Every form of FORMS as an .onnx file in ``out``."""
    import onnx
    from onnxruntime import quantization as q

    from edgeae.export.graphs import gemm_to_matmul
    from edgeae.export.quiet import quiet

    types = {"u8": q.QuantType.QUInt8, "s8": q.QuantType.QInt8}
    prepared = out / "prepared.onnx"
    onnx.save_model(gemm_to_matmul(onnx.load(str(fp32))), str(prepared))
    files = {}
    for i, (name, (kind, fmt, act, weight, per_channel)) in enumerate(FORMS.items()):
        dst = out / f"form{i}.onnx"
        with quiet():
            if kind == "dynamic":
                q.quantize_dynamic(str(prepared), str(dst), weight_type=types[weight], per_channel=per_channel,
                                   extra_options={"MatMulConstBOnly": True})
            else:
                q.quantize_static(str(fp32), str(dst), _Reader(calibration),
                                  quant_format=getattr(q.QuantFormat, fmt), per_channel=per_channel,
                                  activation_type=types[act], weight_type=types[weight],
                                  calibrate_method=q.CalibrationMethod.MinMax,
                                  extra_options={"CalibTensorRangeSymmetric": False, "CalibMovingAverage": False})
        files[name] = dst
    return files


def _session(path: Path, precision_option: str, profile: str | None = None):
    import onnxruntime as ort

    from edgeae.runtime.session import session_options

    opts = session_options(1, **{OPTION: precision_option})
    if profile:
        opts.enable_profiling, opts.profile_file_prefix = True, profile
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def outputs(files: dict[str, Path], x: np.ndarray) -> dict[str, np.ndarray]:
    """Each form's output on ``x``, ``OPTION`` off ("<name>|0") and on ("<name>|1")."""
    return {f"{name}|{opt}": _session(path, opt).run(None, {"x": x})[0]
            for name, path in files.items() for opt in ("0", "1")}


def _speed(fp32: Path, files: dict[str, Path], x: np.ndarray, duration: float) -> dict[str, dict]:
    from edgeae.bench.timing import blocks, median_ci

    names = ["fp32", *files]
    sessions = [_session(fp32, "1")] + [_session(p, "1") for p in files.values()]
    runners = [_caller(s, x) for s in sessions]
    timed = blocks(runners, duration=duration, warmup=5)
    out = {}
    for name, rounds in zip(names, timed.rounds, strict=True):
        med, lo, hi = median_ci([a / b for a, b in zip(timed.rounds[0], rounds, strict=True)])
        out[name] = {"us": round(float(np.median(rounds)) / 1e3, 1), "x_fp32": round(med, 3),
                     "lo": lo and round(lo, 3), "hi": hi and round(hi, 3)}
    return out


def _caller(sess, x: np.ndarray):
    return lambda: sess.run(None, {"x": x})


def _profile(path: Path, x: np.ndarray, calls: int, tmp: Path) -> dict[str, float]:
    """Median microseconds per node (op type and node name) over ``calls`` profiled runs."""
    sess = _session(path, "1", profile=str(tmp / "profile"))
    for _ in range(calls):
        sess.run(None, {"x": x})
    events = json.loads(Path(sess.end_profiling()).read_text())
    per: dict[str, list[float]] = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per[f"{e['args']['op_name']} {e['name'][:-len('_kernel_time')]}"].append(e["dur"])
        elif e.get("cat") == "Session" and e["name"] == "model_run":
            per["(whole run)"].append(e["dur"])
    return {k: float(np.median(v[len(v) // 5:])) for k, v in per.items()}  # the first fifth: warm-up


def _emulated(cpu: str, files: dict[str, Path], x_path: Path, tmp: Path) -> dict[str, np.ndarray]:
    """:func:`outputs` computed in a Python process under qemu emulation of ``cpu``."""
    from edgeae.export.cpucheck import EMULATED_CPUS, qemu

    emulator = qemu()
    if emulator is None:
        raise SystemExit("qemu-x86_64-static is not installed (Debian: apt-get install qemu-user-static)")
    spec = tmp / f"spec-{cpu}.json"
    spec.write_text(json.dumps({"files": {k: str(v) for k, v in files.items()}, "x": str(x_path),
                                "out": str(tmp / f"out-{cpu}.npz")}))
    subprocess.run([emulator, "-cpu", EMULATED_CPUS[cpu], sys.executable, "-m", "benchmarks.int8_forms",
                    "--outputs", str(spec)], check=True, capture_output=True, timeout=3600, cwd=HERE.parent)
    got = np.load(tmp / f"out-{cpu}.npz")
    return {k: got[k] for k in got.files}


def _inputs(bundle: Path, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(held-out samples tiled to ``batch``, calibration samples) in model units."""
    from edgeae.runtime.bundle import read_manifest
    from edgeae.runtime.preprocess import Normalizer

    m = read_manifest(bundle)
    x = Normalizer(m.normalization, m.sample_shape).normalize(np.load(bundle / "samples.npy")).astype(np.float32)
    return np.ascontiguousarray(x[np.arange(batch) % len(x)]), x[: min(len(x), 128)]


def measure(model: str, batch: int, duration: float, cpus: list[str], calls: int = 200,
            bundle: Path | None = None) -> dict:
    import onnxruntime as ort

    from edgeae.bench.timing import machine

    bundle = bundle or HERE / "work" / model / "bundle"
    x, calibration = _inputs(bundle, batch)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = _write_forms(bundle / "encoder.onnx", calibration, tmp)
        speed = _speed(bundle / "encoder.onnx", files, x, duration)
        profile = {name: _profile(path, x, calls, tmp) for name, path in {"fp32": bundle / "encoder.onnx",
                                                                          **files}.items()}
        here = outputs(files, x)
        fp32 = _session(bundle / "encoder.onnx", "0").run(None, {"x": x})[0]
        np.save(tmp / "x.npy", x)
        exact = {name: {"max_abs_vs_fp32": float(np.abs(here[f"{name}|1"] - fp32).max()),
                        "option_changes_output_here": bool(not np.array_equal(here[f"{name}|0"], here[f"{name}|1"]))}
                 for name in files}
        for cpu in cpus:
            there = _emulated(cpu, files, tmp / "x.npy", tmp)
            for name in files:
                for opt in ("0", "1"):
                    exact[name][f"{cpu}_option{opt}_max_abs_diff"] = float(
                        np.abs(there[f"{name}|{opt}"].astype(np.float64) - here[f"{name}|1"]).max())
    return {"model": model, "bundle": str(bundle.relative_to(HERE.parent)) if bundle.is_relative_to(HERE.parent)
            else bundle.name, "batch": batch, "threads": 1, "machine": machine(), "onnxruntime": ort.__version__,
            "duration_s": duration, "speed": speed, "profile_us": profile, "exact": exact, "cpus": cpus}


def _markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"# int8 forms in ONNX Runtime ({r['model']} encoder, batch {r['batch']}, 1 thread)", "",
             f"Bundle: `{r['bundle']}`.", "",
             f"Written by `python -m benchmarks.int8_forms`. Machine: {m['cpu']} ({', '.join(m['isa'])}), "
             f"{m['cores']} cores, shared with other busy processes; onnxruntime {r['onnxruntime']}; "
             f"`{OPTION}=1`. Speed: interleaved blocks, {r['duration_s']} s; x fp32 = median of per-round "
             "ratios [95% interval]. Exact: largest |difference| from this CPU's output with the option on "
             "(0 = bit-identical).", "",
             "| " + " | ".join(["form", "us per call", "x fp32 [95%]", "max abs diff vs fp32",
                                *[f"{c}: option off / on" for c in r["cpus"]]]) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(r["cpus"])]
    for name, s in r["speed"].items():
        e = r["exact"].get(name, {})
        span = f" [{s['lo']:.2f}-{s['hi']:.2f}]" if s["lo"] else ""
        cells = [f"{e[f'{c}_option0_max_abs_diff']:.3g} / {e[f'{c}_option1_max_abs_diff']:.3g}" for c in r["cpus"]] \
            if e else ["-"] * len(r["cpus"])
        lines.append("| " + " | ".join([name, f"{s['us']:.1f}", f"{s['x_fp32']:.2f}{span}",
                                        f"{e.get('max_abs_vs_fp32', 0):.3g}", *cells]) + " |")
    lines += ["", "Per node (ONNX Runtime profiler, median us over the profiled runs):", ""]
    for name, nodes in r["profile_us"].items():
        lines.append(f"- {name}: " + ", ".join(f"{k} {v:.0f}" for k, v in nodes.items()))
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mnist-mlp")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--cpus", default="", help="emulated CPUs to check exactness on: haswell,nehalem")
    ap.add_argument("--bundle", type=Path, default=None, help="bundle folder [default: benchmarks/work/MODEL/bundle]")
    ap.add_argument("--outputs", help=argparse.SUPPRESS)  # child mode under emulation
    args = ap.parse_args()
    if args.outputs:
        spec = json.loads(Path(args.outputs).read_text())
        got = outputs({k: Path(v) for k, v in spec["files"].items()}, np.load(spec["x"]))
        np.savez(spec["out"], **got)
        return
    result = measure(args.model, args.batch, args.duration, [c for c in args.cpus.split(",") if c],
                     bundle=args.bundle)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"int8_forms-{args.model}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    stem.with_suffix(".md").write_text(_markdown(result))
    print(_markdown(result))


if __name__ == "__main__":
    main()
