"""The classical signal baselines of the time-series rate-distortion benchmark (edgeae.bench.signalcodecs)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeae.bench.signalcodecs import (
    SIGNAL_CODECS,
    get_codec,
    measure_codec,
    missing_codecs,
    window_metrics,
)
from edgeae.errors import ConfigError

MISSING = missing_codecs()


def _window(c: int = 6, t: int = 100, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = np.arange(t)
    w = np.sin(steps[None] * rng.uniform(0.05, 0.3, (c, 1))) * rng.uniform(0.5, 8, (c, 1))
    return (w + 0.05 * rng.normal(size=(c, t))).astype(np.float32)


def _needs(name: str):
    return pytest.mark.skipif(name in MISSING, reason=MISSING.get(name, ""))


@pytest.mark.parametrize("name", [pytest.param(n, marks=_needs(n)) for n in SIGNAL_CODECS])
@pytest.mark.parametrize("bound", [0.01, 0.1, 0.5])
def test_round_trip_from_the_bytes_alone(name, bound):
    codec = get_codec(name)
    w = _window()
    blob = codec.encode(w, bound)
    assert isinstance(blob, bytes) and 0 < len(blob) < w.nbytes
    back = codec.decode(blob, w.shape)
    assert back.shape == w.shape and back.dtype == np.float32
    err = float(np.max(np.abs(back - w)))
    if codec.bounded:
        assert err <= bound * (1 + 1e-5) + 1e-6
    assert float(np.sqrt(np.mean((back - w) ** 2))) < 4 * bound  # ZFP, DCT: near their targets
    assert codec.decode(blob, w.shape).tobytes() == back.tobytes()


@pytest.mark.parametrize("name", [pytest.param(n, marks=_needs(n)) for n in SIGNAL_CODECS])
def test_fewer_bytes_at_looser_bounds(name):
    w = _window(seed=1)
    sizes = [len(get_codec(name).encode(w, b)) for b in (0.003, 0.03, 0.3)]
    assert sizes[0] > sizes[1] > sizes[2]


@pytest.mark.skipif("zstd16" in MISSING, reason=MISSING.get("zstd16", ""))
def test_zstd16_widens_to_32_bit_integers_when_needed():
    w = np.array([[0.0, 5000.0, -5000.0, 1.0]], dtype=np.float32)  # deltas of 1e5 steps at bound 0.05
    codec = get_codec("zstd16")
    blob = codec.encode(w, 0.05)
    assert blob[0] == 1  # the 32-bit flag
    assert np.max(np.abs(codec.decode(blob, w.shape) - w)) <= 0.05
    assert get_codec("zstd16").encode(_window(), 0.1)[0] == 0


@pytest.mark.skipif("zstd16" in MISSING, reason=MISSING.get("zstd16", ""))
def test_measure_counts_every_byte_and_error():
    x = np.stack([_window(seed=s) for s in range(4)])  # (4, 6, 100)
    row = measure_codec("zstd16", x, 0.2, data_range=float(x.max() - x.min()), std=float(x.std()))
    codec = get_codec("zstd16")
    assert row["bytes_per_window"] == np.mean([len(codec.encode(w, 0.2)) for w in x])
    assert row["windows"] == 4 and row["raw_bytes_per_window"] == 2400 and row["max_error"] <= 0.2
    assert row["rmse_std"] == pytest.approx(row["rmse"] / float(x.std()))


def test_window_metrics_and_errors():
    x = np.zeros((2, 1, 4), np.float32)
    y = x.copy()
    y[0, 0, 0] = 2.0
    m = window_metrics(x, y, [10, 20], data_range=4.0, std=2.0)
    assert m["rmse"] == pytest.approx(np.sqrt(4 / 8)) and m["max_error"] == 2.0 and m["bytes_per_window"] == 15
    assert m["psnr"] == pytest.approx(20 * np.log10(4.0 / np.sqrt(0.5)))
    with pytest.raises(ConfigError, match="reconstructions of shape"):
        window_metrics(x, y[:1], [1], 1.0, 1.0)
    with pytest.raises(ConfigError, match="unknown signal codec 'lz4'"):
        get_codec("lz4")
