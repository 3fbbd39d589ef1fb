"""The UCR/UEA .ts reader, windowing and per-channel normalization (edgeae.data.tsfile)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeae.data.tsfile import (
    MAX_HEADER_BYTES,
    fit_channel_normalization,
    parse_ts,
    read_ts,
    window_series,
)
from edgeae.errors import DataError
from edgeae.runtime.preprocess import Normalizer

TIMESERIES = Path(__file__).resolve().parents[1] / "build" / "timeseries"  # `make timeseries-data`
_NO_DATA = f"no UCR/UEA .ts files in {TIMESERIES}: run `make timeseries-data` (needs PyPI)"

HEAD = "# a comment\n@problemName Tiny\n@timeStamps false\n@univariate false\n@dimensions 2\n" \
       "@equalLength true\n@seriesLength 3\n@classLabel true up down\n@data\n"


def test_multivariate_cases_labels_and_comments():
    text = HEAD + "1,2,3:4,5,6:up\n% between cases\n\n-1,-2,-3.5e0:0,0,1:down\n"
    d = parse_ts(text)
    assert d.x.shape == (2, 2, 3) and d.x.dtype == np.float32
    np.testing.assert_array_equal(d.x[0], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(d.x[1, 0], [-1, -2, -3.5])
    assert d.labels.tolist() == [0, 1] and d.class_names == ("up", "down") and d.name == "Tiny"


def test_univariate_without_labels_and_regression_targets():
    d = parse_ts(b"@problemName U\n@classLabel false\n@data\n1,2\n3,4\n")
    assert d.x.shape == (2, 1, 2) and d.labels is None and d.targets is None
    d = parse_ts("@targetLabel true\n@data\n1,2:0.5\n3,4:-2\n")
    assert d.labels is None and d.targets.tolist() == [0.5, -2.0]


@pytest.mark.parametrize("body, message", [
    ("1,?,3:4,5,6:up\n", r"line 10, dimension 1: a missing value \('\?'\)"),
    ("1,2,3:4,x5,6:up\n", r"line 10, dimension 2: 'x5', not a number"),
    ("1,2,3:4,5:up\n", r"line 10, dimension 2: 2 values, but the series are 3 long"),
    ("1,2,3:up\n", r"line 10: 1 dimensions, but the file has 2"),
    ("1,2,3:4,5,6\n", r"line 10: 1 dimensions"),
    ("1,2,3:4,5,6:sideways\n", r"case 1 has class 'sideways'"),
    ("1,2,3:4,5,6:up\n1,nan,3:4,5,6:up\n", r"line 11: NaN, infinite"),
    ("1,2,3:4,5,1e39:up\n", r"line 10: NaN, infinite or out-of-float32-range"),
    ("", r"no cases after @data"),
])
def test_malformed_cases_name_the_line(body, message):
    with pytest.raises(DataError, match=message):
        parse_ts(HEAD + body, "f.ts")


@pytest.mark.parametrize("text, message", [
    ("", r"is empty"),
    ("\n  \n", r"is empty"),
    ("@problemName X\n1,2,3\n", r"line 2: expected a header tag"),
    ("@problemName X\n", r"no @data line"),
    ("@timeStamps true\n@data\n(1,2),(2,3)\n", r"@timeStamps true is not supported"),
    ("@timeStamps false\n@data\n(1,2),(2,3)\n", r"time-stamped values"),
    ("@dimensions 0\n@data\n1\n", r"@dimensions must be a positive integer"),
    ("@seriesLength 3\n@seriesLength 4\n@data\n1\n", r"appears twice, with different values"),
    ("@classLabel maybe\n@data\n1\n", r"@classlabel must be true or false"),
])
def test_malformed_headers(text, message):
    with pytest.raises(DataError, match=message):
        parse_ts(text, "f.ts")


def test_huge_header_refused_before_the_data(tmp_path):
    text = "# " + "x" * (MAX_HEADER_BYTES + 10) + "\n@data\n1,2\n"
    with pytest.raises(DataError, match="no @data line within the first"):
        parse_ts(text)


def test_binary_and_unreadable_files(tmp_path):
    p = tmp_path / "b.ts"
    p.write_bytes(b"@data\n1,2\n\xff\xfe\x00")
    with pytest.raises(DataError, match=r"line 3: not UTF-8"):
        read_ts(p)
    with pytest.raises(DataError, match="could not be read"):
        read_ts(tmp_path / "missing.ts")


def test_window_continuous_and_cases():
    t = np.arange(20, dtype=np.float32)
    cont = np.stack([t, 100 + t], axis=1)  # (T=20, C=2)
    w = window_series(cont, 8, 4)  # starts 0, 4, 8, 12
    assert w.shape == (4, 2, 8)
    np.testing.assert_array_equal(w[1, 0], np.arange(4, 12))
    np.testing.assert_array_equal(w[3, 1], 100 + np.arange(12, 20))
    cases = np.stack([cont.T, -cont.T])  # (N=2, C=2, T=20)
    w = window_series(cases, 10)  # hop = length: 2 windows per case, none across cases
    assert w.shape == (4, 2, 10)
    np.testing.assert_array_equal(w[2], -cont.T[:, :10])
    assert window_series(cont.astype(np.int16), 20).dtype == np.float32


@pytest.mark.parametrize("args, message", [
    ((np.zeros((5, 2)), 6), "hold no window of 6 steps"),
    ((np.zeros((5, 2)), 0), "window length must be a positive integer"),
    ((np.zeros((5, 2)), 2, 0), "window hop must be a positive integer"),
    ((np.zeros((5, 2)), 2.5), "window length"),
    ((np.zeros(5), 2), r"shape \(5,\)"),
    ((np.array([["a"]]), 1), "cannot window <U1"),
])
def test_window_refusals(args, message):
    with pytest.raises(DataError, match=message):
        window_series(*args)


def test_channel_normalization_fits_training_windows_only():
    rng = np.random.default_rng(0)
    w = np.stack([rng.normal(5, 2, (50, 16)), rng.normal(-1, 0.1, (50, 16)), np.full((50, 16), 3.0)], axis=1)
    norm = fit_channel_normalization(w.astype(np.float32))
    nz = Normalizer(norm, (3, 16))
    y = nz.normalize(w.astype(np.float32))
    np.testing.assert_allclose(y[:, :2].mean(axis=(0, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(y[:, :2].std(axis=(0, 2)), 1, atol=1e-3)
    np.testing.assert_allclose(y[:, 2], 0, atol=1e-6)  # a constant channel: centred, scale 1
    np.testing.assert_allclose(nz.denormalize(y), w, rtol=1e-5, atol=1e-5)
    with pytest.raises(DataError, match="NaN or infinite"):
        fit_channel_normalization(np.full((2, 1, 3), np.inf))
    with pytest.raises(DataError, match=r"windows \(N, C, T\)"):
        fit_channel_normalization(np.zeros((0, 1, 3)))


@pytest.mark.skipif(not (TIMESERIES / "BasicMotions").is_dir(), reason=_NO_DATA)
def test_real_files_from_the_aeon_wheel():
    d = read_ts(TIMESERIES / "BasicMotions" / "BasicMotions_TRAIN.ts")
    assert d.x.shape == (40, 6, 100) and sorted(set(d.labels.tolist())) == [0, 1, 2, 3]
    assert d.class_names == ("Standing", "Running", "Walking", "Badminton")
    assert np.isfinite(d.x).all() and d.x.std() > 0.1
    g = read_ts(TIMESERIES / "GunPoint" / "GunPoint_TEST.ts")
    assert g.x.shape == (150, 1, 150)
    with pytest.raises(DataError, match="equal-length series"):
        read_ts(TIMESERIES / "JapaneseVowels" / "JapaneseVowels_TRAIN.ts")
