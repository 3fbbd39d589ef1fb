"""The lowered form of one graph: buffers, steps, constant arrays; arena planning.

A :class:`Program` is what both the C emitter and the numpy integer reference read:

    ONNX graph -> lower_fp32 / lower_int8 -> Program(buffers, steps, consts)
               -> plan_arena (liveness, greedy first fit) -> emit C  |  reference.run (numpy)

Buffers are the tensors that hold data at run time. Graph inputs and outputs live in the
caller's memory; every other buffer gets an offset in one arena. Two buffers share bytes
only when their lifetimes (first write .. last read, in step order) do not overlap, or when
an elementwise step is allowed to work in place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Buffer", "Step", "Program", "CTYPES", "c_ident"]

# numpy dtype name -> C type
CTYPES = {"float32": "float", "uint8": "uint8_t", "int8": "int8_t", "int16": "int16_t", "int32": "int32_t"}
ALIGN = 16  # arena offsets: enough for any scalar type and for SIMD loads


def c_ident(text: str) -> str:
    """A C identifier fragment from an ONNX name: ``encoder.body.0.weight`` -> ``encoder_body_0_weight``."""
    s = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    return s if s and not s[0].isdigit() else f"t_{s}"


@dataclass
class Buffer:
    """A tensor with storage at run time."""

    name: str  # ONNX tensor name
    dtype: str  # numpy dtype name: float32 | uint8 | int8
    shape: tuple[int, ...]  # batch-1 shape
    kind: str  # input | output | arena
    offset: int = -1  # arena byte offset (arena buffers, after planning)
    share: str | None = None  # arena buffer whose bytes this one reuses in place

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * np.dtype(self.dtype).itemsize

    @property
    def ctype(self) -> str:
        return CTYPES[self.dtype]


@dataclass
class Step:
    """One kernel call. ``reads``/``writes`` name buffers; ``params`` hold sizes and constants."""

    kind: str  # dense_f32 | conv_f32 | convt_f32 | pointwise | binary | copy | qdense | qconv | qconvt | lut | quantize
    node: str  # the ONNX node(s) it comes from, for the comment above the call
    reads: list[str]
    writes: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    inplace: bool = False  # the output may reuse the (dying) first input's bytes


@dataclass
class Program:
    """A graph lowered to steps over buffers, plus its constant arrays."""

    precision: str  # fp32 | int8-static
    buffers: dict[str, Buffer]
    steps: list[Step]
    inputs: list[str]  # graph inputs, in order
    outputs: list[str]  # graph outputs, in order
    consts: dict[str, np.ndarray] = field(default_factory=dict)  # C array name -> values (flash)
    arena_bytes: int = 0

    def add_buffer(self, name: str, dtype: str, shape: tuple[int, ...], kind: str = "arena") -> Buffer:
        if name in self.buffers:
            return self.buffers[name]
        buf = Buffer(name, dtype, tuple(int(d) for d in shape), kind)
        self.buffers[name] = buf
        return buf

    def add_const(self, hint: str, values: np.ndarray) -> str:
        """Register a constant array; identical arrays are stored once. Returns its C name."""
        values = np.ascontiguousarray(values)
        for name, have in self.consts.items():
            if have.dtype == values.dtype and have.shape == values.shape and np.array_equal(have, values):
                return name
        base = c_ident(hint)
        name, k = base, 1
        while name in self.consts:
            k += 1
            name = f"{base}_{k}"
        self.consts[name] = values
        return name

    @property
    def weight_bytes(self) -> int:
        return int(sum(v.nbytes for v in self.consts.values()))

    def plan_arena(self) -> int:
        """Give every arena buffer an offset; returns the arena size in bytes.

        Lifetimes are step intervals; buffers are placed largest first at the lowest offset
        that overlaps no placed buffer alive at the same time (the greedy-by-size plan).
        """
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for i, s in enumerate(self.steps):
            for b in s.writes:
                first.setdefault(b, i)
                last[b] = max(last.get(b, i), i)
            for b in s.reads:
                first.setdefault(b, i)
                last[b] = i
        # in place: the output takes the input's bytes; the pair is one lifetime
        root = {b: b for b in self.buffers}
        for i, s in enumerate(self.steps):
            if not s.inplace:
                continue
            src, dst = s.reads[0], s.writes[0]
            bs, bd = self.buffers[src], self.buffers[dst]
            if bs.kind == bd.kind == "arena" and last.get(src) == i and bd.nbytes <= bs.nbytes:
                bd.share = root[src]
                root[dst] = root[src]
        span: dict[str, tuple[int, int]] = {}
        for b, buf in self.buffers.items():
            if buf.kind != "arena" or b not in first:
                continue
            r = root[b]
            lo, hi = span.get(r, (first[b], last[b]))
            span[r] = (min(lo, first[b]), max(hi, last[b]))
        order = sorted(span, key=lambda r: (-self.buffers[r].nbytes, span[r][0]))
        placed: list[tuple[int, int, int, int]] = []  # offset, end, first, last
        top = 0
        for r in order:
            size = -(-self.buffers[r].nbytes // ALIGN) * ALIGN
            lo, hi = span[r]
            live = sorted((o, e) for o, e, f, la in placed if not (la < lo or f > hi))
            off = 0
            for o, e in live:
                if off + size <= o:
                    break
                off = max(off, e)
            self.buffers[r].offset = off
            placed.append((off, off + size, lo, hi))
            top = max(top, off + size)
        for buf in self.buffers.values():
            if buf.kind == "arena" and buf.share is not None:
                buf.offset = self.buffers[buf.share].offset
        self.arena_bytes = top
        return top
