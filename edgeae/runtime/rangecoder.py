"""The built-in range coder: constriction's bytes in numpy + the standard library.

Used where ``constriction`` is not installed (PyPI has no wheel of it for Linux on ARM64)
or where ``EDGEAE_CODER=builtin`` asks for it. It writes and reads the bytes of
``constriction.stream.queue.RangeEncoder`` (32-bit words, 64-bit state) with
``Categorical(freqs / 2**precision, perfect=False)`` models (docs/FORMAT.md)::

    freqs (D, L) -> cdf (D, L+1) 24-bit: cdf[i] = ((C_i * (2**24 - L)) >> precision) + i
    symbols (n, D) -> dim-major (left, prob) -> ranges (sequential) -> one big integer -> words

Why a big integer: the coder's ``lower`` plus its emitted words is an exact sum
``N = sum_k scale_k * cdf[s_k] * 2**(32 * (R - c_k))`` (R words emitted in all, c_k of
them before symbol k); constriction's carry handling (its "inverted" state) only keeps
that sum exact while words leave early. So only the ranges need a Python loop; the sum,
the sealed words and the trimming test are numpy and int arithmetic. The decoder is a loop
over symbols, on ``point - lower`` (constriction's invariant keeps it below ``range``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

import numpy as np

from edgeae.errors import StreamError

__all__ = ["PRECISION", "Message", "cdf_table", "encode", "shortest_payload", "trim", "decode"]

PRECISION = 24  # bits of constriction's categorical models
_ONE = 1 << PRECISION
_WORD = 32
_MASK32 = (1 << _WORD) - 1
_RANGE_MIN = 1 << _WORD  # invariant: range >= 2**32 after each symbol
_RANGE_START = (1 << 64) - 1


def cdf_table(freqs: np.ndarray, precision: int) -> np.ndarray:
    """Integer frequencies ``(D, L)`` summing to ``2**precision`` -> 24-bit CDFs ``(D, L+1)``.

    What ``Categorical(freqs / 2**precision, perfect=False)`` builds: every symbol gets one
    unit, the other ``2**24 - L`` are shared by the floor of the exact cumulative sum.
    """
    f = np.asarray(freqs, dtype=np.int64)
    n_sym = f.shape[1]
    cum = np.zeros((f.shape[0], n_sym + 1), dtype=np.int64)
    np.cumsum(f, axis=1, out=cum[:, 1:])  # C_i < 2**24, times 2**24 - L: exact in int64
    cdf = ((cum * (_ONE - n_sym)) >> precision) + np.arange(n_sym + 1, dtype=np.int64)
    cdf[:, n_sym] = _ONE
    return cdf


class Message:
    """An encoded message: its words (sealed) and its final interval ``[low, low + width)``."""

    def __init__(self, low: int, width: int, body_words: int) -> None:
        self.low, self.width, self.body_words = low, width, body_words
        if body_words < 0:  # nothing encoded: no words (constriction seals nothing)
            self.words = b""
            return
        point = low + _RANGE_MIN - 1  # constriction's seal: the point word, maybe a zero word
        top = point >> _WORD  # the R body words + the point word
        words = _int_to_words(top, body_words + 1)
        if ((low + width) >> _WORD) & _MASK32 == top & _MASK32:
            words += b"\0\0\0\0"
        self.words = words

    def holds(self, payload: bytes) -> bool:
        """Does ``payload`` (zeros past its end) decode back to every symbol of the message?

        Exactly when the number its first R + 2 words spell lies in the final interval: each
        symbol's decision compares that number with a word-aligned bound of the same interval.
        """
        n_words = self.body_words + 2
        padded = bytes(payload[: 4 * n_words]).ljust(4 * n_words, b"\0")
        p = _words_to_int(padded)
        return self.low <= p < self.low + self.width


def _int_to_words(v: int, n_words: int) -> bytes:
    """Big integer -> ``n_words`` 32-bit words, most significant first, each little-endian."""
    be = v.to_bytes(4 * n_words, "big")
    return np.frombuffer(be, dtype=">u4").astype("<u4").tobytes()


def _words_to_int(data: bytes) -> int:
    """Inverse of :func:`_int_to_words` (``len(data)`` a multiple of 4)."""
    return int.from_bytes(np.frombuffer(data, dtype="<u4").astype(">u4").tobytes(), "big")


def _digits_to_int(acc: np.ndarray) -> int:
    """``sum_j acc[j] * 2**(32 j)`` for uint64 ``acc`` (each entry split in two 32-bit digits)."""
    lo = (acc & np.uint64(_MASK32)).astype("<u4").tobytes()
    hi = (acc >> np.uint64(_WORD)).astype("<u4").tobytes()
    return int.from_bytes(lo, "little") + (int.from_bytes(hi, "little") << _WORD)


def _ranges(probs: list[int]) -> tuple[list[int], list[int], int]:
    """The sequential part: per symbol the scale and whether a word left; the final range."""
    scales = [0] * len(probs)
    shifted = [0] * len(probs)
    rng, least = _RANGE_START, _RANGE_MIN
    for k, p in enumerate(probs):
        s = rng >> 24  # PRECISION
        scales[k] = s
        rng = s * p
        if rng < least:
            rng <<= 32  # one word
            shifted[k] = 1
    return scales, shifted, rng


def encode(cdf: np.ndarray, q: np.ndarray) -> Message:
    """Symbols ``(n, D)`` (each in ``0..L-1``) -> the message, coded dim-major."""
    qt = np.ascontiguousarray(np.asarray(q, dtype=np.int64).T)  # (D, n): dim 0's symbols first
    rows = np.arange(qt.shape[0])[:, None]
    left = cdf[rows, qt].ravel()
    probs = (cdf[rows, qt + 1].ravel() - left).tolist()
    if not probs:
        return Message(0, _RANGE_START, -1)
    scales, shifted, width = _ranges(probs)
    moved = np.asarray(shifted, dtype=np.int64)
    total = int(moved.sum())  # R: words that left the state
    before = np.cumsum(moved) - moved  # c_k: words gone before symbol k (non-decreasing)
    terms = np.asarray(scales, dtype=np.uint64) * left.astype(np.uint64)  # < 2**40 * 2**24
    starts = np.flatnonzero(np.diff(before, prepend=-1))  # one group per c_k value
    at = total - before[starts]  # the group's word position, counted from the bottom
    acc_lo = np.zeros(total + 3, dtype=np.uint64)
    acc_hi = np.zeros(total + 3, dtype=np.uint64)
    acc_lo[at] = np.add.reduceat(terms & np.uint64(_MASK32), starts)  # sums of < 2**32 terms
    acc_hi[at + 1] = np.add.reduceat(terms >> np.uint64(_WORD), starts)
    low = _digits_to_int(acc_lo) + _digits_to_int(acc_hi)
    return Message(low, width, total)


def shortest_payload(cdf: np.ndarray, q: np.ndarray, trim_tries: int) -> bytes:
    """The words of ``q`` less up to ``trim_tries`` tail bytes, as the stream writer keeps them."""
    msg = encode(cdf, q)
    return trim(msg.words, msg.holds, trim_tries)


def trim(full: bytes, holds: Callable[[bytes], bool], trim_tries: int) -> bytes:
    """The shortest of ``full`` less k = trim_tries..1 tail bytes for which ``holds`` is true.

    At each k the candidate with the last kept byte rounded up by one is tried first, then
    the one as is; ``full`` itself when none holds (docs/FORMAT.md).
    """
    for k in range(min(trim_tries, len(full)), 0, -1):
        head = full[: len(full) - k]
        cands = [head]
        if head and head[-1] != 0xFF:
            cands.insert(0, head[:-1] + bytes([head[-1] + 1]))
        for cand in cands:
            if holds(cand):
                return cand
    return full


def decode(cdf: np.ndarray, payload: bytes, n: int) -> np.ndarray:
    """``payload`` -> ``(n, D)`` int32 symbols; StreamError where constriction reports invalid data.

    Reads zeros past the payload's end, as constriction does on the padded words.
    """
    data = bytes(payload)
    words = np.frombuffer(data + b"\0" * ((-len(data)) % 4 + 8), dtype="<u4").tolist()
    n_words = len(words)
    tables = cdf.tolist()
    out = np.empty((len(tables), n), dtype=np.int32)
    diff = (words[0] << _WORD) | words[1]  # point - lower; lower starts at 0
    rng, pos = _RANGE_START, 2
    search, one, least, word = bisect_right, _ONE, _RANGE_MIN, _WORD  # locals: the loop's hot names
    for d, row in enumerate(tables):
        got = [0] * n
        for i in range(n):
            scale = rng >> 24  # PRECISION
            quantile = diff // scale
            if quantile >= one:
                raise StreamError(
                    f"chunk payload cannot be decoded (invalid data at symbol {d * n + i}); stream corrupt")
            s = search(row, quantile) - 1
            left = row[s]
            diff -= scale * left
            rng = scale * (row[s + 1] - left)
            if rng < least:
                rng <<= word
                diff = (diff << word) | (words[pos] if pos < n_words else 0)
                pos += 1
            got[i] = s
        out[d] = got
    return out.T
