"""Every parser, fed malformed input by hypothesis: a typed EdgeAEError or a result, never a crash.

"Every malformed input is an error, never a crash": manifest.json, IDX, CSV, .npy/.npz,
image folders, code files for ``decode`` and arrays given to the API. Each generated input
goes through the library (an :class:`EdgeAEError` subclass is the only accepted failure)
and, for a share of them, through the CLI (exit 1 with ``Error: ...``, no traceback).
The tries and crashes per parser are counted and printed at the end of the module
(``EDGEAE_FUZZ_REPORT=path.json`` also writes them to a file).
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import math
import os
import shutil
import struct
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import edgeae.runtime as rt
from edgeae.cli import cli
from edgeae.data import load_dataset
from edgeae.errors import DataError, EdgeAEError
from tests._bundles import digits_uint8, make_bundle

# 120 fixed examples per parser in the suite; EDGEAE_FUZZ_EXAMPLES=N runs N fresh random ones (a deep run).
_DEEP = int(os.environ.get("EDGEAE_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_DEEP or 120, deadline=None, derandomize=not _DEEP, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HANG_S = 20.0  # one parse taking longer than this counts as a hang
COUNTS: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # parser -> [tried, crashed]


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    lines = [f"{name:<14} tried {t:>4}  crashed {c}" for name, (t, c) in sorted(COUNTS.items())]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        reporter.write_line("fuzzed parsers (inputs tried, crashes):")
        for line in lines:
            reporter.write_line("  " + line)
    out = os.environ.get("EDGEAE_FUZZ_REPORT")
    if out:
        Path(out).write_text(json.dumps({k: {"tried": t, "crashed": c} for k, (t, c) in COUNTS.items()}, indent=1))


def attempt(parser: str, fn) -> object:
    """Run ``fn``; an EdgeAEError is a correct refusal, anything else is a crash (counted, re-raised)."""
    COUNTS[parser][0] += 1
    t0 = time.perf_counter()
    try:
        return fn()
    except EdgeAEError:
        return None
    except BaseException:
        COUNTS[parser][1] += 1
        raise
    finally:
        if time.perf_counter() - t0 > HANG_S:
            COUNTS[parser][1] += 1
            pytest.fail(f"{parser}: one input took {time.perf_counter() - t0:.1f} s")


def cli_attempt(parser: str, args: list) -> None:
    """The CLI on one input: success, or exit 1 with ``Error: ...`` and no traceback."""
    COUNTS[parser + " (cli)"][0] += 1
    r = CliRunner().invoke(cli, [str(a) for a in args])
    lines = r.output.splitlines()  # `info` prints its table before the error
    ok = r.exit_code == 0 or (r.exit_code == 1 and any(x.startswith("Error: ") for x in lines)
                              and "Traceback" not in r.output)
    if not ok or (r.exception is not None and not isinstance(r.exception, SystemExit)):
        COUNTS[parser + " (cli)"][1] += 1
        raise AssertionError(f"{args}: exit {r.exit_code}, {r.output!r}, {r.exception!r}")


# ---- manifest.json -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle_copy(tmp_path_factory):
    """A real bundle whose manifest.json each example rewrites; returns (folder, valid manifest dict)."""
    folder = make_bundle(tmp_path_factory.mktemp("fuzz") / "b", "image")[0]
    return folder, json.loads((folder / "manifest.json").read_text())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
SPECIAL = st.sampled_from([
    -1, 0, 2**63, 10**12, float("nan"), float("inf"), -1e308, True, "", "../encoder.onnx", "/etc/passwd",
    "a/b.onnx", "..", "x\\y.onnx", [], {}, [10**9, 10**9, 10**9], [-3, 8, 8], None, "0" * 64, [1, 2, 3, 4],
])


def _mutate(data: dict, draw) -> dict:
    """Change one to three places of a valid manifest: delete, replace with junk, or add a key."""
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, 3))):
        node, path = data, []
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
            path.append(key)
            node = node[key]
        if not path:
            data[draw(st.text(max_size=6))] = draw(JSON)
            continue
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["delete", "junk", "special"]))
        if op == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON if op == "junk" else SPECIAL)
    return data


@FUZZ
@given(st.data())
def test_fuzz_manifest(bundle_copy, data):
    folder, valid = bundle_copy
    text = json.dumps(_mutate(valid, data.draw), allow_nan=True)
    (folder / "manifest.json").write_text(text)
    model = attempt("manifest", lambda: rt.load(folder))
    if model is not None:  # a manifest that still loads must still run
        attempt("manifest", lambda: model.reconstruct(digits_uint8()[:3]))
    attempt("manifest", lambda: rt.verify_bundle(folder))
    share = data.draw(st.integers(0, 19))
    if share < 2:
        cli_attempt("manifest", ["info", folder])
    elif share == 2:
        cli_attempt("manifest", ["bench", folder, "--batch", "1", "--threads", "1", "--iterations", "2",
                                 "--graph", "encoder", "--no-ceiling"])


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_manifest_bytes(bundle_copy, blob):
    folder, _ = bundle_copy
    (folder / "manifest.json").write_bytes(blob)
    attempt("manifest", lambda: rt.load(folder))


# Manifest VALUES by class, as JSON text (ints over 4,300 digits, NaN and lone surrogates cannot go
# through json.dumps): each example puts one to three of them at random places of a valid manifest.
_DIGITS = st.sampled_from([19, 20, 300, 4300, 4301, 5000])
VALUE_TEXT = st.one_of(
    _DIGITS.map(lambda n: "1" * n), _DIGITS.map(lambda n: "-" + "9" * n),  # huge and negative ints
    st.sampled_from(["-1", "0", "-0", "2147483648", "9223372036854775808", "18446744073709551616"]),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e308", "-1e308", "1e-320", "-0.0", "0.5", "16.0"]),
    st.sampled_from(["true", "false", "null", '""', "[]", "{}", "[1]", '{"a": 1}', '"16"', "[[[]]]"]),  # wrong types
    st.sampled_from(['"x\\ud800"', '"\\udfff"', '"\\ud800\\udc00"', '"a\\u0000b"', '"\\u202egnp"', '"\u00e9\u4e2d"',
                     '"\\u001b[2J"', '"' + "x" * 100_000 + '"', '["\\ud800"]', '{"\\ud800": 1}']),  # unicode
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),  # deep nesting (JSON's own limit is ~1000)
    st.integers(1, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.text(max_size=20).map(json.dumps),
)
KEY_TEXT = st.sampled_from(['"x\\ud800"', '"\\udfff"', '""', '"\\u0000"', '"graphs"', '"' + "k" * 10_000 + '"'])


def _plant(data: dict, draw, marks: list[str]) -> str:
    """``data`` as JSON text with value (or key) texts planted at random places."""
    data = copy.deepcopy(data)
    for i in range(len(marks)):
        node = data
        while True:
            keys = sorted(node) if isinstance(node, dict) else list(range(len(node)))
            key = draw(st.sampled_from(keys))
            child = node[key]
            if not (isinstance(child, (dict, list)) and child and draw(st.booleans())):
                break
            node = child
        if isinstance(node, dict) and draw(st.integers(0, 4)) == 0:  # a key, not a value
            node[f"@@K{i}@@"] = node.pop(key)
        else:
            node[key] = f"@@V{i}@@"
    out = json.dumps(data)
    for i, text in enumerate(marks):
        out = out.replace(f'"@@V{i}@@"', text).replace(f'"@@K{i}@@"', draw(KEY_TEXT))
    return out


@FUZZ
@given(st.data())
def test_fuzz_manifest_values(bundle_copy, data):
    """Huge, negative, wrong-type, non-finite, unicode and deeply nested values: an error or a working bundle."""
    folder, valid = bundle_copy
    marks = data.draw(st.lists(VALUE_TEXT, min_size=1, max_size=3))
    (folder / "manifest.json").write_text(_plant(valid, data.draw, marks), encoding="utf-8", errors="surrogatepass")
    model = attempt("manifest values", lambda: rt.load(folder))
    if model is not None:
        attempt("manifest values", lambda: model.decode(model.encode(digits_uint8()[:3])))
    attempt("manifest values", lambda: rt.verify_bundle(folder))
    share = data.draw(st.integers(0, 7))
    with tempfile.TemporaryDirectory() as tmp:
        if share == 0:
            cli_attempt("manifest values", ["info", folder])
        elif share == 1:
            cli_attempt("manifest values", ["encode", folder, folder / "samples.npy", "-o", Path(tmp) / "c.npy"])
        elif share == 2:
            np.save(Path(tmp) / "c.npy", np.zeros((2, 16), np.float32))
            cli_attempt("manifest values", ["decode", folder, Path(tmp) / "c.npy", "-o", Path(tmp) / "x.npy"])
        elif share == 3:
            cli_attempt("manifest values", ["reconstruct", folder, folder / "samples.npy"])


def test_manifest_deep_nesting_and_links_outside(bundle_copy, tmp_path):
    folder, valid = bundle_copy
    (folder / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(EdgeAEError, match="RecursionError"):
        rt.load(folder)
    copy_dir = tmp_path / "b"
    shutil.copytree(folder, copy_dir)
    (copy_dir / "manifest.json").write_text(json.dumps(valid))
    outside = tmp_path / "outside.onnx"
    shutil.copyfile(copy_dir / "encoder.onnx", outside)  # same bytes, same hash: only the link is wrong
    (copy_dir / "encoder.onnx").unlink()
    (copy_dir / "encoder.onnx").symlink_to(outside)
    with pytest.raises(EdgeAEError, match="outside the bundle folder"):
        rt.load(copy_dir)
    assert any("outside the bundle folder" in p for p in rt.verify_bundle(copy_dir))
    bad = dict(valid, samples={"file": "../outside.onnx", "sha256": "0" * 64, "count": 1})
    (copy_dir / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(EdgeAEError, match="bare file name"):
        rt.read_manifest(copy_dir)


@pytest.mark.parametrize("record", [
    {"hidden": "abc"}, {"kind": "conv", "input_shape": [1, 8], "code_size": 16, "channels": ["x"]},
    {"input_shape": "x"}, {"kind": "mlp", "input_shape": [1, 8, 8], "code_size": 16, "hidden": [10**9]},
])
def test_bench_survives_a_malformed_model_record(bundle_copy, record):
    """The ceiling reads the manifest's free-form model record: a bad one is skipped, not a crash."""
    folder, valid = bundle_copy
    (folder / "manifest.json").write_text(json.dumps(dict(valid, model=record)))
    r = CliRunner().invoke(cli, ["bench", str(folder), "--batch", "1", "--threads", "1", "--iterations", "2",
                                 "--graph", "encoder", "--precision", "fp32", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["ceiling"]["error"].startswith("ceiling skipped: ")


# ---- IDX -----------------------------------------------------------------------------------------
@FUZZ
@given(type_code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07, 0xFF]),
       dims=st.lists(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1)), max_size=5),
       ndim_lie=st.integers(-1, 1), body=st.binary(max_size=200), exact=st.booleans(), gz=st.booleans(),
       magic=st.binary(min_size=0, max_size=2))
def test_fuzz_idx(type_code, dims, ndim_lie, body, exact, gz, magic):
    itemsize = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(type_code, 1)
    if exact and math.prod(dims) * itemsize <= 4096:
        body = bytes(math.prod(dims) * itemsize)  # a consistent file
    ndim = max(0, min(255, len(dims) + ndim_lie))
    head = (magic + b"\x00\x00")[:2] + bytes([type_code, ndim]) + b"".join(struct.pack(">I", d) for d in dims)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("t-images-idx3-ubyte" + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(head + body) if gz else head + body)
        attempt("idx", lambda: load_dataset(path))


def test_idx_absurd_dims_allocate_nothing(tmp_path):
    path = tmp_path / "huge-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(100))
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_dataset(path)
    path.write_bytes(b"\x00\x00\x08\x05" + struct.pack(">IIIII", 0, 262, 262, 74814, 1795991467))
    with pytest.raises(DataError, match="holds no values"):  # 0 values, other dims past numpy's index range
        load_dataset(path)
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(100))
    gz = tmp_path / "huge-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_dataset(gz)


# ---- CSV -----------------------------------------------------------------------------------------
CSV_TEXT = st.lists(st.sampled_from(list('0123456789.,-+e "\n\r\tabnNIif_') + ["nan", "inf", "1e999", "\x00"]),
                    max_size=120).map("".join)


@FUZZ
@given(text=CSV_TEXT, bom=st.booleans(), raw=st.binary(max_size=60), use_raw=st.integers(0, 9))
def test_fuzz_csv(text, bom, raw, use_raw):
    blob = raw if use_raw == 0 else (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_bytes(blob)
        ds = attempt("csv", lambda: load_dataset(path))
        if ds is not None:
            assert ds.x.dtype == np.float32 and ds.x.ndim == 2 and np.isfinite(ds.x).all()


def test_csv_bom_quotes_one_column(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes(b"\xef\xbb\xbf1.5,2\n3,4\n")
    assert load_dataset(p).x.tolist() == [[1.5, 2.0], [3.0, 4.0]]  # the BOM does not make row 1 a header
    p.write_text('a,"b"\n"1","2"\n3,4\n')
    ds = load_dataset(p)
    assert ds.columns == ["a", "b"] and ds.x.tolist() == [[1, 2], [3, 4]]
    p.write_text("x\n1\n2\n3\n")
    assert load_dataset(p).x.shape == (3, 1)
    p.write_text("1,2\n3\n")
    with pytest.raises(DataError, match="line 2: 1 columns, expected 2"):
        load_dataset(p)


# ---- .npy / .npz and code files for decode -------------------------------------------------------
def _npy_bytes(arr: np.ndarray) -> bytes:
    f = io.BytesIO()
    np.save(f, arr)
    return f.getvalue()


NPY_DTYPES = ["<f4", ">f8", "<f2", "|u1", "<i8", "|b1", "<c8", "<U3", "|V4", "|S2", "<M8[s]"]


@st.composite
def npy_blobs(draw) -> bytes:
    shape = tuple(draw(st.lists(st.integers(0, 5), max_size=4)))
    dtype = np.dtype(draw(st.sampled_from(NPY_DTYPES)))
    arr = np.zeros(shape, dtype)
    if draw(st.booleans()) and arr.ndim >= 2:
        arr = np.asfortranarray(arr)
    blob = bytearray(_npy_bytes(arr))
    how = draw(st.sampled_from(["as is", "truncate", "flip", "header", "object", "huge header", "bytes"]))
    if how == "truncate" and blob:
        del blob[draw(st.integers(0, len(blob) - 1)):]
    elif how == "flip" and blob:
        for _ in range(draw(st.integers(1, 4))):
            blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
    elif how == "header":  # a lying shape in an otherwise valid header
        lie = tuple(draw(st.lists(st.one_of(st.integers(-5, 5), st.integers(0, 2**62)), max_size=4)))
        header = repr({"descr": dtype.str, "fortran_order": draw(st.booleans()), "shape": lie}).encode()
        header += b" " * (-(len(header) + 11) % 64) + b"\n"
        blob = bytearray(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(draw(st.integers(0, 64))))
    elif how == "object":
        header = b"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"
        header += b" " * (-(len(header) + 11) % 64) + b"\n"
        blob = bytearray(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x80\x04N." * 2)
    elif how == "huge header":
        header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), " + b" " * 70_000 + b"}\n"
        blob = bytearray(b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header + bytes(8))
    elif how == "bytes":
        blob = bytearray(draw(st.binary(max_size=100)))
    return bytes(blob)


@pytest.fixture(scope="module")
def fuzz_bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("fuzz") / "codes", "image")[0]


@FUZZ
@given(npy_blobs(), st.integers(0, 9))
def test_fuzz_npy(fuzz_bundle, blob, cli_share):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npy"
        path.write_bytes(blob)
        attempt("npy", lambda: load_dataset(path))
        model = _model(fuzz_bundle)
        x = attempt("npy", lambda: load_dataset(path).x)
        if x is not None:
            attempt("npy", lambda: model.encode(x))
        if cli_share < 3:
            cli_attempt("npy", ["encode", fuzz_bundle, path, "-o", Path(tmp) / "c.npy"])
            cli_attempt("codes", ["decode", fuzz_bundle, path, "-o", Path(tmp) / "o.npy"])


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["x", "y", "labels", "z"]), npy_blobs()), max_size=3),
       st.booleans(), st.integers(0, 3))
def test_fuzz_npz(members, compressed, damage):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npz"
        import zipfile

        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as z:
            for name, blob in members:
                z.writestr(name + ".npy", blob)
        if damage == 0 and path.stat().st_size > 10:
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0x55
            path.write_bytes(bytes(data))
        attempt("npz", lambda: load_dataset(path))


def test_npy_lying_header_allocates_nothing(tmp_path, fuzz_bundle):
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    path = tmp_path / "big.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(64))
    with pytest.raises(DataError, match=r"truncated or corrupt: its header says \(1000000, 1000000\) float32"):
        load_dataset(path)
    r = CliRunner().invoke(cli, ["decode", str(fuzz_bundle), str(path), "-o", str(tmp_path / "o.npy")])
    assert r.exit_code == 1 and "truncated or corrupt" in r.output


# ---- image folders -------------------------------------------------------------------------------
MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "I;16", "LA", "I", "F", "PA"]


@st.composite
def image_files(draw) -> tuple[str, bytes]:
    mode = draw(st.sampled_from(MODES))
    w, h = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    fmt = draw(st.sampled_from(["PNG", "JPEG", "TIFF", "GIF"]))
    seed = draw(st.integers(0, 2**16))
    img = Image.new(mode, (w, h))
    arr = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    img.paste(Image.fromarray(arr).convert(mode) if mode not in ("I;16",) else Image.fromarray(arr.astype(np.uint16) * 257))
    f = io.BytesIO()
    try:
        img.save(f, format=fmt)
    except (OSError, ValueError, KeyError):  # this format cannot hold this mode: save as PNG/TIFF
        f = io.BytesIO()
        img.save(f, format="TIFF")
    blob = bytearray(f.getvalue())
    how = draw(st.sampled_from(["as is", "as is", "truncate", "flip"]))
    if how == "truncate":
        del blob[draw(st.integers(0, len(blob) - 1)):]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 3))):
            blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
    suffix = {"PNG": ".png", "JPEG": ".jpg"}.get(fmt, draw(st.sampled_from([".png", ".jpeg"])))
    return suffix, bytes(blob)


@FUZZ
@given(st.lists(image_files(), min_size=1, max_size=3), st.sampled_from([None, (8, 8), (3, 5)]),
       st.integers(0, 9))
def test_fuzz_image_folder(fuzz_bundle, files, resize, cli_share):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "imgs"
        folder.mkdir()
        for i, (suffix, blob) in enumerate(files):
            (folder / f"{i:03d}{suffix}").write_bytes(blob)
        ds = attempt("images", lambda: load_dataset(folder, resize=resize))
        if ds is not None:
            assert ds.x.dtype == np.uint8 and ds.x.ndim == 4 and ds.x.shape[1] in (1, 3)
        if cli_share < 2:
            cli_attempt("images", ["encode", fuzz_bundle, folder, "--resize", "8x8", "-o", Path(tmp) / "c.npy"])


def test_decompression_bomb_is_an_error(fuzz_bundle, tmp_path):
    """A 20000x20000 1-bit PNG (a few kB) is past Pillow's bomb limit: Error, no traceback."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(digits_uint8()[0, 0]).save(folder / "a.png")
    Image.new("1", (20000, 20000)).save(folder / "b.png")
    assert (folder / "b.png").stat().st_size < 200_000
    r = CliRunner().invoke(cli, ["encode", str(fuzz_bundle), str(folder), "--resize", "8x8",
                                 "-o", str(tmp_path / "c.npy")])
    assert r.exit_code == 1 and "Traceback" not in r.output and isinstance(r.exception, SystemExit)
    assert r.output.startswith(f"Error: {folder / 'b.png'} is too large to decode safely (")
    with pytest.raises(DataError, match="too large to decode safely"):
        load_dataset(folder, resize=(8, 8))


# ---- arrays given to the API ---------------------------------------------------------------------
@FUZZ
@given(shape=st.lists(st.integers(0, 9), max_size=5), dtype=st.sampled_from(
    ["uint8", "float32", "float64", "float16", "int64", "uint16", "bool", "complex64", "int8"]),
    fill=st.sampled_from([0, 1, 255, -3, 0.5, float("nan"), float("inf"), 1e39, 300]))
def test_fuzz_api_arrays(fuzz_bundle, shape, dtype, fill):
    model = _model(fuzz_bundle)
    with np.errstate(invalid="ignore", over="ignore"):
        x = np.full(shape, fill).astype(dtype)
    for fn in (model.encode, model.reconstruct, model.decode, model.to_model_units):
        out = attempt("api arrays", lambda f=fn: f(x))
        if out is not None:
            assert np.isfinite(out).all() if out.dtype.kind == "f" else True


_MODELS: dict = {}


def _model(folder):
    if folder not in _MODELS:
        _MODELS[folder] = rt.load(folder)
    return _MODELS[folder]
