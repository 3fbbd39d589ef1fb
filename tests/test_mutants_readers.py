"""Direct tests of the data readers (edgeae/data/load.py, npyfile.py, source.py), written from
the mutants that survived the readers group's other tests (docs/testing.md): format
detection name by name, every refusal word for word (users read them after ``Error:``),
header checks at their exact limits, the expansion cap, labels, and row sources read by
ranges, by indices and in blocks, all on small arrays the tests write."""

from __future__ import annotations

import gzip
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeae.data import load as load_mod
from edgeae.data import npyfile, source
from edgeae.data.load import (
    FORMATS,
    SUPPORTED,
    detect_format,
    load_array_input,
    load_dataset,
    open_source,
    open_training_source,
    parse_resize,
)
from edgeae.data.npyfile import (
    CAP_HINT,
    NpyLayout,
    NpySource,
    expansion_cap,
    npy_layout,
    npz_keys,
    open_npy,
    read_array_file,
    read_npy,
    read_npz,
)
from edgeae.data.signals import SignalSpec
from edgeae.data.source import (
    ArraySource,
    Dataset,
    RowSource,
    arrange,
    as_samples,
    check_finite,
    check_samples,
    iter_blocks,
    resize_array,
    shape_mismatch,
)
from edgeae.errors import DataError

MAX = np.iinfo(np.intp).max
MIB64 = 64 << 20


def _err(fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def _npy_bytes(header: str, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """A .npy file with a header dict written by hand (padded as numpy pads it)."""
    if version == (1, 0):
        fixed = 6 + 2 + 2
        pad = -(fixed + len(header) + 1) % 64
        text = (header + " " * pad + "\n").encode("latin1")
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data
    fixed = 6 + 2 + 4
    pad = -(fixed + len(header) + 1) % 64
    text = (header + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(text)) + text + data


def _hdr(shape: tuple, descr: str = "|u1", fortran: bool = False) -> str:
    return f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape!r}, }}"


# =============================================================== load.py
def test_formats_and_supported_text():
    assert FORMATS == ("digits", "idx", "npy", "npz", "images", "csv", "ts")
    assert SUPPORTED == (
        "'digits', an MNIST IDX file (*-idx3-ubyte[.gz]) or a folder holding one, "
        "a .npy/.npz array, a PNG/JPEG image or a folder of them, a .csv file, or a UCR/UEA .ts file")


@pytest.mark.parametrize("text, size", [(None, None), ("", None), ("   ", None), ("28x28", (28, 28)),
                                        (" 3X14 ", (3, 14)), ("1x1", (1, 1)), ("12 x 7", (12, 7))])
def test_parse_resize_accepts(text, size):
    assert parse_resize(text) == size


@pytest.mark.parametrize("text", ["28", "0x5", "5x0", "-1x4", "ax3", "3xb", "x", "2x3x4", 7])
def test_parse_resize_refuses_word_for_word(text):
    assert _err(parse_resize, text) == (
        f"resize must look like HxW with positive integers (e.g. 28x28), got {text!r}")


def test_detect_format_of_files(tmp_path):
    cases = {
        "train-images-idx3-ubyte": "idx", "t10k-labels.ubyte.npy": "idx", "my_IDX": "idx", "IDX.gz": "idx",
        "idx.npy": "npy", "a.NPY": "npy", "a.npz": "npz", "a.png": "images", "a.JPG": "images",
        "a.jpeg": "images", "a.csv": "csv", "a.ts": "ts", "a.TS": "ts",
    }
    for name, fmt in cases.items():
        p = tmp_path / name
        p.write_bytes(b"")
        assert detect_format(p) == fmt, name
    odd = tmp_path / "a.idx"  # "idx" in the name but a suffix other than .gz or none
    odd.write_bytes(b"")
    assert _err(detect_format, odd) == f"{odd}: unknown data format '.idx'; give {SUPPORTED}"
    none = tmp_path / "plain"
    none.write_bytes(b"")
    assert _err(detect_format, none) == f"{none}: unknown data format '(no extension)'; give {SUPPORTED}"
    txt = tmp_path / "a.TXT"
    txt.write_bytes(b"")
    assert _err(detect_format, txt) == f"{txt}: unknown data format '.txt'; give {SUPPORTED}"


def test_detect_format_of_folders(tmp_path):
    idx = tmp_path / "idx"
    idx.mkdir()
    (idx / "a.png").write_bytes(b"")
    (idx / "train-images-idx3-ubyte").write_bytes(b"")
    assert detect_format(idx) == "idx"  # IDX wins over images
    img = tmp_path / "img"
    img.mkdir()
    (img / "train-images-idx3-ubyte").mkdir()  # a folder of that name is no IDX file
    (img / "B.JPEG").write_bytes(b"")
    assert detect_format(img) == "images"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.png").mkdir()  # folders are not image files either
    (empty / "notes.txt").write_bytes(b"")
    assert _err(detect_format, empty) == (
        f"{empty} holds no *images-idx3-ubyte* file and no .png/.jpg/.jpeg images; give {SUPPORTED}")


def test_signals_refused_for_images_and_resize(tmp_path):
    win = SignalSpec(window=4)
    assert _err(load_dataset, "digits", signal=win) == (
        "digits holds images; signals (--signal, --window) are read from .ts, .npy/.npz or .csv files")
    idx = tmp_path / "train-images-idx3-ubyte"
    idx.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 1, 2, 2) + bytes(4))
    assert _err(load_dataset, idx, signal=win) == (
        f"{idx} holds IDX images; signals (--signal, --window) are read from .ts, .npy/.npz or .csv files")
    png = tmp_path / "a.png"
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(png)
    assert _err(open_source, png, signal=win) == (
        f"{png} holds images; signals (--signal, --window) are read from .ts, .npy/.npz or .csv files")
    npy = tmp_path / "s.npy"
    np.save(npy, np.zeros((2, 3, 8), np.float32))
    assert _err(load_dataset, npy, (2, 2), SignalSpec(signal=True)) == (
        f"--resize applies to images only; {npy} is read as signals")
    npz = tmp_path / "s.npz"
    np.savez(npz, x=np.zeros((2, 3, 8), np.float32))
    assert load_dataset(npz, signal=SignalSpec(window=4)).x.shape == (4, 3, 4)
    # an inactive spec reads the file as it is; a .ts file is read as signals with no spec at all
    assert load_dataset(npy, signal=SignalSpec()).format == "npy"
    ts = tmp_path / "a.ts"
    ts.write_text("@problemName t\n@timestamps false\n@univariate true\n@classLabel false\n@data\n"
                  "1,2,3,4\n5,6,7,8\n", encoding="utf-8")
    ds = load_dataset(ts)
    assert ds.x.shape == (2, 1, 4) and ds.format == "ts"
    assert _err(load_dataset, ts, (2, 2)) == f"--resize applies to images only; {ts} is read as signals"


def test_load_dataset_npz_labels_and_image_flag(tmp_path):
    p = tmp_path / "a.npz"
    np.savez(p, x=np.arange(12, dtype=np.uint8).reshape(3, 4), y=np.array([1, 2]))
    assert _err(load_dataset, p) == f"{p}: 2 labels for 3 samples; give labels of the same length"
    np.savez(p, x=np.arange(12, dtype=np.uint8).reshape(3, 4), y=np.array([1, 2, 3]))
    ds = load_dataset(p)
    assert (ds.format, ds.is_image, ds.source, ds.x.shape) == ("npz", False, str(p), (3, 4))
    np.testing.assert_array_equal(ds.labels, [1, 2, 3])
    np.savez(p, x=np.arange(12, dtype=np.uint8).reshape(3, 2, 2))
    ds = load_dataset(p)
    assert (ds.is_image, ds.x.shape, ds.labels) == (True, (3, 1, 2, 2), None)
    ds = load_dataset(p, (4, 4))
    assert ds.x.shape == (3, 1, 4, 4) and ds.x.dtype == np.uint8
    assert load_dataset().source == "digits"
    nan = tmp_path / "n.npy"
    np.save(nan, np.array([[0.0], [np.nan]], np.float32))
    assert _err(load_dataset, nan) == (
        f"{nan} contains NaN or infinite values (the first in sample 2); clean or drop them first")
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "a.png")
    assert load_dataset(folder, (2, 3)).x.shape == (1, 1, 2, 3)
    missing = tmp_path / "nope.npy"
    assert _err(load_dataset, missing) == f"{missing} not found: give {SUPPORTED}"


def test_load_dataset_csv_and_idx_resize(tmp_path):
    idx = tmp_path / "train-images-idx3-ubyte"
    pix = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    idx.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 3, 3) + pix.tobytes())
    ds = load_dataset(idx)
    np.testing.assert_array_equal(ds.x[:, 0], pix)
    assert load_dataset(idx, (3, 3)).x.shape == (2, 1, 3, 3)
    assert load_dataset(idx, (5, 6)).x.shape == (2, 1, 5, 6)
    csv = tmp_path / "a.csv"
    csv.write_text("1,2\n3,4\n", encoding="utf-8")
    ds = load_dataset(csv)
    assert ds.format == "csv" and ds.x.tolist() == [[1, 2], [3, 4]]
    assert _err(load_dataset, csv, (2, 2)) == (
        f"--resize applies to images only; {csv} holds vectors of shape (2,)")


def test_open_training_source_formats(tmp_path):
    imgs = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    npy = tmp_path / "i.npy"
    np.save(npy, imgs)
    src, fmt, is_image = open_training_source(npy)
    assert (type(src), src.path, src.shape, src.dtype, fmt, is_image) == (
        NpySource, str(npy), (3, 1, 4, 5), "uint8", "npy", True)
    np.testing.assert_array_equal(src.read(1, 2)[:, 0], imgs[1:])
    src, _, _ = open_training_source(str(npy), resize=(2, 3))
    assert (src.shape, src.resize, src.path) == ((3, 1, 2, 3), (2, 3), str(npy))
    vec = tmp_path / "v.npy"
    np.save(vec, np.ones((4, 6), np.float64))
    src, fmt, is_image = open_training_source(vec)
    assert (src.shape, src.dtype, fmt, is_image) == ((4, 6), "float32", "npy", False)
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 2, 2) + bytes(range(8))))
    src, fmt, is_image = open_training_source(gz)
    assert (type(src), src.path, src.shape, fmt, is_image) == (ArraySource, str(gz), (2, 1, 2, 2), "idx", True)
    raw = tmp_path / "train-images-idx3-ubyte"
    raw.write_bytes(gzip.decompress(gz.read_bytes()))
    src, fmt, is_image = open_training_source(raw)
    assert (src.kind, src.shape, fmt, is_image) == ("idx", (2, 1, 2, 2), "idx", True)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((4, 4), i, np.uint8)).save(folder / f"{i}.png")
    src, fmt, is_image = open_training_source(folder, (2, 2))
    assert (src.kind, src.shape, fmt, is_image) == ("images", (2, 1, 2, 2), "images", True)
    one = folder / "0.png"
    src, fmt, is_image = open_training_source(one)
    assert (type(src), src.shape, fmt, is_image) == (ArraySource, (1, 1, 4, 4), "images", True)
    src, fmt, is_image = open_training_source("digits")
    assert (type(src), src.path, fmt, is_image, src.shape) == (ArraySource, "digits", "digits", True, (1797, 1, 8, 8))
    missing = tmp_path / "none.npy"
    assert _err(open_training_source, missing) == f"{missing} not found: give {SUPPORTED}"
    with pytest.raises(DataError, match="digits holds images"):
        open_training_source("digits", signal=SignalSpec(signal=True))


def test_open_training_source_edges(tmp_path, monkeypatch):
    missing = tmp_path / "none.npy"  # not found comes first, signals or not
    assert _err(open_training_source, missing, signal=SignalSpec(window=4)) == f"{missing} not found: give {SUPPORTED}"
    monkeypatch.chdir(tmp_path)
    Path("digits").mkdir()  # the built-in name wins over a folder of that name
    src, fmt, _ = open_training_source("digits")
    assert (fmt, src.shape) == ("digits", (1797, 1, 8, 8))
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 2, 2) + bytes(range(8))))
    src, fmt, _ = open_training_source(gz, resize=(4, 3))  # read whole, resized all the same
    assert (type(src), src.shape, fmt) == (ArraySource, (2, 1, 4, 3), "idx")
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "a.png")
    Image.fromarray(np.zeros((6, 5), np.uint8)).save(folder / "b.png")
    src, _, _ = open_training_source(folder, resize=(2, 2))  # sizes differ: fine when resized
    assert src.read(0, 2).shape == (2, 1, 2, 2)
    assert "have different sizes" in _err(open_training_source, folder)


def test_training_sources_are_settled_from_their_first_row(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("one.npy", np.arange(4, dtype=np.float32).reshape(1, 4))
    src, _, _ = open_training_source("./one.npy")  # the path as the user wrote it, in every message
    assert (src.path, src.shape, src.dtype) == ("./one.npy", (1, 4), "float32")
    assert open_source("./one.npy").path == "./one.npy"
    x = np.zeros((3, 2), np.float32)
    x[0, 1] = np.nan
    np.save("a.npy", x)
    assert _err(open_training_source, "a.npy") == (
        "a.npy contains NaN or infinite values (the first in sample 1); clean or drop them first")
    x[0, 1], x[1, 0] = 0, np.inf
    np.save("a.npy", x)
    src, _, _ = open_training_source("a.npy")  # one row read to open it: the rest when read
    assert "(the first in sample 2)" in _err(src.read, 0, 3)


def test_open_training_source_of_signals(tmp_path):
    x = np.arange(2 * 3 * 8, dtype=np.float32).reshape(2, 3, 8)
    npy = tmp_path / "s.npy"
    np.save(npy, x)
    src, fmt, is_image = open_training_source(str(npy), signal=SignalSpec(window=4))
    assert (src.path, src.shape, src.dtype, fmt, is_image) == (str(npy), (4, 3, 4), "float32", "npy", False)
    np.testing.assert_array_equal(src.read(1, 1)[0], x[0, :, 4:])


def test_open_source_formats(tmp_path):
    missing = tmp_path / "none.npy"
    assert _err(open_source, missing) == (
        f"{missing} not found: give a .npy/.npz, IDX, image folder, CSV or .ts file")
    x = np.arange(2 * 6, dtype=np.float32).reshape(2, 6)
    npy = tmp_path / "v.npy"
    np.save(npy, x.reshape(2, 2, 3))
    src = open_source(str(npy), (2, 3))
    assert (src.kind, src.path, src.shape, src.want, src.dtype) == ("npy", str(npy), (2, 2, 3), (2, 3), "float32")
    one = tmp_path / "one.npy"
    np.save(one, x[0].reshape(2, 3))  # one sample: read whole
    src = open_source(one, (2, 3))
    assert (src.kind, src.shape) == ("memory", (1, 2, 3))
    np.testing.assert_array_equal(src.read(0, 1), x[:1].reshape(1, 2, 3))
    flat = tmp_path / "flat.npy"
    np.save(flat, x[0])  # 1-D: one sample
    assert open_source(flat, (6,)).kind == "memory"
    np.save(flat, x)
    assert open_source(flat, (6,)).kind == "npy"  # two samples of the model's shape: row blocks
    assert open_source(flat, (1, 2, 3)).kind == "npy"  # flat rows of an image model: row blocks
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 5), np.float32))  # fits no layout: the whole-file reader refuses it
    assert _err(open_source, bad, (1, 2, 3)) == (
        f"{bad} holds samples of shape (5,), but the model expects (1, 2, 3); "
        "give data with the shape the model was trained on")
    idx = tmp_path / "train-images-idx3-ubyte"
    idx.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 2, 3) + bytes(range(12)))
    src = open_source(idx, (6,))  # memory-mapped rows, arranged
    assert (src.kind, src.shape) == ("idx", (2, 6))
    np.testing.assert_array_equal(src.read(1, 1), [list(range(6, 12))])
    csv = tmp_path / "a.csv"
    csv.write_text("1,2\n3,4\n", encoding="utf-8")
    src = open_source(csv)
    assert (src.kind, src.shape) == ("csv", (2, 2))
    npz = tmp_path / "a.npz"
    np.savez(npz, x=x)
    src = open_source(npz, (6,))
    assert (src.kind, src.path, src.shape, src.want) == ("memory", str(npz), (2, 6), (6,))
    assert open_source(npz, (1, 2, 3)).shape == (2, 1, 2, 3)
    src = open_source(npz)
    assert (src.kind, src.shape) == ("memory", (2, 6))
    stored = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    np.savez(npz, x=stored)
    np.save(tmp_path / "stored.npy", stored)
    for p in (npz, tmp_path / "stored.npy"):  # no model shape: the rows as stored, whichever array file holds them
        got = open_source(p).read(0, 2)
        assert got.dtype == np.float64 and got.shape == (2, 3, 4), p
    assert open_source(npz, resize=(2, 2)).shape == (2, 1, 2, 2)
    sig = open_source(npy, (2, 3), signal=SignalSpec(signal=True))
    assert (sig.path, sig.want, sig.shape) == (str(npy), (2, 3), (2, 2, 3))
    sig = open_source(npy, (2, 2), signal=SignalSpec(window=2, hop=1))
    assert (sig.want, sig.shape) == ((2, 2), (4, 2, 2))
    np.testing.assert_array_equal(sig.read(3, 1)[0], x.reshape(2, 2, 3)[1, :, 1:])
    assert _err(open_source, npy, (2, 3), (2, 2), SignalSpec(signal=True)) == (
        f"--resize applies to images only; {npy} is read as signals")
    assert open_source("digits").shape == (1797, 1, 8, 8)


def test_open_source_of_images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.full((4, 4), 3, np.uint8)).save(folder / "a.png")
    Image.fromarray(np.full((6, 5), 9, np.uint8)).save(folder / "b.png")
    src = open_source(folder, (1, 2, 2), (2, 2))  # decoded file by file, resized while decoded
    assert (src.kind, src.resize, src.shape) == ("images", (2, 2), (2, 1, 2, 2))
    assert src.read(0, 2)[:, 0, 0, 0].tolist() == [3, 9]
    assert "have different sizes" in _err(open_source, folder, (1, 4, 4))
    one = folder / "a.png"
    src = open_source(one, (1, 2, 2), (2, 2))  # one image: read whole, resized
    assert (src.kind, src.shape) == ("memory", (1, 1, 2, 2))
    idx = tmp_path / "train-images-idx3-ubyte"
    idx.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 3, 4, 4) + bytes(48))
    src = open_source(idx, (1, 2, 2), (2, 2))  # rows resized block by block
    assert (src.kind, src.resize, src.shape) == ("idx", (2, 2), (3, 1, 2, 2))
    (tmp_path / "empty").mkdir()
    assert _err(open_source, tmp_path / "empty", (1, 2, 2)).startswith(f"{tmp_path / 'empty'} holds no *images-idx3")


def test_load_array_input_paths(tmp_path):
    x = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    npz = tmp_path / "a.NPZ"
    with open(npz, "wb") as f:
        np.savez(f, x=x)
    got = load_array_input(npz, (1, 4, 4))
    assert got.shape == (2, 1, 4, 4) and got.dtype == np.uint8
    got = load_array_input(npz, (1, 2, 2), resize=(2, 2))
    assert got.shape == (2, 1, 2, 2)
    empty = tmp_path / "e.npy"
    np.save(empty, np.zeros((0, 3), np.float32))
    assert _err(load_array_input, empty, (3,)) == f"{empty} holds no samples (shape (0, 3)); give at least one"
    idx = tmp_path / "t10k-images-idx3-ubyte"
    idx.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 4, 4) + x.tobytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"damaged")  # never read for input
    np.testing.assert_array_equal(load_array_input(idx, (16,)), x.reshape(2, 16))
    assert load_array_input(idx, (1, 2, 2), (2, 2)).shape == (2, 1, 2, 2)
    vec = tmp_path / "v-images-idx3-ubyte"
    vec.write_bytes(bytes([0, 0, 8, 2]) + struct.pack(">2I", 2, 3) + bytes(6))
    assert _err(load_array_input, vec, (3,), (2, 2)) == (
        f"--resize applies to images only; {vec} holds vectors of shape (3,)")
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.full((4, 4), 9, np.uint8)).save(folder / "a.png")
    assert load_array_input(folder, (1, 4, 4)).tolist() == [[np.full((4, 4), 9).tolist()]]
    one = tmp_path / "z.npy"
    np.save(one, np.zeros((0,), np.float32))  # 1-D empty: no samples after arranging
    assert _err(load_array_input, one, ()) == f"{one} holds no samples (shape (0,)); give at least one"
    csv = tmp_path / "s.csv"
    csv.write_text("1,2,3,4\n5,6,7,8\n", encoding="utf-8")
    got = load_array_input(csv, (4, 2), signal=SignalSpec(window=2))  # rows are time steps of 4 channels
    np.testing.assert_array_equal(got, [[[1, 5], [2, 6], [3, 7], [4, 8]]])


def test_load_array_input_keeps_the_stored_dtype_and_refuses_alike(tmp_path):
    x = np.arange(12, dtype=np.float64).reshape(2, 6)
    for name in ("a.npz", "a.npy"):
        p = tmp_path / name
        np.savez(p, x=x) if name.endswith("z") else np.save(p, x)
        got = load_array_input(p, (1, 2, 3))
        assert got.dtype == np.float64 and got.shape == (2, 1, 2, 3)  # the model's contract casts it later
        np.savez(p, x=x[:0]) if name.endswith("z") else np.save(p, x[:0])
        assert _err(load_array_input, p, (1, 2, 3)) == f"{p} holds no samples (shape (0, 6)); give at least one"
    vec = tmp_path / "v.npy"
    np.save(vec, x)
    assert _err(load_array_input, vec, (6,), (2, 2)) == (
        f"--resize applies to images only; {vec} holds vectors of shape (6,)")
    nan = x.reshape(2, 2, 3).copy()
    nan[1, 0, 0] = np.nan
    np.save(vec, nan)
    assert _err(load_array_input, vec, (1, 2, 2), (2, 2)) == (
        f"{vec} contains NaN or infinite values (the first in sample 2); clean or drop them first")
    missing = tmp_path / "missing.bin"
    assert _err(load_array_input, missing, (3,)) == f"{missing} not found: give {SUPPORTED}"
    assert load_array_input("digits", (64,)).shape == (1797, 64)
    npy = tmp_path / "s.npy"
    np.save(npy, np.zeros((2, 1, 8), np.float32))
    assert _err(load_array_input, npy, (1, 4), (2, 2), SignalSpec(window=4)) == (
        f"--resize applies to images only; {npy} is read as signals")
    assert load_array_input(npy, (1, 4), signal=SignalSpec(window=4)).shape == (4, 1, 4)


def test_one_sample_guard_lets_the_whole_reader_speak(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.zeros((3,), np.float32))
    assert load_mod._one_sample(p, (3,)) is True
    np.save(p, np.zeros((2, 3), np.float32))
    assert not load_mod._one_sample(p, (3,))
    assert load_mod._one_sample(p, (2, 3))
    assert load_mod._one_sample(p, (4,)) is True  # fits no layout: the whole reader reports it


# =============================================================== npyfile.py
def test_expansion_cap(monkeypatch):
    monkeypatch.delenv("EDGEAE_MAX_EXPANSION", raising=False)
    assert expansion_cap(1 << 20) == 200 << 20
    assert expansion_cap(1000) == MIB64
    assert expansion_cap(-5) == MIB64
    assert expansion_cap((MIB64 // 200) + 1) == 200 * (MIB64 // 200 + 1)
    monkeypatch.setenv("EDGEAE_MAX_EXPANSION", "1e9")  # nothing compressed: the floor, whatever the ratio
    assert expansion_cap(0) == MIB64 and expansion_cap(-1) == MIB64 and expansion_cap(1) == 10 ** 9
    monkeypatch.setenv("EDGEAE_MAX_EXPANSION", " 500 ")
    assert expansion_cap(1 << 20) == 500 << 20
    monkeypatch.setenv("EDGEAE_MAX_EXPANSION", "1.5")
    assert expansion_cap(100 << 20) == 150 << 20
    monkeypatch.setenv("EDGEAE_MAX_EXPANSION", "  ")
    assert expansion_cap(1 << 20) == 200 << 20
    monkeypatch.setenv("EDGEAE_MAX_EXPANSION", "lots")
    assert _err(expansion_cap, 1) == "EDGEAE_MAX_EXPANSION='lots' is not a number; give a ratio such as 500"
    for raw in ("0", "-3", "inf", "nan"):
        monkeypatch.setenv("EDGEAE_MAX_EXPANSION", raw)
        assert _err(expansion_cap, 1) == f"EDGEAE_MAX_EXPANSION={raw!r} must be a positive ratio such as 500"
    assert CAP_HINT == ("set EDGEAE_MAX_EXPANSION=RATIO (default 200) to allow more for data that "
                        "compresses that well")


def test_why_is_one_line():
    assert npyfile._why(ValueError("a\n  b\tc ")) == "ValueError: a b c"


def test_header_refusals_word_for_word(tmp_path):
    p = tmp_path / "a.npy"
    p.write_bytes(b"\x93NUMPY\x03\x00" + bytes(60))
    assert _err(npy_layout, p) == (f"{p} could not be read as a numpy npy file (ValueError: format version "
                                   "(3, 0) is not supported (1.0 and 2.0 are))")
    p.write_bytes(b"not numpy at all")
    assert _err(read_npy, p).startswith(f"{p} could not be read as a numpy npy file (ValueError: ")
    p.write_bytes(_npy_bytes(_hdr((2,), "|O")))
    assert _err(npy_layout, p) == (f"{p} holds Python objects (an object array); save a numeric array instead "
                                   "(e.g. np.save(path, np.asarray(x, dtype=np.float32)))")
    p.write_bytes(_npy_bytes(_hdr((2, -1))))
    assert _err(npy_layout, p) == (f"{p} is corrupt: its header gives the negative shape (2, -1); "
                                   "write it again with np.save")
    p.write_bytes(_npy_bytes(_hdr((0, MAX + 1))))
    assert _err(npy_layout, p) == (f"{p} is corrupt: its header gives the shape (0, {MAX + 1}), larger than "
                                   f"{MAX} bytes; write it again with np.save")
    p.write_bytes(_npy_bytes(_hdr((0, MAX // 2 + 1), "<u2")))  # the item size counts
    assert "larger than" in _err(npy_layout, p)
    p.write_bytes(_npy_bytes(_hdr((0, MAX))))  # exactly the limit: an empty array numpy can index
    layout = npy_layout(p)
    assert layout.shape == (0, MAX) and read_npy(p, mmap=True).shape == (0, MAX)
    p.write_bytes(_npy_bytes(_hdr((3, 2), "<f4"), bytes(20)))
    assert _err(npy_layout, p) == (f"{p} is truncated or corrupt: its header says (3, 2) float32 (24 bytes of "
                                   "data), the file holds 20; write it again with np.save")
    p.write_bytes(_npy_bytes(_hdr((3, 2), "<f4"), bytes(28)))  # too long is refused too
    assert "the file holds 28;" in _err(npy_layout, p)
    assert _err(npy_layout, tmp_path) == (
        f"{tmp_path} could not be read as a numpy npy file (IsADirectoryError: [Errno 21] Is a directory: "
        f"'{tmp_path}')")


def test_layout_of_version_1_and_2_and_fortran_order(tmp_path):
    a = np.arange(6, dtype="<i2").reshape(2, 3)
    p = tmp_path / "a.npy"
    for version in ((1, 0), (2, 0)):
        with open(p, "wb") as f:
            np.lib.format.write_array(f, np.asfortranarray(a), version=version)
        layout = npy_layout(str(p))
        assert layout == NpyLayout((2, 3), np.dtype("<i2"), True, p.stat().st_size - 12)
        assert type(layout.fortran_order) is bool
        np.testing.assert_array_equal(read_npy(p, mmap=True), a)
        np.testing.assert_array_equal(read_npy(p), a)
    np.save(p, a)
    assert npy_layout(p) == NpyLayout((2, 3), np.dtype("<i2"), False, 128)
    mm = read_npy(p, mmap=True)
    assert isinstance(mm, np.memmap) and not mm.flags.writeable
    np.testing.assert_array_equal(mm, a)
    whole = read_npy(p)
    assert not isinstance(whole, np.memmap) and whole.flags.writeable  # a copy the caller may change
    np.save(p, np.full((1, 1), 7.25, np.float32))  # one value: mapped like any other
    one = read_npy(p, mmap=True)
    assert one.tolist() == [[7.25]] and not one.flags.writeable
    np.save(p, np.zeros((0, 3), np.float32))
    e = read_npy(p, mmap=True)
    assert e.shape == (0, 3) and e.dtype == np.float32
    p.write_bytes(_npy_bytes(_hdr((2,), "<f4"), bytes(8), version=(2, 0)))
    np.testing.assert_array_equal(read_npy(p), [0, 0])


def test_read_errors_after_the_header_are_one_data_error(tmp_path, monkeypatch):
    p = tmp_path / "a.npy"
    np.save(p, np.zeros((2, 2), np.float32))

    def fail(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(np, "load", fail)
    monkeypatch.setattr(np, "memmap", fail)
    for mmap in (False, True):
        assert _err(read_npy, p, mmap) == (
            f"{p} could not be read as a numpy npy file (OSError: [Errno 5] Input/output error)")


def _zip(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compress) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _npy(a: np.ndarray) -> bytes:
    import io
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def test_npz_refusals_word_for_word(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEAE_MAX_EXPANSION", raising=False)
    p = _zip(tmp_path / "a.npz", {"x.npy": _npy(np.zeros((3, 2), np.float32)), "notes.txt": b"hi"})
    assert list(read_npz(p)) == ["x"] and npz_keys(p) == ["x"]
    assert _err(read_npz, p, ["z"]) == f"{p} could not be read as a numpy npz file (KeyError: 'z')"
    # a member cut short behind an intact header
    p = _zip(tmp_path / "b.npz", {"x.npy": _npy(np.zeros((3, 2), np.float32))[:-4]})
    assert _err(read_npz, p) == (f"{p} (array 'x') is truncated or corrupt: its header says (3, 2) float32 (24 "
                                 "bytes of data), the file holds 20; write it again with np.save")
    p = _zip(tmp_path / "c.npz", {"x.npy": _npy(np.zeros(3, np.float32))[:20]})
    assert _err(read_npz, p).startswith(f"{p} (array 'x') could not be read as a numpy npz file (")
    junk = tmp_path / "d.npz"
    junk.write_bytes(b"not a zip")
    assert _err(npz_keys, junk) == f"{junk} could not be read as a numpy npz file (BadZipFile: File is not a zip file)"
    assert _err(read_npz, junk) == f"{junk} could not be read as a numpy npz file (BadZipFile: File is not a zip file)"


def _forged(path: Path, file_size: int, compress_size: int, stored: bool = False) -> Path:
    """An archive whose one member's directory entry claims ``file_size`` from ``compress_size``."""
    data = _npy(np.zeros(4, np.uint8))
    _zip(path, {"x.npy": data}, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    cd = raw.rfind(b"PK\x01\x02")
    struct.pack_into("<II", raw, cd + 20, compress_size, file_size)
    path.write_bytes(bytes(raw))
    return path


def test_npz_declared_sizes_at_their_limits(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEAE_MAX_EXPANSION", "2000")  # the cap out of the way of the deflate bound
    p = _forged(tmp_path / "a.npz", 1032 * 100 + 4097, 100)
    assert _err(read_npz, p) == (f"{p} (array 'x') claims {1032 * 100 + 4097} bytes from 100 compressed; "
                                 "the archive is corrupt")
    p = _forged(tmp_path / "b.npz", 1032 * 100 + 4096, 100)  # at the bound: read on, refused for its size
    assert "claims" not in _err(read_npz, p)
    p = _forged(tmp_path / "c.npz", 10 ** 9, 100, stored=True)  # stored members are not deflate
    assert "claims" not in _err(read_npz, p) and "cap" not in _err(read_npz, p)
    monkeypatch.setenv("EDGEAE_MAX_EXPANSION", "1")
    p = _forged(tmp_path / "d.npz", MIB64 + 1, 1 << 20)
    assert _err(read_npz, p) == (f"{p} (array 'x') expands from {1 << 20} to {MIB64 + 1} bytes, more than the "
                                 f"cap of {MIB64} (a decompression bomb?); {CAP_HINT}, or save it uncompressed "
                                 "(np.savez)")
    p = _forged(tmp_path / "e.npz", MIB64, 1 << 20)  # at the cap: read on, refused as damaged
    assert "cap of" not in _err(read_npz, p)


def test_read_array_file_keys_and_labels(tmp_path):
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    p = tmp_path / "a.npz"
    np.savez(p, x=x, y=np.array([1, 0, 1], np.uint8), labels=np.array([7, 7, 7]))
    arr, labels = read_array_file(p, "npz")
    np.testing.assert_array_equal(arr, x)
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0, 1]  # y before labels
    members = {"x.npy": _npy(x), "y.npy": _npy(np.arange(3)), "other.npy": _npy(np.zeros(9))[:-8]}
    _zip(p, members)  # a damaged array beside the samples and labels is never read
    assert read_array_file(p, "npz")[1].tolist() == [0, 1, 2]
    np.savez(p, x=x, labels=np.array([True, False, True]))
    assert read_array_file(p, "npz")[1].tolist() == [1, 0, 1]
    np.savez(p, samples=x, y=np.array([1, 2, 3]))  # no "x": the labels are not guessed
    assert _err(read_array_file, p, "npz") == (
        f"{p} holds arrays ['samples', 'y']; name the samples 'x' (np.savez(path, x=samples, y=labels)) "
        "or save one array")
    np.savez(p, only=x)
    arr, labels = read_array_file(p, "npz")
    assert labels is None
    np.testing.assert_array_equal(arr, x)
    np.savez(p, y=np.array([1, 2, 3]))  # one array, named y: it is the samples, not labels
    arr, labels = read_array_file(p, "npz")
    assert labels is None and arr.tolist() == [1, 2, 3]
    _zip(p, {"a.txt": b""})
    assert _err(read_array_file, p, "npz") == (
        f"{p} holds arrays (none); name the samples 'x' (np.savez(path, x=samples, y=labels)) or save one array")
    np.savez(p, x=x, y=np.array([[1], [2], [3]]))
    assert _err(read_array_file, p, "npz") == f"{p}: labels must be a 1-D integer array, got int64 (3, 1)"
    np.savez(p, x=x, y=np.array([1.0, 2.0, 3.0]))
    assert _err(read_array_file, p, "npz") == f"{p}: labels must be a 1-D integer array, got float64 (3,)"
    npy = tmp_path / "a.npy"
    np.save(npy, x)
    arr, labels = read_array_file(npy, "npy")
    assert labels is None
    np.testing.assert_array_equal(arr, x)


def test_open_npy_refusals_and_rows(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.zeros((0, 4), np.float32))
    assert _err(open_npy, p) == f"{p} holds no samples (shape (0, 4)); give at least one"
    np.save(p, np.zeros((4,), np.float32))
    assert _err(open_npy, p) == (f"{p} holds an array of shape (4,); give samples as (N, ...) with N >= 1 "
                                 "(one sample: use load_array_input)")
    np.save(p, np.float32(1))
    assert "holds an array of shape ()" in _err(open_npy, p)
    assert _err(open_npy, p, samples=True) == (
        f"{p} holds an array of shape (); give samples as (N, D) vectors or (N, H, W) / (N, C, H, W) / "
        "(N, H, W, C) images with N >= 1")
    np.save(p, np.zeros((2, 2), np.complex64))  # refused from the header, before any row is read
    assert _err(open_npy, p, samples=True) == f"{p} holds complex64 values; give a numeric array (integers or floats)"
    x = np.arange(5 * 3, dtype=np.int16).reshape(5, 3)
    np.save(p, x)
    src = open_npy(p)
    assert (src.path, src.file, src.n, src.sample_shape, src.dtype, src.samples, src.kind) == (
        str(p), str(p), 5, (), "", False, "npy")
    assert src.read(1, 2).dtype == np.int16  # stored dtype without samples
    np.testing.assert_array_equal(src.read(3, 9), x[3:])
    np.testing.assert_array_equal(src.take([0, 2, 3]), x[[0, 2, 3]])
    np.testing.assert_array_equal(src.take(np.array([2.0, 4.0])), x[[2, 4]])  # whole-number floats are rows
    src = open_npy(p, samples=True)
    assert src.samples and src.read(0, 2).dtype == np.float32
    np.testing.assert_array_equal(src.take(np.array([4, 1])), x[[4, 1]].astype(np.float32))


def test_npy_source_converts_to_samples_when_resizing(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.full((2, 4, 4), 7, np.uint8))
    src = NpySource(str(p), 2, (), "", resize=(2, 2), file=str(p))
    got = src.read(0, 2)
    assert got.shape == (2, 1, 2, 2) and got.dtype == np.uint8 and (got == 7).all()


def test_npy_rows_of_a_block_name_the_sample_of_the_file(tmp_path):
    p = tmp_path / "a.npy"
    x = np.zeros((6, 2), np.float32)
    x[4, 1] = np.nan
    np.save(p, x)
    src = open_npy(p, samples=True)
    assert _err(src.read, 3, 3) == f"{p} contains NaN or infinite values (the first in sample 5); clean or drop them first"
    assert _err(src.take, [1, 4]) == f"{p} contains NaN or infinite values; clean or drop them first"


# =============================================================== source.py
def test_dataset_record():
    ds = Dataset(np.zeros((3, 2, 4), np.float32), None, "s", "npy", False)
    assert ds.sample_shape == (2, 4) and len(ds) == 3 and ds.columns is None
    assert all(type(v) is int for v in ds.sample_shape) and type(len(ds)) is int


def test_check_finite():
    check_finite(np.array([[1, 2]], np.int64), "f")  # integers: never checked
    x = np.zeros((4, 3), np.float32)
    check_finite(x, "f")
    x[2, 1] = np.inf
    assert _err(check_finite, x, "f") == "f contains NaN or infinite values (the first in sample 3); clean or drop them first"
    assert _err(check_finite, x, "f", 10) == (
        "f contains NaN or infinite values (the first in sample 13); clean or drop them first")
    assert _err(check_finite, x, "f", None) == "f contains NaN or infinite values; clean or drop them first"
    assert "(the first in sample 1)" in _err(check_finite, np.array(np.nan, np.float32), "scalar")
    v = np.array([0.0, 1.0, np.nan], np.float64)  # 1-D: one value per sample
    assert "(the first in sample 3)" in _err(check_finite, v, "v")
    y = np.zeros((2, 2, 2), np.float16)
    y[1, 1, 1] = np.nan
    assert "(the first in sample 2)" in _err(check_finite, y, "y")


def test_shape_mismatch_fixes():
    def msg(got, want):
        return str(shape_mismatch("f", got, want))

    assert msg((1, 5, 5), (1, 4, 4)) == (
        "f holds samples of shape (1, 5, 5), but the model expects (1, 4, 4); pass --resize HxW to resize images")
    assert msg((5, 5), (1, 4, 4)).endswith("; pass --resize HxW to resize images")
    assert msg((16,), (1, 4, 4)).endswith("; give data with the shape the model was trained on")
    assert msg((1, 2, 5, 5), (1, 4, 4)).endswith("; give data with the shape the model was trained on")
    assert msg((7,), (2, 8)) == (
        "f holds samples of shape (7,), but the model expects (2, 8); give (N, 2, 8) windows, or cut a (T, 2) "
        "recording into the model's windows with --window 8 (and --hop STEPS)")
    assert msg((), (2, 8)).endswith("--window 8 (and --hop STEPS)")
    assert msg((2, 9), (2, 8)).endswith("; cut each case into the model's windows with --window 8 (and --hop STEPS)")
    assert msg((2, 8), (2, 8)).endswith("; give data with the shape the model was trained on")  # not longer
    assert msg((2, 8), (2, 9)).endswith("; give data with the shape the model was trained on")
    assert msg((3, 9), (2, 8)).endswith("; give data with the shape the model was trained on")
    assert msg((2, 9, 1), (2, 8)).endswith("; give data with the shape the model was trained on")
    assert msg((9,), (8,)).endswith("; give data with the shape the model was trained on")
    assert isinstance(shape_mismatch("f", (1,), (2,)), DataError)


def test_check_samples_word_for_word():
    check_samples((1, 2), np.dtype(bool), "f")
    for dt in ("i1", "u2", "f2"):
        check_samples((1, 2), np.dtype(dt), "f")
    assert _err(check_samples, (1, 2), np.dtype("c8"), "f") == (
        "f holds complex64 values; give a numeric array (integers or floats)")
    assert _err(check_samples, (1, 2), np.dtype("U3"), "f") == "f holds <U3 values; give a numeric array (integers or floats)"
    flat = ("give samples as (N, D) vectors or (N, H, W) / (N, C, H, W) / (N, H, W, C) images with N >= 1")
    assert _err(check_samples, [5], np.float32, "f") == f"f holds an array of shape (5,); {flat}"
    assert _err(check_samples, [0, 5], np.float32, "f") == f"f holds an array of shape (0, 5); {flat}"
    check_samples((1, 5), np.float32, "f")
    for c in (1, 3, 4):
        check_samples((1, c, 5, 7), np.float32, "f")
    for c in (1, 3):
        check_samples((1, 5, 7, c), np.float32, "f")
    assert _err(check_samples, [2, 5, 6, 4], np.float32, "f") == (
        "f holds images of shape (5, 6, 4); give (C, H, W) with C in 1, 3, 4 or (H, W, C) with C in 1, 3")
    assert _err(check_samples, [2, 1, 1, 1, 1], np.float32, "f") == (
        "f holds an array of shape (2, 1, 1, 1, 1); at most 4 dimensions (N, C, H, W)")


def test_as_samples_layouts_and_dtypes():
    x = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    got = as_samples(x, "f")
    assert got.shape == (2, 1, 3, 5) and got.dtype == np.uint8
    hwc = np.arange(2 * 5 * 6 * 3, dtype=np.int16).reshape(2, 5, 6, 3)
    got = as_samples(hwc, "f")
    assert got.shape == (2, 3, 5, 6) and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, hwc.transpose(0, 3, 1, 2))
    chw = np.zeros((2, 4, 5, 3), np.float64)  # 4 leading channels: channels first
    assert as_samples(chw, "f").shape == (2, 4, 5, 3)
    assert as_samples(np.zeros((2, 3, 5, 1), np.int8), "f").shape == (2, 3, 5, 1)
    v = as_samples(np.ones((2, 3), np.int64), "f")
    assert v.dtype == np.float32 and v.shape == (2, 3)
    bad = np.zeros((3, 2), np.float32)
    bad[2, 0] = np.nan
    assert "(the first in sample 8)" in _err(as_samples, bad, "f", 5)


def test_resize_array():
    x = np.arange(2 * 2 * 4 * 4, dtype=np.uint8).reshape(2, 2, 4, 4)
    assert resize_array(x, (4, 4), True, "f") is x
    got = resize_array(x, (2, 3), True, "f")
    assert got.shape == (2, 2, 2, 3) and got.dtype == np.uint8
    for i in range(2):
        for c in range(2):
            want = np.asarray(Image.fromarray(x[i, c]).resize((3, 2), Image.BILINEAR))
            np.testing.assert_array_equal(got[i, c], want)
    f = resize_array(x.astype(np.float32), (3, 2), True, "f")
    assert f.shape == (2, 2, 3, 2) and f.dtype == np.float32
    assert _err(resize_array, np.zeros((2, 6)), (2, 2), False, "v.csv") == (
        "--resize applies to images only; v.csv holds vectors of shape (6,)")


def test_arrange():
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    assert arrange(x, (), "f") is x and arrange(x, (6,), "f") is x
    np.testing.assert_array_equal(arrange(x, (1, 2, 3), "f"), x.reshape(2, 1, 2, 3))
    assert _err(arrange, x, (4,), "f") == (
        "f holds samples of shape (6,), but the model expects (4,); give data with the shape the model was trained on")
    assert _err(arrange, np.zeros((2, 5, 3)), (3,), "f") == (  # the trailing axes alone are not the sample
        "f holds samples of shape (5, 3), but the model expects (3,); give data with the shape the model was "
        "trained on")
    one = np.arange(5, dtype=np.float32)  # 1-D: the shape of the whole array is quoted
    assert _err(arrange, one, (2, 8), "r") == (
        "r holds samples of shape (5,), but the model expects (2, 8); give (N, 2, 8) windows, or cut a (T, 2) "
        "recording into the model's windows with --window 8 (and --hop STEPS)")


class _Rows(RowSource):
    """Stored rows of an array, counting the ranges read."""

    def __init__(self, x: np.ndarray, **kw):
        super().__init__("rows.bin", len(x), tuple(x.shape[1:]), x.dtype.name, **kw)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "calls", [])

    def _rows(self, start, stop):
        self.calls.append((start, stop))
        return self.x[start:stop]


def test_row_source_read_take_blocks():
    x = np.arange(10 * 2, dtype=np.int32).reshape(10, 2)
    src = _Rows(x)
    assert len(src) == 10 and src.shape == (10, 2)
    np.testing.assert_array_equal(src.read(-3, 5), x[:2])  # a negative start counts from row 0
    assert src.calls == [(0, 2)]
    np.testing.assert_array_equal(src.read(8, 5), x[8:])
    e = src.read(10, 3)
    assert e.shape == (0, 2) and e.dtype == np.int32
    src.calls.clear()
    assert src.read(4, 0).shape == (0, 2) and src.read(5, -2).shape == (0, 2)
    assert src.calls == []  # nothing asked, nothing read
    np.testing.assert_array_equal(src.read(9, 1), x[9:])
    src.calls.clear()
    np.testing.assert_array_equal(src.take(np.array([1, 2, 3, 7, 9])), x[[1, 2, 3, 7, 9]])
    assert src.calls == [(1, 4), (7, 8), (9, 10)]  # contiguous runs
    np.testing.assert_array_equal(src.take([0, 9]), x[[0, 9]])
    t = src.take([])
    assert t.shape == (0, 2) and t.dtype == np.int32
    for bad in ([10], [-1], [0, 10]):
        with pytest.raises(IndexError) as info:
            src.take(bad)
        assert str(info.value) == "row index out of range 0..9"
    blocks = list(src.blocks(4))
    assert [s for s, _ in blocks] == [0, 4, 8] and [len(b) for _, b in blocks] == [4, 4, 2]
    assert [s for s, _ in iter_blocks(src, 5)] == [0, 5]
    np.testing.assert_array_equal(np.concatenate([b for _, b in iter_blocks(src, 3)]), x)
    with pytest.raises(NotImplementedError):
        RowSource("p", 1, (), "f").read(0, 1)
    assert RowSource("p", 1, (), "f").kind == "" and RowSource._resizes_itself is False


def test_row_source_delivers_resized_and_arranged():
    x = np.arange(3 * 1 * 4 * 4, dtype=np.uint8).reshape(3, 1, 4, 4)
    src = _Rows(x, resize=(2, 2))
    got = src.read(0, 3)
    assert got.shape == (3, 1, 2, 2)
    np.testing.assert_array_equal(got, resize_array(x, (2, 2), True, "f"))
    src = _Rows(x, want=(16,))
    np.testing.assert_array_equal(src.read(1, 1), x[1:2].reshape(1, 16))
    v = _Rows(np.zeros((2, 6), np.float32), resize=(2, 3))
    assert _err(v.read, 0, 2) == "--resize applies to images only; rows.bin holds vectors of shape (6,)"
    w = _Rows(np.zeros((2, 6), np.float32), want=(5,))
    assert _err(w.read, 0, 1) == (
        "rows.bin holds samples of shape (6,), but the model expects (5,); give data with the shape the model was "
        "trained on")


def test_array_source():
    x = np.arange(5 * 3, dtype=np.int16).reshape(5, 3)
    src = ArraySource.of(x)
    assert (src.path, src.n, src.sample_shape, src.dtype, src.want, src.kind) == (
        "(array)", 5, (3,), "int16", (), "memory")
    assert all(type(v) is int for v in src.sample_shape)
    src = ArraySource.of(x, Path("p.npz"), (3,))
    assert (src.path, src.want) == ("p.npz", (3,))
    np.testing.assert_array_equal(src.read(-2, 3), x[:1])
    np.testing.assert_array_equal(src.read(3, 9), x[3:])
    assert src.read(6, 2).shape == (0, 3) and src.read(2, 0).shape == (0, 3)
    np.testing.assert_array_equal(src.take([4, 0, 4]), x[[4, 0, 4]])
    assert src.take([]).shape == (0, 3)
    for bad in ([5], [-1]):
        with pytest.raises(IndexError) as info:
            src.take(bad)
        assert str(info.value) == "row index out of range 0..4"
    assert "array" not in repr(src).split("samples=")[1]
    assert source.__all__ == ["Dataset", "RowSource", "ArraySource", "arrange", "iter_blocks", "check_finite",
                              "as_samples", "check_samples", "resize_array", "shape_mismatch"]


# =============================================================== memory
def _peak(fn) -> int:
    """Bytes allocated at the peak of ``fn()`` (numpy reports its buffers to tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_npy_rows_and_checks_read_no_more_than_asked(tmp_path):
    """A memory map, not the whole file: picking rows or checking one sample's layout reads a few rows."""
    p = tmp_path / "big.npy"
    np.save(p, np.zeros((2000, 1000), np.float32))  # 8 MB
    src = open_npy(p)
    assert _peak(lambda: src.take(np.array([3, 1500]))) < 1 << 20
    assert _peak(lambda: src.read(10, 2)) < 1 << 20
    assert _peak(lambda: load_mod._one_sample(p, (1000,))) < 1 << 20
    assert _peak(lambda: open_source(p, (1000,))) < 1 << 20
