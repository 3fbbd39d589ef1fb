"""The main job on the built-in digits, end to end (``make demo`` / ``python -m edgeae.demo``).

train (PyTorch) -> export fp32 + int8 bundle -> encode / reconstruct held-out digits with the
torch-free runtime -> compress them to a latent bitstream, next to PNG / WebP / JPEG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgeae.errors import ConfigError, EdgeAEError

__all__ = ["run_demo"]

_DEMO_ENTRIES = {"run", "bundle"}  # what run_demo writes into its folder


def _say(msg: str = "") -> None:
    print(msg, flush=True)


def run_demo(out: str | Path = "demo", data: str = "digits", epochs: int = 50) -> dict:
    """Run the whole path and return the measured numbers (also printed)."""
    from edgeae.bench.imagecodecs import measure, psnr_uint8
    from edgeae.export import export
    from edgeae.runtime import load, psnr
    from edgeae.runtime.compress import compress, decompress
    from edgeae.train import train

    out = Path(out)
    if out.exists():
        # Replace an earlier demo's output, never anything else the folder might hold.
        extra = sorted(p.name for p in out.iterdir() if p.name not in _DEMO_ENTRIES)
        if extra:
            raise ConfigError(f"{out} holds files that are not an earlier demo's ({', '.join(extra[:5])}); "
                              "choose another --out")
    run_dir, bundle_dir = out / "run", out / "bundle"  # each replaced in one step when its new one is whole

    _say(f"1. train: MLP autoencoder on {data} -> {run_dir}")
    result = train(data, "mlp", out=run_dir, epochs=epochs, log=lambda m: None, overwrite=True)
    m = result.metrics
    _say(f"   {m['epochs_run']} epochs in {m['seconds']:.1f} s, validation PSNR {m['val_psnr']:.2f} dB")
    _say(f"   files: {', '.join(sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(('last', 'optim', 'state'))))}")

    _say(f"\n2. export: split encoder/decoder ONNX graphs, fp32 + int8 -> {bundle_dir}")
    exported = export(run_dir, bundle_dir, precisions=("fp32", "int8"), overwrite=True)
    _say("   " + exported.table().replace("\n", "\n   "))

    _say("\n3. runtime (numpy + onnxruntime only): held-out digits")
    samples = np.load(bundle_dir / "samples.npy")  # raw uint8 held-out digits (N, 1, 8, 8)
    numbers: dict = {"val_psnr": m["val_psnr"]}
    for precision in exported.validation:
        model = load(bundle_dir, precision=precision)
        codes = model.encode(samples)
        x_hat = model.decode(codes)  # model units, like to_model_units below
        value = psnr(model.to_model_units(samples), x_hat)
        numbers[f"psnr_{precision}"] = value
        _say(f"   {precision:13s} encode {samples.shape} -> codes {codes.shape}; reconstruction PSNR {value:.2f} dB")

    _say("\n4. compress held-out digits to a latent bitstream (bytes per image incl. all framing)")
    model = load(bundle_dir)
    rows = []
    for bits in (4, 6, 8):
        stream = compress(model, samples, bits=bits)
        back = decompress(model, stream)
        rows.append((f"edgeae {bits}-bit", len(stream) / len(samples), psnr_uint8(samples, back)))
    for codec, quality in (("png", None), ("webp-lossless", None), ("webp", 50), ("jpeg", 50), ("jpeg", 10)):
        point = measure(samples, codec, quality)
        rows.append((point.label, point.bytes_per_image, point.psnr))
    _say(f"   {'codec':18s} {'bytes/image':>11s} {'PSNR dB':>8s}")
    for name, nbytes, quality in rows:
        shown = f"{quality:8.2f}" if quality != float("inf") else "lossless"
        _say(f"   {name:18s} {nbytes:11.1f} {shown:>8s}")
    numbers["compression"] = [{"codec": r[0], "bytes_per_image": r[1], "psnr": r[2]} for r in rows]
    _say(f"\nNext: edgeae info {bundle_dir}   edgeae bench {bundle_dir}   "
         f"edgeae compress {bundle_dir} INPUT -o data.eae")
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo", help="folder for the run, bundle and outputs")
    parser.add_argument("--data", default="digits", help="data source (default: built-in digits)")
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    try:
        run_demo(args.out, args.data, args.epochs)
    except EdgeAEError as exc:
        raise SystemExit(f"Error: {exc}") from None


if __name__ == "__main__":
    main()
