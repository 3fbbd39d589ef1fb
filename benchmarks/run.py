"""Train (or reuse), export and benchmark the reference models; write JSON, Markdown and PNGs.

    digits MLP / MNIST MLP 784-128-32 / MNIST conv (code 32)
      -> benchmarks/work/<name>/run (cached) -> bundle (fp32, int8-dynamic, int8-static, fp16)
      -> edgeae.bench.harness (interleaved, + ort-bare + torch-eager)
      -> benchmarks/results/<name>.json, <name>.png, size_psnr.png; benchmarks/RESULTS.md

Usage: ``python -m benchmarks.run [--duration 0.5] [--data ../shared/data/mnist] [--only mnist-mlp]``.
Runs are cached under benchmarks/work/ (git-ignored); pass --retrain to start over.
``--replot`` re-derives ratios and recommendations from the saved benchmarks/results/<name>.json
and redraws the PNGs and RESULTS.md, measuring nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
RESULTS = HERE / "results"
MNIST = ROOT.parent / "shared" / "data" / "mnist"

# name -> train() keyword arguments (data filled in at run time)
MODELS = {
    "digits-mlp": {"data": "digits", "model": "mlp", "epochs": 30},
    "mnist-mlp": {"data": "mnist", "model": "mlp", "hidden": "128", "code_size": 32, "epochs": 10, "split": "ordered"},
    "mnist-conv": {"data": "mnist", "model": "conv", "code_size": 32, "epochs": 10, "split": "ordered"},
}


def _prepare(name: str, spec: dict, data: Path | None, retrain: bool, log) -> tuple[Path, Path]:
    """Train and export once; later runs reuse benchmarks/work/<name>/{run,bundle}."""
    from edgeae.export import export
    from edgeae.runtime.bundle import PRECISIONS
    from edgeae.train import train

    run_dir, bundle = WORK / name / "run", WORK / name / "bundle"
    kwargs = dict(spec)
    if kwargs["data"] == "mnist":
        kwargs["data"] = str(data)
    trained = retrain or not (run_dir / "metrics.json").is_file()  # metrics.json: a finished run
    if trained:
        t0 = time.time()
        r = train(out=run_dir, overwrite=True, **kwargs)
        log(f"{name}: trained in {time.time() - t0:.0f} s, validation PSNR {r.metrics['val_psnr']:.2f} dB")
    if trained or not (bundle / "manifest.json").is_file():  # a bundle always comes from this run
        t0 = time.time()
        export(run_dir, bundle, precisions=PRECISIONS, overwrite=True)
        log(f"{name}: exported in {time.time() - t0:.0f} s")
    return run_dir, bundle


def _rate_distortion() -> str:
    """The compression results written by ``python -m benchmarks.rd`` (kept in one page)."""
    parts = [(RESULTS / name).read_text(encoding="utf-8") for name in ("rd.md", "rd-augmented.md")
             if (RESULTS / name).is_file()]
    text = "\n\n".join(parts).replace("](rd.md)", "](results/rd.md)").replace("](rd.png)", "](results/rd.png)")
    return ("\n\n" + text) if parts else ""


def _machine_line(settings: dict) -> str:
    m = settings.get("machine") or {}
    isa = ", ".join(m.get("isa", [])) or "no AVX2/AVX-512/VNNI/NEON-dot flags"
    return f"{m.get('cpu', 'unknown CPU')} ({isa}), {settings['cpu_count']} cores ({settings['platform']})"


def _markdown(results: dict, args: argparse.Namespace) -> str:
    from edgeae.bench.report import TARGETS

    first = next(iter(results.values()))
    s = first.settings
    lines = [
        "# edgeae benchmark results", "",
        f"Written by `python -m benchmarks.run` (`make bench`); raw numbers in `benchmarks/results/*.json`. "
        f"Machine: {_machine_line(s)}, onnxruntime {s['onnxruntime']}, numpy {s['numpy']}, "
        f"Python {s['python']}. Session options: graph optimization {s['graph_optimization_level']}, "
        f"allow_spinning {s['allow_spinning']}, {s['execution_mode']}, inter-op threads {s['inter_op_threads']}; "
        f"intra-op threads {s['threads']}. Method: {s['timing']}; {s['duration_s']} s per cell, "
        f"warm-up {s['warmup']} calls per variant. Memory: {s['memory']}. Absolute times on a shared machine "
        "drift (the machine is shared with other busy processes); the ratios, paired round by round within "
        "one run of interleaved blocks, are what to compare.", "",
        "## Targets", "",
        "| model | " + " | ".join(f"{k} ({op} {v})" for k, (op, v, _) in TARGETS.items()) + " | self-check |",
        "|---|" + "---:|" * len(TARGETS) + "---|",
    ]
    for name, r in results.items():
        cells = []
        for k, (op, v, _) in TARGETS.items():
            got = r.ratios.get(k)
            mark = "" if got is None else (" ok" if (got <= v if op == "<=" else got >= v) else " **missed**")
            extra = f" ({r.ratios['int8_variant']})" if k == "int8_speedup" and got is not None else ""
            span = r.ratios.get("intervals", {}).get(k)
            extra += f" [{span[0]:.2f}-{span[1]:.2f}]" if span and span[0] is not None else ""
            cells.append("-" if got is None else f"{got:.2f}{extra}{mark}")
        c = r.ratios.get("self_check")
        per = "; ".join(f"{t} thread(s): {a} of {n}" for t, (a, n) in (c or {}).get("by_threads", {}).items())
        cells.append(f"{per} rows within {c['tolerance']:.0%}" if c else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "What each ratio is: " + "; ".join(f"`{k}` = {w}" for k, (_, _, w) in TARGETS.items())
              + ". Ratios are medians of per-round ratios, [95% interval]; self-check: rows whose block figure is "
              "within 5% of a timeit loop of the variant alone.", ""]
    for name, r in results.items():
        lines += [f"## {name}", "", f"![{name}](results/{name}.png)", ""]
        if r.ceiling and "macs_per_s" in r.ceiling:
            c = r.ceiling
            lines += [f"Ceiling: encoder = {c['macs'] // c['batch']:,} multiply-adds/sample; numpy one-thread "
                      f"matmul of the same shapes at batch {c['batch']}: {c['macs_per_s'] / 1e9:.2f} GMAC/s; "
                      f"fp32 encoder one thread: {c.get('achieved_macs_per_s', 0) / 1e9:.2f} GMAC/s.", ""]
        lines += [r.to_markdown(), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=0.5, help="seconds per cell (default 0.5)")
    ap.add_argument("--data", type=Path, default=MNIST if MNIST.is_dir() else None,
                    help=f"MNIST folder (IDX files) [default: {MNIST} when present]")
    ap.add_argument("--only", default=None, help="comma-separated model names: " + ", ".join(MODELS))
    ap.add_argument("--batch", default="1,8,64,256")
    ap.add_argument("--retrain", action="store_true", help="ignore cached runs and bundles in benchmarks/work/")
    ap.add_argument("--replot", action="store_true", help="re-derive ratios, recommendations, PNGs and RESULTS.md from the saved JSON only")
    args = ap.parse_args(argv)
    if args.replot:
        return _replot(args.only.split(",") if args.only else list(MODELS), args)

    from edgeae.bench.harness import run_bench
    from edgeae.bench.plots import plot
    from edgeae.bench.torch_baseline import load_torch

    def log(msg: str) -> None:
        print(msg, flush=True)

    names = args.only.split(",") if args.only else list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; choose from: {', '.join(MODELS)}")
    if args.data is None and any(MODELS[n]["data"] == "mnist" for n in names):
        log(f"MNIST not found at {MNIST} and no --data given: skipping the MNIST models")
        names = [n for n in names if MODELS[n]["data"] != "mnist"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    batches = [int(b) for b in args.batch.split(",")]
    threads = sorted({1, os.cpu_count() or 1})
    results = {}
    t_all = time.time()
    for name in names:
        run_dir, bundle = _prepare(name, MODELS[name], args.data, args.retrain, log)
        t0 = time.time()
        result = run_bench(bundle, batches=batches, threads=threads, duration=args.duration,
                           torch_model=load_torch(run_dir))
        result.bundle = f"benchmarks/work/{name}/bundle"
        results[name] = result
        (RESULTS / f"{name}.json").write_text(result.to_json(), encoding="utf-8")
        plot(result, RESULTS / f"{name}.png", title=name)
        log(f"{name}: benchmarked in {time.time() - t0:.0f} s; ratios {json.dumps(result.ratios)}")
    if results:
        results = _with_saved(results)  # models measured in an earlier run (--only) keep their page
        _size_psnr(results, RESULTS / "size_psnr.png")
        (HERE / "RESULTS.md").write_text(_markdown(results, args) + _rate_distortion(), encoding="utf-8")
        log(f"Wrote {HERE / 'RESULTS.md'} and {RESULTS}/ in {time.time() - t_all:.0f} s")
    return 0


def _with_saved(results: dict) -> dict:
    """``results`` plus the saved JSON of every other model, in MODELS order."""
    from edgeae.bench.report import BenchResult

    out = {}
    for name in MODELS:
        path = RESULTS / f"{name}.json"
        if name in results:
            out[name] = results[name]
        elif path.is_file():
            out[name] = BenchResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    return out


def _replot(names: list[str], args: argparse.Namespace) -> int:
    """Re-derive ratios and recommendations from the saved rows of benchmarks/results/<name>.json
    (measuring nothing), then rewrite the JSON, <name>.png, size_psnr.png and RESULTS.md."""
    from edgeae.bench.plots import plot
    from edgeae.bench.report import BenchResult

    results = {}
    for name in names:
        path = RESULTS / f"{name}.json"
        if path.is_file():
            results[name] = BenchResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
            results[name].finish()
            path.write_text(results[name].to_json(), encoding="utf-8")
            print(f"Wrote {path} and {plot(results[name], RESULTS / f'{name}.png', title=name)}")
    if results:
        results = _with_saved(results)
        _size_psnr(results, RESULTS / "size_psnr.png")
        (HERE / "RESULTS.md").write_text(_markdown(results, args) + _rate_distortion(), encoding="utf-8")
        print(f"Wrote {RESULTS / 'size_psnr.png'} and {HERE / 'RESULTS.md'}")
    return 0


def _size_psnr(results: dict, path: Path) -> None:
    """One scatter across models: bundle size (encoder + decoder) vs held-out PSNR, one colour per
    precision (as in every edgeae plot), the model named above its group of points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from edgeae.bench.plots import variant_style

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    variants: list[str] = []
    for name, r in results.items():
        pts = {row.variant: (row.size / 1024, row.psnr) for row in r.rows
               if row.graph == "end-to-end" and row.psnr is not None and row.status == "ok"}
        for v, (x, y) in pts.items():
            ax.plot(x, y, linestyle="none", markersize=8, markeredgewidth=1.5, **variant_style(v))
            variants += [v] if v not in variants else []
        if pts:
            xs, ys = zip(*pts.values(), strict=True)
            ax.annotate(name, ((min(xs) * max(xs)) ** 0.5, max(ys)), xytext=(0, 10), textcoords="offset points",
                        ha="center", fontsize=10)
    ax.set(xscale="log", xlabel="encoder + decoder size (KB; torch-eager: weights file)",
           ylabel="held-out PSNR (dB)", title="size vs quality per precision")
    ax.margins(y=0.15)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(handles=[Line2D([], [], linestyle="none", markersize=8, label=v, **variant_style(v)) for v in variants],
              fontsize=9, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
