"""runtime/codec.py: every refusal word for word (the API's and the manifest's), the record's
exact form, and the quantizer's edges (written from its mutation run, docs/testing.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeae.errors import BundleError, InputError
from edgeae.runtime.codec import MAX_BITS, MIN_BITS, LatentCodec


def _codec(bits: int = 2, d: int = 2, prec: int = 4) -> LatentCodec:
    row = [1 << (prec - bits)] * (1 << bits)
    return LatentCodec(bits=bits, lo=[0.0] * d, hi=[3.0] * d, freqs=[list(row) for _ in range(d)], precision=prec)


def _says(exc, fn, *args, **kw) -> str:
    with pytest.raises(exc) as err:
        fn(*args, **kw)
    return str(err.value)


def test_fit_refusals():
    x = np.zeros((4, 2), np.float32)
    assert _says(InputError, LatentCodec.fit, np.zeros((0, 2)), 4) == (
        "train_codes has no rows; fit the codec on at least one code")
    bad = x.copy()
    bad[3, 1] = np.inf
    assert _says(InputError, LatentCodec.fit, bad, 4) == "train_codes contains NaN or inf; fit on finite codes only"
    for bits in (MIN_BITS - 1, MAX_BITS + 1, 4.0):
        assert _says(InputError, LatentCodec.fit, x, bits) == (
            f"bits={bits!r} is not allowed; use an integer {MIN_BITS}..{MAX_BITS}")
    for clip in ("max", 50, -1, None):
        assert _says(InputError, LatentCodec.fit, x, 4, clip=clip) == (
            f"clip={clip!r} is not allowed; use 'auto', 'minmax' or 0 <= p < 50")
    assert _says(InputError, LatentCodec.fit, np.zeros(3), 4) == "codes have shape (3,); expected (N, D)"
    assert _says(InputError, LatentCodec.fit, np.zeros((2, 2), complex), 4) == (
        "codes have dtype complex128; expected floats")
    for bits in (MIN_BITS, MAX_BITS):
        assert LatentCodec.fit(np.arange(8.0).reshape(4, 2), bits).bits == bits
    assert LatentCodec.fit(np.arange(8, dtype=np.int64).reshape(4, 2), 2, clip=0).lo == [0.0, 1.0]


def test_fit_ranges():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 3))
    mm = LatentCodec.fit(x, 4, clip="minmax")
    assert mm.lo == pytest.approx(x.min(0).tolist()) and mm.hi == pytest.approx(x.max(0).tolist())
    p5 = LatentCodec.fit(x, 4, clip=5)
    assert p5.lo == pytest.approx(np.percentile(x, 5, axis=0).tolist())
    assert p5.hi == pytest.approx(np.percentile(x, 95, axis=0).tolist())
    fixed = LatentCodec.fit(x, 4, value_range=(-1, 2))
    assert fixed.lo == [-1.0] * 3 and fixed.hi == [2.0] * 3
    auto = LatentCodec.fit(x, 2)
    # auto: per dimension, the candidate with the least squared error, compared here with every candidate
    for d in range(3):
        errs = {}
        for p in (0.0, 0.01, 0.05, 0.1, 0.5, 1.0):
            c = LatentCodec.fit(x[:, d:d + 1], 2, clip=p)
            errs[p] = float(((c.dequantize(c.quantize(x[:, d:d + 1])) - x[:, d:d + 1]) ** 2).mean())
        best = min(errs, key=errs.get)
        assert auto.lo[d] == pytest.approx(np.percentile(x[:, d], best))
        assert best > 0  # on normal data at 2 bits, clipping beats min/max


def test_symbols_and_codes_refusals():
    c = _codec()
    assert _says(InputError, c.check_symbols, np.zeros((2, 3), int)) == (
        "symbols have shape (2, 3); expected (N, 2) for this codec")
    assert _says(InputError, c.check_symbols, np.zeros(2, int)) == (
        "symbols have shape (2,); expected (N, 2) for this codec")
    assert _says(InputError, c.check_symbols, np.zeros((1, 2), float)) == (
        "symbols have dtype float64; expected integers")
    assert _says(InputError, c.check_symbols, np.array([[0, 4]])) == (
        "symbols range 0..4 is outside 0..3 for bits=2; quantize the codes with this codec")
    assert _says(InputError, c.check_symbols, np.array([[-1, 3]])) == (
        "symbols range -1..3 is outside 0..3 for bits=2; quantize the codes with this codec")
    ok = c.check_symbols(np.array([[0, 3]], np.int64))
    assert ok.dtype == np.int32 and ok.tolist() == [[0, 3]]
    assert c.check_symbols(np.zeros((0, 2), np.uint8)).shape == (0, 2)
    assert _says(InputError, c.quantize, np.array([[0.0, np.nan]])) == (
        "codes contain NaN or inf; the encoder output must be finite")
    assert _says(InputError, c.quantize, np.zeros((1, 3))) == "codes have shape (1, 3); expected (N, 2)"


def test_quantizer_edges():
    c = LatentCodec(bits=2, lo=[0.0, 5.0], hi=[3.0, 5.0], freqs=[[4, 4, 4, 4]] * 2, precision=4)
    q = c.quantize(np.array([[-1.0, 9.0], [0.5, 5.0], [1.5, -9.0], [2.5, 5.0], [2.49, 5.0], [4.0, 5.0]]))
    assert q.dtype == np.int32
    assert q.tolist() == [[0, 0], [0, 0], [2, 0], [2, 0], [2, 0], [3, 0]]  # ties to even; a constant dim is 0
    back = c.dequantize(np.array([[0, 0], [1, 1], [3, 3]]))
    assert back.dtype == np.float32 and back.tolist() == [[0.0, 5.0], [1.0, 5.0], [3.0, 5.0]]
    assert c.code_size == 2 and c.levels == 4
    assert c.expected_bits_per_sample(np.zeros((0, 2))) == 0.0
    skew = LatentCodec(bits=2, lo=[0.0], hi=[3.0], freqs=[[8, 4, 2, 2]], precision=4)
    assert skew.expected_bits_per_sample(np.array([[0.0], [1.0], [3.0]])) == pytest.approx((1 + 2 + 3) / 3)
    assert skew.min_bits_per_sample() == pytest.approx(1.0)


def test_record_refusals_and_form():
    c = _codec()
    rec = c.to_dict()
    assert rec == {"format": "edgeae-latent-codec", "version": 1, "coder": "constriction.range.categorical",
                   "bits": 2, "precision": 4, "lo": [0.0, 0.0], "hi": [3.0, 3.0], "freqs": [[4, 4, 4, 4]] * 2}
    assert LatentCodec.from_dict(rec) == c
    assert _says(BundleError, LatentCodec.from_dict, [rec]) == "codec record is list; expected an object"
    assert _says(BundleError, LatentCodec.from_dict, {**rec, "version": 2}) == (
        "codec record format 'edgeae-latent-codec' version 2 is not supported; expected 'edgeae-latent-codec' "
        "version 1 (re-export the bundle with this edgeae version)")
    assert _says(BundleError, LatentCodec.from_dict, {**rec, "format": "x"}).startswith(
        "codec record format 'x' version 1 is not supported")
    short = {k: v for k, v in rec.items() if k not in ("bits", "freqs")}
    assert _says(BundleError, LatentCodec.from_dict, short) == (
        "codec record lacks ['bits', 'freqs']; re-export the bundle")
    for bad in ("", None, 7):
        assert _says(BundleError, c.model_id, bad) == f"decoder sha256 {bad!r} is not a hex digest string"
    assert c.model_id("AB" * 32) == c.model_id("ab" * 32) and len(c.model_id("ab" * 32)) == 8


@pytest.mark.parametrize(("fields", "message"), [
    ({"bits": 1}, f"codec bits=1 is not allowed; expected {MIN_BITS}..{MAX_BITS}"),
    ({"bits": True}, f"codec bits=True is not allowed; expected {MIN_BITS}..{MAX_BITS}"),
    ({"precision": 2}, "codec precision=2 is not allowed; expected 3..24"),
    ({"precision": 25}, "codec precision=25 is not allowed; expected 3..24"),
    ({"precision": False}, "codec precision=False is not allowed; expected 3..24"),
    ({"lo": 0.0}, "codec lo is not a list"),
    ({"hi": None}, "codec hi is not a list"),
    ({"freqs": "x"}, "codec freqs is not a list"),
    ({"lo": [], "hi": [], "freqs": []},
     "codec lo/hi/freqs have lengths 0/0/0; expected one equal, non-zero length (the code size)"),
    ({"hi": [3.0]}, "codec lo/hi/freqs have lengths 2/1/2; expected one equal, non-zero length (the code size)"),
    ({"freqs": [[1, 1, 1, 1]]},
     "codec lo/hi/freqs have lengths 2/2/1; expected one equal, non-zero length (the code size)"),
    ({"lo": [0.0, 4.0]}, "codec range of dim 1 is [4.0, 3.0]; expected lo <= hi within +-1e+30 (float32 codes)"),
    ({"lo": [0.0, float("nan")]},
     "codec range of dim 1 is [nan, 3.0]; expected lo <= hi within +-1e+30 (float32 codes)"),
    ({"hi": [2e30, 3.0]}, "codec range of dim 0 is [0.0, 2e+30]; expected lo <= hi within +-1e+30 (float32 codes)"),
    ({"lo": [True, 0.0]}, "codec range of dim 0 is [True, 3.0]; expected lo <= hi within +-1e+30 (float32 codes)"),
    ({"freqs": [[4, 4, 4, 4], [8, 8]]}, "codec freqs[1] is not a list of 4 integers (bits=2)"),
    ({"freqs": [[4, 4, 4, 4], 16]}, "codec freqs[1] is not a list of 4 integers (bits=2)"),
    ({"freqs": [[4, 4, 8, 0], [4, 4, 4, 4]]}, "codec freqs[0] has a non-integer or non-positive entry"),
    ({"freqs": [[4, 4, 4, 4.0], [4, 4, 4, 4]]}, "codec freqs[0] has a non-integer or non-positive entry"),
    ({"freqs": [[4, 4, 4, 4], [4, 4, 4, 5]]}, "codec freqs[1] sums to 17; expected 2**4 = 16"),
])
def test_table_refusals(fields, message):
    base = {"bits": 2, "lo": [0.0, 0.0], "hi": [3.0, 3.0], "freqs": [[4, 4, 4, 4], [4, 4, 4, 4]], "precision": 4}
    assert _says(BundleError, LatentCodec, **{**base, **fields}) == message


def test_table_limits_accepted():
    assert LatentCodec(bits=2, lo=[-1e30], hi=[1e30], freqs=[[1, 1, 1, 5]], precision=3).precision == 3
    assert LatentCodec(bits=2, lo=[-(10**30)], hi=[10**30], freqs=[[1 << 22] * 4], precision=24).code_size == 1
