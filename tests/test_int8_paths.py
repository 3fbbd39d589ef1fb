"""Each preprocessor path of the int8 C kernels, run and held to the integer reference bit for bit.

The int8 templates (``edgeae/codegen/c/q*.c``, ``requant.c``) hold one inner loop per
instruction set, chosen by the preprocessor; a build reaches only its own:

    x86-dispatch   the default host build: the AVX2 copy runs where the CPU has AVX2
                   (``PFX_REQUANT8``, ``PFX_AVX2``; the SSE2 ``qtile1``; the host ``qrows`` loop)
    x86-sse2       ``-D<UNIT>_NO_DISPATCH``: the baseline copy alone (``PFX_SSE2`` tiles)
    portable       ``-D<unit>_NO_VECTOR -D<UNIT>_NO_DISPATCH``: the plain C tiles (as on Cortex-M0/M3)
    cortex-m3      ``__thumb__`` without DSP (the M0/M3 ``qrows`` loop), under QEMU
    cortex-m4f     SMLAD (``PFX_DSP``, the DSP column order), under QEMU
    cortex-m55     Helium (``PFX_MVE``), under QEMU

One small graph reaches every kernel with its edge cases: a Conv of 4 output channels (one
tile of four), a Conv of 9 (two tiles of four and a plain row) with 45 taps (past a multiple of
4 and of 16) and 9 pixels (a block of 8 and one of 1), a ConvTranspose of 5 output channels
with phases of 4, 2 and 1 taps per input channel (weights off a word boundary), and a dense
head of K = 245 inputs (K % 4 = 1) and N = 13 rows (AVX2's 8, a block of 4, one left). Two
quantizations: uint8 activations and asymmetric uint8 weights (one signedness: Helium's byte
columns; weight zero points), and uint8 activations with symmetric int8 weights (mixed signs:
int16 columns). ``tools/mutate_c.py int8`` runs, for a mutant, the cases of the builds whose
preprocessor reaches the mutated line.
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

CC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None, reason="gcc is needed to compile the generated C (apt-get install gcc)")

# quantization of each variant: activation type, weight type, symmetric weights
VARIANTS = {"u8u8z": ("QUInt8", "QUInt8", False), "u8s8": ("QUInt8", "QInt8", True)}
HOST_BUILDS = ("x86-dispatch", "x86-sse2", "portable")
ARM_BUILDS = ("cortex-m3", "cortex-m4f", "cortex-m55")
NAME = "paths_encoder"


def _graph() -> onnx.ModelProto:
    """x (B,1,8,8) -> Conv 4 (pad 1) -> Relu -> Conv 9 (s2) -> Relu -> ConvT 5 (s2) -> Relu -> Flatten -> Gemm 13."""
    rng = np.random.default_rng(11)

    def w(name, *shape):
        fan = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(fan)).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv4", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv9", kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),  # (9, 3, 3)
             helper.make_node("ConvTranspose", ["r2", "w3", "b3"], ["t3"], name="convt5", kernel_shape=[3, 3],
                              strides=[2, 2]),
             helper.make_node("Relu", ["t3"], ["r3"], name="relu3"),  # (5, 7, 7)
             helper.make_node("Flatten", ["r3"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "wg", "bg"], ["code"], name="head", transB=1)]
    inits = [w("w1", 4, 1, 3, 3), w("b1", 4), w("w2", 9, 4, 3, 3), w("b2", 9), w("w3", 9, 5, 3, 3), w("b3", 5),
             w("wg", 13, 245), w("bg", 13)]
    graph = helper.make_graph(nodes, "encoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
                              [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", 13])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)


class _Reader:
    def __init__(self, x: np.ndarray):
        self.items = iter([{"x": x[i:i + 16]} for i in range(0, len(x), 16)])

    def get_next(self):
        return next(self.items, None)


@pytest.fixture(scope="module")
def variant_unit(tmp_path_factory):
    """variant -> (unit, its folder, samples, the integer reference's outputs), built on first use."""
    from onnxruntime import quantization as q

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
            dst = folder / "enc.qdq.onnx"
            q.quantize_static(str(folder / "enc.onnx"), str(dst), _Reader(x), quant_format=q.QuantFormat.QDQ,
                              per_channel=True, activation_type=getattr(q.QuantType, act),
                              weight_type=getattr(q.QuantType, weight),
                              extra_options={"WeightSymmetric": symmetric, "ActivationSymmetric": False})
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
    if build == "x86-dispatch" and not _avx2_cpu():
        pytest.skip("this CPU has no AVX2: the default build runs the baseline copy")
    unit, folder, xs, ref = variant_unit(variant)
    up = NAME.upper()
    flags = {"x86-dispatch": [], "x86-sse2": [f"-D{up}_NO_DISPATCH"],
             "portable": [f"-D{NAME}_NO_VECTOR", f"-D{up}_NO_DISPATCH"]}[build]
    assert f"{up}_NO_DISPATCH" in unit.source and f"{NAME}_NO_VECTOR" in unit.source  # the knobs exist
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
