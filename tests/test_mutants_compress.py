"""Direct tests of runtime/compress.py, written from its mutation run (docs/testing.md,
"Mutation testing"): every refusal with the words a user reads, ``append`` on empty, foreign,
unreadable and other-bit-depth files, ``batch_size`` on every path, and each field of
:func:`compression_report` against numbers computed here.
"""

from __future__ import annotations

import math
import os
from types import SimpleNamespace

import numpy as np
import pytest

from edgeae.errors import BundleError, ConfigError, StreamError
from edgeae.runtime import compress as compress_module
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.compress import (
    append,
    codec_of_stream,
    codecs_of,
    compress,
    compression_report,
    decoder_sha256,
    decompress,
    pick_codec,
)
from edgeae.runtime.stream import read_header

D, F = 4, 12  # code size, features per sample
RAW = 16.0  # raw units are RAW x model units in the model below


class LinearModel:
    """Stands in for EdgeModel: a fixed linear decoder, its exact inverse as the encoder, raw = 16x model units.

    Records the ``batch_size`` of each encode/decode call in ``calls``.
    """

    def __init__(self, mode: str = "identity", bits: tuple = (4, 8), sha: str = "d" * 64):
        rng = np.random.default_rng(1)
        self.w = rng.standard_normal((D, F))  # codes -> model units
        self.calls: list[tuple[str, int | None]] = []
        x, code = ("x", ["batch", F], "float32"), ("code", ["batch", D], "float32")
        train = rng.standard_normal((300, D)).astype(np.float32)
        self.manifest = {
            "format": "edgeae-bundle", "format_version": 1, "kind": "mlp", "code_size": D, "input": {"shape": [F]},
            "normalization": {"mode": mode, "raw_dtype": "float32", "offset": [0.0], "scale": [1.0]},
            "graphs": [
                {"role": "encoder", "precision": "fp32", "file": "encoder.onnx", "opset": 17, "size": 0,
                 "sha256": "e" * 64, "inputs": [x], "outputs": [code]},
                {"role": "decoder", "precision": "fp32", "file": "decoder.onnx", "opset": 17, "size": 0,
                 "sha256": sha, "inputs": [code], "outputs": [("x_hat", ["batch", F], "float32")]},
            ],
            "codec": [LatentCodec.fit(train, b).to_dict() for b in bits],
        }

    def samples(self, n: int, seed: int = 2) -> np.ndarray:
        """Raw samples whose codes are ``n`` draws from N(0, I)."""
        codes = np.random.default_rng(seed).standard_normal((n, D))
        return (codes @ self.w * RAW).astype(np.float32)

    def encode(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        self.calls.append(("encode", batch_size))
        return (self.to_model_units(x) @ np.linalg.pinv(self.w)).astype(np.float32)

    def decode(self, codes: np.ndarray, raw: bool = False, batch_size: int | None = None) -> np.ndarray:
        self.calls.append(("decode", batch_size))
        units = (np.asarray(codes, np.float64) @ self.w).astype(np.float32)
        return units * np.float32(RAW) if raw else units

    def to_model_units(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float32) / np.float32(RAW)


@pytest.fixture
def model() -> LinearModel:
    return LinearModel()


# ------------------------------------------------------------------ refusals, word for word


def test_manifest_refusals_word_for_word(model):
    bare = LinearModel()
    bare.manifest["graphs"] = bare.manifest["graphs"][:1]
    with pytest.raises(BundleError) as exc:
        decoder_sha256(bare.manifest)
    assert str(exc.value) == ("manifest lists no fp32 decoder graph with a sha256; compression needs it to "
                              "tag streams (re-export the bundle)")
    bare = LinearModel()
    bare.manifest["codec"] = None
    with pytest.raises(BundleError) as exc:
        codecs_of(bare.manifest)
    assert str(exc.value) == ("bundle has no codec tables (manifest 'codec' is null); re-export it with "
                              "codec tables to compress")
    with pytest.raises(BundleError) as exc:
        codecs_of([model.manifest])
    assert str(exc.value) == "manifest is list; expected a manifest record (a dict or Manifest)"
    assert decoder_sha256(model.manifest) == "d" * 64


def test_codec_choice_refusals_word_for_word(model):
    codecs = codecs_of(model.manifest)
    assert [c.bits for c, _ in codecs] == [4, 8] and pick_codec(codecs) == codecs[0]
    assert pick_codec(codecs, 8) == codecs[1]
    with pytest.raises(ConfigError) as exc:
        pick_codec(codecs, 5)
    assert str(exc.value) == ("bits=5 has no codec tables in this bundle; available: [4, 8] "
                              "(omit bits, or re-export with tables for that bit depth)")
    other = b"\x01" * 8
    with pytest.raises(StreamError) as exc:
        codec_of_stream(codecs, other)
    have = f"{codecs[0][1].hex()}, {codecs[1][1].hex()}"
    assert str(exc.value) == (f"stream was written for model id {other.hex()}, not this model ({have}); "
                              "use the bundle that wrote it")
    with pytest.raises(ConfigError) as exc:
        codec_of_stream(codecs, codecs[1][1], "s.eae", bits=4)
    assert str(exc.value) == "s.eae holds 8-bit codes; omit --bits or pass --bits 8"
    assert codec_of_stream(codecs, codecs[1][1], "s.eae", bits=8) == codecs[1]


# ------------------------------------------------------------------ append


def test_append_to_a_folder_is_refused_with_a_file_name_to_use(model, tmp_path):
    with pytest.raises(ConfigError) as exc:
        append(model, tmp_path, model.samples(2))
    assert str(exc.value) == (f"{tmp_path} is a folder; give the stream file to append to "
                              f"(e.g. {os.path.join(tmp_path, 'out.eae')})")


def test_append_to_an_empty_file_starts_a_stream(model, tmp_path):
    path = tmp_path / "s.eae"
    path.write_bytes(b"")
    x = model.samples(3)
    info = append(model, path, x, bits=8)
    assert info.samples == 3
    assert path.read_bytes() == compress(model, x, bits=8)


def test_append_names_the_file_of_a_foreign_stream(model, tmp_path):
    path = tmp_path / "other.eae"
    path.write_bytes(compress(LinearModel(sha="f" * 64), model.samples(2)))
    before = path.read_bytes()
    with pytest.raises(StreamError) as exc:
        append(model, path, model.samples(2))
    assert str(exc.value).startswith(f"{path} was written for model id ")
    assert path.read_bytes() == before


def test_append_keeps_the_streams_bit_depth_and_refuses_another(model, tmp_path):
    path = tmp_path / "s.eae"
    append(model, path, model.samples(2), bits=8)
    before = path.read_bytes()
    with pytest.raises(ConfigError) as exc:
        append(model, path, model.samples(2), bits=4)
    assert str(exc.value) == f"{path} holds 8-bit codes; omit --bits or pass --bits 8"
    assert path.read_bytes() == before
    assert append(model, path, model.samples(2, seed=3), bits=8).samples == 4


@pytest.mark.parametrize(("error", "shown"), [
    (PermissionError(13, "Permission denied"), "Permission denied"),  # the reason, not "[Errno 13] ..."
    (OSError("device went away"), "device went away"),  # no strerror: the error itself
])
def test_an_unreadable_stream_file_is_refused_with_the_reason(model, tmp_path, monkeypatch, error, shown):
    path = tmp_path / "s.eae"
    append(model, path, model.samples(2))

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(compress_module, "open", refuse, raising=False)
    with pytest.raises(ConfigError) as exc:
        append(model, path, model.samples(2))
    assert str(exc.value) == f"cannot read {path}: {shown}"


def test_batch_size_reaches_every_call(model, tmp_path):
    x = model.samples(5)
    append(model, tmp_path / "s.eae", x, batch_size=3)
    assert model.calls[-1] == ("encode", 3)
    data = compress(model, x, batch_size=2)
    assert model.calls[-1] == ("encode", 2)
    rec = decompress(model, data, batch_size=4)
    assert model.calls[-1] == ("decode", 4)
    np.testing.assert_array_equal(rec, decompress(model, data))  # raw units either way
    assert float(np.max(np.abs(rec - x))) < 0.2 * float(np.max(np.abs(x)))  # not model units (16x smaller)


# ------------------------------------------------------------------ compression_report


def _clock(monkeypatch, *ticks: float) -> None:
    """compress.py's ``time.perf_counter`` returns ``ticks`` in turn."""
    it = iter(ticks)
    monkeypatch.setattr(compress_module, "time", SimpleNamespace(perf_counter=lambda: next(it)))


def test_report_fields(model, monkeypatch):
    x = model.samples(6)
    data = compress(model, x, bits=4)
    units_err = np.mean((np.float64(x) / RAW - np.float64(decompress(model, data)) / RAW) ** 2)
    assert units_err > 0  # 4-bit codes lose something
    _clock(monkeypatch, 10.0, 10.5)
    report = compression_report(model, x, data, seconds=2.0, batch_size=3)
    assert model.calls[-1] == ("decode", 3)
    assert report == pytest.approx({
        "samples": 6, "bytes": len(data), "bytes_per_sample": len(data) / 6, "raw_bytes": x.nbytes,
        "ratio": x.nbytes / len(data), "mse": units_err, "compress_samples_per_s": 3.0,
        "decompress_samples_per_s": 12.0, "psnr": 10 * math.log10(1 / units_err),
    }, rel=1e-5)
    assert report["raw_bytes"] == 6 * F * 4


def test_report_without_time_and_of_one_sample(model, monkeypatch):
    x = model.samples(1)
    data = compress(model, x)
    _clock(monkeypatch, 7.0, 7.0)
    report = compression_report(model, x, data, seconds=0.0)
    assert report["compress_samples_per_s"] == math.inf and report["decompress_samples_per_s"] == math.inf
    assert report["bytes_per_sample"] == len(data)
    _clock(monkeypatch, 7.0, 7.25)
    report = compression_report(model, x, data, seconds=0.5)
    assert report["compress_samples_per_s"] == 2.0 and report["decompress_samples_per_s"] == 4.0


def test_report_of_an_empty_stream(model):
    x = model.samples(0)
    data = compress(model, x)
    report = compression_report(model, x, data, seconds=1.0)
    assert (report["samples"], report["mse"], report["bytes_per_sample"]) == (0, 0.0, len(data))
    assert read_header(data).samples == 0


def test_report_has_no_psnr_for_standardized_data():
    model = LinearModel(mode="standardize")
    x = model.samples(3)
    report = compression_report(model, x, compress(model, x), seconds=1.0)
    assert "psnr" not in report and report["mse"] > 0
    bounded = LinearModel()
    assert "psnr" in compression_report(bounded, x, compress(bounded, x), seconds=1.0)
