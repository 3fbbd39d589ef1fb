"""Data readers fuzzed by *value*: header dims, text encodings and archive sizes.

The structural fuzzing of tests/test_fuzz_parsers.py found no crash, yet zero, negative
and overflowing header dims, a byte-order mark and deflate bombs did: the classes here
generate those values. Every input goes through both readers, the whole-file one
(``load_array_input``: ``reconstruct``, training) and the block one (``RowSource``:
``encode``, ``compress``, Dask), which must agree: the same samples, or the same
:class:`DataError` message. A share of the inputs also goes through the CLI commands
``encode``, ``compress`` and ``reconstruct``: each ends in success or exit 1 with an
``Error: ...`` line and no traceback, and the three agree on which.
"""

from __future__ import annotations

import codecs
import gzip
import os
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeae.cli import cli
from edgeae.data import iter_blocks, load_array_input, load_dataset, npyfile, open_source
from edgeae.errors import DataError, EdgeAEError
from tests._bundles import make_bundle, with_codec

# 30 fixed examples per class in the suite; EDGEAE_FUZZ_EXAMPLES=N runs N fresh random ones (a deep run).
_DEEP = int(os.environ.get("EDGEAE_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_DEEP or 30, deadline=None, derandomize=not _DEEP, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
IMAGE = (1, 8, 8)  # the image bundle's sample shape
DIMS = st.sampled_from([0, 1, 2, 8, 10, 255, 2**16, 2**31 - 1, 2**31, 2**32 - 1]) | st.integers(0, 12)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """(image bundle (1, 8, 8), vector bundle (64,)), both with codec tables so compress works."""
    root = tmp_path_factory.mktemp("fuzz-readers")
    return (with_codec(make_bundle(root / "image", "image")[0]),
            with_codec(make_bundle(root / "vector", "vector")[0]))


def _outcome(fn):
    """('ok', array) or ('error', message); anything but a DataError fails the test."""
    try:
        return "ok", np.asarray(fn())
    except DataError as exc:
        return "error", str(exc)


def _blocks(path: Path, want: tuple[int, ...]) -> np.ndarray:
    source = open_source(path, want)
    return np.concatenate([b for _, b in iter_blocks(source, 5)])


def _same_everywhere(path: Path, want: tuple[int, ...]):
    """Both readers on ``path``: the same samples or the same error message; -> the outcome."""
    whole = _outcome(lambda: load_array_input(path, want))
    blocks = _outcome(lambda: _blocks(path, want))
    assert whole[0] == blocks[0], (path.name, whole, blocks)
    if whole[0] == "ok":
        assert whole[1].dtype.str[1:] == blocks[1].dtype.str[1:]  # same type (byte order aside)
        assert np.array_equal(whole[1], blocks[1], equal_nan=whole[1].dtype.kind in "fc")
    else:
        assert whole[1] == blocks[1]
    return whole


def _cli_agrees(bundle: Path, path: Path, tmp: Path) -> None:
    """encode, compress and reconstruct: success, or exit 1 with one `Error:` line; the same verdict."""
    verdicts = []
    for cmd, out in (("encode", "c.npy"), ("compress", "s.eae"), ("reconstruct", "r.npy")):
        r = CliRunner().invoke(cli, [cmd, str(bundle), str(path), "-o", str(tmp / out), "--overwrite"])
        lines = r.output.splitlines()
        ok = r.exit_code == 0 or (r.exit_code == 1 and lines and lines[-1].startswith("Error: "))
        assert ok and "Traceback" not in r.output and "Aborted!" not in r.output, (cmd, r.output, r.exception)
        assert "\r" not in r.output and "\0" not in r.output, (cmd, r.output)  # a message prints as it reads
        assert r.exception is None or isinstance(r.exception, SystemExit), (cmd, r.exception)
        verdicts.append(r.exit_code)
    assert len(set(verdicts)) == 1, (path.name, verdicts)


# ---- IDX: dims zero, overflowing, huge; bodies short, long, cut; raw and gzipped ----------------------
@st.composite
def idx_files(draw):
    code = draw(st.sampled_from([0x08, 0x08, 0x09, 0x0B, 0x0D, 0x0E, 0x0A]))
    ndim = draw(st.sampled_from([3, 3, 1, 2, 4, 0, 255]))
    dims = [draw(DIMS) for _ in range(min(ndim, 4))]
    if draw(st.booleans()) and ndim == 3:
        dims = [draw(st.integers(0, 40)), 8, 8]  # the model's shape: some succeed
    itemsize = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0D: 4, 0x0E: 8}.get(code, 1)
    need = int(np.prod(dims, dtype=object)) * itemsize if dims else 0
    body_len = {"exact": need, "short": max(0, need - draw(st.integers(1, 9))), "long": need + draw(st.integers(1, 9)),
                "none": 0}[draw(st.sampled_from(["exact", "exact", "short", "long", "none"]))]
    body = np.random.default_rng(draw(st.integers(0, 9))).integers(0, 255, min(body_len, 1 << 20), dtype=np.uint8)
    if code in (0x0D, 0x0E):
        body[:] = 0x3F  # finite floats (NaN checks are another class)
    head = bytes([0, 0, code, ndim]) + b"".join(struct.pack(">I", d) for d in dims)
    cut_header = draw(st.integers(0, len(head))) if draw(st.integers(0, 9)) == 0 else len(head)
    data = head[:cut_header] + body.tobytes()
    gz = draw(st.booleans())
    if gz:
        data = gzip.compress(data)
        if draw(st.integers(0, 3)) == 0:
            data = data[: draw(st.integers(0, len(data)))]  # a cut download
    return ("t-images-idx3-ubyte" + (".gz" if gz else "")), data


@FUZZ
@given(idx_files(), st.integers(0, 9), st.none() | st.binary(max_size=12).map(lambda b: b"\0\0\x08\x01" + b))
def test_fuzz_idx_dims(bundles, file, cli_share, labels):
    name, data = file
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        if labels is not None:  # a labels file beside it: no input of any command, whatever it holds
            (Path(tmp) / name.replace("images-idx3", "labels-idx1")).write_bytes(labels)
        _same_everywhere(path, IMAGE)
        if cli_share < 2:
            _cli_agrees(bundles[0], path, Path(tmp))


# ---- .npy: negative, zero, overflowing and huge shapes; every dtype kind; bodies that lie -------------
@st.composite
def npy_files(draw):
    dims = st.sampled_from([-1, -(2**63), 0, 1, 8, 2**31, 2**63 - 1, 2**64, 10**30]) | st.integers(0, 10)
    shape = tuple(draw(st.lists(dims, max_size=4)))
    if draw(st.booleans()):
        shape = (draw(st.integers(0, 30)), 8, 8)
    descr = draw(st.sampled_from(["|u1", "|u1", "<f4", ">f8", "<i2", "|b1", "<c8", "|V4", "<U3", "<M8[s]"]))
    shape_text = draw(st.sampled_from([repr(shape), repr(shape), "None", "(1.5, 8)", "'x'", "(-0, 8, 8)"]))
    head = f"{{'descr': '{descr}', 'fortran_order': {draw(st.booleans())}, 'shape': {shape_text}, }}"
    head += " " * ((-(10 + len(head) + 1)) % 64) + "\n"
    itemsize = np.dtype(descr).itemsize
    need = int(np.prod(shape, dtype=object)) * itemsize if all(d >= 0 for d in shape) else 0
    body_len = max(0, min(need + draw(st.sampled_from([0, 0, -1, 1, -need])), 1 << 20))
    body = (b"\x3f" * body_len) if descr[1] in "fc" else bytes(body_len)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode() + body


@FUZZ
@given(npy_files(), st.integers(0, 9))
def test_fuzz_npy_shapes(bundles, blob, cli_share):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npy"
        path.write_bytes(blob)
        _same_everywhere(path, IMAGE)
        if cli_share < 2:
            _cli_agrees(bundles[0], path, Path(tmp))


# ---- CSV: encodings (BOM, UTF-16, Latin-1), invalid bytes, NUL, line endings ---------------------------
@st.composite
def csv_files(draw):
    width = draw(st.sampled_from([3, 64]))
    n = draw(st.integers(1, 12))
    values = np.round(np.random.default_rng(draw(st.integers(0, 9))).normal(size=(n, width)) * 10, 3)
    lines = [",".join(repr(float(v)) for v in row) for row in values]
    if draw(st.booleans()):
        lines.insert(0, ",".join(draw(st.sampled_from(["f", "é", "x y", '"q"', "日本"])) + str(i) for i in range(width)))
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", " ", ",,", "\t"])))
    text = draw(st.sampled_from(["\n", "\r\n", "\n", "\r"])).join(lines) + draw(st.sampled_from(["", "\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "latin-1", "cp1252"]))
    data = bytearray(text.encode(encoding, errors="replace"))
    damage = draw(st.sampled_from(["none", "none", "nul", "invalid", "bom-late"]))
    if damage != "none" and data:
        at = draw(st.integers(0, len(data)))
        data[at:at] = {"nul": b"\0", "invalid": bytes([draw(st.integers(0x80, 0xFF))]),
                       "bom-late": codecs.BOM_UTF8}[damage]
    return width, bytes(data)


@FUZZ
@given(csv_files(), st.integers(0, 9))
def test_fuzz_csv_encodings(bundles, file, cli_share):
    width, data = file
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.csv"
        path.write_bytes(data)
        kind, got = _same_everywhere(path, (width,))
        if kind == "ok":  # every data row kept: none taken for a header because of its bytes
            text = data.removeprefix(codecs.BOM_UTF8).replace(b"\r", b"")
            rows = [r for r in text.split(b"\n") if r.strip(b" \t,")]
            assert len(got) in (len(rows), len(rows) - 1)
        if width == 64 and cli_share < 3:
            _cli_agrees(bundles[1], path, Path(tmp))


# ---- .npz: member sizes near and past the expansion cap, declared sizes that lie ----------------------
@st.composite
def npz_files(draw):
    rows = draw(st.sampled_from([1, 8, 64, 512, 4096]))
    fill = draw(st.sampled_from(["zeros", "random"]))
    x = np.zeros((rows, 8, 8), np.uint8) if fill == "zeros" else \
        np.random.default_rng(rows).integers(0, 255, (rows, 8, 8), dtype=np.uint8)
    method = draw(st.sampled_from([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED]))
    lie = draw(st.sampled_from([None, None, 0, 1, -1, 2**31, 2**32 - 1]))
    return x, method, lie, draw(st.sampled_from(["", "1", "50", "2000", "nan", "x"]))


def _set_declared_size(path: Path, size: int) -> None:
    """Rewrite the member's uncompressed size in the local header and the central directory."""
    data = bytearray(path.read_bytes())
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.find(sig)
        if pos >= 0:
            data[pos + at:pos + at + 4] = struct.pack("<I", size & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


@FUZZ
@given(npz_files())
def test_fuzz_npz_sizes(bundles, monkeypatch, archive):
    x, method, lie, ratio = archive
    monkeypatch.setattr(npyfile, "_EXPANSION_FLOOR", 0)  # small archives stand in for large bombs
    monkeypatch.setenv("EDGEAE_MAX_EXPANSION", ratio)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npz"
        with zipfile.ZipFile(path, "w", method) as z:
            with z.open("x.npy", "w") as f:
                np.save(f, x)
        if lie is not None:
            _set_declared_size(path, lie if lie >= 0 else x.nbytes + 128 + lie)
        kind, got = _same_everywhere(path, IMAGE)
        if kind == "ok":
            assert np.array_equal(got, x[:, None])
            info = zipfile.ZipFile(path).infolist()[0]
            if method == zipfile.ZIP_DEFLATED:
                assert info.file_size <= npyfile.expansion_cap(info.compress_size)
        elif lie is None and method == zipfile.ZIP_DEFLATED and ratio in ("", "1", "50", "2000"):
            assert "EDGEAE_MAX_EXPANSION" in got


# ---- regression: the exact CLI text for the inputs that crashed, in every command -----------------------
def _write(tmp: Path, name: str, data: bytes) -> Path:
    (tmp / name).write_bytes(data)
    return tmp / name


def _npy(shape_text: str, body: bytes) -> bytes:
    head = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {shape_text}, }}"
    head += " " * ((-(10 + len(head) + 1)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode() + body


@pytest.mark.parametrize("name, data, error", [
    ("s-images-idx3-ubyte", b"\0\0\x08\x03\0\0\0\x0a\0\0",
     "{p} is truncated: its header names 3 dims but the file ends after 1; download it again"),
    ("z-images-idx3-ubyte", b"\0\0\x08\x03" + struct.pack(">3I", 0, 8, 8),
     "{p} holds no values (header dims (0, 8, 8)); give a file with samples"),
    ("empty.npy", b"", "{p} could not be read as a numpy npy file (ValueError: EOF: reading magic string, "
                       "expected 8 bytes got 0)"),
    ("neg.npy", _npy("(-1, 8, 8)", bytes(64)),
     "{p} is corrupt: its header gives the negative shape (-1, 8, 8); write it again with np.save"),
])
def test_bad_headers_are_the_same_error_in_every_command(bundles, tmp_path, name, data, error):
    path = _write(tmp_path, name, data)
    for cmd, out in (("encode", "c.npy"), ("compress", "s.eae"), ("reconstruct", "r.npy")):
        r = CliRunner().invoke(cli, [cmd, str(bundles[0]), str(path), "-o", str(tmp_path / out)])
        assert r.exit_code == 1 and r.output == f"Error: {error.format(p=path)}\n", (cmd, r.output)


def test_cut_gzip_idx_and_bom_csv_in_every_command(bundles, tmp_path):
    body = np.random.default_rng(1).integers(0, 255, 1000 * 64, dtype=np.uint8).tobytes()
    cut = _write(tmp_path, "c-images-idx3-ubyte.gz",
                 gzip.compress(b"\0\0\x08\x03" + struct.pack(">3I", 1000, 8, 8) + body)[:1500])
    rows = load_dataset(bundles[1] / "samples.npy").x[:4]
    bom = _write(tmp_path, "bom.csv", codecs.BOM_UTF8 + "\n".join(",".join(map(repr, map(float, r)))
                                                                  for r in rows).encode())
    for cmd, out in (("encode", "c.npy"), ("compress", "s.eae"), ("reconstruct", "r.npy")):
        r = CliRunner().invoke(cli, [cmd, str(bundles[0]), str(cut), "-o", str(tmp_path / out), "--overwrite"])
        assert r.exit_code == 1 and r.output == (
            f"Error: {cut} could not be read as an IDX file (Compressed file ended before the end-of-stream "
            "marker was reached); is it a complete download?\n"), (cmd, r.output)
        r = CliRunner().invoke(cli, [cmd, str(bundles[1]), str(bom), "-o", str(tmp_path / out), "--overwrite"])
        assert r.exit_code == 0 and ("4 samples" in r.output or "Reconstructed 4 " in r.output), (cmd, r.output)


def test_api_errors_are_typed(bundles, tmp_path):
    """The same files through the library: DataError (an EdgeAEError), never another exception."""
    for name, data in (("e.npy", b""), ("z-images-idx3-ubyte", b"\0\0\x08\x03" + struct.pack(">3I", 0, 8, 8))):
        with pytest.raises(EdgeAEError):
            load_array_input(_write(tmp_path, name, data), IMAGE)


def test_a_nan_deep_in_a_large_file_is_named_by_its_sample_in_the_file(bundles, tmp_path):
    """Blocks are 16,384 samples here: a NaN at 16,500 is sample 16500, not 116 of its block."""
    x = np.random.default_rng(0).random((16_600, 8, 8), dtype=np.float32)
    x[16_500, 3, 3] = np.nan
    np.save(tmp_path / "x.npy", x)
    for cmd, out in (("encode", "c.npy"), ("compress", "s.eae"), ("reconstruct", "r.npy")):
        r = CliRunner().invoke(cli, [cmd, str(bundles[0]), str(tmp_path / "x.npy"), "-o", str(tmp_path / out)])
        assert r.exit_code == 1 and r.output == (f"Error: {tmp_path / 'x.npy'} contains NaN or inf (first in sample "
                                                 "16500); expected finite values\n"), (cmd, r.output)
