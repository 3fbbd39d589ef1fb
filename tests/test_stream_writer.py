"""StreamWriter (begin / resume / append / finish, the Python eae_writer) and codecs_of(manifest)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgeae.errors import BundleError, ConfigError, InputError, StreamError
from edgeae.runtime import stream as S
from edgeae.runtime.bundle import Manifest
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.compress import codec_of_stream, codecs_of, pick_codec
from edgeae.runtime.stream import StreamWriter
from tests._streams import SHA
from tests._streams import codes as _codes

ROOT = Path(__file__).resolve().parents[1]
CODEC = LatentCodec.fit(_codes(2000), 6)  # 6-bit tables for 16 dims
MID = CODEC.model_id(SHA)


def test_begin_append_is_compress_codes():
    w = StreamWriter.begin(CODEC, MID)
    parts = [_codes(5, seed=1), _codes(1, seed=2), _codes(40, seed=3)]
    data = w.header + b"".join(w.append(p) for p in parts)
    one = S.compress_codes(CODEC, MID, parts[0])
    assert data[: len(one)] == one  # the first append is exactly a whole stream's chunk
    np.testing.assert_array_equal(S.decompress_symbols(CODEC, MID, data), CODEC.quantize(np.concatenate(parts)))
    info = w.finish()
    assert info == S.read_header(data)
    assert (info.samples, info.chunks, info.size) == (46, 3, len(data))


def test_resume_bytes_continues_like_append_codes():
    data = S.compress_codes(CODEC, MID, _codes(7))
    w = StreamWriter.resume(CODEC, MID, data)
    assert w.info == S.read_header(data) and w.header == data[: w.info.header_size]
    assert w.append(_codes(3, seed=4)) == S.append_codes(CODEC, MID, data, _codes(3, seed=4))
    assert w.info.samples == 10 and w.info.chunks == 2


def test_file_writer_is_a_valid_stream_after_every_step(tmp_path):
    path = tmp_path / "s.eae"
    with path.open("w+b") as f:
        w = StreamWriter.begin(CODEC, MID, f)
        assert S.read_header_file(path).samples == 0  # the header alone: a valid, empty stream
        for k, n in enumerate((1, 9, 300)):
            w.append(_codes(n, seed=k))
            assert S.read_header_file(path) == w.info  # whole chunks, flushed: readable at once
        info = w.finish()
    assert (info.samples, info.chunks) == (310, 3)
    with path.open("r+b") as f:  # a later process picks the stream up again
        w = StreamWriter.resume(CODEC, MID, f)
        w.append(_codes(2, seed=9))
        assert w.finish().samples == 312
    expect = np.concatenate([_codes(1, seed=0), _codes(9, seed=1), _codes(300, seed=2), _codes(2, seed=9)])
    np.testing.assert_array_equal(S.decompress_symbols(CODEC, MID, path.read_bytes()), CODEC.quantize(expect))


def test_begin_refuses_a_file_that_holds_something(tmp_path):
    path = tmp_path / "s.eae"
    path.write_bytes(S.compress_codes(CODEC, MID, _codes(2)))
    with path.open("r+b") as f, pytest.raises(InputError, match="begin needs an empty file; resume"):
        StreamWriter.begin(CODEC, MID, f)


def test_resume_refuses_another_decoders_stream(tmp_path):
    other_decoder = S.compress_codes(CODEC, CODEC.model_id("f" * 64), _codes(3))
    with pytest.raises(StreamError, match=f"model id {CODEC.model_id('f' * 64).hex()}, not this model"):
        StreamWriter.resume(CODEC, MID, other_decoder)
    narrow = LatentCodec.fit(_codes(500, d=8), 6)  # another code size under the same id
    with pytest.raises(StreamError, match="code size 8 does not match the codec's 16"):
        StreamWriter.resume(CODEC, MID, S.compress_codes(narrow, MID, _codes(2, d=8)))
    path = tmp_path / "other.eae"
    path.write_bytes(other_decoder)
    with path.open("r+b") as f, pytest.raises(StreamError, match="not this model"):
        StreamWriter.resume(CODEC, MID, f)
    assert path.read_bytes() == other_decoder


def test_resume_refuses_a_damaged_tail_and_an_empty_file(tmp_path):
    data = bytearray(S.compress_codes(CODEC, MID, _codes(5)))
    data[-1] ^= 1  # the last chunk's CRC
    with pytest.raises(StreamError, match="CRC-32 mismatch"):
        StreamWriter.resume(CODEC, MID, bytes(data))
    (tmp_path / "e.eae").touch()
    with (tmp_path / "e.eae").open("r+b") as f, pytest.raises(StreamError, match="stream is empty"):
        StreamWriter.resume(CODEC, MID, f)


def test_refused_input_writes_nothing(tmp_path):
    path = tmp_path / "s.eae"
    with path.open("w+b") as f:
        w = StreamWriter.begin(CODEC, MID, f)
        w.append(_codes(4))
        before, info = path.read_bytes(), w.info
        bad = _codes(3)
        bad[2, 5] = np.nan
        with pytest.raises(InputError):
            w.append(bad)
        with pytest.raises(InputError, match="outside 0..63"):
            w.append(CODEC.quantize(_codes(2)) + 64)
        assert path.read_bytes() == before and w.info == info
        w.append(_codes(1, seed=5))  # the writer goes on as if the refusals never happened
        assert w.finish().samples == 5
    assert S.read_header_file(path).samples == 5


def test_append_chunks_checks_them_against_this_stream(tmp_path):
    worker = StreamWriter.begin(CODEC, MID)  # e.g. on a Dask worker
    chunk = worker.append(_codes(6, seed=7))
    path = tmp_path / "s.eae"
    with path.open("w+b") as f:
        w = StreamWriter.begin(CODEC, MID, f)
        assert w.append_chunks(chunk) == 6
        before = path.read_bytes()
        alien = StreamWriter.begin(CODEC, CODEC.model_id("f" * 64)).append(_codes(2))
        with pytest.raises(StreamError, match="CRC-32 mismatch"):  # its CRCs are seeded by another header
            w.append_chunks(alien)
        with pytest.raises(StreamError):
            w.append_chunks(chunk[:-1])
        assert path.read_bytes() == before
        w.finish()
    assert path.read_bytes() == S.compress_codes(CODEC, MID, _codes(6, seed=7))


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter with a codec ``codec``, id ``mid`` and ``codes(n, seed)`` defined."""
    prelude = textwrap.dedent(f"""
        import os, signal, sys, resource
        import numpy as np
        from edgeae.runtime.codec import LatentCodec
        from edgeae.runtime.stream import StreamWriter
        from tests._streams import SHA, codes
        codec = LatentCodec.fit(codes(2000), 6)
        mid = codec.model_id(SHA)
        path = {str(tmp_path / 's.eae')!r}
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_failed_append_is_cut_back(tmp_path):
    """A write that fails half way (the file size limit: EFBIG, as a full disk gives ENOSPC) leaves
    the stream as it was, and the writer can go on once there is room."""
    r = _run("""
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        f = open(path, "w+b")
        w = StreamWriter.begin(codec, mid, f)
        w.append(codes(20, seed=1))
        size = os.path.getsize(path)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 50, hard))  # room for part of the next chunk
        try:
            w.append(codes(200, seed=2))
        except OSError as exc:
            print("failed", exc.errno, os.path.getsize(path) == size, w.info.size == size)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        w.append(codes(3, seed=3))
        print("samples", w.finish().samples)
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    import errno

    assert r.stdout.split() == ["failed", str(errno.EFBIG), "True", "True", "samples", "23"]
    data = (tmp_path / "s.eae").read_bytes()
    expect = np.concatenate([_codes(20, seed=1), _codes(3, seed=3)])
    np.testing.assert_array_equal(S.decompress_symbols(CODEC, MID, data), CODEC.quantize(expect))


def test_crash_between_chunks_leaves_a_readable_stream(tmp_path):
    r = _run("""
        f = open(path, "w+b")
        w = StreamWriter.begin(codec, mid, f)
        w.append(codes(4, seed=1))
        w.append(codes(9, seed=2))
        os.kill(os.getpid(), signal.SIGKILL)  # no finish, no close
    """, tmp_path)
    assert r.returncode == -9, r.stderr
    data = (tmp_path / "s.eae").read_bytes()
    assert (S.read_header(data).samples, S.read_header(data).chunks) == (13, 2)
    expect = np.concatenate([_codes(4, seed=1), _codes(9, seed=2)])
    np.testing.assert_array_equal(S.decompress_symbols(CODEC, MID, data), CODEC.quantize(expect))


# ----------------------------------------------------------------------------- codecs_of(manifest)
def _manifest(bits=(6, 4, 8), code_size: int = 16, sha: str | None = SHA, codec: bool = True) -> dict:
    def graph(role, precision, digest):
        x, c = ("x", ["batch", 64], "float32"), ("code", ["batch", code_size], "float32")
        ins, outs = ([x], [c]) if role == "encoder" else ([c], [("x_hat", ["batch", 64], "float32")])
        return {"role": role, "precision": precision, "file": f"{role}.{precision}.onnx", "opset": 17, "size": 0,
                "sha256": digest, "inputs": ins, "outputs": outs}

    graphs = [graph("encoder", "fp32", "e" * 64), graph("decoder", "int8-static", "a" * 64)]
    if sha is not None:
        graphs.append(graph("decoder", "fp32", sha))
    fit = _codes(1000)
    return {"format": "edgeae-bundle", "format_version": 1, "kind": "mlp", "code_size": code_size,
            "input": {"shape": [64]},
            "normalization": {"mode": "identity", "raw_dtype": "float32", "offset": [0.0], "scale": [1.0]},
            "graphs": graphs, "codec": [LatentCodec.fit(fit, b).to_dict() for b in bits] if codec else None}


def test_codecs_of_a_manifest_dict_or_record():
    m = _manifest()
    got = codecs_of(m)
    assert [c.bits for c, _ in got] == [6, 4, 8]  # manifest order: the first is the default
    assert [i for _, i in got] == [c.model_id(SHA) for c, _ in got]  # tagged with the fp32 decoder
    assert [i for _, i in codecs_of(Manifest.from_dict(m))] == [i for _, i in got]
    single = dict(m, codec=m["codec"][1])  # one record instead of a list
    assert [c.bits for c, _ in codecs_of(single)] == [4]


@pytest.mark.parametrize("manifest, match", [
    (_manifest(codec=False), r"^bundle has no codec tables \(manifest 'codec' is null\)"),
    (_manifest(sha=None), "no fp32 decoder graph"),
    (dict(_manifest(), code_size=8), "codec tables cover 16 dims but the bundle's code_size is 8"),
])
def test_codecs_of_refuses_bundles_without_usable_tables(manifest, match):
    if manifest["code_size"] == 8:  # the graphs agree with 8; only the tables do not
        manifest = dict(_manifest(code_size=8), codec=_manifest()["codec"])
    with pytest.raises(BundleError, match=match):
        codecs_of(manifest)


def test_codecs_of_takes_a_manifest_not_a_model():
    class Model:
        manifest = _manifest()

    with pytest.raises(BundleError, match="manifest is Model; expected a manifest record"):
        codecs_of(Model())


def test_pick_codec_and_codec_of_stream():
    codecs = codecs_of(_manifest())
    assert pick_codec(codecs) == codecs[0] and pick_codec(codecs, 8) == codecs[2]
    with pytest.raises(ConfigError, match=r"bits=5 has no codec tables in this bundle; available: \[4, 6, 8\]"):
        pick_codec(codecs, 5)
    assert codec_of_stream(codecs, codecs[1][1]) == codecs[1]
    assert codec_of_stream(codecs, codecs[1][1], bits=4) == codecs[1]
    with pytest.raises(ConfigError, match="a.eae holds 4-bit codes; omit --bits or pass --bits 4"):
        codec_of_stream(codecs, codecs[1][1], "a.eae", bits=6)
    with pytest.raises(StreamError, match=f"model id {'00' * 8}, not this model \\({codecs[0][1].hex()}, "):
        codec_of_stream(codecs, bytes(8))
