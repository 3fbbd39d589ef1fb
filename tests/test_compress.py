"""compress / decompress / append through a model object (a numpy PCA of sklearn digits)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeae.errors import BundleError, ConfigError, StreamError
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.compress import append, codecs_of, compress, decoder_sha256, decompress
from edgeae.runtime.stream import read_header


def _graph(role: str, file: str, sha: str, x: tuple, y: tuple) -> dict:
    """A manifest graph record (the files themselves are never opened here)."""
    return {"role": role, "precision": "fp32", "file": file, "opset": 17, "size": 0, "sha256": sha,
            "inputs": [x], "outputs": [y]}


class PCAModel:
    """Stands in for EdgeModel: ``.encode``, ``.decode(codes, raw=True)``, ``.manifest``."""

    def __init__(self, train: np.ndarray, code_size: int, bits=(6, 4, 8), sha="d" * 64):
        self.mean = train.mean(axis=0)
        _, _, vt = np.linalg.svd(train - self.mean, full_matrices=False)
        self.w = vt[:code_size]  # (D, 64)
        codes = self.encode(train)
        x, code = ("x", ["batch", 64], "float32"), ("code", ["batch", code_size], "float32")
        self.manifest = {
            "format": "edgeae-bundle",
            "format_version": 1,
            "kind": "mlp",
            "code_size": code_size,
            "input": {"shape": [64]},
            "normalization": {"mode": "identity", "raw_dtype": "float32", "offset": [0.0], "scale": [1.0]},
            "graphs": [
                _graph("encoder", "encoder.onnx", "e" * 64, x, code),
                _graph("decoder", "decoder.onnx", sha, code, ("x_hat", ["batch", 64], "float32")),
            ],
            "codec": [LatentCodec.fit(codes, b).to_dict() for b in bits],
        }

    def encode(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float64) - self.mean) @ self.w.T).astype(np.float32)  # (N, D)

    def decode(self, codes: np.ndarray, raw: bool = False) -> np.ndarray:
        x = codes.astype(np.float64) @ self.w + self.mean  # (N, 64)
        return np.clip(x, 0, 16).astype(np.float32) if raw else x.astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(16.0**2 / np.mean((a - b) ** 2)))


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32)  # (1797, 64), values 0..16
    return x[:1400], x[1400:]


@pytest.fixture(scope="module")
def model(digits):
    return PCAModel(digits[0], 16)


@pytest.mark.parametrize("bits, min_psnr, max_bytes", [(4, 18.5, 9), (6, 19.2, 13), (8, 19.4, 17)])
def test_rate_and_quality(model, digits, bits, min_psnr, max_bytes):
    test = digits[1]
    data = compress(model, test, bits=bits)
    rec = decompress(model, data)
    assert rec.shape == test.shape
    exact = model.decode(model.encode(test), raw=True)
    # quantization costs little against the unquantized PCA reconstruction ...
    assert _psnr(rec, test) >= min_psnr and _psnr(rec, test) <= _psnr(exact, test) + 1e-6
    # ... and the rate is a handful of bytes per digit (64 pixels, 4 bits each raw = 32 B)
    assert len(data) / len(test) <= max_bytes


def test_default_bits_is_first_codec(model, digits):
    data = compress(model, digits[1][:5])
    assert read_header(data).model_id == codecs_of(model.manifest)[0][1]
    assert codecs_of(model.manifest)[0][0].bits == 6


def test_decompress_finds_codec_by_id(model, digits):
    for bits in (4, 8):
        rec = decompress(model, compress(model, digits[1][:3], bits=bits))
        assert rec.shape == (3, 64)


def test_unknown_bits_and_missing_tables(model, digits):
    with pytest.raises(ConfigError, match=r"bits=5 has no codec tables.*\[4, 6, 8\]"):
        compress(model, digits[1][:2], bits=5)
    bare = PCAModel(digits[0][:200], 16, bits=(4,))
    bare.manifest["codec"] = None
    with pytest.raises(BundleError, match="no codec tables"):
        compress(bare, digits[1][:2])
    bare.manifest["graphs"] = bare.manifest["graphs"][:1]
    with pytest.raises(BundleError, match="no fp32 decoder"):
        decoder_sha256(bare.manifest)


def test_other_model_refused(model, digits):
    other = PCAModel(digits[0], 16, sha="f" * 64)  # same tables, other decoder weights
    data = compress(model, digits[1][:4])
    with pytest.raises(StreamError, match="not this model"):
        decompress(other, data)


def test_append_grows_file(model, digits, tmp_path):
    path = tmp_path / "digits.eae"
    test = digits[1]
    append(model, path, test[:10], bits=4)
    info = append(model, path, test[10:25])  # keeps the file's 4-bit codec
    assert (info.samples, info.chunks) == (25, 2)
    rec = decompress(model, path.read_bytes())
    np.testing.assert_array_equal(rec, decompress(model, compress(model, test[:25], bits=4)))


def test_batch_size_reaches_the_model(digits):
    class Spy(PCAModel):
        seen: list = []

        def encode(self, x, batch_size=None):
            self.seen.append(("encode", batch_size))
            return super().encode(x)

        def decode(self, codes, raw=False, batch_size=None):
            self.seen.append(("decode", batch_size))
            return super().decode(codes, raw)

    spy = Spy(digits[0][:300], 8, bits=(4,))
    data = compress(spy, digits[1][:20], batch_size=7)
    decompress(spy, data, batch_size=5)
    assert spy.seen[-2:] == [("encode", 7), ("decode", 5)]
    assert data == compress(spy, digits[1][:20])  # chunking never changes the bytes
