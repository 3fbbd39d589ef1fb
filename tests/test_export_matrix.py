"""The full export matrix (model kinds x precisions) and the MNIST size / quality figures. Slow."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from edgeae.checkpoint import load_run
from edgeae.export import export
from edgeae.runtime.bundle import read_manifest, verify_bundle
from edgeae.runtime.preprocess import Normalizer
from tests.conftest import MNIST

pytestmark = pytest.mark.slow

KINDS = ["mlp", "conv", "vae", "denoising"]
PRECISIONS = ["fp32", "fp16", "int8-dynamic", "int8-static"]


@pytest.fixture(scope="module")
def bundles(trained_run, tmp_path_factory):
    """One bundle per kind holding every precision (exported once, checked per precision)."""
    cache = {}

    def make(kind):
        if kind not in cache:
            out = tmp_path_factory.mktemp("matrix") / kind
            export(trained_run(kind), out, precisions=PRECISIONS, max_psnr_drop=3.0, latency_repeats=2)
            cache[kind] = out
        return cache[kind]

    return make


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_bundle_runs_at_every_batch_and_matches(kind, precision, bundles, trained_run):
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    bundle = bundles(kind)
    assert verify_bundle(bundle) == []
    m = read_manifest(bundle)
    _, model = load_run(trained_run(kind))
    x = Normalizer(m.normalization, m.sample_shape).normalize(np.load(bundle / "samples.npy"))
    enc_g, dec_g = m.find_graph("encoder", precision), m.find_graph("decoder", precision)
    enc = ort.InferenceSession(str(bundle / enc_g.file), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(bundle / dec_g.file), providers=["CPUExecutionProvider"])
    names = [o.name for o in enc.get_outputs()]
    assert names == (["code", "mean", "log_var"] if kind == "vae" else ["code"])
    for n in (1, 7, 64):
        xb = np.ascontiguousarray(np.concatenate([x] * (n // len(x) + 1))[:n])
        with torch.no_grad():
            code_t = model.encode(torch.from_numpy(xb))
            x_hat_t = model.decoder(code_t).numpy()
        code = enc.run(["code"], {"x": xb})[0]
        x_hat = dec.run(["x_hat"], {"code": code})[0]
        assert code.shape == (n, m.code_size) and x_hat.shape == (n, *m.sample_shape)
        if precision == "fp32":
            np.testing.assert_allclose(code, code_t.numpy(), atol=1e-5, rtol=0)
            np.testing.assert_allclose(x_hat, x_hat_t, atol=1e-5, rtol=0)
            if n == 7:
                ref = ReferenceEvaluator(onnx.load(str(bundle / dec_g.file)))
                np.testing.assert_allclose(ref.run(None, {"code": code})[0], x_hat_t, atol=1e-4, rtol=0)
    rec = m.validation[precision]
    assert rec["passed"] and rec["psnr_drop"] <= 3.0
    if precision != "fp32":
        assert rec["size_ratio"] < 1.0


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST not found at {MNIST}")
@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_mnist_int8_size_and_quality(kind, tmp_path):
    """784-128-32 MLP / conv (code 32) on MNIST t10k, 9,000 train / 1,000 held out: the training
    targets (19 / 21.5 dB held-out PSNR) and the int8 export targets on the same models."""
    from edgeae.train import train

    kw = {"hidden": "128", "epochs": 30} if kind == "mlp" else {"epochs": 12}
    run = train(str(MNIST), model=kind, code_size=32, split="ordered", out=tmp_path / "run", **kw)
    assert run.metrics["n_train"] == 9000 and run.metrics["n_val"] == 1000
    assert run.metrics["val_psnr"] >= (19.0 if kind == "mlp" else 21.5)
    res = export(run.run_dir, tmp_path / "bundle", precisions="fp32,int8", max_psnr_drop=1.0)
    print(res.table())
    (int8,) = [p for p in res.validation if p.startswith("int8")]
    assert res.validation[int8]["psnr_drop"] <= 0.5
    if kind == "mlp":
        assert res.validation[int8]["size_ratio"] <= 0.30
