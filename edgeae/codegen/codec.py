"""Bundle -> the `.eae` codec in dependency-free C99 (quantizer, range coder, stream I/O).

    manifest["codec"] (one record per bit depth)
        -> <prefix>_codec.h / <prefix>_codec.c : static const ranges, steps and integer
           cumulative-frequency tables, the model id and the reader's sample-count bound
        +  eae_codec.h / eae_codec.c            : the codec itself (same for every bundle)

The C writer's bytes equal ``edgeae compress``'s for the same codes, and the C reader
accepts exactly the streams the Python reader accepts: both sides use the same integers
(the 24-bit CDF constriction derives from ``freqs``, see eae_codec.c) and the same IEEE
double quantizer, whose constants are written as exact hexadecimal floats.
Reads bundles only: works without torch and onnx.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from edgeae.codegen.names import DEFAULT_PREFIX, check_prefix
from edgeae.errors import BundleError, ConfigError
from edgeae.runtime.codec import LatentCodec, quantize_symbols

__all__ = ["bundle_codecs", "codec_sources", "write_codec", "write_codec_files", "TEMPLATE_DIR", "CODEC_FILES",
           "TOOL_FILE"]

TEMPLATE_DIR = Path(__file__).parent
CODEC_FILES = ("eae_codec.h", "eae_codec.c")  # copied as they are into every output
TOOL_FILE = "eae_codec_tool.c"  # a host command-line harness (tests, benchmarks)


def bundle_codecs(bundle_dir: str | Path) -> list[tuple[LatentCodec, bytes]]:
    """Every (codec, model id) of a bundle, in manifest order (validated, as the runtime does)."""
    from edgeae.runtime.bundle import read_manifest
    from edgeae.runtime.compress import codecs_of

    return codecs_of(read_manifest(bundle_dir))


def _select(options: list[tuple[LatentCodec, bytes]], bits: int | list[int] | None):
    if bits is None:
        return options
    wanted = [bits] if isinstance(bits, int) else list(bits)
    have = sorted({c.bits for c, _ in options})
    missing = [b for b in wanted if b not in have]
    if missing:
        raise ConfigError(
            f"bits={missing} has no codec tables in this bundle; available: {have} "
            "(omit bits, or re-export with tables for that bit depth)"
        )
    return [o for o in options if o[0].bits in wanted]


def _hexf(v: float) -> str:
    """An exact C99 hexadecimal double literal."""
    return float(v).hex()


def _ints(values, per_line: int = 16) -> str:
    vals = [str(int(v)) for v in values]
    lines = [", ".join(vals[i : i + per_line]) for i in range(0, len(vals), per_line)]
    return ",\n    ".join(lines)


def _floats(values, per_line: int = 3) -> str:
    vals = [_hexf(v) for v in values]
    lines = [", ".join(vals[i : i + per_line]) for i in range(0, len(vals), per_line)]
    return ",\n    ".join(lines)


def _steps(codec: LatentCodec) -> np.ndarray:
    """The quantizer step exactly as numpy computes it in edgeae.runtime.codec."""
    lo = np.asarray(codec.lo, dtype=np.float64)
    hi = np.asarray(codec.hi, dtype=np.float64)
    return (hi - lo) / ((1 << codec.bits) - 1)


def _cumulative(codec: LatentCodec) -> np.ndarray:
    """(D, L) C_i = freqs[0] + ... + freqs[i-1]: C_0 = 0, C_{L-1} < 2**precision."""
    f = np.asarray(codec.freqs, dtype=np.int64)
    return np.concatenate([np.zeros((f.shape[0], 1), np.int64), np.cumsum(f, 1)[:, :-1]], 1)


def _ordered(bits: np.ndarray) -> np.ndarray:
    """float32 bit patterns (uint32) -> integers in the floats' order."""
    b = bits.astype(np.int64)
    return np.where(b & 0x80000000, 0xFFFFFFFF - b, b | 0x80000000)


def _unordered(o: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_ordered`: -> float32 values."""
    b = np.where(o & 0x80000000, o & 0x7FFFFFFF, 0xFFFFFFFF - o).astype(np.uint32)
    return b.view(np.float32)


def _thresholds(codec: LatentCodec) -> np.ndarray:
    """(D, L-1) float32: T[d, k-1] = the least float32 code the quantizer maps to >= k.

    The quantizer is monotonic in the code, so ``symbol = #{k : code >= T[d, k-1]}``.
    Found by bisection over the ordered float32 values with the Python quantizer itself;
    -inf / +inf where every / no finite code reaches the symbol.
    """
    top, d = (1 << codec.bits) - 1, codec.code_size
    need = np.arange(1, top + 1)[:, None]  # (top, 1): row k-1 looks for symbol k
    fmax = np.finfo(np.float32).max
    first = int(_ordered(np.array([-fmax], np.float32).view(np.uint32))[0])  # -FLT_MAX
    sentinel = int(_ordered(np.array([fmax], np.float32).view(np.uint32))[0]) + 1  # past FLT_MAX
    lo_, hi_ = codec._arrays()

    def reaches(o: np.ndarray) -> np.ndarray:
        vals = _unordered(np.minimum(o, sentinel - 1)).astype(np.float64)  # (top, D)
        return (quantize_symbols(vals, lo_, hi_, codec.bits) >= need) & (o < sentinel)

    lo = np.full((top, d), first, np.int64)
    hi = np.full((top, d), sentinel, np.int64)
    while np.any(lo < hi):  # least o with reaches(o); the sentinel always "reaches"
        mid = (lo + hi) // 2
        ok = reaches(mid)
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, np.minimum(mid + 1, hi))
    out = _unordered(np.minimum(lo, sentinel - 1)).astype(np.float32)
    out[lo == sentinel] = np.inf
    out[(lo == first) & reaches(lo)] = -np.inf
    return out.T.copy()  # (D, top)


def _fhex(v: float) -> str:
    """A float32 as an exact C literal (for comments: inf where no finite code reaches)."""
    return str(v) if np.isinf(v) else float(v).hex() + "f"


def _header(codecs: list[tuple[LatentCodec, bytes]], prefix: str, note: str) -> str:
    """The text of ``<prefix>_codec.h``: one ``eae_codec`` per bit depth, the list, the count."""
    up = prefix.upper()
    bits_list = ", ".join(str(c.bits) for c, _ in codecs)
    h = (
        f"/* {prefix}_codec.h - generated by edgeae.codegen.codec; do not edit.\n"
        f"{note}"
        f" * {len(codecs)} codec(s), bits {bits_list}; the first is the bundle's default.\n"
        f" * Use with eae_codec.h: eae_compress({prefix}_codecs[0], codes, n, out, cap, &len).\n"
        " */\n"
        f"#ifndef {up}_CODEC_H\n#define {up}_CODEC_H\n\n#include \"eae_codec.h\"\n\n"
        "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
        f"#define {up}_CODEC_COUNT {len(codecs)}\n"
        f"#define {up}_CODE_SIZE {codecs[0][0].code_size}\n\n"
    )
    for codec, _ in codecs:
        h += f"extern const eae_codec {prefix}_codec_{codec.bits}bit; /* L = {codec.levels} */\n"
    return h + (
        f"/* every codec above, manifest order (eae_decompress picks by model id) */\n"
        f"extern const eae_codec *const {prefix}_codecs[{up}_CODEC_COUNT];\n"
        f"extern const size_t {prefix}_codec_count; /* = {up}_CODEC_COUNT */\n\n"
        "#ifdef __cplusplus\n}\n#endif\n\n"
        f"#endif /* {up}_CODEC_H */\n"
    )


def _threshold_table(codec: LatentCodec, name: str) -> str:
    """``<name>_thresh``: each dimension's float32 decision thresholds as order keys, (D, L-1) uint32."""
    t = _thresholds(codec)
    keys = _ordered(t.view(np.uint32)).ravel()
    vals = [f"0x{int(k):08x}u" for k in keys]
    rows = ",\n    ".join(", ".join(vals[i : i + 8]) for i in range(0, len(vals), 8))
    return (f"/* order keys of the least float32 code reaching symbol k (k = 1..L-1); e.g. "
            f"dim 0, k = 1: {_fhex(float(t[0, 0]))} */\n"
            f"static const uint32_t {name}_thresh[{codec.code_size} * {codec.levels - 1}] = {{ /* (D, L-1) */\n"
            f"    {rows}}};\n")


def _codec_record(codec: LatentCodec, mid: bytes, prefix: str, thresholds: bool) -> str:
    """One codec's tables (lo, step, cumulative frequencies[, thresholds]) and its ``eae_codec``."""
    name = f"{prefix}_codec_{codec.bits}bit"
    cum = _cumulative(codec)
    ctype, field = ("uint16_t", "cum16") if codec.precision <= 16 else ("uint32_t", "cum32")
    other = "cum32" if field == "cum16" else "cum16"
    d, n_lev = codec.code_size, codec.levels
    return (
        f"\n/* ---- bits {codec.bits}, precision {codec.precision}, D = {d}, "
        f"model id {mid.hex()} */\n"
        f"static const double {name}_lo[{d}] = {{\n    {_floats(codec.lo)}}};\n"
        f"static const double {name}_step[{d}] = {{\n    {_floats(_steps(codec))}}};\n"
        f"static const {ctype} {name}_cum[{d} * {n_lev}] = {{ /* (D, L) */\n"
        f"    {_ints(cum.ravel())}}};\n"
        + (_threshold_table(codec, name) if thresholds else "")
        + f"const eae_codec {name} = {{\n"
        f"    {d}, {codec.bits}, {codec.precision},\n"
        f"    {{{', '.join(f'0x{b:02x}' for b in mid)}}},\n"
        f"    {name}_lo, {name}_step,\n"
        f"    /* .{field} */ " + (f"{name}_cum, NULL" if field == "cum16" else f"NULL, {name}_cum")
        + f", /* .{other} unused */\n"
        f"    {_hexf(codec.min_bits_per_sample() / 2)}, /* min_bits */\n"
        f"    {name + '_thresh' if thresholds else 'NULL'} /* thresh */\n}};\n"
    )


def codec_sources(
    codecs: list[tuple[LatentCodec, bytes]], prefix: str = DEFAULT_PREFIX, origin: str = "",
    thresholds: bool = True,
) -> tuple[str, str]:
    """The text of ``<prefix>_codec.h`` and ``<prefix>_codec.c`` for these codecs.

    ``prefix`` is used as given (:func:`write_codec` and :func:`edgeae.codegen.generate_c`
    check the one a user chooses, :func:`edgeae.codegen.names.check_prefix`).
    ``thresholds``: also emit each dimension's float32 decision thresholds (as order keys,
    (L-1) uint32 per dimension of flash), so the C quantizer needs neither double division
    nor an FPU (see eae_codec.c).
    """
    if not codecs:
        raise BundleError("no codec tables to write; the bundle's manifest 'codec' is empty")
    up = prefix.upper()
    note = f" * Tables of {origin}.\n" if origin else ""
    c = (
        f"/* {prefix}_codec.c - generated by edgeae.codegen.codec; do not edit.\n"
        f"{note}"
        " * Per codec: lo and step of each dimension (exact hexadecimal doubles, step =\n"
        " * (hi - lo) / (2**bits - 1) as numpy computes it), the cumulative integer\n"
        " * frequencies C[d][i] = freqs[d][0] + ... + freqs[d][i-1] of manifest['codec'],\n"
        " * the model id (SHA-256 of decoder digest + tables, first 8 bytes) and the reader's\n"
        " * bound min_bits = -sum_d max_s log2(freqs[d][s] / 2**precision) / 2.\n"
        " */\n"
        f"#include \"{prefix}_codec.h\"\n"
    )
    c += "".join(_codec_record(codec, mid, prefix, thresholds) for codec, mid in codecs)
    c += f"\nconst eae_codec *const {prefix}_codecs[{up}_CODEC_COUNT] = {{\n"
    c += ",\n".join(f"    &{prefix}_codec_{codec.bits}bit" for codec, _ in codecs) + "};\n"
    c += f"const size_t {prefix}_codec_count = {up}_CODEC_COUNT;\n"
    return _header(codecs, prefix, note), c


def write_codec(
    bundle_dir: str | Path,
    out_dir: str | Path,
    prefix: str = DEFAULT_PREFIX,
    bits: int | list[int] | None = None,
    tool: bool = False,
    thresholds: bool = True,
) -> list[Path]:
    """Write the C codec of a bundle into ``out_dir``; returns the files written.

    ``prefix``: of the tables' file and symbol names (``<prefix>_codec.h``, ``<prefix>_codecs``;
    a lowercase C identifier outside the codec's own ``eae`` namespace). ``bits``: one bit
    depth or a list (default: every table the bundle carries, manifest order). ``tool=True``
    also copies ``eae_codec_tool.c``, a host command-line harness (compress, decompress,
    stream checks, timing) built with
    ``cc -O2 -std=c99 -I. eae_codec.c <prefix>_codec.c eae_codec_tool.c``.
    ``thresholds=False`` saves (L-1) floats of flash per dimension for a slower quantizer.
    """
    check_prefix(prefix)
    if bits is not None and not isinstance(bits, (int, list, tuple)):
        raise ConfigError(f"bits={bits!r} is not allowed; use an integer or a list of them")
    codecs = _select(bundle_codecs(bundle_dir), bits)
    return write_codec_files(codecs, out_dir, prefix, f"bundle {Path(bundle_dir).name}", tool, thresholds)


def write_codec_files(codecs: list[tuple[LatentCodec, bytes]], out_dir: str | Path, prefix: str, origin: str = "",
                      tool: bool = False, thresholds: bool = True) -> list[Path]:
    """Write ``eae_codec.[ch]`` (as they are) and ``<prefix>_codec.[ch]`` for ``codecs`` into ``out_dir``.

    ``prefix`` is used as given: the callers check the prefix a user chose
    (:func:`write_codec`, :func:`edgeae.codegen.generate_c`, which passes ``<prefix>_latent``).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder; pick another output folder")
    h, c = codec_sources(codecs, prefix, origin=origin, thresholds=thresholds)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CODEC_FILES + ((TOOL_FILE,) if tool else ()):
        shutil.copyfile(TEMPLATE_DIR / name, out / name)
        written.append(out / name)
    for name, text in ((f"{prefix}_codec.h", h), (f"{prefix}_codec.c", c)):
        (out / name).write_text(text)
        written.append(out / name)
    return written
