"""Generated C for a 1-D conv autoencoder on real sensor windows, on Cortex-M4F.

    BasicMotions TRAIN (.ts, 40 cases x 6 channels x 100 steps, smartwatch accelerometer + gyroscope)
      -> edgeae.train conv1d (code 16) -> edgeae.export fp32 + int8-static (+ codec tables)
      -> edgeae.codegen.generate_c (checked at generation: fp32 vs ONNX Runtime, int8 vs the
         integer reference, the stream API vs Python's bytes)
      -> Cortex-M4F under qemu-system-arm -icount shift=0:
         encoder units: instructions per inference, flash, RAM (arena + painted stack)
         stream API: BasicMotions TEST cases laid end to end, pushed one step at a time, one
         chunk per window; bytes vs the host and vs the Python runtime; instructions per window
      -> benchmarks/results/c_timeseries.json and .md

Usage: ``python -m benchmarks.c_timeseries [--bundle DIR] [--epochs 100] [--cases 4]``. Without
``--bundle`` the model is trained into benchmarks/work/c_timeseries (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BASIC = HERE.parent / "build" / "timeseries" / "BasicMotions"


def _bundle(work: Path, epochs: int) -> Path:
    """Train conv1d on BasicMotions TRAIN and export fp32 + int8-static with codec tables."""
    from edgeae.data import Dataset
    from edgeae.data.tsfile import read_ts
    from edgeae.export import export
    from edgeae.train import train

    tr = read_ts(BASIC / "BasicMotions_TRAIN.ts")
    ds = Dataset(tr.x, tr.labels, str(BASIC / "BasicMotions_TRAIN.ts"), "ts", False)
    train(ds, model="conv1d", out=work / "run", epochs=epochs, code_size=16, batch_size=4, lr=3e-3, overwrite=True)
    export(work / "run", work / "bundle", precisions="fp32,int8-static", data=ds, latency_repeats=1, overwrite=True)
    return work / "bundle"


def _tool(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _markdown(r: dict) -> str:
    lines = ["# Generated C for a conv1d autoencoder on BasicMotions (6 x 100 sensor windows)", "",
             f"Model: conv1d, channels {r['model']['channels']}, code {r['model']['code_size']}, trained "
             f"{r['model']['epochs']} epochs on BasicMotions TRAIN (40 cases); PSNR of the held-out windows "
             f"(model units): fp32 {r['model']['psnr_fp32']:.2f} dB, int8-static {r['model']['psnr_int8']:.2f} dB. "
             f"Codec: {r['bits']}-bit tables.", "",
             f"Cortex-M4F: {r['machine']['qemu']} (mps2-an386, -icount shift=0), {r['machine']['gcc']} -O2. "
             "Flash = text + data of the objects; RAM = data + bss (the static arena) + the stack of one call "
             "(painted and scanned).", "",
             "## Encoder units (one window per call)", "",
             "| unit | instructions / window | flash B | RAM B | arena B | stack B | = host bits |",
             "|---|---|---|---|---|---|---|"]
    for u in r["units"]:
        lines.append(f"| {u['unit']} | {u['instructions']:,} | {u['flash_bytes']:,} | {u['ram_bytes']:,} | "
                     f"{u['arena_bytes']:,} | {u['stack_bytes']} | {'yes' if u['max_abs_vs_host'] == 0 else u['max_abs_vs_host']} |")
    lines += ["", f"## Streaming API: {r['stream_cases']} BasicMotions TEST cases end to end "
              f"({r['stream_cases'] * 100} steps), pushed one step at a time", "",
              "Instructions per window = the whole sensor loop (every push, normalization, ring rotation, "
              "encoder, quantizer, range coder, header once) / windows. RAM = objects' data + bss + the "
              "caller's ring (6 x 100 floats) and state + the painted stack.", "",
              "| encoder | hop | windows | instructions / window | bytes / chunk | flash B | RAM B | ring B | stack B | "
              "= host | = Python runtime |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in r["stream"]:
        lines.append(f"| {s['unit']} | {s['hop']} | {s['windows']} | {s['instructions_per_window']:,} | "
                     f"{s['chunk_bytes_per_window']:.1f} | {s['flash_bytes']:,} | {s['ram_bytes']:,} | "
                     f"{s['ring_bytes']:,} | {s['stack_bytes']} | {'yes' if s['equal_host'] else 'NO'} | "
                     f"{'yes' if s['equal_edgeae'] else 'NO'} |")
    lines += ["", "Flash by object (stream, int8): " + ", ".join(
        f"{k} {v:,} B" for k, v in next(s for s in r["stream"] if s["unit"].endswith("int8"))["flash_by_object"].items())
        + " (the codec tables hold the bundle's three bit depths: 6, 4 and 8)",
        "", f"Host: {r['machine']['host']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from edgeae.codegen import generate_c
    from edgeae.codegen.cortexm import run_generated
    from edgeae.codegen.cortexm_stream import run_stream_target
    from edgeae.data.tsfile import read_ts
    from edgeae.runtime import read_manifest

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=None, help="a conv1d BasicMotions bundle (default: train one)")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--cases", type=int, default=4, help="TEST cases laid end to end for the stream")
    args = ap.parse_args(argv)
    work = HERE / "work" / "c_timeseries"
    bundle = args.bundle or _bundle(work, args.epochs)
    c_dir = work / "c"
    gen = generate_c(bundle, c_dir, prefix="bm", overwrite=True)
    print(gen.table())
    units = run_generated(bundle, c_dir, targets=["cortex-m4f"], samples=4,
                          units=[g.name for g in gen.graphs if g.role == "encoder"])
    cases = read_ts(BASIC / "BasicMotions_TEST.ts").x[:args.cases]
    rec = np.ascontiguousarray(cases.transpose(0, 2, 1).reshape(-1, cases.shape[1]))
    stream = [run_stream_target(bundle, c_dir, rec, hop, tag=tag) for tag in ("fp32", "int8") for hop in (100, 50)]
    m = read_manifest(bundle)
    val = m.validation
    out = {"model": {"channels": m.model.get("channels"), "code_size": m.code_size, "epochs": args.epochs,
                     "psnr_fp32": val["fp32"]["psnr"], "psnr_int8": val["int8-static"]["psnr"]},
           "bits": gen.compress.get("bits"), "stream_cases": args.cases,
           "machine": {"host": f"{_cpu()}, {platform.platform()} (builds and the C checks only: every figure is from QEMU)",
                       "gcc": _tool(["arm-none-eabi-gcc", "--version"]),
                       "qemu": _tool(["qemu-system-arm", "--version"])},
           "units": [dict(u.__dict__) for u in units], "stream": stream}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "c_timeseries.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / "c_timeseries.md").write_text(_markdown(out))
    print(_markdown(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
