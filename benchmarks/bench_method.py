"""Why the benchmark times variants in interleaved blocks: the same bundle measured both ways.

``edgeae bench`` once alternated variants call by call (A B A B ...). Each variant holds its
own weights (and PyTorch eager its own allocator and thread pool), so every call started
with the caches the previous variant left behind: a cost a user running one model never
pays. This script runs :func:`edgeae.bench.harness.run_bench` on one bundle with
``method="calls"`` and ``method="blocks"``, with and without the PyTorch baseline, and
prints each variant's figure next to a plain ``timeit`` loop of it alone (the self-check).

    python -m benchmarks.bench_method [--model digits-mlp] [--duration 1]

Needs the bundles of ``python -m benchmarks.run`` (benchmarks/work/<model>/); writes
benchmarks/results/bench_method.json and .md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _measure(bundle: Path, run_dir: Path, duration: float) -> dict:
    from edgeae.bench.harness import run_bench
    from edgeae.bench.torch_baseline import load_torch

    torch_model = load_torch(run_dir)
    out = {}
    for method in ("calls", "blocks"):
        for with_torch in (False, True):
            r = run_bench(bundle, graphs=("encoder",), batches=(1, 256), threads=(1,), duration=duration,
                          torch_model=torch_model if with_torch else None, ceiling=False, method=method)
            key = f"{method}{' + torch' if with_torch else ''}"
            out[key] = {"ratios": r.ratios, "recommendations": r.recommendations, "settings": r.settings,
                        "rows": [{k: getattr(row, k) for k in ("variant", "batch", "block_ms", "timeit_ms", "check")}
                                 for row in r.rows]}
            print(f"{key}: {json.dumps(r.ratios.get('self_check'))}", flush=True)
    return out


def _markdown(model: str, data: dict) -> str:
    first = next(iter(data.values()))["settings"]
    m = first["machine"]
    lines = [f"# Call-by-call vs interleaved blocks ({model} encoder, 1 thread)", "",
             f"Written by `python -m benchmarks.bench_method`. Machine: {m['cpu']} ({', '.join(m['isa'])}), "
             f"{m['cores']} cores, shared with other busy processes; onnxruntime {first['onnxruntime']}. "
             "ms per call = median over rounds of each block's median call; timeit = median call of a plain "
             "`timeit` loop of the variant alone; check = ms / timeit.", "",
             "| method | batch | variant | ms per call | timeit alone ms | check |", "|---|---:|---|---:|---:|---:|"]
    for key, d in data.items():
        for row in d["rows"]:
            lines.append(f"| {key} | {row['batch']} | {row['variant']} | {row['block_ms']:.4f} | "
                         f"{row['timeit_ms']:.4f} | {row['check']:.3f} |")
    lines += ["", "| method | overhead_vs_bare | self-check rows within 5% | recommendation batch 1 | batch 256 |",
              "|---|---:|---:|---|---|"]
    for key, d in data.items():
        c, recs = d["ratios"].get("self_check", {}), {r["batch"]: r for r in d["recommendations"]}
        rec = [f"{recs[b]['variant']} ({recs[b]['speedup_vs_fp32']:.2f}x)" if b in recs else "-" for b in (1, 256)]
        lines.append(f"| {key} | {d['ratios'].get('overhead_vs_bare', '-')} | {c.get('rows', 0) - c.get('outside', 0)} "
                     f"of {c.get('rows', 0)} | {rec[0]} | {rec[1]} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="digits-mlp")
    ap.add_argument("--duration", type=float, default=1.0)
    args = ap.parse_args()
    work = HERE / "work" / args.model
    data = _measure(work / "bundle", work / "run", args.duration)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_method.json").write_text(json.dumps({"model": args.model, **data}, indent=1) + "\n")
    (RESULTS / "bench_method.md").write_text(_markdown(args.model, data))
    print(_markdown(args.model, data))


if __name__ == "__main__":
    main()
