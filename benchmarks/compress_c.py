"""One-call compression in generated C (encoder + C codec), on the host and on Cortex-M.

    BUNDLE (raw-I/O, fp32 + int8-static, codec tables)
      -> edgeae.codegen.generate_c (checked at generation: C streams = Python's for the C codes)
      -> host: PREFIX_compress_<p>(x, 1, ...) per sample (-O2, batch 1, one stream per sample)
               vs `edgeae compress` in Python (edgeae.runtime.compress.compress, one sample per call)
      -> Cortex-M4F (fp32, int8) and M3 (int8) under qemu-system-arm -icount shift=0:
         streams vs the host, instructions per compressed sample, flash, RAM
      -> benchmarks/results/compress_c.json and .md

Usage: ``python -m benchmarks.compress_c --bundle DIR [--label NAME] [--samples 64]
[--duration 1.0] [--no-cortex]``. Host ratios come from interleaved rounds on the same samples.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

_BENCH = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "bench_cfg.h"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }

int main(int argc, char **argv)
{
    size_t n = (size_t)atoi(argv[2]), i = 0, len, total = 0, calls = 0;
    double seconds = atof(argv[3]), t0;
    IN_T *x = (IN_T *)malloc(n * X_N * sizeof *x);
    static uint8_t buf[65536];
    FILE *f = fopen(argv[1], "rb");
    if (argc != 4 || !x || !f || fread(x, sizeof *x, n * X_N, f) != n * X_N) return 3;
    t0 = now();
    while (now() - t0 < seconds) {
        for (i = 0; i < n; ++i) {
            if (COMPRESS(x + i * X_N, 1, buf, sizeof buf, &len) != EAE_OK) return 4;
            total += len;
            ++calls;
        }
    }
    printf("%.1f %.3f\n", 1e9 * (now() - t0) / (double)calls, (double)total / (double)calls);
    return 0;
}
"""


def _host_c(c_dir: Path, prefix: str, tag: str, in_t: str, xn: int, x: np.ndarray, seconds: float,
            build: Path) -> tuple[float, float]:
    (build / "bench_cfg.h").write_text(f'#include "{prefix}_compress.h"\n#define IN_T {in_t}\n#define X_N {xn}u\n'
                                            f"#define COMPRESS {prefix}_compress_{tag}\n")
    (build / "bench.c").write_text(_BENCH)
    exe = build / f"bench_{tag}"
    if not exe.exists():
        srcs = [str(c_dir / n) for n in ("eae_codec.c", f"{prefix}_latent_codec.c", f"{prefix}_compress.c",
                                         f"{prefix}_encoder_fp32.c", f"{prefix}_encoder_int8.c")]
        subprocess.run(["gcc", "-std=c99", "-O2", "-I", str(c_dir), "-I", str(build), *srcs, str(build / "bench.c"),
                        "-o", str(exe), "-lm"], check=True)
    (build / "x.bin").write_bytes(np.ascontiguousarray(x).tobytes())
    out = subprocess.run([str(exe), str(build / "x.bin"), str(len(x)), str(seconds)], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--label", default=None, help="Model name in the table [default: the bundle folder's name].")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--duration", type=float, default=1.0, help="Seconds per variant per round.")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-cortex", action="store_true")
    args = ap.parse_args(argv)

    from edgeae.codegen import generate_c
    from edgeae.codegen.cortexm_codec import run_compress_target
    from edgeae.runtime import load, read_manifest
    from edgeae.runtime.compress import compress

    bundle = Path(args.bundle)
    label = args.label or bundle.name
    manifest = read_manifest(bundle)
    raw = np.load(bundle / manifest.samples["file"])[: args.samples]
    with tempfile.TemporaryDirectory() as tmp:
        c_dir = Path(tmp) / "c"
        gen = generate_c(bundle, c_dir, precisions="fp32,int8-static", prefix="bench", codec=True)
        report = json.loads((c_dir / "codegen.json").read_text())
        build = Path(tmp) / "build"
        build.mkdir()
        rows = []
        from edgeae.codegen.verify import unit_inputs

        x = unit_inputs(bundle, manifest, "encoder", report["io"] == "raw", raw)
        for tag, precision in (("fp32", "fp32"), ("int8", "int8-static")):
            g = next(g for g in report["graphs"] if g["name"] == f"bench_encoder_{tag}")
            model = load(bundle, precision=precision, threads=1)
            c_ns, py_ns, c_bps, py_bps = [], [], 0.0, 0.0
            for _ in range(args.rounds):
                ns, c_bps = _host_c(c_dir, "bench", tag, g["inputs"][0][1], g["inputs"][0][2], x, args.duration,
                                    build)
                c_ns.append(ns)
                t0, calls, total = time.perf_counter(), 0, 0
                while time.perf_counter() - t0 < args.duration:
                    for i in range(len(raw)):
                        total += len(compress(model, raw[i:i + 1]))
                        calls += 1
                py_ns.append(1e9 * (time.perf_counter() - t0) / calls)
                py_bps = total / calls
            c_med, py_med = statistics.median(c_ns), statistics.median(py_ns)
            rows.append({"precision": precision, "c_ns": c_med, "python_ns": py_med, "speedup": py_med / c_med,
                         "c_bytes_per_sample": c_bps, "python_bytes_per_sample": py_bps,
                         "equal_edgeae_compress": gen.compress[tag]["equal_edgeae_compress"]})
        cortex = []
        if not args.no_cortex:
            for tag, target in (("fp32", "cortex-m4f"), ("int8", "cortex-m4f"), ("int8", "cortex-m3")):
                cortex.append(run_compress_target(bundle, c_dir, tag, target, samples=8))
    result = {"model": label, "bundle": str(bundle), "code_size": manifest.code_size, "bits": gen.compress["bits"],
              "machine": f"{platform.processor() or platform.machine()}, gcc -O2",
              "host": rows, "cortex": cortex, "cmd": "python -m benchmarks.compress_c " + " ".join(argv or [])}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compress_c.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# One-call compression in generated C: {label}", "",
             f"Bundle code size {manifest.code_size}, {result['bits']}-bit codec tables, raw uint8 samples in, one "
             "`.eae` stream per sample (batch 1). Host: gcc -O2, one thread; Python = `edgeae.runtime.compress` "
             f"(ONNX Runtime encoder + Python codec), {args.rounds} interleaved rounds of {args.duration} s.", "",
             "| precision | C compress us/sample | Python compress us/sample | speedup | bytes/sample C | "
             "bytes/sample Python | C stream = `edgeae compress` |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['precision']} | {r['c_ns'] / 1000:.2f} | {r['python_ns'] / 1000:.1f} | {r['speedup']:.0f}x | "
                     f"{r['c_bytes_per_sample']:.2f} | {r['python_bytes_per_sample']:.2f} | "
                     f"{'yes' if r['equal_edgeae_compress'] else 'no'} |")
    if cortex:
        lines += ["", "Cortex-M under qemu-system-arm (-icount shift=0), arm-none-eabi-gcc -O2; flash = text + data of "
                  "the encoder, codec, tables and glue objects (before --gc-sections); RAM = data + bss + painted "
                  "stack of one call.", "",
                  "| encoder | target | instructions / compressed sample | flash B | RAM B | stack B | streams = host |",
                  "|---|---|---|---|---|---|---|"]
        for c in cortex:
            lines.append(f"| {c['unit'].split('_')[-1]} | {c['target']} | {c['instructions_per_sample']:,} | "
                         f"{c['flash_bytes']:,} | {c['ram_bytes']:,} | {c['stack_bytes']} | "
                         f"{'yes' if c['equal_host'] else 'NO'} ({c['samples']} samples) |")
    (RESULTS / "compress_c.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
