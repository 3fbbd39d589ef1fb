"""Signal files as windows ``(C, T)``: ``.ts`` cases, ``(N, C, T)`` arrays, ``(T, C)`` recordings.

    .ts (N, C, T) | .npy/.npz (N, C, T), (N, T) or (T, C) | .csv (T, C) or (N, T)
        -> the format's stored rows (tsfile, npyfile, csvfile)
        -> WindowSource: (M, C, length) float32 windows, read a range of windows at a time

Which files are signals, and how they are cut (docs/timeseries.md, "Data files"):

- a ``.ts`` file always holds signals: its cases ``(N, C, T)``;
- :class:`SignalSpec` ``window=LENGTH`` (``--window``), with ``hop=STEPS`` (``--hop``, default
  LENGTH): the file holds recordings cut into windows of LENGTH steps, one every STEPS
  steps. A 2-D array or a CSV file (one column per channel, rows are time steps; a header
  row is allowed) and a 1-D array (one channel) are one continuous recording ``(T, C)``;
  a 3-D array and a ``.ts`` file hold cases ``(N, C, T)``, each cut on its own (no window
  straddles two cases). A tail shorter than a window is left out;
- ``signal=True`` (``--signal``), no window: the samples are windows already, ``(N, C, T)``
  arrays, or ``(N, T)`` arrays and CSV rows of one channel;
- otherwise a file reads as before: a 3-D ``.npy`` holds grayscale images ``(N, H, W)``, a
  CSV one vector per row (the MLP path). A 3-D array is never guessed to be signals.

A recording stored as ``.npy`` is memory-mapped and a CSV file indexed, so a window range
reads only the steps it covers. Values are checked finite (naming the time step or case)
and delivered as float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from edgeae.config import Normalization
from edgeae.data.csvfile import open_csv
from edgeae.data.npyfile import open_npy, read_array_file, read_npy
from edgeae.data.source import ArraySource, Dataset, RowSource
from edgeae.data.tsfile import fit_channel_normalization, read_ts
from edgeae.errors import DataError

__all__ = ["SignalSpec", "WindowSource", "open_signals", "load_signals", "channel_normalization", "spec_for_model",
           "SIGNAL_FORMATS"]

SIGNAL_FORMATS = ("ts", "npy", "npz", "csv")  # formats that can hold signals
_FIT_BYTES = 64 << 20  # training windows (float64) fitted in one piece up to this size


def _steps(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise DataError(f"{name} must be a positive whole number of time steps, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class SignalSpec:
    """How a file's samples are read as signal windows (see the module docstring)."""

    signal: bool = False  # the samples are windows already: (N, C, T), or (N, T) of one channel
    window: int | None = None  # cut recordings / cases into windows of this many steps
    hop: int | None = None  # steps between window starts (default: window, no overlap)

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _steps(self.window, "window length (--window)"))
        object.__setattr__(self, "hop", _steps(self.hop, "window hop (--hop)"))
        if self.hop is not None and self.window is None:
            raise DataError("a hop (--hop) needs a window length (--window LENGTH) to cut the recording into")

    @property
    def active(self) -> bool:
        """Whether the data is read as signals whatever its format."""
        return self.signal or self.window is not None


@dataclass(frozen=True)
class WindowSource(RowSource):
    """Windows ``(n, C, length)`` float32 of stored rows ``base``.

    ``base`` rows are time steps ``(C,)`` (or scalars) of one recording (``recording``), or
    cases ``(C, T)`` (or ``(T,)``: one channel), each giving ``per_case`` windows.
    """

    base: RowSource | None = None
    length: int = 0  # steps per window
    hop: int = 0  # steps between window starts
    per_case: int = 1  # windows per case (a recording is one case)
    recording: bool = False  # base rows are time steps, not cases
    channels: int = 1

    kind: ClassVar[str] = "windows"

    def _rows(self, start: int, stop: int) -> np.ndarray:
        if self.recording:
            first = start * self.hop
            steps = self._stored(first, (stop - 1 - start) * self.hop + self.length, "time step")
            steps = steps.reshape(len(steps), self.channels)  # (S, C)
            view = np.lib.stride_tricks.sliding_window_view(steps, self.length, axis=0)  # (S-L+1, C, L)
            return view[:: self.hop][: stop - start]
        c0 = start // self.per_case
        cases = self._stored(c0, (stop - 1) // self.per_case - c0 + 1, "case")
        cases = cases.reshape(len(cases), self.channels, -1)  # (k, C, T)
        view = np.lib.stride_tricks.sliding_window_view(cases, self.length, axis=2)[:, :, :: self.hop]
        windows = view[:, :, : self.per_case].transpose(0, 2, 1, 3).reshape(-1, self.channels, self.length)
        off = start - c0 * self.per_case
        return windows[off: off + stop - start]

    def _stored(self, first: int, count: int, what: str) -> np.ndarray:
        """``count`` stored rows from ``first``, as float32, checked finite (naming the bad one)."""
        raw = np.asarray(self.base.read(first, count))
        with np.errstate(over="ignore", invalid="ignore"):
            x = raw.astype(np.float32)
        if x.dtype.kind == "f":
            bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
            if bad.any():
                raise DataError(f"{self.path} contains NaN, infinite or out-of-float32-range values (the first at "
                                f"{what} {first + int(np.argmax(bad)) + 1}); clean or drop them first")
        return x

    def _convert(self, raw: np.ndarray, first_row: int | None) -> np.ndarray:
        return np.ascontiguousarray(raw, dtype=np.float32)


def _stored(path: Path, fmt: str) -> tuple[RowSource, tuple[int, ...], np.dtype, np.ndarray | None]:
    """The stored rows of a signal file: ``(rows, stored shape, dtype, labels per row or None)``."""
    if fmt == "ts":
        ts = read_ts(path)
        return ArraySource.of(ts.x, str(path)), ts.x.shape, ts.x.dtype, ts.labels
    if fmt == "npy":
        mm = read_npy(path, mmap=True)  # the header checked against the file; nothing read
        if mm.ndim == 1:
            arr = np.asarray(mm)
            return ArraySource.of(arr, str(path)), arr.shape, arr.dtype, None
        return open_npy(path), mm.shape, mm.dtype, None
    if fmt == "npz":
        arr, labels = read_array_file(path, "npz")
        return ArraySource.of(arr, str(path)), arr.shape, arr.dtype, labels
    if fmt == "csv":
        src = open_csv(path)
        return src, (src.n, src.width), np.dtype(np.float32), None
    raise DataError(f"{path} holds {fmt} data; signals (--window, --signal) are read from .ts, .npy/.npz "
                    "and .csv files")


def _geometry(path: Path, fmt: str, shape: tuple[int, ...], spec: SignalSpec) -> tuple[bool, int, int, int, int]:
    """``(recording, cases, channels, steps per case, window length)`` of a stored array's shape."""
    ndim = len(shape)
    if spec.window is None:
        if ndim not in (2, 3):
            raise DataError(f"{path} holds an array of shape {tuple(shape)}; signal windows are (N, C, T), or "
                            "(N, T) for one channel (a (T, C) recording: give --window LENGTH to cut it)")
        n, c, t = (shape[0], 1, shape[1]) if ndim == 2 else shape
        return False, n, c, t, t
    if ndim in (1, 2) and fmt != "ts":  # one continuous recording (T, C): rows are time steps
        t, c = shape[0], (shape[1] if ndim == 2 else 1)
        return True, 1, c, t, spec.window
    if ndim == 3:
        return False, shape[0], shape[1], shape[2], spec.window
    raise DataError(f"{path} holds an array of shape {tuple(shape)}; --window cuts a (T, C) recording or "
                    "(N, C, T) cases")


def open_signals(path: str | Path, fmt: str, spec: SignalSpec | None = None) -> WindowSource:
    """The windows of the signal file ``path`` (format ``fmt``) as ``spec`` says; nothing but headers read.

    The row source's ``labels`` (``.ts`` classes, ``.npz`` labels) are not read here: see
    :func:`load_signals`.
    """
    return _open(Path(path), fmt, spec or SignalSpec())[0]


def _open(p: Path, fmt: str, spec: SignalSpec) -> tuple[WindowSource, np.ndarray | None]:
    base, shape, dtype, labels = _stored(p, fmt)
    if np.dtype(dtype).kind not in "biuf":
        raise DataError(f"{p} holds {dtype} values; give numeric signals (integers or floats)")
    recording, n, c, t, length = _geometry(p, fmt, tuple(int(v) for v in shape), spec)
    if n == 0 or c == 0 or t == 0:
        raise DataError(f"{p} holds no signal values (shape {tuple(shape)}); give at least one window")
    if length > t:
        what = "the recording" if recording else "each case"
        raise DataError(f"{p}: a window of {length} steps is longer than {what} ({t} steps); "
                        f"give --window {t} or less")
    hop = spec.hop or length
    per_case = (t - length) // hop + 1
    src = WindowSource(str(p), n * per_case, (c, length), "float32", base=base, length=length, hop=hop,
                       per_case=per_case, recording=recording, channels=c)
    labels = None if labels is None or recording or len(labels) != n else np.repeat(labels, per_case)
    return src, labels


def load_signals(path: str | Path, fmt: str, spec: SignalSpec | None = None) -> Dataset:
    """Every window of a signal file (as :func:`open_signals`) with its labels: ``.ts`` classes
    (or ``.npz`` labels) repeated for each window of a case."""
    src, labels = _open(Path(path), fmt, spec or SignalSpec())
    return Dataset(src.read(0, src.n), labels, str(path), fmt, False)


def channel_normalization(source: RowSource, indices: np.ndarray) -> Normalization:
    """:func:`~edgeae.data.tsfile.fit_channel_normalization` of the windows ``source[indices]``
    (sorted), reading a block at a time: one mean and std per channel of the training split."""
    idx = np.asarray(indices, dtype=np.int64)
    c, t = source.sample_shape
    rows = max(1, _FIT_BYTES // (8 * c * t))
    if len(idx) <= rows:
        return fit_channel_normalization(source.take(idx))
    count, mean, m2 = 0, np.zeros(c), np.zeros(c)
    for i in range(0, len(idx), rows):  # Chan et al.'s pairwise merge of per-channel moments
        block = source.take(idx[i: i + rows]).astype(np.float64).transpose(1, 0, 2).reshape(c, -1)  # (C, k*T)
        k = block.shape[1]
        bmean = block.mean(axis=1)
        delta = bmean - mean
        m2 += np.square(block - bmean[:, None]).sum(axis=1) + np.square(delta) * (count * k / (count + k))
        mean += delta * (k / (count + k))
        count += k
    std = np.sqrt(m2 / count)
    std[~(std > 1e-12 * np.maximum(1.0, np.abs(mean)))] = 1.0  # the same rule as fit_channel_normalization
    return Normalization(mode="standardize", raw_dtype="float32", offset=np.repeat(mean, t).tolist(),
                         scale=np.repeat(std, t).tolist())



def spec_for_model(window: int | None, hop: int | None, sample_shape: tuple[int, ...]) -> SignalSpec | None:
    """The windowing a trained model's input asks for: ``window`` defaults to the model's
    window length ``T`` of its ``(C, T)`` samples when only ``hop`` is given; None: neither."""
    if window is None and hop is None:
        return None
    if len(sample_shape) != 2:
        raise DataError(f"--window / --hop cut signals into windows, but this model takes samples of shape "
                        f"{tuple(sample_shape)}, not (C, T) signal windows")
    spec = SignalSpec(window=sample_shape[1] if window is None else window, hop=hop)
    if spec.window != sample_shape[1]:
        raise DataError(f"--window {spec.window}: this model takes windows of {sample_shape[1]} steps "
                        f"(samples of shape {tuple(sample_shape)}); give --window {sample_shape[1]} or leave it out")
    return spec
