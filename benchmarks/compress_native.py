"""Batch-1 compression outside Python: the C codec, the C++ app on ONNX Runtime, Cortex-M.

    MNIST test images -> bundle encoder -> codes -> one whole .eae stream per sample (batch 1)
      python   edgeae.runtime.compress.compress (ORT encoder + Python codec)   = `edgeae compress`
      python   compress_codes alone (the codec's share)
      C        eae_compress (eae_codec_tool bench, -O2)                         codec only
      C++/ORT  examples/cpp edgeae_encode --bench (ORT C++ API + C codec)     encoder + codec
      M4F/M3   the C codec under qemu-system-arm -icount shift=0: instructions per sample

Rounds interleave the variants (A B C D, A B C D, ...) on the same samples; medians of the
rounds are reported, with ratios against the Python path, and bytes/sample must be equal
across all of them (one stream per sample, exact mean over whole passes).
Usage: ``python -m benchmarks.compress_native [--bundle DIR] [--rounds 5] [--duration 1.0]``.
Without --bundle it trains/exports benchmarks/work/mnist-mlp (as benchmarks.run does).
Writes benchmarks/results/compress_native.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
CPP = ROOT / "examples" / "cpp"


def _python_rate(fn, n_items: int, seconds: float) -> dict:
    """Call fn(i) over whole passes of n_items for about `seconds`; per-call percentiles."""
    lat = []
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end or i % n_items:
        t0 = time.perf_counter_ns()
        fn(i % n_items)
        lat.append(time.perf_counter_ns() - t0)
        i += 1
    lat_us = np.asarray(lat) / 1e3
    return {"calls": len(lat), "samples_per_s": len(lat) / (lat_us.sum() / 1e6),
            "p50_us": float(np.percentile(lat_us, 50)), "p90_us": float(np.percentile(lat_us, 90)),
            "p99_us": float(np.percentile(lat_us, 99))}


def _json_run(cmd: list[str]) -> dict:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _build_tool(bundle: Path, work: Path) -> Path:
    from edgeae.codegen.codec import write_codec

    write_codec(bundle, work / "codec", tool=True)
    exe = work / "eae_codec_tool"
    cc = shutil.which("cc") or shutil.which("gcc")
    srcs = [str(work / "codec" / n) for n in ("eae_codec.c", "model_codec.c", "eae_codec_tool.c")]
    subprocess.run([cc, "-O2", "-std=c99", "-DEAE_PREFIX=model", "-I", str(work / "codec"), *srcs, "-o", str(exe)],
                   check=True)
    return exe


def _build_app(work: Path) -> Path | None:
    env = {**os.environ, "PYTHON": sys.executable}
    if subprocess.run([str(CPP / "setup_ort.sh")], env=env, capture_output=True).returncode != 0:
        return None
    subprocess.run(["make", "-s", "-C", str(CPP), f"ORT_DIR={CPP / 'ort'}", f"CODEC_DIR={work / 'codec'}",
                    f"BUILD={work / 'cpp'}"], check=True, capture_output=True)
    return work / "cpp" / "edgeae_encode"


def _targets(bundle: Path, bits: int, work: Path, codes: np.ndarray, streams: list[bytes]) -> dict:
    """The default table only, with and without quantizer thresholds, on each Cortex-M."""
    from edgeae.codegen.codec import write_codec
    from edgeae.codegen.cortexm_codec import CODEC_TARGETS, run_codec_target
    from edgeae.errors import ConfigError

    out = {}
    for thresholds in (True, False):
        folder = work / f"target-{'thresholds' if thresholds else 'double'}"
        write_codec(bundle, folder, bits=bits, thresholds=thresholds)
        for cpu in CODEC_TARGETS:
            try:
                r = run_codec_target(folder, "model", codes, cpu)
            except ConfigError as exc:
                return {"skipped": str(exc)}
            key = f"{cpu} ({'thresholds' if thresholds else 'double division'})"
            out[key] = {k: v for k, v in r.items() if k not in ("streams", "multi")}
            out[key]["same_bytes_as_python"] = r["streams"] == streams
    return out


def _machine() -> str:
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores (shared)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=None, help="bundle with codec tables [default: MNIST MLP]")
    ap.add_argument("--data", type=Path, default=next((p for p in MNIST_CANDIDATES if p.is_dir()), None),
                    help="MNIST folder (IDX files) for the default bundle and its test images")
    ap.add_argument("--samples", type=int, default=200, help="test images cycled through")
    ap.add_argument("--target-samples", type=int, default=50, help="images compressed on Cortex-M")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=1.0, help="seconds per variant per round")
    args = ap.parse_args(argv)

    from edgeae.codegen.codec import bundle_codecs
    from edgeae.runtime import load
    from edgeae.runtime.compress import compress
    from edgeae.runtime.stream import compress_codes

    bundle = args.bundle
    if bundle is None:
        from benchmarks.run import MODELS, _prepare

        if args.data is None:
            ap.error("MNIST not found; pass --data DIR (IDX files) or --bundle DIR")
        _, bundle = _prepare("mnist-mlp", MODELS["mnist-mlp"], args.data, False, print)
    model = load(bundle, "fp32", threads=1)
    if args.data is not None and args.bundle is None:
        from edgeae.data import load_dataset

        x = load_dataset(str(args.data)).x[-args.samples :]  # the last images: never trained on
    else:
        x = np.load(bundle / "samples.npy")[: args.samples]
    x = np.ascontiguousarray(x)
    codes = model.encode(x)
    codec, mid = bundle_codecs(bundle)[0]
    py_streams = [compress(model, x[i : i + 1]) for i in range(len(x))]
    py_bytes = float(np.mean([len(s) for s in py_streams]))

    work = Path(tempfile.mkdtemp(prefix="edgeae-native-"))
    tool = _build_tool(bundle, work)
    codes.astype("<f4").tofile(work / "codes.f32")
    np.save(work / "x.npy", x)
    app = _build_app(work)
    graph = bundle / ("encoder.raw.onnx" if (bundle / "encoder.raw.onnx").is_file() else "encoder.onnx")

    rounds: dict[str, list[dict]] = {"python compress": [], "python codec": [], "C codec": []}
    if app:
        rounds["C++ app (ORT + C codec)"] = []
    for _ in range(args.rounds):
        rounds["python compress"].append(_python_rate(lambda i: compress(model, x[i : i + 1]), len(x), args.duration))
        rounds["python codec"].append(
            _python_rate(lambda i: compress_codes(codec, mid, codes[i : i + 1]), len(x), args.duration))
        rounds["C codec"].append(_json_run([str(tool), "bench", "0", str(work / "codes.f32"), str(len(x)),
                                            str(args.duration)]))
        if app:
            rounds["C++ app (ORT + C codec)"].append(_json_run([str(app), str(graph), str(work / "x.npy"),
                                                                "--bench", str(args.duration)]))
    table = {}
    for name, rs in rounds.items():
        table[name] = {k: statistics.median(r[k] for r in rs) for k in ("samples_per_s", "p50_us", "p90_us", "p99_us")}
        table[name]["bytes_per_sample"] = rs[0].get("bytes_per_sample", py_bytes)
    base = table["python compress"]["samples_per_s"]
    for row in table.values():
        row["vs_python_compress"] = row["samples_per_s"] / base
    target = _targets(bundle, codec.bits, work, codes[: args.target_samples], py_streams[: args.target_samples])
    result = {
        "bundle": str(bundle.resolve().relative_to(ROOT)) if bundle.resolve().is_relative_to(ROOT) else str(bundle),
        "samples": len(x), "code_size": codec.code_size, "bits": codec.bits,
        "python_bytes_per_sample": py_bytes, "rounds": args.rounds, "duration_s": args.duration,
        "machine": _machine(),
        "threads": 1, "graph": graph.name, "target_samples": min(args.target_samples, len(x)), "variants": table, "cortex_m": target,
        "app": None if app else "skipped: ONNX Runtime headers unavailable (examples/cpp/setup_ort.sh)",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compress_native.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "compress_native.md").write_text(_markdown(result))
    print(_markdown(result))
    shutil.rmtree(work, ignore_errors=True)
    return 0


MNIST_CANDIDATES = [ROOT.parent / "shared" / "data" / "mnist", ROOT.parents[1] / "shared" / "data" / "mnist"]


def _markdown(r: dict) -> str:
    lines = [
        f"### Batch-1 compression, {r['machine']}, 1 thread",
        "",
        f"Bundle `{Path(r['bundle']).name}` (code size {r['code_size']}, {r['bits']}-bit tables), "
        f"{r['samples']} held-out images, one whole stream per image; medians of {r['rounds']} interleaved "
        f"rounds; the C++ app runs `{r['graph']}`.",
        "",
        "| variant | samples/s | p50 µs | p99 µs | vs `edgeae compress` | bytes/sample |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in r["variants"].items():
        lines.append(f"| {name} | {v['samples_per_s']:,.0f} | {v['p50_us']:.1f} | {v['p99_us']:.1f} | "
                     f"{v['vs_python_compress']:.1f}x | {v['bytes_per_sample']:.2f} |")
    cm = r["cortex_m"]
    lines += ["", f"C codec on Cortex-M under qemu-system-arm (`-icount shift=0`), codec only, the "
              f"{r['bits']}-bit table alone, one stream per image ({r['target_samples']} images):", ""]
    if "skipped" in cm:
        lines.append(f"skipped: {cm['skipped']}")
    else:
        lines += ["| cpu (quantizer) | instructions/sample | flash: codec + tables (B) | static RAM | stack (B) | same bytes |",
                  "|---|---|---|---|---|---|"]
        for cpu, v in cm.items():
            flash = " + ".join(str(b) for b in v["flash_bytes"].values())
            lines.append(f"| {cpu} ({v['machine']}) | {v['instructions_per_sample']:,.0f} | {flash} | "
                         f"{v['ram_bytes']} | {v['stack_bytes']} | {v['same_bytes_as_python']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
