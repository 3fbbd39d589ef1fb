"""The rate-distortion benchmark's logic on tiny digits models (the MNIST run is benchmarks/rd.py)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from benchmarks import rd
from edgeae.data import load_dataset


@pytest.fixture(scope="module")
def digits_split():
    x = load_dataset("digits").x  # (1797, 1, 8, 8) uint8
    return x[:1500], x[1500:]


def test_measure_model_uses_the_real_stream(mlp_run, digits_split):
    from edgeae.checkpoint import load_run
    from edgeae.runtime.codec import LatentCodec
    from edgeae.runtime.preprocess import Normalizer
    from edgeae.runtime.stream import compress_codes, read_header

    x_train, x_test = digits_split
    points = rd.measure_model("tiny", mlp_run, x_train, x_test, (2, 8))
    assert [p.bits for p in points] == [2, 8]
    for p in points:
        assert p.samples == len(x_test)
        assert p.bytes_per_image == pytest.approx(p.stream_bytes / len(x_test))
        # the stream adds a header and chunk framing to the coded bits, never less
        assert p.stream_bytes >= p.entropy_bytes * len(x_test)
    assert points[0].stream_bytes < points[1].stream_bytes
    assert points[1].psnr > points[0].psnr
    assert points[1].psnr == pytest.approx(points[1].psnr_float, abs=0.5)
    # the same numbers by hand: quantize, stream, read back
    cfg, model = load_run(mlp_run)
    norm = Normalizer(asdict(cfg.normalization), x_test.shape[1:])
    codes = rd._codes(model, norm, x_test)
    codec = LatentCodec.fit(rd._codes(model, norm, x_train), 2)
    stream = compress_codes(codec, b"\0" * 8, codes)
    assert read_header(stream).samples == len(x_test)
    assert len(stream) == points[0].stream_bytes


def test_quantization_aware_model_is_measured_on_its_own_grid(tmp_path, digits_split):
    from edgeae.train import train

    train("digits", out=tmp_path, epochs=1, latent_bits=3, code_size=8, overwrite=True)
    points = rd.measure_model("qat", tmp_path, *digits_split, (2, 3, 4))
    assert [p.bits for p in points] == [3]
    assert points[0].code_size == 8


def test_pca_points_and_targets(digits_split):
    x_train, x_test = digits_split
    points = rd.pca_points(x_train, x_test, comps=16, bits_list=(3, 6))
    assert [p.name for p in points] == ["pca-16", "pca-16"]
    low, high = points
    assert low.bytes_per_image < high.bytes_per_image and low.psnr < high.psnr
    assert rd.meets(points, 0.0, 1e9) == [low, high]  # cheapest first
    assert rd.meets(points, high.psnr + 1, 1e9) == []
    assert rd.meets(points, 0.0, low.bytes_per_image) == [low]


def test_report_table_and_plot(tmp_path, digits_split):
    from edgeae.bench.imagecodecs import sweep

    x_train, x_test = digits_split
    points = rd.pca_points(x_train, x_test[:50], comps=8, bits_list=(4,))
    baselines = sweep(x_test[:50], webp_qualities=(50,), jpeg_qualities=(50,))
    md = rd.markdown(points, baselines, 50)
    assert "| pca-8 | 8 | 4 |" in md and "| png |" in md and "lossless" in md
    assert md.count("not met") == 3  # PCA points never count towards the targets
    rd.plot(points, baselines, tmp_path / "rd.png")
    assert (tmp_path / "rd.png").read_bytes()[:4] == b"\x89PNG"
    json.dumps([p.__dict__ for p in points])


def test_train_command_reproduces_every_config():
    for name, (kwargs, bits) in rd.CONFIGS.items():
        cmd = rd.train_command(name)
        assert cmd.startswith("edgeae train --data ../shared/data/mnist --split ordered")
        assert f"--code-size {kwargs['code_size']}" in cmd and cmd.endswith(f"--out runs/{name}")
        assert all(2 <= b <= 8 for b in bits)


def test_unknown_config_is_refused():
    with pytest.raises(SystemExit, match="unknown configuration"):
        rd.main(["--only", "nope"])


def test_bundle_path_matches_the_torch_path(mlp_run, tmp_path, digits_split):
    """compress/decompress through the exported ONNX bundle: same bytes, same pixels (almost)."""
    x_train, x_test = digits_split
    bundle = rd.export_run(mlp_run, tmp_path / "bundle", (4, 6), False, lambda m: None)
    onnx_points = rd.measure_bundle("tiny", bundle, x_test)
    assert [p.bits for p in onnx_points] == [4, 6]
    from edgeae.data import split_indices

    # the exporter fits its tables on the run's own training split
    x = load_dataset("digits").x
    tr, _ = split_indices(len(x), 0.1, 0)
    torch_points = rd.measure_model("tiny", mlp_run, x[tr], x_test, (4, 6))
    for a, b in zip(onnx_points, torch_points, strict=True):
        assert abs(a.stream_bytes - b.stream_bytes) <= 0.01 * b.stream_bytes
        assert a.psnr == pytest.approx(b.psnr, abs=0.1)
