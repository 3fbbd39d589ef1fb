"""Unsigned LEB128 varints: 7 bits per byte, low group first.

The one implementation used by the ``.eae`` stream (docs/FORMAT.md) and by the session
module, which builds a tiny protobuf (ONNX) graph with them to probe opset support.
"""

from __future__ import annotations

from edgeae.errors import StreamError

__all__ = ["MAX_VARINT_BYTES", "put_varint", "get_varint"]

MAX_VARINT_BYTES = 5  # values < 2**35: more than any length or count in a stream


def put_varint(value: int) -> bytes:
    """Encode a non-negative int (protobuf and .eae use the same layout)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def get_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """The varint at ``pos`` -> (value, next pos); refuses truncated, overlong or padded ones.

    ``what`` names the field in the :class:`~edgeae.errors.StreamError` message.
    """
    value = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise StreamError(f"stream truncated inside the {what} at byte {pos + i}")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise StreamError(f"{what} at byte {pos} is not minimally encoded; stream corrupt")
            return value, pos + i + 1
    raise StreamError(f"{what} at byte {pos} is longer than {MAX_VARINT_BYTES} bytes; corrupt")
