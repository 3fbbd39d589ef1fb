"""The export gate on real data: correct exports must pass, deliberate faults must be refused.

For data sets x model kinds x seeds x epochs, a model is trained once and exported with every
precision, with raw I/O (one export writes and checks both the model-unit graphs and the
raw-I/O ones; the exporter's own checks: each output element within the
bound its numerics allow, docs/export.md). Every int8 graph is then checked again, with the
same function, under qemu user-mode emulation of other CPUs (Haswell: AVX2 without VNNI;
Nehalem: SSE4.2; EPYC-Milan: AVX2, no VNNI). Deliberate faults are injected into the first seed of each data set x kind:
int8 weight rows swapped (static and dynamic), a layer left in float, fp16 weights 2% off, a
decoder from another model with the manifest hash updated (caught by the generated-C check),
int8 (QInt8) weights under emulated Haswell, and once a NaN-producing decoder.

Data: MNIST (``../shared/data/mnist``, first 9,000 train / last 1,000 held out), the built-in
digits, 16x16 grey patches of the photos scikit-image ships in its wheel, and 64-sample
windows of the membrane-potential recording matplotlib ships (``sensor``; no download).
Kinds: mlp (MSE), mlp-bce (BCE), conv, vae, denoise (a Gaussian-noise denoising MLP).
``--work DIR`` keeps trained runs, so a second run (other CPUs, faults) trains nothing.

    python -m benchmarks.gate_matrix                      # the full matrix (hours on 2 cores)
    python -m benchmarks.gate_matrix --data mnist --kinds mlp,conv --seeds 0 --epochs 10 --work runs/gate

Writes benchmarks/results/gate_matrix.json and .md (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
KINDS = {"mlp": {"model": "mlp"}, "mlp-bce": {"model": "mlp", "loss": "bce"},
         "conv": {"model": "conv", "channels": (8, 16)}, "vae": {"model": "vae"},
         "denoise": {"model": "mlp", "noise": "gaussian:0.2"}}
PRECISIONS = "fp32,fp16,int8-dynamic,int8-static"
PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "moon", "rocket", "retina",
          "hubble_deep_field")  # photographs in scikit-image's wheel (skimage.data, no download)


def patches(path: Path, size: int = 16, stride: int = 12) -> Path:
    """Grey ``size`` x ``size`` uint8 patches of scikit-image's photos, as (N, 1, size, size) .npy."""
    from skimage import data as skdata
    from skimage.color import rgb2gray
    from skimage.transform import rescale

    out = []
    for name in PHOTOS:
        img = getattr(skdata, name)()
        img = rgb2gray(img[..., :3]) if img.ndim == 3 else img / 255.0
        img = rescale(img, 0.5, anti_aliasing=True)  # photo scale -> textures that fit a 16x16 window
        for i in range(0, img.shape[0] - size + 1, stride):
            for j in range(0, img.shape[1] - size + 1, stride):
                out.append(np.round(img[i:i + size, j:j + size] * 255).astype(np.uint8))
    arr = np.stack(out)[:, None]
    np.random.default_rng(0).shuffle(arr)  # photos interleaved, so the held-out tail mixes them all
    np.save(path, arr)
    return path


def sensor(path: Path, window: int = 64, stride: int = 8) -> Path:
    """Windows of a real sensor recording a dependency ships: matplotlib's ``membrane.dat``, a
    membrane-potential trace of 12,000 float32 samples, cut into (N, ``window``) float32 rows."""
    import matplotlib

    trace = np.fromfile(Path(matplotlib.get_data_path()) / "sample_data" / "membrane.dat", dtype=np.float32)
    rows = np.lib.stride_tricks.sliding_window_view(trace, window)[::stride].copy()
    np.random.default_rng(0).shuffle(rows)  # the held-out tail mixes the whole trace
    np.save(path, rows)
    return path


def _source(data: str, work: Path) -> tuple[str, dict[str, Any]]:
    if data == "mnist":
        return str(MNIST), {"split": "ordered"}
    if data in ("patches", "sensor"):
        p = work / f"{data}.npy"
        return str(p if p.exists() else (patches if data == "patches" else sensor)(p)), {"split": "ordered"}
    return "digits", {}


def _train(data: str, kind: str, seed: int, epochs: int, work: Path) -> Path:
    from edgeae.train import train

    src, kw = _source(data, work)
    run = work / f"run-{data}-{kind}-{seed}-{epochs}"
    if not (run / "metrics.json").exists():  # written last: a run cut short is trained again
        train(src, out=run, epochs=epochs, seed=seed, overwrite=True, patience=1000, **KINDS[kind], **kw)
    return run


def _export(run: Path, out: Path, raw: bool) -> tuple[str | None, dict[str, Any]]:
    """(refusal message or None, validation) of one export with every precision; a bundle this
    matrix already wrote from the same run (``--work``) is read back, not exported again."""
    from edgeae.errors import EdgeAEError
    from edgeae.export import export

    done = out / "manifest.json"
    if done.exists() and done.stat().st_mtime > (run / "metrics.json").stat().st_mtime:
        return None, json.loads(done.read_text())["validation"]

    try:
        r = export(run, out, precisions=PRECISIONS, raw_io=raw, latency_repeats=2, codec_bits="none", overwrite=True)
        return None, r.validation
    except EdgeAEError as exc:
        return str(exc), {}


def _margins(validation: dict[str, Any], into: dict[str, float]) -> None:
    """Largest share of its bound each criterion used (margin = 1 / share), over all graphs."""
    for rec in validation.values():
        for t in (rec.get("criteria") or {}).values():
            into[t["criterion"]] = max(into.get(t["criterion"], 0.0), t["share"])
        pc = rec.get("psnr_criterion")
        if pc:
            into["psnr"] = max(into.get("psnr", 0.0), pc["share"])
        for t in (rec.get("weights_criterion") or {}).values():
            into["weights"] = max(into.get("weights", 0.0), t["share"])


def _emulated(cpu: str, bundle: Path, work: Path) -> dict[str, Any]:
    """Every int8 graph of ``bundle`` through the exporter's reference check under ``cpu``."""
    from edgeae.export.cpucheck import run_emulated

    graphs = _int8_inputs(bundle, work)
    report = run_emulated(cpu, graphs, timeout=3600)
    return {"graphs": len(report), "refused": sum(bool(r["failures"]) for r in report.values()),
            "max_share": max((r["max_share"] or 0.0 for r in report.values()), default=0.0),
            "failures": [f for r in report.values() for f in r["failures"]][:5]}


def _int8_inputs(bundle: Path, work: Path) -> dict[str, str]:
    import onnxruntime as ort

    from edgeae.runtime.bundle import read_manifest
    from edgeae.runtime.preprocess import Normalizer

    m = read_manifest(bundle)
    raw = np.load(bundle / "samples.npy")[:64]
    x = Normalizer(m.normalization, m.sample_shape).normalize(raw).astype(np.float32)
    codes = ort.InferenceSession(str(bundle / "encoder.onnx"), providers=["CPUExecutionProvider"]).run(
        ["code"], {"x": x})[0]
    tag = bundle.name
    for name, arr in (("x", x), ("codes", codes), ("raw", raw)):
        np.save(work / f"{tag}-{name}.npy", arr)
    out = {}
    for g in m.graphs:
        if g.precision.startswith("int8") and g.format == "onnx" and g.fixed_batch is None:
            key = "codes" if g.role == "decoder" else ("raw" if g.raw_io else "x")
            out[str(bundle / g.file)] = str(work / f"{tag}-{key}.npy")
    return out


def _inject(res: dict[str, Any], d: str, kind: str, run: Path, other: Path, bundle: Path, work: Path,
            haswell: bool) -> None:
    """Every deliberate fault on one trained run (``other``: same shapes, other weights)."""
    from benchmarks.gate_faults import run_faults

    for case in run_faults(run, other, bundle, work / f"faults-{d}-{kind}", haswell):
        res["faults"]["tried"] += 1
        res["faults"]["refused"] += case["refused"]
        res["faults"]["cases"].append({"data": d, "kind": kind, **case})
        print(f"  fault {case['fault']}: {'refused' if case['refused'] else 'PASSED'}", flush=True)


def run_matrix(data: list[str], kinds: list[str], seeds: list[int], epochs: list[int], raws: list[bool],
               cpus: list[str], faults: bool, work: Path, emulate_all: bool = True,
               fault_on: set[str] | None = None, pairs: list[tuple[str, str]] | None = None,
               emulate_on: set[str] | None = None, progress: Any = None) -> dict[str, Any]:
    """Train, export, check on emulated CPUs and inject faults; the counts and margins.

    ``emulate_all=False`` checks under emulation only the first seed / epochs (first raw setting),
    of each data set x kind; ``fault_on`` limits faults to those "data:kind" pairs; ``pairs``
    replaces data x kinds by a list of (data, kind); ``emulate_on`` limits emulated checks to
    those "data:kind" pairs."""
    res: dict[str, Any] = {"exports": 0, "refused": 0, "refusals": [], "margins": {}, "emulated": {},
                           "faults": {"tried": 0, "refused": 0, "cases": []}, "rows": []}
    pairs = [(d, k) for d in data for k in kinds] if pairs is None else pairs
    for d, kind in pairs:
        for ep in epochs:
            for seed in seeds:
                t0 = time.perf_counter()
                try:
                    run = _train(d, kind, seed, ep, work)
                except Exception as exc:  # a model that cannot be trained on this data is no export to judge
                    res.setdefault("not_trained", []).append(f"{d} {kind} seed {seed}: {type(exc).__name__}: {exc}")
                    print(f"{d} {kind} seed {seed}: not trained ({exc})", flush=True)
                    continue
                for raw in raws:
                    bundle = work / f"bundle-{d}-{kind}-{seed}-{ep}-{'raw' if raw else 'model'}"
                    refused, validation = _export(run, bundle, raw)
                    res["exports"] += 1
                    margins: dict[str, float] = {}
                    _margins(validation, margins)
                    for c, v in margins.items():
                        res["margins"][c] = max(res["margins"].get(c, 0.0), v)
                    row = {"data": d, "kind": kind, "epochs": ep, "seed": seed, "raw_io": raw,
                           "refused": refused, "shares": margins,
                           "psnr": {p: r["psnr"] for p, r in validation.items()}}
                    if refused:
                        res["refused"] += 1
                        res["refusals"].append(row)
                    first = seed == seeds[0] and ep == epochs[0] and raw == raws[0]
                    for cpu in cpus if not refused and (emulate_all or first) else []:
                        e = _emulated(cpu, bundle, work)
                        agg = res["emulated"].setdefault(cpu, {"graphs": 0, "refused": 0, "max_share": 0.0})
                        agg["graphs"] += e["graphs"]
                        agg["refused"] += e["refused"]
                        agg["max_share"] = max(agg["max_share"], e["max_share"])
                        row[f"emulated_{cpu}"] = e
                    res["rows"].append(row)
                if progress is not None:
                    progress(res)  # a partial run still leaves its results
                    print(f"{d} {kind} epochs={ep} seed={seed} raw={raw}: "
                          f"{'REFUSED ' + refused.splitlines()[1] if refused else 'passed'} "
                          f"({time.perf_counter() - t0:.0f} s)", flush=True)
                if faults and seed == seeds[0] and ep == epochs[0] and (fault_on is None or f"{d}:{kind}" in fault_on):
                    bundle = work / f"bundle-{d}-{kind}-{seed}-{ep}-{'raw' if raws[0] else 'model'}"
                    _inject(res, d, kind, run, _train(d, kind, seed + 100, ep, work), bundle, work, "haswell" in cpus)
                if progress is not None:
                    progress(res)
    if faults:
        from benchmarks.gate_faults import nan_fault

        case = nan_fault(work / "fault-nan")
        res["faults"]["tried"] += 1
        res["faults"]["refused"] += case["refused"]
        res["faults"]["cases"].append(case)
    return res


def _markdown(res: dict[str, Any], meta: dict[str, Any]) -> str:
    from benchmarks.gate_faults import describe

    lines = ["# The export gate on real data", "", f"Machine: {meta['machine']}; onnxruntime {meta['onnxruntime']}, "
             f"torch {meta['torch']}, numpy {meta['numpy']}. Emulated CPUs: qemu user mode "
             f"({', '.join(meta['cpus']) or 'none'}).", "",
             f"Run: `{meta['command']}` ({meta['seconds']:.0f} s{'' if meta['complete'] else ', INCOMPLETE: stopped before the end'}). Subset: data {meta['data']}, kinds {meta['kinds']}, "
             f"pairs {meta['pairs'] or 'all'}, "
             f"seeds {meta['seeds']}, epochs {meta['epochs']}, raw I/O {meta['raws']}, precisions {PRECISIONS}; "
             f"emulated checks on {meta['emulate']} bundles of {meta['emulate_on']}; faults on {meta['faults_on']}.", "",
             "| | count |", "|---|---|",
             f"| exports tried (each with every precision) | {res['exports']} |",
             f"| exports refused (must be 0) | {res['refused']} |",
             f"| deliberate faults tried | {res['faults']['tried']} |",
             f"| deliberate faults refused (must be all) | {res['faults']['refused']} |"]
    for cpu, e in res["emulated"].items():
        lines.append(f"| int8 graphs checked under emulated {cpu} / refused (must be 0) | {e['graphs']} / {e['refused']} |")
    lines += ["", "Smallest margin per criterion (largest share of its bound any graph used; margin = 1 / share; "
              "a share of 1 on an integer output is one step at a rounding tie):", "",
              "| criterion | largest share used | smallest margin |", "|---|---|---|"]
    for c, v in sorted(res["margins"].items()):
        lines.append(f"| {describe(c)} | {v:.3g} | {'exact' if v == 0 else f'x{1 / v:.3g}'} |")
    for cpu, e in res["emulated"].items():
        v = e["max_share"]
        lines.append(f"| integer semantics under emulated {cpu} | {v:.3g} | {'exact' if v == 0 else f'x{1 / v:.3g}'} |")
    lines += ["", "Faults (margin: how far past its bound the refusing criterion measured the fault, "
              "the largest 'x the bound' of its problem lines):", "",
              "| data | kind | fault | refused | margin | by |", "|---|---|---|---|---|---|"]
    for f in res["faults"]["cases"]:
        m = f.get("margin")
        lines.append(f"| {f.get('data', '-')} | {f.get('kind', '-')} | {f['fault']} | {f['refused']} | "
                     f"{'-' if m is None else f'x{m:.3g}'} | {f['by']} |")
    if res.get("not_trained"):
        lines += ["", "Not trained (no export to judge):", ""] + [f"- {t}" for t in res["not_trained"]]
    if res["refusals"]:
        lines += ["", "Refused exports:", ""] + [f"- {r['data']} {r['kind']} seed {r['seed']} epochs {r['epochs']} "
                                                f"raw {r['raw_io']}: {r['refused'][:300]}" for r in res["refusals"]]
    return "\n".join(lines) + "\n"


def merge(parts: list[Path], out: Path) -> dict[str, Any]:
    """One report from matrix parts run separately (processes or machines): counts added,
    margins the largest share of each, rows, refusals and faults listed together."""
    res: dict[str, Any] = {"exports": 0, "refused": 0, "refusals": [], "margins": {}, "emulated": {},
                           "faults": {"tried": 0, "refused": 0, "cases": []}, "rows": [], "not_trained": []}
    metas = []
    for part in parts:
        r = json.loads(part.with_suffix(".json").read_text())
        metas.append(r.pop("meta"))
        for k in ("exports", "refused"):
            res[k] += r[k]
        for k in ("refusals", "rows", "not_trained"):
            res[k] += r.get(k, [])
        for c, v in r["margins"].items():
            res["margins"][c] = max(res["margins"].get(c, 0.0), v)
        for cpu, e in r["emulated"].items():
            agg = res["emulated"].setdefault(cpu, {"graphs": 0, "refused": 0, "max_share": 0.0})
            agg["graphs"] += e["graphs"]
            agg["refused"] += e["refused"]
            agg["max_share"] = max(agg["max_share"], e["max_share"])
        for k in ("tried", "refused"):
            res["faults"][k] += r["faults"][k]
        res["faults"]["cases"] += r["faults"]["cases"]
    meta = {**metas[0], "parts": metas, "complete": all(m["complete"] for m in metas),
            "seconds": max(m["seconds"] for m in metas),
            "command": " ; ".join(m["command"] for m in metas), "cpus": sorted({c for m in metas for c in m["cpus"]})}
    for key, col in (("data", "data"), ("kinds", "kind"), ("seeds", "seed"), ("epochs", "epochs")):
        meta[key] = sorted({row[col] for row in res["rows"]})  # what the parts ran, not their defaults
    for key in ("pairs", "emulate_on", "faults_on", "raws", "emulate"):
        meta[key] = " + ".join(str(m[key]) for m in metas)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, **res}, indent=1, default=str))
    out.with_suffix(".md").write_text(_markdown(res, meta))
    return res


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import platform
    import sys

    import onnxruntime
    import torch

    from edgeae.bench.timing import machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="mnist,digits,patches")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--epochs", default="10")
    ap.add_argument("--raw-io", default="on", help="on: one export writes and checks model-unit and raw-I/O graphs; "
                    "off: model units only; off,on: both exports")
    ap.add_argument("--cpus", default="haswell,nehalem,epyc", help="emulated CPUs ('' for none)")
    ap.add_argument("--emulate", choices=["all", "first"], default="all",
                    help="first: only the first seed / epochs of each data set x kind")
    ap.add_argument("--emulate-on", default="all", help="data:kind pairs to check under emulation")
    ap.add_argument("--faults-on", default="all", help="data:kind pairs to inject faults into, e.g. mnist:mlp")
    ap.add_argument("--pairs", default="", help="data:kind pairs instead of --data x --kinds, e.g. mnist:mlp")
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--work", default="", help="folder kept for trained runs (reused when run again)")
    ap.add_argument("--out", default=str(RESULTS / "gate_matrix"), help="path without suffix for .json / .md")
    ap.add_argument("--merge", default="", help="comma-separated outputs of earlier runs (paths without suffix) "
                    "to combine into --out; nothing is run")
    a = ap.parse_args(argv)
    if a.merge:
        return merge([Path(p) for p in a.merge.split(",")], Path(a.out))
    split = [s for s in a.data.split(",") if s], [s for s in a.kinds.split(",") if s]
    seeds, epochs = [int(s) for s in a.seeds.split(",")], [int(e) for e in a.epochs.split(",")]
    raws = [v == "on" for v in a.raw_io.split(",")]
    cpus = [c for c in a.cpus.split(",") if c]
    t0 = time.perf_counter()
    meta = {"machine": machine(), "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version(), "cpus": cpus, "data": split[0],
            "kinds": split[1], "seeds": seeds, "epochs": epochs, "raws": a.raw_io, "emulate": a.emulate,
            "faults_on": a.faults_on, "pairs": a.pairs, "emulate_on": a.emulate_on,
            "command": "python -m benchmarks.gate_matrix " + " ".join(argv if argv is not None else sys.argv[1:])}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(res: dict[str, Any], done: bool = False) -> None:
        meta["seconds"], meta["complete"] = time.perf_counter() - t0, done
        out.with_suffix(".json").write_text(json.dumps({"meta": meta, **res}, indent=1, default=str))
        out.with_suffix(".md").write_text(_markdown(res, meta))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = a.work or tmp
        Path(tmp).mkdir(parents=True, exist_ok=True)
        fault_on = None if a.faults_on == "all" else set(a.faults_on.split(","))
        pairs = [tuple(p.split(":")) for p in a.pairs.split(",") if p] or None
        res = run_matrix(split[0], split[1], seeds, epochs, raws, cpus, not a.no_faults, Path(tmp),
                         a.emulate == "all", fault_on, pairs,
                         None if a.emulate_on == "all" else set(a.emulate_on.split(",")), save)
    save(res, done=True)
    print(out.with_suffix(".md").read_text())
    return res


if __name__ == "__main__":
    main()
