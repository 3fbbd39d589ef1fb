"""Latency harness for bundles: numpy + onnxruntime only (a PyTorch baseline is passed in).

Method (docs/performance.md): for every provider x threads, each variant is loaded once
(session-creation time = cold start), then for every graph x batch size the variants are
warmed up and timed in *interleaved blocks* (:func:`edgeae.bench.timing.blocks`: a block
of A calls, a block of B, ..., round after round) with ``perf_counter_ns`` on real samples
tiled to the batch, so drift on a shared machine hits all of them alike while each block
runs one variant warm, as a user runs one model. Then each variant runs alone in a plain
``timeit`` loop: the self-check that the blocks measured what a user gets. Baselines run
in the same cells: a bare ``onnxruntime.InferenceSession.run`` on the fp32 graphs with the
same session options ("ort-bare"), and PyTorch eager on the run's weights ("torch-eager").

    bundle -> load(precision) x providers x threads -> cells (graph, batch) -> rows -> report
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.bench.report import BenchResult, Row, percentiles
from edgeae.bench.timing import (
    ROUNDS,
    BlockTimes,
    alone,
    blocks,
    interleave,
    machine,
    peak_rss_mb,
    timed_load,
)
from edgeae.config import CONV1D_KINDS, CONV_KINDS, VARIATIONAL_KINDS
from edgeae.errors import ConfigError
from edgeae.runtime.bundle import Manifest, read_manifest
from edgeae.runtime.metrics import psnr, psnr_peak
from edgeae.runtime.precision import parse_precisions
from edgeae.runtime.session import create_session, resolve_providers, session_options

__all__ = ["GRAPHS", "DEFAULT_BATCHES", "run_bench", "encoder_matmuls", "measure_ceiling", "check_options"]

GRAPHS = ("encoder", "decoder", "end-to-end")
DEFAULT_BATCHES = (1, 8, 64, 256)
_PSNR_SAMPLES = 256  # held-out samples reconstructed for PSNR
METHODS = ("blocks", "calls")
CHECK_SHARE, CHECK_MIN_CALLS = 0.5, 5  # the self-check times each variant alone for half the calls the blocks made
CHECK_ROUNDS = 3  # ... in this many timeit loops per variant, one per round, so a burst of load hits one loop
Log = Callable[[str], None]


def check_options(manifest: Manifest, folder: str | Path, precisions: Sequence[str] | None,
                  graphs: Sequence[str], batches: Sequence[int], threads: Sequence[int],
                  providers: Sequence[str]) -> tuple[list[str], list[str]]:
    """Validate every option before anything runs; returns (precisions, ORT provider names)."""
    have = manifest.precisions("encoder")
    precisions = have if precisions is None else parse_precisions(precisions, have, str(folder), allow_empty=True)
    for g in graphs:
        if g not in GRAPHS:
            raise ConfigError(f"unknown graph {g!r}; choose from: {', '.join(GRAPHS)}")
    if not precisions or not graphs or not batches or not threads or not providers:
        raise ConfigError("--precision, --graph, --batch, --threads and --provider each need at least one value")
    for name, values in (("batch", batches), ("threads", threads)):
        if any(not isinstance(v, int) or v <= 0 for v in values):
            raise ConfigError(f"--{name} values must be positive integers, got {list(values)}")
    names = []
    for p in providers:
        names += [n for n in resolve_providers([p]) if n not in names]
    return list(precisions), names


# ---- work count and numpy ceiling ----------------------------------------------------------
def _conv_size(s: int) -> int:
    return (s + 1) // 2  # stride-2, kernel 3, padding 1 (edgeae.models.conv_sizes)


def encoder_matmuls(model: dict[str, Any], batch: int) -> list[tuple[int, int, int]]:
    """The encoder as GEMM shapes ``(M, K, N)`` (multiply-adds = M*K*N), from the manifest's model config.

    MLP layers are ``(B, in) @ (in, out)``; a stride-2 3x3 conv is its im2col GEMM
    ``(B*h*w, C_in*9) @ (C_in*9, C_out)``. VAEs count the log-variance head too.
    """
    kind = model.get("kind", "mlp")
    shape = [int(v) for v in model["input_shape"]]
    code = int(model["code_size"])
    heads = 2 if kind in VARIATIONAL_KINDS else 1
    out: list[tuple[int, int, int]] = []
    if kind in CONV1D_KINDS:  # stride-2 1-D convs of kernel 5 (edgeae.models): (B*t, C_in*5) @ (C_in*5, C_out)
        c, t = shape
        for ch in model.get("channels") or (16, 32):
            t = _conv_size(t)
            out.append((batch * t, c * 5, int(ch)))
            c = int(ch)
        feat = c * t
    elif kind in CONV_KINDS:
        c, h, w = shape
        for ch in model.get("channels") or (16, 32):
            h, w = _conv_size(h), _conv_size(w)
            out.append((batch * h * w, c * 9, int(ch)))
            c = int(ch)
        feat = c * h * w
    else:
        feat = int(np.prod(shape))
        for width in model.get("hidden") or ():
            out.append((batch, feat, int(width)))
            feat = int(width)
    out += [(batch, feat, code)] * heads
    return out


def measure_ceiling(shapes: list[tuple[int, int, int]], seconds: float = 0.5, bundle: str | Path | None = None,
                    feed: np.ndarray | None = None) -> dict[str, Any]:
    """Time a plain one-thread numpy matmul of each shape (multiply-adds per second), and
    with ``bundle`` + ``feed`` the fp32 encoder on one thread, interleaved with it.

    Runs :mod:`edgeae.bench.ceiling` in a subprocess with OMP/OPENBLAS/MKL thread counts
    set to 1 before numpy loads: the one way that pins every BLAS numpy may be built with,
    without extra packages.
    """
    import tempfile

    env = {**os.environ, **{k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                             "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")}}
    package_root = str(Path(__file__).resolve().parents[2])  # so the child imports this edgeae
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory() as tmp:
        path = ""
        if bundle is not None and feed is not None:
            path = str(Path(tmp) / "feed.npy")
            np.save(path, feed)
        proc = subprocess.run([sys.executable, "-m", "edgeae.bench.ceiling", json.dumps(shapes), str(seconds),
                               str(bundle) if path else "", path], env=env, capture_output=True, text=True,
                              timeout=300)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    *p50s, calls = json.loads(proc.stdout)
    macs = sum(m * k * n for m, k, n in shapes)
    out = {"shapes": [list(s) for s in shapes], "macs": macs, "p50_ms": p50s[0] / 1e6,
           "macs_per_s": macs / (p50s[0] / 1e9), "calls": calls, "threads": 1}
    if len(p50s) > 1:
        out["encoder_p50_ms"] = p50s[1] / 1e6  # edgeae fp32 encode of the same batch, interleaved
    return out


# ---- variants ------------------------------------------------------------------------------
class _Variant:
    """One thing to time: calls per graph, load time, memory, size and quality."""

    def __init__(self, name: str, calls: dict[str, Callable[[np.ndarray], Any]], load_ms: float,
                 load_mb: float, sizes: dict[str, int], psnr: float | None, before: Callable[[], None] | None = None):
        self.name, self.calls, self.load_ms, self.load_mb = name, calls, load_ms, load_mb
        self.sizes, self.psnr, self.before = sizes, psnr, before


def _psnr(x_model: np.ndarray, x_hat: np.ndarray, peak: float) -> float:
    return round(psnr(x_model, x_hat, peak), 3)


def _edge_variant(folder: Path, precision: str, provider: str, threads: int, feed: np.ndarray,
                  x_model: np.ndarray, peak: float | None) -> _Variant:
    from edgeae.runtime.model import load

    m, ms, mb = timed_load(lambda: load(folder, precision=precision, providers=[provider], threads=threads))
    enc, dec = m.graph("encoder"), m.graph("decoder")
    sizes = {"encoder": enc.size, "decoder": dec.size, "end-to-end": enc.size + dec.size}
    quality = None if peak is None else _psnr(x_model, m.reconstruct(feed), peak)
    calls = {"encoder": m.encode, "decoder": m.decode, "end-to-end": m.reconstruct}
    return _Variant(precision, calls, ms, mb, sizes, quality)


def _bare_variant(folder: Path, manifest: Manifest, provider: str, threads: int) -> _Variant:
    """The fp32 graphs under plain ``InferenceSession.run``, edgeae's session options."""
    calls, sizes, ms_total, mb_total = {}, {}, 0.0, 0.0
    for role, out in (("encoder", "code"), ("decoder", "x_hat")):
        entry = manifest.find_graph(role, "fp32")
        opts = session_options(threads)
        sess, ms, mb = timed_load(lambda e=entry, o=opts: create_session(folder / e.file, [provider], o))
        name = sess.get_inputs()[0].name
        calls[role] = (lambda s, n, o: lambda x: s.run([o], {n: x})[0])(sess, name, out)
        sizes[role] = entry.size
        ms_total, mb_total = ms_total + ms, mb_total + mb
    return _Variant("ort-bare", calls, ms_total, mb_total, sizes, None)


def _feeds(manifest: Manifest, samples: np.ndarray, fp32_model: Any) -> dict[str, Any]:
    """Inputs per graph: what EdgeModel takes, what the bare graph takes, and model units."""
    x_model = fp32_model.to_model_units(samples)
    takes_raw = fp32_model.graph("encoder").raw_io
    raw_in = takes_raw or manifest.normalization["mode"] == "standardize" or samples.dtype != np.uint8
    edge_in = samples if raw_in else x_model  # float model units skip normalization (same work as bare)
    bare_in = samples if takes_raw else x_model
    codes = fp32_model.encode(edge_in)
    return {"edge": edge_in, "bare": bare_in.astype(fp32_model.input_dtype), "model": x_model,
            "codes": codes}


def _tile(x: np.ndarray, batch: int) -> np.ndarray:
    return np.ascontiguousarray(np.take(x, np.arange(batch) % len(x), axis=0))  # (batch, ...)


def _load_samples(manifest: Manifest, folder: Path, data: np.ndarray | None,
                  data_label: str) -> tuple[np.ndarray, str]:
    if data is not None:
        return data[-_PSNR_SAMPLES:], f"{data_label} (last {min(len(data), _PSNR_SAMPLES)} samples)"
    path, problem = manifest.samples_file(folder)
    if path is not None:
        if problem:
            raise ConfigError(f"bundle {folder}: {problem}")
        x = np.load(path, allow_pickle=False)[:_PSNR_SAMPLES]
        return x, f"{path.name} ({len(x)} held-out samples)"
    raise ConfigError(f"bundle {folder} has no samples.npy: pass --data with held-out samples "
                      "(.npy/.npz, IDX, images, CSV) to benchmark on real inputs")


def run_bench(
    bundle_dir: str | Path,
    precisions: Sequence[str] | None = None,
    graphs: Sequence[str] = GRAPHS,
    batches: Sequence[int] = DEFAULT_BATCHES,
    threads: Sequence[int] | None = None,
    providers: Sequence[str] = ("cpu",),
    duration: float = 1.0,
    iterations: int | None = None,
    warmup: int = 3,
    torch_model: Any = None,
    data: np.ndarray | None = None,
    data_label: str = "--data",
    max_psnr_drop: float = 0.5,
    bare: bool = True,
    ceiling: bool = True,
    log: Log | None = None,
    rounds: int = ROUNDS,
    check: bool = True,
    method: str = "blocks",
) -> BenchResult:
    """Benchmark a bundle's precisions (and baselines) interleaved; see the module docstring.

    Args:
        precisions: None = every precision in the bundle.
        threads: intra-op thread counts; None = ``(1, os.cpu_count())``.
        duration: wall seconds of timed calls per cell (shared by the interleaved variants).
        iterations: fixed timed calls per variant and cell, split over the rounds (overrides ``duration``).
        rounds: rounds of blocks per cell; 6 or more give ratios a 95% interval (12: 3rd to 10th ratio).
        check: also time each variant alone in a ``timeit`` loop (the self-check column).
        method: "blocks" (the benchmark), or "calls": variants alternated call by call (A B A B ...),
            the method this harness used before, kept so its distortion can be shown next to the
            self-check (docs/performance.md).
        torch_model: the PyTorch eager baseline, from ``edgeae.bench.torch_baseline.load_torch(run_dir)``
            (built by the caller, so this module never imports torch).
        data: raw held-out samples (N, *sample_shape) used instead of the bundle's samples.npy;
            ``data_label`` names them in the report.
    """
    log = log or (lambda msg: None)
    folder = Path(bundle_dir)
    manifest = read_manifest(folder)
    threads = list(threads) if threads is not None else sorted({1, os.cpu_count() or 1})
    precisions, names = _check_run(manifest, folder, precisions, graphs, batches, threads, providers, duration,
                                   iterations, max_psnr_drop, torch_model, rounds, method)
    samples, source = _load_samples(manifest, folder, data, data_label)
    from edgeae.runtime.model import load

    fp32 = load(folder, "fp32", providers=["CPUExecutionProvider"], threads=1)
    samples, _ = fp32.contract.samples(samples, source)  # the input contract, as for encode (docs/INPUT.md)
    fp32.contract.check_values(samples, source)
    feeds = _feeds(manifest, samples, fp32)
    peak = psnr_peak(manifest.normalization["mode"], feeds["model"])
    settings = _settings(names, threads, source, duration, iterations, warmup, peak, rounds)
    if method == "calls":
        settings["timing"] = (f"variants alternated call by call (A B A B ...), perf_counter_ns per call; the calls "
                              f"split into {rounds} rounds for the ratios; self-check as for blocks")
    result = BenchResult(bundle=str(folder), kind=manifest.kind, max_psnr_drop=max_psnr_drop, settings=settings)
    for provider in names:
        for t in threads:
            variants = _variants(result, folder, manifest, precisions, provider, t, feeds, peak, bare, torch_model)
            for g in graphs:
                for b in batches:
                    _cell(result, variants, g, b, t, provider, feeds, duration, iterations, warmup, rounds, check,
                          method)
                    log(f"{provider} threads={t} {g} batch={b}: done")
    if ceiling and "fp32" in precisions and "encoder" in graphs:
        result.ceiling = _ceiling(manifest, folder, feeds, max(batches), duration)
    result.finish()
    return result


def _ceiling(manifest: Manifest, folder: Path, feeds: dict[str, np.ndarray], b: int,
             duration: float) -> dict[str, Any]:
    """The numpy matmul ceiling of the encoder's layers at batch ``b``, or why it was skipped."""
    try:  # the manifest's model record describes the layers; a malformed one skips the ceiling
        shapes = encoder_matmuls(manifest.model or {"input_shape": list(manifest.sample_shape),
                                                    "code_size": manifest.code_size}, b)
        floats = sum(m * k + k * n + m * n for m, k, n in shapes)
    except (KeyError, TypeError, ValueError) as exc:
        shapes, why = None, f"the manifest's model record does not describe the layers ({exc!r})"
    else:
        why = f"the layers need {floats * 4 / 2**30:.1f} GiB of matrices" if floats > 2**28 else None
    if why is not None:
        return {"batch": b, "error": f"ceiling skipped: {why}"}
    return {"batch": b, **measure_ceiling(shapes, min(max(duration, 0.2), 2.0), folder, _tile(feeds["edge"], b))}


def _check_run(manifest: Manifest, folder: Path, precisions: Sequence[str] | None, graphs: Sequence[str],
               batches: Sequence[int], threads: Sequence[int], providers: Sequence[str], duration: float,
               iterations: int | None, max_psnr_drop: float, torch_model: Any,
               rounds: int = ROUNDS, method: str = "blocks") -> tuple[list[str], list[str]]:
    """Every option of :func:`run_bench` checked before anything loads; (precisions, ORT providers)."""
    if duration <= 0 or (iterations is not None and iterations <= 0):
        raise ConfigError(f"--duration must be > 0 s and --iterations a positive integer, got {duration}, {iterations}")
    if rounds <= 0:
        raise ConfigError(f"--rounds must be a positive integer, got {rounds}")
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose from: {', '.join(METHODS)}")
    if max_psnr_drop < 0:
        raise ConfigError(f"--max-psnr-drop must be >= 0 dB, got {max_psnr_drop}")
    checked = check_options(manifest, folder, precisions, graphs, batches, threads, providers)
    if torch_model is not None and tuple(torch_model.sample_shape) != manifest.sample_shape:
        raise ConfigError(f"--torch run takes samples of shape {tuple(torch_model.sample_shape)}, bundle {folder} "
                          f"takes {manifest.sample_shape}: pass the run folder this bundle was exported from")
    return checked


def _settings(providers: list[str], threads: list[int], source: str, duration: float, iterations: int | None,
              warmup: int, peak: float, rounds: int) -> dict[str, Any]:
    """What was pinned and how it was measured, for the report (docs/performance.md)."""
    import onnxruntime as ort

    return {
        "onnxruntime": ort.__version__, "numpy": np.__version__, "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(), "platform": sys.platform, "machine": machine(), "providers": providers,
        "threads": threads,
        "graph_optimization_level": "ORT_ENABLE_ALL", "allow_spinning": "0", "inter_op_threads": 1,
        "execution_mode": "ORT_SEQUENTIAL", "inputs": source, "duration_s": duration, "iterations": iterations,
        "warmup": warmup, "rounds": rounds,
        "timing": f"interleaved blocks: {rounds} rounds, each a block of every variant (first variant rotating), "
                  "one untimed call starting each block, perf_counter_ns per call; ratios = median of the per-round "
                  "ratios of block medians, with their 95% interval (order statistics); self-check = median of the "
                  "block medians vs the median call of a timeit loop of the variant alone",
        "memory": "load_mb: current RSS (/proc/self/statm) growth across loading the variant; "
                  "peak_rss_mb: process ru_maxrss after the cell",
        "psnr": "held-out samples, reconstruct, model units" + ("" if peak == 1.0 else f", peak {peak:.3g}"),
    }


def _variants(result: BenchResult, folder: Path, manifest: Manifest, precisions: list[str], provider: str,
              threads: int, feeds: dict[str, Any], peak: float, bare: bool, torch_model: Any) -> list[_Variant]:
    """Load what one (provider, threads) pair times: each precision, then the baselines."""
    variants: list[_Variant] = []
    for p in precisions:
        try:
            variants.append(_edge_variant(folder, p, provider, threads, feeds["edge"], feeds["model"], peak))
        except Exception as exc:  # a variant this provider cannot run is a row, not a crash
            result.rows.append(Row(p, "all", provider, 0, threads, status=f"load failed: {exc}"))
    if bare:
        variants.append(_bare_variant(folder, manifest, provider, threads))
    if torch_model is not None and provider == "CPUExecutionProvider":
        quality = _psnr(feeds["model"], torch_model.calls["end-to-end"](feeds["model"]), peak)
        variants.append(_Variant("torch-eager", torch_model.calls, torch_model.load_ms, torch_model.load_mb,
                                 torch_model.sizes, quality, before=lambda n=threads: torch_model.set_threads(n)))
    return variants


def _cell(result: BenchResult, variants: list[_Variant], graph: str, batch: int, threads: int, provider: str,
          feeds: dict[str, Any], duration: float, iterations: int | None, warmup: int, rounds: int = ROUNDS,
          check: bool = True, method: str = "blocks") -> None:
    """Time every variant that has ``graph`` on the same tiled inputs, in interleaved blocks;
    then (``check``) each variant alone in a plain ``timeit`` loop, the self-check."""
    inputs = {"encoder": ("edge", "bare", "model"), "decoder": ("codes",) * 3, "end-to-end": ("edge", None, "model")}
    active, runners = [], []
    for v in variants:
        if graph not in v.calls:
            continue
        key = inputs[graph][0 if v.name not in ("ort-bare", "torch-eager") else (1 if v.name == "ort-bare" else 2)]
        x, fn = _tile(feeds[key], batch), v.calls[graph]
        active.append(v)
        runners.append((lambda f, a: lambda: f(a))(fn, x))
    for v in active:
        if v.before:
            v.before()
    if method == "calls":
        timed = _call_by_call(runners, rounds, duration, iterations, warmup)
    else:
        timed = blocks(runners, rounds=rounds, duration=duration, iterations=iterations, warmup=warmup)
    peak = round(peak_rss_mb(), 1)
    solo = _alone_rounds(runners, [len(ns) for ns in timed.calls]) if check else [None] * len(active)
    for i, v in enumerate(active):
        ns, means = timed.calls[i], timed.rounds[i]
        stats = percentiles(ns)
        block_ns = float(np.median(means))
        alone_ms = None if solo[i] is None else round(solo[i] / 1e6, 6)
        check_ratio = None if solo[i] is None else round(block_ns / solo[i], 4)
        result.rows.append(Row(
            variant=v.name, graph=graph, provider=provider, batch=batch, threads=threads,
            session_ms=round(v.load_ms, 2), p50_ms=stats["p50"], p90_ms=stats["p90"], p99_ms=stats["p99"],
            throughput=round(batch / (block_ns / 1e9), 1), calls=len(ns), load_mb=round(v.load_mb, 1),
            peak_rss_mb=peak, size=v.sizes.get(graph, 0), psnr=v.psnr,
            block_ms=round(block_ns / 1e6, 6), rounds_ms=[round(m / 1e6, 6) for m in means],
            timeit_ms=alone_ms, check=check_ratio))


def _alone_rounds(runners: list[Callable[[], Any]], calls: list[int]) -> list[float]:
    """The self-check: ns per call of each runner alone in plain ``timeit`` loops, the median of
    CHECK_ROUNDS loops (each the median call of its loop) taken round by round over the runners."""
    got: list[list[float]] = [[] for _ in runners]
    for _ in range(CHECK_ROUNDS):
        for i, run in enumerate(runners):
            got[i].append(alone(run, max(CHECK_MIN_CALLS, int(calls[i] * CHECK_SHARE / CHECK_ROUNDS))))
    return [float(np.median(g)) for g in got]


def _call_by_call(runners: list[Callable[[], Any]], rounds: int, duration: float, iterations: int | None,
                  warmup: int) -> BlockTimes:
    """The former method (A B A B ...), its calls cut into ``rounds`` consecutive parts for the ratios."""
    calls = interleave(runners, iterations, duration, warmup)
    n = len(calls[0])
    edges = [n * r // rounds for r in range(rounds + 1)]
    parts = [[ns[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a] for ns in calls]
    return BlockTimes(calls, [[float(np.median(p)) for p in ps] for ps in parts], [max(1, n // rounds)] * len(calls))
