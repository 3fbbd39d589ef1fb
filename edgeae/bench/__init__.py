"""Benchmark tooling, torch-free: what measures bundles, never what runs them on a device.

- :mod:`edgeae.bench.timing`: the interleaved timing loop and memory probes
- :mod:`edgeae.bench.harness`: ``edgeae bench`` (precisions x providers x threads x batches)
- :mod:`edgeae.bench.ceiling`: the one-thread numpy matmul ceiling (``python -m``, own process)
- :mod:`edgeae.bench.report`: rows, targets, recommendation, tables and plots (matplotlib)
- :mod:`edgeae.bench.torch_baseline`: PyTorch eager on the same weights (needs the train extra)
- :mod:`edgeae.bench.imagecodecs`: PNG / WebP / JPEG rate-distortion baselines (Pillow)

Nothing is imported here, so ``python -m edgeae.bench.ceiling`` loads only what it needs.
"""
