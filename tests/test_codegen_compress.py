"""`edgeae codegen` with codec tables: the one-call C compression (samples -> encoder -> codec ->
`.eae` bytes) writes Python's bytes, decodes with `edgeae decompress`, never overflows."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from click.testing import CliRunner  # noqa: E402

from edgeae.cli import cli  # noqa: E402
from edgeae.runtime import load, read_manifest, write_manifest  # noqa: E402
from edgeae.runtime.codec import LatentCodec  # noqa: E402
from edgeae.runtime.compress import codecs_of, compress, decompress  # noqa: E402
from edgeae.runtime.stream import compress_codes  # noqa: E402
from tests._bundles import digits_uint8, make_bundle  # noqa: E402
from tests._codegen_bundles import add_int8_static, needs_compilers  # noqa: E402

pytestmark = needs_compilers


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """The raw-I/O digits PCA bundle, fp32 + int8-static, with 6- and 4-bit codec tables."""
    folder, _ = make_bundle(tmp_path_factory.mktemp("pca") / "b", raw_io=True, precisions=("fp32",))
    folder = add_int8_static(folder)
    codes = load(folder).encode(digits_uint8()[:1500])
    manifest = read_manifest(folder)
    manifest.codec = [LatentCodec.fit(codes, b).to_dict() for b in (6, 4)]
    write_manifest(folder, manifest)
    return folder


@pytest.fixture(scope="module")
def generated(bundle, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("c") / "c"
    res = CliRunner().invoke(cli, ["codegen", str(bundle), "-o", str(out), "--prefix", "digits"])
    assert res.exit_code == 0, res.output
    assert "compress_int8:" in res.output and "compress_fp32:" in res.output
    return out


_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "digits_compress.h"

/* x.u8 N out.eae: one stream of N samples; then every capacity below the bound must give
   EAE_OK with the same bytes or EAE_ERR_BUFFER, never a byte written past cap. */
int main(int argc, char **argv)
{
    size_t n = (size_t)atoi(argv[2]), bound, cap, len = 0, len2, got;
    uint8_t *x = (uint8_t *)malloc(n * 64u), *ref, *buf;
    FILE *f = fopen(argv[1], "rb");
    int rc, ok = 0, small = 0;
    if (argc != 4 || !x || !f || fread(x, 64u, n, f) != n) return 3;
    fclose(f);
    bound = digits_compress_bound(n);
    ref = (uint8_t *)malloc(bound);
    rc = digits_compress_int8(x, n, ref, bound, &len);
    if (rc != EAE_OK) { printf("rc %d %s\n", rc, eae_strerror(rc)); return 4; }
    f = fopen(argv[3], "wb");
    fwrite(ref, 1, len, f);
    fclose(f);
    for (cap = 0; cap < bound; cap += (cap < len + 64u ? 1u : 97u)) {
        buf = (uint8_t *)malloc(cap + 16u);
        memset(buf, 0xA5, cap + 16u);
        rc = digits_compress_int8(x, n, buf, cap, &len2);
        for (got = cap; got < cap + 16u; ++got) if (buf[got] != 0xA5) return 5;
        if (rc == EAE_OK) { if (len2 != len || memcmp(buf, ref, len)) return 6; ++ok; }
        else if (rc == EAE_ERR_BUFFER) ++small;
        else return 7;
        free(buf);
    }
    if (digits_compress_int8(NULL, 1, ref, bound, &len2) != EAE_ERR_ARG) return 8;
    printf("len %lu ok %d small %d\n", (unsigned long)len, ok, small);
    free(ref);
    free(x);
    return 0;
}
"""


def test_codegen_writes_codec_and_checks(generated):
    report = json.loads((generated / "codegen.json").read_text())
    c = report["compress"]
    assert {"eae_codec.c", "eae_codec.h", "digits_latent_codec.c", "digits_latent_codec.h", "digits_compress.c",
            "digits_compress.h"} <= set(c["files"]) and c["samples"] == 64 and c["bits"] == 6
    for tag in ("fp32", "int8"):
        assert c[tag]["equal_python_codes"] and c[tag]["bytes_per_sample"] > 1
    head = (generated / "digits_compress.h").read_text()
    assert "digits_compress_int8(const uint8_t *x, size_t n, uint8_t *out, size_t cap, size_t *len)" in head
    assert "malloc" not in (generated / "digits_compress.c").read_text()


def test_c_stream_equals_python_and_decodes_with_the_cli(bundle, generated, tmp_path):
    """Compiled under ASan/UBSan: the C stream of held-out samples is Python's, every too-small
    buffer is an error without overflow, and `edgeae decompress` reads the C stream."""
    src = tmp_path / "main.c"
    src.write_text(_MAIN)
    exe = tmp_path / "main"
    files = [str(generated / n) for n in ("eae_codec.c", "digits_latent_codec.c", "digits_compress.c",
                                          "digits_encoder_int8.c", "digits_encoder_fp32.c")]
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-g",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-I", str(generated), *files,
                    str(src), "-o", str(exe), "-lm"], check=True, capture_output=True, timeout=300)
    x = digits_uint8()[1600:1613]
    (tmp_path / "x.u8").write_bytes(np.ascontiguousarray(x).tobytes())
    res = subprocess.run([str(exe), str(tmp_path / "x.u8"), str(len(x)), str(tmp_path / "s.eae")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    _, length, _, ok, _, small = res.stdout.split()
    assert int(ok) >= 1 and int(small) >= 10
    data = (tmp_path / "s.eae").read_bytes()
    assert len(data) == int(length)
    model = load(bundle, precision="int8-static")
    codes = model.encode(x)  # ONNX Runtime's int8 codes; the C encoder equals them on this bundle
    codec, mid = codecs_of(model.manifest)[0]
    assert data == compress_codes(codec, mid, codes) == compress(model, x)
    out = tmp_path / "x.npy"
    res = CliRunner().invoke(cli, ["decompress", str(bundle), str(tmp_path / "s.eae"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(np.load(out), decompress(load(bundle), data))


def test_codec_flags(bundle, tmp_path):
    res = CliRunner().invoke(cli, ["codegen", str(bundle), "-o", str(tmp_path / "a"), "--no-codec",
                                   "--precision", "fp32", "--no-verify"])
    assert res.exit_code == 0, res.output
    assert not any("codec" in p.name or "compress" in p.name for p in (tmp_path / "a").iterdir())
    plain, _ = make_bundle(tmp_path / "plain", raw_io=True, precisions=("fp32",))
    res = CliRunner().invoke(cli, ["codegen", str(plain), "-o", str(tmp_path / "b"), "--codec", "--no-verify"])
    assert res.exit_code != 0 and "Error:" in res.output and "no codec tables" in res.output
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
@pytest.mark.parametrize("tag,target", [("int8", "cortex-m4f"), ("fp32", "cortex-m4f"), ("int8", "cortex-m3")])
def test_compress_on_cortex_m(bundle, generated, tag, target, tmp_path):
    """Encoder + codec under qemu-system-arm write the host's bytes, sample by sample."""
    from edgeae.codegen.cortexm_codec import run_compress_target
    from edgeae.codegen.toolchain import toolchain_problem

    problem = toolchain_problem()
    if problem:
        pytest.skip(f"Cortex-M runs need the toolchain: {problem} (make native-tools)")
    r = run_compress_target(bundle, generated, tag, target, samples=6, work=tmp_path)
    assert r["equal_host"] and r["streams_differ"] == 0 and r["samples"] == 6
    assert 1000 < r["instructions_per_sample"] < 200_000
    assert r["flash_by_object"][f"digits_encoder_{tag}"] > 4096 and 0 < r["stack_bytes"] < 4096
