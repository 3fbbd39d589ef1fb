"""Classical codec baselines: lossless round trips, quality ordering, PSNR, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeae.bench.imagecodecs import CodecPoint, encode_image, measure, psnr_uint8, sweep
from edgeae.errors import InputError


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """40 scikit-learn digits upscaled to (1, 24, 24) uint8: real strokes, small and fast."""
    from edgeae.data import load_dataset

    x = load_dataset("digits").x[:40]  # (40, 1, 8, 8) uint8
    return np.kron(x, np.ones((1, 1, 3, 3), dtype=np.uint8))


def test_psnr_uint8_known_value():
    a = np.zeros((2, 4, 4), dtype=np.uint8)
    assert psnr_uint8(a, a + 1) == pytest.approx(20 * math.log10(255), abs=1e-9)
    assert psnr_uint8(a, a) == math.inf


@pytest.mark.parametrize("codec", ["png", "webp-lossless"])
def test_lossless_codecs_round_trip(digits, codec):
    data, back = encode_image(digits[0], codec)
    assert np.array_equal(back, digits[0]) and len(data) > 0
    point = measure(digits[:5], codec)
    assert point.psnr == math.inf and point.to_dict()["psnr"] is None
    assert point.label == codec and point.images == 5


def test_rgb_image_round_trips_losslessly():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(3, 8, 10), dtype=np.uint8)
    _, back = encode_image(img, "png")
    assert np.array_equal(back, img)


@pytest.mark.parametrize("codec", ["jpeg", "webp"])
def test_quality_trades_bytes_for_psnr(digits, codec):
    low, high = measure(digits, codec, 10), measure(digits, codec, 90)
    assert low.bytes_per_image < high.bytes_per_image
    assert low.psnr < high.psnr < math.inf
    assert high.bits_per_pixel == pytest.approx(8 * high.bytes_per_image / (24 * 24))
    assert isinstance(low, CodecPoint) and low.label == f"{codec} q10"


def test_sweep_covers_every_codec(digits):
    points = sweep(digits[:4], webp_qualities=(50,), jpeg_qualities=(50,))
    assert [p.label for p in points] == ["png", "webp-lossless", "webp q50", "jpeg q50"]


@pytest.mark.parametrize(
    ("codec", "quality", "message"),
    [
        ("gif", None, "unknown codec 'gif'; choose one of: png, webp-lossless, webp, jpeg"),
        ("jpeg", None, "jpeg needs an integer quality 0..100, got None"),
        ("webp", 101, "webp needs an integer quality 0..100, got 101"),
        ("png", 50, "png is lossless and takes no quality (got 50); pass None"),
    ],
)
def test_bad_settings_are_refused(codec, quality, message):
    with pytest.raises(InputError) as err:
        encode_image(np.zeros((8, 8), dtype=np.uint8), codec, quality)
    assert str(err.value) == message


def test_bad_images_are_refused():
    with pytest.raises(InputError, match="must be uint8 pixels, got dtype float32"):
        encode_image(np.zeros((8, 8), dtype=np.float32), "png")
    with pytest.raises(InputError, match=r"image of shape \(2, 8, 8\) is not"):
        encode_image(np.zeros((2, 8, 8), dtype=np.uint8), "png")
    with pytest.raises(InputError, match=r"images have shape \(8, 8\)"):
        measure(np.zeros((8, 8), dtype=np.uint8), "png")
    with pytest.raises(InputError, match="PSNR needs equal shapes"):
        psnr_uint8(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
