"""What an ONNX graph file holds besides its operators, read without the onnx package.

Two facts decide whether a bundle's graph can be trusted and how it computes, and
neither is visible through onnxruntime's session API:

- **external data**: a tensor may keep its bytes in another file beside the graph
  (``data_location = EXTERNAL``). The manifest hashes the graph file, so such files must
  be listed and hashed too, or changing them would change the codes unnoticed.
- **integer weight format**: int8 graphs with *signed* (s8) weights run ``u8 x s8``
  products, which ONNX Runtime's AVX2 kernels saturate in int16 on x86 CPUs without
  VNNI unless the session asks for exact products (:mod:`edgeae.runtime.session`).

The file is walked as protobuf wire format (memory-mapped; tensor bytes are skipped, not
read): ModelProto.graph -> GraphProto.node / initializer / sparse_initializer ->
NodeProto.attribute -> AttributeProto.t / tensors / g / graphs (subgraphs of If / Loop).
"""

from __future__ import annotations

import functools
import mmap
from dataclasses import dataclass, field
from pathlib import Path

from edgeae.errors import BundleError

__all__ = ["GraphFacts", "scan_graph"]

_INT8, _UINT8 = 3, 2  # TensorProto.DataType
_EXTERNAL = 1  # TensorProto.DataLocation
_MAX_DEPTH = 64  # nested subgraphs; a real model has a handful
# op type -> positions of its inputs that are integer weights
_WEIGHT_INPUTS = {"MatMulInteger": (1,), "ConvInteger": (1,), "QLinearConv": (3,), "QLinearMatMul": (3,),
                  "DequantizeLinear": (0,), "DynamicQuantizeMatMul": (1,), "MatMulIntegerToFloat": (1,)}


@dataclass
class GraphFacts:
    """What :func:`scan_graph` found in one graph file."""

    external: list[str] = field(default_factory=list)  # external data locations, as written, in order
    int8_weights: list[str] = field(default_factory=list)  # signed int8 initializers used as weights
    uint8_weights: list[str] = field(default_factory=list)  # unsigned int8 initializers used as weights

    @property
    def weight_format(self) -> str:
        """``s8`` (any signed int8 weight), ``u8`` (unsigned only) or ``float`` (no integer weights)."""
        return "s8" if self.int8_weights else ("u8" if self.uint8_weights else "float")


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError("truncated or overlong varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview, start: int, end: int):
    """``(field number, wire type, value or (start, end))`` for each field of one message."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise ValueError("a field runs past the end of its message")
            yield number, wire, (pos, pos + length)
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire} is not used by ONNX files")
    if pos != end:
        raise ValueError("a field runs past the end of its message")


def _text(buf: memoryview, span: tuple[int, int]) -> str:
    return bytes(buf[span[0]:span[1]]).decode("utf-8", errors="replace")


def _tensor(buf: memoryview, span: tuple[int, int]) -> tuple[str, int, str | None]:
    """(name, data type, external location or None) of one TensorProto."""
    name, dtype, location, external = "", 0, None, False
    for number, wire, value in _fields(buf, *span):
        if number == 8 and wire == 2:
            name = _text(buf, value)
        elif number == 2 and wire == 0:
            dtype = value
        elif number == 14 and wire == 0:
            external = value == _EXTERNAL
        elif number == 13 and wire == 2:  # StringStringEntryProto: key 1, value 2
            entry = {n: _text(buf, v) for n, w, v in _fields(buf, *value) if w == 2}
            if entry.get(1) == "location":
                location = entry.get(2, "")
    return name, dtype, (location if location is not None else "") if external else None


def _graph(buf: memoryview, span: tuple[int, int], facts: GraphFacts, depth: int) -> None:
    """Collect initializers, their uses as weights and external data of one GraphProto."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"subgraphs nested deeper than {_MAX_DEPTH} levels")
    dtypes: dict[str, int] = {}
    weights: set[str] = set()
    tensors: list[tuple[int, int]] = []
    for number, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if number == 5:  # initializer
            tensors.append(value)
        elif number == 15:  # sparse_initializer: values 1, indices 2
            tensors += [v for n, w, v in _fields(buf, *value) if w == 2 and n in (1, 2)]
        elif number == 1:  # node
            weights |= _node(buf, value, facts, tensors, depth)
    for t in tensors:
        name, dtype, location = _tensor(buf, t)
        dtypes[name] = dtype
        if location is not None:
            facts.external.append(location)
    for name in sorted(weights):
        if dtypes.get(name) == _INT8:
            facts.int8_weights.append(name)
        elif dtypes.get(name) == _UINT8:
            facts.uint8_weights.append(name)


def _node(buf: memoryview, span: tuple[int, int], facts: GraphFacts, tensors: list, depth: int) -> set[str]:
    """Names this node takes as integer weights; its attribute tensors and subgraphs are walked too."""
    inputs: list[str] = []
    op = ""
    for number, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if number == 1:
            inputs.append(_text(buf, value))
        elif number == 4:
            op = _text(buf, value)
        elif number == 5:  # AttributeProto: t 5, g 6, tensors 10, graphs 11
            for n, w, v in _fields(buf, *value):
                if w == 2 and n in (5, 10):
                    tensors.append(v)
                elif w == 2 and n in (6, 11):
                    _graph(buf, v, facts, depth + 1)
    return {inputs[i] for i in _WEIGHT_INPUTS.get(op, ()) if i < len(inputs) and inputs[i]}


def _scan(path: str | Path) -> GraphFacts:
    """External data locations and integer weight format of an ``.onnx`` file.

    Raises :class:`BundleError` when the file is not ONNX protobuf (a damaged or foreign file).
    """
    path = Path(path)
    facts = GraphFacts()
    try:
        with open(path, "rb") as f:
            if f.seek(0, 2) == 0:
                raise ValueError("the file is empty")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                buf = memoryview(mm)
                try:
                    for number, wire, value in _fields(buf, 0, len(buf)):
                        if number == 7 and wire == 2:  # ModelProto.graph
                            _graph(buf, value, facts, 0)
                finally:
                    buf.release()
    except ValueError as exc:
        raise BundleError(f"{path.name} is not a valid ONNX file ({exc}); re-export the bundle") from None
    except OSError as exc:
        raise BundleError(f"{path.name} cannot be read ({exc.strerror or exc})") from None
    return facts


@functools.lru_cache(maxsize=64)
def _scan_unchanged(path: str, size: int, mtime_ns: int) -> GraphFacts:
    return _scan(path)


def scan_graph(path: str | Path) -> GraphFacts:
    """External data locations and integer weight format of an ``.onnx`` file (read-only result).

    One walk of the protobuf per file version: ``load`` and ``info`` ask twice (external data
    for the hash check, then the weight format), so the result is kept while the file's size
    and modification time stay the same. Raises :class:`BundleError` when the file is not ONNX
    protobuf (a damaged or foreign file).
    """
    try:
        st = Path(path).stat()
    except OSError:
        return _scan(path)  # reports the file's own error
    return _scan_unchanged(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
