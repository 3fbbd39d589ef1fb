"""runtime/contract.py: every refusal word for word, the layout table as docs/INPUT.md quotes it,
and the error's fields through pickling and shifting (written from its mutation run,
docs/testing.md). The messages are what users of the API and the CLI read (`Error: ...`), so
they are behaviour: each names the array, what it holds and what to do instead.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from edgeae.errors import InputError
from edgeae.runtime.contract import (
    NonFiniteInput,
    SampleContract,
    as_codes,
    check_codes,
    check_output,
    layouts,
)

IMG = (1, 2, 3)


def _msg(fn, *args, **kw) -> str:
    with pytest.raises(InputError) as err:
        fn(*args, **kw)
    return str(err.value)


def test_layout_table():
    assert layouts((1, 28, 28)) == [
        ("(1, 28, 28)", "(N, 1, 28, 28)", "the bundle's own layout"),
        ("(28, 28)", "(N, 28, 28)", "grayscale without a channel axis"),
        ("(28, 28, 1)", "(N, 28, 28, 1)", "channel-last"),
        ("(784,)", "(N, 784)", "flat vectors"),
    ]
    assert layouts((3, 4, 5)) == [
        ("(3, 4, 5)", "(N, 3, 4, 5)", "the bundle's own layout"),
        ("(4, 5, 3)", "(N, 4, 5, 3)", "channel-last"),
        ("(60,)", "(N, 60)", "flat vectors"),
    ]
    assert layouts((64,)) == [("(64,)", "(N, 64)", "the bundle's own layout"),
                              ("-", "(N, ...) with as many values per sample", "images into a vector model")]


def test_layout_refusals_word_for_word():
    img = SampleContract(IMG, "scale255", "uint8")
    assert _msg(img.arrange, np.zeros((5, 5)), "samples") == (
        "samples has shape (5, 5); expected one sample or a batch: (1, 2, 3) or (N, 1, 2, 3) (the bundle's own "
        "layout); (2, 3) or (N, 2, 3) (grayscale without a channel axis); (2, 3, 1) or (N, 2, 3, 1) "
        "(channel-last); (6,) or (N, 6) (flat vectors); see docs/INPUT.md")
    vec = SampleContract((4,), "standardize", "float32")
    assert _msg(vec.samples, np.zeros((2, 5), np.float32)) == (
        "x has shape (2, 5); expected one sample or a batch: (4,) or (N, 4) (the bundle's own layout); "
        "(N, ...) with as many values per sample (images into a vector model); see docs/INPUT.md")


_LAYOUTS = {  # name -> (the batch base (4, 1, 2, 3) in that layout, single?)
    "own one": (lambda b: b[0], True), "own batch": (lambda b: b, False),
    "grayscale one": (lambda b: b[0, 0], True), "grayscale batch": (lambda b: b[:, 0], False),
    "channel-last one": (lambda b: b[0].transpose(1, 2, 0), True),
    "channel-last batch": (lambda b: b.transpose(0, 2, 3, 1), False),
    "flat one": (lambda b: b[0].reshape(6), True), "flat batch": (lambda b: b.reshape(4, 6), False),
}


@pytest.mark.parametrize("layout", list(_LAYOUTS))
def test_every_layout_lands_on_the_same_values(layout):
    make, single = _LAYOUTS[layout]
    base = np.arange(24, dtype=np.uint8).reshape(4, 1, 2, 3)
    got, one = SampleContract(IMG, "scale255", "uint8").arrange(make(base))
    assert one is single
    np.testing.assert_array_equal(got, base[:1] if single else base)


def test_vector_bundle_takes_images_of_as_many_values():
    c = SampleContract((6,), "standardize", "float32")
    x = np.arange(12, dtype=np.float32).reshape(2, 1, 2, 3)
    got, single = c.samples(x)
    assert got.shape == (2, 6) and not single
    np.testing.assert_array_equal(got, x.reshape(2, 6))


def test_dtype_refusals_word_for_word():
    raw_only = SampleContract(IMG, "scale255", "uint8", pixels_only=True)
    assert _msg(raw_only.cast, np.zeros(IMG, np.float32), "batch") == (
        "batch has dtype float32; expected uint8: pass raw uint8 samples (this bundle's encoder takes raw pixels)")
    img = SampleContract(IMG, "scale255", "uint8")
    assert _msg(img.cast, np.array([[-1, 300]]), "pix") == (
        "pix holds integer pixels from -1 to 300; this bundle takes 8-bit pixels 0..255: rescale them "
        "(e.g. 16-bit: x // 257) and pass uint8")
    assert _msg(img.cast, np.array([[0, 256]]), "pix") == (
        "pix holds integer pixels from 0 to 256; this bundle takes 8-bit pixels 0..255: rescale them "
        "(e.g. 16-bit: x // 257) and pass uint8")
    assert _msg(img.samples, np.zeros(IMG, bool), "m") == (
        "m has dtype bool; expected uint8 pixels, floats or integers: convert it, e.g. x.astype(np.float32)")
    vec = SampleContract((4,), "standardize", "float32")
    assert _msg(vec.samples, np.zeros(4, complex)) == (
        "x has dtype complex128; expected floats or integers: convert it, e.g. x.astype(np.float32)")
    assert _msg(vec.samples, [[1, 2], [3]], "rows").startswith("rows is not an array of numbers (")


def test_dtype_steps():
    img = SampleContract(IMG, "scale255", "uint8")
    ints = img.cast(np.array([[0, 255]], np.int64))
    assert ints.dtype == np.uint8 and ints.tolist() == [[0, 255]]
    assert img.cast(np.zeros((0, 3), np.int32)).dtype == np.uint8  # empty: nothing to range-check
    assert img.cast(np.zeros(3, np.float64)).dtype == np.float32
    vec = SampleContract((4,), "standardize", "float32")
    assert vec.cast(np.array([70000, -5], np.int32)).tolist() == [70000.0, -5.0]
    assert vec.cast(np.ones(4, np.uint8)).dtype == np.float32  # uint8 is a number here, not a pixel
    strided = np.arange(8, dtype=np.uint8)[::2]
    assert img.cast(strided).flags.c_contiguous
    assert img.unit == "pixels" and vec.unit == "values" and img.size == 6
    assert img.bounded and SampleContract(IMG, "identity", "float32").bounded and not vec.bounded
    assert img.floats_ok and not SampleContract(IMG, "scale255", "uint8", pixels_only=True).floats_ok
    assert SampleContract(IMG, "scale255", "float32", pixels_only=True).floats_ok


def test_value_refusals_word_for_word():
    img = SampleContract(IMG, "scale255", "uint8")
    x = np.zeros((3, 1, 2, 3), np.float32)
    x[2, 0, 1, 1] = np.nan
    err = pytest.raises(NonFiniteInput, img.check_values, x, "batch").value
    assert str(err) == "batch contains NaN or inf (first in sample 2); expected finite values"
    assert (err.what, err.index, err.note, err.problem) == ("batch", 2, "expected finite values", "contains NaN or inf")
    big = np.full((2, 1, 2, 3), 0.5, np.float32)
    big[1] = 200.0
    assert _msg(img.check_values, big, "batch") == (
        "batch holds float values up to 200 (root-mean-square 141 > 1), but this bundle takes uint8 pixels or "
        "floats already scaled to [0, 1]: save the pixels as uint8, or divide by 255")
    flt = SampleContract(IMG, "scale255", "float32")
    assert _msg(flt.check_values, big, "y") == (
        "y holds float values up to 200 (root-mean-square 141 > 1), but this bundle takes values on the [0, 1] "
        "scale it was trained on")
    flt.check_values(np.ones((2, 1, 2, 3), np.float32))  # root-mean-square exactly 1 passes
    flt.check_values(np.full((2, 1, 2, 3), -1.0, np.float32))
    edge = np.ones((1, 1, 2, 3), np.float32)
    edge[0, 0, 0, 0] = np.float32(1.0005)  # rms just over 1, beyond the rounding slack
    assert "root-mean-square 1 > 1" in _msg(flt.check_values, edge)
    std = SampleContract(IMG, "standardize", "float32")
    std.check_values(big)  # standardized bundles take any finite scale
    inf = big.copy()
    inf[0, 0, 0, 2] = -np.inf
    assert pytest.raises(NonFiniteInput, std.check_values, inf).value.index == 0
    img.check_values(np.full((1, 1, 2, 3), 255, np.uint8))  # pixels are not floats: nothing to check


def test_codes_word_for_word():
    assert _msg(as_codes, np.zeros((2, 3)), 4, "z") == (
        "z has shape (2, 3); expected (4,) (one sample) or (N, 4) (a batch)")
    assert _msg(as_codes, np.zeros(4, bool), 4) == (
        "code has dtype bool; expected floats (or integers): use code.astype(np.float32)")
    assert _msg(as_codes, [[1.0], [2.0, 3.0]], 2, "c").startswith("c is not an array of numbers (")
    one, single = as_codes([1, 2, 3, 4], 4)
    assert single and one.shape == (1, 4) and one.dtype == np.float32
    many, single = as_codes(np.ones((3, 4), np.float64), 4)
    assert not single and many.shape == (3, 4) and many.dtype == np.float32 and many.flags.c_contiguous
    codes = np.zeros((3, 4), np.float32)
    codes[1, 2] = 3e38
    codes[2, 0] = 3e38
    err = pytest.raises(NonFiniteInput, check_codes, codes, "codes").value
    assert str(err) == ("codes holds values up to 3e+38, out of the range any encoder writes (their sum of squares "
                        "overflows float32) (first in sample 1); pass codes written by encode()")
    nan = np.zeros((3, 4), np.float32)
    nan[2, 3] = np.nan
    err = pytest.raises(NonFiniteInput, check_codes, nan).value
    assert str(err) == "code contains NaN or inf (first in sample 2); expected finite values"
    check_codes(np.full((2, 4), 1e18, np.float32))


def test_outputs_and_the_error_object():
    y = np.zeros((4, 3), np.float32)
    y[3, 2] = np.inf
    err = pytest.raises(NonFiniteInput, check_output, y, "decoder output", "the graph overflowed").value
    assert str(err) == "decoder output contains NaN or inf (first in sample 3); the graph overflowed"
    check_output(np.zeros((2, 3), np.float32), "out", "n")
    check_output(np.full((2, 3), 7, np.int32), "out", "n")
    moved = err.shifted(10)
    assert str(moved) == "decoder output contains NaN or inf (first in sample 13); the graph overflowed"
    assert (moved.what, moved.index, moved.note, moved.problem) == (
        "decoder output", 13, "the graph overflowed", "contains NaN or inf")
    odd = NonFiniteInput("z", 1, "note", "is odd")
    back = pickle.loads(pickle.dumps(odd.shifted(2)))
    assert type(back) is NonFiniteInput and str(back) == "z is odd (first in sample 3); note"
    assert (back.what, back.index, back.note, back.problem) == ("z", 3, "note", "is odd")


def test_default_names_and_no_overflow_warning():
    import warnings

    img = SampleContract(IMG, "scale255", "uint8")
    x = np.zeros((1, 1, 2, 3), np.float32)
    x[0, 0, 0, 0] = np.nan
    assert str(pytest.raises(NonFiniteInput, img.check_values, x).value).startswith("x contains NaN or inf")
    assert _msg(img.arrange, np.zeros(5)).startswith("x has shape (5,); ")
    assert _msg(img.cast, np.zeros(2, complex)).startswith("x has dtype complex128; ")
    assert _msg(as_codes, np.zeros(3), 2).startswith("code has shape (3,); ")
    huge = np.full((2, 4), 3e38, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflow that finds the sample is expected, not a warning for users
        assert pytest.raises(NonFiniteInput, check_codes, huge).value.index == 0


def test_samples_names_the_array_at_every_step():
    import warnings

    img = SampleContract(IMG, "scale255", "uint8")
    assert _msg(img.samples, np.zeros(5), "batch").startswith("batch has shape (5,); ")
    assert _msg(img.samples, np.full(IMG, 300), "pix").startswith("pix holds integer pixels from 300 to 300; ")
    raw_only = SampleContract(IMG, "scale255", "uint8", pixels_only=True)
    assert _msg(raw_only.samples, np.zeros(IMG, np.float32), "f").startswith("f has dtype float32; expected uint8")
    vec = SampleContract((2,), "standardize", "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float64 beyond float32's range becomes inf quietly, then is refused as such
        y = vec.cast(np.array([[1e300, -1e300]]))
    assert y.dtype == np.float32 and np.isinf(y).all()
    assert pytest.raises(NonFiniteInput, vec.check_values, y).value.index == 0
