"""The C codec's public calls that the stream tools do not reach, and its refusals at their edges.

``eae_dequantize`` against Python's; a caller's sample buffer filled over several chunks and
refused (never overrun) when the second chunk does not fit; a two-byte stream that is not
``.eae``; and the impossible-count guard of the decoder on both sides of its boundary, with the
verdicts Python gives for the same bytes.
"""

from __future__ import annotations

import shutil
import subprocess
import zlib

import numpy as np
import pytest

from edgeae.errors import StreamError
from edgeae.runtime import stream as S
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.varint import put_varint
from tests.test_c_codec import SHA, build_tool

CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
pytestmark = pytest.mark.skipif(
    CC is None, reason="no C compiler (cc, gcc or clang) on PATH; install gcc to test the C codec"
)

_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "eae_codec.h"
extern const eae_codec *const h_codecs[];
static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(*len + 1);
    if (fread(buf, 1, *len, f) != *len) return NULL;
    fclose(f);
    return buf;
}
int main(int argc, char **argv) {
    size_t len, n = 0, i, cap = (size_t)atoi(argv[2]);
    unsigned char *data = slurp(argv[1], &len);
    const size_t D = h_codecs[0]->code_size;
    uint8_t *sym = malloc(cap * D + 64), *guard;
    float *codes = malloc(cap * D * sizeof(float) + 1);
    int rc;
    for (i = 0; i < cap * D + 64; i++) sym[i] = 0xA5;
    rc = eae_decompress(h_codecs, 1, data, len, sym, NULL, cap, &n, NULL);
    printf("%d %zu", rc, n);
    guard = sym + cap * D;
    for (i = 0; i < 64; i++) if (guard[i] != 0xA5) { printf(" overrun"); break; }
    printf("\n");
    if (rc == 0) {
        eae_dequantize(h_codecs[0], sym, n, codes);
        for (i = 0; i < n * D; i++) printf("%d %a\n", sym[i], (double)codes[i]);
    }
    return 0;
}
"""


def _program(tmp_path, codec, mid):
    from edgeae.codegen.codec import CODEC_FILES, TEMPLATE_DIR, codec_sources

    h, c = codec_sources([(codec, mid)], "h", thresholds=True)
    (tmp_path / "h_codec.h").write_text(h)
    (tmp_path / "h_codec.c").write_text(c)
    for name in CODEC_FILES:
        shutil.copyfile(TEMPLATE_DIR / name, tmp_path / name)
    (tmp_path / "main.c").write_text(_MAIN)
    exe = tmp_path / "d"
    res = subprocess.run([CC, "-std=c99", "-O1", "-Wall", "-I", str(tmp_path), *(str(tmp_path / f) for f in
                          ("eae_codec.c", "h_codec.c", "main.c")), "-o", str(exe), "-lm"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr

    def run(data: bytes, cap: int) -> list[str]:
        (tmp_path / "s.eae").write_bytes(data)
        return subprocess.run([str(exe), str(tmp_path / "s.eae"), str(cap)], capture_output=True, text=True,
                              timeout=60, check=True).stdout.splitlines()

    return run


def _two_chunks(codec, mid, first, second):
    w = S.StreamWriter.begin(codec, mid)
    return w.header + w.append(first) + w.append(second)


def test_dequantize_and_a_buffer_filled_over_two_chunks(tmp_path):
    rng = np.random.default_rng(21)
    codec = LatentCodec.fit(rng.standard_normal((400, 5)) * 2, 6)
    mid = codec.model_id(SHA)
    a, b = rng.standard_normal((3, 5)) * 2, rng.standard_normal((4, 5)) * 2
    data = _two_chunks(codec, mid, a, b)
    run = _program(tmp_path, codec, mid)
    head, *rows = run(data, 7)
    assert head == "0 7"
    sym = np.array([int(r.split()[0]) for r in rows], np.uint8).reshape(7, 5)
    codes = np.array([float.fromhex(r.split()[1]) for r in rows], np.float32).reshape(7, 5)
    want = S.decompress_symbols(codec, mid, data)
    np.testing.assert_array_equal(sym, want)
    np.testing.assert_array_equal(codes, codec.dequantize(want).astype(np.float32))
    # the second chunk does not fit: refused before a byte of it is written
    # (*n_samples: the samples decoded before the refusal; the guard bytes untouched)
    assert [run(data, cap) for cap in (2, 3, 4, 6)] == [["-2 0"], ["-2 3"], ["-2 3"], ["-2 3"]]


def test_a_two_byte_stream_that_is_not_eae(tmp_path):
    """'EX' is refused for its magic, like Python; 'E' alone is a cut-short magic."""
    codec = LatentCodec.fit(np.random.default_rng(22).standard_normal((300, 2)), 4)
    mid = codec.model_id(SHA)
    run = _program(tmp_path, codec, mid)
    for data, status in ((b"EX", -5), (b"XA", -5), (b"E", -7), (b"EA", -7)):
        assert run(data, 1) == [f"{status} 0"], data
        with pytest.raises(StreamError):
            S.decompress_symbols(codec, mid, data)


def test_the_sample_budget_boundary_in_c(tmp_path):
    """The codec of the Python test: two dims whose likeliest symbol has probability 1/2. A chunk
    of L payload bytes may claim up to 8 L + 128 samples; one more is refused for its count
    (status -11), in C as in Python."""
    record = LatentCodec.fit(np.random.default_rng(23).standard_normal((300, 2)), 4).to_dict()
    row = [1] * 16
    row[0] = 2 ** (record["precision"] - 1)
    row[1] += 2 ** record["precision"] - sum(row)
    record["freqs"] = [row, row[::-1]]
    codec = LatentCodec.from_dict(record)
    mid = codec.model_id(SHA)
    header = S.MAGIC + bytes([S.VERSION]) + mid + put_varint(2)
    tool = build_tool(tmp_path / "t", [(codec, mid)], prefix="b")
    records, want = [], []
    for length in (4, 9):
        for n, refused in ((8 * length + 128, False), (8 * length + 129, True)):
            body = put_varint(n) + put_varint(length) + bytes(range(length))
            data = header + body + zlib.crc32(body, zlib.crc32(header)).to_bytes(4, "little")
            records.append(len(data).to_bytes(4, "little") + data)
            try:
                S.decompress_symbols(codec, mid, data)
                py = "ok"
            except StreamError as exc:
                py = "count" if "can fit" in str(exc) else "other"
            assert (py == "count") == refused, (length, n)
            want.append(refused)
    (tmp_path / "c.bin").write_bytes(b"".join(records))
    lines = tool.run("verdicts", tmp_path / "c.bin", tmp_path / "sym.u8").stdout.splitlines()
    assert [line == "err -11" for line in lines] == want
