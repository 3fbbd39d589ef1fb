"""CUDA check: the same training job on the GPU and on the CPU, side by side, then export
and the runtime's provider selection. Needs a CUDA build of PyTorch and a GPU.

    python -m benchmarks.cuda_check --data PATH/TO/mnist --epochs 5 --out results/cuda.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    import numpy as np
    import torch

    import edgeae.runtime as rt
    from edgeae.errors import ProviderError
    from edgeae.export import export
    from edgeae.train import train

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="digits")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--work", default="benchmarks/work/cuda")
    p.add_argument("--out", default="benchmarks/results/cuda.json")
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible to PyTorch: run this on a machine with one")
    work = Path(args.work)
    report: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cpu_threads": torch.get_num_threads()}
    runs = {}
    # CUDA context creation and kernel selection happen once per process: keep them out.
    train(args.data, "conv", out=work / "warmup", code_size=32, channels=(32, 64), epochs=1, split="ordered",
          device="cuda", overwrite=True)
    for device in ("cuda", "cpu", "auto"):
        epochs = args.epochs if device != "auto" else 1
        t0 = time.perf_counter()
        result = train(args.data, "conv", out=work / f"conv-{device}", code_size=32, channels=(32, 64), epochs=epochs,
                       split="ordered", device=device, overwrite=True)
        runs[device] = result
        seconds = result.metrics["seconds"]  # the training loop alone (no data loading or pictures)
        report[f"train_{device}"] = {"seconds": round(time.perf_counter() - t0, 2), "epochs": result.metrics["epochs_run"],
                                     "seconds_per_epoch": round(seconds / result.metrics["epochs_run"], 3),
                                     "val_psnr": round(result.metrics["val_psnr"], 3),
                                     "device_used": result.metrics["device"]}
    report["cuda_speedup_per_epoch"] = round(report["train_cpu"]["seconds_per_epoch"]
                                             / report["train_cuda"]["seconds_per_epoch"], 2)
    t0 = time.perf_counter()
    exported = export(runs["cuda"].run_dir, work / "bundle", precisions="fp32,int8-dynamic", overwrite=True,
                      latency_repeats=5)
    report["export"] = {"seconds": round(time.perf_counter() - t0, 2),
                        "fp32_max_abs_error": max(exported.validation["fp32"]["max_abs_error"].values()),
                        "psnr": {k: v["psnr"] for k, v in exported.validation.items()}}
    report["ort_providers_available"] = rt.available_providers()
    model = rt.load(work / "bundle", providers="auto")
    report["auto_provider_used"] = model.providers[0]
    samples = np.load(work / "bundle" / "samples.npy")
    report["runtime_psnr_auto"] = round(rt.psnr(model.to_model_units(samples), model.reconstruct(samples)), 3)
    try:
        cuda_model = rt.load(work / "bundle", providers="cuda")
        report["cuda_provider"] = cuda_model.providers[0]
        report["runtime_psnr_cuda"] = round(
            rt.psnr(cuda_model.to_model_units(samples), cuda_model.reconstruct(samples)), 3)
    except ProviderError as exc:
        report["cuda_provider_error"] = str(exc)
    text = json.dumps(report, indent=2)
    print(text)
    os.makedirs(Path(args.out).parent, exist_ok=True)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
