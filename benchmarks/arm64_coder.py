"""The built-in range coder against constriction, on this machine (``python -m benchmarks.arm64_coder``).

    MNIST test set (10,000 images) -> the MNIST MLP bundle of benchmarks.arm64_matrix (code 16)
      -> fp32 codes -> .eae streams of 1, 64 and 10,000 samples
      -> compress and decompress with EDGEAE_CODER=constriction and =builtin, interleaved

The built-in coder (edgeae/runtime/rangecoder.py) is what Linux on ARM64 runs, since PyPI has
no constriction wheel there; it must write the same bytes (checked here on every stream) and
be fast enough for the CLI. Timings are measured here (x86_64), never under emulation.
Writes benchmarks/results/arm64_coder.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import numpy as np

from benchmarks import arm64_matrix as M

OUT = M.RESULTS / "arm64_coder"
CODERS = ("constriction", "builtin")


def _with(coder: str, fn, *args):
    """``fn(*args)`` with ``$EDGEAE_CODER`` set to ``coder`` (the runtime reads it per call)."""
    old = os.environ.get("EDGEAE_CODER")
    os.environ["EDGEAE_CODER"] = coder
    try:
        return fn(*args)
    finally:
        if old is None:
            del os.environ["EDGEAE_CODER"]
        else:
            os.environ["EDGEAE_CODER"] = old


def mnist_symbols(data: Path) -> tuple[object, bytes, np.ndarray]:
    """(codec, model id, symbols (10000, D)) of the MNIST test set through the MLP bundle's encoder."""
    from edgeae.codegen.codec import bundle_codecs
    from edgeae.data import load_dataset
    from edgeae.runtime import load

    b = M.bundle("mnist-mlp", data)
    codec, mid = bundle_codecs(b)[0]
    codes = load(b, "fp32").encode(load_dataset(data).x)
    return codec, mid, codec.quantize(codes)


def measure(codec, mid: bytes, q: np.ndarray, sizes: tuple[int, ...], duration: float) -> list[dict]:
    """Per stream size: p50 per call and samples/s of each coder, compress and decompress."""
    from edgeae.bench.timing import interleave
    from edgeae.runtime import stream as S

    rows = []
    for n in sizes:
        part = q[:n]
        streams = {c: _with(c, S.compress_codes, codec, mid, part) for c in CODERS}
        back = {c: _with(c, S.decompress_symbols, codec, mid, streams["constriction"]) for c in CODERS}
        row = {"samples": n, "symbols": int(part.size), "stream_bytes": len(streams["constriction"]),
               "same_bytes": streams["builtin"] == streams["constriction"],
               "same_symbols": all(np.array_equal(v, part) for v in back.values())}
        for op, fn, arg in (("compress", S.compress_codes, part),
                            ("decompress", S.decompress_symbols, streams["constriction"])):
            runs = [lambda c=c, fn=fn, arg=arg: _with(c, fn, codec, mid, arg) for c in CODERS]
            ns = interleave(runs, duration=duration, warmup=1)
            for c, t in zip(CODERS, ns, strict=True):
                p50 = statistics.median(t) / 1e9
                row[f"{op}_{c}_ms"] = p50 * 1e3
                row[f"{op}_{c}_samples_per_s"] = n / p50
            row[f"{op}_slowdown"] = row[f"{op}_builtin_ms"] / row[f"{op}_constriction_ms"]
        rows.append(row)
    return rows


def markdown(out: dict) -> str:
    m = out["machine"]
    lines = ["# The built-in range coder vs constriction (x86_64, measured here)", "",
             f"Machine: {m.get('cpu', '?')} ({', '.join(m.get('isa', []))}); {m.get('cores', '?')} cores; constriction {out['constriction']}, "
             f"numpy {out['numpy']}, Python {out['python']}. Data: MNIST test set through the MNIST MLP "
             f"bundle (code size {out['code_size']}, {out['bits']} bits). p50 of interleaved calls, one thread; "
             f"load average at the start {out.get('load', '?')} (a shared machine: the ratios hold, "
             "the rates drift).", "",
             "| samples | stream bytes | same bytes | compress: constriction / built-in (samples/s) | time built-in / constriction "
             "| decompress: constriction / built-in (samples/s) | time built-in / constriction |",
             "|---:|---:|:---:|---:|---:|---:|---:|"]
    for r in out["rows"]:
        lines.append(f"| {r['samples']} | {r['stream_bytes']} | {'yes' if r['same_bytes'] and r['same_symbols'] else 'NO'} "
                     f"| {r['compress_constriction_samples_per_s']:,.0f} / {r['compress_builtin_samples_per_s']:,.0f} "
                     f"| {r['compress_slowdown']:.1f}x "
                     f"| {r['decompress_constriction_samples_per_s']:,.0f} / {r['decompress_builtin_samples_per_s']:,.0f} "
                     f"| {r['decompress_slowdown']:.1f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.arm64_coder", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=M.MNIST, help="MNIST folder (IDX files)")
    ap.add_argument("--duration", type=float, default=2.0, help="seconds per size and operation")
    args = ap.parse_args(argv)
    import platform
    from importlib.metadata import version

    from edgeae.bench.timing import machine

    codec, mid, q = mnist_symbols(args.data)
    out = {"machine": machine(), "constriction": version("constriction"), "numpy": np.__version__,
           "python": platform.python_version(), "load": [round(v, 1) for v in os.getloadavg()], "code_size": codec.code_size, "bits": codec.bits,
           "rows": measure(codec, mid, q, (1, 64, len(q)), args.duration)}
    M.RESULTS.mkdir(exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    OUT.with_suffix(".md").write_text(markdown(out))
    print(markdown(out))


if __name__ == "__main__":
    main()
