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


def test_a_short_header_with_another_version_is_refused_for_its_version():
    _refused(S.MAGIC + b"\x02", "stream version 2 is not supported; this edgeae reads version 1")  # 3 bytes
    _refused(S.MAGIC + b"\x01", "stream truncated in its header (3 bytes)")
    _refused(S.MAGIC, "stream truncated in its header (2 bytes)")


def test_append_to_a_missing_folder_quotes_the_reason(tmp_path):
    path = tmp_path / "no such folder" / "s.eae"
    with pytest.raises(ConfigError) as e:
        S.append_file(CODEC, MID, path, _codes(1))
    assert str(e.value) == f"cannot append to {path}: No such file or directory; the stream is unchanged"


def test_writer_puts_one_sample_in_a_chunk_when_a_sample_is_over_the_chunk_limit(monkeypatch):
    """A sample of more than MAX_CHUNK_SYMBOLS dims goes alone in its chunk (the reader allows no more).

    Scaled down: a 16-dim codec under a limit of 8 symbols stands for a 2^18 + 1 dim one.
    """
    monkeypatch.setattr(S, "MAX_CHUNK_SYMBOLS", 8)
    data = S.compress_codes(CODEC, MID, _codes(3))
    assert (S.read_header(data).samples, S.read_header(data).chunks) == (3, 3)
    np.testing.assert_array_equal(S.decompress_symbols(CODEC, MID, data), CODEC.quantize(_codes(3)))


def test_sample_budget_boundary_with_a_whole_number_of_bits():
    """Two dims whose likeliest symbol has probability 1/2: a sample costs at least 2 bits, so a
    chunk of L payload bytes may claim up to exactly 8 L + 128 samples (budget 1 bit per sample)."""
    record = LatentCodec.fit(_codes(300, d=2), 4).to_dict()
    row = [1] * 16
    row[0] = 2 ** (record["precision"] - 1)
    row[1] += 2 ** record["precision"] - sum(row)
    record["freqs"] = [row, row[::-1]]
    codec = LatentCodec.from_dict(record)
    assert codec.min_bits_per_sample() == 2.0
    mid = codec.model_id(SHA)
    header = S.MAGIC + bytes([S.VERSION]) + mid + put_varint(2)
    for length in (4, 9):
        for n, refused in ((8 * length + 128, False), (8 * length + 129, True)):
            body = put_varint(n) + put_varint(length) + bytes(range(length))
            data = header + body + zlib.crc32(body, zlib.crc32(header)).to_bytes(4, "little")
            try:
                S.decompress_symbols(codec, mid, data)
                budget_error = False
            except StreamError as exc:
                budget_error = "can fit" in str(exc)
            assert budget_error == refused, (length, n)
