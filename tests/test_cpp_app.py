"""examples/cpp: the C++ app on ONNX Runtime's C++ API equals the Python runtime, byte for byte
in its streams, which `edgeae decompress` reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeae.codegen.codec import bundle_codecs, write_codec
from edgeae.runtime import stream as S

CPP = Path(__file__).resolve().parents[1] / "examples" / "cpp"
CXX = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
MAKE = shutil.which("make")
GRAPHS = ["encoder.onnx", "encoder.raw.onnx", "encoder.int8-dynamic.onnx", "encoder.int8-dynamic.raw.onnx"]


@pytest.fixture(scope="module")
def ort_dir() -> Path:
    """ONNX Runtime headers + library via examples/cpp/setup_ort.sh (skips, saying why)."""
    if not (CXX and CC and MAKE):
        pytest.skip("a C/C++ compiler and make are needed for examples/cpp (apt-get install g++ make)")
    res = subprocess.run([str(CPP / "setup_ort.sh")], capture_output=True, text=True, timeout=1200,
                         env={**os.environ, "PYTHON": sys.executable})
    if res.returncode != 0:
        pytest.skip(f"ONNX Runtime C++ headers unavailable: {res.stderr.strip()}")
    return CPP / "ort"


@pytest.fixture(scope="module")
def app(ort_dir, mlp_bundle, tmp_path_factory) -> Path:
    """The app built with the plain Makefile and the C codec of the test bundle."""
    out = tmp_path_factory.mktemp("cpp")
    write_codec(mlp_bundle, out / "codec")
    res = subprocess.run([MAKE, "-C", str(CPP), f"ORT_DIR={ort_dir}", f"CODEC_DIR={out / 'codec'}",
                          f"BUILD={out / 'build'}"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return out / "build" / "edgeae_encode"


def _run(app: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(app), *map(str, args)], capture_output=True, text=True, timeout=300)


def _python_codes(bundle: Path, graph: str, x: np.ndarray) -> np.ndarray:
    """The Python runtime's codes of this very graph file (same library, same preprocessing)."""
    import onnxruntime as ort

    from edgeae.runtime import read_manifest
    from edgeae.runtime.preprocess import Normalizer
    from edgeae.runtime.session import session_options

    m = read_manifest(bundle)
    sess = ort.InferenceSession(str(bundle / graph), session_options(1), providers=["CPUExecutionProvider"])
    feed = x if ".raw." in graph else Normalizer(m.normalization, m.sample_shape).normalize(x)
    return sess.run(["code"], {"x": feed})[0]


@pytest.mark.parametrize("graph", GRAPHS)
def test_codes_and_stream_equal_python(app, mlp_bundle, tmp_path, graph):
    from click.testing import CliRunner

    from edgeae.cli import cli
    from edgeae.runtime import load
    from edgeae.runtime.compress import decompress

    x = np.load(mlp_bundle / "samples.npy")[:24]
    np.save(tmp_path / "x.npy", x)
    res = _run(app, mlp_bundle / graph, tmp_path / "x.npy", "-c", tmp_path / "codes.npy",
               "-s", tmp_path / "s.eae")
    assert res.returncode == 0, res.stderr
    codes = np.load(tmp_path / "codes.npy")
    np.testing.assert_allclose(codes, _python_codes(mlp_bundle, graph, x), rtol=1e-6, atol=1e-6)
    precision = "int8-dynamic" if "int8" in graph else "fp32"
    np.testing.assert_allclose(codes, load(mlp_bundle, precision).encode(x), rtol=1e-6, atol=1e-6)
    codec, mid = bundle_codecs(mlp_bundle)[0]
    data = (tmp_path / "s.eae").read_bytes()
    assert data == S.compress_codes(codec, mid, codes)
    res = CliRunner().invoke(cli, ["decompress", str(mlp_bundle), str(tmp_path / "s.eae"), "-o",
                                   str(tmp_path / "y.npy")])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), decompress(load(mlp_bundle), data))


def test_pgm_float_npy_append_and_bits(app, mlp_bundle, tmp_path):
    """PGM images give the .npy rows' codes; float32 input is taken as normalized; --append
    adds a chunk; --bits picks another table."""
    x = np.load(mlp_bundle / "samples.npy")[:3]
    for i in range(3):
        (tmp_path / f"{i}.pgm").write_bytes(b"P5\n# digit\n8 8\n255\n" + x[i].tobytes())
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "xf.npy", (x / np.float32(255)).astype(np.float32))
    enc = mlp_bundle / "encoder.onnx"
    assert _run(app, enc, *(tmp_path / f"{i}.pgm" for i in range(3)), "-c", tmp_path / "p.npy").returncode == 0
    assert _run(app, enc, tmp_path / "x.npy", "-c", tmp_path / "n.npy").returncode == 0
    assert _run(app, enc, tmp_path / "xf.npy", "-c", tmp_path / "f.npy").returncode == 0
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), np.load(tmp_path / "n.npy"))
    np.testing.assert_allclose(np.load(tmp_path / "f.npy"), np.load(tmp_path / "n.npy"), atol=1e-6)
    for _ in range(2):
        assert _run(app, enc, tmp_path / "x.npy", "-s", tmp_path / "a.eae", "--append").returncode == 0
    info = S.read_header((tmp_path / "a.eae").read_bytes())
    assert (info.samples, info.chunks) == (6, 2)
    codecs = bundle_codecs(mlp_bundle)
    other, mid = codecs[1]
    assert _run(app, enc, tmp_path / "x.npy", "-s", tmp_path / "b.eae", "--bits", other.bits).returncode == 0
    assert (tmp_path / "b.eae").read_bytes() == S.compress_codes(other, mid, np.load(tmp_path / "n.npy"))


def test_clear_errors(app, mlp_bundle, tmp_path):
    res = _run(app, mlp_bundle / "decoder.onnx", mlp_bundle / "samples.npy", "-c", tmp_path / "c.npy")
    assert res.returncode == 1 and res.stderr.startswith("Error: ") and "not an encoder" in res.stderr
    (tmp_path / "big.pgm").write_bytes(b"P5 9 9 255\n" + bytes(81))
    res = _run(app, mlp_bundle / "encoder.onnx", tmp_path / "big.pgm", "-c", tmp_path / "c.npy")
    assert res.returncode == 1 and "9x9" in res.stderr and "resize" in res.stderr
    res = _run(app, mlp_bundle / "encoder.raw.onnx", mlp_bundle / "samples.npy", "-s", tmp_path / "x.eae",
               "--bits", "3")
    assert res.returncode == 1 and "--bits 3" in res.stderr


@pytest.mark.slow
def test_cmake_build(ort_dir, mlp_bundle, tmp_path):
    """The CMake build compiles the same program."""
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed (apt-get install cmake)")
    write_codec(mlp_bundle, tmp_path / "codec")
    for cmd in ([cmake, "-S", str(CPP), "-B", str(tmp_path / "b"), f"-DORT_DIR={ort_dir}",
                 f"-DCODEC_DIR={tmp_path / 'codec'}"], [cmake, "--build", str(tmp_path / "b")]):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, res.stdout + res.stderr
    res = _run(tmp_path / "b" / "edgeae_encode", mlp_bundle / "encoder.onnx", mlp_bundle / "samples.npy",
               "-c", tmp_path / "c.npy")
    assert res.returncode == 0, res.stderr
    assert np.load(tmp_path / "c.npy").shape == (len(np.load(mlp_bundle / "samples.npy")), 16)
