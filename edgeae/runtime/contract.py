"""The input contract: which arrays the runtime takes as samples and codes (numpy only).

One implementation, used by the Python API (``EdgeModel.encode / decode / reconstruct``
and ``compress``), by the CLI (``encode``, ``decode``, ``reconstruct``, ``compress``,
``bench --data`` read a file and pass its array through here) and by the benchmark.
docs/INPUT.md is the same rules as a table.

    any array -> layout (one sample or a batch; grayscale, channel-last, flat) -> (N, *sample_shape)
              -> dtype (uint8 pixels | float32; others cast or refused)
              -> values, per chunk (finite; [0, 1]-scaled bundles: root-mean-square <= 1)

The layout and dtype steps cost nothing for an array already in the bundle's own layout
and dtype; the value step is one BLAS dot product per chunk.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgeae.errors import InputError

__all__ = ["NonFiniteInput", "SampleContract", "as_codes", "check_codes", "check_output", "layouts"]


class NonFiniteInput(InputError):
    """NaN or inf (or an overflowing code) in an input or a graph's output; ``index`` is its first bad sample."""

    def __init__(self, what: str, index: int, note: str = "expected finite values",
                 problem: str = "contains NaN or inf"):
        super().__init__(f"{what} {problem} (first in sample {index}); {note}")
        self.what, self.index, self.note, self.problem = what, index, note, problem

    def __reduce__(self):  # pickled whole (Dask workers send it to the client)
        return NonFiniteInput, (self.what, self.index, self.note, self.problem)

    def shifted(self, offset: int) -> NonFiniteInput:
        """The same error for sample ``index + offset`` of a larger array (chunks, file blocks)."""
        return NonFiniteInput(self.what, self.index + offset, self.note, self.problem)

_F32 = np.dtype(np.float32)
_U8 = np.dtype(np.uint8)
_vdot = getattr(np.vdot, "_implementation", np.vdot)  # the C function, without the dispatch wrapper
_RMS_SLACK = 1e-6  # float rounding allowance on the root-mean-square rule


def _fmt(shape: tuple) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def layouts(sample_shape: tuple[int, ...]) -> list[tuple[str, str, str]]:
    """The accepted layouts for a bundle, in the order they are tried: (one, batch, name)."""
    s = tuple(sample_shape)
    rows = [(_fmt(s), _fmt(("N", *s)), "the bundle's own layout")]
    if len(s) == 3:
        c, h, w = s
        if c == 1:
            rows.append((_fmt((h, w)), _fmt(("N", h, w)), "grayscale without a channel axis"))
        rows.append((_fmt((h, w, c)), _fmt(("N", h, w, c)), "channel-last"))
        rows.append((_fmt((c * h * w,)), _fmt(("N", c * h * w)), "flat vectors"))
    elif len(s) == 2:
        c, t = s
        if c == 1:
            rows.append((_fmt((t,)), _fmt(("N", t)), "one channel without a channel axis"))
        elif c != t:  # (T, C) is (C, T) read the other way round: only where the two cannot be confused
            rows.append((_fmt((t, c)), _fmt(("N", t, c)), "channel-last (time steps as rows)"))
    else:
        rows.append(("-", "(N, ...) with as many values per sample", "images into a vector model"))
    return rows


class SampleContract:
    """The rules for one bundle's samples, decided once when the bundle loads.

    Args:
        sample_shape: one sample, no batch axis, e.g. ``(1, 28, 28)`` or ``(64,)``.
        mode: the manifest's normalization mode (scale255 | identity | standardize).
        raw_dtype: uint8 (8-bit pixels) or float32.
        pixels_only: the encoder graph takes raw uint8 pixels only (a raw-I/O-only bundle).
    """

    def __init__(self, sample_shape: tuple[int, ...], mode: str, raw_dtype: str, pixels_only: bool = False):
        self.sample_shape = tuple(int(v) for v in sample_shape)
        self.size = math.prod(self.sample_shape)
        self.pixels = raw_dtype == "uint8"  # uint8 arrays are raw 8-bit pixels
        self.bounded = mode in ("scale255", "identity")  # float inputs are on the [0, 1] scale
        self.floats_ok = not (self.pixels and pixels_only)
        self.unit = "values" if not self.pixels else "pixels"

    # ---- layout ---------------------------------------------------------------------------
    def arrange(self, x: np.ndarray, what: str = "x") -> tuple[np.ndarray, bool]:
        """``x`` in any accepted layout -> ``(N, *sample_shape)`` (a view where possible), single?"""
        s, shape = self.sample_shape, x.shape
        if shape == s:
            return x[None], True
        if len(shape) == len(s) + 1 and shape[1:] == s:
            return x, False
        if len(s) == 3:
            c, h, w = s
            if c == 1 and shape == (h, w):
                return x.reshape(1, 1, h, w), True
            if c == 1 and len(shape) == 3 and shape[1:] == (h, w):
                return x.reshape(shape[0], 1, h, w), False
            if shape == (h, w, c):
                return x.transpose(2, 0, 1)[None], True
            if len(shape) == 4 and shape[1:] == (h, w, c):
                return x.transpose(0, 3, 1, 2), False
            if shape == (self.size,):
                return x.reshape(1, *s), True
            if len(shape) == 2 and shape[1] == self.size:
                return x.reshape(shape[0], *s), False
        elif len(s) == 2:
            arranged = self._signals(x)
            if arranged is not None:
                return arranged
        elif len(shape) >= 3 and math.prod(shape[1:]) == self.size:
            return x.reshape(shape[0], *s), False
        accepted = "; ".join(f"{one} or {batch} ({name})" if one != "-" else f"{batch} ({name})"
                             for one, batch, name in layouts(s))
        raise InputError(f"{what} has shape {shape}; expected one sample or a batch: {accepted}; "
                         "see docs/INPUT.md")

    def _signals(self, x: np.ndarray) -> tuple[np.ndarray, bool] | None:
        """Signals ``(C, T)``: one channel without its axis, or channel-last ``(T, C)`` rows.

        No reshape of other layouts: a ``(N, T, C)`` array reshaped to ``(N, C, T)`` would mix
        channels silently, so only a transpose (where ``C != T``) or a new axis is used.
        """
        (c, t), shape = self.sample_shape, x.shape
        if c == 1 and shape == (t,):
            return x.reshape(1, 1, t), True
        if c == 1 and len(shape) == 2 and shape[1] == t:
            return x.reshape(shape[0], 1, t), False
        if c != t and shape == (t, c):
            return x.T[None], True
        if c != t and len(shape) == 3 and shape[1:] == (t, c):
            return x.transpose(0, 2, 1), False
        return None

    # ---- dtype ------------------------------------------------------------------------------
    def cast(self, x: np.ndarray, what: str = "x") -> np.ndarray:
        """uint8 pixels stay; floats become float32; integers become pixels or float32."""
        dt = x.dtype
        if dt == _U8 and self.pixels:
            return np.ascontiguousarray(x)
        if dt.kind == "f":
            if not self.floats_ok:
                raise InputError(f"{what} has dtype {dt}; expected uint8: pass raw uint8 samples "
                                 "(this bundle's encoder takes raw pixels)")
            with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, refused as such
                return np.ascontiguousarray(x, dtype=_F32)
        if dt.kind in "iu":
            if not self.pixels:
                return np.ascontiguousarray(x, dtype=_F32)
            lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
            if lo < 0 or hi > 255:
                raise InputError(f"{what} holds integer pixels from {lo} to {hi}; this bundle takes 8-bit pixels "
                                 "0..255: rescale them (e.g. 16-bit: x // 257) and pass uint8")
            return np.ascontiguousarray(x, dtype=_U8)
        allowed = "uint8 pixels, floats or integers" if self.pixels else "floats or integers"
        raise InputError(f"{what} has dtype {dt}; expected {allowed}: convert it, e.g. x.astype(np.float32)")

    def samples(self, x: Any, what: str = "x") -> tuple[np.ndarray, bool]:
        """Layout and dtype: ``x`` -> (contiguous ``(N, *sample_shape)`` uint8 or float32, single)."""
        if not isinstance(x, np.ndarray):
            try:
                x = np.asarray(x)
            except (ValueError, TypeError) as exc:
                raise InputError(f"{what} is not an array of numbers ({exc})") from None
        if x.dtype.kind not in "biuf" or x.dtype.kind == "b":
            self.cast(x, what)  # raises with the allowed dtypes
        x, single = self.arrange(x, what)
        return self.cast(x, what), single

    # ---- values -----------------------------------------------------------------------------
    def check_values(self, x: np.ndarray, what: str = "x") -> None:
        """Refuse NaN/inf and, for [0, 1]-scaled bundles, floats on another scale (one dot product).

        The sum of squares is finite exactly when every value is (barring an overflow,
        re-checked below), and values in [0, 1] have a root-mean-square of at most 1, so
        a valid chunk passes with one BLAS call; only a failing one is examined further.
        """
        if x.dtype.kind != "f":
            return
        s = _vdot(x, x)
        if (s <= x.size) if self.bounded else math.isfinite(s):
            return
        finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if not finite.all():
            bad = int(np.argmin(finite))
            raise NonFiniteInput(what, bad)
        if self.bounded:
            ms = float(np.mean(np.square(x, dtype=np.float64)))
            if ms > 1.0 + _RMS_SLACK:
                top = float(np.max(np.abs(x)))
                scale = ("uint8 pixels or floats already scaled to [0, 1]: save the pixels as uint8, or divide by 255"
                         if self.pixels else "values on the [0, 1] scale it was trained on")
                raise InputError(f"{what} holds float values up to {top:g} (root-mean-square {math.sqrt(ms):.3g} > 1), "
                                 f"but this bundle takes {scale}")


def as_codes(code: Any, code_size: int, what: str = "code") -> tuple[np.ndarray, bool]:
    """Codes ``(code_size,)`` or ``(N, code_size)``, any real dtype -> contiguous float32, single?"""
    if not isinstance(code, np.ndarray):
        try:
            code = np.asarray(code)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{what} is not an array of numbers ({exc})") from None
    if code.dtype.kind not in "iuf":
        raise InputError(f"{what} has dtype {code.dtype}; expected floats (or integers): use code.astype(np.float32)")
    if code.shape == (code_size,):
        code, single = code[None], True
    elif code.ndim == 2 and code.shape[1] == code_size:
        single = False
    else:
        raise InputError(f"{what} has shape {code.shape}; expected ({code_size},) (one sample) or (N, {code_size}) "
                         "(a batch)")
    return np.ascontiguousarray(code, dtype=_F32), single


def check_codes(code: np.ndarray, what: str = "code") -> None:
    """Refuse NaN/inf codes and codes too large for float32 arithmetic (one dot product for a valid chunk).

    A code whose sum of squares overflows float32 (a norm above about 1.8e19) is far
    outside anything an encoder writes, and a decoder's first layer would overflow on it
    (a code of 3e38 decodes to NaN), so it is refused with the sample's index.
    """
    if math.isfinite(_vdot(code, code)):
        return
    finite = np.isfinite(code).all(axis=1)
    if not finite.all():
        raise NonFiniteInput(what, int(np.argmin(finite)))
    with np.errstate(over="ignore"):
        norms = np.einsum("ij,ij->i", code, code)
    bad = int(np.argmax(~np.isfinite(norms)))
    raise NonFiniteInput(what, bad, "pass codes written by encode()", f"holds values up to "
                         f"{float(np.max(np.abs(code[bad]))):.3g}, out of the range any encoder writes (their sum "
                         "of squares overflows float32)")


def check_output(y: np.ndarray, what: str, note: str) -> None:
    """Refuse a graph output holding NaN/inf (one dot product when it is finite); integer outputs pass."""
    if y.dtype.kind != "f" or math.isfinite(_vdot(y, y)):
        return
    finite = np.isfinite(y.reshape(len(y), -1)).all(axis=1)
    if not finite.all():
        raise NonFiniteInput(what, int(np.argmin(finite)), note)
