"""Each preprocessor path of the int8 C kernels, run and held to the integer reference bit for bit.

The int8 templates (``edgeae/codegen/c/q*.c``, ``requant.c``) hold one inner loop per
instruction set, chosen by the preprocessor; a build reaches only its own:

    x86-avx2       the default host build: the AVX2 copy runs where the CPU has AVX2
                   (``PFX_REQUANT8``, ``PFX_AVX2``; the SSE2 ``qtile1``; the host ``qrows`` loop)
    x86-sse2       ``-D<UNIT>_NO_DISPATCH``: the baseline copy alone (``PFX_SSE2`` tiles)
    portable       ``-D<UNIT>_NO_VECTOR -D<UNIT>_NO_DISPATCH``: the plain C tiles (as on Cortex-M0/M3)
    cortex-m3      ``__thumb__`` without DSP (the M0/M3 ``qrows`` loop), under QEMU
    cortex-m4f     SMLAD (``PFX_DSP``, the DSP column order), under QEMU
    cortex-m55     Helium (``PFX_MVE``), under QEMU

One small graph reaches every kernel with its edge cases: a Conv of 4 output channels (one
tile of four), a Conv of 9 (two tiles of four and a plain row) with 45 taps (past a multiple of
4 and of 16) and 9 pixels (a block of 8 and one of 1), a ConvTranspose of 5 output channels,
kernel 2 x 3, strides 3 x 2 (phases of 2, 1 and 0 taps per input channel, weights off a word
boundary, phases of 12, 9, 8 and 6 pixels: blocks of 4, 1, 8 and 6), and a dense
head of K = 245 inputs (K % 4 = 1) and N = 13 rows (AVX2's 8, a block of 4, one left). Two
quantizations: uint8 activations and asymmetric uint8 weights (one signedness: Helium's byte
columns; weight zero points), and uint8 activations with symmetric int8 weights (mixed signs:
int16 columns). The convolutions' tiles (``c/qtile.c``) are also run on their own, for each
build, on random columns and weights of 1 to 48 taps, where their int32 sums show every product
(the graph's outputs pass through a requantization that hides most one-unit errors).
``tools/mutate_c.py int8`` runs, for a mutant, the cases of the builds whose preprocessor
reaches the mutated line.
"""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgeae.codegen.toolchain import toolchain_problem  # noqa: E402
from tests._bundles import OPSET, digits_uint8  # noqa: E402
from tests._codegen_bundles import quantize_qdq  # noqa: E402

CC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None, reason="gcc is needed to compile the generated C (apt-get install gcc)")

# quantization of each variant: activation type, weight type, symmetric weights
VARIANTS = {"u8u8z": ("QUInt8", "QUInt8", False), "u8s8": ("QUInt8", "QInt8", True)}
HOST_BUILDS = ("x86-avx2", "x86-sse2", "portable")
ARM_BUILDS = ("cortex-m3", "cortex-m4f", "cortex-m55")
NAME = "paths_encoder"


def _graph() -> onnx.ModelProto:
    """x (B,1,8,8) -> Conv 4 (pad 1) -> Relu -> Conv 9 (s2) -> Relu -> ConvT 5 (2x3, s 3x2) -> Relu -> Flatten -> Gemm 13."""
    rng = np.random.default_rng(11)

    def w(name, *shape):
        fan = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(fan)).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv4", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv9", kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),  # (9, 3, 3)
             helper.make_node("ConvTranspose", ["r2", "w3", "b3"], ["t3"], name="convt5", kernel_shape=[2, 3],
                              strides=[3, 2], pads=[1, 0, 0, 0]),
             helper.make_node("Relu", ["t3"], ["r3"], name="relu3"),  # (5, 7, 7)
             helper.make_node("Flatten", ["r3"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "wg", "bg"], ["code"], name="head", transB=1)]
    inits = [w("w1", 4, 1, 3, 3), w("b1", 4), w("w2", 9, 4, 3, 3), w("b2", 9), w("w3", 9, 5, 2, 3), w("b3", 5),
             w("wg", 13, 245), w("bg", 13)]
    graph = helper.make_graph(nodes, "encoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
                              [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", 13])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)


@pytest.fixture(scope="module")
def variant_unit(tmp_path_factory):
    """variant -> (unit, its folder, samples, the integer reference's outputs), built on first use."""

    from edgeae.codegen.emit import emit
    from edgeae.codegen.graph import load_graph
    from edgeae.codegen.lower_int8 import lower_int8
    from edgeae.codegen.reference import run_reference

    built: dict[str, tuple] = {}
    x = digits_uint8()[:64].astype(np.float32).reshape(-1, 1, 8, 8) / 255.0

    def get(variant: str):
        if variant not in built:
            act, weight, symmetric = VARIANTS[variant]
            folder = tmp_path_factory.mktemp(variant)
            onnx.save(_graph(), folder / "enc.onnx")
            dst = quantize_qdq(folder / "enc.onnx", folder / "enc.qdq.onnx", x, act, weight, True, symmetric)
            program = lower_int8(load_graph(dst, "encoder"))
            assert [s.kind for s in program.steps if s.kind.startswith("q") and s.kind != "quantize"] == \
                ["qconv", "qconv", "qconvt", "qdense"], [s.kind for s in program.steps]
            unit = emit(program, NAME, {"graph": dst.name, "sha256": "0" * 64, "role": "encoder",
                                        "precision": "int8-static", "version": "test", "code_size": 13})
            (folder / f"{NAME}.h").write_text(unit.header)
            (folder / f"{NAME}.c").write_text(unit.source)
            xs = x[:6]
            built[variant] = (unit, folder, xs, run_reference(program, [xs]))
        return built[variant]

    return get


def _avx2_cpu() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("build", HOST_BUILDS)
def test_int8_host_path_equals_the_reference(variant_unit, build, variant):
    from edgeae.codegen.build import build_harness, run_harness

    if build != "portable" and platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the x86-64 paths need an x86-64 host")
    if build == "x86-avx2" and not _avx2_cpu():
        pytest.skip("this CPU has no AVX2: the default build runs the baseline copy")
    unit, folder, xs, ref = variant_unit(variant)
    up = NAME.upper()
    flags = {"x86-avx2": [], "x86-sse2": [f"-D{up}_NO_DISPATCH"],
             "portable": [f"-D{up}_NO_VECTOR", f"-D{up}_NO_DISPATCH"]}[build]
    assert f"{up}_NO_DISPATCH" in unit.source and f"{up}_NO_VECTOR" in unit.source  # the knobs exist
    exe = build_harness(unit, folder, flags=["-O2", *flags], cxx=None, tag=build)
    got = run_harness(exe, unit, [xs])
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_array_equal(g.view(np.uint8), np.asarray(r, g.dtype).view(np.uint8))


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("target", ARM_BUILDS)
def test_int8_cortex_m_path_equals_the_reference(variant_unit, target, variant, tmp_path):
    from edgeae.codegen.cortexm import run_unit

    problem = toolchain_problem()
    if problem:
        pytest.skip(f"Cortex-M toolchain missing: {problem}")
    unit, folder, xs, ref = variant_unit(variant)
    r = run_unit(unit, folder, [xs], ref, target, tmp_path / "work")
    assert r.max_abs_vs_host == 0.0 and r.samples == len(xs), r


_TILE_CHECK = r"""
/* acc (rows-by-four: 4 rows x 8 pixels; plain: 1 row) against plain sums of g's weights times
   v[t][j] for the npx real pixels; the mismatches */
static int mismatches_${w}(const int32_t *acc, const ${wt} *g, int T, int rows, int npx, int16_t v[][8])
{
    const int T4 = T - T % 4, TL = T % 4;
    int bad = 0, r, j, t;
    for (r = 0; r < rows; ++r)
        for (j = 0; j < npx; ++j) {
            int32_t want = 0;
            for (t = 0; t < T; ++t)
                want += (int32_t)(rows == 1 ? g[t] : (t < T4 ? g[(t >> 2) * 16 + 4 * r + (t & 3)]
                                                             : g[4 * T4 + r * TL + t - T4])) * v[t][j];
            bad += acc[8 * r + j] != want;
        }
    return bad;
}

static int check_${w}(void)
{ /* tiles of weight type ${wt} against plain sums over the rows-by-four layout; the mismatches */
    static int16_t col[8 * 64];
    static ${wt} col8[8 * 64];
    static unsigned char wbuf[4 * 48 + 8];
    static const int taps[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 16, 17, 19, 20, 21, 28, 31, 32, 33, 35, 45, 48};
    int32_t acc[32];
    int bad = 0, i, off, t, j;
    for (i = 0; i < (int)(sizeof taps / sizeof taps[0]); ++i)
        for (off = 0; off < 4; ++off) {
            const int T = taps[i];
            const int npx = (i + off) % 3 == 0 ? 1 + (int)(next() % 8u) : 8; /* a block's real pixels */
            const ${wt} *g = (const ${wt} *)(const void *)(wbuf + off);
            int16_t v[48][8];
            memset(col, 0, sizeof col);
            memset(col8, 0, sizeof col8);
            for (t = 0; t < 4 * T + 4; ++t) wbuf[t] = (unsigned char)next();
            for (t = 0; t < T; ++t)
                for (j = 0; j < 8; ++j) {
                    v[t][j] = (int16_t)((int)(next() % 511u) - 255);
                    col[t_COL(t, j)] = v[t][j];
                }
            t_qtile${w}_4(col, g, T, npx, acc);
            bad += mismatches_${w}(acc, g, T, 4, npx, v);
            t_qtile${w}_1(col, g, T, npx, acc);
            bad += mismatches_${w}(acc, g, T, 1, npx, v);
#if t_MVE /* the byte columns: codes of the weights' type */
            for (t = 0; t < T; ++t)
                for (j = 0; j < 8; ++j) {
                    v[t][j] = (int16_t)(${wt})next();
                    col8[t_COL8(t, j)] = (${wt})v[t][j];
                }
            t_qtile${w}_4b(col8, g, T, npx, acc);
            bad += mismatches_${w}(acc, g, T, 4, npx, v);
            t_qtile${w}_1b(col8, g, T, npx, acc);
            bad += mismatches_${w}(acc, g, T, 1, npx, v);
#endif
        }
    return bad;
}
"""

_TILE_MAIN = r"""
int main(void)
{
    printf("tiles %d %d %d\n", check_i(), check_u(), t_MVE);
    return 0;
}
"""


def _tile_source() -> str:
    from string import Template

    from edgeae.codegen.kernels_int8 import DSP, qtile

    head = ("#include <stddef.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <string.h>\n"
            "#define PFX_KERNEL static\n#define PFX_RESTRICT restrict\n"
            "static uint32_t rng = 2463534242u;\n"
            "static uint32_t next(void) { rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5; return rng; }\n")
    kernels = (DSP + qtile("int8_t")[1] + qtile("uint8_t")[1]).replace("PFX_", "t_")
    checks = "".join(Template(_TILE_CHECK).substitute(w=wt[0], wt=wt) for wt in ("int8_t", "uint8_t"))
    return head.replace("PFX_", "t_") + kernels + checks + _TILE_MAIN


# each tile a function of its own, with a stack canary: a write past a tile's own arrays aborts
_GUARDED = ("-fno-inline", "-fstack-protector-all")


@pytest.mark.parametrize("build", HOST_BUILDS + ARM_BUILDS)
def test_int8_tiles_sum_exactly(build, tmp_path):
    """Each build's convolution tiles (4 rows and 1 row; with Helium also the byte-column ones)
    give the exact int32 sums of random int16 columns and weight bytes, 1 to 48 taps, the
    weights at each byte offset (Helium's word-aligned loads and its plain fallback), and write
    nothing past their own arrays."""
    src = tmp_path / "tiles.c"
    src.write_text(_tile_source())
    exe = tmp_path / "tiles"
    if build.startswith("cortex"):
        from edgeae.codegen.toolchain import TARGETS, arm_gcc, firmware_files, run_qemu, run_tool

        problem = toolchain_problem()
        if problem:
            pytest.skip(f"Cortex-M toolchain missing: {problem}")
        startup, link = firmware_files(tmp_path, TARGETS[build][1])
        run_tool([*arm_gcc(build, "-O2", "-std=c99", "-Wall", "-Werror", *_GUARDED, "-ffunction-sections",
                           "-fdata-sections"),
                  "--specs=rdimon.specs", "-nostartfiles", "-T", link, startup, src, "-o", exe, "-Wl,--gc-sections"],
                 "linking the tile check")
        out = run_qemu(exe, TARGETS[build][1], "the tile check", timeout=60)
    else:
        import subprocess

        if build != "portable" and platform.machine().lower() not in ("x86_64", "amd64"):
            pytest.skip("the x86-64 paths need an x86-64 host")
        if build == "x86-avx2" and not _avx2_cpu():
            pytest.skip("this CPU has no AVX2")
        flags = {"x86-avx2": ["-mavx2"], "x86-sse2": [], "portable": ["-Dt_NO_VECTOR"]}[build]
        subprocess.run([CC, "-std=c99", "-O2", "-Wall", "-Werror", *_GUARDED, *flags, str(src), "-o", str(exe)], check=True,
                       capture_output=True, text=True)
        out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=True).stdout
    bad_i, bad_u, mve = (int(v) for v in out.split("tiles ")[1].split()[:3])
    assert (bad_i, bad_u) == (0, 0), out
    assert mve == (build == "cortex-m55")


_ROWS_MAIN = r"""
int main(void)
{ /* N = 13 rows (AVX2's 8, a block of 4, one left), K = 21: y at stride 1, then at stride 3 */
    enum { K = 21, N = 13, YS = 3 };
    static uint8_t x[K], w[N * K], y1[N], y3[N * YS];
    static int32_t bias[N], mult[N], shift[N];
    uint32_t s = 2463534242u;
    int i, bad = 0, kept = 0;
    for (i = 0; i < N * K; ++i) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; w[i] = (uint8_t)s; }
    for (i = 0; i < K; ++i) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; x[i] = (uint8_t)s; }
    for (i = 0; i < N; ++i) { bias[i] = (int32_t)(s % 20001u) - 10000; mult[i] = 1 << 30; shift[i] = 42 + i % 2; }
    memset(y3, 0xAA, sizeof y3);
    t_qrows_uuu(x, w, bias, NULL, mult, shift, 0, y1, 1u, K, N, 0, 0, 255);
    t_qrows_uuu(x, w, bias, NULL, mult, shift, 0, y3, (size_t)YS, K, N, 0, 0, 255);
    for (i = 0; i < N * YS; ++i) {
        bad += i % YS == 0 ? y3[i] != y1[i / YS] : y3[i] != 0xAA;
        kept += y1[i / YS] != 0 && y1[i / YS] != 255;
    }
    printf("rows %d %d\n", bad, kept);
    return 0;
}
"""


@pytest.mark.parametrize("build", HOST_BUILDS)
def test_int8_rows_store_at_a_stride(build, tmp_path):
    """The dense row kernel's output stride (``ys``; generated units pass 1): 13 rows at
    stride 3 land at y[3 n], the same codes as at stride 1, and nothing between them is written."""
    import subprocess

    from edgeae.codegen.kernels_int8 import DSP, INT8_REQUANT, qrows

    if build != "portable" and platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the x86-64 paths need an x86-64 host")
    if build == "x86-avx2" and not _avx2_cpu():
        pytest.skip("this CPU has no AVX2")
    name, text = qrows("uint8_t", "uint8_t", "uint8_t", False)
    assert name == "PFX_qrows_uuu"
    src = tmp_path / "rows.c"
    src.write_text(("#include <stddef.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <string.h>\n"
                    "#define PFX_KERNEL static\n#define PFX_RESTRICT restrict\n" + DSP + INT8_REQUANT + text
                    ).replace("PFX_", "t_") + _ROWS_MAIN)
    flags = {"x86-avx2": ["-mavx2"], "x86-sse2": [], "portable": ["-Dt_NO_VECTOR"]}[build]
    exe = tmp_path / "rows"
    subprocess.run([CC, "-std=c99", "-O2", "-Wall", "-Werror", *flags, str(src), "-o", str(exe)], check=True,
                   capture_output=True, text=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=True).stdout
    bad, kept = (int(v) for v in out.split("rows ")[1].split()[:2])
    assert bad == 0, out
    assert kept >= 3 * 6, out  # most codes inside (0, 255): the comparison sees the sums
