"""What the ARM64 checks compare: one bundle, one emulated CPU model, this machine's results.

    cli_check      edgeae info / encode / decode / compress / decompress in the aarch64 CPython
                   (one interpreter, benchmarks.arm64.cli_batch) vs the same commands here
    cpp_check      examples/cpp cross-compiled (g++-aarch64-linux-gnu, the aarch64 wheel's
                   libonnxruntime.so) vs the Python runtime here: codes and .eae bytes; the C
                   codec's decompress (eae_codec_tool) of the streams written here
    codegen_check  `edgeae codegen` units cross-compiled (-static) vs the same units built here

int8 results must be bit-identical; fp32 results are reported as the largest absolute
difference. Every comparison is against outputs computed here from the same inputs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from benchmarks import arm64 as A

__all__ = ["ENCODERS", "cli_check", "codegen_check", "compare", "cpp_check"]

ENCODERS = ("fp32", "int8-dynamic", "int8-static")
CPP = A.ROOT / "examples" / "cpp"


def compare(got: np.ndarray, want: np.ndarray) -> dict[str, Any]:
    """Bit-identical?, largest absolute difference (also relative to the largest value), elements that differ."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return {"identical": False, "max_abs": float("inf"), "differ": -1, "shape": [got.shape, want.shape]}
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    scale = float(np.abs(want.astype(np.float64)).max(initial=0.0))
    return {"identical": bool(got.tobytes() == want.tobytes()), "max_abs": float(diff.max(initial=0.0)),
            "max_rel": float(diff.max(initial=0.0)) / scale if scale else 0.0,  # to the largest |value|
            "differ": int(np.count_nonzero(diff)), "elements": int(diff.size)}


def _precisions(bundle: Path, role: str) -> list[str]:
    from edgeae.runtime.bundle import read_manifest

    have = {g.precision for g in read_manifest(bundle).graphs if g.role == role and g.format == "onnx"}
    return [p for p in ENCODERS if p in have]


def _jobs(bundle: Path, x: Path, host: Path, out: Path) -> list[list[str]]:
    """info, encode (each precision), decode (each precision, of this machine's fp32 codes), compress,
    decompress (of this machine's fp32 stream)."""
    codes_in = host / "codes.fp32.npy"
    b = str(bundle)
    jobs = [["info", b]]
    jobs += [["encode", b, str(x), "-o", str(out / f"codes.{p}.npy"), "--precision", p, "--overwrite"]
             for p in _precisions(bundle, "encoder")]
    jobs += [["decode", b, str(codes_in), "-o", str(out / f"decoded.{p}.npy"), "--precision", p, "--overwrite"]
             for p in _precisions(bundle, "decoder")]
    jobs += [["compress", b, str(x), "-o", str(out / f"stream.{p}.eae"), "--precision", p]
             for p in ("fp32", "int8-dynamic") if p in _precisions(bundle, "encoder")]
    jobs += [["decompress", b, str(host / "stream.fp32.eae"), "-o", str(out / "decompressed.npy"), "--overwrite"]]
    return jobs


def _status(r: dict) -> str:
    return "ok" if r["exit"] == 0 else ("uncaught error: " if r["exit"] == -1 else f"exit {r['exit']}: ") + \
        (r["stderr"].strip().splitlines() or ["?"])[-1][:200]


def cli_check(bundle: Path, model: str, work: Path, n: int = 16) -> dict[str, Any]:
    """The CLI on emulated ``model`` vs here; the host's files are kept in work/host."""
    x = work / "x.npy"
    work.mkdir(parents=True, exist_ok=True)
    np.save(x, np.load(bundle / "samples.npy")[:n])
    host, arm = work / "host", work / model
    for d in (host, arm):
        d.mkdir(exist_ok=True)
    if not (host / "done.json").is_file():
        res = A.run_batch(None, _jobs(bundle, x, host, host), host)
        (host / "done.json").write_text(json.dumps([_status(r) for r in res]))
    host_status = json.loads((host / "done.json").read_text())
    res = A.run_batch(model, _jobs(bundle, x, host, arm), arm)
    report: dict[str, Any] = {"samples": n, "commands": {}, "encode": {}, "decode": {}, "streams": {},
                              "decompress": None}
    for r, hs in zip(res, host_status, strict=True):
        key = " ".join([r["argv"][0], *[a for a in r["argv"] if a in ENCODERS]])
        report["commands"][key] = {"arm64": _status(r), "x86_64": hs}
    info = [r for r in res if r["argv"][0] == "info"][0]
    report["info_same"] = info["exit"] == 0 and info["stdout"] == _host_info(bundle)
    for p in _precisions(bundle, "encoder"):
        if (arm / f"codes.{p}.npy").is_file():
            report["encode"][p] = compare(np.load(arm / f"codes.{p}.npy"), np.load(host / f"codes.{p}.npy"))
    for p in _precisions(bundle, "decoder"):
        if (arm / f"decoded.{p}.npy").is_file():
            report["decode"][p] = compare(np.load(arm / f"decoded.{p}.npy"), np.load(host / f"decoded.{p}.npy"))
    for f in sorted(host.glob("stream.*.eae")):
        mine = arm / f.name
        report["streams"][f.name] = (mine.read_bytes() == f.read_bytes()) if mine.is_file() else None
    if (arm / "decompressed.npy").is_file():  # this machine's stream, decoded there
        report["decompress"] = compare(np.load(arm / "decompressed.npy"), np.load(host / "decompressed.npy"))
    return report


def _host_info(bundle: Path) -> str:
    from click.testing import CliRunner

    from edgeae.cli import cli

    return CliRunner().invoke(cli, ["info", str(bundle)]).output


def _make(args: list[str], what: str) -> None:
    res = subprocess.run(args, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed: {(res.stderr or res.stdout)[-3000:]}")


def build_cpp(bundle: Path, work: Path, headers: Path) -> tuple[Path, Path]:
    """(edgeae_encode, eae_codec_tool) for aarch64, with the bundle's C codec."""
    from edgeae.codegen.codec import write_codec

    codec = work / "codec"
    if not codec.is_dir():
        write_codec(bundle, codec, tool=True)
    ort = A.ARM64_DIR / "ort"
    if not (ort / "include").exists():
        (ort / "include").symlink_to(headers.resolve())
    _make(["make", "-s", "-C", str(CPP), f"ORT_DIR={ort}", f"CODEC_DIR={codec}", f"BUILD={work / 'build'}",
           f"CC={A.CROSS_CC}", f"CXX={A.CROSS_CXX}"], "cross-compiling examples/cpp")
    tool = work / "build" / "eae_codec_tool"
    _make([A.CROSS_CC, "-O2", "-std=c99", "-ffp-contract=off", "-static", "-I", str(codec), str(codec / "eae_codec.c"),
           str(codec / "model_codec.c"), str(codec / "eae_codec_tool.c"), "-o", str(tool)], "cross-compiling eae_codec_tool")
    return work / "build" / "edgeae_encode", tool


def cpp_check(bundle: Path, model: str, work: Path, apps: tuple[Path, Path], n: int = 16) -> dict[str, Any]:
    """The cross-compiled C++ app and C codec on emulated ``model`` vs the Python runtime here."""
    from edgeae.codegen.codec import bundle_codecs
    from edgeae.runtime import load
    from edgeae.runtime import stream as S

    app, tool = apps
    work.mkdir(parents=True, exist_ok=True)
    x = np.load(bundle / "samples.npy")[-n:]  # the last held-out samples: others than the CLI check's
    np.save(work / "x.npy", x)
    codec, mid = bundle_codecs(bundle)[0]
    report: dict[str, Any] = {"samples": n, "codes": {}, "stream_same": {}, "decompress": {}}
    for p in _precisions(bundle, "encoder"):
        graph = bundle / ("encoder.onnx" if p == "fp32" else f"encoder.{p}.onnx")
        res = A.emulated(model, [app, graph, work / "x.npy", "-c", work / f"c.{p}.npy", "-s", work / f"s.{p}.eae"],
                         timeout=900, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"edgeae_encode on {model} failed: {res.stderr[-2000:]}")
        want = load(bundle, p).encode(x)
        report["codes"][p] = compare(np.load(work / f"c.{p}.npy"), want)
        stream = S.compress_codes(codec, mid, want)
        report["stream_same"][p] = (work / f"s.{p}.eae").read_bytes() == stream
        (work / f"py.{p}.eae").write_bytes(stream)
        res = A.emulated(model, [tool, "decompress", work / f"py.{p}.eae", work / f"d.{p}.f32"], timeout=900)
        if res.returncode != 0:
            raise RuntimeError(f"eae_codec_tool decompress on {model} failed: {res.stderr[-2000:]!r}")
        got = np.fromfile(work / f"d.{p}.f32", np.float32).reshape(want.shape)
        report["decompress"][p] = compare(got, S.decompress_codes(codec, mid, stream))
    return report


def codegen_check(bundle: Path, model: str, work: Path, n: int = 8) -> dict[str, Any]:
    """Every unit of `edgeae codegen` built for aarch64 (-static) vs built here, on held-out samples."""
    from edgeae.codegen import generate_c
    from edgeae.codegen.build import build_harness, run_harness
    from edgeae.codegen.verify import unit_inputs
    from edgeae.numerics import compare_bounded, deviation_bounds
    from edgeae.runtime.bundle import read_manifest

    c_dir = work / "c"
    if not (c_dir / "codegen.json").is_file():
        generate_c(bundle, c_dir, prefix="model", codec=False, overwrite=True)
    report = json.loads((c_dir / "codegen.json").read_text())
    manifest = read_manifest(bundle)
    x_raw = np.load(bundle / manifest.samples["file"])[:n]
    # fp32: each element within the bound two correct float evaluations of the graph can differ by
    # (the criterion `edgeae codegen` checks against ONNX Runtime); "share" is the largest |diff| / bound
    out: dict[str, Any] = {"samples": n, "fp32_criterion": "rounding bound (edgeae.numerics)", "units": {}}
    for g in report["graphs"]:
        unit = SimpleNamespace(name=g["name"], inputs=[tuple(t) for t in g["inputs"]],
                               outputs=[tuple(t) for t in g["outputs"]])
        x = unit_inputs(bundle, manifest, g["role"], report["io"] == "raw", x_raw)
        host_exe = c_dir / f"{unit.name}_host"
        if not host_exe.is_file():
            build_harness(unit, c_dir, cxx=None, tag="host")
        arm_exe = c_dir / f"{unit.name}_aarch64"
        if not arm_exe.is_file():
            build_harness(unit, c_dir, cc=A.CROSS_CC, flags=["-O2", "-static"], cxx=None, tag="aarch64")
        want = run_harness(host_exe, unit, [x])
        got = run_harness(arm_exe, unit, [x], prefix=[A.qemu(), "-cpu", model])
        per = [compare(a, b) for a, b in zip(got, want, strict=True)]
        share = None
        if g["precision"] == "fp32":
            bounds = deviation_bounds(bundle / g["graph"], x).bounds
            share = max(compare_bounded(a.reshape(len(x), -1), b.reshape(len(x), -1),
                                        np.asarray(bounds[name], np.float64).reshape(len(x), -1))[1]
                        for (name, _, _), a, b in zip(unit.outputs, got, want, strict=True))
        out["units"][unit.name] = {"precision": g["precision"], "role": g["role"], "share": share,
                                   "identical": all(c["identical"] for c in per),
                                   "max_abs": max(c["max_abs"] for c in per),
                                   "differ": sum(c["differ"] for c in per), "elements": sum(c["elements"] for c in per)}
    return out


# ---- where an int8 graph's results part (run in both interpreters; onnxruntime + numpy only) ----

DISABLE = "optimization.disable_specified_optimizers"  # session config key: optimizers left out
KLEIDIAI = "mlas.disable_kleidiai"  # "1": MLAS's own kernels instead of Arm's KleidiAI (SME) ones
_ORT = {DISABLE: "", KLEIDIAI: "0"}  # ONNX Runtime's own defaults, overriding the runtime's ARM64 ones
SETTINGS = {  # name -> (optimization level, session config entries)
    "edgeae": ("all", {}),  # the runtime's defaults (ARM64: the FMA fusion and KleidiAI left out)
    "all": ("all", _ORT),
    "basic": ("basic", _ORT),
    "disabled": ("disabled", _ORT),
    "all-no-DynamicQuantizeMatMulFusion": ("all", {**_ORT, DISABLE: "DynamicQuantizeMatMulFusion"}),
    "all-no-MatMulIntegerToFloatFusion": ("all", {**_ORT, DISABLE: "MatMulIntegerToFloatFusion"}),
    "all-no-KleidiAI": ("all", {**_ORT, KLEIDIAI: "1"}),
}


def run_settings(jobs: list[list[str]], out: str) -> None:
    """Every ``[graph, inputs.npy]`` under every SETTINGS entry; all outputs to one .npz."""
    import onnxruntime as ort

    from edgeae.runtime.session import session_options

    arrays = {}
    for graph, x_path in jobs:
        x = np.load(x_path)
        for name, (level, config) in SETTINGS.items():
            opts = session_options(1, optimization=level, **config)
            sess = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
            for o, v in zip(sess.get_outputs(), sess.run(None, {sess.get_inputs()[0].name: x}), strict=True):
                arrays[f"{Path(graph).name}|{name}|{o.name}"] = v
    np.savez(out, **arrays)


def exposed(graph: Path, dst: Path) -> Path:
    """A copy of ``graph`` with every node's outputs as graph outputs (needs onnx; run here)."""
    import onnx

    m = onnx.load(str(graph))
    have = {o.name for o in m.graph.output}
    for node in m.graph.node:
        m.graph.output.extend(onnx.ValueInfoProto(name=t) for t in node.output if t and t not in have)
    onnx.save(m, str(dst))
    return dst


def trace(graphs: dict[Path, np.ndarray], model: str, work: Path) -> dict[str, dict[str, Any]]:
    """``{graph: inputs}`` under every SETTINGS entry, x86 vs emulated ``model`` (:func:`compare`)."""
    work.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i, (graph, x) in enumerate(graphs.items()):
        np.save(work / f"x{i}.npy", x)
        jobs.append([str(graph), str(work / f"x{i}.npy")])
    run_settings(jobs, str(work / "host.npz"))
    res = A.emulated_python(model, ["-m", "benchmarks.arm64_checks", "settings", json.dumps(jobs),
                                    str(work / f"{model}.npz")], timeout=1800)
    if res.returncode != 0:
        raise RuntimeError(f"the settings run on {model} failed: {res.stderr[-2000:]}")
    host, arm = np.load(work / "host.npz"), np.load(work / f"{model}.npz")
    return {k: compare(arm[k], host[k]) for k in host.files}


if __name__ == "__main__":
    import sys

    if sys.argv[1] == "settings":
        run_settings(json.loads(sys.argv[2]), sys.argv[3])
