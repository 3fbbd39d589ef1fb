"""Checks of the stream container and the codec tables that plausible one-line bugs would break.

Written for mutants that survived tests/test_stream.py and tests/test_codec.py (see
docs/testing.md): chunk framing bounds, the shortest payload the writer keeps, bytes past a
payload's end, the largest-remainder tables, and every rule a codec record from a manifest
must pass.
"""

from __future__ import annotations

import math
import zlib
from fractions import Fraction

import numpy as np
import pytest

from edgeae.errors import BundleError, InputError, StreamError
from edgeae.runtime import stream as S
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.varint import get_varint

SHA = "0123456789abcdef" * 4  # a stand-in decoder digest


@pytest.fixture(scope="module")
def codec8() -> LatentCodec:
    return LatentCodec.fit(np.random.default_rng(0).standard_normal((500, 16)), 8)

# ------------------------------------------------------------------ stream framing
def _forge(model_id: bytes, code_size: int, chunks: list[tuple[int, bytes]]) -> bytes:
    """A stream as docs/FORMAT.md lays it out, with valid CRCs, whatever the chunks claim."""
    header = S.MAGIC + bytes([S.VERSION]) + model_id + S.put_varint(code_size)
    out, seed = bytearray(header), zlib.crc32(header)
    for n, payload in chunks:
        body = S.put_varint(n) + S.put_varint(len(payload)) + payload
        out += body + zlib.crc32(body, seed).to_bytes(4, "little")
    return bytes(out)


@pytest.mark.parametrize("code_size", [1, 3, 16, S.MAX_CHUNK_SYMBOLS + 1])
def test_chunk_sample_count_bounds(code_size):
    mid = bytes(range(8))
    most = max(1, S.MAX_CHUNK_SYMBOLS // code_size)
    assert S.read_header(_forge(mid, code_size, [(most, b"\1\2")])).samples == most
    for n in (0, most + 1):
        with pytest.raises(StreamError):
            S.read_header(_forge(mid, code_size, [(n, b"\1\2")]))
    with pytest.raises(StreamError):  # code size 0 is refused, not divided by
        S.read_header(_forge(mid, 0, []))
    with pytest.raises(StreamError):  # a payload length past the end
        S.read_header(_forge(mid, code_size, [(1, b"\1\2")])[:-1])


def test_stream_model_id_and_zero_varint(codec8):
    mid = codec8.model_id(SHA)
    stream = S.compress_codes(codec8, mid, np.zeros((3, 16)))
    assert S.stream_model_id(stream) == mid and S.stream_model_id(stream[: S.read_header(stream).header_size]) == mid
    assert get_varint(b"\0", 0, "x") == (0, 1) and get_varint(b"\5\0", 1, "x") == (0, 2)  # zero is one 0 byte
    with pytest.raises(StreamError):
        get_varint(b"\x80\0", 0, "x")  # ... and never a padded 0x80 0x00


def test_model_id_must_be_eight_bytes(codec8):
    for bad in ("abcdefgh", bytearray(8), b"1234567", b"123456789"):
        with pytest.raises(InputError):
            S.compress_codes(codec8, bad, np.zeros((1, 16)))


def test_undecodable_payload_and_interrupts(codec8, monkeypatch):
    """constriction's errors become StreamError; a Rust panic too; Ctrl-C stays Ctrl-C."""
    mid = codec8.model_id(SHA)
    c1 = LatentCodec.fit(np.random.default_rng(3).standard_normal((500, 1)), 6)
    forged = _forge(c1.model_id(SHA), 1, [(1, bytes.fromhex("ffffffff000000ff"))])  # quantile 2^24
    with pytest.raises(StreamError):
        S.decompress_symbols(c1, c1.model_id(SHA), forged)
    good = S.compress_codes(codec8, mid, np.zeros((2, 16)))
    import constriction

    class PanicException(BaseException):  # what a Rust panic inside constriction raises
        pass

    for exc, want in ((PanicException("boom"), StreamError), (KeyboardInterrupt(), KeyboardInterrupt),
                      (SystemExit(3), SystemExit)):
        class Decoder:
            def __init__(self, words, exc=exc):
                self.exc = exc

            def decode(self, *args):
                raise self.exc

        monkeypatch.setattr(constriction.stream.queue, "RangeDecoder", Decoder)
        with pytest.raises(want):
            S.decompress_symbols(codec8, mid, good)


def test_sample_budget_boundary(codec8):
    """A chunk may claim up to (8 * payload bytes + 128) / (min bits / 2) samples, no more."""
    mid = codec8.model_id(SHA)
    per = codec8.min_bits_per_sample() / 2
    for length in (4, 40):
        payload = bytes(range(length))
        most = math.floor((8 * length + 128) / per)
        for n, refused in ((most, False), (most + 1, True)):
            try:
                S.decompress_symbols(codec8, mid, _forge(mid, 16, [(n, payload)]))
                budget_error = False
            except StreamError as exc:
                budget_error = "can fit" in str(exc)
            assert budget_error == refused, (length, n)


def _payloads(stream: bytes) -> list[tuple[int, bytes]]:
    """(samples, payload) of each chunk, read from the framing of docs/FORMAT.md."""
    pos, out = S.read_header(stream).header_size, []
    while pos < len(stream):
        n, pos = get_varint(stream, pos, "count")
        length, pos = get_varint(stream, pos, "length")
        out.append((n, stream[pos : pos + length]))
        pos += length + 4
    return out


def _decodes(codec: LatentCodec, mid: bytes, n: int, payload: bytes, q: np.ndarray) -> bool:
    try:
        return np.array_equal(S.decompress_symbols(codec, mid, _forge(mid, codec.code_size, [(n, payload)])), q)
    except StreamError:
        return False


def test_payloads_are_the_shortest_that_decode():
    """The writer keeps the shortest payload, among constriction's words less up to 7 tail bytes
    (the last kept byte rounded up first, then as is), that decodes back: nothing shorter
    decodes, and at the kept length the rounded-up candidate is preferred. Small random
    inputs (fixed seed) reach both kinds of trim: a whole zero word, and a rounded-up byte."""
    import constriction

    rng = np.random.default_rng(5)
    codec = LatentCodec.fit(rng.standard_normal((800, 2)) * [3, 0.3], 4)
    mid = codec.model_id(SHA)
    trims = set()
    for _ in range(300):
        n = int(rng.integers(1, 6))
        q = codec.quantize(rng.standard_normal((n, 2)) * [3, 0.3])
        [(got_n, payload)] = _payloads(S.compress_codes(codec, mid, q))
        assert got_n == n and _decodes(codec, mid, n, payload, q)
        enc = constriction.stream.queue.RangeEncoder()
        for d, model in enumerate(codec.entropy_models()):
            enc.encode(np.ascontiguousarray(q[:, d]), model)
        full = enc.get_compressed().astype("<u4").tobytes()
        k = len(payload)
        bumped = payload != full[:k]
        assert len(full) - 7 <= k <= len(full)
        assert not bumped or (payload[:-1] == full[: k - 1] and payload[-1] == full[k - 1] + 1)
        trims.add((len(full) - k, bumped))
        for m in range(max(len(full) - 7, 1), k + 1):
            head = full[:m]
            up = head[:-1] + bytes([head[-1] + 1]) if head[-1] != 0xFF else None
            assert m == k or not _decodes(codec, mid, n, head, q)  # nothing shorter decodes
            if up is not None and m < len(full) and not (m == k and bumped):  # untrimmed words stay as they are
                assert not _decodes(codec, mid, n, up, q)
    assert {(0, False), (4, False), (1, True)} <= trims  # every kind of trim was reached


def test_bytes_past_the_end_read_as_zeros():
    """docs/FORMAT.md: the decoder reads zeros past a payload's end, so explicit zero bytes at
    the end change nothing (that is what lets the writer drop them)."""
    rng = np.random.default_rng(8)
    codec = LatentCodec.fit(rng.standard_normal((800, 2)) * [3, 0.3], 4)
    mid = codec.model_id(SHA)
    differ = 0
    for _ in range(150):
        n = int(rng.integers(1, 12))
        payload = rng.integers(0, 256, int(rng.integers(1, 13))).astype(np.uint8).tobytes()
        verdicts = []
        for tail in (b"", b"\0", b"\0" * 4, b"\0" * 9):
            try:
                verdicts.append(S.decompress_symbols(codec, mid, _forge(mid, 2, [(n, payload + tail)])).tolist())
            except StreamError:
                verdicts.append(None)
        assert all(v == verdicts[0] for v in verdicts), (n, payload.hex())
        differ += verdicts[0] is not None
    assert differ >= 20  # most random payloads decode to something: the comparison has content


# ------------------------------------------------------------------ codec frequency tables
def _largest_remainder(counts: list[int], precision: int) -> list[int]:
    """Independent statement of the rule: 1 each, the rest in proportion by largest remainder,
    ties to the lower symbol index (exact fractions)."""
    spare, n = (1 << precision) - len(counts), sum(counts)
    shares = [Fraction(c * spare, n) for c in counts]
    base = [math.floor(s) for s in shares]
    order = sorted(range(len(counts)), key=lambda i: (-(shares[i] - base[i]), i))
    for i in order[: spare - sum(base)]:
        base[i] += 1
    return [b + 1 for b in base]


def _fit_counts(counts: list[int], bits: int, precision: int = 16) -> list[int]:
    """Fit a one-dimension codec on codes at the bin centres with these symbol counts."""
    top = (1 << bits) - 1
    codes = np.repeat(np.arange(len(counts), dtype=np.float64) / top, counts)[:, None]
    return LatentCodec.fit(codes, bits, value_range=(0.0, 1.0), precision=precision).freqs[0]


def test_fitted_frequencies_follow_largest_remainder():
    # 5 equal remainders, 3 units left: the lower indices win the ties
    assert _fit_counts([1, 1, 1, 1, 1, 0, 0, 0], 3) == [13107, 13107, 13107, 13106, 13106, 1, 1, 1]
    # remainders 1/5 and 4/5, one unit left: the larger remainder wins although its index is higher
    assert _fit_counts([2, 3, 0, 0, 0, 0, 0, 0], 3) == [26212, 39318, 1, 1, 1, 1, 1, 1]
    rng = np.random.default_rng(11)
    for bits, precision in ((2, 12), (3, 16), (5, 16), (8, 20)):
        for _ in range(6):
            counts = rng.integers(0, 40, 1 << bits) * rng.integers(0, 2, 1 << bits)
            counts[rng.integers(0, 1 << bits)] += 1  # at least one sample
            got = _fit_counts(counts.tolist(), bits, precision)
            assert got == _largest_remainder(counts.tolist(), precision)
            assert sum(got) == 1 << precision and min(got) >= 1


def _table(bits: int = 2, precision: int = 4, d: int = 2) -> dict:
    n = 1 << bits
    row = [(1 << precision) // n] * n
    return {"format": "edgeae-latent-codec", "version": 1, "bits": bits, "precision": precision,
            "lo": [0.0] * d, "hi": [1.0] * d, "freqs": [list(row) for _ in range(d)]}


def _bad_tables():
    """(name, record) pairs that are each wrong in one field."""
    t = _table
    yield "bits bool", {**t(), "bits": True}
    yield "bits 9", {**t(9, 12), "bits": 9}
    yield "bits 1", {**t(1, 4), "bits": 1}
    yield "precision == bits", t(2, 2)
    yield "precision 25", t(2, 25)
    yield "precision bool", {**t(), "precision": True}
    yield "no dims", {**t(), "lo": [], "hi": [], "freqs": []}
    yield "hi short", {**t(), "hi": [1.0]}
    yield "freqs short", {**t(), "freqs": t()["freqs"][:1]}
    yield "lo bool", {**t(), "lo": [False, 0.0]}
    yield "hi str", {**t(), "hi": [1.0, "1"]}
    yield "lo > hi", {**t(), "lo": [0.0, 2.0]}
    yield "lo nan", {**t(), "lo": [float("nan"), 0.0]}
    yield "hi inf", {**t(), "hi": [1.0, float("inf")]}
    yield "row not a list", {**t(), "freqs": [t()["freqs"][0], 7]}
    yield "row short", {**t(), "freqs": [t()["freqs"][0], [8, 8]]}
    yield "zero entry", {**t(), "freqs": [t()["freqs"][0], [0, 8, 4, 4]]}
    yield "bool entry", {**t(), "freqs": [t()["freqs"][0], [True, 7, 4, 4]]}
    yield "sum", {**t(), "freqs": [t()["freqs"][0], [4, 4, 4, 5]]}


def test_codec_tables_from_manifests_are_checked():
    for edge in (_table(2, 3), _table(2, 24), _table(8, 24), _table(2, 4, d=1)):
        if edge["precision"] == 24:
            n = 1 << edge["bits"]
            edge["freqs"] = [[(1 << 24) // n] * n for _ in edge["lo"]]
        LatentCodec.from_dict(edge)  # the edges of every rule are allowed
    for name, record in _bad_tables():
        with pytest.raises(BundleError):
            LatentCodec.from_dict(record)
            pytest.fail(name)


def test_constant_dimension_is_one_symbol():
    """A dimension constant in training (hi == lo) codes every value as symbol 0 and decodes
    it back to that constant: no symbol beyond the table, whatever the new value."""
    train = np.stack([np.random.default_rng(0).standard_normal(200), np.full(200, 0.25)], axis=1)
    codec = LatentCodec.fit(train, 4)
    assert codec.lo[1] == codec.hi[1] == 0.25
    new = np.array([[0.0, 0.25], [0.1, 3.7], [0.2, -5.0], [0.3, 1.25]])
    q = codec.quantize(new)
    assert (q[:, 1] == 0).all()
    np.testing.assert_array_equal(codec.dequantize(q)[:, 1], np.float32(0.25))
    mid = codec.model_id(SHA)
    np.testing.assert_array_equal(S.decompress_symbols(codec, mid, S.compress_codes(codec, mid, new)), q)


def test_codec_fit_options_and_inputs():
    rng = np.random.default_rng(9)
    grid = np.concatenate([np.repeat(np.arange(1, 15) / 15, 45), [0.0, 1.0]])  # on the 4-bit grid: min/max is
    wild = np.concatenate([rng.uniform(-1, 1, 628), [1.3, -1.3, 1.3, -1.3]])  # exact; here clipping wins
    codes = np.stack([wild, grid], axis=1)
    auto = LatentCodec.fit(codes, 4)
    assert auto.hi[1] == 1.0 and auto.lo[1] == 0.0 and auto.hi[0] < 1.3  # chosen per dimension
    assert LatentCodec.fit(codes, 4, clip=0) == LatentCodec.fit(codes, 4, clip="minmax")
    one = LatentCodec.fit(codes, 4, clip=1)
    assert one.hi[0] == pytest.approx(np.percentile(wild, 99)) and one.lo[0] == pytest.approx(np.percentile(wild, 1))
    LatentCodec.fit(codes, 4, clip=49.5)
    for bad in (50, -1, "p1", None):
        with pytest.raises(InputError):
            LatentCodec.fit(codes, 4, clip=bad)
    for bad in (np.array([["a", "b"]]), np.zeros((2, 2), dtype=bool), np.zeros((2, 2), dtype=complex)):
        with pytest.raises(InputError):
            auto.quantize(bad)
    np.testing.assert_array_equal(auto.quantize(np.ones((2, 2), dtype=np.int64)), auto.quantize(np.ones((2, 2))))
    for bad in (np.zeros((3, 3), dtype=np.int32), np.zeros(2, dtype=np.int32), np.zeros((1, 2, 2), dtype=np.int32)):
        with pytest.raises(InputError):
            auto.check_symbols(bad)


def test_codec_bit_counts():
    """min_bits_per_sample: the likeliest symbol of every dimension; expected bits: the mean cost."""
    codec = LatentCodec.from_dict(_table(2, 4, d=2) | {"freqs": [[8, 4, 2, 2], [1, 1, 2, 12]]})
    assert codec.min_bits_per_sample() == pytest.approx(1 + math.log2(16 / 12))
    q = np.array([[0, 3], [2, 0]])
    assert codec.expected_bits_per_sample(codec.dequantize(q)) == pytest.approx(((1 + math.log2(16 / 12)) + (3 + 4)) / 2)
    assert codec.expected_bits_per_sample(np.zeros((0, 2))) == 0.0
    for bad in ("", None, b"ab"):
        with pytest.raises(BundleError):
            codec.model_id(bad)


