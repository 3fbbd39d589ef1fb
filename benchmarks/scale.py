"""Constant memory at 10x the input, and Dask throughput next to one process.

Tiles (and shifts) the MNIST test set into 60,000 and 600,000 28x28 uint8 samples (.npy),
trains a small MLP on the test set and exports it with codec tables, then:

1. peak RSS of ``edgeae encode`` and ``edgeae compress`` (each in a fresh process) at 60k
   and 600k samples, next to reading the whole input into memory first (the in-memory path);
2. samples/s of ``edgeae compress`` in one process vs ``--dask local:2``, interleaved
   (A B A B), with the stream bytes compared;
3. peak RSS of ``edgeae train`` (2 epochs, MLP) on the same 60k and 600k ``.npy`` files:
   batches are read from the memory-mapped file, so memory should not follow the data.

    python -m benchmarks.scale [--mnist /work/shared/data/mnist] [--work /tmp/edgeae-scale] [--only-train]

Writes benchmarks/results/scale.json and scale.md. Not a test: it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    """CPU model and core count of this machine."""
    name = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def make_input(mnist: Path, n: int, path: Path) -> Path:
    """``n`` samples: the test set tiled, each tile shifted by a different (dy, dx)."""
    if path.exists():
        return path
    from edgeae.data import load_dataset

    base = load_dataset(mnist / "t10k-images-idx3-ubyte.gz").x[:, 0]  # (10000, 28, 28) uint8
    out = np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), mode="w+", dtype=np.uint8, shape=(n, 28, 28))
    for t, start in enumerate(range(0, n, len(base))):
        count = min(len(base), n - start)
        out[start:start + count] = np.roll(base[:count], (t % 5 - 2, t // 5 % 5 - 2), axis=(1, 2))
    out.flush()
    del out
    os.replace(path.with_suffix(".tmp.npy"), path)
    return path


def make_bundle(mnist: Path, work: Path) -> Path:
    bundle = work / "bundle"
    if (bundle / "manifest.json").is_file():
        return bundle
    from edgeae.export import export
    from edgeae.train import train

    if not (work / "run" / "metrics.json").is_file():
        train(str(mnist / "t10k-images-idx3-ubyte.gz"), model="mlp", code_size=32, epochs=3, out=work / "run",
              overwrite=True)
    export(work / "run", bundle, precisions="fp32", overwrite=True)
    return bundle


def child(args: list[str]) -> None:
    """Run one CLI command in this process and print its peak RSS (MiB) as the last line."""
    if args[0] == "in-memory":  # the whole input in memory, then encode: what streaming avoids
        from edgeae.data import load_array_input
        from edgeae.runtime import load

        model = load(args[1], threads=1)
        np.save(args[3], model.encode(load_array_input(args[2], model.sample_shape)))
    else:
        from edgeae.cli import cli

        try:
            cli.main(args, prog_name="edgeae", standalone_mode=False)
        except SystemExit:
            pass
    print(peak_rss_mib())


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM), in MiB.

    Not ``ru_maxrss``: Linux carries that over from the parent across fork + exec, so a
    child would report the benchmark's own peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(args: list[str], **env_vars: str) -> tuple[float, float]:
    """(peak RSS MiB, seconds) of ``args`` run in a fresh process (``env_vars`` added)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_vars)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "benchmarks.scale", "--child", *args], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1]), time.perf_counter() - t0


def rss_table(bundle: Path, inputs: dict[int, Path], work: Path) -> list[dict]:
    rows = []
    for label, cmd in (("encode", ["encode", "{b}", "{x}", "-o", "{o}.npy", "--overwrite", "--threads", "1"]),
                       ("compress", ["compress", "{b}", "{x}", "-o", "{o}.eae", "--overwrite", "--threads", "1"]),
                       ("in-memory encode", ["in-memory", "{b}", "{x}", "{o}.npy"])):
        for n, x in inputs.items():
            args = [a.format(b=bundle, x=x, o=work / f"out-{n}") for a in cmd]
            rss, seconds = measure(args)
            rows.append({"command": label, "samples": n, "input_mib": x.stat().st_size / 2**20,
                         "peak_rss_mib": rss, "seconds": seconds})
            print(rows[-1], flush=True)
    return rows


TRAIN = ["train", "--data", "{x}", "--model", "mlp", "--hidden", "128", "--code-size", "32", "--epochs", "2",
         "--batch-size", "256", "--device", "cpu", "--out", "{o}", "--overwrite"]


def train_table(inputs: dict[int, Path], work: Path) -> list[dict]:
    """Peak RSS and seconds of a 2-epoch MLP training run per input size (fresh processes)."""
    rows = []
    for n, x in inputs.items():
        # One torch thread: on shared cores a second thread's spin-waiting only burns CPU.
        rss, seconds = measure([a.format(x=x, o=work / f"train-{n}") for a in TRAIN], OMP_NUM_THREADS="1")
        rows.append({"command": "train (MLP, 2 epochs)", "samples": n, "input_mib": x.stat().st_size / 2**20,
                     "peak_rss_mib": rss, "seconds": seconds})
        print(rows[-1], flush=True)
    return rows


def dask_table(bundle: Path, x: Path, work: Path, repeats: int) -> dict:
    """compress: one process vs --dask local:2, interleaved; streams compared byte for byte."""
    n = int(np.load(x, mmap_mode="r").shape[0])
    times: dict[str, list[float]] = {"one process": [], "--dask local:2": []}
    for _ in range(repeats):
        for label, extra in (("one process", []), ("--dask local:2", ["--dask", "local:2"])):
            out = work / f"dask-{'d' if extra else 's'}.eae"
            _, seconds = measure(["compress", str(bundle), str(x), "-o", str(out), "--overwrite", "--threads", "1",
                                  *extra])
            times[label].append(seconds)
    same = (work / "dask-s.eae").read_bytes() == (work / "dask-d.eae").read_bytes()
    return {"samples": n, "byte_equal": same, "warm": warm_dask(bundle, x, work, repeats),
            "rows": {k: {"median_s": statistics.median(v), "samples_per_s": n / statistics.median(v), "runs": v}
                     for k, v in times.items()}}


def warm_dask(bundle: Path, x: Path, work: Path, repeats: int) -> dict:
    """Steady state: one started LocalCluster (2 workers x 1 thread, models loaded) vs this
    process, compress only, interleaved A B A B in one process."""
    from distributed import Client, LocalCluster

    from edgeae.data import open_source
    from edgeae.runtime import load
    from edgeae.scale import bulk
    from edgeae.scale import dask as edask

    model = load(bundle, threads=1)
    source = open_source(x, model.sample_shape)
    spec = edask.ModelSpec(str(bundle))
    arr = edask.as_dask_array(source, bulk.block_rows(model.code_size))
    times: dict[str, list[float]] = {"one process": [], "LocalCluster 2x1": []}
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0", host="127.0.0.1") as cluster, \
            Client(cluster):
        edask.compress(spec, arr[:100], work / "warm.eae")  # workers import and load the bundle
        for _ in range(repeats):
            t0 = time.perf_counter()
            bulk.compress_to_file(model, source, work / "warm-s.eae")
            times["one process"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            edask.compress(spec, arr, work / "warm-d.eae")
            times["LocalCluster 2x1"].append(time.perf_counter() - t0)
    n = source.n
    return {k: {"median_s": statistics.median(v), "samples_per_s": n / statistics.median(v), "runs": v}
            for k, v in times.items()}


def _growth(rss: list[dict]) -> dict[str, float]:
    """Peak RSS at the largest input over that at the smallest, per command."""
    growth = {}
    for cmd in dict.fromkeys(r["command"] for r in rss):
        rows = sorted((r for r in rss if r["command"] == cmd), key=lambda r: r["samples"])
        growth[cmd] = rows[-1]["peak_rss_mib"] / rows[0]["peak_rss_mib"]
    return growth


def write(result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Scaling: memory at 10x the input, Dask vs one process", "",
             f"Machine: {result['machine']}; load average {result.get('load', '?')} during the run (shared). "
             "Bundle: MLP 784-128-32 (fp32, 6-bit codec), one ORT thread.",
             "Each command runs in a fresh process; peak RSS is its VmHWM. Seconds include process start."
             + (f" Training rows (one torch thread): load average {result['train_load']}; `edgeae {' '.join(TRAIN[:-5]).format(x='X.npy')} ...`."
                if "train_load" in result else ""), "",
             "| command | samples | input MiB | peak RSS MiB | seconds |", "|---|---:|---:|---:|---:|"]
    for r in result["rss"]:
        lines.append(f"| {r['command']} | {r['samples']:,} | {r['input_mib']:.0f} | {r['peak_rss_mib']:.0f} | "
                     f"{r['seconds']:.1f} |")
    if "train_in_memory" in result:  # the same command before training streamed (measured once, by hand)
        old = result["train_in_memory"]
        lines += ["", "The same `edgeae train` before it streamed its data (whole data set normalized in memory): "
                  + ", ".join(f"{int(n):,} samples {v:.0f} MiB" for n, v in old.items()) + "."]
    lines += ["", "Peak RSS at 10x the samples, relative to 1x:", ""]
    for cmd, ratio in result["rss_growth"].items():
        lines.append(f"- {cmd}: {ratio:.2f}x")
    d = result["dask"]
    lines += ["", f"`edgeae compress` of {d['samples']:,} samples (median of {len(next(iter(d['rows'].values()))['runs'])} "
              "interleaved runs, cluster start included); streams byte-equal: "
              f"{'yes' if d['byte_equal'] else 'NO'}.", "",
              "| executor | median s | samples/s |", "|---|---:|---:|"]
    for k, v in d["rows"].items():
        lines.append(f"| {k} | {v['median_s']:.1f} | {v['samples_per_s']:,.0f} |")
    if "warm" in d:
        lines += ["", "Steady state (a started cluster, bundles loaded; compress call only, interleaved):", "",
                  "| executor | median s | samples/s |", "|---|---:|---:|"]
        for k, v in d["warm"].items():
            lines.append(f"| {k} | {v['median_s']:.1f} | {v['samples_per_s']:,.0f} |")
    (RESULTS / "scale.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", type=Path, default=Path("/work/shared/data/mnist"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeae-scale"))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--only-dask", action="store_true", help="Rerun the Dask rows only (keeps the RSS rows).")
    ap.add_argument("--only-train", action="store_true", help="Rerun the training rows only (keeps the others).")
    opts = ap.parse_args()
    opts.work.mkdir(parents=True, exist_ok=True)
    bundle = make_bundle(opts.mnist, opts.work)
    inputs = {n: make_input(opts.mnist, n, opts.work / f"x{n}.npy") for n in (60_000, 600_000)}
    if opts.only_train:
        result = json.loads((RESULTS / "scale.json").read_text())
        keep = [r for r in result["rss"] if not r["command"].startswith("train")]
        result["rss"] = keep + train_table(inputs, opts.work)
        result["rss_growth"] = _growth(result["rss"])
        result["machine"] = machine()
        result["train_load"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
        write(result)
        print((RESULTS / "scale.md").read_text())
        return
    if opts.only_dask:
        result = json.loads((RESULTS / "scale.json").read_text())
        result["dask"] = dask_table(bundle, inputs[60_000], opts.work, opts.repeats)
        result["load"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
        write(result)
        print((RESULTS / "scale.md").read_text())
        return
    rss = rss_table(bundle, inputs, opts.work) + train_table(inputs, opts.work)
    result = {"machine": machine(), "load": " ".join(f"{v:.1f}" for v in os.getloadavg()), "rss": rss,
              "rss_growth": _growth(rss),
              "dask": dask_table(bundle, inputs[60_000], opts.work, opts.repeats)}
    write(result)
    print((RESULTS / "scale.md").read_text())


if __name__ == "__main__":
    main()
