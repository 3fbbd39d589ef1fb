"""int8 portability matrix: do correct exports pass, and compute the same, on CPUs without VNNI?

For model kinds x training epochs x seeds (digits, 8x8), every precision is exported on this
machine (the exporter's own checks: PyTorch, onnx.reference vs the runtime's session at
batch 1, 7 and 64). Then every int8 graph is checked again, with the same function, under
qemu user-mode emulation of CPUs whose integer kernels differ (Haswell and AMD EPYC Milan:
AVX2 without VNNI). Counts refusals and the largest difference from onnx.reference.

    python -m benchmarks.int8_matrix [--epochs 1,2,10] [--seeds 0,1] [--cpus haswell,epyc]

Writes benchmarks/results/int8_matrix.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeae.export.cpucheck import EMULATED_CPUS, run_emulated
from edgeae.runtime.bundle import PRECISIONS as _ALL

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = {"mlp": {"model": "mlp"}, "conv": {"model": "conv", "channels": (8, 16)}, "vae": {"model": "vae"}}
PRECISIONS = ",".join(_ALL)  # every precision a bundle can hold


def machine() -> dict[str, object]:
    """CPU model, the ISA features that change int8 kernels, cores and library versions."""
    import onnxruntime

    flags: set[str] = set()
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "asimddp") if f in flags]
    return {"cpu": model, "isa": isa, "cores": __import__("os").cpu_count(), "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__}


def _export_all(work: Path, epochs: list[int], seeds: list[int]) -> list[dict]:
    from edgeae.errors import EdgeAEError
    from edgeae.export import export
    from edgeae.train import train

    rows = []
    for kind, kw in KINDS.items():
        for ep in epochs:
            for seed in seeds:
                run = work / f"run-{kind}-{ep}-{seed}"
                bundle = work / f"bundle-{kind}-{ep}-{seed}"
                train("digits", out=run, epochs=ep, seed=seed, overwrite=True, patience=1000, **kw)
                row = {"kind": kind, "epochs": ep, "seed": seed, "bundle": str(bundle)}
                try:
                    export(run, bundle, precisions=PRECISIONS, latency_repeats=2, codec_bits="none", max_psnr_drop=100)
                    row["refused"] = None
                except EdgeAEError as exc:
                    row["refused"] = str(exc)
                rows.append(row)
                print(f"{kind} epochs={ep} seed={seed}: {'refused' if row['refused'] else 'exported'}", flush=True)
    return rows


def _emulated_checks(rows: list[dict], cpu: str, work: Path) -> dict:
    import onnxruntime as ort

    from edgeae.runtime.bundle import read_manifest
    from edgeae.runtime.preprocess import Normalizer

    graphs = {}
    for i, row in enumerate(rows):
        if row["refused"]:
            continue
        b = Path(row["bundle"])
        m = read_manifest(b)
        x = Normalizer(m.normalization, m.sample_shape).normalize(np.load(b / "samples.npy"))[:64]
        codes = ort.InferenceSession(str(b / "encoder.onnx"), providers=["CPUExecutionProvider"]).run(["code"], {"x": x})[0]
        np.save(work / f"x{i}.npy", x)
        np.save(work / f"c{i}.npy", codes)
        for p in ("int8-dynamic", "int8-static"):
            graphs[str(b / f"encoder.{p}.onnx")] = str(work / f"x{i}.npy")
            graphs[str(b / f"decoder.{p}.onnx")] = str(work / f"c{i}.npy")
    return run_emulated(cpu, graphs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", default="1,2,10")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--cpus", default="haswell,epyc")
    args = ap.parse_args()
    epochs = [int(v) for v in args.epochs.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = _export_all(work, epochs, seeds)
        emulated = {}
        for cpu in args.cpus.split(","):
            report = _emulated_checks(rows, cpu, work)
            emulated[cpu] = {
                "graphs": len(report), "checks": sum(r["checks"] for r in report.values()),
                "refused": sum(bool(r["failures"]) for r in report.values()),
                "max_error": max(r["max_error"] for r in report.values()),
                "notes": sorted({n for r in report.values() for n in r["notes"]}),
            }
            print(f"{cpu}: {emulated[cpu]}", flush=True)
    native_refused = [r for r in rows if r["refused"]]
    result = {"machine": machine(), "exports": len(rows), "native_refused": len(native_refused),
              "native_refusals": [r["refused"] for r in native_refused], "emulated": emulated,
              "epochs": epochs, "seeds": seeds, "kinds": list(KINDS), "precisions": PRECISIONS,
              "seconds": round(time.perf_counter() - t0, 1)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "int8_matrix.json").write_text(json.dumps(result, indent=2) + "\n")
    mach = result["machine"]
    lines = [
        "# int8 portability matrix", "",
        f"Machine: {mach['cpu']} ({', '.join(mach['isa'])}), {mach['cores']} cores, onnxruntime "
        f"{mach['onnxruntime']}, Python {mach['python']}. Kinds {', '.join(KINDS)} x epochs {epochs} x seeds "
        f"{seeds}, digits; precisions {PRECISIONS}; batches 1, 7, 64.", "",
        "| where | exports / int8 graphs | checks | refused | max abs diff vs onnx.reference |",
        "|---|---|---|---|---|",
        f"| native export (all checks) | {len(rows)} exports | - | {len(native_refused)} | - |",
    ]
    for cpu, e in emulated.items():
        lines.append(f"| emulated {EMULATED_CPUS[cpu]} | {e['graphs']} graphs | {e['checks']} | {e['refused']} | {e['max_error']:.3g} |")
    (RESULTS / "int8_matrix.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
