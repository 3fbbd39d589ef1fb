"""Generated C vs ONNX Runtime (and emx-onnx-cgen) at batch 1 on the host; Cortex-M figures.

    benchmarks/work/<model>/bundle (from benchmarks.run: digits MLP, MNIST MLP 784-128-32,
    MNIST conv code 32) -> edgeae.codegen.generate_c (fp32, int8-static; checked at generation)
      -> host: C -O2 (portable) | C -O3 -march=native (tuned) | ORT via edgeae | bare ORT session
         | emx-onnx-cgen -O2 (if installed), one thread, batch 1, interleaved rounds
      -> Cortex-M4F (fp32, int8) and M3 / M0 (int8) under QEMU: instructions, flash, RAM
         (stack painted and scanned); int8 raw-I/O units on M4F and M55
      -> ARM CMSIS-NN's s8 kernels on the same layer shapes (M4F DSP, M55 Helium), built from
         --cmsis-nn PATH or $CMSIS_NN_PATH (skipped without)
      -> benchmarks/results/c.json and c.md (with --only: c-<models>.json / .md)

Every row's outputs are checked: the generated C at generation (fp32 vs ORT <= 1e-5, int8
0 LSB vs the integer reference) and on Cortex-M vs the host build; emx-onnx-cgen's outputs
are compared with ONNX Runtime here. Usage: ``python -m benchmarks.c [--rounds 5]
[--round-seconds 0.2] [--only digits-mlp] [--no-cortex] [--cmsis-nn PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
RESULTS = HERE / "results"
PRECISIONS = ("fp32", "int8-static")
_TAG = {"fp32": "fp32", "int8-static": "int8"}
_NP = {"float": np.float32, "uint8_t": np.uint8, "int8_t": np.int8}

_BENCH_MAIN = r"""/* Timing harness: check mode writes outputs; time mode writes per-call ns (uint32). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include INCLUDE
#define NS(t) ((long long)(t).tv_sec * 1000000000LL + (t).tv_nsec)
static IN_T samples[MAX_SAMPLES][IN_SIZE];
static OUT_T out[OUT_SIZE];
static unsigned int times[4000000];
int main(int argc, char **argv)
{
    long n = 0, k, calls = 0;
    double seconds;
    struct timespec t0, t1, end;
    FILE *f = fopen(argv[2], "rb");
    if (f == NULL) return 1;
    while (n < MAX_SAMPLES && fread(samples[n], sizeof samples[n], 1, f) == 1) ++n;
    fclose(f);
    if (strcmp(argv[1], "check") == 0) {
        for (k = 0; k < n; ++k) { CALL(samples[k], out); fwrite(out, sizeof out, 1, stdout); }
        return 0;
    }
    seconds = atof(argv[3]);
    for (k = 0; k < 200; ++k) CALL(samples[k % n], out); /* warm up */
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)seconds;
    end.tv_nsec += (long)((seconds - (double)(long)seconds) * 1e9);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CALL(samples[calls % n], out);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        times[calls++] = (unsigned int)(NS(t1) - NS(t0));
        if (NS(t1) >= NS(end) || calls == 4000000) break;
    }
    fwrite(times, sizeof times[0], (size_t)calls, stdout);
    return 0;
}
"""


def _machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags"))
        info["isa"] = " ".join(f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni")
                               if f in flags)
    except (OSError, StopIteration):
        pass
    import onnxruntime

    for tool in ("gcc", "arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool):
            first = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
            info[tool] = first
    info["onnxruntime"] = onnxruntime.__version__
    try:
        from importlib.metadata import version

        info["emx-onnx-cgen"] = version("emx-onnx-cgen")
    except Exception:
        info["emx-onnx-cgen"] = None
    return info


def _stats(ns: np.ndarray) -> dict:
    us = ns / 1000.0
    return {"p50_us": float(np.percentile(us, 50)), "p90_us": float(np.percentile(us, 90)),
            "p99_us": float(np.percentile(us, 99)), "calls": int(len(us)), "per_s": float(1e6 / np.median(us))}


def _build_bench(folder: Path, include: str, call: str, in_t: str, out_t: str, in_size: int, out_size: int,
                 sources: list[Path], flags: list[str], name: str, samples: int) -> Path:
    main = folder / f"bench_{name}.c"
    main.write_text(_BENCH_MAIN)
    exe = folder / f"bench_{name}"
    defs = [f'-DINCLUDE="{include}"', f"-DCALL(x,y)={call}", f"-DIN_T={in_t}", f"-DOUT_T={out_t}",
            f"-DIN_SIZE={in_size}", f"-DOUT_SIZE={out_size}", f"-DMAX_SAMPLES={samples}"]
    subprocess.run(["gcc", "-std=gnu11", *flags, *defs, "-I", str(folder), str(main), *map(str, sources), "-o",
                    str(exe), "-lm"], check=True, capture_output=True)
    return exe


def _emx(graph: Path, folder: Path, name: str) -> tuple[Path, str] | None:
    """emx-onnx-cgen's C for a batch-1 copy of ``graph``, or None when it is not installed or fails."""
    tool = shutil.which("emx-onnx-cgen") or str(Path(os.sys.executable).parent / "emx-onnx-cgen")
    if not Path(tool).exists():
        return None
    src = folder / f"{name}.c"
    if not src.exists():
        res = subprocess.run([tool, "compile", str(graph), str(src), "--model-name", name, "--input-dim", "batch=1"],
                             capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            return None
    (folder / f"{name}.h").write_text(f"void {name}(const void *x, void *y);\n")
    return src, f"{name}((const void *)(x), (void *)(y))"


def bench_model(model: str, rounds: int, round_s: float, cortex: bool, log, cmsis: Path | None = None) -> dict:
    import onnxruntime as ort

    from edgeae.codegen import generate_c
    from edgeae.codegen.verify import unit_inputs
    from edgeae.runtime import load
    from edgeae.runtime.bundle import read_manifest

    bundle = WORK / model / "bundle"
    if not (bundle / "manifest.json").is_file():
        raise SystemExit(f"{bundle} is missing: run `python -m benchmarks.run --only {model}` first")
    c_dir = WORK / model / "c"
    t0 = time.time()
    gen = generate_c(bundle, c_dir, precisions=",".join(PRECISIONS), io="model", overwrite=True)
    log(f"{model}: generated and checked C in {time.time() - t0:.0f} s")
    manifest = read_manifest(bundle)
    samples = np.load(bundle / manifest.samples["file"])[:64]
    build = WORK / model / "cbench"
    build.mkdir(parents=True, exist_ok=True)
    rows = []
    for g in gen.graphs:
        entry = manifest.find_graph(g.role, g.precision)
        x = unit_inputs(bundle, manifest, g.role, False, samples)
        (_, in_t, in_size), (_, out_t, out_size) = g.inputs[0], g.outputs[0]
        data = build / f"{g.name}.in"
        data.write_bytes(np.ascontiguousarray(x, _NP[in_t]).tobytes())
        for ext in (".c", ".h"):
            shutil.copyfile(c_dir / f"{g.name}{ext}", build / f"{g.name}{ext}")
        variants = {}
        common = dict(include=f"{g.name}.h", call=f"{g.name}(x, y)", in_t=in_t, out_t=out_t, in_size=in_size,
                      out_size=out_size, sources=[build / f"{g.name}.c"], samples=len(x))
        variants["C -O2"] = _build_bench(build, flags=["-O2"], name=f"{g.name}_o2", **common)
        variants["C -O3 -march=native"] = _build_bench(build, flags=["-O3", "-march=native"], name=f"{g.name}_o3",
                                                       **common)
        emx = _emx(bundle / entry.file, build, f"emx_{g.role}_{_TAG[g.precision]}")
        emx_err = None
        if emx is not None:
            src, call = emx
            exe = _build_bench(build, include=f"{src.stem}.h", call=call, in_t="float", out_t=out_t, in_size=in_size,
                               out_size=out_size, sources=[src], flags=["-O2"], name=f"{src.stem}_o2",
                               samples=len(x))
            variants["emx-onnx-cgen -O2"] = exe
        sess_opts = ort.SessionOptions()
        sess_opts.intra_op_num_threads = 1
        sess_opts.inter_op_num_threads = 1
        bare = ort.InferenceSession(str(bundle / entry.file), sess_opts, providers=["CPUExecutionProvider"])
        in_name = bare.get_inputs()[0].name
        want = bare.run(None, {in_name: x})[0].reshape(len(x), -1)
        checks = {}
        for label, exe in variants.items():
            res = subprocess.run([str(exe), "check", str(data)], capture_output=True, check=True)
            got = np.frombuffer(res.stdout, _NP[out_t]).reshape(len(x), -1)
            checks[label] = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        emx_err = checks.get("emx-onnx-cgen -O2")
        edge = load(bundle, precision=g.precision, threads=1)
        fn = edge.encode if g.role == "encoder" else edge.decode
        xs = [x[i:i + 1] for i in range(len(x))]
        times: dict[str, list[np.ndarray]] = {k: [] for k in [*variants, "ORT via edgeae", "ORT bare session"]}

        def py_round(call, xs=xs) -> np.ndarray:
            for i in range(50):
                call(xs[i % len(xs)])
            out, end, i = [], time.perf_counter_ns() + int(round_s * 1e9), 0
            while True:
                t = time.perf_counter_ns()
                call(xs[i % len(xs)])
                t2 = time.perf_counter_ns()
                out.append(t2 - t)
                i += 1
                if t2 >= end:
                    return np.array(out)

        for _ in range(rounds):  # A B C D ... interleaved, so drift hits every variant alike
            for label, exe in variants.items():
                res = subprocess.run([str(exe), "time", str(data), str(round_s)], capture_output=True, check=True)
                times[label].append(np.frombuffer(res.stdout, np.uint32).astype(np.int64))
            times["ORT via edgeae"].append(py_round(fn))
            times["ORT bare session"].append(py_round(lambda v, b=bare, n=in_name: b.run(None, {n: v})))
        stats = {k: _stats(np.concatenate(v)) for k, v in times.items()}
        ref = stats["ORT via edgeae"]["p50_us"]
        for s in stats.values():
            s["speedup_vs_ort_edgeae"] = ref / s["p50_us"]
            s["speedup_vs_ort_bare"] = stats["ORT bare session"]["p50_us"] / s["p50_us"]
        row = {"model": model, "graph": g.role, "precision": g.precision, "unit": g.name,
               "arena_bytes": g.arena_bytes, "weight_bytes": g.weight_bytes, "latency": stats,
               "check": {k: v["summary"] for k, v in g.checks.items()}, "max_abs_vs_ort": checks,
               "emx_max_abs_vs_ort": emx_err}
        rows.append(row)
        log(f"{model} {g.name}: C -O2 {stats['C -O2']['p50_us']:.2f} us, ORT {ref:.2f} us "
            f"({stats['C -O2']['speedup_vs_ort_edgeae']:.1f}x)"
            + (f", emx {stats['emx-onnx-cgen -O2']['p50_us']:.2f} us" if "emx-onnx-cgen -O2" in stats else ""))
    cortex_rows, cmsis_rows = [], []
    if cortex:
        from edgeae.codegen.toolchain import toolchain_problem

        problem = toolchain_problem()
        if problem:
            log(f"Cortex-M skipped: {problem}")
        else:
            t0 = time.time()
            cortex_rows, cmsis_rows = _cortex(bundle, c_dir, cmsis, log)
            log(f"{model}: Cortex-M runs in {time.time() - t0:.0f} s")
    return {"model": model, "host": rows, "cortex_m": cortex_rows, "cmsis_nn": cmsis_rows}


def _cortex(bundle: Path, c_dir: Path, cmsis: Path | None, log) -> tuple[list[dict], list[dict]]:
    """edgeae's units on Cortex-M (float I/O: all targets; raw I/O int8: M4F) and CMSIS-NN on the
    same layer shapes (M4F, where a checkout is given and every layer has a CMSIS-NN kernel)."""
    from benchmarks.c_cmsis import run_cmsis
    from edgeae.codegen import generate_c
    from edgeae.codegen.cortexm import run_generated
    from edgeae.codegen.graph import load_graph
    from edgeae.codegen.lower_int8 import lower_int8
    from edgeae.runtime.bundle import read_manifest

    model = bundle.parent.name
    rows = [dict(r.row(), io="float") for r in run_generated(bundle, c_dir, samples=4, work=WORK / model / "cortexm")]
    raw_bundle, raw_dir = WORK / model / "bundle-raw", WORK / model / "c-raw"
    if not (raw_bundle / "manifest.json").is_file():  # the same run exported with uint8 pixels in and out
        from edgeae.export import export

        export(WORK / model / "run", raw_bundle, precisions=("fp32", "int8-static"), raw_io=True, overwrite=True)
    generate_c(raw_bundle, raw_dir, precisions="int8-static", io="raw", overwrite=True)
    rows += [dict(r.row(), io="raw") for r in run_generated(raw_bundle, raw_dir, targets=list(_CMSIS_TARGETS),
                                                             samples=4, work=WORK / model / "cortexm-raw")]
    manifest = read_manifest(bundle)
    cmsis_rows = []
    if cmsis is None:
        log("CMSIS-NN rows skipped: pass --cmsis-nn PATH or set CMSIS_NN_PATH")
    for role in ("encoder", "decoder"):
        program = lower_int8(load_graph(bundle / manifest.find_graph(role, "int8-static").file, role))
        compute = [s for s in program.steps if s.kind in ("qdense", "qconv", "qconvt")]
        for target in _CMSIS_TARGETS:
            edge = {r["io"]: r["instructions"] for r in rows if r["unit"].endswith(f"{role}_int8") and
                    r["target"] == target}
            row = {"role": role, "target": target, "macs": sum(_macs(s) for s in compute),
                   "edgeae_raw": edge.get("raw"), "edgeae_float": edge.get("float"), "cmsis_nn": None,
                   "layers": [s.kind for s in compute]}
            if cmsis is not None and all(s.kind in ("qdense", "qconv") for s in compute):
                codes = _first_codes(program, bundle, manifest, role)
                row["cmsis_nn"] = run_cmsis(program, codes, target, cmsis, WORK / "cmsis-nn")
            cmsis_rows.append(row)
    return rows, cmsis_rows




_CMSIS_TARGETS = ("cortex-m4f", "cortex-m55")  # DSP (SMLAD) and Helium (MVE) builds of CMSIS-NN


def _macs(s) -> int:
    """Multiply-adds of one int8 step (a ConvTranspose: input pixels x channels x taps)."""
    q = s.params
    if s.kind == "qdense":
        return q["K"] * q["N"]
    taps = q["KH"] * q["KW"] * q["C"] // q["G"]
    return q["OH"] * q["OW"] * q["M"] * taps if s.kind == "qconv" else q["H"] * q["W"] * q["M"] * taps


def _first_codes(program, bundle: Path, manifest, role: str) -> np.ndarray:
    """The codes the first layer reads for held-out sample 0 (the unit's own quantization of it)."""
    from edgeae.codegen.verify import unit_inputs

    x = unit_inputs(bundle, manifest, role, False, np.load(bundle / manifest.samples["file"])[:1]).reshape(-1)
    q = next((s for s in program.steps if s.kind == "quantize"), None)
    if q is None:
        return x
    p = q.params
    t = np.rint(x.astype(np.float32) / np.float32(p["scale"])).astype(np.int64) + p["zp"]
    return np.clip(t, p["lo"], p["hi"]).astype(np.uint8 if p["lo"] == 0 else np.int8)


def _markdown(results: list[dict], machine: dict, rounds: int, round_s: float) -> str:
    lines = ["# Generated C (edgeae codegen): host latency and Cortex-M figures", "",
             f"Machine: {machine.get('cpu', '?')}, {machine.get('cores')} cores, ISA: {machine.get('isa', '?')}; "
             f"{machine.get('gcc', '')}; onnxruntime {machine['onnxruntime']}; "
             f"emx-onnx-cgen {machine.get('emx-onnx-cgen') or 'not installed'}; {machine.get('arm-none-eabi-gcc', '')}; "
             f"{machine.get('qemu-system-arm', '')}.", "",
             f"Batch 1, one thread, {rounds} interleaved rounds of {round_s:g} s per variant; p50 (p90) in "
             "microseconds; speedup = ORT-via-edgeae p50 / variant p50. ORT sessions: one intra-op thread, default "
             "graph optimizations. Outputs checked on every row: generated C at generation (fp32 max abs vs ORT "
             "<= 1e-5; int8 0 LSB vs the integer reference), emx-onnx-cgen vs ORT (column), Cortex-M vs the host "
             "build (0 = same bits).", "",
             "| model | graph | precision | C -O2 | C -O3 native | ORT via edgeae | ORT bare | emx-onnx-cgen -O2 | "
             "C -O2 speedup vs ORT | vs emx | C max abs vs ORT | emx max abs vs ORT |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def cell(s):
        return f"{s['p50_us']:.2f} ({s['p90_us']:.2f})" if s else "n/a"

    for r in results:
        for row in r["host"]:
            lat = row["latency"]
            emx = lat.get("emx-onnx-cgen -O2")
            vs_emx = f"{emx['p50_us'] / lat['C -O2']['p50_us']:.2f}x" if emx else "n/a"
            emx_err = row["emx_max_abs_vs_ort"]
            lines.append(f"| {row['model']} | {row['graph']} | {row['precision']} | {cell(lat['C -O2'])} | "
                         f"{cell(lat['C -O3 -march=native'])} | {cell(lat['ORT via edgeae'])} | "
                         f"{cell(lat['ORT bare session'])} | {cell(emx)} | "
                         f"{lat['C -O2']['speedup_vs_ort_edgeae']:.1f}x | {vs_emx} | "
                         f"{row['max_abs_vs_ort']['C -O2']:.2g} | {'n/a' if emx_err is None else f'{emx_err:.2g}'} |")
    lines += ["", "## Cortex-M (QEMU mps2-an386 / mps2-an385 / mps3-an547, -icount shift=0, arm-none-eabi-gcc -O2)", "",
              "Flash = text + data of the unit's object file; RAM = data + bss (the static arena) + the stack of one "
              "call, measured: the stack is painted in QEMU, one call runs, the lowest changed word is found "
              "(the -fstack-usage estimate, which misses libc calls and gcc's clones, in parentheses). Predicted = "
              "the header's WEIGHT_BYTES / ARENA_BYTES. I/O float: the model-unit graphs (float in, float out); "
              "raw: uint8 pixels in, the int8 unit's output codes out. The Cortex-M0 build (ARMv6-M) runs on the "
              "AN385's Cortex-M3; the M4F build of int8 units uses SMLAD (DSP extension).", "",
              "| model | unit | I/O | target | instructions / inference | flash B | weights B (predicted) | RAM B | "
              "arena B (predicted) | stack B measured (estimate) | max abs vs host |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for c in r["cortex_m"]:
            lines.append(f"| {r['model']} | {c['unit']} | {c.get('io', 'float')} | {c['target']} | "
                         f"{c['instructions']:,} | {c['flash_bytes']:,} | {c['weight_bytes']:,} | {c['ram_bytes']:,} | "
                         f"{c['arena_bytes']:,} | {c['stack_bytes']} ({c['stack_estimate_bytes']}) | "
                         f"{c['max_abs_vs_host']:.2g} |")
    lines += ["", "## int8 layers vs ARM CMSIS-NN (Cortex-M4F and Cortex-M55, same harness)", "",
              "CMSIS-NN's arm_fully_connected_s8 / arm_convolve_s8 (-O2; on the M4F its DSP build, on the M55 "
              "(QEMU mps3-an547) its Helium/MVE build; edgeae's kernels likewise: SMLAD on the M4F, Helium on the "
              "M55) on the unit's layer "
              "shapes with "
              "its weights as signed codes; only the layers run (edgeae's raw-I/O figure also holds its output "
              "table lookups, the float-I/O figure the quantization of the input and the float output). Graphs "
              "with a transposed convolution have no CMSIS-NN row (no s8 kernel with these semantics).", "",
              "| model | graph | target | MACs | edgeae raw I/O | per MAC | edgeae float I/O | CMSIS-NN layers | "
              "per MAC | CMSIS-NN stack B | edgeae raw / CMSIS-NN |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for c in r.get("cmsis_nn", []):
            n = c["cmsis_nn"]["instructions"] if c["cmsis_nn"] else None
            raw, fl, macs = c["edgeae_raw"] or 0, c["edgeae_float"] or 0, c["macs"]
            na = "n/a"
            lines.append(f"| {r['model']} | {c['role']} | {c['target']} | {macs:,} | {raw:,} | {raw / macs:.2f} | "
                         f"{f'{fl:,}' if fl else na} | "
                         f"{f'{n:,}' if n else na} | {f'{n / macs:.2f}' if n else na} | "
                         f"{c['cmsis_nn']['stack_bytes'] if n else na} | {f'{raw / n:.2f}' if n and raw else na} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=None, help="digits-mlp | mnist-mlp | mnist-conv (repeatable)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--round-seconds", type=float, default=0.2)
    ap.add_argument("--no-cortex", action="store_true")
    ap.add_argument("--cmsis-nn", default=None, help="CMSIS-NN checkout to measure on the same shapes "
                    "(default: $CMSIS_NN_PATH; skipped when absent)")
    args = ap.parse_args()
    from benchmarks.c_cmsis import cmsis_root

    cmsis = cmsis_root(args.cmsis_nn)
    models = args.only or ["digits-mlp", "mnist-mlp", "mnist-conv"]
    machine = _machine()
    results = [bench_model(m, args.rounds, args.round_seconds, not args.no_cortex, print, cmsis) for m in models]
    RESULTS.mkdir(exist_ok=True)
    stem = "c" if not args.only else "c-" + "-".join(models)  # --only never replaces the full table
    (RESULTS / f"{stem}.json").write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(_markdown(results, machine, args.rounds, args.round_seconds))
    print(f"Wrote {RESULTS / stem}.md and .json")


if __name__ == "__main__":
    main()
