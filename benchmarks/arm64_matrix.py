"""The ARM64 matrix: MNIST bundles on every emulated CPU model (``python -m benchmarks.arm64``).

    MNIST MLP 784-64-16 and conv (8, 16 channels, code 16), 1 epoch, exported here (x86_64)
    with fp32, int8-dynamic and int8-static graphs
      x  qemu-aarch64-static -cpu cortex-a53 | cortex-a76 | neoverse-n1 | max
      -> the CLI in the aarch64 CPython (encode, decode, compress, decompress, info),
         examples/cpp and the C codec cross-compiled, `edgeae codegen` units cross-compiled:
         each compared with this machine's results on the same held-out samples
      -> the graphs under ONNX Runtime settings: where ARM and x86 part
      -> this machine: int8-dynamic latency with and without MatMulIntegerToFloatFusion

Equality figures only come from emulation; timings are measured on this machine, never
under qemu. Usage: ``python -m benchmarks.arm64 [--cpus cortex-a53,max] [--models mnist-mlp] [--samples 64]``.
Writes benchmarks/results/arm64.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import arm64 as A
from benchmarks import arm64_checks as C
from benchmarks.arm64_report import markdown

RESULTS = A.ROOT / "benchmarks" / "results"
WORK = A.ROOT / "benchmarks" / "work" / "arm64"
MNIST = A.ROOT.parent / "shared" / "data" / "mnist"
MODELS = {"mnist-mlp": {"model": "mlp", "hidden": "64", "code_size": 16},
          "mnist-conv": {"model": "conv", "channels": (8, 16), "code_size": 16}}
FUSION = "MatMulIntegerToFloatFusion"


def log(msg: str) -> None:
    print(f"[arm64 {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def bundle(name: str, data: Path) -> Path:
    """Train (1 epoch) and export once; later runs reuse benchmarks/work/arm64/<name>."""
    from edgeae.export import export
    from edgeae.train import train

    run, out = WORK / name / "run", WORK / name / "bundle"
    if not (run / "metrics.json").is_file():
        train(data=str(data), out=run, epochs=1, split="ordered", overwrite=True, **MODELS[name])
    if not (out / "manifest.json").is_file():
        export(run, out, precisions="fp32,int8-dynamic,int8-static", overwrite=True, latency_repeats=2)
    return out


def fusion_cost(b: Path, duration: float) -> list[dict]:
    """This machine: int8-dynamic p50 with the fusion and without it (interleaved), batches 1 and 64."""
    import onnxruntime as ort

    from edgeae.bench.timing import interleave
    from edgeae.runtime.session import session_options

    rows = []
    for graph, feed in settings_inputs(b, 64).items():
        if "int8-dynamic" not in graph.name:
            continue
        sessions = [ort.InferenceSession(str(graph), session_options(1, **cfg), providers=["CPUExecutionProvider"])
                    for cfg in ({C.DISABLE: ""}, {C.DISABLE: FUSION})]
        name = sessions[0].get_inputs()[0].name
        for batch in (1, 64):
            xb = feed[:batch]
            outs = [s.run(None, {name: xb})[0] for s in sessions]
            ns = interleave([lambda s=s, f={name: xb}: s.run(None, f) for s in sessions], duration=duration)
            p50 = [statistics.median(t) / 1e3 for t in ns]
            rows.append({"graph": graph.name, "batch": batch, "fused_us": p50[0], "unfused_us": p50[1],
                         "ratio": p50[1] / p50[0], "same_outputs": bool(np.array_equal(*outs))})
    return rows


def settings_inputs(b: Path, n: int) -> dict[Path, np.ndarray]:
    """The bundle's graphs -> their inputs: normalized held-out samples, their fp32 codes."""
    import onnxruntime as ort

    from edgeae.runtime.bundle import read_manifest
    from edgeae.runtime.preprocess import Normalizer

    m = read_manifest(b)
    x = Normalizer(m.normalization, m.sample_shape).normalize(np.load(b / "samples.npy")[:n])
    codes = ort.InferenceSession(str(b / "encoder.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    return {b / (f"{r}.onnx" if p == "fp32" else f"{r}.{p}.onnx"): (x if r == "encoder" else codes)
            for r in ("encoder", "decoder") for p in ("fp32", "int8-dynamic", "int8-static")}


def install_check(work: Path) -> dict:
    """`pip install edgeae` resolved by pip itself in the aarch64 CPython (dry run, PyPI, binaries only).

    pip judges environment markers by the interpreter that runs it, so only an aarch64 pip
    shows what a Raspberry Pi would install; this machine's pip (pure Python) is lent to it.
    """
    import pip

    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("*.whl"):
        old.unlink()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(work),
                    str(A.ROOT)], check=True, capture_output=True, timeout=900)
    wheel = next(work.glob("edgeae-*.whl"))
    report = work / "report.json"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from pip._internal.cli.main import main; "
            "sys.exit(main(['install', '--dry-run', '--quiet', '--ignore-installed', '--only-binary=:all:', "
            "'--report', sys.argv[2], '--target', sys.argv[3], sys.argv[4]]))")
    for _ in range(2):  # once more after a failure: PyPI over the network can fail for a moment
        res = A.emulated("cortex-a76", [str(A.PYTHON), "-c", code, str(Path(pip.__file__).parents[1]), str(report),
                                        str(work / "target"), str(wheel)], timeout=1800, text=True)
        if res.returncode == 0:
            break
    if res.returncode != 0:
        return {"ok": False, "error": res.stderr.strip().splitlines()[-1:]}
    r = json.loads(report.read_text())
    return {"ok": True, "platform_machine": r["environment"]["platform_machine"],
            "installs": [i["download_info"]["url"].rsplit("/", 1)[-1] for i in r["install"]]}


def _versions() -> dict:
    import onnxruntime

    def first(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "absent"

    return {"qemu": first([A.qemu() or "qemu-aarch64-static", "--version"]),
            "cross_gcc": first([A.CROSS_CC, "--version"]), "onnxruntime_x86": onnxruntime.__version__,
            "userland": (A.ARM64_DIR / ".ready").read_text().strip(),
            "python_x86": platform.python_version(), "missing_aarch64_wheels": A.missing_wheels()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.arm64", description=__doc__.split("\n")[0])
    ap.add_argument("--cpus", default=",".join(A.CPUS), help="qemu CPU models, comma-separated")
    ap.add_argument("--models", default=",".join(MODELS), help="of: " + ", ".join(MODELS))
    ap.add_argument("--samples", type=int, default=64, help="held-out samples per check")
    ap.add_argument("--data", type=Path, default=MNIST, help="MNIST folder (IDX files)")
    ap.add_argument("--duration", type=float, default=1.0, help="seconds per timed variant (x86 only)")
    args = ap.parse_args(argv)
    for why in (A.setup(), A.problem(), A.cross_problem()):
        if why:
            sys.exit(f"Error: {why}")
    headers = C.CPP / "ort" / "include"
    res = subprocess.run([str(C.CPP / "setup_ort.sh")], capture_output=True, text=True, timeout=1200,
                         env={**__import__("os").environ, "PYTHON": sys.executable})
    if res.returncode != 0:
        sys.exit(f"Error: ONNX Runtime headers: {res.stderr.strip()}")
    from edgeae.bench.timing import machine

    out = {"machine": machine(), "versions": _versions(), "samples": args.samples, "models": {}, "cpus": {}}
    log("pip install edgeae, resolved by the aarch64 pip")
    out["install"] = install_check(WORK / "install")
    for name in args.models.split(","):
        b = bundle(name, args.data)
        apps = C.build_cpp(b, WORK / name / "cpp", headers)
        log(f"{name}: x86 cost of leaving out {FUSION}")
        per = out["models"][name] = {"fusion_cost": fusion_cost(b, args.duration), "cpus": {}}
        for cpu in args.cpus.split(","):
            out["cpus"][cpu] = {"described": A.CPUS.get(cpu, ""), "cpuinfo": A.features(cpu)}
            log(f"{name} on {cpu}")
            w = WORK / name / cpu
            per["cpus"][cpu] = {"cli": C.cli_check(b, cpu, WORK / name / "cli", args.samples),
                                "cpp": C.cpp_check(b, cpu, w / "cpp", apps, args.samples),
                                "codegen": C.codegen_check(b, cpu, WORK / name / "codegen", min(args.samples, 16)),
                                "settings": C.trace(settings_inputs(b, args.samples), cpu,
                                                    WORK / name / cpu / "settings")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "arm64.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    (RESULTS / "arm64.md").write_text(markdown(out))
    log(f"wrote {RESULTS / 'arm64.md'}")
