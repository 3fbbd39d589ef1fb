"""The .eae container: round trips, budget, appends, golden bytes, corruption fuzzing."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeae.errors import InputError, StreamError
from edgeae.runtime import stream as S
from edgeae.runtime.codec import LatentCodec
from tests._streams import SHA
from tests._streams import codes as _codes

GOLDEN = Path(__file__).parent / "golden"

@pytest.fixture(scope="module")
def codec() -> LatentCodec:
    return LatentCodec.fit(_codes(2000), 6)


@pytest.fixture(scope="module")
def mid(codec) -> bytes:
    return codec.model_id(SHA)


@pytest.fixture(scope="module")
def valid(codec, mid) -> bytes:
    """A two-chunk stream (one compress + one append), small enough to flip every bit."""
    data = S.compress_codes(codec, mid, _codes(5, seed=1))
    return data + S.append_codes(codec, mid, data, _codes(3, seed=2))


@pytest.mark.parametrize("n", [0, 1, 2, 7, 300])
def test_round_trip_equals_quantize_dequantize(codec, mid, n):
    c = _codes(n, seed=3)
    data = S.compress_codes(codec, mid, c)
    out = S.decompress_codes(codec, mid, data)
    np.testing.assert_array_equal(out, codec.dequantize(codec.quantize(c)))
    assert out.shape == (n, 16) and out.dtype == np.float32
    np.testing.assert_array_equal(S.decompress_symbols(codec, mid, data), codec.quantize(c))


def test_integer_input_is_taken_as_symbols(codec, mid):
    q = codec.quantize(_codes(4))
    assert S.compress_codes(codec, mid, q) == S.compress_codes(codec, mid, _codes(4))
    with pytest.raises(InputError, match="outside 0..63"):
        S.compress_codes(codec, mid, q + 64)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("n", [1, 2, 10, 1000])
def test_overhead_budget(bits, n):
    """At most 16 bytes per stream plus 2 bytes per sample beyond the coded payload."""
    codec = LatentCodec.fit(_codes(2000), bits)
    data = S.compress_codes(codec, codec.model_id(SHA), _codes(n, seed=4))
    info = S.read_header(data)
    assert info.samples == n and info.chunks == 1 and info.size == len(data)
    assert len(data) - info.payload_bytes <= 16 + 2 * n
    # the payload itself stays close to the tables' cross-entropy estimate
    ideal = codec.expected_bits_per_sample(_codes(n, seed=4)) * n / 8
    assert info.payload_bytes <= ideal + 8


def test_large_input_splits_into_chunks(codec, mid):
    n = S.MAX_CHUNK_SYMBOLS // 16 + 5
    c = _codes(n, seed=5)
    data = S.compress_codes(codec, mid, c)
    info = S.read_header(data)
    assert info.chunks == 2 and info.samples == n
    np.testing.assert_array_equal(S.decompress_symbols(codec, mid, data), codec.quantize(c))


def test_append_bytes_and_file(codec, mid, tmp_path):
    a, b = _codes(4, seed=6), _codes(9, seed=7)
    first = S.compress_codes(codec, mid, a)
    both = first + S.append_codes(codec, mid, first, b)
    want = codec.quantize(np.concatenate([a, b]))
    np.testing.assert_array_equal(S.decompress_symbols(codec, mid, both), want)
    path = tmp_path / "x.eae"
    S.append_file(codec, mid, path, a)  # creates
    info = S.append_file(codec, mid, path, b)
    assert path.read_bytes() == both  # earlier bytes untouched, same bytes as in memory
    assert (info.samples, info.chunks, info.size) == (13, 2, len(both))


def test_append_refuses_other_model_and_damaged_file(codec, mid, tmp_path):
    other = LatentCodec.fit(_codes(100), 4)
    path = tmp_path / "x.eae"
    path.write_bytes(S.compress_codes(other, other.model_id(SHA), _codes(2)))
    with pytest.raises(StreamError, match="not this model"):
        S.append_file(codec, mid, path, _codes(1))
    path.write_bytes(S.compress_codes(codec, mid, _codes(3))[:-1])
    with pytest.raises(StreamError, match="truncated"):
        S.append_file(codec, mid, path, _codes(1))


def test_read_header_reports(valid, mid):
    info = S.read_header(valid)
    assert info.version == S.VERSION and info.model_id == mid and info.code_size == 16
    assert (info.samples, info.chunks, info.header_size) == (8, 2, 12)


def test_wrong_model_is_refused(codec, valid):
    with pytest.raises(StreamError, match="not this model"):
        S.decompress_codes(codec, codec.model_id("f" * 64), valid)
    other = LatentCodec.fit(_codes(2000), 5)
    with pytest.raises(StreamError, match="not this model"):
        S.decompress_codes(other, other.model_id(SHA), valid)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "empty"),
        (b"E", "truncated"),
        (b"PK\x03\x04", "not the .eae magic"),
        (b"EA\x07" + bytes(9), "version 7"),
        (b"EA\x01" + bytes(5), "truncated"),
    ],
)
def test_bad_headers(codec, mid, data, match):
    with pytest.raises(StreamError, match=match):
        S.decompress_codes(codec, mid, data)


def _forge(codec, mid, n: int, payload: bytes) -> bytes:
    """A structurally valid stream with correct CRCs claiming ``n`` samples."""
    header = S._header(mid, codec.code_size)
    body = S.put_varint(n) + S.put_varint(len(payload)) + payload
    return header + body + zlib.crc32(body, zlib.crc32(header)).to_bytes(4, "little")


def test_absurd_counts_refused_before_allocating(codec, mid):
    with pytest.raises(StreamError, match="claims"):
        S.decompress_codes(codec, mid, _forge(codec, mid, 2**34, b"\x00" * 4))
    with pytest.raises(StreamError, match="more than the codec can fit"):
        S.decompress_codes(codec, mid, _forge(codec, mid, 10_000, b"\x00" * 4))
    header = S._header(mid, codec.code_size)
    huge_len = header + S.put_varint(1) + S.put_varint(2**34)
    with pytest.raises(StreamError, match="remain"):
        S.decompress_codes(codec, mid, huge_len + b"\x00" * 8)
    with pytest.raises(StreamError, match="not minimally encoded"):
        S.read_header(header + b"\x81\x00")
    with pytest.raises(StreamError, match="longer than"):
        S.read_header(header + b"\xff" * 6)


def test_every_single_bit_flip_is_detected(codec, mid, valid):
    """No byte of a stream is unchecked, so every flip must raise StreamError."""
    for i in range(len(valid)):
        for bit in range(8):
            bad = bytearray(valid)
            bad[i] ^= 1 << bit
            with pytest.raises(StreamError):
                S.decompress_codes(codec, mid, bytes(bad))


def test_every_truncation_is_detected(codec, mid, valid):
    first_chunk_end = len(S.compress_codes(codec, mid, _codes(5, seed=1)))
    boundaries = {12: 0, first_chunk_end: 5}  # header end, first chunk end
    for k in range(len(valid)):
        if k in boundaries:  # a cut at a chunk boundary leaves a valid, shorter stream
            assert S.read_header(valid[:k]).samples == boundaries[k]
            continue
        with pytest.raises(StreamError):
            S.decompress_codes(codec, mid, valid[:k])


_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(codec, mid, data):
    for blob in (data, S.MAGIC + bytes([S.VERSION]) + mid + data):
        try:
            out = S.decompress_codes(codec, mid, blob)
        except StreamError:
            continue
        assert out.shape[1] == 16  # only a genuinely valid stream may decode


@_FUZZ
@given(st.binary(min_size=0, max_size=64), st.integers(1, 200))
def test_fuzz_garbage_payload_with_valid_crc(codec, mid, payload, n):
    """Forged CRCs reach the range decoder: it must decode or raise StreamError, never crash."""
    try:
        out = S.decompress_symbols(codec, mid, _forge(codec, mid, n, payload))
    except StreamError:
        return
    assert out.shape == (n, 16) and out.min() >= 0 and out.max() < 64


@_FUZZ
@given(st.data())
def test_fuzz_multi_byte_corruption(codec, mid, valid, data):
    bad = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(bad) - 1))
        bad[i] = data.draw(st.integers(0, 255))
    if bytes(bad) == valid:
        return
    with pytest.raises(StreamError):
        S.decompress_codes(codec, mid, bytes(bad))


# ---------------------------------------------------------------- golden bytes
def test_golden_bytes():
    """Same tables + same codes -> the same bytes on every machine and every run.

    Regenerate (only after an intended format change) with EDGEAE_REGEN_GOLDEN=1.
    """
    codes_path, codec_path = GOLDEN / "codes_v1.npy", GOLDEN / "codec_v1.json"
    eae_path = GOLDEN / "stream_v1.eae"
    if os.environ.get("EDGEAE_REGEN_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        train = _codes(3000, d=8, seed=10)
        np.save(codes_path, _codes(40, d=8, seed=11))
        codec_path.write_text(json.dumps(LatentCodec.fit(train, 5).to_dict(), indent=1))
        gc = LatentCodec.from_dict(json.loads(codec_path.read_text()))
        first = S.compress_codes(gc, gc.model_id(SHA), np.load(codes_path)[:30])
        rest = S.append_codes(gc, gc.model_id(SHA), first, np.load(codes_path)[30:])
        eae_path.write_bytes(first + rest)
    codec = LatentCodec.from_dict(json.loads(codec_path.read_text()))
    codes = np.load(codes_path)
    mid = codec.model_id(SHA)
    golden = eae_path.read_bytes()
    first = S.compress_codes(codec, mid, codes[:30])
    assert first + S.append_codes(codec, mid, first, codes[30:]) == golden
    np.testing.assert_array_equal(
        S.decompress_codes(codec, mid, golden), codec.dequantize(codec.quantize(codes))
    )
    assert mid.hex() == golden[3:11].hex()
