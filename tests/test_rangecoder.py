"""The built-in range coder (edgeae/runtime/rangecoder.py) writes and reads constriction's bytes.

Linux on ARM64 has no constriction wheel, so there the runtime codes .eae payloads with the
built-in coder; a stream must not depend on which coder wrote it. Every comparison here is
against constriction itself (skipped where it is not installed): random tables and symbols,
the extreme tables (one symbol holding all but L-1 units, symbols of one unit in 2**24),
every bits value and the precisions at both ends, long messages that go through
constriction's carry ("inverted") states, MNIST codes, and forged payloads.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from edgeae.errors import ConfigError, StreamError
from edgeae.runtime import rangecoder as RC
from edgeae.runtime import stream as S
from edgeae.runtime.codec import MAX_BITS, MIN_BITS, LatentCodec, range_coder
from tests.conftest import MNIST

constriction = pytest.importorskip("constriction", reason="constriction is the reference these tests compare with")
SHA = "ab" * 32
M64 = (1 << 64) - 1


def _constriction_words(codec: LatentCodec, q: np.ndarray) -> bytes:
    enc = constriction.stream.queue.RangeEncoder()
    for d, model in enumerate(codec.entropy_models()):
        enc.encode(np.ascontiguousarray(q[:, d]), model)
    return enc.get_compressed().astype("<u4").tobytes()


def _codec(freqs: list[list[int]], bits: int, precision: int) -> LatentCodec:
    d = len(freqs)
    return LatentCodec(bits=bits, lo=[0.0] * d, hi=[1.0] * d, freqs=freqs, precision=precision)


def _table(rng, bits: int, precision: int, kind: str) -> list[int]:
    """Frequencies of L = 2**bits symbols summing to 2**precision, each >= 1."""
    n_sym, total = 1 << bits, 1 << precision
    if kind == "peak":  # one symbol holds all but L-1 units: the others are as unlikely as can be
        f = np.ones(n_sym, np.int64)
        f[rng.integers(n_sym)] += total - n_sym
        return f.tolist()
    w = rng.random(n_sym) ** (12 if kind == "skewed" else 1)
    f = np.floor(w / w.sum() * (total - n_sym)).astype(np.int64) + 1
    f[int(np.argmax(f))] += total - int(f.sum())
    return f.tolist()


def _sample(rng, codec: LatentCodec, n: int, rare: float = 0.0) -> np.ndarray:
    """n samples drawn from the tables, with a share ``rare`` of uniformly drawn (often unlikely) symbols."""
    p = np.asarray(codec.freqs, np.float64) / (1 << codec.precision)
    q = np.stack([rng.choice(codec.levels, n, p=row) for row in p], axis=1)
    flip = rng.random(q.shape) < rare
    return np.where(flip, rng.integers(0, codec.levels, q.shape), q).astype(np.int32)


def _carries(codec: LatentCodec, q: np.ndarray) -> tuple[int, int]:
    """(times the encoder held words back, times a carry then reached them), step by step as
    constriction's encoder does: shows that a message exercised its inverted situation."""
    cdf = RC.cdf_table(np.asarray(codec.freqs), codec.precision)
    lower, rng, held, carried, inverted = 0, M64, 0, 0, False
    for d in range(q.shape[1]):
        for s in q[:, d]:
            left, scale = int(cdf[d, s]), rng >> 24
            new, rng = (lower + scale * left) & M64, scale * (int(cdf[d, s + 1]) - left)
            if inverted and new + rng <= M64:
                carried += new < lower
                inverted = False
            lower = new
            if rng < 1 << 32:
                rng, lower = rng << 32, (lower << 32) & M64
                if not inverted and lower + rng > M64:
                    inverted, held = True, held + 1
    return held, carried


def _same(codec: LatentCodec, q: np.ndarray) -> None:
    """Full words, trimmed payload and decoding agree with constriction's."""
    cdf = RC.cdf_table(np.asarray(codec.freqs), codec.precision)
    assert RC.encode(cdf, q).words == _constriction_words(codec, q)
    payload = RC.shortest_payload(cdf, q, S._TRIM_TRIES)
    assert payload == S._encode(codec, q)  # constriction: each trim candidate decoded
    assert np.array_equal(RC.decode(cdf, payload, len(q)), q)


@pytest.mark.parametrize("bits", range(MIN_BITS, MAX_BITS + 1))
def test_random_tables_and_symbols_give_constrictions_bytes(bits):
    rng = np.random.default_rng(bits)
    for precision in sorted({bits + 1, 12 if bits < 12 else 16, 16, 24}):
        for kind in ("even", "skewed", "peak"):
            codec = _codec([_table(rng, bits, precision, kind) for _ in range(3)], bits, precision)
            for n in (1, 2, 7, 300):
                _same(codec, _sample(rng, codec, n, rare=0.1))


@pytest.mark.parametrize(("bits", "precision"), [(2, 3), (8, 9), (8, 24), (4, 24)])
def test_long_messages_through_the_carry_states(bits, precision):
    """20,000 symbols of a peaked table, a third of them unlikely (1 unit in 2**24 at precision 24):
    hundreds of held-back words and carries, every one resolved as constriction does."""
    rng = np.random.default_rng(precision)
    codec = _codec([_table(rng, bits, precision, "peak")], bits, precision)
    q = _sample(rng, codec, 20_000, rare=0.3)
    held, carried = _carries(codec, q)
    assert held > 50 and carried > 20, (held, carried)
    _same(codec, q)


def test_extreme_symbols_one_by_one():
    """Every symbol alone, of the likeliest and the least likely tables, at every code size 1..9."""
    rng = np.random.default_rng(7)
    for bits in (MIN_BITS, MAX_BITS):
        for precision in (bits + 1, 24):
            for d in (1, 2, 9):
                codec = _codec([_table(rng, bits, precision, "peak") for _ in range(d)], bits, precision)
                for s in range(codec.levels):
                    _same(codec, np.full((1, d), s, np.int32))
                _same(codec, np.tile(np.arange(codec.levels, dtype=np.int32)[:, None], (1, d)))


def test_streams_are_byte_identical_with_either_coder(monkeypatch):
    """Whole streams (several chunks: 2**18 symbols each) written and read by either coder."""
    rng = np.random.default_rng(11)
    codec = LatentCodec.fit(rng.standard_normal((2000, 3)) * [1, 5, 0.1], 6)
    mid = codec.model_id(SHA)
    q = codec.quantize(rng.standard_normal(((1 << 18) // 3 + 40, 3)) * [1, 5, 0.1])
    streams = {}
    for coder in ("constriction", "builtin"):
        monkeypatch.setenv("EDGEAE_CODER", coder)
        assert range_coder() == coder
        streams[coder] = S.compress_codes(codec, mid, q)
    assert S.read_header(streams["builtin"]).chunks == 2
    assert streams["builtin"] == streams["constriction"]
    for coder in ("constriction", "builtin"):
        monkeypatch.setenv("EDGEAE_CODER", coder)
        assert np.array_equal(S.decompress_symbols(codec, mid, streams["constriction"]), q)


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST not found at {MNIST}")
def test_mnist_codes(monkeypatch):
    """MNIST test images -> 16 codes each (the means of 7x7 blocks: a fixed linear encoder), the
    codec fitted on the first half, the second half coded at every bits value: the same bytes."""
    from edgeae.data import load_dataset

    x = load_dataset(MNIST).x.reshape(10_000, 4, 7, 4, 7).astype(np.float64) / 255.0
    codes = x.mean(axis=(2, 4)).reshape(10_000, 16)
    for bits in range(MIN_BITS, MAX_BITS + 1):
        codec = LatentCodec.fit(codes[:5000], bits)
        mid = codec.model_id(SHA)
        held = codes[5000:5000 + (500 if bits < MAX_BITS else 5000)]
        monkeypatch.setenv("EDGEAE_CODER", "builtin")
        mine = S.compress_codes(codec, mid, held)
        monkeypatch.setenv("EDGEAE_CODER", "constriction")
        assert S.compress_codes(codec, mid, held) == mine, bits
        assert np.array_equal(S.decompress_codes(codec, mid, mine), codec.dequantize(codec.quantize(held)))


def _verdict(codec: LatentCodec, payload: bytes, n: int):
    try:
        return codec.decode_symbols(payload, n).tolist()
    except StreamError:
        return "refused"


def test_forged_payloads_get_the_same_verdict(monkeypatch):
    """The C decoder's forged chunk (quantile 2**24) is refused by both coders; random payloads,
    too short or too long for their sample counts, give the same symbols or the same refusal."""
    rng = np.random.default_rng(3)
    c1 = LatentCodec.fit(rng.standard_normal((500, 1)), 6)
    forged = bytes.fromhex("ffffffff000000ff")
    refused = 0
    for coder in ("builtin", "constriction"):
        monkeypatch.setenv("EDGEAE_CODER", coder)
        with pytest.raises(StreamError, match="cannot be decoded"):
            c1.decode_symbols(forged, 1)
    for bits in (MIN_BITS, 4, MAX_BITS):
        codec = _codec([_table(rng, bits, 24, k) for k in ("peak", "skewed")], bits, 24)
        for _ in range(150):
            payload = rng.integers(0, 256, int(rng.integers(0, 24))).astype(np.uint8).tobytes()
            if rng.random() < 0.3:
                payload = b"\xff" * int(rng.integers(1, 12)) + payload
            n = int(rng.integers(1, 40))
            verdicts = []
            for coder in ("builtin", "constriction"):
                monkeypatch.setenv("EDGEAE_CODER", coder)
                verdicts.append(_verdict(codec, payload, n))
            assert verdicts[0] == verdicts[1], (bits, payload.hex(), n)
            refused += verdicts[0] == "refused"
    assert refused > 20  # the refusals were reached, not only decodes


def test_the_coder_choice(monkeypatch):
    """$EDGEAE_CODER picks the coder; without constriction the built-in one is used, and asking
    for constriction there is a ConfigError that says what to do."""
    monkeypatch.setenv("EDGEAE_CODER", "zstd")
    with pytest.raises(ConfigError, match="builtin, constriction or auto"):
        range_coder()
    monkeypatch.delenv("EDGEAE_CODER")
    assert range_coder() == "constriction"
    monkeypatch.setitem(sys.modules, "constriction", None)  # import constriction -> ModuleNotFoundError
    assert range_coder() == "builtin"
    monkeypatch.setenv("EDGEAE_CODER", "constriction")
    with pytest.raises(ConfigError, match="not installed"):
        range_coder()


def _stream_verdict(codec: LatentCodec, mid: bytes, data: bytes):
    try:
        return S.decompress_symbols(codec, mid, data).tolist()
    except StreamError:
        return "refused"


def test_damaged_streams_get_the_same_verdict(monkeypatch):
    """Every truncation and bit flip of a two-chunk stream, and chunks forged with valid CRCs
    (random payloads and counts, the quantile-2**24 one): the built-in coder decodes what
    constriction decodes and refuses what it refuses."""
    import zlib

    rng = np.random.default_rng(21)
    codec = LatentCodec.fit(rng.standard_normal((2000, 16)), 6)
    mid = codec.model_id(SHA)
    valid = S.compress_codes(codec, mid, rng.standard_normal((5, 16)))
    valid += S.append_codes(codec, mid, valid, rng.standard_normal((3, 16)))
    header = valid[: S.read_header(valid).header_size]
    cases = [valid[:k] for k in range(len(valid) + 1)]
    cases += [bytes(valid[:i]) + bytes([valid[i] ^ 1 << b]) + valid[i + 1:] for i in range(len(valid)) for b in range(8)]
    for _ in range(300):
        payload = rng.integers(0, 256, int(rng.integers(0, 65))).astype(np.uint8).tobytes()
        body = S.put_varint(int(rng.integers(1, 12))) + S.put_varint(len(payload)) + payload
        cases.append(header + body + zlib.crc32(body, zlib.crc32(header)).to_bytes(4, "little"))
    verdicts = {}
    for coder in ("builtin", "constriction"):
        monkeypatch.setenv("EDGEAE_CODER", coder)
        verdicts[coder] = [_stream_verdict(codec, mid, c) for c in cases]
    assert verdicts["builtin"] == verdicts["constriction"]
    decoded = sum(v != "refused" for v in verdicts["builtin"][len(valid) + 1:])
    assert decoded > 50 and "refused" in verdicts["builtin"]  # both kinds of verdict were reached
