"""The generated C99 codec against the Python one: same bytes, same verdicts, never a crash."""

from __future__ import annotations

import json
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgeae.codegen.codec import CODEC_FILES, TEMPLATE_DIR, TOOL_FILE, codec_sources, write_codec
from edgeae.errors import ConfigError, StreamError
from edgeae.runtime import stream as S
from edgeae.runtime.codec import LatentCodec

CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
pytestmark = pytest.mark.skipif(
    CC is None, reason="no C compiler (cc, gcc or clang) on PATH; install gcc to test the C codec"
)
GOLDEN = Path(__file__).parent / "golden"
SHA = "0123456789abcdef" * 4  # the stand-in decoder digest of tests/test_stream.py
CFLAGS = ["-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0", "UBSAN_OPTIONS": "halt_on_error=1"}


def _codes(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    """The codes of tests/test_stream.py: per-dim scales from 3 down to 0.2."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)) * np.linspace(3, 0.2, d)).astype(np.float32)


def _sanitizers_work(tmp: Path) -> bool:
    src = tmp / "probe.c"
    src.write_text("int main(void) { return 0; }\n")
    ok = subprocess.run([CC, *SANITIZE, str(src), "-o", str(tmp / "probe")], capture_output=True)
    return ok.returncode == 0 and subprocess.run([str(tmp / "probe")], env=SAN_ENV).returncode == 0


class Tool:
    """eae_codec_tool built with the tables of some codecs."""

    def __init__(self, folder: Path, exe: Path, codecs: list[tuple[LatentCodec, bytes]]):
        self.folder, self.exe, self.codecs = folder, exe, codecs

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        import os

        res = subprocess.run([str(self.exe), *map(str, args)], capture_output=True, text=True,
                             env={**os.environ, **SAN_ENV}, timeout=300)
        if check and res.returncode != 0:
            raise AssertionError(f"{self.exe.name} {' '.join(map(str, args))}: {res.stderr}")
        return res

    def compress(self, idx: int, codes: np.ndarray, *counts: int, symbols: bool = False) -> bytes:
        src = self.folder / ("in.u8" if symbols else "in.f32")
        (codes.astype(np.uint8) if symbols else codes.astype("<f4")).tofile(src)
        out = self.folder / "out.eae"
        self.run("compress-symbols" if symbols else "compress", idx, src, out, *counts)
        return out.read_bytes()

    def decompress(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        (self.folder / "in.eae").write_bytes(data)
        res = self.run("decompress", self.folder / "in.eae", self.folder / "out.f32",
                       self.folder / "out.u8")
        n, bits = map(int, res.stdout.split())
        d = next(c.code_size for c, _ in self.codecs if c.bits == bits)
        codes = np.fromfile(self.folder / "out.f32", dtype="<f4").reshape(n, d)
        return codes, np.fromfile(self.folder / "out.u8", dtype=np.uint8).reshape(n, d)


def build_tool(folder: Path, codecs, prefix: str = "t", sanitize: bool = False,
               thresholds: bool = True) -> Tool:
    folder.mkdir(parents=True, exist_ok=True)
    h, c = codec_sources(codecs, prefix, thresholds=thresholds)
    (folder / f"{prefix}_codec.h").write_text(h)
    (folder / f"{prefix}_codec.c").write_text(c)
    for name in (*CODEC_FILES, TOOL_FILE):
        shutil.copyfile(TEMPLATE_DIR / name, folder / name)
    exe = folder / "eae_codec_tool"
    cmd = [CC, *CFLAGS, *(SANITIZE if sanitize else []), f"-DEAE_PREFIX={prefix}", "-I", str(folder),
           *(str(folder / n) for n in ("eae_codec.c", f"{prefix}_codec.c", TOOL_FILE)), "-o", str(exe)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return Tool(folder, exe, codecs)


@pytest.fixture(scope="module")
def golden_codec() -> LatentCodec:
    return LatentCodec.from_dict(json.loads((GOLDEN / "codec_v1.json").read_text()))


@pytest.fixture(scope="module")
def depth_codecs() -> list[tuple[LatentCodec, bytes]]:
    """One codec per bit depth 2..8 on the same training codes."""
    train = _codes(2000)
    out = []
    for bits in range(2, 9):
        codec = LatentCodec.fit(train, bits)
        out.append((codec, codec.model_id(SHA)))
    return out


@pytest.fixture(scope="module")
def depth_tool(tmp_path_factory, depth_codecs) -> Tool:
    return build_tool(tmp_path_factory.mktemp("depths"), depth_codecs)


@pytest.fixture(scope="module")
def depth_tool_double(tmp_path_factory, depth_codecs) -> Tool:
    """The same codecs without quantizer thresholds: the double-division quantizer."""
    return build_tool(tmp_path_factory.mktemp("depths-double"), depth_codecs, thresholds=False)


def test_golden_stream_bytes(tmp_path, golden_codec):
    """C writes tests/golden/stream_v1.eae byte for byte (30 samples, then 10 appended)."""
    tool = build_tool(tmp_path, [(golden_codec, golden_codec.model_id(SHA))], prefix="gold")
    codes = np.load(GOLDEN / "codes_v1.npy")
    golden = (GOLDEN / "stream_v1.eae").read_bytes()
    assert tool.compress(0, codes, 30, 10) == golden
    c_codes, c_q = tool.decompress(golden)
    np.testing.assert_array_equal(c_q, golden_codec.quantize(codes))
    assert c_codes.tobytes() == S.decompress_codes(golden_codec, golden_codec.model_id(SHA), golden).tobytes()


@pytest.mark.parametrize("counts", [(1,), (2,), (3, 1), (7,), (120, 5, 1)])
def test_same_bytes_every_bit_depth(depth_tool, depth_codecs, counts):
    """Float codes and integer symbols, every bit depth: C bytes == Python bytes, both ways."""
    codes = _codes(sum(counts), seed=sum(counts))
    codes[0] *= 40  # far outside the ranges: clipped alike
    for idx, (codec, mid) in enumerate(depth_codecs):
        first = S.compress_codes(codec, mid, codes[: counts[0]])
        py = first
        start = counts[0]
        for n in counts[1:]:
            py += S.append_codes(codec, mid, first, codes[start : start + n])
            start += n
        assert depth_tool.compress(idx, codes, *counts) == py, f"bits={codec.bits}"
        q = codec.quantize(codes)
        assert depth_tool.compress(idx, q, *counts, symbols=True) == py, f"bits={codec.bits}"
        c_codes, c_q = depth_tool.decompress(py)
        np.testing.assert_array_equal(c_q, q)
        assert c_codes.tobytes() == S.decompress_codes(codec, mid, py).tobytes()


def _records(blob: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(blob):
        n = int.from_bytes(blob[pos : pos + 4], "little")
        out.append(blob[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def test_many_single_sample_streams(depth_tool, depth_tool_double, depth_codecs, tmp_path):
    """Hundreds of one-sample streams per bit depth (where trimming matters most, and
    wide codes reach rare symbols), with both quantizers: every one equals Python's."""
    rng = np.random.default_rng(7)
    codes = (_codes(300, seed=9) * rng.choice([0.3, 1.0, 3.0], size=(300, 1))).astype(np.float32)
    codes.astype("<f4").tofile(tmp_path / "c.f32")
    for idx, (codec, mid) in enumerate(depth_codecs):
        want = [S.compress_codes(codec, mid, codes[i : i + 1]) for i in range(len(codes))]
        for tool in (depth_tool, depth_tool_double):
            tool.run("compress-each", idx, tmp_path / "c.f32", len(codes), tmp_path / "s.bin")
            got = _records((tmp_path / "s.bin").read_bytes())
            bad = [i for i in range(len(codes)) if got[i] != want[i]]
            assert not bad, f"bits={codec.bits}, {tool.folder.name}: samples {bad[:5]} differ"


def test_quantizer_edge_cases(tmp_path):
    """Ties round half to even, clipping, constant dims, -0.0, tiny and huge values,
    and 24-bit-precision tables (uint32 cumulative frequencies) give Python's bytes."""
    ties = LatentCodec(bits=2, lo=[0.0, 1.0, -1.0], hi=[3.0, 1.0, 1.0],
                       freqs=[[1000, 30000, 30000, 4536]] * 3, precision=16)
    wide = LatentCodec.fit(_codes(500, d=5), 3, precision=20)
    codecs = [(ties, ties.model_id(SHA)), (wide, wide.model_id(SHA))]
    tools = [build_tool(tmp_path / f"t{k}", codecs, prefix="edge", thresholds=bool(k)) for k in (0, 1)]
    tool = tools[1]
    vals = np.array([0.5, 1.5, 2.5, -0.5, 3.5, -0.0, 1e-40, 1e30, -1e30, 2.4999999, 0.49999997,
                     1.0, 3.0, 0.0, 3.4e38, -3.4e38], dtype=np.float32)
    codes = np.stack([vals, vals + 1, vals / 2], axis=1)
    for idx, (codec, mid) in enumerate(codecs):
        c = codes if codec.code_size == 3 else np.tile(vals[:, None], (1, 5)) * 0.7
        for t in tools:
            assert t.compress(idx, c, len(c)) == S.compress_codes(codec, mid, c)
    bad = codes.copy()
    bad[3, 1] = np.nan
    bad.astype("<f4").tofile(tmp_path / "nan.f32")
    res = tool.run("compress", 0, tmp_path / "nan.f32", tmp_path / "x.eae", len(bad), check=False)
    assert res.returncode == 1 and "not finite" in res.stderr


def test_large_input_splits_into_chunks(tmp_path):
    codec = LatentCodec.fit(_codes(400, d=600), 4)
    mid = codec.model_id(SHA)
    tool = build_tool(tmp_path, [(codec, mid)])
    codes = _codes(500, d=600, seed=3)  # 2**18 // 600 = 436 samples per chunk: two chunks
    py = S.compress_codes(codec, mid, codes)
    assert S.read_header(py).chunks == 2
    assert tool.compress(0, codes, 500) == py


def test_buffer_too_small_is_refused_never_overrun(tmp_path, golden_codec):
    """Every capacity up to eae_bound, each an exactly sized heap buffer under ASan."""
    if not _sanitizers_work(tmp_path):
        pytest.skip("the C compiler cannot build and run -fsanitize=address,undefined programs here")
    tool = build_tool(tmp_path / "b", [(golden_codec, golden_codec.model_id(SHA))], "gold", sanitize=True)
    np.load(GOLDEN / "codes_v1.npy").astype("<f4").tofile(tmp_path / "c.f32")
    for n in (1, 5, 40):
        least, size, bound = map(int, tool.run("caps", 0, tmp_path / "c.f32", n).stdout.split())
        assert size == len(S.compress_codes(golden_codec, golden_codec.model_id(SHA),
                                            np.load(GOLDEN / "codes_v1.npy")[:n]))
        assert size <= least <= size + 8 <= bound + 8  # the writer needs a few spare bytes


def test_write_codec_checks_its_arguments(tmp_path):
    with pytest.raises(ConfigError, match="not a C identifier"):
        write_codec(tmp_path / "missing", tmp_path / "out", prefix="9lives")
    with pytest.raises(ConfigError, match="clash with the C codec's own names"):
        write_codec(tmp_path / "missing", tmp_path / "out", prefix="eae")  # would overwrite eae_codec.h
    (tmp_path / "file").write_text("x")
    with pytest.raises(Exception, match="manifest"):
        write_codec(tmp_path / "missing", tmp_path / "out")


# ------------------------------------------------------------ hardening: same verdicts
_CATEGORIES = [  # Python StreamError message -> the C status it must equal (first match)
    ("is empty", -4), ("magic", -5), ("version", -6), ("truncated", -7), ("remain", -7),
    ("minimally", -8), ("longer than", -8), ("model id", -9), ("claims", -11),
    ("more than the codec can fit", -11), ("code size", -10), ("CRC-32", -12),
    ("cannot be decoded", -13),
]


def _py_verdict(codecs, data: bytes) -> tuple[int, np.ndarray | None]:
    """What Python's reader says: (0, symbols) or (C status code of the error, None)."""
    try:
        stream_id = S.stream_model_id(data)
        for codec, mid in codecs:
            if mid == stream_id:
                return 0, S.decompress_symbols(codec, mid, data)
        raise StreamError(f"stream was written for model id {stream_id.hex()}, not this model")
    except StreamError as exc:
        msg = str(exc)
        if "stream truncated in its header" in msg or "stream truncated inside" in msg:
            return -7, None
        for key, status in _CATEGORIES:
            if key in msg:
                return status, None
        raise AssertionError(f"unmapped error: {msg}") from exc


def _forge(codec, mid, n: int, payload: bytes) -> bytes:
    header = S._header(mid, codec.code_size)
    body = S.put_varint(n) + S.put_varint(len(payload)) + payload
    return header + body + zlib.crc32(body, zlib.crc32(header)).to_bytes(4, "little")


def _corpus(golden_codec, fuzz_codec, rounds: int = 300, seed: int = 1234) -> list[bytes]:
    """Every truncation and single-bit flip of the golden stream, plus the kinds of input
    tests/test_stream.py fuzzes (random bytes, forged payloads with valid CRCs, multi-byte
    corruption of a two-chunk stream), drawn from a fixed seed."""
    golden = (GOLDEN / "stream_v1.eae").read_bytes()
    out = [golden[:k] for k in range(len(golden) + 1)]
    for i in range(len(golden)):
        for bit in range(8):
            bad = bytearray(golden)
            bad[i] ^= 1 << bit
            out.append(bytes(bad))
    mid = fuzz_codec.model_id(SHA)
    valid = S.compress_codes(fuzz_codec, mid, _codes(5, seed=1))
    valid += S.append_codes(fuzz_codec, mid, valid, _codes(3, seed=2))
    out.append(valid)
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        data = rng.integers(0, 256, rng.integers(0, 200)).astype(np.uint8).tobytes()
        out += [data, S.MAGIC + bytes([S.VERSION]) + mid + data]
        payload = rng.integers(0, 256, rng.integers(0, 65)).astype(np.uint8).tobytes()
        out.append(_forge(fuzz_codec, mid, int(rng.integers(1, 201)), payload))
        bad = bytearray(valid)
        for _ in range(int(rng.integers(1, 5))):
            bad[int(rng.integers(0, len(bad)))] = int(rng.integers(0, 256))
        out.append(bytes(bad))
    header = S._header(mid, fuzz_codec.code_size)
    out += [_forge(fuzz_codec, mid, 2**34, b"\0" * 4), _forge(fuzz_codec, mid, 10_000, b"\0" * 4),
            header + S.put_varint(1) + S.put_varint(2**34) + b"\0" * 8, header + b"\x81\x00",
            header + b"\xff" * 6, S.MAGIC + bytes([S.VERSION]) + mid + S.put_varint(2**33) + b"\x01\x00"]
    return out


@pytest.mark.parametrize("rounds,seed", [(300, 1234), pytest.param(5000, 99, marks=pytest.mark.slow)])
def test_decoder_verdicts_equal_python_under_sanitizers(tmp_path, golden_codec, rounds, seed):
    """Every input: the C reader (ASan + UBSan) errs with the same status as Python, or
    decodes the same symbols; a sanitizer report fails the run."""
    if not _sanitizers_work(tmp_path):
        pytest.skip("the C compiler cannot build and run -fsanitize=address,undefined programs here")
    fuzz_codec = LatentCodec.fit(_codes(2000), 6)  # the codec of tests/test_stream.py
    codecs = [(golden_codec, golden_codec.model_id(SHA)), (fuzz_codec, fuzz_codec.model_id(SHA))]
    tool = build_tool(tmp_path / "san", codecs, prefix="fz", sanitize=True)
    corpus = _corpus(golden_codec, fuzz_codec, rounds, seed)
    blob = b"".join(len(r).to_bytes(4, "little") + r for r in corpus)
    (tmp_path / "corpus.bin").write_bytes(blob)
    res = tool.run("verdicts", tmp_path / "corpus.bin", tmp_path / "sym.u8")
    lines = res.stdout.splitlines()
    assert len(lines) == len(corpus)
    c_syms = np.fromfile(tmp_path / "sym.u8", dtype=np.uint8)
    pos, n_ok, kinds = 0, 0, set()
    for data, line in zip(corpus, lines, strict=True):
        status, q = _py_verdict(codecs, data)
        kinds.add(status)
        if status:
            assert line == f"err {status}", (data.hex(), line)
            continue
        n_ok += 1
        assert line == f"ok {len(q)}", (data.hex(), line)
        np.testing.assert_array_equal(c_syms[pos : pos + q.size].reshape(q.shape), q)
        pos += q.size
    assert pos == c_syms.size and n_ok >= 3
    assert kinds >= {0, -5, -6, -7, -8, -9, -11, -12, -13}  # the corpus reaches every check


# ------------------------------------------------------------------ a real bundle
@pytest.fixture(scope="module")
def codec_bundle(tmp_path_factory) -> Path:
    """The digits PCA test bundle with codec tables for 4, 6 and 8 bits."""
    pytest.importorskip("onnx", reason="building the test bundle needs onnx (the train extra)")
    from edgeae.runtime import load, read_manifest, write_manifest
    from tests._bundles import digits_uint8, make_bundle

    folder, _ = make_bundle(tmp_path_factory.mktemp("bundle") / "b")
    codes = load(folder).encode(digits_uint8()[:1500])
    manifest = read_manifest(folder)
    manifest.codec = [LatentCodec.fit(codes, b).to_dict() for b in (4, 6, 8)]
    write_manifest(folder, manifest)
    return folder


def test_bundle_streams_match_and_decode_with_the_cli(tmp_path, codec_bundle):
    """write_codec on a bundle: every bit depth writes `edgeae compress`'s bytes, and
    `edgeae decompress` reads the C stream."""
    from click.testing import CliRunner

    from edgeae.cli import cli
    from edgeae.runtime import load
    from edgeae.runtime.compress import compress, decompress
    from tests._bundles import digits_uint8

    files = write_codec(codec_bundle, tmp_path / "c", prefix="digits", tool=True)
    assert {f.name for f in files} == {"eae_codec.h", "eae_codec.c", TOOL_FILE, "digits_codec.h",
                                       "digits_codec.c"}
    with pytest.raises(ConfigError, match="available: \\[4, 6, 8\\]"):
        write_codec(codec_bundle, tmp_path / "c", bits=5)
    model = load(codec_bundle)
    from edgeae.codegen.codec import bundle_codecs

    tool = build_tool(tmp_path / "c", bundle_codecs(codec_bundle), prefix="digits")
    x = digits_uint8()[1500:1530]
    codes = model.encode(x)
    for idx, bits in enumerate((4, 6, 8)):
        data = tool.compress(idx, codes, 1, 29)
        first = compress(model, x[:1], bits=bits)
        assert data == first + compress(model, x[1:], bits=bits)[S.read_header(first).header_size :]
        (tmp_path / f"s{bits}.eae").write_bytes(data)
        res = CliRunner().invoke(cli, ["decompress", str(codec_bundle), str(tmp_path / f"s{bits}.eae"),
                                       "-o", str(tmp_path / f"x{bits}.npy")])
        assert res.exit_code == 0, res.output
        np.testing.assert_array_equal(np.load(tmp_path / f"x{bits}.npy"), decompress(model, data))
