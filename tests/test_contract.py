"""The input contract (docs/INPUT.md), row by row, through the Python API and the CLI."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

import edgeae.runtime as rt
from edgeae.cli import cli
from edgeae.errors import InputError
from edgeae.runtime.compress import compress
from edgeae.runtime.contract import SampleContract, as_codes
from tests._bundles import digits_features, digits_uint8, make_bundle, with_codec


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The PCA image bundle plus 6-bit codec tables fitted on its codes (for compress)."""
    return with_codec(make_bundle(tmp_path_factory.mktemp("contract") / "image", "image")[0])


@pytest.fixture(scope="module")
def vector(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("contract") / "vector", "vector")[0]


@pytest.fixture(scope="module")
def model(image):
    return rt.load(image)


X = digits_uint8()[:20]  # (20, 1, 8, 8) uint8

# Layout rows of the table: (name, array, single?) for the (1, 8, 8) image bundle.
LAYOUTS = [
    ("own batch", X, False),
    ("own single", X[0], True),
    ("gray batch", X[:, 0], False),
    ("gray single", X[0, 0], True),
    ("channel-last batch", X.transpose(0, 2, 3, 1), False),
    ("channel-last single", X[0].transpose(1, 2, 0), True),
    ("flat batch", X.reshape(20, 64), False),
    ("flat single", X[0].reshape(64), True),
]


def _cli(*args) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("name, x, single", LAYOUTS, ids=[r[0] for r in LAYOUTS])
def test_layouts_api(model, name, x, single):
    want = model.encode(X)
    got = model.encode(x)
    assert got.shape == ((16,) if single else (20, 16))
    np.testing.assert_array_equal(got, want[0] if single else want)
    r = model.reconstruct(x, raw=True)
    assert r.shape == ((1, 8, 8) if single else (20, 1, 8, 8))


@pytest.mark.parametrize("name, x, single", LAYOUTS, ids=[r[0] for r in LAYOUTS])
def test_layouts_cli(model, image, tmp_path, name, x, single):
    np.save(tmp_path / "x.npy", x)
    r = _cli("encode", image, tmp_path / "x.npy", "-o", tmp_path / "c.npy")
    assert r.exit_code == 0, r.output
    want = model.encode(X)[:1] if single else model.encode(X)
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), want)  # the CLI always writes a batch


def test_wrong_layout_is_refused_by_both(model, image, tmp_path):
    bad = np.zeros((3, 8, 7), np.uint8)
    with pytest.raises(InputError, match=re.escape("x has shape (3, 8, 7); expected one sample or a batch: (1, 8, 8)")):
        model.encode(bad)
    np.save(tmp_path / "bad.npy", bad)
    r = _cli("encode", image, tmp_path / "bad.npy", "-o", tmp_path / "c.npy")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.output == (f"Error: {tmp_path / 'bad.npy'} holds samples of shape (8, 7), but the model expects "
                        "(1, 8, 8); pass --resize HxW to resize images\n")


def test_colour_channel_last_and_ambiguity():
    c = SampleContract((3, 4, 5), "scale255", "uint8")
    x = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    got, single = c.samples(x.transpose(0, 2, 3, 1))
    assert not single and got.flags.c_contiguous
    np.testing.assert_array_equal(got, x)
    one, single = c.samples(x[1].transpose(1, 2, 0))
    assert single
    np.testing.assert_array_equal(one, x[1:2])
    cube = SampleContract((3, 3, 3), "scale255", "uint8")  # both readings fit: channel-first wins
    y = np.arange(2 * 27, dtype=np.uint8).reshape(2, 3, 3, 3)
    np.testing.assert_array_equal(cube.samples(y)[0], y)
    with pytest.raises(InputError, match="expected one sample or a batch"):
        c.samples(np.zeros((2, 4, 5), np.uint8))  # grayscale layout only for C = 1


# ---- dtypes, 8-bit bundle ----------------------------------------------------------------------
DTYPES = [
    ("uint8 pixels", lambda x: x),
    ("float32 model units", lambda x: x.astype(np.float32) / 255),
    ("float64 cast", lambda x: x.astype(np.float64) / 255),
    ("float16 cast", lambda x: (x.astype(np.float32) / 255).astype(np.float16)),
    ("int64 pixels", lambda x: x.astype(np.int64)),
    ("uint16 pixels", lambda x: x.astype(np.uint16)),
]


@pytest.mark.parametrize("name, conv", DTYPES, ids=[r[0] for r in DTYPES])
def test_dtypes_api_and_cli(model, image, tmp_path, name, conv):
    want = model.encode(X)
    x = conv(X)
    atol = 2e-3 if "float16" in name else 1e-5
    np.testing.assert_allclose(model.encode(x), want, atol=atol)
    np.save(tmp_path / "x.npy", x)
    r = _cli("encode", image, tmp_path / "x.npy", "-o", tmp_path / "c.npy")
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), want, atol=atol)


REFUSED = [
    ("integer pixels out of range", X.astype(np.int64) * 2, "holds integer pixels from 0 to 510"),
    ("bool", X > 0, "has dtype bool; expected uint8 pixels, floats or integers"),
    ("complex", X.astype(np.complex64), "has dtype complex64"),
    ("strings", X.astype(str), "has dtype <U3"),
    ("NaN", np.where(X > 100, np.nan, X / 255.0), "contains NaN or inf (first in sample 0"),
    ("inf", np.where(X > 100, np.inf, X / 255.0), "contains NaN or inf"),
    ("float 0..255", X.astype(np.float32), "holds float values up to 255 (root-mean-square"),
    ("float64 beyond float32", np.full((2, 1, 8, 8), 1e300), "contains NaN or inf"),
]


@pytest.mark.parametrize("name, x, message", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_by_api_and_cli(model, image, tmp_path, name, x, message):
    with pytest.raises(InputError, match=re.escape(message)):
        model.encode(x)
    np.save(tmp_path / "x.npy", x)
    r = _cli("reconstruct", image, tmp_path / "x.npy")
    assert r.exit_code == 1 and r.output.startswith("Error: ") and "Traceback" not in r.output
    assert message in r.output


def test_values_just_outside_unit_range_pass(model):
    x = X.astype(np.float32) / 255
    noisy = x + np.random.default_rng(0).normal(0, 0.3, x.shape).astype(np.float32)  # a denoiser's input
    assert noisy.min() < 0 and noisy.max() > 1
    assert model.encode(noisy).shape == (20, 16)


# ---- float bundle (standardize) ---------------------------------------------------------------
def test_vector_bundle_rows(vector, tmp_path):
    m = rt.load(vector)
    f = digits_features()[:30]  # raw features 0..16
    want = m.encode(f)
    np.testing.assert_allclose(m.encode(f.astype(np.float64)), want, atol=1e-6)
    np.testing.assert_array_equal(m.encode(f.astype(np.int64)), want)  # integers cast to float32
    np.testing.assert_array_equal(m.encode(f.astype(np.uint8)), want)
    np.testing.assert_array_equal(m.encode(f.reshape(30, 8, 8)), want)  # (N, ...) flattened
    np.testing.assert_array_equal(m.encode(f[0]), want[0])
    assert m.encode(f * 1000).shape == (30, 16)  # no [0, 1] rule for standardized features
    with pytest.raises(InputError, match="contains NaN or inf"):
        m.encode(np.where(f > 10, np.nan, f))
    np.save(tmp_path / "f.npy", f.reshape(30, 8, 8).astype(np.int32))
    r = _cli("encode", vector, tmp_path / "f.npy", "-o", tmp_path / "c.npy")
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), want)


def test_identity_bundle_rule():
    c = SampleContract((4,), "identity", "float32")
    x, _ = c.samples(np.array([[0, 1, 1, 0]], np.int64))
    assert x.dtype == np.float32
    c.check_values(x)
    with pytest.raises(InputError, match="values on the \\[0, 1\\] scale it was trained on"):
        c.check_values(np.full((2, 4), 200, np.float32))


def test_raw_io_bundle_rows(tmp_path):
    m = rt.load(make_bundle(tmp_path, "image", raw_io=True)[0])
    np.testing.assert_array_equal(m.encode(X.astype(np.int32)), m.encode(X))
    with pytest.raises(InputError, match="expected uint8: pass raw uint8 samples"):
        m.encode(X.astype(np.float32) / 255)


# ---- codes --------------------------------------------------------------------------------------
def test_codes_rows(model, image, tmp_path):
    codes = model.encode(X)
    want = model.decode(codes, raw=True)
    np.testing.assert_array_equal(model.decode(codes.astype(np.float64), raw=True), want)
    np.testing.assert_array_equal(model.decode(codes[3], raw=True), want[3])
    assert as_codes(np.arange(16), 16)[0].dtype == np.float32
    for bad, message in ((codes[:, :5], "has shape (20, 5)"), (codes > 0, "has dtype bool"),
                         (np.where(codes > 1, np.inf, codes), "contains NaN or inf")):
        with pytest.raises(InputError, match=re.escape(message)):
            model.decode(bad)
        np.save(tmp_path / "c.npy", bad)
        r = _cli("decode", image, tmp_path / "c.npy", "-o", tmp_path / "o.npy")
        assert r.exit_code == 1 and message in r.output and r.output.startswith(f"Error: {tmp_path / 'c.npy'}")
    np.save(tmp_path / "c64.npy", codes.astype(np.float64))
    r = _cli("decode", image, tmp_path / "c64.npy", "-o", tmp_path / "o.npy")
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), want)


def test_compress_uses_the_contract(model):
    assert compress(model, X[:, 0]) == compress(model, X)  # (N, H, W) == (N, 1, H, W)
    with pytest.raises(InputError, match="holds float values up to 255"):
        compress(model, X.astype(np.float32))
