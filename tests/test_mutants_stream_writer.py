"""Direct tests of edgeae.runtime.stream written from the mutants that survived its group's run
(docs/testing.md): the writer's own counts and model id, and each refusal word for word."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from edgeae.errors import ConfigError, InputError, StreamError
from edgeae.runtime import stream as S
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.stream import StreamWriter
from edgeae.runtime.varint import put_varint
from tests._streams import SHA
from tests._streams import codes as _codes

CODEC = LatentCodec.fit(_codes(2000), 6)  # 6-bit tables for 16 dims
MID = CODEC.model_id(SHA)
HEADER = S.MAGIC + bytes([S.VERSION]) + MID + put_varint(16)


def _refused(data, message: str) -> None:
    with pytest.raises(StreamError) as e:
        S.read_header(data)
    assert str(e.value) == message


def test_writer_counts_match_the_stream_it_wrote():
    w = StreamWriter.begin(CODEC, MID)
    assert w.model_id == MID
    per = S.MAX_CHUNK_SYMBOLS // 16
    data = w.header + w.append(_codes(per + 5, seed=1))  # two chunks in one append
    assert w.info == S.read_header(data) and w.info.chunks == 2
    r = StreamWriter.resume(CODEC, MID, data)
    assert r.model_id == MID
    more = StreamWriter.begin(CODEC, MID)
    chunks = more.append(_codes(3, seed=2)) + more.append(_codes(4, seed=3))
    assert r.append_chunks(chunks) == 7
    assert r.info == S.read_header(data + chunks) and r.info.chunks == 4


def test_header_refusals_word_for_word():
    with pytest.raises(InputError) as e:
        StreamWriter.begin(CODEC, b"short")
    assert str(e.value) == "model id b'short' must be 8 bytes"
    _refused(123, "stream is int; expected bytes")
    _refused(b"", "stream is empty (0 bytes); expected an .eae stream")
    _refused(b"XYZW12", "stream starts with b'XYZW', not the .eae magic b'EA'; not an edgeae compressed stream")
    _refused(HEADER[:11], "stream truncated inside the code size at byte 11")
    _refused(HEADER[:11] + b"\x80", "stream truncated inside the code size at byte 12")
    _refused(HEADER[:11] + b"\x00", "stream header says code size 0; stream corrupt")
    narrow = LatentCodec.fit(_codes(500, d=8), 6)
    with pytest.raises(StreamError) as e:
        S.decompress_symbols(CODEC, MID, S.compress_codes(narrow, MID, _codes(2, d=8)))
    assert str(e.value) == "stream code size 8 does not match the codec's 16; stream corrupt"


def test_chunk_refusals_word_for_word():
    h = len(HEADER)
    _refused(HEADER + b"\x80", f"stream truncated inside the chunk sample count at byte {h + 1}")
    _refused(HEADER + b"\x05\x80", f"stream truncated inside the chunk payload length at byte {h + 2}")
    _refused(HEADER + put_varint(16385) + b"\x00" + bytes(4),
             f"chunk at byte {h} claims 16385 samples; allowed 1..16384 for code size 16; stream corrupt")
    full = S.compress_codes(CODEC, MID, _codes(5))
    length = S.read_header(full).payload_bytes
    assert length < 128  # one-byte varints: the payload starts at h + 2
    _refused(full[:-2], f"chunk at byte {h} claims {length} payload bytes but only {length - 2} remain "
                        "before its CRC; stream truncated or corrupt")
    _refused(full[: h + 2 + 3], f"chunk at byte {h} claims {length} payload bytes but only 0 remain "
                                "before its CRC; stream truncated or corrupt")
    body = b"\x05\x00"
    crc = zlib.crc32(body, zlib.crc32(HEADER)).to_bytes(4, "little")
    assert S.read_header(HEADER + body + crc).samples == 5  # framing and CRC right: the coder judges it


def test_writer_refusals_word_for_word(tmp_path):
    path = tmp_path / "s.eae"
    path.write_bytes(S.compress_codes(CODEC, MID, _codes(2)))
    with path.open("r+b") as f, pytest.raises(InputError) as e:
        StreamWriter.begin(CODEC, MID, f)
    assert str(e.value) == "begin needs an empty file; resume a stream to add to it"
    with pytest.raises(ConfigError) as e:
        S.append_file(CODEC, MID, tmp_path, _codes(1))
    assert str(e.value) == (f"{tmp_path} is a folder; give the stream file to append to "
                            f"(e.g. {tmp_path / 'out.eae'})")
    np.testing.assert_array_equal(S.decompress_symbols(CODEC, MID, path.read_bytes()), CODEC.quantize(_codes(2)))
