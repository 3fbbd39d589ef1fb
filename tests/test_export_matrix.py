"""The export matrix (model kinds x precisions) against PyTorch fp32, and the MNIST figures (slow).

Every graph of every precision runs on the bundle's held-out samples and is compared with the
PyTorch fp32 model here, with a tolerance per precision; the PSNR is computed here from the
outputs. Nothing is taken from the exporter's own report (which only has to agree with it),
so an export that checks itself wrongly still fails these tests.

Tolerances (measured on the 1-epoch digits models of conftest.py, then given headroom):

- fp32: 2e-6 plus 4 float32 ulps of the output's largest value (measured <= 1.5e-6; the
  exporter's own gate derives a bound per element, docs/export.md);
- fp16: 1e-2 absolute on codes and pixels (measured <= 8.3e-4), PSNR drop <= 0.05 dB;
- int8: every output within 6 steps of 1/255 of that output's held-out range (measured
  <= 4.7 steps, the VAE's log_var with int8-static), PSNR drop <= 0.5 dB (measured <= 0.01); every MatMul / Gemm / Conv reads
  8-bit weights; int8-static also equals its integer reference (the same graph run by ONNX
  Runtime with graph optimizations off) within one step of its output quantizer.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from edgeae.checkpoint import load_run
from edgeae.export import export
from edgeae.runtime.bundle import read_manifest, verify_bundle
from edgeae.runtime.preprocess import Normalizer
from tests._quant import check_quantized_weights, output_step, outputs, psnr, session
from tests.conftest import MNIST

KINDS = ["mlp", "conv", "vae", "denoising"]
PRECISIONS = ["fp32", "fp16", "int8-dynamic", "int8-static"]
BATCHES = (1, 7, 64)
FP32_ATOL = 2e-6
FP16_ATOL = 1e-2
FP16_MAX_DROP = 0.05  # dB
INT8_STEPS = 6.0  # output steps of range/255
INT8_MAX_DROP = 0.5  # dB


@pytest.fixture(scope="module")
def bundles(trained_run, tmp_path_factory):
    """One bundle per kind holding every precision (exported once, checked per precision)."""
    cache = {}

    def make(kind):
        if kind not in cache:
            out = tmp_path_factory.mktemp("matrix") / kind
            export(trained_run(kind), out, precisions=PRECISIONS, max_psnr_drop=3.0, latency_repeats=1,
                   codec_bits="none", calibration_samples=128)
            cache[kind] = out
        return cache[kind]

    return make


def _batch(x, n):
    return np.ascontiguousarray(np.concatenate([x] * (n // len(x) + 1))[:n])


def _torch(model, x, variational):
    with torch.no_grad():
        out = model.encoder(torch.from_numpy(x))
        mean, log_var = out if variational else (out, None)
        want = {"code": mean.numpy()}
        if variational:
            want.update(mean=mean.numpy(), log_var=log_var.numpy())
        return want, model.decoder(mean).numpy()


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_graph_matches_pytorch_fp32(kind, precision, bundles, trained_run):
    bundle = bundles(kind)
    assert verify_bundle(bundle) == []
    m = read_manifest(bundle)
    _, model = load_run(trained_run(kind))
    model.eval()
    x = Normalizer(m.normalization, m.sample_shape).normalize(np.load(bundle / "samples.npy"))
    enc_path, dec_path = (bundle / m.find_graph(role, precision).file for role in ("encoder", "decoder"))
    enc, dec = session(enc_path), session(dec_path)
    assert [o.name for o in enc.get_outputs()] == (["code", "mean", "log_var"] if m.variational else ["code"])
    want_all, x_hat_all = _torch(model, x, m.variational)
    # one 8-bit step of each output's held-out range; the VAE's outputs share the widest one
    # (log_var's range is narrow, but it reads the same quantized hidden layer as the code)
    enc_step = max(float(v.max() - v.min()) for v in want_all.values()) / 255
    steps = {**dict.fromkeys(want_all, enc_step), "x_hat": float(x_hat_all.max() - x_hat_all.min()) / 255}
    if precision.startswith("int8"):
        for graph in (enc_path, dec_path):
            check_quantized_weights(graph, precision)
    if precision == "int8-static":
        exact = {k: output_step(enc_path, k) for k in want_all} | {"x_hat": output_step(dec_path, "x_hat")}
        steps = {k: max(v, exact[k]) for k, v in steps.items()}  # the quantizer's own step when coarser
        enc_ref, dec_ref = session(enc_path, optimize=False), session(dec_path, optimize=False)
    worst = {}
    for n in BATCHES:
        xb = _batch(x, n)
        want, x_hat_t = _torch(model, xb, m.variational)
        got = outputs(enc, xb)
        decoded = {"x_hat": dec.run(["x_hat"], {"code": want["code"]})[0],
                   "end_to_end": dec.run(["x_hat"], {"code": got["code"]})[0]}
        assert got["code"].shape == (n, m.code_size) and decoded["x_hat"].shape == (n, *m.sample_shape)
        pairs = [(k, got[k], want[k]) for k in want] + [(k, v, x_hat_t) for k, v in decoded.items()]
        for name, value, ref in pairs:
            err = float(np.abs(value.astype(np.float64) - ref).max())
            worst[name] = max(worst.get(name, 0.0), err)
            if precision == "fp32":  # plus a few float32 ulps of the output's magnitude
                limit = FP32_ATOL + 4 * float(np.finfo(np.float32).eps) * float(np.abs(ref).max())
            elif precision == "fp16":
                limit = FP16_ATOL
            else:
                limit = INT8_STEPS * steps["x_hat" if name == "end_to_end" else name]
            assert err <= limit, f"{kind} {precision} {name} batch {n}: max error {err:.3g} > {limit:.3g}"
        if precision == "fp32" and n == 7:  # a second ONNX implementation agrees with PyTorch
            from onnx.reference import ReferenceEvaluator

            ref_dec = ReferenceEvaluator(onnx.load(str(dec_path)))
            np.testing.assert_allclose(ref_dec.run(None, {"code": want["code"]})[0], x_hat_t, atol=1e-4, rtol=0)
        if precision == "int8-static":
            # ORT's optimized kernels must compute the graph's integer semantics
            for name, value in outputs(enc_ref, xb).items():
                assert np.abs(got[name] - value).max() <= exact[name] * 1.0001, (name, n)
            value = dec_ref.run(["x_hat"], {"code": want["code"]})[0]
            assert np.abs(decoded["x_hat"] - value).max() <= exact["x_hat"] * 1.0001, n
    if precision != "fp32":
        assert worst["code"] > 0 and worst["x_hat"] > 0  # the variant computes in lower precision
    # held-out PSNR, measured here over every held-out sample
    psnr_torch = psnr(x_hat_all, x)
    x_hat = dec.run(["x_hat"], {"code": outputs(enc, x)["code"]})[0]
    psnr_here = psnr(x_hat, x)
    drop = psnr_torch - psnr_here
    limit = {"fp32": 1e-4, "fp16": FP16_MAX_DROP}.get(precision, INT8_MAX_DROP)
    assert drop <= limit, f"{kind} {precision}: PSNR {psnr_here:.3f} dB, {drop:.3f} dB below PyTorch fp32"
    rec = m.validation[precision]
    assert rec["passed"] and rec["psnr"] == pytest.approx(psnr_here, abs=2e-3)  # the report tells the truth
    sizes = {p: sum((bundle / m.find_graph(r, p).file).stat().st_size for r in ("encoder", "decoder"))
             for p in ("fp32", precision)}
    if precision != "fp32":
        assert sizes[precision] < sizes["fp32"]
        dtypes = {numpy_helper.to_array(t).dtype for t in onnx.load(str(enc_path)).graph.initializer}
        assert (np.dtype(np.float16) in dtypes) if precision == "fp16" else bool(dtypes & {np.dtype(np.int8), np.dtype(np.uint8)})
    print(f"{kind} {precision}: PSNR {psnr_here:.3f} (torch {psnr_torch:.3f}); max errors "
          + ", ".join(f"{k} {v:.2e} ({v / steps['x_hat' if k == 'end_to_end' else k]:.2f} steps)"
                      for k, v in worst.items()))


@pytest.mark.slow
@pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST not found at {MNIST}")
@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_mnist_int8_size_and_quality(kind, tmp_path):
    """784-128-32 MLP / conv (code 32) on MNIST t10k, 9,000 train / 1,000 held out: the training
    targets (19 / 21.5 dB held-out PSNR) and the int8 export targets on the same models, with
    the PSNR and sizes measured here from the bundle's outputs and files."""
    from edgeae.train import train

    kw = {"hidden": "128", "epochs": 30} if kind == "mlp" else {"epochs": 12}
    run = train(str(MNIST), model=kind, code_size=32, split="ordered", out=tmp_path / "run", **kw)
    assert run.metrics["n_train"] == 9000 and run.metrics["n_val"] == 1000
    assert run.metrics["val_psnr"] >= (19.0 if kind == "mlp" else 21.5)
    res = export(run.run_dir, tmp_path / "bundle", precisions="fp32,int8", max_psnr_drop=1.0)
    print(res.table())
    (int8,) = [p for p in res.validation if p.startswith("int8")]
    bundle = tmp_path / "bundle"
    m = read_manifest(bundle)
    x = Normalizer(m.normalization, m.sample_shape).normalize(np.load(bundle / "samples.npy"))
    quality = {}
    for p in ("fp32", int8):
        enc, dec = (session(bundle / m.find_graph(r, p).file) for r in ("encoder", "decoder"))
        quality[p] = psnr(dec.run(["x_hat"], {"code": outputs(enc, x)["code"]})[0], x)
    assert quality["fp32"] - quality[int8] <= 0.5, quality
    if kind == "mlp":
        size = {p: sum((bundle / m.find_graph(r, p).file).stat().st_size for r in ("encoder", "decoder"))
                for p in ("fp32", int8)}
        assert size[int8] <= 0.30 * size["fp32"], size
