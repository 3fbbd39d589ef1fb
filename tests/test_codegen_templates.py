"""The C templates compile as C after substitution; one prefix rule; the one subprocess wrapper."""

from __future__ import annotations

import itertools
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeae.codegen import kernels_int8 as Q
from edgeae.codegen.kernels import DSP, FP32, INT8_REQUANT
from edgeae.codegen.names import DEFAULT_PREFIX, check_prefix
from edgeae.codegen.templates import C_DIR, fill, read
from edgeae.codegen.toolchain import linker_script, run_tool
from edgeae.errors import ConfigError, ExportError

ROOT = Path(__file__).resolve().parent.parent
LINT = ["-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-std=c99"]
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None,
                               reason="gcc is needed to lint the C templates (apt-get install build-essential)")
# what a generated unit defines before its kernels (edgeae.codegen.emit), kernels non-static so
# that an unused one is no warning
_PRELUDE = """#include <stddef.h>
#include <stdint.h>
#define PFX_KERNEL
#define PFX_RESTRICT restrict
"""
_TYPES = ("uint8_t", "int8_t")
_ARM = {"m4": ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
        "m55": ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard")}


def _lint(tmp_path: Path, name: str, text: str, cc: str = "gcc", flags: tuple[str, ...] = ()) -> None:
    src = tmp_path / name
    src.write_text(text)
    res = subprocess.run([cc, *LINT, *flags, "-I", str(tmp_path), str(src)], capture_output=True, text=True)
    assert res.returncode == 0, f"{name}:\n{res.stderr}"


# the x86-64 hosts' paths: SSE2 (the baseline), AVX2 (a unit's AVX2 copy), AVX2 + FMA (-march=native)
_X86 = [(), ("-mavx2",), ("-mavx2", "-mfma")] if platform.machine().lower() in ("x86_64", "amd64") else [()]


@needs_gcc
@pytest.mark.parametrize("isa", _X86)
def test_fp32_kernels_compile_as_c(tmp_path, isa):
    _lint(tmp_path, "fp32.c", _PRELUDE + "".join(FP32.values()), flags=isa)


@needs_gcc
@pytest.mark.parametrize("isa", _X86)
@pytest.mark.parametrize("wzp", [False, True])
def test_int8_kernels_compile_as_c_for_every_type(tmp_path, wzp, isa):
    """requant + dsp + the four int8 kernels, for every (x, w, y) type combination (with the ARM
    compiler also for Cortex-M4 and M55, where the SMLAD and Helium paths compile)."""
    for k, (xt, wt, yt) in enumerate(itertools.product(_TYPES, _TYPES, _TYPES)):
        helpers = {**Q.conv_helpers("uint8_t", yt, wzp), **Q.conv_helpers("int8_t", yt, wzp)}
        parts = [Q.qrows(xt, wt, yt, wzp)[1], Q.qdense(xt, wt, yt, wzp)[1], *helpers.values(),
                 Q.qconv(xt, wt, yt, wzp)[1], Q.qconvt(xt, wt, yt, wzp)[1]]
        text = _PRELUDE + DSP + INT8_REQUANT + "".join(parts)
        assert "${" not in text and "$" not in text
        _lint(tmp_path, f"int8_{k}.c", text, flags=isa)
        if not isa and shutil.which("arm-none-eabi-gcc"):  # the SMLAD (M4) and Helium (M55) paths
            for target, flags in _ARM.items():
                _lint(tmp_path, f"int8_{k}_{target}.c", text, "arm-none-eabi-gcc", flags)


_REQUANT8_MAIN = r"""
#include <stdio.h>
#include <stdint.h>
#include <string.h>
INT8_REQUANT
static uint64_t state = 88172645463325252ull;
static uint32_t next(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return (uint32_t)state; }
int main(void)
{
    long k, bad = 0;
    if (!__builtin_cpu_supports("avx2")) { puts("no avx2"); return 0; }
    for (k = 0; k < 400000; ++k) {
        int32_t acc[8], mult[8], shift[8], got[8], j;
        const int32_t lo = -(int32_t)(next() % 384u), hi = (int32_t)(next() % 384u);
        for (j = 0; j < 8; ++j) {
            shift[j] = 1 + (int32_t)(next() % 62u);
            mult[j] = (int32_t)(next() >> (next() % 32u)) & 0x7fffffff;
            acc[j] = (int32_t)next() >> (next() % 32u);
            if (next() % 4u == 0u && shift[j] < 31) /* a tie: acc * mult = (2 q + 1) * 2^(shift - 1) */
                mult[j] = 1, acc[j] = (int32_t)((((int64_t)(int32_t)next() >> (next() % 32u)) | 1) << (shift[j] - 1)) ;
        }
        _mm256_storeu_si256((__m256i *)(void *)got, PFX_requant8(
            _mm256_loadu_si256((const __m256i *)(const void *)acc), _mm256_loadu_si256((const __m256i *)(const void *)mult),
            _mm256_loadu_si256((const __m256i *)(const void *)shift), lo, hi));
        for (j = 0; j < 8; ++j) {
            const int32_t want = PFX_requant(acc[j], mult[j], shift[j]);
            bad += got[j] != (want < lo ? lo : (want > hi ? hi : want));
        }
    }
    printf("%ld\n", bad);
    return 0;
}
"""


@needs_gcc
@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="AVX2 is an x86-64 path")
def test_avx2_requantization_is_the_scalar_one(tmp_path):
    """PFX_requant8 (8 lanes, AVX2) equals PFX_requant clamped, on random and tie cases, every shift 1..62."""
    src = tmp_path / "rq.c"
    src.write_text(_PRELUDE + _REQUANT8_MAIN.replace("INT8_REQUANT", INT8_REQUANT))
    exe = tmp_path / "rq"
    res = subprocess.run(["gcc", "-std=gnu99", "-O2", "-mavx2", "-Wall", "-Werror", str(src), "-o", str(exe)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.strip()
    if out == "no avx2":
        pytest.skip("this CPU has no AVX2")
    assert out == "0"


@needs_gcc
def test_firmware_templates_compile_as_c(tmp_path):
    """The Cortex-M startup and the firmware mains of a unit and of the compression (against stand-in headers)."""
    arm = shutil.which("arm-none-eabi-gcc")
    cc, flags = (arm, ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")) if arm else ("gcc", ())
    _lint(tmp_path, "startup.c", read("cortexm_startup.c"), cc, flags)
    (tmp_path / "t_compress.h").write_text(
        "#include <stddef.h>\n#include <stdint.h>\n#define EAE_OK 0\n"
        "int t_compress_int8(const uint8_t *x, size_t n, uint8_t *out, size_t cap, size_t *len);\n")
    main = fill("compress_target_main.c", prefix="t", tag="int8", n=3, xn=2, repeats=4, calib=100000,
                samples="static const uint8_t samples[6] = {1, 2, 3, 4, 5, 6};\n")
    _lint(tmp_path, "main.c", main, cc, flags)
    (tmp_path / "t_encoder_int8.h").write_text("#include <stdint.h>\nint t_encoder_int8(const uint8_t *x, float *code);\n")
    unit = fill("cortexm_main.c", unit="t_encoder_int8", n=1, repeats=4, calib=100000, paint=32768,
                arrays="static const uint8_t samples0[2] = {1, 2};\nstatic float out0[1];\nstatic uint8_t in0[2];",
                args="in0, out0", load="memcpy(in0, samples0 + (size_t)i * 2u, sizeof in0);",
                load0="memcpy(in0, samples0, sizeof in0);", prints='printf(" %d", (int)out0[0]); (void)j;')
    _lint(tmp_path, "unit_main.c", unit, cc, flags)


@needs_gcc
def test_compress_templates_compile_as_c(tmp_path):
    """<prefix>_compress.h/.c from c/compress*.{h,c}, for a VAE-like encoder (three outputs) and a
    plain one, against the codec's header and stand-in encoder and table headers."""
    from edgeae.codegen.codec import TEMPLATE_DIR
    from edgeae.codegen.compress_c import compress_sources
    from edgeae.codegen.emit import Unit

    shutil.copyfile(TEMPLATE_DIR / "eae_codec.h", tmp_path / "eae_codec.h")
    (tmp_path / "t_latent_codec.h").write_text('#include "eae_codec.h"\nextern const eae_codec *const t_latent_codecs[1];\n')
    (tmp_path / "t_encoder_int8.h").write_text("#include <stdint.h>\nint t_encoder_int8(const uint8_t *x, float *code);\n")
    (tmp_path / "t_encoder_fp32.h").write_text(
        "int t_encoder_fp32(const float *x, float *code, float *mean, float *log_var);\n")
    units = [Unit("t_encoder_int8", "", "", 0, 0, [("x", "uint8_t", 64)], [("code", "float", 8)]),
             Unit("t_encoder_fp32", "", "", 0, 0, [("x", "float", 64)], [("code", "float", 8), ("mean", "float", 8),
                                                                         ("log_var", "float", 8)])]
    h, c = compress_sources("t", units, 8)
    (tmp_path / "t_compress.h").write_text(h)
    _lint(tmp_path, "t_compress.c", c)


@needs_gcc
def test_host_harness_templates_compile_as_c(tmp_path):
    """The host harness of a unit (c/host_harness.c) and of the one-call compression
    (c/compress_check_main.c), against stand-in headers."""
    from edgeae.codegen.build import harness_source
    from edgeae.codegen.codec import TEMPLATE_DIR
    from edgeae.codegen.emit import Unit

    (tmp_path / "t_encoder_int8.h").write_text(
        "#include <stdint.h>\n#define T_ENCODER_INT8_ARENA_BYTES 10\nint t_encoder_int8(const uint8_t *x, float *code);\n"
        "int t_encoder_int8_arena(const uint8_t *x, float *code, void *arena);\n")
    _lint(tmp_path, "harness.c", harness_source(Unit("t_encoder_int8", "", "", 10, 0, [("x", "uint8_t", 64)],
                                                        [("code", "float", 8)])))
    shutil.copyfile(TEMPLATE_DIR / "eae_codec.h", tmp_path / "eae_codec.h")
    (tmp_path / "t_compress.h").write_text(
        '#include "eae_codec.h"\nsize_t t_compress_bound(size_t n);\n'
        "int t_compress_begin(eae_writer *w, const eae_codec *codec, uint8_t *out, size_t cap, size_t *len);\n"
        "int t_compress_int8(const uint8_t *x, size_t n, uint8_t *out, size_t cap, size_t *len);\n"
        "int t_compress_append_int8(eae_writer *w, const uint8_t *x, size_t n, uint8_t *out, size_t cap, size_t *len);\n")
    check = fill("compress_check_main.c", prefix="t", tag="int8", unit="t_encoder_int8", it="uint8_t", xn=64,
                 code_size=8, extra="", args="code")
    _lint(tmp_path, "check.c", check)


def test_fill_refuses_a_missing_value():
    with pytest.raises(KeyError, match=r"qconvt.c needs a value for \$\{store\}"):
        fill("qconvt.c", name="k", xt="uint8_t", wt="int8_t", yt="int8_t", xe="a", we="b", tile4="t4", tile1="t1")


def test_linker_script_per_board():
    assert "LENGTH = 4M\n" in linker_script("mps2-an386") and "LENGTH = 4M }" in linker_script("mps2-an385")
    assert "LENGTH = 512K\n" in linker_script("mps3-an547") and "${" not in linker_script("mps3-an547")


def test_templates_ship_as_package_data():
    """Every file in edgeae/codegen/c matches a package-data pattern, so an installed wheel has it."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = {f for p in patterns["edgeae.codegen"] for f in C_DIR.parent.glob(p)}  # as setuptools globs
    files = sorted(C_DIR.iterdir())
    assert files and not set(files) - shipped, "not package data: " + ", ".join(f.name for f in set(files) - shipped)


# ------------------------------------------------------------ the prefix rule
@pytest.mark.parametrize("good", [DEFAULT_PREFIX, "sensor_ae", "eaex", "a", "m" * 31])
def test_prefix_rule_accepts(good):
    assert check_prefix(good) == good


@pytest.mark.parametrize("bad,why", [("eae", "clash"), ("eae_mnist", "clash"), ("9lives", "not a C identifier"),
                                     ("Model", "not a C identifier"), ("", "not a C identifier"),
                                     ("m" * 32, "not a C identifier"), (None, "not a C identifier")])
def test_prefix_rule_refuses(bad, why):
    with pytest.raises(ConfigError, match=why):
        check_prefix(bad)


def test_default_prefix_cannot_clash_with_the_codec():
    """Every name the generators derive from the default stays outside the codec's eae_ namespace."""
    for stem in (f"{DEFAULT_PREFIX}_encoder_int8", f"{DEFAULT_PREFIX}_compress", f"{DEFAULT_PREFIX}_latent_codec"):
        assert not stem.startswith("eae") and stem.upper() != "EAE_CODEC"


def test_codegen_cli_refuses_a_clashing_prefix(tmp_path):
    pytest.importorskip("onnx")
    from click.testing import CliRunner

    from edgeae.cli import cli

    res = CliRunner().invoke(cli, ["codegen", str(tmp_path / "missing"), "-o", str(tmp_path / "c"), "--prefix", "eae"])
    assert res.exit_code != 0 and res.output.startswith("Error: prefix 'eae' would clash")
    assert "Traceback" not in res.output and not (tmp_path / "c").exists()


# ------------------------------------------------------------ the one subprocess wrapper
def test_run_tool_names_a_missing_tool_and_its_package():
    with pytest.raises(ExportError, match=r"qemu-system-armx is not installed \(Debian/Ubuntu: apt-get install"):
        run_tool(["qemu-system-armx", "-version"], "probing")


def test_run_tool_reports_failure_output_and_timeout():
    with pytest.raises(ExportError, match=r"(?s)failing failed with exit status 3 .*boom"):
        run_tool([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"], "failing")
    with pytest.raises(ExportError, match="sleeping timed out after 0.5 s"):
        run_tool([sys.executable, "-c", "import time; time.sleep(5)"], "sleeping", timeout=0.5)
    assert run_tool([sys.executable, "-c", "print('ok')"], "printing").stdout == "ok\n"
