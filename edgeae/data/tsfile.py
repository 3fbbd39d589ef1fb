"""Reading UCR/UEA ``.ts`` time-series files that may be malformed or hostile; windowing.

The format (https://www.timeseriesclassification.com, as written by sktime/aeon)::

    # comment lines (also %)
    @problemName BasicMotions
    @timeStamps false
    @univariate false
    @dimensions 6
    @equalLength true
    @seriesLength 100
    @classLabel true Standing Running Walking Badminton
    @data
    0.07,0.08,...:0.3,0.1,...:...:Standing      <- one case per line: dimensions split by ':',
                                                   values by ',', the class label last

:func:`read_ts` gives the cases as ``(N, C, T)`` float32 with their labels. Only what the
models can use is accepted: equal-length series without time stamps and without missing
values (``?``); everything else is refused with a :class:`DataError` that names the line. The
header is checked against the cases (dimensions, series length, declared class labels),
and the header itself is bounded (a file that never reaches ``@data`` is refused early).

:func:`window_series` cuts a continuous ``(T, C)`` recording or ``(N, C, T)`` cases into
``(M, C, length)`` windows with a hop; :func:`fit_channel_normalization` standardizes each
channel with statistics of the training windows only, as one record the runtime's
:class:`~edgeae.runtime.preprocess.Normalizer` applies to ``(C, T)`` samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeae.config import Normalization
from edgeae.errors import DataError

__all__ = ["TsData", "read_ts", "parse_ts", "window_series", "fit_channel_normalization",
           "MAX_HEADER_BYTES", "MAX_CLASSES"]

MAX_HEADER_BYTES = 1 << 20  # comments + tags before @data; real files hold a few KB
MAX_CLASSES = 65536  # declared class labels
_BOOL = {"true": True, "false": False}
# tags that decide how the cases read: given twice, they must agree
_SHAPING = ("timestamps", "dimensions", "serieslength", "classlabel", "targetlabel", "equallength", "univariate")


@dataclass
class TsData:
    """The cases of a ``.ts`` file."""

    x: np.ndarray  # (N, C, T) float32
    labels: np.ndarray | None  # (N,) int64 index into class_names (@classLabel true), else None
    class_names: tuple[str, ...] = ()  # as declared by @classLabel, in that order
    targets: np.ndarray | None = None  # (N,) float32 regression targets (@targetLabel true)
    name: str = ""  # @problemName
    tags: dict[str, str] = field(default_factory=dict)  # every header tag, lower-case name -> value

    def __len__(self) -> int:
        return int(self.x.shape[0])


def read_ts(path: str | Path) -> TsData:
    """Read a ``.ts`` file; a :class:`DataError` names the line of anything refused."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{p} could not be read ({exc.strerror or exc})") from None
    return parse_ts(raw, str(p))


def parse_ts(raw: bytes | str, where: str = "<ts>") -> TsData:
    """Parse the text of a ``.ts`` file (see the module docstring)."""
    text = raw if isinstance(raw, str) else _decode(raw, where)
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise DataError(f"{where} is empty; give a UCR/UEA .ts file (header tags, @data, one case per line)")
    tags, first = _header(lines, where)
    _flag(tags, "timestamps", where)  # refused when true
    labelled = _flag(tags, "classlabel", where) or _flag(tags, "targetlabel", where)
    dims = _positive(tags, "dimensions", where)
    length = _positive(tags, "serieslength", where)
    cases, labels = [], []
    for i in range(first, len(lines)):
        line = lines[i].strip()
        if not line or line[0] in "#%":
            continue
        values, label = _case(line, i + 1, labelled, where)
        dims = dims or len(values)
        length = length or len(values[0])
        _check_shape(values, dims, length, i + 1, where)
        cases.append(values)
        labels.append(label)
    if not cases:
        raise DataError(f"{where} has a header but no cases after @data; give one case per line")
    x = np.asarray(cases, dtype=np.float64)  # (N, C, T)
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    _check_finite(x32, lines, first, where)
    return _finish(x32, labels, tags, where)


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{where}, line {line}: not UTF-8 text (byte {raw[exc.start]:#04x}); "
                        "is this a .ts file?") from None


def _header(lines: list[str], where: str) -> tuple[dict[str, str], int]:
    """The header tags (lower-case names) and the index of the first line after ``@data``."""
    tags: dict[str, str] = {}
    size = 0
    for i, line in enumerate(lines):
        size += len(line) + 1
        if size > MAX_HEADER_BYTES:
            raise DataError(f"{where}: no @data line within the first {MAX_HEADER_BYTES} bytes (line {i + 1}); "
                            "a .ts file's header is a few tags: is this a .ts file?")
        text = line.strip()
        if not text or text[0] in "#%":
            continue
        if text[0] != "@":
            raise DataError(f"{where}, line {i + 1}: expected a header tag (@name value) or @data before the "
                            f"cases, got {text[:40]!r}")
        name, _, value = text[1:].partition(" ")
        name = name.lower()
        if name == "data":
            return tags, i + 1
        if name in tags and name in _SHAPING and tags[name] != value.strip():
            raise DataError(f"{where}, line {i + 1}: tag @{name} appears twice, with different values "
                            f"({tags[name]!r}, {value.strip()!r})")
        tags.setdefault(name, value.strip())  # a repeated descriptive tag (@problemName): the first
    raise DataError(f"{where} has no @data line; a .ts file lists its header tags, then @data, then the cases")


def _flag(tags: dict[str, str], name: str, where: str) -> bool:
    """A ``true``/``false`` tag (absent: false); refuses what this reader cannot honour."""
    value = tags.get(name, "false").split(" ")[0].lower()
    if value not in _BOOL:
        raise DataError(f"{where}: @{name} must be true or false, got {value!r}")
    if _BOOL[value] and name == "timestamps":
        raise DataError(f"{where}: @timeStamps true is not supported; give series of plain values "
                        "(one value per step, equally spaced)")
    return _BOOL[value]


def _positive(tags: dict[str, str], name: str, where: str) -> int | None:
    if name not in tags:
        return None
    try:
        value = int(tags[name])
    except ValueError:
        value = 0
    if value <= 0:
        raise DataError(f"{where}: @{name} must be a positive integer, got {tags[name]!r}")
    return value


def _case(line: str, no: int, labelled: bool, where: str) -> tuple[list[list[float]], str | None]:
    """One case line -> values per dimension, and its label field."""
    parts = line.split(":")
    label = None
    if labelled:
        if len(parts) < 2:
            raise DataError(f"{where}, line {no}: the header declares a label, but this case has none "
                            "(expected values:...:label)")
        label = parts.pop().strip()
    if "(" in line:
        raise DataError(f"{where}, line {no}: time-stamped values '(t,v)' are not supported; give plain values")
    values = []
    for d, part in enumerate(parts):
        cells = part.split(",")
        try:
            values.append([float(c) for c in cells])
        except ValueError:
            bad = next(c for c in cells if not _is_float(c))
            what = "a missing value ('?')" if bad.strip() == "?" else f"{bad.strip()[:20]!r}, not a number"
            raise DataError(f"{where}, line {no}, dimension {d + 1}: {what}; this reader needs complete "
                            "numeric series (fill or drop missing values first)") from None
    return values, label


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_shape(values: list[list[float]], dims: int, length: int, no: int, where: str) -> None:
    if len(values) != dims:
        raise DataError(f"{where}, line {no}: {len(values)} dimensions, but the file has {dims} "
                        "(from @dimensions or the first case); every case needs the same channels")
    for d, series in enumerate(values):
        if len(series) != length:
            raise DataError(f"{where}, line {no}, dimension {d + 1}: {len(series)} values, but the series are "
                            f"{length} long (from @seriesLength or the first case); this reader needs "
                            "equal-length series: resample or use the data set's equal-length variant")


def _check_finite(x: np.ndarray, lines: list[str], first: int, where: str) -> None:
    bad = ~np.isfinite(x).all(axis=(1, 2))
    if not bad.any():
        return
    case = int(np.argmax(bad))
    seen = -1
    for i in range(first, len(lines)):  # the line of that case, to name it
        text = lines[i].strip()
        if text and text[0] not in "#%":
            seen += 1
            if seen == case:
                raise DataError(f"{where}, line {i + 1}: NaN, infinite or out-of-float32-range values; "
                                f"{int((~np.isfinite(x)).sum())} in the file: clean them first")


def _finish(x: np.ndarray, labels: list[str | None], tags: dict[str, str], where: str) -> TsData:
    """Labels to class indices (@classLabel) or float targets (@targetLabel)."""
    name = tags.get("problemname", "")
    if _flag(tags, "targetlabel", where):
        try:
            targets = np.asarray([float(v) for v in labels], dtype=np.float32)
        except ValueError:
            raise DataError(f"{where}: @targetLabel true needs numeric targets after the last ':'") from None
        return TsData(x, None, (), targets, name, tags)
    if not _flag(tags, "classlabel", where):
        return TsData(x, None, (), None, name, tags)
    names = tuple(tags["classlabel"].split()[1:])
    if len(names) > MAX_CLASSES:
        raise DataError(f"{where}: @classLabel declares {len(names)} classes; at most {MAX_CLASSES}")
    index = {n: k for k, n in enumerate(names)}
    if not names:  # declared without the list: classes in order of appearance
        index = {n: k for k, n in enumerate(dict.fromkeys(labels))}
        names = tuple(index)
    unknown = next((v for v in labels if v not in index), None)
    if unknown is not None:
        case = labels.index(unknown) + 1
        raise DataError(f"{where}: case {case} has class {unknown!r}, which @classLabel does not declare "
                        f"({' '.join(names[:10])}{' ...' if len(names) > 10 else ''})")
    return TsData(x, np.asarray([index[v] for v in labels], dtype=np.int64), names, None, name, tags)


def window_series(x: np.ndarray, length: int, hop: int | None = None) -> np.ndarray:
    """Cut signals into windows ``(M, C, length)``, one every ``hop`` steps (default: ``length``).

    ``x`` is one continuous recording ``(T, C)`` (rows are time steps, as in a CSV with one
    column per channel) or cases ``(N, C, T)`` (as :func:`read_ts` gives), each cut on its
    own: windows never straddle two cases. A tail shorter than a window is left out.
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise DataError(f"cannot window {arr.dtype} values; give numeric signals")
    if isinstance(length, bool) or int(length) != length or length <= 0:
        raise DataError(f"window length must be a positive integer, got {length!r}")
    hop = length if hop is None else hop
    if isinstance(hop, bool) or int(hop) != hop or hop <= 0:
        raise DataError(f"window hop must be a positive integer, got {hop!r}")
    if arr.ndim == 2:
        cases = arr.T[None]  # (T, C) -> (1, C, T)
    elif arr.ndim == 3:
        cases = arr
    else:
        raise DataError(f"cannot window an array of shape {arr.shape}; give (T, C) or (N, C, T)")
    n, c, t = cases.shape
    if n == 0 or c == 0 or t < length:
        raise DataError(f"signals of shape {arr.shape} hold no window of {length} steps; "
                        f"give at least {length} steps per series or a shorter window")
    view = np.lib.stride_tricks.sliding_window_view(cases, length, axis=2)[:, :, ::hop]  # (N, C, M, L)
    out = view.transpose(0, 2, 1, 3).reshape(-1, c, length)  # (N * M, C, L), case-major
    return np.ascontiguousarray(out, dtype=np.float32 if arr.dtype.kind != "f" else arr.dtype)


def fit_channel_normalization(windows: np.ndarray) -> Normalization:
    """Standardize each channel with the mean and std of the training windows ``(N, C, T)``.

    One mean and std per channel (not per step: the statistics of a sensor do not depend on
    where a window starts), stored per feature of the ``(C, T)`` sample so every target that
    reads a bundle's normalization (runtime, generated C, browser) applies it unchanged.
    """
    w = np.asarray(windows)
    if w.ndim != 3 or 0 in w.shape:
        raise DataError(f"fit the normalization on windows (N, C, T) with N >= 1, got shape {w.shape}")
    w64 = w.astype(np.float64)
    if not np.isfinite(w64).all():
        raise DataError("cannot fit a normalization: the windows hold NaN or infinite values")
    mean = w64.mean(axis=(0, 2))  # (C,)
    std = w64.std(axis=(0, 2))
    std[~(std > 1e-12 * np.maximum(1.0, np.abs(mean)))] = 1.0  # constant channels: centred, not divided by 0
    t = w.shape[2]
    return Normalization(mode="standardize", raw_dtype="float32", offset=np.repeat(mean, t).tolist(),
                         scale=np.repeat(std, t).tolist())
