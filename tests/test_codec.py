"""LatentCodec: quantization, tables, validation, model ids."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeae.errors import BundleError, InputError
from edgeae.runtime.codec import LatentCodec


@pytest.fixture(scope="module")
def codes() -> np.ndarray:
    rng = np.random.default_rng(0)
    c = rng.laplace(size=(500, 6)).astype(np.float32) * np.array([1, 2, 3, 0.5, 4, 1], "f4")
    c[:, 5] = 0.25  # a constant dimension
    return c


@pytest.mark.parametrize("bits", [2, 4, 6, 8])
def test_quantize_formula_and_bin_centres(codes, bits):
    codec = LatentCodec.fit(codes, bits, clip="minmax")
    q = codec.quantize(codes)
    L = 2**bits
    assert q.dtype == np.int32 and q.min() >= 0 and q.max() <= L - 1
    lo, hi = np.array(codec.lo), np.array(codec.hi)
    step = np.where(hi > lo, (hi - lo) / (L - 1), 0)
    expect = np.where(step > 0, np.rint((codes - lo) / np.where(step > 0, step, 1)), 0)
    np.testing.assert_array_equal(q, np.clip(expect, 0, L - 1))
    rec = codec.dequantize(q)
    assert rec.dtype == np.float32
    # min/max ranges: every code is within half a step of its reconstruction
    assert np.all(np.abs(rec - codes) <= step / 2 + 1e-5)
    np.testing.assert_array_equal(rec[:, 5], np.float32(0.25))  # constant dim exact


def test_values_outside_range_clip(codes):
    codec = LatentCodec.fit(codes, 4)
    q = codec.quantize(np.array([[1e9] * 6, [-1e9] * 6], dtype=np.float32))
    assert q[0, :5].tolist() == [15] * 5 and q[1].tolist() == [0] * 6


def test_finer_bits_lower_error(codes):
    errs = []
    for bits in (2, 4, 6, 8):
        codec = LatentCodec.fit(codes, bits)
        errs.append(float(np.mean((codec.dequantize(codec.quantize(codes)) - codes) ** 2)))
    assert errs == sorted(errs, reverse=True) and errs[-1] < errs[0] / 100


def test_auto_clip_never_worse_than_minmax(codes):
    for bits in (2, 4, 8):
        mse = {}
        for clip in ("minmax", "auto"):
            c = LatentCodec.fit(codes, bits, clip=clip)
            mse[clip] = float(np.mean((c.dequantize(c.quantize(codes)) - codes) ** 2))
        assert mse["auto"] <= mse["minmax"] + 1e-12


def test_tables_are_integer_smoothed_and_exact(codes):
    codec = LatentCodec.fit(codes, 4, precision=12)
    for row in codec.freqs:
        assert len(row) == 16 and sum(row) == 4096 and min(row) >= 1
        assert all(type(v) is int for v in row)
    # the constant dim puts almost all mass on symbol 0
    assert codec.freqs[5][0] == 4096 - 15
    # cross-entropy is a proper estimate: >= the empirical entropy of the symbols
    q = codec.quantize(codes)
    ent = 0.0
    for d in range(6):
        p = np.bincount(q[:, d], minlength=16) / len(q)
        ent -= float((p[p > 0] * np.log2(p[p > 0])).sum())
    bps = codec.expected_bits_per_sample(codes)
    assert ent <= bps < ent + 1.0


def test_dict_round_trip_is_json_and_identical(codes):
    codec = LatentCodec.fit(codes, 6)
    rec = json.loads(json.dumps(codec.to_dict()))
    back = LatentCodec.from_dict(rec)
    assert back == codec
    np.testing.assert_array_equal(back.quantize(codes), codec.quantize(codes))


def test_model_id_depends_on_decoder_and_tables(codes):
    a = LatentCodec.fit(codes, 6)
    b = LatentCodec.fit(codes, 4)
    sha1, sha2 = "a" * 64, "b" * 64
    assert len(a.model_id(sha1)) == 8
    assert a.model_id(sha1) == LatentCodec.from_dict(a.to_dict()).model_id(sha1)
    assert a.model_id(sha1) != a.model_id(sha2)
    assert a.model_id(sha1) != b.model_id(sha1)


def _bad(rec, **change):
    out = json.loads(json.dumps(rec))
    out.update(change)
    return out


@pytest.mark.parametrize(
    "change, match",
    [
        ({"bits": 9}, "bits=9"),
        ({"bits": 1}, "bits=1"),
        ({"precision": 40}, "precision=40"),
        ({"lo": [0.0]}, "lengths"),
        ({"hi": [float("nan")] * 3}, "dim 0"),
        ({"freqs": [[1] * 16] * 3}, "sums to 16"),
        ({"freqs": "x"}, "not a list"),
        ({"format": "other"}, "not supported"),
        ({"version": 99}, "not supported"),
    ],
)
def test_bad_tables_raise_bundle_error(change, match):
    rec = LatentCodec.fit(np.arange(30, dtype="f4").reshape(10, 3), 4).to_dict()
    with pytest.raises(BundleError, match=match):
        LatentCodec.from_dict(_bad(rec, **change))


def test_bad_tables_zero_or_float_freq():
    rec = LatentCodec.fit(np.arange(30, dtype="f4").reshape(10, 3), 2, precision=4).to_dict()
    for row in ([0, 8, 4, 4], [4.0, 4, 4, 4]):
        bad = json.loads(json.dumps(rec))
        bad["freqs"][1] = row
        with pytest.raises(BundleError, match=r"freqs\[1\]"):
            LatentCodec.from_dict(bad)
    with pytest.raises(BundleError, match="lacks"):
        LatentCodec.from_dict({"format": rec["format"], "version": rec["version"]})
    with pytest.raises(BundleError, match="expected an object"):
        LatentCodec.from_dict([1, 2])


def test_bad_inputs_raise_input_error(codes):
    codec = LatentCodec.fit(codes, 4)
    with pytest.raises(InputError, match=r"expected \(N, 6\)"):
        codec.quantize(codes[:, :3])
    with pytest.raises(InputError, match="NaN"):
        codec.quantize(np.full((1, 6), np.nan))
    with pytest.raises(InputError, match="outside 0..15"):
        codec.dequantize(np.full((1, 6), 16))
    with pytest.raises(InputError, match="bits=1"):
        LatentCodec.fit(codes, 1)
    with pytest.raises(InputError, match="no rows"):
        LatentCodec.fit(codes[:0], 4)
    with pytest.raises(InputError, match="clip="):
        LatentCodec.fit(codes, 4, clip="median")
