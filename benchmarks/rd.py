"""Rate-distortion benchmark: latent streams vs PNG / WebP / JPEG on held-out MNIST.

    MNIST first 9,000 -> train (cached in benchmarks/work/rd/<name>) -> codes of the 9,000
      -> LatentCodec.fit(bits) per bit depth
    MNIST last 1,000 -> encoder -> compress_codes -> ONE .eae stream (header + CRCs included)
      -> decompress_codes -> decoder -> uint8 pixels -> PSNR ([0, 1] scale)
    rate = len(stream) / 1000 images; baselines code each image as its own file

Usage: ``python -m benchmarks.rd [--data ../shared/data/mnist] [--only NAME,...] [--retrain]``.
Writes benchmarks/results/rd.json, rd.md and rd.png.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeae.bench.imagecodecs import psnr_uint8
from edgeae.runtime.metrics import psnr, psnr_from_mse

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work" / "rd"
RESULTS = HERE / "results"
MNIST = ROOT.parent / "shared" / "data" / "mnist"
# (name, PSNR dB floor, bytes per image ceiling): what the latent codec must reach.
TARGETS = (("low-rate (must)", 20.0, 32.0), ("low-rate (goal)", 20.0, 24.0), ("high-rate", 28.0, 66.0))

# name -> (train() keyword arguments, bit depths to sweep). Data, split and out are filled in.
# Models trained with latent_bits use codec value_range (0, 1) at that bit depth.
CONFIGS: dict[str, tuple[dict, tuple[int, ...]]] = {
    "conv-c32": ({"model": "conv", "code_size": 32, "epochs": 10}, (3, 4, 5, 6, 8)),
    "conv-c64": ({"model": "conv", "code_size": 64, "epochs": 15}, (3, 4, 5, 6, 8)),
    "conv-c128": ({"model": "conv", "code_size": 128, "epochs": 15}, (2, 3, 4, 5, 6)),
    "conv-c64-wide": ({"model": "conv", "code_size": 64, "channels": "32,64", "epochs": 25},
                      (3, 4, 5, 6, 8)),
    # Long runs (150 epochs of wide convs with shift augmentation): minutes on a GPU, an hour
    # or more on 2 CPU cores; only with --only NAME (results: benchmarks/results/rd-augmented.md).
    "conv-c64-aug": ({"model": "conv", "code_size": 64, "channels": "32,64", "augment_shift": 2, "epochs": 150,
                      "patience": 25}, (3, 4, 5, 6, 8)),
    "conv-c96-aug": ({"model": "conv", "code_size": 96, "channels": "64,128", "augment_shift": 2, "epochs": 150,
                      "patience": 25}, (3, 4, 5, 6, 8)),
    "conv-c128-aug": ({"model": "conv", "code_size": 128, "channels": "64,128", "augment_shift": 2, "epochs": 150,
                       "patience": 25}, (3, 4, 5, 6, 8)),
}
LONG = {"conv-c64-aug", "conv-c96-aug", "conv-c128-aug"}


@dataclass
class RDPoint:
    """One latent operating point: a model at one bit depth, measured on held-out samples."""

    name: str  # configuration name (CONFIGS key)
    code_size: int  # D
    bits: int  # quantization bits per dimension before entropy coding
    samples: int  # held-out samples in the stream
    stream_bytes: int  # whole .eae stream, header and CRCs included
    bytes_per_image: float  # stream_bytes / samples
    entropy_bytes: float  # the tables' cross-entropy per sample / 8 (no framing)
    psnr: float  # dB, uint8 reconstruction vs uint8 original, [0, 1] scale
    psnr_float: float  # dB before the codec (unquantized codes, float output)


def split_mnist(data: str | Path, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Raw uint8 (train, held-out) images of the ordered split the models train on."""
    from edgeae.data import load_dataset, split_indices

    ds = load_dataset(str(data))
    tr, va = split_indices(len(ds.x), val_fraction, 0, ordered=True)
    return ds.x[tr], ds.x[va]


def _codes(model, normalizer, raw: np.ndarray, batch: int = 1000) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(raw), batch):
            x = torch.from_numpy(np.ascontiguousarray(normalizer.normalize(raw[i : i + batch])))
            out.append(model.encode(x).numpy())
    return np.concatenate(out).astype(np.float32)  # (N, D)


def _decode(model, normalizer, codes: np.ndarray) -> np.ndarray:
    """codes (N, D) -> uint8 images (N, *shape), as a raw-io decoder on a device returns."""
    import torch

    with torch.no_grad():
        x_hat = model.decoder(torch.from_numpy(codes)).numpy()
    return normalizer.denormalize(x_hat)  # uint8 data: rounded and clipped there


def measure_model(name: str, run_dir: Path, x_train: np.ndarray, x_test: np.ndarray,
                  bits_list: tuple[int, ...]) -> list[RDPoint]:
    """Every bit depth of one trained model through the real stream format."""
    from edgeae.checkpoint import load_run
    from edgeae.runtime.codec import LatentCodec
    from edgeae.runtime.preprocess import Normalizer
    from edgeae.runtime.stream import compress_codes, decompress_codes

    cfg, model = load_run(run_dir)
    norm = Normalizer(asdict(cfg.normalization), tuple(x_test.shape[1:]))
    train_codes, test_codes = _codes(model, norm, x_train), _codes(model, norm, x_test)
    x_float = model.decoder(__import__("torch").from_numpy(test_codes)).detach().numpy()
    psnr_float = psnr(x_float, norm.normalize(x_test))
    qat = cfg.train.latent_bits
    weights_sha = hashlib.sha256((run_dir / "weights.safetensors").read_bytes()).hexdigest()
    points = []
    for bits in bits_list:
        if qat and bits != qat:
            continue  # a QAT model decodes its own grid only
        codec = LatentCodec.fit(train_codes, bits, value_range=(0.0, 1.0) if qat else None)
        model_id = codec.model_id(weights_sha)
        stream = compress_codes(codec, model_id, test_codes)
        back = decompress_codes(codec, model_id, stream)
        x_hat = _decode(model, norm, back)
        points.append(RDPoint(
            name=name, code_size=cfg.model.code_size, bits=bits, samples=len(x_test),
            stream_bytes=len(stream), bytes_per_image=len(stream) / len(x_test),
            entropy_bytes=codec.expected_bits_per_sample(test_codes) / 8,
            psnr=psnr_uint8(x_test, x_hat), psnr_float=psnr_float,
        ))
    return points


def export_run(run_dir: Path, bundle: Path, bits_list: tuple[int, ...], retrain: bool, log) -> Path:
    """Export a run once (fp32, codec tables for ``bits_list``); later calls reuse ``bundle``."""
    from edgeae.export import export

    if retrain or not (bundle / "manifest.json").is_file():
        t0 = time.time()
        export(run_dir, bundle, precisions=("fp32",), codec_bits=tuple(bits_list), overwrite=True,
               latency_repeats=3)
        log(f"{run_dir.name}: exported in {time.time() - t0:.0f} s")
    return bundle


def measure_bundle(name: str, bundle: Path, x_test: np.ndarray) -> list[RDPoint]:
    """Every codec table of an exported bundle, through the torch-free runtime end to end.

    ``edgeae.runtime.compress`` (ONNX encoder -> codec -> stream) and ``decompress``
    (stream -> ONNX decoder -> raw pixels): exactly what a device runs.
    """
    from edgeae.runtime import model as rt_model
    from edgeae.runtime.compress import codecs_of, compress, decompress

    model = rt_model.load(bundle, threads=0)
    code_size = int(model.manifest.to_dict()["code_size"])
    x_float = model.reconstruct(x_test)  # (N, *shape) model units, unquantized codes
    psnr_float = psnr(x_float, model.to_model_units(x_test))
    points = []
    for codec, _ in codecs_of(model.manifest):
        stream = compress(model, x_test, codec.bits)
        x_hat = decompress(model, stream)  # raw uint8, as a receiver gets it
        points.append(RDPoint(
            name=name, code_size=code_size, bits=codec.bits, samples=len(x_test),
            stream_bytes=len(stream), bytes_per_image=len(stream) / len(x_test),
            entropy_bytes=codec.expected_bits_per_sample(model.encode(x_test)) / 8,
            psnr=psnr_uint8(x_test, x_hat.reshape(x_test.shape)),
            psnr_float=psnr_float,
        ))
    return sorted(points, key=lambda p: p.bits)


def pca_points(x_train: np.ndarray, x_test: np.ndarray, comps: int = 64,
               bits_list: tuple[int, ...] = (4, 6)) -> list[RDPoint]:
    """PCA + the same codec and stream: the linear baseline every autoencoder must beat."""
    from edgeae.runtime.codec import LatentCodec
    from edgeae.runtime.stream import compress_codes, decompress_codes

    a = x_train.reshape(len(x_train), -1).astype(np.float64) / 255.0
    mean = a.mean(axis=0)
    _, _, vt = np.linalg.svd(a - mean, full_matrices=False)
    basis = vt[:comps]  # (K, P)
    b = x_test.reshape(len(x_test), -1).astype(np.float64) / 255.0
    tr, te = (a - mean) @ basis.T, (b - mean) @ basis.T
    points = []
    for bits in bits_list:
        codec = LatentCodec.fit(tr, bits)
        mid = codec.model_id(hashlib.sha256(basis.tobytes()).hexdigest())
        stream = compress_codes(codec, mid, te)
        rec = decompress_codes(codec, mid, stream).astype(np.float64) @ basis + mean
        x_hat = np.clip(np.rint(rec * 255), 0, 255).astype(np.uint8).reshape(x_test.shape)
        flt = float(np.mean((te @ basis + mean - b) ** 2))
        points.append(RDPoint(f"pca-{comps}", comps, bits, len(x_test), len(stream),
                              len(stream) / len(x_test), codec.expected_bits_per_sample(te) / 8,
                              psnr_uint8(x_test, x_hat), psnr_from_mse(flt)))
    return points


def prepare(name: str, data: Path, retrain: bool, log) -> Path:
    """Train a configuration once; later runs reuse benchmarks/work/rd/<name>."""
    from edgeae.train import train

    run_dir = WORK / name
    if retrain or not (run_dir / "weights.safetensors").is_file():
        t0 = time.time()
        r = train(data=str(data), split="ordered", out=run_dir, overwrite=True, **CONFIGS[name][0])
        log(f"{name}: trained in {time.time() - t0:.0f} s, validation PSNR {r.metrics['val_psnr']:.2f} dB")
    return run_dir


def train_command(name: str) -> str:
    """The `edgeae train` command line that reproduces a configuration."""
    flags = ["edgeae train --data ../shared/data/mnist --split ordered"]
    for key, value in CONFIGS[name][0].items():
        flags.append(f"--{key.replace('_', '-')} {value}")
    return " ".join(flags) + f" --out runs/{name}"


def meets(points: list[RDPoint], psnr_min: float, bytes_max: float) -> list[RDPoint]:
    """Points at or above ``psnr_min`` dB and at or below ``bytes_max`` bytes, cheapest first."""
    ok = [p for p in points if p.psnr >= psnr_min and p.bytes_per_image <= bytes_max]
    return sorted(ok, key=lambda p: p.bytes_per_image)


def markdown(points: list[RDPoint], baselines: list, n_test: int,
             commands: dict[str, str] | None = None) -> str:
    """The table for benchmarks/results/rd.md and RESULTS.md."""
    lines = [
        "## Rate-distortion: latent streams vs classical codecs (MNIST held-out)",
        "",
        f"Last {n_test} MNIST test images; models trained on the first 9,000 (`--split ordered`). "
        "Latent rate = whole `.eae` stream (header, framing, CRC-32) / images; "
        "PSNR on the [0, 1] scale of the uint8 reconstruction. "
        "Baselines code each image as its own file (Pillow). Reproduce: `python -m benchmarks.rd`.",
        "",
        "![rate-distortion](rd.png)",
        "",
        "| method | code | bits | bytes/image | entropy bytes | PSNR dB | PSNR unquantized |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in sorted(points, key=lambda p: (p.name, p.bits)):
        lines.append(f"| {p.name} | {p.code_size} | {p.bits} | {p.bytes_per_image:.1f} | "
                     f"{p.entropy_bytes:.1f} | {p.psnr:.2f} | {p.psnr_float:.2f} |")
    lines += ["", "| baseline | bytes/image | PSNR dB |", "|---|---:|---:|"]
    for b in baselines:
        ps = "lossless" if not math.isfinite(b.psnr) else f"{b.psnr:.2f}"
        lines.append(f"| {b.label} | {b.bytes_per_image:.1f} | {ps} |")
    lines += ["", "| target | met by (cheapest) | bytes/image | PSNR dB |", "|---|---|---:|---:|"]
    for label, lo, hi in TARGETS:
        ok = meets([p for p in points if not p.name.startswith("pca")], lo, hi)
        if ok:
            p = ok[0]
            lines.append(f"| {label}: >= {lo:g} dB at <= {hi:g} B | {p.name} @ {p.bits} bits | "
                         f"{p.bytes_per_image:.1f} | {p.psnr:.2f} |")
        else:
            lines.append(f"| {label}: >= {lo:g} dB at <= {hi:g} B | not met | | |")
    if commands:
        lines += ["", "Reproduce one model (then `edgeae compress` / `decompress` with the bundle):", ""]
        for name, cmd in commands.items():
            bits = ",".join(map(str, CONFIGS[name][1])) if name in CONFIGS else "auto"
            lines.append(f"- {name}: `{cmd}` then `edgeae export runs/{name} -o bundles/{name} "
                         f"--codec-bits {bits}`")
    return "\n".join(lines) + "\n"


def plot(points: list[RDPoint], baselines: list, path: Path) -> None:
    """Bytes per image (log) vs PSNR: one line per latent model, one per classical codec."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in sorted({p.name for p in points}):
        ps = sorted((p for p in points if p.name == name), key=lambda p: p.bytes_per_image)
        ax.plot([p.bytes_per_image for p in ps], [p.psnr for p in ps], "o-", label=name)
    for codec in ("webp", "jpeg"):
        bs = sorted((b for b in baselines if b.codec == codec), key=lambda b: b.bytes_per_image)
        ax.plot([b.bytes_per_image for b in bs], [b.psnr for b in bs], "s--", label=codec, alpha=0.7)
    for _, lo, hi in TARGETS:
        ax.plot([hi], [lo], "k*", markersize=10)
    ax.set_xscale("log")
    ax.set_xlabel("bytes per image (log)")
    ax.set_ylabel("PSNR dB ([0, 1] scale)")
    ax.set_title("MNIST held-out: rate vs distortion (stars: targets)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(MNIST), help="MNIST folder (IDX files)")
    ap.add_argument("--only", default=None, help="comma-separated configuration names")
    ap.add_argument("--retrain", action="store_true", help="train again instead of reusing runs")
    ap.add_argument("--out", default=str(RESULTS), help="results folder")
    ap.add_argument("--torch", action="store_true",
                    help="decode with the PyTorch model instead of an exported bundle")
    args = ap.parse_args(argv)
    from edgeae.bench.imagecodecs import sweep

    names = args.only.split(",") if args.only else [n for n in CONFIGS if n not in LONG]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)}")
    x_train, x_test = split_mnist(args.data)
    points = pca_points(x_train, x_test)
    for name in names:
        run_dir = prepare(name, Path(args.data), args.retrain, print)
        bits = CONFIGS[name][1]
        if args.torch:
            points += measure_model(name, run_dir, x_train, x_test, bits)
        else:
            bundle = export_run(run_dir, WORK / f"{name}-bundle", bits, args.retrain, print)
            points += measure_bundle(name, bundle, x_test)
    baselines = sweep(x_test)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    commands = {n: train_command(n) for n in names}
    # The default set writes rd.*; --only never replaces it: the long runs go to rd-augmented.*,
    # any other subset to rd-<names>.*.
    stem = "rd" if not args.only else ("rd-augmented" if set(names) <= LONG else "rd-" + "-".join(names))
    md = markdown(points, baselines, len(x_test), commands)
    (out / f"{stem}.md").write_text(md)
    record = {"points": [asdict(p) for p in points], "baselines": [b.to_dict() for b in baselines],
              "commands": commands, "targets": TARGETS}
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    extra = out / "rd-augmented.json"  # the long runs, drawn in the main plot as well
    if stem == "rd" and extra.is_file():
        points = points + [RDPoint(**p) for p in json.loads(extra.read_text())["points"] if p["name"] not in names]
    plot(points, baselines, out / f"{stem}.png")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
