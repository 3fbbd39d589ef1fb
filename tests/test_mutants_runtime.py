"""Direct tests of runtime/varint.py and runtime/preprocess.py, written from their mutation runs
(docs/testing.md, "Mutation testing"): every byte of the varint layout, every refusal with the
words a user reads, and the normalizer's float32 steps, copies and rounding.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from edgeae.errors import StreamError
from edgeae.runtime.preprocess import Normalizer
from edgeae.runtime.varint import MAX_VARINT_BYTES, get_varint, put_varint

# ------------------------------------------------------------------ varint


@pytest.mark.parametrize(("value", "data"), [
    (0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02"),
    (16383, b"\xff\x7f"), (16384, b"\x80\x80\x01"), (2**35 - 1, b"\xff\xff\xff\xff\x7f"),
])
def test_varint_bytes(value, data):
    assert put_varint(value) == data
    assert get_varint(b"\xaa" + data + b"\x55", 1, "x") == (value, 1 + len(data))  # read at an offset, stops at its end


def test_varint_round_trip():
    rng = np.random.default_rng(0)
    values = [int(v) for v in rng.integers(0, 2**35, 500)] + [2**k for k in range(35)] + [2**k - 1 for k in range(1, 36)]
    blob = b"".join(put_varint(v) for v in values)
    pos, got = 0, []
    while pos < len(blob):
        v, pos = get_varint(blob, pos, "value")
        got.append(v)
    assert got == values and pos == len(blob)
    assert MAX_VARINT_BYTES == 5


@pytest.mark.parametrize(("data", "pos", "message"), [
    (b"", 0, "stream truncated inside the code size at byte 0"),
    (b"\x05\x80", 1, "stream truncated inside the code size at byte 2"),
    (b"\x80\x80\x80", 0, "stream truncated inside the code size at byte 3"),
    (b"\x07\x80\x00", 1, "code size at byte 1 is not minimally encoded; stream corrupt"),
    (b"\xff\x80\x80\x00", 0, "code size at byte 0 is not minimally encoded; stream corrupt"),
    (b"\x01\xff\xff\xff\xff\x7f", 1, None),  # five bytes: the largest accepted
    (b"\xff\xff\xff\xff\xff\x01", 0, "code size at byte 0 is longer than 5 bytes; corrupt"),
    (b"\x00\x80\x80\x80\x80\x80\x01", 1, "code size at byte 1 is longer than 5 bytes; corrupt"),
])
def test_varint_refusals_say_where(data, pos, message):
    if message is None:
        assert get_varint(data, pos, "code size") == (2**35 - 1, 6)
        return
    with pytest.raises(StreamError) as err:
        get_varint(data, pos, "code size")
    assert str(err.value) == message


def test_a_zero_byte_alone_is_zero():
    assert get_varint(b"\x00", 0, "n") == (0, 1)
    assert get_varint(b"\x01\x00", 1, "n") == (0, 2)


# ------------------------------------------------------------------ preprocess


def _record(mode, raw_dtype, offset, scale):
    return {"mode": mode, "raw_dtype": raw_dtype, "offset": offset, "scale": scale}


def test_scale255_uint8_pixels():
    n = Normalizer(_record("scale255", "uint8", [0.0], [255.0]), (1, 2, 2))
    assert n.mode == "scale255" and n.raw_dtype == np.uint8 and n.sample_shape == (1, 2, 2)
    assert not n.is_identity and not n.has_offset and n.offset.shape == () and n.scale.shape == ()
    assert n.inv_scale.dtype == np.float32 and n.inv_scale == np.float32(1) / np.float32(255)
    raw = np.array([[[[0, 1], [128, 255]]]], np.uint8)
    x = n.normalize(raw)
    assert x.dtype == np.float32 and x.shape == raw.shape
    np.testing.assert_array_equal(x, raw.astype(np.float32) * (np.float32(1) / np.float32(255)))
    back = n.denormalize(x)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, raw)


def test_uint8_output_rounds_half_to_even_and_clips():
    n = Normalizer(_record("identity", "uint8", [0.0], [1.0]), (6,))
    x = np.array([[-3.0, 0.5, 1.5, 2.5, 254.6, 300.0]], np.float32)
    kept = x.copy()
    got = n.denormalize(x)
    np.testing.assert_array_equal(got, np.array([[0, 0, 2, 2, 255, 255]], np.uint8))
    np.testing.assert_array_equal(x, kept)  # the caller's array is not rounded in place
    assert got.dtype == np.uint8


def test_standardize_per_feature():
    off, sc = [1.0, -2.0, 0.5], [2.0, 4.0, 0.25]
    n = Normalizer(_record("standardize", "float32", off, sc), (3,))
    assert n.offset.shape == (3,) and n.scale.shape == (3,) and n.has_offset and not n.is_identity
    raw = np.array([[3.0, 2.0, 1.0], [1.0, -2.0, 0.5]], np.float32)
    kept = raw.copy()
    x = n.normalize(raw)
    want = (raw - np.float32(off)) * (np.float32(1) / np.asarray(sc, np.float32))
    np.testing.assert_array_equal(x, want)
    np.testing.assert_array_equal(x, [[1.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(raw, kept)  # normalize works on a fresh array
    y = n.denormalize(x)
    np.testing.assert_array_equal(y, x * np.asarray(sc, np.float32) + np.asarray(off, np.float32))
    np.testing.assert_array_equal(x, [[1.0, 1.0, 2.0], [0.0, 0.0, 0.0]])  # denormalize did not touch x
    assert y.dtype == np.float32


def test_per_pixel_record_takes_the_sample_shape_and_attributes():
    shape = (1, 2, 3)
    rec = SimpleNamespace(mode="standardize", raw_dtype="float32", offset=list(range(6)), scale=[2.0] * 6)
    n = Normalizer(rec, shape)
    assert n.offset.shape == shape and n.scale.shape == shape and n.offset.dtype == np.float32
    raw = np.arange(12, dtype=np.float32).reshape(2, *shape)
    np.testing.assert_array_equal(n.normalize(raw), (raw - np.arange(6, dtype=np.float32).reshape(shape)) / 2)


def test_identity_costs_no_copy_and_scale_only_has_no_offset():
    ident = Normalizer(_record("scale255", "float32", [0.0], [1.0]), (4,))
    assert ident.is_identity
    x = np.ones((2, 4), np.float32)
    assert ident.normalize(x) is x and ident.denormalize(x) is x
    f64 = ident.normalize(np.ones((1, 4)))
    assert f64.dtype == np.float32
    named = Normalizer(_record("identity", "float32", [3.0], [7.0]), (4,))
    assert named.is_identity and named.normalize(x) is x
    offset_only = Normalizer(_record("standardize", "float32", [1.0], [1.0]), (2,))
    scale_only = Normalizer(_record("standardize", "float32", [0.0], [2.0]), (2,))
    assert not offset_only.is_identity and not scale_only.is_identity
    assert offset_only.has_offset and not scale_only.has_offset
    np.testing.assert_array_equal(offset_only.normalize(np.array([[1.0, 3.0]], np.float32)), [[0.0, 2.0]])
    np.testing.assert_array_equal(offset_only.denormalize(np.array([[0.0, 2.0]], np.float32)), [[1.0, 3.0]])
    np.testing.assert_array_equal(scale_only.normalize(np.array([[1.0, 3.0]], np.float32)), [[0.5, 1.5]])
    np.testing.assert_array_equal(scale_only.denormalize(np.array([[0.5, 1.5]], np.float32)), [[1.0, 3.0]])


def test_denormalize_gives_float32_for_any_float_input():
    """Decoder outputs arrive as float32, but an API caller may pass float64 codes' reconstructions."""
    for rec in (_record("identity", "float32", [0.0], [1.0]), _record("standardize", "float32", [1.0], [2.0])):
        n = Normalizer(rec, (3,))
        y = n.denormalize(np.array([[0.25, 0.5, 1.0]], np.float64))
        assert y.dtype == np.float32
