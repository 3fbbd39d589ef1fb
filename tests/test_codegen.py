"""edgeae.codegen: bundle -> C99, checked against ONNX Runtime (fp32) and the integer reference (int8)."""

from __future__ import annotations

import json
import math
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from edgeae.codegen import UnsupportedOpError, generate_c  # noqa: E402
from edgeae.codegen.build import build_harness, run_harness  # noqa: E402
from edgeae.codegen.graph import load_graph  # noqa: E402
from edgeae.codegen.lower_int8 import lower_int8, multiplier  # noqa: E402
from edgeae.codegen.reference import requantize  # noqa: E402
from edgeae.errors import ValidationError  # noqa: E402
from tests._bundles import make_bundle  # noqa: E402
from tests._codegen_bundles import add_int8_static, conv_bundle, needs_compilers, quantize_qdq  # noqa: E402

pytestmark = needs_compilers


@pytest.fixture(scope="module")
def pca_raw(tmp_path_factory) -> Path:
    folder, _ = make_bundle(tmp_path_factory.mktemp("pca") / "b", raw_io=True, precisions=("fp32",))
    return add_int8_static(folder)


@pytest.fixture(scope="module")
def conv(tmp_path_factory) -> Path:
    return add_int8_static(conv_bundle(tmp_path_factory.mktemp("conv") / "b"))


def _header(folder: Path, name: str) -> str:
    return (folder / f"{name}.h").read_text()


def test_pca_raw_bundle_fp32_and_int8(pca_raw, tmp_path):
    out = tmp_path / "c"
    result = generate_c(pca_raw, out)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["codegen.json", *sorted(f"model_{r}_{p}.{e}" for r in ("encoder", "decoder")
                                              for p in ("fp32", "int8") for e in ("c", "h"))]
    by = {g.name: g for g in result.graphs}
    # raw I/O: uint8 pixels in, uint8 pixels out
    assert by["model_encoder_fp32"].inputs[0][1] == "uint8_t" and by["model_decoder_int8"].outputs[0][1] == "uint8_t"
    for g in result.graphs:
        assert g.samples == 64
        if g.precision == "fp32":
            assert all(c["max_abs"] <= c["tolerance"] for c in g.checks["onnxruntime"]["outputs"].values())
        else:
            assert all(c["differ"] == 0 for c in g.checks["reference"]["outputs"].values())
    head = _header(out, "model_encoder_int8")
    assert "#define MODEL_ENCODER_INT8_X_SIZE 64" in head and "#define MODEL_ENCODER_INT8_CODE_SIZE 16" in head
    assert f"#define MODEL_ENCODER_INT8_ARENA_BYTES {by['model_encoder_int8'].arena_bytes}" in head
    assert by["model_encoder_int8"].sha256 in head and 'extern "C"' in head
    src = (out / "model_encoder_int8.c").read_text()
    assert "float" not in src.split("/* ---- kernels ---- */")[1].split("/* ---- the graph ---- */")[0]
    assert "malloc" not in src and "math.h" not in src
    report = json.loads((out / "codegen.json").read_text())
    assert report["io"] == "raw" and len(report["graphs"]) == 4


def test_model_io_and_prefix(tmp_path):
    folder, _ = make_bundle(tmp_path / "b", kind="vector", precisions=("fp32",))
    result = generate_c(folder, tmp_path / "c", io="model", prefix="digits_ae")
    enc = result.graphs[0]
    assert enc.name == "digits_ae_encoder_fp32" and enc.inputs[0][1] == "float"
    assert "digits_ae_encoder_fp32_arena(" in _header(tmp_path / "c", enc.name)


def test_vae_bundle_three_outputs(tmp_path):
    folder, _ = make_bundle(tmp_path / "vae", kind="vae", precisions=("fp32",))
    result = generate_c(folder, tmp_path / "c")
    enc = result.graphs[0]
    assert [t[0] for t in enc.outputs] == ["code", "mean", "log_var"]
    assert enc.checks["onnxruntime"]["outputs"]["log_var"]["max_abs"] <= 1e-5


def test_conv_bundle_fp32_and_int8(conv, tmp_path):
    result = generate_c(conv, tmp_path / "c")
    kinds = {g.name: g for g in result.graphs}
    assert set(kinds) == {"model_encoder_fp32", "model_decoder_fp32", "model_encoder_int8", "model_decoder_int8"}
    src = (tmp_path / "c" / "model_decoder_int8.c").read_text()
    assert "qconvt" in src and "_table[" in src  # transposed conv as integer kernel; sigmoid as a table
    # the arena is smaller than keeping every intermediate tensor and every scratch column (8 output
    # pixels x the taps of a phase: 8 x 8 channels x 2 x 2 for the first ConvTranspose, 8 x 4 x 2 x 2)
    assert kinds["model_decoder_fp32"].arena_bytes < 4 * (32 + 4 * 4 * 4 + 8 * 8 + 8 * 32 + 8 * 16)


def test_int8_under_sanitizers_matches_reference(conv, tmp_path):
    """The int8 harness under -fsanitize=address,undefined: no report, same bytes as -O2."""
    from edgeae.codegen.emit import emit
    from edgeae.codegen.reference import run_reference
    from edgeae.codegen.verify import unit_inputs
    from edgeae.runtime.bundle import read_manifest

    m = read_manifest(conv)
    samples = np.load(conv / "samples.npy")[:16]
    for role in ("encoder", "decoder"):
        entry = m.find_graph(role, "int8-static")
        program = lower_int8(load_graph(conv / entry.file, role))
        unit = emit(program, f"san_{role}", {"graph": entry.file, "sha256": "0" * 64, "role": role,
                                             "precision": "int8-static", "version": "test", "code_size": 6})
        (tmp_path / f"{unit.name}.h").write_text(unit.header)
        (tmp_path / f"{unit.name}.c").write_text(unit.source)
        exe = build_harness(unit, tmp_path, flags=["-O1", "-g", "-fsanitize=address,undefined",
                                                   "-fno-sanitize-recover=all"], tag="asan")
        x = unit_inputs(conv, m, role, False, samples)
        got = run_harness(exe, unit, [x])
        want = run_reference(program, [x])
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_fast_math_refuses_float_input_int8(conv, pca_raw, tmp_path):
    """-ffast-math would fold the exact quantization of float input: such units refuse to compile
    (and say so in the header); units without float input build under it unchanged."""
    result = generate_c(conv, tmp_path / "c", io="model", precisions="int8-static", verify=False)
    by = {g.role: g for g in result.graphs}
    assert by["encoder"].inputs[0][1] == "float"
    enc = tmp_path / "c" / "model_encoder_int8.c"
    assert "-ffast-math" in _header(tmp_path / "c", "model_encoder_int8")
    res = subprocess.run(["gcc", "-std=c99", "-O2", "-ffast-math", "-c", str(enc), "-o", str(tmp_path / "e.o")],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "without -ffast-math" in res.stderr
    assert subprocess.run(["gcc", "-std=c99", "-O2", "-c", str(enc), "-o", str(tmp_path / "e.o")]).returncode == 0
    raw = generate_c(pca_raw, tmp_path / "r", precisions="int8-static", verify=False)  # uint8 in
    src = tmp_path / "r" / f"{raw.graphs[0].name}.c"
    assert "__FAST_MATH__" not in src.read_text()
    assert subprocess.run(["gcc", "-std=c99", "-O2", "-ffast-math", "-c", str(src), "-o", str(tmp_path / "r.o")]
                          ).returncode == 0


def test_unsupported_op_names_op_and_node(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from tests._codegen_bundles import conv_graphs, write_bundle

    enc, dec = conv_graphs()
    node = helper.make_node("Softmax", ["code_pre"], ["code"], name="head_softmax", axis=1)
    enc.graph.node[-1].output[0] = "code_pre"
    enc.graph.node.append(node)
    del enc.graph.output[:]
    enc.graph.output.append(helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", 6]))
    onnx.checker.check_model(enc)
    from tests._bundles import digits_uint8

    folder = write_bundle(tmp_path / "b", enc, dec, 6, digits_uint8()[:8])
    out = tmp_path / "c"
    with pytest.raises(UnsupportedOpError, match=r"Softmax node 'head_softmax' is not supported"):
        generate_c(folder, out)
    assert not out.exists() and not list(tmp_path.glob(".c.partial-*"))


def test_mismatch_fails_and_writes_nothing(pca_raw, tmp_path, monkeypatch):
    from edgeae.codegen import kernels

    broken = kernels.FP32["dense_f32"].replace("y[n] = b[n];", "y[n] = b[n] + 0.001f;")
    monkeypatch.setitem(kernels.FP32, "dense_f32", broken)
    out = tmp_path / "c"
    with pytest.raises(ValidationError, match="differs from ONNX Runtime"):
        generate_c(pca_raw, out, precisions="fp32")
    assert not out.exists()


def test_refuses_unknown_precision_and_bad_prefix(pca_raw, tmp_path):
    from edgeae.errors import ConfigError

    with pytest.raises(ConfigError, match="int8-dynamic"):
        generate_c(pca_raw, tmp_path / "c", precisions="int8-dynamic")
    with pytest.raises(ConfigError, match="prefix"):
        generate_c(pca_raw, tmp_path / "c", prefix="9bad")


def test_arena_plan_never_overlaps_live_buffers(conv):
    from edgeae.codegen.lower_fp32 import lower_fp32

    for role in ("encoder", "decoder"):
        p = lower_fp32(load_graph(conv / f"{role}.onnx", role))
        p.plan_arena()
        live = {}
        for i, s in enumerate(p.steps):
            for b in s.reads + s.writes:
                lo, hi = live.get(b, (i, i))
                live[b] = (min(lo, i), max(hi, i))
        arena = [b for b in live if p.buffers[b].kind == "arena"]
        for a in arena:
            for b in arena:
                ba, bb = p.buffers[a], p.buffers[b]
                if a >= b or ba.share == b or bb.share == a or (ba.share and ba.share == bb.share):
                    continue
                overlap_time = not (live[a][1] < live[b][0] or live[b][1] < live[a][0])
                overlap_mem = ba.offset < bb.offset + bb.nbytes and bb.offset < ba.offset + ba.nbytes
                assert not (overlap_time and overlap_mem), (a, b)
        assert p.arena_bytes <= sum(p.buffers[b].nbytes + 16 for b in arena)


@pytest.mark.parametrize("seed", range(3))
def test_requantize_is_exact_round_half_even(seed):
    rng = np.random.default_rng(seed)
    acc = rng.integers(-2 ** 24, 2 ** 24, 2000)
    acc[:4] = [0, 1, -1, 3]
    for real in (rng.uniform(1e-5, 0.9), 2.0 ** -7, 1.5):
        m, s = multiplier(real)
        assert abs(m / 2 ** s - real) <= real * 2 ** -30
        got = requantize(acc, np.array(m), np.array(s))
        for a, g in zip(acc[:300], got[:300], strict=True):
            exact = Fraction(int(a) * m, 2 ** s)
            fl = math.floor(exact)
            r = fl + (1 if (exact - fl > Fraction(1, 2) or (exact - fl == Fraction(1, 2) and fl % 2)) else 0)
            assert g == max(-65535, min(65535, r))


def test_generated_requant_equals_the_reference(tmp_path):
    """The C requantization helper itself, compiled alone: equal to the numpy reference on random
    products and on exact ties (acc odd, multiplier 2^30 / 2^31 = 1/2; acc an odd multiple of
    2^(shift-31), multiplier 2^30 / 2^shift for the shift >= 32 path), both signs."""
    from edgeae.codegen.kernels import INT8_REQUANT

    src = tmp_path / "rq.c"
    src.write_text("#include <stdint.h>\n#include <stdio.h>\n" + INT8_REQUANT.replace("PFX_", "t_") +
                   "int main(void)\n{\n    long a, m, s;\n    while (scanf(\"%ld %ld %ld\", &a, &m, &s) == 3)\n"
                   "        printf(\"%d\\n\", (int)t_requant((int32_t)a, (int32_t)m, (int32_t)s));\n"
                   "    return 0;\n}\n")
    exe = tmp_path / "rq"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", str(src), "-o", str(exe)],
                   check=True)
    rng = np.random.default_rng(5)
    acc = np.concatenate([rng.integers(-2 ** 31 + 1, 2 ** 31, 1500), rng.integers(-999, 1000, 500)])
    shift = rng.integers(1, 63, len(acc))
    mult = np.where(rng.random(len(acc)) < 0.5, 2 ** 30, rng.integers(2 ** 30, 2 ** 31, len(acc)))
    ties = np.arange(-41, 42, 2)  # odd: acc * 2^30 / 2^31 = acc / 2 exactly
    acc, mult, shift = (np.concatenate([a, b]) for a, b in ((acc, ties), (mult, np.full(len(ties), 2 ** 30)),
                                                              (shift, np.full(len(ties), 31))))
    for s in (32, 33, 40, 52):  # acc * 2^30 / 2^s = odd / 2: ties on the shift >= 32 path
        t = np.arange(-41, 42, 2) << (s - 31)
        acc, mult, shift = (np.concatenate([a, b]) for a, b in ((acc, t), (mult, np.full(len(t), 2 ** 30)),
                                                                  (shift, np.full(len(t), s))))
    lines = "\n".join(f"{a} {m} {s}" for a, m, s in zip(acc, mult, shift, strict=True))
    got = np.array(subprocess.run([str(exe)], input=lines, capture_output=True, text=True, check=True).stdout.split(),
                   np.int64)
    np.testing.assert_array_equal(got, requantize(acc, mult, shift))


def test_cli_codegen(pca_raw, tmp_path):
    from click.testing import CliRunner

    from edgeae.cli import cli

    out = tmp_path / "c"
    res = CliRunner().invoke(cli, ["codegen", str(pca_raw), "-o", str(out), "--precision", "int8"])
    assert res.exit_code == 0, res.output
    assert "model_encoder_int8.c" in res.output and (out / "model_decoder_int8.h").is_file()
    res = CliRunner().invoke(cli, ["codegen", str(pca_raw), "-o", str(out), "--precision", "int8"])
    assert res.exit_code == 1 and "Error:" in res.output and "--overwrite" in res.output
    res = CliRunner().invoke(cli, ["codegen", str(tmp_path / "nope"), "-o", str(tmp_path / "d")])
    assert res.exit_code == 1 and res.output.startswith("Error:") and "Traceback" not in res.output


def test_generated_main_example_builds_as_c_and_cpp(pca_raw, tmp_path):
    """The README's minimal main.c, compiled against generated files as C99 and as C++."""
    out = tmp_path / "c"
    generate_c(pca_raw, out, precisions="int8")
    main = (Path(__file__).resolve().parents[1] / "docs" / "embedded_main.c").read_text()
    (out / "main.c").write_text(main)
    x = np.load(pca_raw / "samples.npy")[0].reshape(-1)
    (out / "x.raw").write_bytes(x.tobytes())
    for cc, std in (("gcc", "-std=c99"), ("g++", "-std=c++17")):
        lang = ["-x", "c++"] if cc == "g++" else []
        exe = out / f"demo_{cc}"
        subprocess.run([cc, std, "-Wall", "-Werror", "-O2", *lang, str(out / "main.c"), str(out / "model_encoder_int8.c"),
                        str(out / "model_decoder_int8.c"), "-o", str(exe)], check=True, capture_output=True)
        res = subprocess.run([str(exe), str(out / "x.raw")], check=True, capture_output=True, text=True)
        assert res.stdout.startswith("code[0] =") and "pixels" in res.stdout


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mlp", "conv", "vae", "conv-vae", "denoising"])
def test_trained_models_every_kind(kind, trained_run, tmp_path):
    """Real exports of every model kind (fp32 + int8-static, raw I/O) generate and check."""
    from edgeae.export import export
    from edgeae.train import train

    if kind == "conv-vae":  # not among the shared session runs
        run = tmp_path / "run"
        train("digits", out=run, epochs=1, overwrite=True, model="conv-vae", channels=(8, 16))
    else:
        run = trained_run(kind)
    export(run, tmp_path / "bundle", precisions="fp32,int8-static", raw_io=True, latency_repeats=2,
           codec_bits="none")
    for io in ("raw", "model"):
        result = generate_c(tmp_path / "bundle", tmp_path / f"c-{io}", io=io)
        assert len(result.graphs) == 4
        for g in result.graphs:
            if g.precision == "int8-static":
                assert all(c["differ"] == 0 for c in g.checks["reference"]["outputs"].values())


def test_runtime_only_install_says_which_extra(tmp_path):
    """Without the onnx package (a base install) the command names the extra to install."""
    import os
    import sys

    python = os.environ.get("EDGEAE_RUNTIME_PYTHON")
    if not python:
        pytest.skip("EDGEAE_RUNTIME_PYTHON (a base install without onnx) is not set")
    folder, _ = make_bundle(tmp_path / "b", precisions=("fp32",))
    root = str(Path(__file__).resolve().parents[1])
    res = subprocess.run([python, "-m", "edgeae", "codegen", str(folder), "-o", str(tmp_path / "c")],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": root})
    assert res.returncode == 1 and "pip install 'edgeae[codegen]'" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and sys.executable != python


@pytest.mark.slow
def test_cli_export_target_c(mlp_run, tmp_path):
    """`edgeae export RUN -o BUNDLE --target c` writes the bundle and checked C into BUNDLE/c."""
    from click.testing import CliRunner

    from edgeae.cli import cli

    out = tmp_path / "bundle"
    res = CliRunner().invoke(cli, ["export", str(mlp_run), "-o", str(out), "--precision", "fp32,int8-static",
                                   "--raw-io", "--codec-bits", "none", "--target", "onnx", "--target", "c"])
    assert res.exit_code == 0, res.output
    assert (out / "c" / "model_encoder_int8.c").is_file() and (out / "c" / "codegen.json").is_file()
    assert "0 LSB vs integer reference" in res.output


@pytest.mark.parametrize("act,weight,symmetric", [("QInt8", "QInt8", True), ("QUInt8", "QUInt8", False)])
def test_int8_any_signedness_and_zero_points(conv, tmp_path, act, weight, symmetric):
    """Activations and weights uint8 or int8, weight zero points per channel: read from the graph."""
    import onnx

    from edgeae.codegen.build import build_harness, run_harness
    from edgeae.codegen.emit import emit
    from edgeae.codegen.reference import run_reference
    from edgeae.runtime.bundle import read_manifest

    x = np.load(conv / "samples.npy").astype(np.float32)[:, None].reshape(-1, 1, 8, 8) / 255.0
    dst = quantize_qdq(conv / "encoder.onnx", tmp_path / "enc.qdq.onnx", x, act, weight, True, symmetric)
    from onnx import numpy_helper

    wzp = [numpy_helper.to_array(t) for t in onnx.load(dst).graph.initializer
           if t.name.endswith("zero_point") and len(t.dims) == 1 and t.dims[0] > 1]  # per-channel: weights
    assert wzp
    if weight == "QUInt8":  # uint8 weights: per-channel zero points in use
        assert any(np.any(z) for z in wzp)
    program = lower_int8(load_graph(dst, "encoder"))
    m = read_manifest(conv)
    unit = emit(program, "sig_encoder", {"graph": dst.name, "sha256": "0" * 64, "role": "encoder",
                                         "precision": "int8-static", "version": "test", "code_size": m.code_size})
    (tmp_path / "sig_encoder.h").write_text(unit.header)
    (tmp_path / "sig_encoder.c").write_text(unit.source)
    got = run_harness(build_harness(unit, tmp_path), unit, [x])
    np.testing.assert_array_equal(got[0], run_reference(program, [x])[0])


def test_codegen_never_imports_torch(tmp_path):
    """The generator reads bundles only: it runs with torch made unimportable."""
    import os
    import sys

    folder, _ = make_bundle(tmp_path / "b", precisions=("fp32",))
    code = ("import sys; sys.modules['torch'] = None; from edgeae.codegen import generate_c; "
            f"r = generate_c({str(folder)!r}, {str(tmp_path / 'c')!r}); print(len(r.graphs))")
    root = str(Path(__file__).resolve().parents[1])
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": root})
    assert res.returncode == 0 and res.stdout.strip() == "2", res.stderr


def test_fp32_op_coverage_batchnorm_matmul_tanh_add(tmp_path):
    """export_modules-style graphs: BatchNormalization, Tanh, MatMul + Add, Clip, two-tensor Add."""
    from onnx import TensorProto, helper, numpy_helper

    from tests._bundles import OPSET, digits_uint8
    from tests._codegen_bundles import write_bundle

    rng = np.random.default_rng(1)

    def c(name, *shape, scale=0.3):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    enc_inits = [c("w", 4, 1, 3, 3), c("bn_s", 4), c("bn_b", 4), c("bn_m", 4), numpy_helper.from_array(
        rng.uniform(0.5, 2, 4).astype(np.float32), "bn_v"), c("mm", 256, 5), c("mb", 5),
        numpy_helper.from_array(np.array(-2, np.float32), "lo"), numpy_helper.from_array(np.array(2, np.float32), "hi")]
    enc_nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                 helper.make_node("BatchNormalization", ["c", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], name="bn"),
                 helper.make_node("Tanh", ["bn"], ["t"], name="tanh"),
                 helper.make_node("Flatten", ["t"], ["f"], name="flat"),
                 helper.make_node("MatMul", ["f", "mm"], ["m"], name="matmul"),
                 helper.make_node("Add", ["m", "mb"], ["a"], name="add_bias"),
                 helper.make_node("Clip", ["a", "lo", "hi"], ["code"], name="clip")]
    enc = helper.make_model(helper.make_graph(
        enc_nodes, "encoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", 5])], enc_inits),
        opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
    dec_inits = [c("g1", 5, 64), c("g2", 5, 64), numpy_helper.from_array(np.array([-1, 1, 8, 8], np.int64), "shape")]
    dec_nodes = [helper.make_node("Gemm", ["code", "g1"], ["h1"], name="fc1"),
                 helper.make_node("LeakyRelu", ["h1"], ["l1"], name="leaky", alpha=0.2),
                 helper.make_node("Gemm", ["code", "g2"], ["h2"], name="fc2"),
                 helper.make_node("Add", ["l1", "h2"], ["s"], name="sum_two"),
                 helper.make_node("Sigmoid", ["s"], ["sg"], name="sig"),
                 helper.make_node("Reshape", ["sg", "shape"], ["x_hat"], name="reshape")]
    dec = helper.make_model(helper.make_graph(
        dec_nodes, "decoder", [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", 5])],
        [helper.make_tensor_value_info("x_hat", TensorProto.FLOAT, ["batch", 1, 8, 8])], dec_inits),
        opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
    folder = write_bundle(tmp_path / "b", enc, dec, 5, digits_uint8()[:32])
    result = generate_c(folder, tmp_path / "c")
    for g in result.graphs:
        assert g.checks["onnxruntime"]["outputs"][g.outputs[0][0]]["max_abs"] <= 1e-5
    assert "BatchNormalization folded" in (tmp_path / "c" / "model_encoder_fp32.c").read_text()


def test_conv_kernels_any_stride_padding_dilation_group(tmp_path):
    """Conv with grouped channels, Conv and ConvTranspose with unequal kernels, strides, dilations and
    asymmetric pads (ConvTranspose phases of 1, 2 and 0 taps per axis, output_padding; 9 output
    channels: two blocks of 4 and one left over): the blocked fp32 kernels match ONNX Runtime,
    the int8 ones the integer reference, bit for bit."""
    from onnx import TensorProto, helper, numpy_helper

    from tests._bundles import OPSET, digits_uint8
    from tests._codegen_bundles import add_int8_static, write_bundle

    rng = np.random.default_rng(3)

    def c(name, *shape, scale=0.4):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    def model(nodes, name, x, xs, y, ys, inits):
        return helper.make_model(helper.make_graph(
            nodes, name, [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", *xs])],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["batch", *ys])], inits),
            opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)

    enc = model([helper.make_node("Conv", ["x", "wa", "ba"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["a"], ["ar"], name="relu_a"),
                 helper.make_node("Conv", ["ar", "wb", "bb"], ["b"], name="conv_b", group=2, strides=[2, 1],
                                  dilations=[1, 2], pads=[1, 0, 0, 1]),  # (6, 4, 7)
                 helper.make_node("Flatten", ["b"], ["f"], name="flat"),
                 helper.make_node("Gemm", ["f", "wg", "bg"], ["code"], name="head", transB=1)],
                "encoder", "x", [1, 8, 8], "code", [5],
                [c("wa", 4, 1, 3, 3), c("ba", 4), c("wb", 6, 2, 3, 2), c("bb", 6), c("wg", 5, 168, scale=0.1),
                 c("bg", 5)])
    dec = model([helper.make_node("Gemm", ["code", "wd", "bd"], ["d"], name="fc", transB=1),
                 helper.make_node("Reshape", ["d", "shape"], ["r"], name="unflat"),  # (6, 3, 4)
                 helper.make_node("ConvTranspose", ["r", "wt1", "bt1"], ["t1"], name="convt_1",
                                  strides=[3, 2], dilations=[2, 1], pads=[2, 1, 1, 0], output_padding=[0, 1]),
                 helper.make_node("Relu", ["t1"], ["t1r"], name="relu_t"),
                 helper.make_node("ConvTranspose", ["t1r", "wt2", "bt2"], ["t2"], name="convt_2", pads=[1, 1, 1, 1]),
                 helper.make_node("Sigmoid", ["t2"], ["x_hat"], name="sig")],
                "decoder", "code", [5], "x_hat", [1, 8, 8],
                [c("wd", 72, 5), c("bd", 72), numpy_helper.from_array(np.array([-1, 6, 3, 4], np.int64), "shape"),
                 c("wt1", 6, 9, 3, 2), c("bt1", 9), c("wt2", 9, 1, 3, 3, scale=0.25), c("bt2", 1)])
    folder = add_int8_static(write_bundle(tmp_path / "b", enc, dec, 5, digits_uint8()[:32]))
    result = generate_c(folder, tmp_path / "c")
    assert {g.precision for g in result.graphs} == {"fp32", "int8-static"}
    for g in result.graphs:
        if g.precision == "fp32":
            assert g.checks["onnxruntime"]["outputs"][g.outputs[0][0]]["max_abs"] <= 1e-5
        else:
            assert g.checks["reference"]["summary"] == "0 LSB vs integer reference"


def test_grouped_int8_conv_transpose_in_c_is_the_reference(tmp_path):
    """A grouped ConvTranspose (per-tensor QDQ, uint8 weights with a zero point) in C: every
    output channel of every group takes its own requantization and zero point, and the C
    unit, the integer reference and ONNX Runtime on the graph agree."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from edgeae.codegen.emit import emit
    from edgeae.codegen.reference import run_reference

    rng = np.random.default_rng(7)
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["h"], name="up", group=2, strides=[2, 2],
                            kernel_shape=[3, 3], pads=[1, 1, 1, 1], output_padding=[1, 1])
    graph = helper.make_graph(
        [node, helper.make_node("Relu", ["h"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10, 6, 6])],
        [numpy_helper.from_array((rng.normal(size=(4, 5, 3, 3)) * 0.3).astype(np.float32), "w"),
         numpy_helper.from_array((rng.normal(size=10) * 0.1).astype(np.float32), "b")])
    src, dst = tmp_path / "up.onnx", tmp_path / "up.qdq.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(src))
    x = rng.normal(size=(24, 4, 3, 3)).astype(np.float32)
    quantize_qdq(src, dst, x, per_channel=False)
    program = lower_int8(load_graph(dst, "decoder"))
    (step,) = [s for s in program.steps if s.kind == "qconvt"]
    assert step.params["G"] == 2 and len(step.params["mult_v"]) == 10 and len(step.params["wzp_v"]) == 10
    unit = emit(program, "grp_decoder", {"graph": dst.name, "sha256": "0" * 64, "role": "decoder",
                                         "precision": "int8-static", "version": "test", "code_size": 36})
    (tmp_path / "grp_decoder.h").write_text(unit.header)
    (tmp_path / "grp_decoder.c").write_text(unit.source)
    got = run_harness(build_harness(unit, tmp_path), unit, [x])[0]
    want = run_reference(program, [x])[0]
    np.testing.assert_array_equal(got, want)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    graph_out = ort.InferenceSession(str(dst), opts, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.mean(want.reshape(graph_out.shape) == graph_out) > 0.97


def _cpu_has(flag: str) -> bool:
    try:
        return flag in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


@pytest.mark.skipif(not (_cpu_has("fma") and _cpu_has("avx2")), reason="the FMA tiles need an x86 CPU with AVX2 + FMA")
def test_fp32_fma_tiles_compute_what_the_baseline_computes(tmp_path):
    """A -mavx2 -mfma build (as -march=native gives on such a CPU) takes the 8-channel FMA tile
    and a NO_VECTOR build the scalar one (a Cortex-M's)
    of the fp32 convolutions (16 and 12 output channels: two tiles and a rest of 4; then a
    transposed convolution, whose scalar form gathers by phase). Built as ISO
    C (-std=c99: no contraction of a multiply and an add) it keeps the baseline tile's terms in
    their order, so its outputs are the plain -O2 build's, bit for bit."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgeae.codegen.emit import emit
    from edgeae.codegen.lower_fp32 import lower_fp32

    rng = np.random.default_rng(5)

    def c(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32),
                                       name)

    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["a"], ["r"]),
         helper.make_node("Conv", ["r", "w2", "b2"], ["h"], strides=[2, 2], pads=[1, 1, 1, 1]),
         helper.make_node("ConvTranspose", ["h", "w3", "b3"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1],
                          output_padding=[1, 1])], "enc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, 9, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 10, 10])],
        [c("w1", 16, 2, 3, 3), c("b1", 16), c("w2", 12, 16, 3, 3), c("b2", 12), c("w3", 12, 4, 3, 3), c("b3", 4)])
    path = tmp_path / "enc.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    unit = emit(lower_fp32(load_graph(path, "encoder")), "fma_encoder",
                {"graph": path.name, "sha256": "0" * 64, "role": "encoder", "precision": "fp32", "version": "test",
                 "code_size": 400})
    (tmp_path / f"{unit.name}.h").write_text(unit.header)
    (tmp_path / f"{unit.name}.c").write_text(unit.source)
    x = rng.standard_normal((16, 2 * 9 * 9)).astype(np.float32)
    base = run_harness(build_harness(unit, tmp_path, flags=["-O2"], tag="base"), unit, [x])[0]
    fma = run_harness(build_harness(unit, tmp_path, flags=["-O2", "-mavx2", "-mfma"], tag="fma"), unit, [x])[0]
    np.testing.assert_array_equal(fma, base)
    # the scalar tiles (Cortex-M, or any build with <UNIT>_NO_VECTOR): the same terms in the same order
    plain = run_harness(build_harness(unit, tmp_path, flags=["-O2", "-DFMA_ENCODER_NO_VECTOR"], tag="plain"), unit,
                        [x])[0]
    np.testing.assert_array_equal(plain, base)
    assert "FMA_ENCODER_NO_VECTOR" in unit.source  # the knob is the unit's upper-case name, as documented
