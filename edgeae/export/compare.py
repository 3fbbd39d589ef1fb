"""Every exported graph against PyTorch and ``onnx.reference``, output element by output element.

``pipeline`` writes the graphs; this module runs them on real held-out samples at every
batch size of :data:`edgeae.export.validate.BATCHES` and records each comparison in a
:class:`edgeae.export.validate.Checks`, held to the bound the graph's numerics allow
(:func:`edgeae.numerics.deviation_bounds`, docs/export.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeae.export.package import graph_file
from edgeae.export.quantize import INT8_FORMATS
from edgeae.export.validate import BATCHES, Checks, reference_check, run, session, take_batch

__all__ = ["TorchReference", "compare_with_torch"]

_MODE = {"fp32": "float", "fp16": "fp16"}  # precision -> deviation mode vs PyTorch (int8: "quantized")


class TorchReference:
    """PyTorch reference outputs (fp32, no grad)."""

    def __init__(self, enc: nn.Module, dec: nn.Module, variational: bool):
        self.enc, self.dec, self.variational = enc.eval(), dec.eval(), variational

    @torch.no_grad()
    def encode(self, x: np.ndarray) -> dict[str, np.ndarray]:
        out = self.enc(torch.from_numpy(np.ascontiguousarray(x)))
        if self.variational:
            return {"code": out[0].numpy(), "mean": out[0].numpy(), "log_var": out[1].numpy()}
        return {"code": out.numpy()}

    @torch.no_grad()
    def decode(self, code: np.ndarray) -> np.ndarray:
        return self.dec(torch.from_numpy(np.ascontiguousarray(code))).numpy()


def compare_with_torch(folder: Path, p: str, raw: bool, ref: TorchReference, x: np.ndarray, checks: Checks,
                       atol: float) -> None:
    """encoder, decoder and decode(encode(x)) vs PyTorch at every batch size, plus onnx.reference.

    Each output element is held to its own bound (:meth:`Checks.bounds`, computed once per
    graph, batch and mode): fp32 the rounding of two float evaluations, fp16 that plus
    float16 weights and activations, int8 the graph's own quantization error measured at
    every quantizer. The end-to-end bound starts from the codes' measured deviation.
    onnx.reference runs fp32 graphs against PyTorch (batch 7), fp16 graphs against ONNX
    Runtime unoptimized (batch 7) and int8 graphs against ONNX Runtime as the runtime runs
    them (every batch: the kernels it picks for *this* CPU must compute the graph's exact
    integer semantics, one step per tie).
    """
    enc_file, dec_file = graph_file("encoder", p, raw), graph_file("decoder", p, raw)
    enc_path, dec_path = folder / enc_file, folder / dec_file
    mode = _MODE.get(p, "quantized")
    enc, dec = session(enc_path), session(dec_path)
    for b in BATCHES:
        xb = take_batch(x, b)
        want = ref.encode(xb)
        got = run(enc, xb)
        eb = checks.bounds(enc_path, xb, mode).bounds
        for name, value in want.items():
            checks.add_bounded(enc_file, name, b, got.get(name, np.empty(0)), value, eb.get(name, 0.0), mode,
                               atol=atol)
        x_hat = ref.decode(want["code"])
        code = want["code"].astype(np.float32)
        dec_got = run(dec, code)
        db = checks.bounds(dec_path, code, mode).bounds["x_hat"]
        checks.add_bounded(dec_file, "x_hat", b, dec_got["x_hat"], x_hat, db, mode, atol=atol)
        e2e = run(dec, got["code"])["x_hat"]
        moved = np.abs(got["code"].astype(np.float64) - want["code"]) if got["code"].shape == code.shape else None
        if moved is not None and np.isfinite(moved).all():  # centred on the codes ONNX Runtime decoded
            db = checks.bounds(dec_path, got["code"], mode, d_in=moved).bounds["x_hat"]
        checks.add_bounded(f"{enc_file}+{dec_file}", "end_to_end", b, e2e, x_hat, db, mode, atol=atol)
        if p in INT8_FORMATS:
            reference_check(enc_path, xb, got, checks, b, against="onnxruntime", atol=atol)
            reference_check(dec_path, code, dec_got, checks, b, against="onnxruntime", atol=atol)
        elif b == 7 and not raw:
            as_torch = p == "fp32"
            reference_check(enc_path, xb, want if as_torch else None, checks, b, p == "fp16", atol=atol)
            reference_check(dec_path, code, {"x_hat": x_hat} if as_torch else None, checks, b, p == "fp16",
                            atol=atol)
