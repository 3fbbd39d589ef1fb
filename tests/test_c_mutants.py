"""Checks of the C sources that plausible one-line bugs would break while every other test passes.

The generated int8 ``requant`` is compiled on its own and compared with the Python reference
on exact half ties (which the test bundles never reach), and the C range decoder is given a
forged chunk whose first quantile is exactly 2^24, one past the last valid one.
"""

from __future__ import annotations

import shutil
import subprocess
import zlib

import numpy as np
import pytest

from edgeae.codegen.kernels import INT8_REQUANT
from edgeae.codegen.reference import requantize
from edgeae.errors import StreamError
from edgeae.runtime import stream as S
from edgeae.runtime.codec import LatentCodec
from tests.test_c_codec import SHA, build_tool

CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
pytestmark = pytest.mark.skipif(
    CC is None, reason="no C compiler (cc, gcc or clang) on PATH; install gcc to test the generated C"
)

_MAIN = r"""
#include <stdint.h>
#include <stdio.h>
%s
int main(void) {
    long long acc, mult, shift;
    while (scanf("%%lld %%lld %%lld", &acc, &mult, &shift) == 3)
        printf("%%d\n", (int)t_requant((int32_t)acc, (int32_t)mult, (int32_t)shift));
    return 0;
}
"""


def _cases() -> np.ndarray:
    """(acc, mult, shift) rows: exact half ties of both signs and parities, then random ones."""
    rows = [(1, 1 << 30, 31), (-1, 1 << 30, 31), (3, 1 << 30, 31), (-3, 1 << 30, 31), (5, 1 << 30, 31),
            (2, 1 << 30, 31), (1, 3 << 28, 31)]
    for q in range(-6, 7):  # acc * mult = (q + 1/2) * 2^shift exactly
        for shift in (1, 2, 9, 31, 40):
            num = (2 * q + 1) << (shift - 1)
            for mult in (1, 1 << 30, 3 << 28):
                if num % mult == 0 and abs(num // mult) < 2**31:
                    rows.append((num // mult, mult, shift))
    rng = np.random.default_rng(7)
    n = 3000
    rows += zip(rng.integers(-(2**20), 2**20, n).tolist(), rng.integers(1 << 30, 1 << 31, n).tolist(),
                rng.integers(20, 63, n).tolist(), strict=True)
    return np.array(rows, dtype=np.int64)


def test_generated_requant_rounds_half_to_even_like_the_reference(tmp_path):
    src = tmp_path / "rq.c"
    src.write_text(_MAIN % INT8_REQUANT.replace("PFX_", "t_"))
    exe = tmp_path / "rq"
    res = subprocess.run([CC, "-std=c99", "-O1", "-Wall", "-Werror", str(src), "-o", str(exe)], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    cases = _cases()
    run = subprocess.run([str(exe)], input="\n".join(" ".join(map(str, r)) for r in cases.tolist()),
                         capture_output=True, text=True, timeout=60)
    got = np.array(run.stdout.split(), dtype=np.int64)
    assert got[0] == 0 and got[1] == 0  # requant(+-1, 2^30, 31): +-1/2 rounds to 0
    assert got[2] == 2 and got[3] == -2 and got[4] == 2  # 3/2 -> 2, -3/2 -> -2, 5/2 -> 2
    assert got[5] == 1 and got[6] == 0  # no tie: 2 * 2^30 / 2^31 = 1; 3/8 -> 0
    want = requantize(cases[:, 0], cases[:, 1], cases[:, 2])
    np.testing.assert_array_equal(got, want)
    assert int(np.sum(np.abs(cases[:, 0] * cases[:, 1]) % (1 << cases[:, 2]) ==
                      (1 << (cases[:, 2] - 1)))) >= 40  # the ties are really in the table


def test_decoder_refuses_quantile_one_past_the_end(tmp_path):
    """Code size 1, one sample, payload words 0xffffffff 0xff000000: the first quantile is
    (2^64 - 2^24) // (2^40 - 1) = 2^24, outside every symbol; C and Python both refuse it."""
    rng = np.random.default_rng(3)
    codec = LatentCodec.fit(rng.standard_normal((500, 1)), 6)
    mid = codec.model_id(SHA)
    valid = S.compress_codes(codec, mid, np.zeros((1, 1)))
    header = valid[: S.read_header(valid).header_size]
    payload = bytes.fromhex("ffffffff000000ff")
    body = S.put_varint(1) + S.put_varint(len(payload)) + payload
    forged = header + body + zlib.crc32(body, zlib.crc32(header)).to_bytes(4, "little")
    with pytest.raises(StreamError):
        S.decompress_symbols(codec, mid, forged)
    tool = build_tool(tmp_path / "t", [(codec, mid)], prefix="q")
    (tmp_path / "c.bin").write_bytes(len(forged).to_bytes(4, "little") + forged)
    res = tool.run("verdicts", tmp_path / "c.bin", tmp_path / "sym.u8")
    assert res.stdout.split() == ["err", "-13"]  # EAE_ERR_DECODE, as in Python; never a symbol


def test_decoder_refuses_chunk_counts_outside_the_limit(tmp_path):
    """A chunk claiming 0 samples, or one more than 2^18 symbols allow, is refused by its count
    (status -11, as Python), even when its payload is long enough for the sample budget."""
    codec = LatentCodec.fit(np.random.default_rng(4).standard_normal((500, 16)), 6)
    mid = codec.model_id(SHA)
    valid = S.compress_codes(codec, mid, np.zeros((1, 16)))
    header = valid[: S.read_header(valid).header_size]
    limit = S.MAX_CHUNK_SYMBOLS // 16
    records = []
    for n in (0, limit + 1):
        payload = bytes(range(256)) * (limit // 16)  # 65,536 bytes: the budget allows far more
        body = S.put_varint(n) + S.put_varint(len(payload)) + payload
        forged = header + body + zlib.crc32(body, zlib.crc32(header)).to_bytes(4, "little")
        with pytest.raises(StreamError, match="claims"):
            S.read_header(forged)
        records.append(len(forged).to_bytes(4, "little") + forged)
    tool = build_tool(tmp_path / "t", [(codec, mid)], prefix="n")
    (tmp_path / "c.bin").write_bytes(b"".join(records))
    assert tool.run("verdicts", tmp_path / "c.bin", tmp_path / "sym.u8").stdout.split() == ["err", "-11"] * 2


_QMAIN = r"""
#include <math.h>
#include <stdio.h>
#include "eae_codec.h"
extern const eae_codec *const h_codecs[];
int main(void) {
    static const float codes[] = {%s};
    uint8_t sym[%d];
    float bad[16] = {0};
    size_t i;
    int rc = eae_quantize(h_codecs[0], codes, %d, sym);
    printf("%%d", rc);
    for (i = 0; i < sizeof sym; i++) printf(" %%d", sym[i]);
    printf("\n%%d %%d %%d", eae_quantize(h_codecs[0], NULL, 0, NULL), eae_quantize(h_codecs[0], NULL, 1, sym),
           eae_quantize(NULL, codes, 1, sym));
    bad[15] = NAN;
    printf(" %%d", eae_quantize(h_codecs[0], bad, 1, sym));
    bad[15] = INFINITY;
    printf(" %%d\n", eae_quantize(h_codecs[0], bad, 1, sym));
    return 0;
}
"""


def test_c_quantize_api(tmp_path):
    """eae_quantize: Python's symbols; n = 0 with no buffers is fine; NULLs and NaN/inf refused."""
    from edgeae.codegen.codec import CODEC_FILES, TEMPLATE_DIR, codec_sources

    rng = np.random.default_rng(6)
    codec = LatentCodec.fit(rng.standard_normal((500, 16)), 5)
    codes = (rng.standard_normal((6, 16)) * 1.5).astype(np.float32)
    h, c = codec_sources([(codec, codec.model_id(SHA))], "h", thresholds=True)
    (tmp_path / "h_codec.h").write_text(h)
    (tmp_path / "h_codec.c").write_text(c)
    for name in CODEC_FILES:
        shutil.copyfile(TEMPLATE_DIR / name, tmp_path / name)
    values = ", ".join(f"{v!r}f" for v in codes.ravel().tolist())
    (tmp_path / "main.c").write_text(_QMAIN % (values, codes.size, len(codes)))
    exe = tmp_path / "q"
    res = subprocess.run([CC, "-std=c99", "-O1", "-Wall", "-I", str(tmp_path), *(str(tmp_path / f) for f in
                          ("eae_codec.c", "h_codec.c", "main.c")), "-o", str(exe), "-lm"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    first, second = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60).stdout.splitlines()
    rc, *sym = map(int, first.split())
    assert rc == 0 and sym == codec.quantize(codes).ravel().tolist()
    assert second.split() == ["0", "-1", "-1", "-3", "-3"]
