"""Generated C on emulated Cortex-M4F / M3 / M0 / M55 (QEMU): same outputs as the host, memory as predicted."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("onnx")

from edgeae.codegen import generate_c  # noqa: E402
from edgeae.codegen.cortexm import run_generated, run_unit  # noqa: E402
from edgeae.codegen.toolchain import toolchain_problem  # noqa: E402
from tests._bundles import make_bundle  # noqa: E402
from tests._codegen_bundles import add_int8_static, conv_bundle, quantize_qdq  # noqa: E402

_PROBLEM = toolchain_problem() or (None if shutil.which("gcc") else "gcc is not installed")
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=f"Cortex-M toolchain missing: {_PROBLEM}; "
                                "`make cortexm-tools` installs it where apt-get works")


def _check(results):
    for r in results:
        # int8: the same bits as the host build; fp32: within 1e-5 (newlib and glibc expf may differ by an ulp)
        assert r.max_abs_vs_host <= (0.0 if "int8" in r.unit else 1e-5), r
        assert r.instructions > 0 and r.samples > 0
        # RAM: the static arena is the object's only bss (fp32 storage rounds up to whole floats)
        assert r.arena_bytes <= r.bss_bytes <= r.arena_bytes + 4
        # flash: the weights plus code; the header's weight figure is exact for const data
        assert r.weight_bytes <= r.flash_bytes <= r.weight_bytes + 8192
        assert r.ram_bytes == r.bss_bytes + r.stack_bytes and 0 < r.stack_bytes < 4096  # painted and scanned


@pytest.fixture(scope="module")
def pca(tmp_path_factory):
    folder, _ = make_bundle(tmp_path_factory.mktemp("pca") / "b", raw_io=True, precisions=("fp32",))
    return add_int8_static(folder)


def test_pca_bundle_on_cortex_m(pca, tmp_path):
    folder = pca
    generate_c(folder, tmp_path / "c")
    results = run_generated(folder, tmp_path / "c", samples=4)
    assert {(r.unit, r.target) for r in results} >= {("model_encoder_int8", "cortex-m0"), ("model_encoder_fp32", "cortex-m4f")}
    _check(results)


@pytest.mark.slow
def test_conv_bundle_on_cortex_m(tmp_path):
    folder = add_int8_static(conv_bundle(tmp_path / "b"))
    generate_c(folder, tmp_path / "c")
    _check(run_generated(folder, tmp_path / "c", samples=4))


def test_dsp_path_compiled_for_m4_only(pca, tmp_path):
    """The int8 row kernel uses SMLAD where the core has the DSP extension (Cortex-M4), the
    portable loops on Cortex-M3 / M0; -D<UNIT>_NO_DSP forces the portable loops."""
    import subprocess

    from edgeae.codegen.toolchain import TARGETS

    generate_c(pca, tmp_path / "c", precisions="int8-static", verify=False)
    src = tmp_path / "c" / "model_encoder_int8.c"

    def asm(target: str, *extra: str) -> str:
        cmd = ["arm-none-eabi-gcc", *TARGETS[target][0], "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
               *extra, "-S", str(src), "-o", "-"]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    assert "smlad" in asm("cortex-m4f")
    assert "smlad" not in asm("cortex-m4f", "-DMODEL_ENCODER_INT8_NO_DSP")
    assert "smlad" not in asm("cortex-m3")


@pytest.mark.slow
@pytest.mark.parametrize("act,weight", [("QUInt8", "QUInt8"), ("QInt8", "QInt8"), ("QUInt8", "QInt8")])
def test_helium_path_on_cortex_m55_equals_the_reference(tmp_path, act, weight):
    """The Cortex-M55 build (the dense layers' Helium path: VLD4 + VMLADAV, widened to int16 for
    mixed signs) gives the integer reference's bits for each activation / weight signedness that
    ONNX Runtime's quantizer writes (it refuses int8 activations with uint8 weights)."""
    import subprocess

    from edgeae.codegen.emit import emit
    from edgeae.codegen.graph import load_graph
    from edgeae.codegen.lower_int8 import lower_int8
    from edgeae.codegen.reference import run_reference
    from edgeae.codegen.toolchain import TARGETS

    conv = conv_bundle(tmp_path / "b")

    x = np.load(conv / "samples.npy").astype(np.float32).reshape(-1, 1, 8, 8) / 255.0
    dst = quantize_qdq(conv / "encoder.onnx", tmp_path / "enc.qdq.onnx", x, act, weight, True, weight == "QInt8")
    program = lower_int8(load_graph(dst, "encoder"))
    assert any(s.kind == "qdense" and s.params["K"] >= 16 for s in program.steps)  # the Helium loop runs
    unit = emit(program, "sig_encoder", {"graph": dst.name, "sha256": "0" * 64, "role": "encoder",
                                         "precision": "int8-static", "version": "test", "code_size": 6})
    (tmp_path / "sig_encoder.h").write_text(unit.header)
    (tmp_path / "sig_encoder.c").write_text(unit.source)
    xs = x[:4]
    ref = run_reference(program, [xs])
    r = run_unit(unit, tmp_path, [xs], ref, "cortex-m55", tmp_path / "work")
    assert r.max_abs_vs_host == 0.0 and r.samples == 4, r

    def asm(target: str, *extra: str) -> str:
        cmd = ["arm-none-eabi-gcc", *TARGETS[target][0], "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
               *extra, "-S", str(tmp_path / "sig_encoder.c"), "-o", "-"]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    m55 = asm("cortex-m55")
    assert "vmladav" in m55 and "vld4" in m55
    no_mve = asm("cortex-m55", "-DSIG_ENCODER_NO_MVE")
    assert "vmladav" not in no_mve and "smlad" in no_mve
    assert "vmladav" not in asm("cortex-m4f")


_REQUANT_MAIN = r"""
#include <stdio.h>
static uint32_t rng = 2463534242u;
static uint32_t next(void) { rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5; return rng; }
static int32_t clamp(int32_t v) { return v < -65535 ? -65535 : (v > 65535 ? 65535 : v); }
int main(void)
{
    long n = 0, bad = 0;
    int i, l;
    for (i = 0; i < 40000; ++i) {
        int32_t a[4], got[4], sh[4], ml[4];
        const int shift = 33 + (int)(next() % 30u), e = (int)(next() % 31u);
        int32_t mult = (int32_t)(next() >> 1);
        if (mult == 0) mult = 1;
        for (l = 0; l < 4; ++l) {
            a[l] = (int32_t)next();
            if (a[l] == INT32_MIN) a[l] = 0;
            if (l == 1) a[l] = (int32_t)(next() % 20001u) - 10000;
        }
        if (i % 2 == 1 && shift - 1 - e >= 0 && shift - 1 - e < 30) { /* exact ties: p = (2 j + 1) 2^(shift-1) */
            const int32_t j = (int32_t)(next() % 64u) - 32;
            mult = (int32_t)((2 * j + 1 > 0 ? 2 * j + 1 : -(2 * j + 1)) << (shift - 1 - e));
            a[0] = (int32_t)1 << e; a[2] = -((int32_t)1 << e); a[3] = (2 * j + 1 > 0 ? 1 : -1) * ((int32_t)1 << e);
        }
        vstrwq_s32(got, PFX_requant_mve(vldrwq_s32(a), vdupq_n_s32(mult), shift - 32,
                                        (int32_t)((1u << (shift - 33)) - 1u)));
        for (l = 0; l < 4; ++l, ++n) bad += clamp(got[l]) != PFX_requant(a[l], mult, shift);
        for (l = 0; l < 4; ++l) { /* per-lane multipliers and shifts (the dense rows'): the ties, or random */
            sh[l] = i % 2 == 1 ? shift : 33 + (int)(next() % 30u);
            ml[l] = i % 2 == 1 ? mult : (int32_t)((next() >> 1) | 1u);
        }
        vstrwq_s32(got, PFX_requant_mve4(vldrwq_s32(a), vldrwq_s32(ml), vldrwq_s32(sh)));
        for (l = 0; l < 4; ++l, ++n) bad += clamp(got[l]) != PFX_requant(a[l], ml[l], sh[l]);
    }
    printf("requant %ld %ld\n", n, bad);
    return 0;
}
"""


@pytest.mark.slow
def test_helium_requantization_is_exact_on_cortex_m55(tmp_path):
    """The 4-lane Helium requantizations (c/dsp.c: one shift, and per-lane shifts) equal
    the scalar one (c/requant.c) bit for bit, ties included, on 2 x 160,000 products run on the
    emulated Cortex-M55."""
    from edgeae.codegen.kernels_int8 import DSP, INT8_REQUANT, qstore
    from edgeae.codegen.toolchain import arm_gcc, firmware_files, run_qemu, run_tool

    src = tmp_path / "main.c"
    src.write_text("#include <stddef.h>\n#include <stdint.h>\n#define PFX_KERNEL static\n#define PFX_RESTRICT restrict\n"
                   + DSP + INT8_REQUANT + qstore("uint8_t", False)[1] + _REQUANT_MAIN)
    startup, link = firmware_files(tmp_path, "mps3-an547")
    elf = tmp_path / "fw.elf"
    run_tool([*arm_gcc("cortex-m55", "-O2", "-std=c99", "-Wno-unused-function", "-ffunction-sections",
                       "-fdata-sections"), "--specs=rdimon.specs", "-nostartfiles", "-T", link, startup, src, "-o", elf,
              "-Wl,--gc-sections"], "linking the requantization check")
    out = run_qemu(elf, "mps3-an547", "the requantization check")
    n, bad = (int(v) for v in out.split("requant ")[1].split()[:2])
    assert n == 320000 and bad == 0, out
