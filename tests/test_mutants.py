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
from edgeae.errors import BundleError, EdgeAEError, InputError
from edgeae.runtime import stream as S
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.contract import NonFiniteInput, SampleContract, as_codes, check_codes
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
    from edgeae.data import open_source
    from edgeae.scale import bulk

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
    again = staging_dir(deep)  # parents made; every writer gets its own new, empty folder
    assert again != stale and again.parent == stale.parent and not any(again.iterdir())
    assert (stale / "junk").read_text() == "x"  # a live writer's folder (ours) is left alone


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
    with pytest.raises(EdgeAEError, match="the stream is unchanged"), \
            _file_size_limit(len(old) + 1000):  # part of the new chunk fits
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
