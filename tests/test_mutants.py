"""Checks of behaviour that plausible one-line bugs would break while every other test passes.

Each test names the bug it stands against (docs/testing.md lists them with the mutation
scores). Failures are produced for real where a bug would show under real conditions:
partial writes come from a file-size limit (RLIMIT_FSIZE), so the kernel itself cuts the
write short, whatever the code under test writes with; in-process, so that a mutation
tool sees which tests run the code it mutates.
"""

from __future__ import annotations

import math
import resource
import signal
import zlib
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import edgeae.runtime as rt
from edgeae.atomic import atomic_write_bytes
from edgeae.cli import cli
from edgeae.codegen.lower_int8 import multiplier
from edgeae.errors import BundleError, InputError, StreamError
from edgeae.runtime import stream as S
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.contract import NonFiniteInput, SampleContract, as_codes, check_codes
from edgeae.runtime.varint import get_varint
from tests._bundles import digits_features, digits_uint8, make_bundle, with_codec

SHA = "0123456789abcdef" * 4  # a stand-in decoder digest


# ------------------------------------------------------------------ requantization multiplier
def test_multiplier_rounds_to_nearest():
    """0.3 = 1288490188.8 / 2^32: rounded, not truncated (C and the reference share the value)."""
    assert multiplier(0.3) == (1288490189, 32)
    assert multiplier(0.5) == (1 << 30, 31) and multiplier(1.0) == (1 << 30, 30)
    assert multiplier(2.0**-31 * (2**31 - 0.4)) == (1 << 30, 30)  # rounds up into the next octave
    rng = np.random.default_rng(5)
    for real in np.exp(rng.uniform(math.log(2.0**-30), math.log(2.0**29), 400)):
        m, shift = multiplier(float(real))
        assert (1 << 30) <= m < (1 << 31) and 1 <= shift <= 62
        err = abs(Fraction(m, 1 << shift) - Fraction(float(real)))
        assert err <= Fraction(1, 1 << (shift + 1)), (real, m, shift)  # within half a unit


# ------------------------------------------------------------------ NaN/inf in the last sample
def _contracts():
    yield SampleContract((1, 8, 8), "scale255", "uint8"), (1, 8, 8)  # bounded floats
    yield SampleContract((64,), "standardize", "float32"), (64,)  # unbounded floats


@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_last_sample_is_refused(n, bad):
    for contract, shape in _contracts():
        x = np.full((n, *shape), 0.5, dtype=np.float32)
        x[n - 1].flat[-1] = bad  # only the very last value of the batch
        with pytest.raises(NonFiniteInput) as exc:
            contract.check_values(x, "x")
        assert exc.value.index == n - 1
        codes = np.zeros((n, 16), dtype=np.float32)
        codes[n - 1, -1] = bad
        with pytest.raises(NonFiniteInput) as exc:
            check_codes(codes, "code")
        assert exc.value.index == n - 1


def test_contract_edges():
    img = SampleContract((1, 8, 8), "scale255", "uint8")  # pixels_only defaults to False: floats too
    vec = SampleContract((64,), "standardize", "float32")
    assert img.samples(np.full((2, 1, 8, 8), 0.5))[0].dtype == np.float32
    assert img.samples(np.full((2, 8, 8), 255, dtype=np.int64))[0].dtype == np.uint8
    assert img.samples(np.zeros((0, 1, 8, 8), dtype=np.int16))[0].shape == (0, 1, 8, 8)  # empty is fine
    for bad in (np.full((1, 8, 8), 256, dtype=np.int64), np.full((1, 8, 8), -1, dtype=np.int64)):
        with pytest.raises(InputError):
            img.samples(bad)
    for bad_shape in ((2, 8, 8, 3), (2, 63), (2, 8, 8, 2, 1)):
        with pytest.raises(InputError):
            img.samples(np.zeros(bad_shape, dtype=np.uint8))
    with pytest.raises(InputError):
        vec.samples(np.zeros((2, 8, 7), dtype=np.float32))
    assert vec.samples(np.zeros((2, 8, 8), dtype=np.float32))[0].shape == (2, 64)
    img.check_values(np.ones((3, 1, 8, 8), dtype=np.float32))  # all at the top of [0, 1]: allowed
    img.check_values(np.full((3, 1, 8, 8), np.nextafter(np.float32(1), np.float32(2))))  # rounding slack
    for v in (1.2, 1.5):
        with pytest.raises(InputError):
            img.check_values(np.full((3, 1, 8, 8), v, dtype=np.float32))
    codes, single = as_codes([[0.0] * 16, [1.0] * 16], 16)
    assert codes.shape == (2, 16) and codes.dtype == np.float32 and single is False
    assert as_codes(list(range(16)), 16)[1] is True
    x, single = img.samples(np.full((8, 8), 3).tolist())  # a nested list: integer pixels, one sample
    assert single is True and x.shape == (1, 1, 8, 8) and x.dtype == np.uint8


@pytest.fixture(scope="module")
def vector_bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("mut") / "v", "vector")[0]


@pytest.mark.parametrize("bad_index", [3, 7, 9])  # last of chunk 1, last of chunk 2, last sample of all
def test_non_finite_last_sample_of_a_chunk_is_refused_by_the_model(vector_bundle, bad_index):
    model = rt.load(vector_bundle)
    x = digits_features()[:10].astype(np.float32)
    x[bad_index, -1] = np.nan
    with pytest.raises(NonFiniteInput) as exc:
        model.encode(x, batch_size=4)
    assert exc.value.index == bad_index
    codes = model.encode(digits_features()[:10].astype(np.float32))
    codes[bad_index, -1] = np.inf
    with pytest.raises(NonFiniteInput) as exc:
        model.decode(codes, batch_size=4)
    assert exc.value.index == bad_index


# ------------------------------------------------------------------ compression ratio
@pytest.fixture(scope="module")
def codec_bundle(tmp_path_factory) -> Path:
    folder, _ = make_bundle(tmp_path_factory.mktemp("mut") / "img", "image", precisions=("fp32",))
    return with_codec(folder, 6)


def test_ratio_is_raw_over_compressed(codec_bundle, tmp_path):
    from edgeae.scale import bulk
    from edgeae.scale.sources import open_source

    x = digits_uint8()[:300]  # (300, 1, 8, 8) uint8: 64 raw bytes per sample
    np.save(tmp_path / "x.npy", x)
    model = rt.load(codec_bundle)
    report = bulk.compress_to_file(model, open_source(tmp_path / "x.npy", model.sample_shape), tmp_path / "a.eae")
    size = (tmp_path / "a.eae").stat().st_size
    assert report["raw_bytes"] == x.nbytes and report["bytes"] == size
    assert report["ratio"] == pytest.approx(x.nbytes / size) and report["ratio"] > 1
    res = CliRunner().invoke(cli, ["compress", str(codec_bundle), str(tmp_path / "x.npy"), "-o",
                                   str(tmp_path / "b.eae")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "b.eae").read_bytes() == (tmp_path / "a.eae").read_bytes()
    assert f", {x.nbytes / size:.1f}x smaller than raw," in res.output


# ------------------------------------------------------------------ failing writes
@contextmanager
def _file_size_limit(limit: int):
    """Files of this process cannot grow past ``limit`` bytes while the block runs (EFBIG after a
    partial write, as on a full disk); in-process, so a mutation tool sees the code it runs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_failed_atomic_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "state.bin"
    old = bytes(range(256)) * 8  # 2 KiB
    target.write_bytes(old)
    with pytest.raises(OSError), _file_size_limit(10_000):
        atomic_write_bytes(target, b"x" * 100_000)
    assert target.read_bytes() == old  # byte-identical
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.bin"]  # no temporary left behind
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"


def test_claim_and_commit_output_folders(tmp_path):
    from edgeae.atomic import claim_output_dir, commit_staging_dir, staging_dir

    def claim(out, overwrite=False):
        return claim_output_dir(out, overwrite, "manifest.json", "is not a bundle", ValueError)

    (tmp_path / "file").write_text("x")
    full = tmp_path / "full"
    full.mkdir()
    (full / "data.txt").write_text("keep")
    for out, overwrite in ((tmp_path / "file", True), (full, False), (full, True)):  # a file; not ours
        with pytest.raises(ValueError):
            claim(out, overwrite)
    assert (full / "data.txt").read_text() == "keep"
    (full / "manifest.json").write_text("{}")
    with pytest.raises(ValueError):
        claim(full)  # ours, but no overwrite
    for out in (full, tmp_path / "empty", tmp_path / "new"):
        if out.name == "empty":
            out.mkdir()
        stage = claim(out, overwrite=True)
        assert stage.is_dir() and not any(stage.iterdir()) and stage.parent == tmp_path and stage.name.startswith(".")
        (stage / "manifest.json").write_text("new")
        commit_staging_dir(stage, out)
        assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file", "full", "new"]  # nothing left over
    deep = tmp_path / "a" / "b" / "out"
    stale = staging_dir(deep)
    (stale / "junk").write_text("x")
    again = staging_dir(deep)  # parents made; a stale staging folder is emptied
    assert again == stale and not any(again.iterdir())


@pytest.fixture(scope="module")
def codec8() -> LatentCodec:
    return LatentCodec.fit(np.random.default_rng(0).standard_normal((500, 16)), 8)


def test_failed_api_append_cuts_the_stream_back(tmp_path, codec8):
    mid = codec8.model_id(SHA)
    path = tmp_path / "s.eae"
    first = np.random.default_rng(1).standard_normal((20, 16))
    S.append_file(codec8, mid, path, first)
    old = path.read_bytes()
    more = np.random.default_rng(2).standard_normal((4000, 16))
    with pytest.raises(OSError), _file_size_limit(len(old) + 1000):  # part of the new chunk fits
        S.append_file(codec8, mid, path, more)
    assert path.read_bytes() == old
    np.testing.assert_array_equal(S.decompress_symbols(codec8, mid, old), codec8.quantize(first))


def test_append_file_info_and_empty_file(tmp_path, codec8):
    mid = codec8.model_id(SHA)
    path = tmp_path / "s.eae"
    path.write_bytes(b"")  # an existing, empty file is a new stream
    a, b = (np.random.default_rng(s).standard_normal((n, 16)) for s, n in ((3, 7), (4, 5)))
    S.append_file(codec8, mid, path, a)
    info = S.append_file(codec8, mid, path, b)
    assert info == S.read_header(path.read_bytes())
    one, two = S.read_header(S.compress_codes(codec8, mid, a)), S.read_header(S.compress_codes(codec8, mid, b))
    assert (info.samples, info.chunks, info.size) == (12, 2, path.stat().st_size)
    assert info.payload_bytes == one.payload_bytes + two.payload_bytes


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


# ------------------------------------------------------------------ tampered graph of the same size
def test_decoder_changed_in_place_is_refused(tmp_path):
    folder, _ = make_bundle(tmp_path / "b", "image", precisions=("fp32",))
    x = digits_uint8()[:4]
    before = rt.load(folder).reconstruct(x)
    path = folder / "decoder.onnx"
    clean = path.read_bytes()
    weights = max((t.raw_data for t in onnx.load(str(path)).graph.initializer), key=len)
    at = clean.index(weights) + len(weights) // 2
    data = bytearray(clean)
    data[at] ^= 0x01  # one bit of a weight: same size, a graph that still loads and runs
    path.write_bytes(bytes(data))
    import onnxruntime as ort

    ort.InferenceSession(bytes(data), providers=["CPUExecutionProvider"])  # only the hash tells
    assert rt.verify_bundle(folder) and all("decoder.onnx" in p for p in rt.verify_bundle(folder))
    with pytest.raises(BundleError):
        rt.load(folder)
    path.write_bytes(clean)  # put the bit back
    assert rt.verify_bundle(folder) == []
    np.testing.assert_array_equal(rt.load(folder).reconstruct(x), before)
