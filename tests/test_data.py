"""Tests for edgeae.data: every source format, every refused input, normalization, split."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeae.data import (
    Dataset,
    fit_normalization,
    load_array_input,
    load_dataset,
    parse_resize,
    split_indices,
)
from edgeae.errors import DataError
from edgeae.runtime.preprocess import Normalizer

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
SUPPORTED = (
    "'digits', an MNIST IDX file (*-idx3-ubyte[.gz]) or a folder holding one, "
    "a .npy/.npz array, a PNG/JPEG image or a folder of them, a .csv file, or a UCR/UEA .ts file"
)


def _err(fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def _write_idx(path: Path, arr: np.ndarray, code: int = 0x08) -> Path:
    dtype = {0x08: ">u1", 0x0D: ">f4"}[code]
    data = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data += np.asarray(arr, dtype=dtype).tobytes()
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --- digits and MNIST --------------------------------------------------------------------


def test_digits_are_uint8_images_with_labels():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits")
    ref = load_digits()
    assert (ds.format, ds.is_image, ds.source, ds.sample_shape, len(ds)) == ("digits", True, "digits", (1, 8, 8), 1797)
    assert ds.x.dtype == np.uint8 and ds.x.min() == 0 and ds.x.max() == 255
    np.testing.assert_array_equal(ds.x[:, 0], np.rint(ref.images * 255 / 16).astype(np.uint8))
    np.testing.assert_array_equal(ds.labels, ref.target)
    assert ds.labels.dtype == np.int64


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST files not found at {MNIST}")
@pytest.mark.parametrize("source", ["folder", "file"])
def test_real_mnist_idx(source):
    path = MNIST if source == "folder" else MNIST / "t10k-images-idx3-ubyte.gz"
    ds = load_dataset(path)
    assert (ds.format, ds.is_image, ds.x.shape, ds.x.dtype) == ("idx", True, (10000, 1, 28, 28), np.uint8)
    assert ds.labels.tolist()[:5] == [7, 2, 1, 0, 4] and ds.labels.dtype == np.int64
    assert ds.x.flags.writeable
    train, val = split_indices(len(ds), 0.1, seed=0, ordered=True)
    assert train.tolist() == list(range(9000)) and val.tolist() == list(range(9000, 10000))


@pytest.mark.parametrize("name", ["t-images-idx3-ubyte", "t-images-idx3-ubyte.gz"])
def test_generated_idx_with_labels(tmp_path, rng, name):
    x = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    _write_idx(tmp_path / name, x)
    _write_idx(tmp_path / name.replace("images-idx3", "labels-idx1"), np.arange(5, dtype=np.uint8))
    for source in (tmp_path, tmp_path / name):
        ds = load_dataset(source)
        np.testing.assert_array_equal(ds.x, x[:, None])
        assert ds.labels.tolist() == [0, 1, 2, 3, 4]


def test_float_idx_becomes_float32_without_labels(tmp_path):
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    ds = load_dataset(_write_idx(tmp_path / "v-images-idx3-ubyte", x, code=0x0D))
    assert ds.x.dtype == np.float32 and ds.x.shape == (3, 4) and ds.labels is None and not ds.is_image
    np.testing.assert_allclose(ds.x, x, rtol=1e-6)


def test_bad_idx_files(tmp_path):
    bad = tmp_path / "bad-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x56\x78rest")
    assert _err(load_dataset, bad) == (
        f"{bad} is not an IDX file (bad magic number 12345678); give an MNIST-style *-idx3-ubyte[.gz] file"
    )
    cut = _write_idx(tmp_path / "cut-images-idx3-ubyte", np.zeros((2, 3, 3), np.uint8))
    cut.write_bytes(cut.read_bytes()[:-1])
    assert _err(load_dataset, cut) == (
        f"{cut} is truncated or corrupt: header says (2, 3, 3) values of uint8 (34 bytes), "
        "file has 33 bytes; download it again"
    )
    labels = _write_idx(tmp_path / "a-labels-idx1-ubyte", np.arange(3, dtype=np.uint8))
    assert _err(load_dataset, labels) == f"{labels} is a labels file; give the matching *images-idx3-ubyte* file"
    _write_idx(tmp_path / "a-images-idx3-ubyte", np.zeros((2, 3, 3), np.uint8))
    assert _err(load_dataset, tmp_path / "a-images-idx3-ubyte") == (
        f"{labels} holds labels of shape (3,), but {tmp_path / 'a-images-idx3-ubyte'} has 2 images; "
        "give the matching pair of files"
    )


# --- numpy arrays ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, dtype, expect_shape, expect_dtype, is_image",
    [
        ((6, 5), np.float64, (6, 5), np.float32, False),
        ((6, 5), np.int64, (6, 5), np.float32, False),
        ((6, 4, 5), np.uint8, (6, 1, 4, 5), np.uint8, True),
        ((6, 3, 4, 5), np.uint8, (6, 3, 4, 5), np.uint8, True),
        ((6, 4, 4, 5), np.float32, (6, 4, 4, 5), np.float32, True),
        ((6, 5, 7, 3), np.uint8, (6, 3, 5, 7), np.uint8, True),
        ((6, 5, 7, 1), np.float16, (6, 1, 5, 7), np.float32, True),
    ],
)
def test_npy_shapes_and_dtypes(tmp_path, rng, shape, dtype, expect_shape, expect_dtype, is_image):
    arr = (rng.random(shape) * 200).astype(dtype)
    np.save(tmp_path / "a.npy", arr)
    ds = load_dataset(tmp_path / "a.npy")
    assert (ds.x.shape, ds.x.dtype, ds.is_image, ds.format) == (expect_shape, expect_dtype, is_image, "npy")
    if shape[-1] == 3:  # channels-last moved first, values intact
        np.testing.assert_array_equal(ds.x, arr.transpose(0, 3, 1, 2))


def test_npz_keys_and_labels(tmp_path, rng):
    x = rng.random((4, 3)).astype(np.float32)
    np.savez(tmp_path / "xy.npz", x=x, y=np.array([1, 0, 1, 0]))
    ds = load_dataset(tmp_path / "xy.npz")
    np.testing.assert_array_equal(ds.x, x)
    assert ds.labels.tolist() == [1, 0, 1, 0] and ds.format == "npz"
    np.savez(tmp_path / "one.npz", data=x)
    np.testing.assert_array_equal(load_dataset(tmp_path / "one.npz").x, x)
    np.savez(tmp_path / "many.npz", a=x, b=x)
    assert _err(load_dataset, tmp_path / "many.npz") == (
        f"{tmp_path / 'many.npz'} holds arrays ['a', 'b']; name the samples 'x' "
        "(np.savez(path, x=samples, y=labels)) or save one array"
    )


def test_bad_arrays(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert _err(load_dataset, p) == (
        f"{p} holds Python objects (an object array); save a numeric array instead "
        "(e.g. np.save(path, np.asarray(x, dtype=np.float32)))"
    )
    np.save(p, np.array([["a", "b"]]))
    assert _err(load_dataset, p) == f"{p} holds <U1 values; give a numeric array (integers or floats)"
    np.save(p, np.zeros(7))
    assert _err(load_dataset, p) == (
        f"{p} holds an array of shape (7,); give samples as (N, D) vectors or "
        "(N, H, W) / (N, C, H, W) / (N, H, W, C) images with N >= 1"
    )
    np.save(p, np.zeros((2, 5, 6, 7)))
    assert _err(load_dataset, p) == (
        f"{p} holds images of shape (5, 6, 7); give (C, H, W) with C in 1, 3, 4 or (H, W, C) with C in 1, 3"
    )
    np.save(p, np.zeros((2, 1, 2, 2, 2)))
    assert _err(load_dataset, p) == f"{p} holds an array of shape (2, 1, 2, 2, 2); at most 4 dimensions (N, C, H, W)"
    np.save(p, np.array([[1.0, np.nan], [np.inf, 2.0], [3.0, np.nan]]))
    assert _err(load_dataset, p) == f"{p} contains NaN or infinite values (the first in sample 1); clean or drop them first"
    p.write_bytes(b"not numpy")
    assert _err(load_dataset, p).startswith(f"{p} could not be read as a numpy npy file (")


# --- images --------------------------------------------------------------------------------


def test_image_folder_modes_and_order(tmp_path, rng):
    gray = rng.integers(0, 256, (3, 5, 4), dtype=np.uint8)
    for i, g in enumerate(gray[::-1]):  # written in reverse to prove sorting
        Image.fromarray(g).save(tmp_path / f"img{2 - i}.png")
    ds = load_dataset(tmp_path)
    assert (ds.format, ds.is_image, ds.labels) == ("images", True, None)
    np.testing.assert_array_equal(ds.x, gray[:, None])
    # a single file loads as N=1
    np.testing.assert_array_equal(load_dataset(tmp_path / "img1.png").x, gray[1:2, None])


def test_image_colour_alpha_palette_jpeg(tmp_path, rng):
    rgb = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a_rgb.png")
    rgba = np.concatenate([rgb, np.full((5, 4, 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "b_rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "c_palette.png")
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "d_gray.png")
    smooth = np.stack([*np.meshgrid(np.arange(4) * 60, np.arange(5) * 50), np.full((5, 4), 99)], axis=2)
    Image.fromarray(smooth.astype(np.uint8)).save(tmp_path / "e.jpeg", quality=95, subsampling=0)
    ds = load_dataset(tmp_path)
    assert ds.x.shape == (5, 3, 5, 4) and ds.x.dtype == np.uint8
    np.testing.assert_array_equal(ds.x[0], rgb.transpose(2, 0, 1))
    np.testing.assert_array_equal(ds.x[1], rgb.transpose(2, 0, 1))  # alpha dropped
    np.testing.assert_array_equal(ds.x[3], np.repeat(rgb[None, :, :, 0], 3, axis=0))  # gray -> RGB
    assert np.abs(ds.x[4].astype(int) - smooth.transpose(2, 0, 1)).mean() < 10  # lossy JPEG


def test_image_sizes_and_resize(tmp_path):
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((32, 30), 200, np.uint8)).save(tmp_path / "b.png")
    assert _err(load_dataset, tmp_path) == (
        f"images in {tmp_path} have different sizes: a.png is 28x28 and b.png is 32x30 (HxW); "
        "pass --resize HxW (e.g. --resize 28x28) to resize them all"
    )
    ds = load_dataset(tmp_path, resize=(16, 12))
    assert ds.x.shape == (2, 1, 16, 12)
    assert ds.x[0].max() == 0 and ds.x[1].min() == 200 and ds.x[1].max() == 200


def test_bad_image_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hi")
    assert _err(load_dataset, empty) == (
        f"{empty} holds no *images-idx3-ubyte* file and no .png/.jpg/.jpeg images; give {SUPPORTED}"
    )
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    assert _err(load_dataset, broken).startswith(f"{broken} could not be read as an image (")


# --- CSV -----------------------------------------------------------------------------------


def test_csv_with_and_without_header(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("a,b,c\n1,2,3\n\n4.5, -6 ,1e2\n")
    ds = load_dataset(p)
    assert (ds.format, ds.is_image, ds.columns, ds.x.dtype) == ("csv", False, ["a", "b", "c"], np.float32)
    np.testing.assert_array_equal(ds.x, [[1, 2, 3], [4.5, -6, 100]])
    p.write_text("1,2\n3,4\n")
    ds = load_dataset(p)
    assert ds.columns is None and ds.x.tolist() == [[1, 2], [3, 4]]


def test_bad_csv(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b\n1,2\n3,oops\n")
    assert _err(load_dataset, p) == (
        f"{p}, line 3, column 2 ('b'): 'oops' is not a number; "
        "CSV data must be numeric (only the first row may be a header)"
    )
    p.write_text("1,2\n3,\n")
    assert _err(load_dataset, p) == (
        f"{p}, line 2, column 2: '' is not a number; CSV data must be numeric (only the first row may be a header)"
    )
    p.write_text("1,2\n3,4,5\n")
    assert _err(load_dataset, p) == f"{p}, line 2: 3 columns, expected 2; make every row the same length"
    p.write_text("1,nan\ninf,2\n")
    assert _err(load_dataset, p) == f"{p} contains NaN or infinite values (the first in sample 1); clean or drop them first"
    p.write_text("x,y\n")
    assert _err(load_dataset, p) == f"{p} has no data rows; give one sample per line of comma-separated numbers"


# --- sources, resize parsing -------------------------------------------------------------------


def test_missing_and_unknown_sources(tmp_path):
    missing = tmp_path / "nope.npy"
    assert _err(load_dataset, missing) == f"{missing} not found: give {SUPPORTED}"
    odd = tmp_path / "data.parquet"
    odd.write_bytes(b"x")
    assert _err(load_dataset, odd) == f"{odd}: unknown data format '.parquet'; give {SUPPORTED}"


def test_parse_resize():
    assert parse_resize("28x28") == (28, 28)
    assert parse_resize(" 32X16 ") == (32, 16)
    assert parse_resize(None) is None and parse_resize("") is None
    for bad in ("28", "0x5", "ax4", "3x-1"):
        assert _err(parse_resize, bad) == (
            f"resize must look like HxW with positive integers (e.g. 28x28), got {bad!r}"
        )


def test_resize_refused_for_vectors(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((3, 4), np.float32))
    assert _err(load_dataset, tmp_path / "v.npy", resize=(2, 2)) == (
        f"--resize applies to images only; {tmp_path / 'v.npy'} holds vectors of shape (4,)"
    )
    np.save(tmp_path / "i.npy", np.full((2, 1, 4, 4), 0.5, np.float32))
    x = load_dataset(tmp_path / "i.npy", resize=(8, 6)).x
    assert x.shape == (2, 1, 8, 6) and x.dtype == np.float32
    np.testing.assert_allclose(x, 0.5, atol=1e-6)


# --- normalization -------------------------------------------------------------------------------


def test_fit_normalization_modes(rng):
    n = fit_normalization(np.zeros((2, 1, 3, 3), np.uint8))
    assert (n.mode, n.raw_dtype, n.offset, n.scale) == ("scale255", "uint8", [0.0], [255.0])
    n = fit_normalization(rng.random((10, 4)).astype(np.float32))
    assert (n.mode, n.raw_dtype, n.offset, n.scale) == ("identity", "float32", [0.0], [1.0])
    x = np.stack([rng.normal(5, 3, 200), np.full(200, 7.0), rng.normal(-2, 0.5, 200)], axis=1).astype(np.float32)
    n = fit_normalization(x)
    assert (n.mode, n.raw_dtype, len(n.offset)) == ("standardize", "float32", 3)
    assert n.scale[1] == 1.0  # constant feature: std 0 -> 1
    z = Normalizer(n, (3,)).normalize(x)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), [1, 0, 1], atol=1e-4)


def test_fit_normalization_refuses_bad_arrays():
    assert _err(fit_normalization, np.zeros(3)) == (
        "cannot fit a normalization to an array of shape (3,); need (N, ...) with N >= 1"
    )
    assert _err(fit_normalization, np.array([[1.0, np.nan]])) == (
        "the array to fit a normalization to contains NaN or infinite values (the first in sample 1); "
        "clean or drop them first"
    )


# --- split -----------------------------------------------------------------------------------


def test_split_random_is_deterministic_and_complete():
    train, val = split_indices(100, 0.2, seed=3)
    again = split_indices(100, 0.2, seed=3)
    other = split_indices(100, 0.2, seed=4)
    assert len(train) == 80 and len(val) == 20
    assert sorted(train.tolist() + val.tolist()) == list(range(100))
    np.testing.assert_array_equal(val, again[1])
    assert val.tolist() != other[1].tolist() and val.tolist() != list(range(80, 100))
    expected = np.sort(np.random.default_rng(3).permutation(100)[:20])
    np.testing.assert_array_equal(val, expected)


def test_split_ordered_and_errors():
    train, val = split_indices(5, 0.1, seed=0, ordered=True)  # 0.5 rounds up to 1
    assert train.tolist() == [0, 1, 2, 3] and val.tolist() == [4]
    assert _err(split_indices, 3, 0.1, 0) == (
        "cannot split 3 samples with val fraction 0.1: that leaves 3 for training and 0 for "
        "validation; both need at least one, so give more samples or change --val-fraction"
    )
    assert _err(split_indices, 10, 1.0, 0) == "val fraction must be between 0 and 1 (exclusive), got 1.0"


# --- load_array_input (runtime side) ---------------------------------------------------------------


def test_load_array_input_round_trips(tmp_path, rng):
    x = rng.integers(0, 256, (4, 1, 6, 5), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    np.testing.assert_array_equal(load_array_input(tmp_path / "x.npy", (1, 6, 5)), x)
    np.testing.assert_array_equal(load_array_input(tmp_path / "x.npy", (30,)), x.reshape(4, 30))
    np.save(tmp_path / "one.npy", x[0, 0])  # a single (H, W) sample gets a batch axis
    np.testing.assert_array_equal(load_array_input(tmp_path / "one.npy", (1, 6, 5)), x[:1])
    from edgeae.data.imageio import save_images

    save_images(x, tmp_path / "pngs")
    np.testing.assert_array_equal(load_array_input(tmp_path / "pngs", (1, 6, 5)), x)
    np.testing.assert_array_equal(load_array_input(tmp_path / "pngs", (1, 3, 2), resize=(3, 2)).shape, (4, 1, 3, 2))
    (tmp_path / "v.csv").write_text("0.5,1.5\n2.5,3.5\n")
    assert load_array_input(tmp_path / "v.csv", (2,)).tolist() == [[0.5, 1.5], [2.5, 3.5]]


def test_load_array_input_shape_mismatch(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 6, 6), np.uint8))
    assert _err(load_array_input, tmp_path / "x.npy", (1, 8, 8)) == (
        f"{tmp_path / 'x.npy'} holds samples of shape (1, 6, 6), but the model expects (1, 8, 8); "
        "pass --resize HxW to resize images"
    )
    assert _err(load_array_input, tmp_path / "x.npy", (64,)) == (
        f"{tmp_path / 'x.npy'} holds samples of shape (1, 6, 6), but the model expects (64,); "
        "give data with the shape the model was trained on"
    )


def test_dataset_is_a_plain_record():
    ds = Dataset(np.zeros((3, 2), np.float32), None, "s", "npy", False)
    assert ds.columns is None and len(ds) == 3 and ds.sample_shape == (2,)


def test_data_and_imageio_import_without_torch_or_sklearn():
    import subprocess
    import sys

    code = (
        "import sys, edgeae.data, edgeae.data.imageio; "
        "bad = [m for m in ('torch', 'onnx', 'sklearn') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_idx_folder_prefers_the_training_set(tmp_path):
    def idx(path, n):
        header = bytes([0, 0, 8, 3]) + n.to_bytes(4, "big") + (2).to_bytes(4, "big") + (2).to_bytes(4, "big")
        with gzip.open(path, "wb") as f:
            f.write(header + bytes(range(n * 4)))

    idx(tmp_path / "t10k-images-idx3-ubyte.gz", 3)
    idx(tmp_path / "train-images-idx3-ubyte.gz", 5)
    assert len(load_dataset(tmp_path).x) == 5


# ---- one reader, one behaviour: the block reader (encode, compress, Dask) refuses alike ----------------


def _every_block(path, want=(1, 8, 8)) -> np.ndarray:
    """What encode / compress read: a RowSource for the model's shape, every block of it."""
    from edgeae.data import iter_blocks, open_source

    source = open_source(path, want)
    return np.concatenate([b for _, b in iter_blocks(source, 7)])


def _gz_idx(path: Path, dims: tuple[int, ...], body: bytes) -> Path:
    path.write_bytes(gzip.compress(bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body))
    return path


def _npy_header(path: Path, shape_text: str, body: bytes = b"") -> Path:
    head = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {shape_text}, }}"
    head += " " * ((-(10 + len(head) + 1)) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode() + body)
    return path


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """The headers that crashed encode / compress, with the error every reader now gives."""
    cut = _gz_idx(tmp_path / "cut-images-idx3-ubyte.gz", (1000, 8, 8),
                  np.random.default_rng(0).integers(0, 255, 1000 * 64, dtype=np.uint8).tobytes())
    cut.write_bytes(cut.read_bytes()[:1500])
    zero_dim = tmp_path / "s-images-idx3-ubyte"
    zero_dim.write_bytes(b"\0\0\x08\x03\0\0\0\x0a\0\0")
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    return {
        "dims cut short": (zero_dim, "is truncated: its header names 3 dims but the file ends after 1"),
        "gz dims 2^32-1": (_gz_idx(tmp_path / "big-images-idx3-ubyte.gz", (2**32 - 1,) * 3, b""),
                           "gzipped bytes may expand to (at most 67108864"),
        "0 images": (_gz_idx(tmp_path / "zero-images-idx3-ubyte.gz", (0, 8, 8), b""), "holds no values"),
        "raw 0 images": (_write_idx(tmp_path / "z-images-idx3-ubyte", np.zeros((0, 8, 8), np.uint8)),
                         "holds no values (header dims (0, 8, 8))"),
        "npy shape -1": (_npy_header(tmp_path / "neg.npy", "(-1, 8, 8)", b"\0" * 64), "negative shape (-1, 8, 8)"),
        "empty npy": (empty, "could not be read as a numpy npy file"),
        "gz cut at 1500 bytes": (cut, "could not be read as an IDX file (Compressed file ended"),
    }


@pytest.mark.parametrize("case", ["dims cut short", "gz dims 2^32-1", "0 images", "raw 0 images", "npy shape -1",
                                  "empty npy", "gz cut at 1500 bytes"])
def test_bad_headers_are_one_error_for_every_reader(tmp_path, case):
    path, expected = _bad_inputs(tmp_path)[case]
    whole = _err(load_array_input, path, (1, 8, 8))
    blocks = _err(_every_block, path)
    assert expected in whole
    assert blocks == whole


def test_csv_with_a_bom_keeps_its_first_row_in_every_reader(tmp_path):
    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(",".join(str(v) for v in r) for r in rows).encode())
    assert np.array_equal(load_array_input(path, (3,)), rows)
    assert np.array_equal(_every_block(path, (3,)), rows)


@pytest.mark.parametrize("first, expected", [
    (b"1,\xff2,3", "line 1: byte 0xff at column 3 is not UTF-8; save the file as UTF-8 text"),
    (b"1,2\x00,3", "line 1: holds a NUL byte (column 4)"),
    ("a,b,c".encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
])
def test_csv_undecodable_first_row_is_refused_alike(tmp_path, first, expected):
    path = tmp_path / "bad.csv"
    path.write_bytes(first + b"\n4,5,6\n7,8,9\n")
    whole = _err(load_array_input, path, (3,))
    assert expected in whole
    assert _err(_every_block, path, (3,)) == whole


def test_npz_deflate_bomb_is_capped(tmp_path, monkeypatch):
    import zipfile

    from edgeae.data import npyfile

    path = tmp_path / "bomb.npz"
    n = 70 << 20  # 70 MiB of zeros: ~70 KiB deflated, above the 64 MiB every archive may expand to
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("x.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (n // 64, 64)})
        for _ in range(n >> 20):
            f.write(bytes(1 << 20))
    assert path.stat().st_size < (1 << 20)
    msg = _err(load_dataset, path)
    assert "(array 'x') expands from" in msg and "a decompression bomb?" in msg
    assert "set EDGEAE_MAX_EXPANSION=RATIO (default 200) to allow more" in msg
    monkeypatch.setattr(npyfile, "_EXPANSION_FLOOR", 0)
    monkeypatch.setenv("EDGEAE_MAX_EXPANSION", "5000")  # the remedy the message names works
    assert npyfile.read_npz(path, ["x"])["x"].shape == (n // 64, 64)
    monkeypatch.setenv("EDGEAE_MAX_EXPANSION", "-1")
    assert "must be a positive ratio" in _err(npyfile.read_npz, path)


def test_gzip_idx_bomb_is_capped(tmp_path, monkeypatch):
    from edgeae.data import npyfile

    path = _gz_idx(tmp_path / "b-images-idx3-ubyte.gz", (4096, 32, 32), bytes(4096 * 1024))
    monkeypatch.setattr(npyfile, "_EXPANSION_FLOOR", 0)  # a small file stands in for a large bomb
    assert "EDGEAE_MAX_EXPANSION" in _err(load_dataset, path)
    monkeypatch.setenv("EDGEAE_MAX_EXPANSION", "2000")
    assert load_dataset(path).x.shape == (4096, 1, 32, 32)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_multi_frame_images_are_refused(tmp_path, fmt):
    frames = [Image.fromarray(np.full((8, 8), 40 * i, np.uint8)) for i in range(3)]
    folder = tmp_path / "imgs"
    folder.mkdir()
    frames[0].save(folder / "a.png", format=fmt, save_all=True, append_images=frames[1:])
    frames[0].save(folder / "b.png")
    expected = f"a.png holds 3 frames ({fmt} animation or pages); edgeae reads one image per file"
    assert expected in _err(load_dataset, folder / "a.png")
    assert expected in _err(load_dataset, folder)
    assert expected in _err(_every_block, folder)


def test_a_damaged_labels_file_is_no_input_for_any_command(tmp_path):
    """encode never read labels; reconstruct (the whole-file reader) now does not either. Training does."""
    x = np.arange(20 * 64, dtype=np.uint8).reshape(20, 8, 8)
    images = _write_idx(tmp_path / "t-images-idx3-ubyte", x)
    (tmp_path / "t-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01" + struct.pack(">I", 2**32 - 1))
    assert np.array_equal(load_array_input(images, (1, 8, 8)), x[:, None])
    assert np.array_equal(_every_block(images), x[:, None])
    assert "t-labels-idx1-ubyte is truncated or corrupt" in _err(load_dataset, images)
