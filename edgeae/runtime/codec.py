"""Latent codec: per-dimension uniform quantization + integer probability tables.

Data flow (one sample, ``D = code_size``)::

    code (D,) float32 -> quantize -> q (D,) ints in 0..2**bits-1 -> range coder -> bytes
    bytes -> range coder -> q -> dequantize -> code_hat (D,) float32

The tables are fitted once on training codes (at export time) and stored in the bundle
manifest under ``"codec"`` as plain integers and floats, so an encoder and a decoder on
different machines build bit-identical entropy models. The range coder is ``constriction``
where it is installed, else the built-in :mod:`edgeae.runtime.rangecoder` (the same bytes);
``EDGEAE_CODER=builtin`` or ``=constriction`` picks one (:func:`range_coder`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeae.config import MAX_LATENT_BITS, MIN_LATENT_BITS
from edgeae.errors import BundleError, ConfigError, InputError, StreamError
from edgeae.runtime import rangecoder

__all__ = ["LatentCodec", "CODEC_FORMAT", "DEFAULT_PRECISION", "MIN_BITS", "MAX_BITS", "CODER_ENV", "range_coder", "quantize_symbols"]

CODEC_FORMAT = "edgeae-latent-codec"  # "format" field of a codec record
CODEC_VERSION = 1  # bumped on any change that alters the coded bytes
DEFAULT_PRECISION = 16  # frequencies of one dimension sum to 2**precision
MIN_BITS, MAX_BITS = MIN_LATENT_BITS, MAX_LATENT_BITS  # edgeae.config holds the range
_MAX_PRECISION = 24  # constriction's categorical models resolve 24-bit probabilities
CODER_ENV = "EDGEAE_CODER"  # "builtin" | "constriction" | unset or "auto": constriction if installed
# Candidate clipping percentiles for calibration; per dimension the one with the
# smallest quantization + clipping error on the training codes wins.
_CLIP_PERCENTILES = (0.0, 0.01, 0.05, 0.1, 0.5, 1.0)


def _smoothed_freqs(counts: np.ndarray, precision: int) -> np.ndarray:
    """Histogram (L,) -> integer frequencies summing to 2**precision, none zero.

    Laplace smoothing: every symbol gets 1, the rest is shared in proportion to the
    counts by largest remainder (ties broken by index), in integer arithmetic only.
    """
    n_sym = counts.size
    total = 1 << precision
    spare = total - n_sym  # what is left after the +1 of every symbol
    counts = counts.astype(np.int64)
    n = int(counts.sum())
    if n == 0:
        base = np.full(n_sym, spare // n_sym, dtype=np.int64)
        base[: spare - int(base.sum())] += 1
        return base + 1
    share = counts * spare  # exact in int64: n < 2**40, spare < 2**24
    base = share // n
    rem = share - base * n
    left = spare - int(base.sum())
    order = np.lexsort((np.arange(n_sym), -rem))  # largest remainder first, then index
    base[order[:left]] += 1
    return base + 1


@dataclass
class LatentCodec:
    """Quantization ranges and entropy-coding tables for the codes of one model.

    Fit with :meth:`fit` on training codes; store with :meth:`to_dict` (JSON-safe) and
    restore with :meth:`from_dict`, which validates every field.
    """

    bits: int  # bits per dimension before entropy coding: 2..8 (L = 2**bits levels)
    lo: list[float]  # (D,) lower end of each dimension's range (reconstruction of q=0)
    hi: list[float]  # (D,) upper end (reconstruction of q=L-1); hi == lo: constant dim
    freqs: list[list[int]]  # (D, L) integer frequencies, each row sums to 2**precision
    precision: int = DEFAULT_PRECISION  # log2 of every row's total
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self)

    # ----------------------------------------------------------------- fitting
    @classmethod
    def fit(
        cls,
        train_codes: np.ndarray,
        bits: int,
        clip: str | float = "auto",
        precision: int = DEFAULT_PRECISION,
        value_range: tuple[float, float] | None = None,
    ) -> LatentCodec:
        """Calibrate ranges and tables on training codes ``(N, D)``.

        ``clip``: ``"auto"`` picks per dimension the clipping percentile (of
        ``_CLIP_PERCENTILES``) with the smallest mean squared quantization error;
        ``"minmax"`` uses min/max; a number ``p`` uses the ``p`` / ``100 - p`` percentiles.
        ``value_range=(lo, hi)`` fixes every dimension's range instead: a model trained with
        quantization in the loop (``edgeae train --latent-bits``) decodes exactly the grid
        it was trained on when the codec uses that grid ((0, 1) with sigmoid codes).
        """
        codes = _as_codes(train_codes, None)
        if codes.shape[0] == 0:
            raise InputError("train_codes has no rows; fit the codec on at least one code")
        if not np.isfinite(codes).all():
            raise InputError("train_codes contains NaN or inf; fit on finite codes only")
        if not (isinstance(bits, int) and MIN_BITS <= bits <= MAX_BITS):
            raise InputError(f"bits={bits!r} is not allowed; use an integer {MIN_BITS}..{MAX_BITS}")
        codes = codes.astype(np.float64)
        if clip == "auto":
            cands = _CLIP_PERCENTILES
        elif clip == "minmax":
            cands = (0.0,)
        elif isinstance(clip, (int, float)) and 0 <= clip < 50:
            cands = (float(clip),)
        else:
            raise InputError(f"clip={clip!r} is not allowed; use 'auto', 'minmax' or 0 <= p < 50")
        best_err = np.full(codes.shape[1], np.inf)
        lo = np.zeros(codes.shape[1])
        hi = np.zeros(codes.shape[1])
        if value_range is not None:
            cands = ()
            lo = np.full(codes.shape[1], float(value_range[0]))
            hi = np.full(codes.shape[1], float(value_range[1]))
        for p in cands:
            c_lo = np.percentile(codes, p, axis=0)
            c_hi = np.percentile(codes, 100.0 - p, axis=0)
            rec = _dequantize(quantize_symbols(codes, c_lo, c_hi, bits), c_lo, c_hi, bits)
            err = ((rec - codes) ** 2).mean(axis=0)
            better = err < best_err
            best_err = np.where(better, err, best_err)
            lo = np.where(better, c_lo, lo)
            hi = np.where(better, c_hi, hi)
        q = quantize_symbols(codes, lo, hi, bits)
        n_sym = 1 << bits
        freqs = [
            _smoothed_freqs(np.bincount(q[:, d], minlength=n_sym), precision).tolist()
            for d in range(codes.shape[1])
        ]
        return cls(bits=bits, lo=lo.tolist(), hi=hi.tolist(), freqs=freqs, precision=precision)

    # ------------------------------------------------------------ quantization
    @property
    def code_size(self) -> int:
        """Number of code dimensions D."""
        return len(self.lo)

    @property
    def levels(self) -> int:
        """Number of quantization levels L = 2**bits."""
        return 1 << self.bits

    def quantize(self, codes: np.ndarray) -> np.ndarray:
        """Float codes ``(N, D)`` -> int32 symbols ``(N, D)``; values outside [lo, hi] clip."""
        c = _as_codes(codes, self.code_size)
        if not np.isfinite(c).all():
            raise InputError("codes contain NaN or inf; the encoder output must be finite")
        lo, hi = self._arrays()
        return quantize_symbols(c.astype(np.float64), lo, hi, self.bits)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """Symbols ``(N, D)`` -> float32 codes at the bin centres ``lo + q * step``."""
        q = self.check_symbols(q)
        lo, hi = self._arrays()
        return _dequantize(q, lo, hi, self.bits).astype(np.float32)

    def check_symbols(self, q: np.ndarray) -> np.ndarray:
        """Validate integer symbols ``(N, D)`` in ``0..L-1``; returns them as int32."""
        q = np.asarray(q)
        if q.ndim != 2 or q.shape[1] != self.code_size:
            raise InputError(
                f"symbols have shape {q.shape}; expected (N, {self.code_size}) for this codec"
            )
        if not np.issubdtype(q.dtype, np.integer):
            raise InputError(f"symbols have dtype {q.dtype}; expected integers")
        if q.size and (q.min() < 0 or q.max() >= self.levels):
            raise InputError(
                f"symbols range {q.min()}..{q.max()} is outside 0..{self.levels - 1} "
                f"for bits={self.bits}; quantize the codes with this codec"
            )
        return q.astype(np.int32, copy=False)

    # ----------------------------------------------------------------- tables
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record for ``manifest["codec"]``."""
        return {
            "format": CODEC_FORMAT,
            "version": CODEC_VERSION,
            "coder": "constriction.range.categorical",
            "bits": self.bits,
            "precision": self.precision,
            "lo": [float(v) for v in self.lo],
            "hi": [float(v) for v in self.hi],
            "freqs": [[int(v) for v in row] for row in self.freqs],
        }

    @classmethod
    def from_dict(cls, record: Any) -> LatentCodec:
        """Rebuild from :meth:`to_dict` output; raises BundleError on any bad field."""
        if not isinstance(record, dict):
            raise BundleError(f"codec record is {type(record).__name__}; expected an object")
        if record.get("format") != CODEC_FORMAT or record.get("version") != CODEC_VERSION:
            raise BundleError(
                f"codec record format {record.get('format')!r} version {record.get('version')!r}"
                f" is not supported; expected {CODEC_FORMAT!r} version {CODEC_VERSION}"
                " (re-export the bundle with this edgeae version)"
            )
        missing = [k for k in ("bits", "precision", "lo", "hi", "freqs") if k not in record]
        if missing:
            raise BundleError(f"codec record lacks {missing}; re-export the bundle")
        return cls(
            bits=record["bits"],
            lo=record["lo"],
            hi=record["hi"],
            freqs=record["freqs"],
            precision=record["precision"],
        )

    def model_id(self, decoder_sha256: str) -> bytes:
        """8-byte id of (decoder graph, codec tables): a stream is refused by any other model."""
        if not (isinstance(decoder_sha256, str) and decoder_sha256):
            raise BundleError(f"decoder sha256 {decoder_sha256!r} is not a hex digest string")
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        blob = decoder_sha256.lower().encode("ascii") + b"\n" + canon.encode("utf-8")
        return hashlib.sha256(blob).digest()[:8]

    def expected_bits_per_sample(self, codes: np.ndarray) -> float:
        """Cross-entropy of the quantized ``codes`` under the tables, in bits per sample.

        What the range coder spends on average, before stream framing (docs/FORMAT.md).
        """
        q = self.quantize(codes)
        if q.shape[0] == 0:
            return 0.0
        logp = self._log2_probs()  # (D, L)
        d_idx = np.arange(self.code_size)[None, :]
        return float(-logp[d_idx, q].sum(axis=1).mean())

    def min_bits_per_sample(self) -> float:
        """Fewest bits any sample can cost: bounds the sample count a payload can hold."""
        return float(-self._log2_probs().max(axis=1).sum())

    # ---------------------------------------------------------------- helpers
    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if "lohi" not in self._cache:
            self._cache["lohi"] = (
                np.asarray(self.lo, dtype=np.float64),
                np.asarray(self.hi, dtype=np.float64),
            )
        return self._cache["lohi"]

    def _log2_probs(self) -> np.ndarray:
        f = np.asarray(self.freqs, dtype=np.float64)
        return np.log2(f) - self.precision

    def encode_symbols(self, q: np.ndarray, trim_tries: int) -> bytes:
        """Symbols ``(n, D)`` -> the shortest payload that decodes back to exactly ``q``.

        The range coder's 32-bit words less up to ``trim_tries`` tail bytes (the last kept
        byte rounded up first, then as is) where the decoder, reading zeros past the end,
        still recovers every symbol (docs/FORMAT.md). Both coders pick the same bytes.
        """
        if range_coder() == "builtin":
            return rangecoder.shortest_payload(self._cdf(), q, trim_tries)
        return _constriction_payload(self, q, trim_tries)

    def decode_symbols(self, payload: bytes, n: int) -> np.ndarray:
        """A payload of ``n`` samples -> ``(n, D)`` int32 symbols; StreamError if it cannot decode."""
        if range_coder() == "builtin":
            return rangecoder.decode(self._cdf(), payload, n)
        return _constriction_decode(self, payload, n)

    def _cdf(self) -> np.ndarray:
        if "cdf" not in self._cache:
            self._cache["cdf"] = rangecoder.cdf_table(np.asarray(self.freqs, dtype=np.int64), self.precision)
        return self._cache["cdf"]

    def entropy_models(self) -> list:
        """One constriction categorical model per dimension (built once, cached).

        Probabilities are ``freq / 2**precision``: exact in float64, so every machine
        hands constriction the same numbers and gets the same fixed-point model.
        """
        if "models" not in self._cache:
            import constriction  # submodules are attributes, not importable modules

            total = float(1 << self.precision)
            self._cache["models"] = [
                constriction.stream.model.Categorical(
                    np.asarray(row, dtype=np.float64) / total, perfect=False
                )
                for row in self.freqs
            ]
        return self._cache["models"]


def range_coder() -> str:
    """``"constriction"`` or ``"builtin"``: ``$EDGEAE_CODER`` if set, else constriction where installed.

    Both write and read the same bytes; constriction is faster, the built-in coder runs
    wherever numpy does (PyPI has no constriction wheel for Linux on ARM64).
    """
    want = os.environ.get(CODER_ENV, "auto").strip().lower() or "auto"
    if want not in ("auto", "builtin", "constriction"):
        raise ConfigError(f"{CODER_ENV}={want!r} is not a range coder; use builtin, constriction or auto")
    if want == "auto":
        return "constriction" if _has_constriction() else "builtin"
    if want == "constriction" and not _has_constriction():
        raise ConfigError(f"{CODER_ENV}=constriction, but constriction is not installed "
                          f"(pip install constriction, or unset {CODER_ENV} for the built-in coder)")
    return want


def _has_constriction() -> bool:
    try:
        return importlib.util.find_spec("constriction") is not None
    except ValueError:  # a module set to None in sys.modules
        return False


def _constriction_decode(codec: LatentCodec, payload: bytes, n: int) -> np.ndarray:
    """constriction's decoder; any complaint of it (a Rust panic too) becomes StreamError."""
    import constriction  # its submodules are attributes, not importable modules

    out = np.empty((codec.code_size, n), dtype=np.int32)  # (D, n): dim-major order
    try:
        padded = bytes(payload) + b"\0" * ((-len(payload)) % 4 + 8)  # zeros past the end; 2 spare words
        dec = constriction.stream.queue.RangeDecoder(np.frombuffer(padded, dtype="<u4").astype(np.uint32))
        for d, model in enumerate(codec.entropy_models()):
            out[d] = dec.decode(model, n)
    except BaseException as exc:  # constriction raises AssertionError; a Rust panic is a
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise  # BaseException (PanicException); never swallow KeyboardInterrupt
        raise StreamError(f"chunk payload cannot be decoded ({exc}); stream corrupt") from exc
    return out.T


def _constriction_payload(codec: LatentCodec, q: np.ndarray, trim_tries: int) -> bytes:
    """:meth:`LatentCodec.encode_symbols` with constriction: each trim candidate is decoded."""
    import constriction

    enc = constriction.stream.queue.RangeEncoder()
    for d, model in enumerate(codec.entropy_models()):
        enc.encode(np.ascontiguousarray(q[:, d]), model)
    full = enc.get_compressed().astype("<u4").tobytes()

    def holds(cand: bytes) -> bool:
        try:
            return np.array_equal(_constriction_decode(codec, cand, q.shape[0]), q)
        except StreamError:
            return False

    return rangecoder.trim(full, holds, trim_tries)


def _as_codes(codes: Any, code_size: int | None) -> np.ndarray:
    c = np.asarray(codes)
    if c.ndim != 2 or (code_size is not None and c.shape[1] != code_size):
        want = "(N, D)" if code_size is None else f"(N, {code_size})"
        raise InputError(f"codes have shape {c.shape}; expected {want}")
    if not (np.issubdtype(c.dtype, np.floating) or np.issubdtype(c.dtype, np.integer)):
        raise InputError(f"codes have dtype {c.dtype}; expected floats")
    return c


def quantize_symbols(c: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """(N, D) float64 -> (N, D) int32: clip(round((c - lo) / step), 0, L-1), the codec's symbols
    (the generated C's threshold tables are built from the same rule)."""
    top = (1 << bits) - 1
    step = (hi - lo) / top
    safe = np.where(step > 0, step, 1.0)
    q = np.rint((c - lo) / safe)
    q = np.where(step > 0, q, 0.0)  # constant dimension: a single symbol
    return np.clip(q, 0, top).astype(np.int32)


def _dequantize(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    step = (hi - lo) / ((1 << bits) - 1)
    return lo + q.astype(np.float64) * step


_MAX_RANGE = 1e30  # |lo|, |hi|: far beyond any code, and hi - lo stays finite in float32


def _validate(codec: LatentCodec) -> None:
    """Every check a table from an untrusted manifest needs; BundleError names the field."""
    bits, prec = codec.bits, codec.precision
    if not (isinstance(bits, int) and not isinstance(bits, bool) and MIN_BITS <= bits <= MAX_BITS):
        raise BundleError(f"codec bits={bits!r} is not allowed; expected {MIN_BITS}..{MAX_BITS}")
    if not (isinstance(prec, int) and not isinstance(prec, bool) and bits < prec <= _MAX_PRECISION):
        raise BundleError(
            f"codec precision={prec!r} is not allowed; expected {bits + 1}..{_MAX_PRECISION}"
        )
    for name in ("lo", "hi", "freqs"):
        if not isinstance(getattr(codec, name), (list, tuple)):
            raise BundleError(f"codec {name} is not a list")
    d = len(codec.lo)
    if d == 0 or len(codec.hi) != d or len(codec.freqs) != d:
        raise BundleError(
            f"codec lo/hi/freqs have lengths {len(codec.lo)}/{len(codec.hi)}/{len(codec.freqs)};"
            " expected one equal, non-zero length (the code size)"
        )
    for i, (a, b) in enumerate(zip(codec.lo, codec.hi, strict=True)):
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        if not ok or not -_MAX_RANGE <= a <= b <= _MAX_RANGE:  # exact for ints of any size; NaN fails
            raise BundleError(f"codec range of dim {i} is [{str(a)[:40]}, {str(b)[:40]}]; expected "
                              f"lo <= hi within +-{_MAX_RANGE:g} (float32 codes)")
    n_sym, total = 1 << bits, 1 << prec
    for i, row in enumerate(codec.freqs):
        if not isinstance(row, (list, tuple)) or len(row) != n_sym:
            raise BundleError(f"codec freqs[{i}] is not a list of {n_sym} integers (bits={bits})")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in row):
            raise BundleError(f"codec freqs[{i}] has a non-integer or non-positive entry")
        if sum(row) != total:
            raise BundleError(f"codec freqs[{i}] sums to {sum(row)}; expected 2**{prec} = {total}")
