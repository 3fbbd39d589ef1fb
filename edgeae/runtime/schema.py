"""Value checks of the bundle manifest's schema (standard library only).

:mod:`edgeae.runtime.bundle` defines the manifest's fields; this module holds the rules
their values must follow, so that a manifest that parses is one the runtime and
``edgeae info`` can use without an exception of their own: every number bounded, every
value of the expected type, strings valid Unicode, nesting shallow, file names bare,
and each graph's recorded I/O the shapes the manifest's ``code_size`` and input imply.
Each rule raises :class:`BundleError` naming the value (cut short) and what is allowed.
"""

from __future__ import annotations

import math
from typing import Any

from edgeae.config import NORMALIZATION_MODES, Normalization
from edgeae.errors import BundleError, ConfigError

__all__ = ["MAX_DEPTH", "MAX_DIM", "MAX_FEATURES", "MAX_OPSET", "MAX_FILE", "DTYPES", "need", "is_int", "choice",
           "show", "bounded", "hex64", "bare_name", "file_record", "check_values", "check_input",
           "check_normalization", "check_graph_io", "check_records"]

MAX_DEPTH = 32  # JSON nesting; edgeae writes 5 levels
MAX_DIM = 1 << 24  # one dimension of a sample or a code
MAX_FEATURES = 1 << 28  # values in one sample (3x8192x8192 is 2^27.6)
MAX_OPSET = 1000
MAX_FILE = 1 << 48  # bytes of one file the manifest may record
_F32_MAX = 3.4028234663852886e38  # largest finite float32
DTYPES = ("float32", "float16", "uint8", "int8", "float64")


def need(cond: bool, message: str) -> None:
    """Raise ``BundleError("malformed manifest: <message>")`` unless ``cond``."""
    if not cond:
        raise BundleError(f"malformed manifest: {message}")


def is_int(value: Any) -> bool:
    """An int that is not a bool (JSON ``true`` is not a count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def choice(name: str, value: Any, allowed: tuple) -> None:
    """``value`` must be one of the strings ``allowed`` (an unhashable or odd value is refused, not raised on)."""
    need(isinstance(value, str) and value in allowed,
          f"{name} {show(value)} is not one of: {', '.join(map(str, allowed))}")


def show(value: Any) -> str:
    """A value for a message, cut short (a manifest value can be megabytes long)."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's 4,300-digit str conversion limit
        return f"an int of {value.bit_length()} bits"
    return text if len(text) <= 80 else text[:60] + f"... ({len(text)} characters)"


def bounded(value: Any, low: int, high: int) -> bool:
    """An int in ``[low, high]``: compared exactly, so an int of any length is safe to test."""
    return is_int(value) and low <= value <= high


def check_values(data: Any) -> None:
    """Refuse nesting deeper than MAX_DEPTH and strings that are not valid Unicode (lone surrogates).

    JSON's ``\\ud800`` escapes decode to strings that cannot be printed or encoded, so a
    key or value holding one would fail wherever it is shown; iterative, so any depth is safe.
    """
    stack = [(data, 0, "manifest")]
    while stack:
        node, depth, where = stack.pop()
        need(depth <= MAX_DEPTH, f"{where} is nested deeper than {MAX_DEPTH} levels")
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            for text in (key, value):
                if isinstance(text, str):
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        raise BundleError(f"malformed manifest: {where} holds a string that is not valid Unicode "
                                          f"({ascii(text)[:60]}); re-export the bundle") from None
            if isinstance(value, (dict, list)):
                stack.append((value, depth + 1, f"{where}.{key[:24]}" if isinstance(key, str) else f"{where}[{key}]"))


def hex64(value: Any) -> bool:
    """A SHA-256 hex digest."""
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value)


def file_record(rec: Any) -> bool:
    """{"file": a bare name, "size": bytes, "sha256": hex digest}: a file pinned by the manifest."""
    return (isinstance(rec, dict) and isinstance(rec.get("file"), str) and bare_name(rec["file"])
            and bounded(rec.get("size"), 0, MAX_FILE) and hex64(rec.get("sha256")))


def bare_name(name: str) -> bool:
    """A file name inside the bundle folder: no separators, no '..', nothing absolute."""
    return 0 < len(name) <= 255 and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def check_input(spec: Any) -> tuple[int, ...]:
    """The manifest's ``input``: one sample's shape (bounded), dtype and image flag."""
    need(isinstance(spec, dict) and "shape" in spec, "input needs a shape")
    shape = spec["shape"]
    need(isinstance(shape, list) and 0 < len(shape) <= 3 and all(bounded(v, 1, MAX_DIM) for v in shape)
          and math.prod(shape) <= MAX_FEATURES,
          f"input shape {show(shape)} must be a list of 1 to 3 positive ints (one sample, no batch axis) "
          f"of at most {MAX_FEATURES} values")
    spec.setdefault("dtype", "float32")
    spec.setdefault("is_image", len(shape) == 3)
    choice("input dtype", spec["dtype"], ("float32",))
    need(isinstance(spec["is_image"], bool), f"input is_image {show(spec['is_image'])} must be true or false")
    need(not spec["is_image"] or len(shape) == 3, f"input is_image needs a (C, H, W) shape, not {shape}")
    return tuple(shape)


def check_normalization(norm: Any, shape: tuple[int, ...]) -> None:
    """The manifest's ``normalization``: edgeae.config's rules, plus float32 range and one value per feature."""
    need(isinstance(norm, dict) and {"mode", "raw_dtype", "offset", "scale"} <= set(norm),
          "normalization needs mode, raw_dtype, offset, scale")
    choice("normalization mode", norm["mode"], NORMALIZATION_MODES)
    choice("raw dtype", norm["raw_dtype"], ("uint8", "float32"))
    need(isinstance(norm["offset"], list) and isinstance(norm["scale"], list), "normalization offset and scale "
          "must be lists of numbers")
    try:  # lists of finite numbers, scales non-zero (the one definition, in edgeae.config)
        Normalization(**{k: norm[k] for k in ("mode", "raw_dtype", "offset", "scale")})
    except (ConfigError, TypeError, ValueError, OverflowError) as exc:
        raise BundleError(f"malformed manifest: normalization: {exc}; re-export the bundle") from None
    values = Normalization(**{k: norm[k] for k in ("mode", "raw_dtype", "offset", "scale")})
    # the runtime computes in float32: offsets, scales and 1/scale must stay finite there
    need(all(abs(v) <= _F32_MAX for v in values.offset + values.scale)
         and all(abs(v) >= 1 / _F32_MAX for v in values.scale),
         f"normalization offset/scale values must lie within float32's range (|v| <= {_F32_MAX:.4g}, "
         f"|scale| >= {1 / _F32_MAX:.4g})")
    n = len(norm["offset"])
    need(n in (1, math.prod(shape)),
          f"normalization has {n} offset/scale values; expected 1 or one per feature ({math.prod(shape)})")


def check_graph_io(g: Any, shape: tuple[int, ...], code_size: int) -> None:
    """A graph's recorded I/O must be the manifest's: samples ``(B, *shape)`` and codes ``(B, code_size)``."""
    sample, code = list(shape), [code_size]
    want = {("encoder", "in"): sample, ("encoder", "out"): code, ("decoder", "in"): code, ("decoder", "out"): sample}
    for side, specs in (("in", g.inputs[:1]), ("out", g.outputs[:1])):
        dims = specs[0].shape
        need(len(dims) == len(want[g.role, side]) + 1 and dims[1:] == want[g.role, side],
              f"graph {g.file}: {'input' if side == 'in' else 'output'} {specs[0].name} has shape {show(dims)}, "
              f"expected [batch, {', '.join(map(str, want[g.role, side]))}] (code_size {code_size}, input shape "
              f"{list(shape)})")
        need(g.fixed_batch is None or dims[0] in (g.fixed_batch, "batch"),
              f"graph {g.file}: fixed_batch {g.fixed_batch} but its batch axis is {show(dims[0])}")


def check_records(m: Any) -> None:
    """samples, validation, codec and tools: the records ``info`` and compression read."""
    if m.samples is not None:
        rec = m.samples
        need(isinstance(rec, dict) and isinstance(rec.get("file", "samples.npy"), str)
              and bare_name(rec.get("file", "samples.npy")) and hex64(rec.get("sha256"))
              and (rec.get("count") is None or bounded(rec.get("count"), 0, MAX_FILE)),
              f"samples {show(rec)} must be {{'file': a bare file name, 'sha256': hex digest, 'count': N}}")
    for prec, rec in m.validation.items():
        need(isinstance(rec, dict), f"validation[{prec!r}] {show(rec)} must be an object of figures")
        codec = rec.get("codec")
        need(codec is None or (isinstance(codec, dict) and all(isinstance(v, dict) for v in codec.values())),
              f"validation[{prec!r}].codec {show(codec)} must be an object of per-bit-depth figures")
    need(m.codec != [], "codec is an empty list; write null for a bundle without codec tables")
    for rec in m.codec if isinstance(m.codec, list) else [m.codec] if m.codec is not None else []:
        need(isinstance(rec, dict), f"codec record {show(rec)} must be an object")
    need(all(isinstance(v, str) for v in m.tools.values()), f"tools {show(m.tools)} must map names to versions")
