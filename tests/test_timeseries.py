"""Signals end to end: 1-D conv autoencoders on (C, T) windows, export, runtime, .eae streams."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeae.config import ModelConfig
from edgeae.errors import ConfigError, InputError
from edgeae.runtime.contract import SampleContract

TIMESERIES = Path(__file__).resolve().parents[1] / "build" / "timeseries"  # `make timeseries-data`
BASIC = TIMESERIES / "BasicMotions"
_NO_DATA = f"no BasicMotions .ts files in {BASIC}: run `make timeseries-data` (needs PyPI)"


def _signals(n: int = 48, c: int = 3, t: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth multi-channel signals on different scales per channel: (n, c, t) float32."""
    rng = np.random.default_rng(seed)
    steps = np.arange(t) / t
    freq = rng.uniform(1, 3, (n, c, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, c, 1))
    scale = np.array([1.0, 20.0, 0.05][:c])[None, :, None]
    return (scale * np.sin(2 * np.pi * freq * steps + phase) + 3).astype(np.float32)


@pytest.mark.parametrize("kind", ["conv1d", "conv1d-vae"])
@pytest.mark.parametrize("t", [100, 37, 8])
def test_conv1d_shapes(kind, t):
    import torch

    from edgeae.models import build_model

    m = build_model(ModelConfig(kind=kind, input_shape=(6, t), code_size=12, channels=(16, 32),
                                output_activation="identity")).eval()
    x = torch.randn(3, 6, t)
    out = m(x)
    assert out.x_hat.shape == (3, 6, t) and out.code.shape == (3, 12)
    layers = [type(mod).__name__ for mod in m.modules()]
    assert "Conv1d" in layers and "ConvTranspose1d" in layers and "Conv2d" not in layers


def test_conv1d_config_errors():
    from edgeae.models import build_model

    with pytest.raises(ConfigError, match=r"needs signals of shape \(C, T\)"):
        ModelConfig(kind="conv1d", input_shape=(1, 28, 28))
    with pytest.raises(ConfigError, match="at least one conv layer"):
        ModelConfig(kind="conv1d", input_shape=(6, 100), channels=())
    with pytest.raises(ConfigError, match="need at least 8 steps"):
        build_model(ModelConfig(kind="conv1d", input_shape=(6, 7), channels=(8, 8, 8)))


def test_signal_layouts_of_the_input_contract():
    x = _signals(4, 3, 32)
    sc = SampleContract((3, 32), "standardize", "float32")
    assert sc.arrange(x)[0] is x and sc.arrange(x[0])[1]
    got, single = sc.arrange(x.transpose(0, 2, 1))  # channel-last (N, T, C)
    assert not single and np.array_equal(got, x)
    got, single = sc.arrange(x[1].T)  # (T, C)
    assert single and np.array_equal(got[0], x[1])
    with pytest.raises(InputError, match=r"\(N, 32, 3\) \(channel-last"):
        sc.arrange(x.reshape(4, 96))  # never reshaped: that would mix the channels
    with pytest.raises(InputError):
        sc.arrange(x.reshape(4, 16, 6))
    one = SampleContract((1, 32), "standardize", "float32")
    assert one.arrange(x[:, 0])[0].shape == (4, 1, 32) and one.arrange(x[0, 0])[1]
    square = SampleContract((4, 4), "standardize", "float32")  # C == T: the own layout only
    with pytest.raises(InputError):
        square.arrange(np.zeros((2, 16), np.float32))


def test_train_on_arrays_standardizes_each_channel(tmp_path):
    from edgeae.train import train

    x = _signals()
    r = train(x, model="conv1d", out=tmp_path / "run", epochs=2, channels=(8, 8), code_size=6, batch_size=8,
              val_fraction=0.25)
    norm = r.config.normalization
    assert r.config.model.input_shape == (3, 32) and norm.mode == "standardize"
    offset = np.asarray(norm.offset).reshape(3, 32)
    scale = np.asarray(norm.scale).reshape(3, 32)
    assert np.ptp(offset, axis=1).max() == 0 and np.ptp(scale, axis=1).max() == 0  # one value per channel
    assert scale[1, 0] > 100 * scale[2, 0]  # channels on their own scales
    assert r.config.model.output_activation == "identity" and np.isfinite(r.metrics["val_mse"])
    with pytest.raises(ConfigError, match="train on an array of samples"):
        train(np.zeros(5, np.float32), out=tmp_path / "bad")


@pytest.mark.parametrize("model, extra", [("mlp", {"hidden": (32,)}), ("conv1d-vae", {}),
                                          ("conv1d", {"noise": "gaussian:0.2"})])
def test_mlp_vae_and_denoising_on_windows_export(tmp_path, model, extra):
    """The MLP over flattened windows, the 1-D VAE and a denoiser: train from memory, export fp32."""
    import edgeae.runtime as rt
    from edgeae.data import Dataset
    from edgeae.data.tsfile import window_series
    from edgeae.export import export
    from edgeae.train import train

    cont = _signals(1, 3, 400)[0].T  # one continuous (T, C) recording
    ds = Dataset(window_series(cont, 32, 8), None, "recording", "array", False)  # (47, 3, 32)
    train(ds, model=model, out=tmp_path / "run", epochs=2, channels=(8, 8), code_size=6, batch_size=8, **extra)
    res = export(tmp_path / "run", tmp_path / "b", precisions="fp32", data=ds, latency_repeats=1,
                 codec_bits="none")
    m = rt.load(tmp_path / "b")
    assert m.manifest.kind == model and m.sample_shape == (3, 32)
    assert m.reconstruct(ds.x[:5].transpose(0, 2, 1), raw=True).shape == (5, 3, 32)
    assert res.validation["fp32"]["passed"]


@pytest.mark.slow
@pytest.mark.skipif(not BASIC.is_dir(), reason=_NO_DATA)
def test_basicmotions_end_to_end(tmp_path):
    """Real IMU windows: train a few epochs, export every precision, encode, .eae round trip."""
    import edgeae.runtime as rt
    from edgeae.data import Dataset
    from edgeae.data.tsfile import read_ts
    from edgeae.export import export
    from edgeae.runtime.compress import codecs_of, compress, decompress
    from edgeae.runtime.stream import decompress_codes
    from edgeae.train import train

    tr = read_ts(BASIC / "BasicMotions_TRAIN.ts")
    te = read_ts(BASIC / "BasicMotions_TEST.ts").x  # (40, 6, 100) held out
    ds = Dataset(tr.x, tr.labels, str(BASIC / "BasicMotions_TRAIN.ts"), "ts", False)
    r = train(ds, model="conv1d", out=tmp_path / "run", epochs=8, code_size=16, batch_size=4, lr=3e-3)
    assert r.config.model.kind == "conv1d" and r.metrics["epochs_run"] == 8
    res = export(tmp_path / "run", tmp_path / "b", precisions="fp32,fp16,int8-dynamic,int8-static", data=ds,
                 latency_repeats=1)
    assert all(v["passed"] for v in res.validation.values()), res.table()
    for precision in ("fp32", "fp16", "int8-dynamic", "int8-static"):
        m = rt.load(tmp_path / "b", precision=precision)
        codes = m.encode(te)
        assert codes.shape == (40, 16) and np.isfinite(codes).all()
        blob = compress(m, te)
        back = decompress(m, blob)
        codec, mid = codecs_of(m.manifest)[0]
        np.testing.assert_array_equal(back, m.decode(decompress_codes(codec, mid, blob), raw=True))
        assert back.shape == te.shape and len(blob) < te.nbytes / 20
        one = compress(m, te[3])  # one window alone: its own stream, header included
        assert decompress(m, one).shape == (1, 6, 100)
    # better than predicting each channel's training mean, in the data's own units
    rmse = float(np.sqrt(np.mean((m.reconstruct(te, raw=True) - te) ** 2)))
    mean_rmse = float(np.sqrt(np.mean((tr.x.mean(axis=(0, 2))[None, :, None] - te) ** 2)))
    assert rmse < mean_rmse


def test_bench_counts_conv1d_work():
    """The bench's ceiling counts the 1-D convolutions' multiply-adds from the manifest's config."""
    from edgeae.bench.harness import encoder_matmuls

    shapes = encoder_matmuls({"kind": "conv1d-vae", "input_shape": [6, 100], "code_size": 16,
                              "channels": [16, 32]}, 2)
    # 100 -> 50 -> 25 steps; kernel 5; two heads (mean, log-variance) of the VAE
    assert shapes == [(100, 30, 16), (50, 80, 32), (2, 800, 16), (2, 800, 16)]
