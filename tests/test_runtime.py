"""edgeae.runtime against a numpy reference on tiny real bundles (tests/_bundles.py)."""

from __future__ import annotations

import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import edgeae.runtime as rt
from edgeae.errors import BundleError, InputError, ProviderError
from edgeae.runtime.contract import NonFiniteInput
from edgeae.runtime.session import max_supported_opset, resolve_providers
from tests._bundles import (
    add_ort_copies,
    digits_features,
    digits_uint8,
    make_bundle,
    quantize_uint8,
)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("image"), "image")


@pytest.fixture(scope="module")
def image_model(image):
    return rt.load(image[0])


def _copy(bundle, tmp_path):
    return shutil.copytree(bundle, tmp_path / "b")


def _edit_manifest(folder, fn):
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


# ---- numbers ---------------------------------------------------------------------------
def test_encode_decode_reconstruct_match_numpy_reference(image, image_model):
    _, ref = image
    raw = digits_uint8()[:200]
    x = raw.astype(np.float32) / 255
    codes = image_model.encode(raw)
    np.testing.assert_allclose(codes, ref.encode(x), atol=1e-4)
    np.testing.assert_allclose(image_model.decode(codes), ref.decode(codes), atol=1e-5)
    x_hat = image_model.reconstruct(raw)
    np.testing.assert_allclose(x_hat, ref.decode(ref.encode(x)), atol=1e-4)
    assert rt.psnr(x, x_hat) > 18  # 16 PCA components of digits: a meaningful reconstruction
    assert image_model.decode(codes, raw=True).dtype == np.uint8


def test_int8_dynamic_computes_the_integer_reference(image, image_model):
    """The int8-dynamic graphs compute uint8 x uint8 -> int32 products, not the fp32 graph:
    equal to the numpy integer reference, measurably different from fp32, within a few steps."""
    import onnx
    from onnx import numpy_helper

    folder, ref = image
    int8 = rt.load(folder, precision="int8-dynamic")
    assert [g["file"] for g in int8.info["graphs"]] == ["encoder.int8-dynamic.onnx", "decoder.int8-dynamic.onnx"]
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(folder / "encoder.int8-dynamic.onnx")).graph.initializer}
    (codes,) = [v for v in weights.values() if v.dtype == np.uint8 and v.shape == ref.w.shape]
    np.testing.assert_array_equal(codes, quantize_uint8(ref.w)[0])  # the PCA weights, row for row
    raw = digits_uint8()[:200]
    x = raw.astype(np.float32) / 255
    code8, code32 = int8.encode(raw), image_model.encode(raw)
    np.testing.assert_allclose(code8, ref.encode_int8(x), atol=1e-5, rtol=0)
    # one step of the activations (x in [0, 1]) times the weight sums, plus half a weight step per input
    _, w_scale, _ = quantize_uint8(ref.w)
    bound = (1 / 255) / 2 * np.abs(ref.w).sum(axis=0).max() + w_scale / 2 * 64
    assert 1e-3 < np.abs(code8 - code32).max() <= bound
    x_hat8 = int8.decode(code32)
    np.testing.assert_allclose(x_hat8, ref.decode_int8(code32), atol=1e-5, rtol=0)
    assert 1e-3 < np.abs(x_hat8 - image_model.decode(code32)).max() < 0.05
    drop = rt.psnr(x, image_model.reconstruct(raw)) - rt.psnr(x, int8.reconstruct(raw))
    assert 0 < drop < 0.5, drop


def test_float_input_is_taken_as_normalized_for_scale255(image_model):
    raw = digits_uint8()[:50]
    np.testing.assert_allclose(image_model.encode(raw.astype(np.float32) / 255), image_model.encode(raw), atol=1e-5)


def test_standardize_bundle_normalizes_float_features(tmp_path):
    folder, ref = make_bundle(tmp_path, "vector")
    model = rt.load(folder)
    raw = digits_features()[:100]
    norm = model.manifest.normalization
    x = (raw - np.array(norm["offset"], np.float32)) / np.array(norm["scale"], np.float32)
    np.testing.assert_allclose(model.encode(raw), ref.encode(x), atol=1e-4)
    np.testing.assert_allclose(model.decode(model.encode(raw), raw=True),
                               ref.decode(ref.encode(x)) * np.array(norm["scale"]) + np.array(norm["offset"]),
                               rtol=1e-4, atol=1e-3)
    counts = np.rint(raw).astype(np.int64)  # integers are cast to float32 (docs/INPUT.md)
    np.testing.assert_array_equal(model.encode(counts), model.encode(counts.astype(np.float32)))
    # the one-chunk fast path normalizes as the chunked path does, bit for bit, one sample or a batch
    chunked = model.encode(raw, batch_size=7)
    np.testing.assert_array_equal(model.encode(raw), chunked)
    np.testing.assert_array_equal(model.encode(raw[3]), chunked[3])
    bad = raw[:4].copy()
    bad[2, 5] = np.nan
    with pytest.raises(NonFiniteInput, match="sample 2"):
        model.encode(bad)


def test_raw_io_bundle_takes_uint8_and_matches_normal_bundle(tmp_path, image_model):
    folder, ref = make_bundle(tmp_path, "image", raw_io=True)
    model = rt.load(folder)
    raw = digits_uint8()[:100]
    np.testing.assert_allclose(model.encode(raw), image_model.encode(raw), atol=1e-5)
    codes = model.encode(raw)
    assert np.abs(model.decode(codes, raw=True).astype(int) - image_model.decode(codes, raw=True)).max() <= 1
    int8 = rt.load(folder, precision="int8-dynamic")
    np.testing.assert_allclose(int8.encode(raw), ref.encode_int8(raw / np.float32(255)), atol=1e-5, rtol=0)
    want = np.clip(np.rint(ref.decode_int8(codes) * 255), 0, 255)
    assert np.abs(int8.decode(codes, raw=True).astype(int) - want).max() <= 1
    with pytest.raises(InputError, match="expected uint8: pass raw uint8 samples"):
        model.encode(raw.astype(np.float32))


def test_single_sample_has_no_batch_axis(image_model):
    raw = digits_uint8()[:3]
    code = image_model.encode(raw[0])
    assert code.shape == (16,)
    np.testing.assert_allclose(code, image_model.encode(raw)[0], atol=1e-6)
    assert image_model.decode(code).shape == (1, 8, 8)
    assert image_model.reconstruct(raw[1]).shape == (1, 8, 8)


def test_chunking_equals_one_shot_and_reports_progress(image_model):
    raw = digits_uint8()[:301]
    seen = []
    chunked = image_model.encode(raw, batch_size=64, progress=seen.append)
    assert seen == [64] * 4 + [45]
    np.testing.assert_array_equal(chunked, image_model.encode(raw))
    np.testing.assert_array_equal(image_model.reconstruct(raw, batch_size=7), image_model.reconstruct(raw))
    assert image_model.encode(raw[:0]).shape == (0, 16)


def test_vae_sample_is_seeded(tmp_path, image_model):
    model = rt.load(make_bundle(tmp_path, "vae")[0])
    a, b = model.sample(5, seed=3), model.sample(5, seed=3)
    assert a.shape == (5, 1, 8, 8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, model.sample(5, seed=4))
    with pytest.raises(BundleError, match="sample\\(\\) needs a variational bundle"):
        image_model.sample(2)


def test_threads_share_one_model(image_model):
    raw = digits_uint8()
    chunks = [raw[i:i + 37] for i in range(0, 740, 37)]
    serial = [image_model.reconstruct(c) for c in chunks]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(image_model.reconstruct, chunks))
    for s, p in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(s, p)


# ---- input errors ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((2, 8, 9), np.uint8), "x has shape (2, 8, 9); expected one sample or a batch: (1, 8, 8) or "
                                        "(N, 1, 8, 8) (the bundle's own layout); (8, 8) or (N, 8, 8) (grayscale "
                                        "without a channel axis); (8, 8, 1) or (N, 8, 8, 1) (channel-last); (64,) or "
                                        "(N, 64) (flat vectors); see docs/INPUT.md"),
        (np.zeros((2, 1, 8, 8), bool), "x has dtype bool; expected uint8 pixels, floats or integers: convert it, "
                                       "e.g. x.astype(np.float32)"),
        (np.full((3, 1, 8, 8), np.nan, np.float32), "x contains NaN or inf (first in sample 0); "
                                                    "expected finite values"),
    ],
)
def test_bad_inputs_are_refused(image_model, x, message):
    with pytest.raises(InputError, match="^" + re.escape(message) + "$"):
        image_model.encode(x)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_input_names_the_first_bad_sample(image_model, value):
    x = (digits_uint8()[:300] / np.float32(255)).astype(np.float32)
    x[130, 0, 3, 4] = value
    x[250, 0, 0, 0] = value
    with pytest.raises(InputError, match=r"^x contains NaN or inf \(first in sample 130\); expected finite values$"):
        image_model.encode(x)
    with pytest.raises(InputError, match=r"^x contains NaN or inf \(first in sample 130\); expected finite values$"):
        image_model.encode(x, batch_size=64)  # sample 2 of the third chunk
    with pytest.raises(InputError, match=r"\(first in sample 130\)"):
        image_model.reconstruct(x, batch_size=7)
    x[130] = 0.5
    assert image_model.encode(x[:250], batch_size=64).shape == (250, 16)  # finite again: accepted
    codes = image_model.encode(x[:200])
    codes[199, 0] = value
    with pytest.raises(InputError, match=r"^code contains NaN or inf \(first in sample 199\)"):
        image_model.decode(codes, batch_size=50)


def test_bad_codes_are_refused(image_model):
    with pytest.raises(InputError, match=re.escape("code has shape (4, 15); expected (16,) (one sample) or (N, 16) (a batch)")):
        image_model.decode(np.zeros((4, 15), np.float32))
    with pytest.raises(InputError, match=re.escape("code has dtype complex128; expected floats (or integers): "
                                                   "use code.astype(np.float32)")):
        image_model.decode(np.zeros((4, 16), complex))
    codes = np.zeros((4, 16), np.float32)
    codes[2, 5] = np.inf
    with pytest.raises(InputError, match="sample 2"):
        image_model.decode(codes)
    with pytest.raises(InputError, match="batch_size must be a positive int, got 0"):
        image_model.decode(codes[:1], batch_size=0)


# ---- bundle verification ---------------------------------------------------------------
def test_tampered_graph_is_refused_with_hashes(image, tmp_path):
    folder = _copy(image[0], tmp_path)
    data = bytearray((folder / "encoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "encoder.onnx").write_bytes(bytes(data))
    expected = rt.read_manifest(folder).find_graph("encoder", "fp32").sha256
    actual = rt.file_sha256(folder / "encoder.onnx")
    with pytest.raises(BundleError, match=re.escape(
            f"encoder.onnx: SHA-256 mismatch (expected {expected}, got {actual}); the file was modified")):
        rt.load(folder)
    assert rt.verify_bundle(folder) == [
        f"encoder.onnx: SHA-256 mismatch (expected {expected}, got {actual}); the file was modified: "
        "re-export or re-copy the bundle"
    ]


def test_truncated_and_missing_files_are_named(image, tmp_path):
    folder = _copy(image[0], tmp_path)
    size = (folder / "decoder.onnx").stat().st_size
    (folder / "decoder.onnx").write_bytes((folder / "decoder.onnx").read_bytes()[:100])
    with pytest.raises(BundleError, match=f"decoder.onnx: size 100 bytes, manifest says {size} "):
        rt.load(folder)
    (folder / "encoder.int8-dynamic.onnx").unlink()
    problems = rt.verify_bundle(folder)
    assert len(problems) == 2 and "encoder.int8-dynamic.onnx: file is missing" in problems


def test_unknown_format_version(image, tmp_path):
    folder = _copy(image[0], tmp_path)
    _edit_manifest(folder, lambda d: d.update(format_version=7))
    with pytest.raises(BundleError, match="^bundle format_version 7 is not supported: this edgeae reads format_version 1;"):
        rt.load(folder)


def test_missing_precision_lists_available(image_model, image):
    with pytest.raises(BundleError, match=re.escape("precision 'fp16' (onnx) is not in bundle") + ".*"
                       + re.escape("available encoder precisions: fp32, int8-dynamic")):
        rt.load(image[0], precision="fp16")
    assert rt.load(image[0], precision="int8-dynamic").precision == "int8-dynamic"


def test_opset_newer_than_onnxruntime_is_refused(image, tmp_path):
    folder = _copy(image[0], tmp_path)
    _edit_manifest(folder, lambda d: [g.update(opset=999) for g in d["graphs"]])
    with pytest.raises(BundleError, match=f"encoder.onnx needs ONNX opset 999, but onnxruntime .* supports up to opset {max_supported_opset()}"):
        rt.load(folder)
    assert 17 <= max_supported_opset() < 999


def test_malformed_and_absent_manifest(tmp_path):
    with pytest.raises(BundleError, match="manifest.json not found"):
        rt.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{nope")
    with pytest.raises(BundleError, match="is not valid JSON"):
        rt.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "edgeae-bundle", "format_version": 1}))
    with pytest.raises(BundleError, match="^malformed manifest: missing keys: kind, code_size, input, normalization, graphs$"):
        rt.read_manifest(tmp_path)


def test_manifest_round_trip(image):
    m = rt.read_manifest(image[0])
    again = rt.Manifest.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again == m
    assert again.to_dict()["graphs"][0]["inputs"][0] == {"name": "x", "shape": ["batch", 1, 8, 8], "dtype": "float32"}
    assert m.precisions("decoder") == ["fp32", "int8-dynamic"]
    assert m.find_graph("encoder", "int8-dynamic").inputs[0].dtype == "float32"
    with pytest.raises(BundleError, match="graph precision 'fp8' is not one of"):
        rt.GraphEntry.from_dict({**m.graphs[0].to_dict(), "precision": "fp8"})


# ---- providers -------------------------------------------------------------------------
def test_unavailable_provider_lists_available(image):
    missing = next(p for p in ("coreml", "tensorrt", "openvino") if p not in str(rt.available_providers()).lower())
    with pytest.raises(ProviderError, match=f"^execution provider '{missing}' is not available in this onnxruntime; "
                       "available: .*CPUExecutionProvider"):
        rt.load(image[0], providers=missing)


def test_provider_names_resolve():
    assert resolve_providers("cpu") == ["CPUExecutionProvider"]
    assert resolve_providers(["CPUExecutionProvider", "cpu"]) == ["CPUExecutionProvider"]
    auto = resolve_providers("auto")
    assert auto[-1] == "CPUExecutionProvider"
    assert (auto[0] == "CUDAExecutionProvider") == ("CUDAExecutionProvider" in rt.available_providers())


def test_info_and_threads(image):
    model = rt.load(image[0], threads=2, providers="cpu")
    for graph in (model._encoder, model._decoder):
        opts = graph.session.get_session_options()
        assert opts.intra_op_num_threads == 2 and opts.inter_op_num_threads == 1
        assert graph.session.get_providers() == ["CPUExecutionProvider"]
    assert rt.load(image[0])._encoder.session.get_session_options().intra_op_num_threads == 1  # the default
    assert rt.load(image[0], threads=0)._decoder.session.get_session_options().intra_op_num_threads == 0
    with pytest.raises(ProviderError, match=r"^threads must be a non-negative int \(0 = all cores\), got -1$"):
        rt.load(image[0], threads=-1)
    assert model.providers == ["CPUExecutionProvider"]
    assert model.info["code_size"] == 16 and model.info["precision"] == "fp32"
    assert [g["file"] for g in model.info["graphs"]] == ["encoder.onnx", "decoder.onnx"]
    text, problems = rt.describe_bundle(image[0])
    assert problems == [] and "all files OK" in text and "encoder.int8-dynamic.onnx" in text


def test_ort_format_graphs(tmp_path, image):
    """load(format="ort") runs the ORT flatbuffer copies listed in the manifest, and only them."""
    folder, ref = image
    bundle = _copy(folder, tmp_path)
    add_ort_copies(bundle)
    raw = digits_uint8()[:100]
    x = raw / np.float32(255)
    for precision, encode in (("fp32", ref.encode), ("int8-dynamic", ref.encode_int8)):
        model = rt.load(bundle, precision=precision, format="ort")
        assert [g["file"] for g in model.info["graphs"]] == [f"encoder{'' if precision == 'fp32' else '.' + precision}.ort",
                                                            f"decoder{'' if precision == 'fp32' else '.' + precision}.ort"]
        assert all(g["format"] == "ort" for g in model.info["graphs"])
        np.testing.assert_allclose(model.encode(raw), encode(x), atol=1e-4, rtol=0)
    (bundle / "encoder.ort").write_bytes(b"not a flatbuffer")
    with pytest.raises(BundleError, match="encoder.ort: size 16 bytes, manifest says"):
        rt.load(bundle, format="ort")
    with pytest.raises(BundleError, match=r"^precision 'fp32' \(ort\) is not in bundle"):
        rt.load(folder, format="ort")
    with pytest.raises(BundleError, match="^format 'tflite' is not one of: onnx, ort$"):
        rt.load(folder, format="tflite")
