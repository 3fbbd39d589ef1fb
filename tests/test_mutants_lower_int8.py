"""The int8 lowering (edgeae.codegen.lower_int8) checked without a C compiler.

The generated C is held to the integer reference bit for bit, so a lowering bug (a wrong
multiplier, zero point, padding, weight layout or clamp) that the C and the reference share
would pass every C check. Here each lowered program runs in the reference and is compared
with ONNX Runtime running the QDQ graph itself, within the bound two correct evaluations
of that graph can differ by (one step where a value sits on a rounding tie, nothing
elsewhere), on graphs quantized by ONNX Runtime's own quantizer in every type combination.
The refusals are pinned word for word: they are what a user reads from `edgeae codegen`.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeae.codegen.conv_layout import conv_column, convt_phase_matrices
from edgeae.codegen.graph import UnsupportedOpError, load_graph
from edgeae.codegen.lower_int8 import lower_int8, multiplier, rows_by_four
from edgeae.codegen.program import Program
from edgeae.codegen.reference import requantize, run_reference
from edgeae.numerics import compare_bounded, deviation_bounds
from tests._codegen_bundles import quantize_qdq

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime.quantization")


def _float_model(nodes, inits, in_shape, out_shape, opset=17):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              [numpy_helper.from_array(np.asarray(v, np.float32 if np.asarray(v).dtype.kind == "f"
                                                                  else np.asarray(v).dtype), k)
                               for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _w(rng, *shape):
    return (rng.normal(size=shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


def _quantize(tmp_path, model, x, act="QUInt8", weight="QInt8", per_channel=True, symmetric=True, name="g"):
    src = tmp_path / f"{name}.onnx"
    onnx.save_model(model, str(src))
    return quantize_qdq(src, tmp_path / f"{name}.qdq.onnx", x, act, weight, per_channel, symmetric)


def _upto(program, i, out):
    """The program's steps up to ``i`` (inclusive), with ``out`` as its one output."""
    return Program(program.precision, program.buffers, program.steps[:i + 1], program.inputs, [out], program.consts)


def _as_c_reads_it(program, step, xq):
    """A dense or conv step computed from what the C kernel reads: the stored (rows-by-four)
    weights, the bias with the input zero point folded in, raw input codes (padding holding
    the input zero point), the weight zero points as stored (or none), mult and shift."""
    q, c = step.params, program.consts
    G = q.get("G", 1)
    bias = c[q["bias"]].astype(np.int64)
    n_out = len(bias)
    wzp = np.zeros(n_out, np.int64) if q["wzp"] is None else c[q["wzp"]].astype(np.int64)
    k = c[q["w"]].size // n_out
    order = rows_by_four(np.arange(n_out * k).reshape(n_out, k), G)
    w = np.empty(n_out * k, np.int64)
    w[order] = c[q["w"]]
    w = w.reshape(n_out, k) - wzp[:, None]
    x = xq.astype(np.int64)
    if step.kind == "qdense":
        acc = x @ w.T + bias
    else:
        C, H, W, M, OH, OW = (q[key] for key in ("C", "H", "W", "M", "OH", "OW"))
        KH, KW, SH, SW, PT, PL, DH, DW = (q[key] for key in ("KH", "KW", "SH", "SW", "PT", "PL", "DH", "DW"))
        pad = np.full((len(x), C, H + PT + OH * SH + KH * DH, W + PL + OW * SW + KW * DW), q["xzp"], np.int64)
        pad[:, :, PT:PT + H, PL:PL + W] = x.reshape(len(x), C, H, W)
        acc = np.zeros((len(x), M, OH, OW), np.int64)
        cg, mg = C // G, M // G
        for oy in range(OH):
            for ox in range(OW):
                win = pad[:, :, oy * SH:oy * SH + KH * DH:DH, ox * SW:ox * SW + KW * DW:DW]  # (n, C, KH, KW)
                for g in range(G):
                    col = win[:, g * cg:(g + 1) * cg].reshape(len(x), -1)
                    acc[:, g * mg:(g + 1) * mg, oy, ox] = col @ w[g * mg:(g + 1) * mg].T
        acc = (acc + bias[None, :, None, None]).reshape(len(x), M, -1)
        v = q["yzp"] + requantize(acc, c[q["mult"]].reshape(1, M, 1), c[q["shift"]].reshape(1, M, 1))
        return np.clip(v, q["lo"], q["hi"]).reshape(len(x), -1)
    v = q["yzp"] + requantize(acc, c[q["mult"]][None, :], c[q["shift"]][None, :])
    return np.clip(v, q["lo"], q["hi"])


def _agrees(path, x):
    """Lower ``path``, run the program in the reference and the graph in ONNX Runtime
    (unoptimized: the graph's own QDQ semantics); each dense and conv step also as the C
    kernel reads its constants. Returns the program."""
    program = lower_int8(load_graph(path, "g"))
    for i, step in enumerate(program.steps):
        if step.kind in ("qdense", "qconv", "qconvt"):  # the C types of the constants
            c, q = program.consts, step.params
            assert [c[q[k]].dtype.name for k in ("bias", "mult", "shift")] == ["int32"] * 3
            assert q["wzp"] is None or c[q["wzp"]].dtype.name == "int32"
            assert c[q["w"]].dtype.name in ("int8", "uint8") and q["bias_v"].dtype.name == "int32"
        if step.kind in ("qdense", "qconv"):
            (xq,) = run_reference(_upto(program, i - 1, step.reads[0]), [x])
            (yq,) = run_reference(_upto(program, i, step.writes[0]), [x])
            np.testing.assert_array_equal(_as_c_reads_it(program, step, xq), yq.astype(np.int64))
        if step.kind == "qconvt":  # one rows-by-four matrix per group and phase, then its column
            want = np.concatenate([rows_by_four(m) for m in convt_phase_matrices(step.params["w_v"], step.params)])
            np.testing.assert_array_equal(program.consts[step.params["w"]], want)
            assert len(step.writes) == 2 and program.buffers[step.writes[1]].dtype == "int16"
            assert program.buffers[step.writes[1]].shape == (conv_column(step.params, True),)
        if step.kind in ("qdense", "qconv"):
            col = step.writes[1] if step.kind == "qconv" else None
            assert step.writes == [step.writes[0], *([col] if col else [])]
            if col:
                assert program.buffers[col].dtype == "int16" and program.buffers[col].shape == (
                    conv_column(step.params, False),)
    (got,) = run_reference(program, [x])
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    bound = deviation_bounds(onnx.load(str(path)), x).bounds["y"]
    err, share, over = compare_bounded(got.reshape(want.shape), want, bound)
    assert over == 0 and share <= 1, (path.name, err, share, over)
    exact = np.mean(got.reshape(want.shape) == want)
    assert exact > 0.97, exact  # ties are rare: nearly every element is the same number
    return program


_TYPES = [("QUInt8", "QInt8", True, True), ("QUInt8", "QUInt8", True, False), ("QInt8", "QInt8", False, True),
          ("QInt8", "QInt8", True, False)]


def _dense_model(rng, relu=True, bias=True, gemm=True):
    w = _w(rng, 6, 10)
    if gemm:
        node = helper.make_node("Gemm", ["x", "w", "b"] if bias else ["x", "w"], ["h"], transB=1, name="fc")
        inits = {"w": w, "b": rng.normal(size=6).astype(np.float32)} if bias else {"w": w}
    else:
        node = helper.make_node("MatMul", ["x", "w"], ["h"], name="fc")
        inits = {"w": w.T.copy()}
    nodes = [node, helper.make_node("Relu" if relu else "Sigmoid", ["h"], ["y"])]
    return _float_model(nodes, inits, [None, 10], [None, 6])


@pytest.mark.parametrize("act, weight, per_channel, symmetric", _TYPES)
@pytest.mark.parametrize("relu, bias, gemm", [(True, True, True), (False, False, False), (True, False, True)])
def test_dense_lowering_computes_the_graph(tmp_path, act, weight, per_channel, symmetric, relu, bias, gemm):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 10)).astype(np.float32)
    path = _quantize(tmp_path, _dense_model(rng, relu, bias, gemm), x, act, weight, per_channel, symmetric)
    program = _agrees(path, x)
    (step,) = [s for s in program.steps if s.kind == "qdense"]
    assert step.params["K"] == 10 and step.params["N"] == 6


def _conv_model(rng, C, M, k, in_hw, group=1, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), transpose=False,
                output_padding=None):
    attrs = {"kernel_shape": list(k), "strides": list(strides), "pads": list(pads), "dilations": list(dilations)}
    if group != 1:  # else left to its default
        attrs["group"] = group
    if transpose:
        w = _w(rng, C, M // group, *k)
        if output_padding:
            attrs["output_padding"] = list(output_padding)
    else:
        w = _w(rng, M, C // group, *k)
    node = helper.make_node("ConvTranspose" if transpose else "Conv", ["x", "w", "b"], ["h"], name="conv", **attrs)
    probe = _float_model([node, helper.make_node("Relu", ["h"], ["y"])],
                         {"w": w, "b": rng.normal(size=M).astype(np.float32) * 0.1}, [None, C, *in_hw], None)
    shape = onnx.shape_inference.infer_shapes(probe).graph.value_info
    out = [d.dim_value or None for d in next(v for v in shape if v.name == "h").type.tensor_type.shape.dim]
    return _float_model([node, helper.make_node("Relu", ["h"], ["y"])],
                        {"w": w, "b": rng.normal(size=M).astype(np.float32) * 0.1}, [None, C, *in_hw], out)


_CONVS = {
    "plain": dict(C=3, M=5, k=(3, 3), in_hw=(7, 6)),
    "strided_padded": dict(C=2, M=6, k=(3, 2), in_hw=(9, 8), strides=(2, 3), pads=(1, 0, 2, 1)),
    "dilated": dict(C=3, M=4, k=(2, 3), in_hw=(8, 9), dilations=(2, 2), pads=(1, 1, 1, 1)),
    "grouped": dict(C=4, M=6, k=(3, 3), in_hw=(6, 6), group=2, pads=(1, 1, 1, 1)),
    "depthwise": dict(C=4, M=4, k=(3, 3), in_hw=(5, 7), group=4, strides=(2, 2)),
    "one_d": dict(C=3, M=5, k=(1, 5), in_hw=(1, 20), strides=(1, 2), pads=(0, 2, 0, 1)),
}
_CONVTS = {
    "plain": dict(C=3, M=4, k=(3, 3), in_hw=(4, 5)),
    "strided": dict(C=4, M=3, k=(3, 3), in_hw=(4, 4), strides=(2, 2), pads=(1, 1, 1, 1), output_padding=(1, 1)),
    "unequal": dict(C=2, M=5, k=(2, 4), in_hw=(3, 5), strides=(3, 2), pads=(0, 1, 1, 0)),
    "grouped": dict(C=4, M=6, k=(3, 3), in_hw=(3, 3), group=2, strides=(2, 2)),
    "dilated": dict(C=3, M=2, k=(2, 2), in_hw=(4, 4), dilations=(2, 3)),
}


@pytest.mark.parametrize("case", sorted(_CONVS))
@pytest.mark.parametrize("types", [_TYPES[0], _TYPES[1], _TYPES[2]])
def test_conv_lowering_computes_the_graph(tmp_path, case, types):
    rng = np.random.default_rng(2)
    p = _CONVS[case]
    x = rng.normal(size=(32, p["C"], *p["in_hw"])).astype(np.float32)
    path = _quantize(tmp_path, _conv_model(rng, **p), x, *types)
    program = _agrees(path, x)
    (step,) = [s for s in program.steps if s.kind == "qconv"]
    q = step.params
    assert (q["C"], q["M"], q["G"], q["KH"], q["KW"]) == (p["C"], p["M"], p.get("group", 1), *p["k"])


@pytest.mark.parametrize("case", sorted(_CONVTS))
@pytest.mark.parametrize("types", [_TYPES[0], _TYPES[1], _TYPES[2]])
def test_conv_transpose_lowering_computes_the_graph(tmp_path, case, types):
    rng = np.random.default_rng(3)
    p = _CONVTS[case]
    x = rng.normal(size=(32, p["C"], *p["in_hw"])).astype(np.float32)
    if "group" in p:  # ONNX Runtime's quantizer has no per-channel scales for a grouped ConvTranspose
        types = (*types[:2], False, types[3])
    path = _quantize(tmp_path, _conv_model(rng, transpose=True, **p), x, *types)
    program = _agrees(path, x)
    (step,) = [s for s in program.steps if s.kind == "qconvt"]
    assert (step.params["C"], step.params["M"], step.params["G"]) == (p["C"], p["M"], p.get("group", 1))


def test_a_chain_with_reshapes_and_a_table_computes_the_graph(tmp_path):
    """Conv -> Relu -> Conv -> Flatten -> Gemm -> Sigmoid: the steps run in order, Flatten is a view."""
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="c1"),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], strides=[2, 2], name="c2"),
             helper.make_node("Flatten", ["c2"], ["f"]),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["h"], transB=1, name="fc"),
             helper.make_node("Sigmoid", ["h"], ["y"])]
    inits = {"w1": _w(rng, 4, 1, 3, 3), "b1": np.zeros(4), "w2": _w(rng, 3, 4, 3, 3), "b2": rng.normal(size=3) * 0.1,
             "w3": _w(rng, 5, 27), "b3": rng.normal(size=5)}
    x = rng.normal(size=(48, 1, 8, 8)).astype(np.float32)
    path = _quantize(tmp_path, _float_model(nodes, inits, [None, 1, 8, 8], [None, 5]), x)
    program = _agrees(path, x)
    kinds = [s.kind for s in program.steps]
    assert kinds[0] == "quantize" and kinds[1:4] == ["qconv", "qconv", "qdense"]
    assert kinds[4:] in (["lut"], ["lut", "dequantize"], ["dequantize"])
    assert program.steps[1].params["lo"] == program.steps[1].params["yzp"] or program.steps[1].params["lo"] == 0


# ------------------------------------------------------------------ multiplier, rows_by_four

@pytest.mark.parametrize("real, want", [(0.5, (1 << 30, 31)), (1.0, (1 << 30, 30)), (0.75, (3 << 29, 31)),
                                        (2.0 ** -32, (1 << 30, 62)), (2.0 ** 30 * 0.75, (3 << 29, 1)),
                                        (1 - 2 ** -40, (1 << 30, 30)), (0.0, (0, 1)), (2.0 ** -32 * 0.999, (0, 1)),
                                        (2.0 ** -33, (0, 1)), (1.5 * 2.0 ** -32, (3 << 29, 62))])
def test_multiplier_edges(real, want):
    assert multiplier(real) == want


@pytest.mark.parametrize("real", [-1e-9, float("nan"), float("inf")])
def test_multiplier_refuses_what_is_not_a_scale(real):
    with pytest.raises(UnsupportedOpError, match=rf"^requantization multiplier {real} must be a finite number >= 0$"):
        multiplier(real)


@pytest.mark.parametrize("real", [2.0 ** 30, 2.0 ** 31 * 0.99])
def test_multiplier_refuses_scales_out_of_range(real):
    with pytest.raises(UnsupportedOpError, match=r"out of the supported range 0 \.\. 2\^30$"):
        multiplier(real)


@pytest.mark.parametrize("n, k, groups", [(8, 12, 1), (6, 10, 1), (3, 5, 1), (12, 7, 3), (8, 4, 2), (5, 3, 1),
                                          (4, 25, 1), (8, 26, 2)])
def test_rows_by_four_is_the_documented_walk(n, k, groups):
    w = np.arange(n * k, dtype=np.int32).reshape(n, k)
    want = []
    for rows in np.split(w, groups):
        n4 = len(rows) // 4 * 4
        for r in range(0, n4, 4):
            for b in range(k // 4):
                for j in range(4):
                    want.extend(rows[r + j, 4 * b:4 * b + 4])
            for j in range(4):
                want.extend(rows[r + j, k // 4 * 4:])
        for j in range(n4, len(rows)):
            want.extend(rows[j])
    got = rows_by_four(w, groups)
    assert got.dtype == w.dtype and got.flags.c_contiguous
    assert got.tolist() == want


# ------------------------------------------------------------------ refusals

def _qdq_dense(tmp_path, *, x_shape=(None, 10), weight=None, w_dtype=np.int8, gemm_attrs=None, out_zp=None, bias=None,
               act_scale=0.02, w_scale=None, w_axis=None, sy=0.05, relu=False, name="q"):
    """x -> Q -> DQ -> Gemm(DQ(w)) [-> Relu] -> Q -> DQ -> y, written by hand."""
    rng = np.random.default_rng(5)
    out_zp, act_scale, sy = np.uint8(0) if out_zp is None else out_zp, np.float32(act_scale), np.float32(sy)
    w = rng.integers(-20, 20, size=(6, 10)).astype(w_dtype) if weight is None else weight
    inits = {"sx": act_scale, "zx": np.uint8(128), "w": w,
             "sw": np.float32(0.01) if w_scale is None else w_scale, "zw": np.zeros_like(
                 np.float32(0.01) if w_scale is None else w_scale, w.dtype),
             "sy": sy, "zy": out_zp}
    dq_w = helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"], **({} if w_axis is None else {"axis": w_axis}))
    gin = ["xd", "wd"] + (["b"] if bias is not None else [])
    if bias is not None:
        inits["b"] = bias
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]), dq_w,
             helper.make_node("Gemm", gin, ["h"], name="fc", transB=1, **(gemm_attrs or {}))]
    h = "h"
    if relu:
        nodes.append(helper.make_node("Relu", ["h"], ["hr"]))
        h = "hr"
    nodes += [helper.make_node("QuantizeLinear", [h, "sy", "zy"], ["yq"], name="q_out"),
              helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 6])],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    path = tmp_path / f"{name}.onnx"
    onnx.save_model(m, str(path))
    return path


def _refused(path, message):
    with pytest.raises(UnsupportedOpError) as e:
        lower_int8(load_graph(path, "g"))
    assert str(e.value) == message


def test_a_hand_written_qdq_dense_lowers_exactly(tmp_path):
    x = np.random.default_rng(6).normal(size=(40, 10)).astype(np.float32)
    for relu in (False, True):
        program = _agrees(_qdq_dense(tmp_path, relu=relu, bias=np.arange(6, dtype=np.float32) * 0.01,
                                     name=f"d{relu}"), x)
        (step,) = [s for s in program.steps if s.kind == "qdense"]
        q = step.params
        assert q["xzp"] == 128 and q["yzp"] == 0 and q["hi"] == 255 and q["lo"] == 0
        assert q["mult_v"].tolist() == [multiplier(float(np.float64(np.float32(0.02)) * float(np.float32(0.01))
                                                         / float(np.float32(0.05))))[0]] * 6
        # a float bias is quantized at sx * sw, the input zero point folded in
        wsum = q["w_v"].astype(np.int64).sum(axis=1)
        assert q["bias_v"].tolist() == (np.rint(np.arange(6) * 0.01 / (np.float64(np.float32(0.02)) *
                                                                       np.float32(0.01))) - 128 * wsum).tolist()


def test_relu_clamps_at_the_output_zero_point(tmp_path):
    path = _qdq_dense(tmp_path, relu=True, out_zp=np.int8(-20), name="r")
    (step,) = [s for s in lower_int8(load_graph(path, "g")).steps if s.kind == "qdense"]
    assert (step.params["lo"], step.params["hi"], step.params["yzp"]) == (-20, 127, -20)
    assert step.node == "fc + Relu -> q_out"
    path = _qdq_dense(tmp_path, relu=False, out_zp=np.int8(-20), name="n")
    (step,) = [s for s in lower_int8(load_graph(path, "g")).steps if s.kind == "qdense"]
    assert (step.params["lo"], step.params["hi"]) == (-128, 127)


def test_refusals_name_the_node_and_what_to_do(tmp_path):
    _refused(_qdq_dense(tmp_path, x_shape=(10, 1), gemm_attrs={"transA": 1}, name="ta"),
             "Gemm node 'fc': transA=1 is not supported")
    _refused(_qdq_dense(tmp_path, gemm_attrs={"alpha": 0.5}, name="al"),
             "Gemm node 'fc': alpha/beta other than 1 are not supported in int8")
    _refused(_qdq_dense(tmp_path, gemm_attrs={"beta": 2.0}, bias=np.zeros(6, np.float32), name="be"),
             "Gemm node 'fc': alpha/beta other than 1 are not supported in int8")
    _refused(_qdq_dense(tmp_path, out_zp=np.uint16(0), name="u16"),
             "QuantizeLinear node 'q_out': output type uint16 is not 8-bit")
    _refused(_qdq_dense(tmp_path, weight=np.ones((6, 10), np.int16) * 3, w_dtype=np.int16, name="w16"),
             "Gemm node 'fc': weights int16 / activations uint8 must be uint8 or int8")
    _refused(_qdq_dense(tmp_path, w_scale=np.full(10, 0.01, np.float32), w_axis=1, name="ax"),
             "Gemm node 'fc': weight scales must be per tensor or per output channel (axis 0), got 10 along axis 1")
    _refused(_qdq_dense(tmp_path, act_scale=np.float32(2.0 ** 20), sy=np.float32(2.0 ** -20), w_scale=np.float32(1),
                        name="big"),
             f"requantization multiplier {2.0 ** 40} is out of the supported range 0 .. 2^30")


def test_an_accumulator_that_could_overflow_is_refused(tmp_path):
    k = 70000
    w = np.full((1, k), 127, np.int8)
    path = _qdq_dense(tmp_path, weight=w, name="wide")
    m = onnx.load(str(path))
    for vi in (*m.graph.input, *m.graph.output):
        vi.type.tensor_type.shape.dim[1].dim_value = k if vi.name == "x" else 1
    onnx.save_model(m, str(path))
    with pytest.raises(UnsupportedOpError, match=r"^Gemm node 'fc': the int32 accumulator could overflow \(bound \d+\)$"):
        lower_int8(load_graph(path, "g"))


def _with_nodes(path, m, nodes):
    """Save ``m`` to ``path`` with ``nodes`` as its graph's nodes."""
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    onnx.save_model(m, str(path))


def test_a_float_weight_in_an_int8_graph_is_refused(tmp_path):
    path = _qdq_dense(tmp_path, name="fw")
    m = onnx.load(str(path))
    nodes = [n for n in m.graph.node if n.output[0] != "wd"]
    for n in nodes:
        n.input[:] = ["wf" if i == "wd" else i for i in n.input]
    m.graph.initializer.append(numpy_helper.from_array(np.ones((6, 10), np.float32), "wf"))
    _with_nodes(path, m, nodes)
    _refused(path, "Gemm node 'fc': weight 'wf' is float in an int8 graph; "
                   "the C generator needs QDQ weights (quantize_static, QDQ format)")


def test_a_float_activation_in_an_int8_graph_is_refused(tmp_path):
    path = _qdq_dense(tmp_path, name="fa")
    m = onnx.load(str(path))
    for n in m.graph.node:
        if n.op_type == "Gemm":
            n.input[0] = "x"
    onnx.save_model(m, str(path))
    _refused(path, "Gemm node 'fc': data input 'x' does not come from a DequantizeLinear of a quantized tensor; "
                   "the C generator lowers QDQ int8 graphs only")


def test_a_compute_node_must_close_with_a_quantizer(tmp_path):
    path = _qdq_dense(tmp_path, name="open")
    m = onnx.load(str(path))
    nodes = [n for n in m.graph.node if n.output[0] not in ("yq", "y")]
    nodes.append(helper.make_node("Sigmoid", ["h"], ["y"]))
    _with_nodes(path, m, nodes)
    _refused(path, "Gemm node 'fc': its output must feed one QuantizeLinear (QDQ format); it feeds ['Sigmoid']")


def _hand(tmp_path, name, nodes, inits, x_shape=(None, 10), y_shape=(None, 6), opset=21):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y_shape))],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    path = tmp_path / f"{name}.onnx"
    onnx.save_model(m, str(path))
    return path


def _hand_inits(rng, n=6, k=10, per_channel=False):
    return {"sx": np.float32(0.02), "zx": np.uint8(128), "w": rng.integers(-60, 60, size=(k, n)).astype(np.int8),
            "sw": (0.01 * (1 + np.arange(n) / 10)).astype(np.float32) if per_channel else np.float32(0.01),
            "zw": np.zeros(n if per_channel else (), np.int8), "sy": np.float32(0.05), "zy": np.uint8(10)}


def _x_in(*names):  # x -> Q -> DQ -> names[0]
    return [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], [names[0] if names else "xd"])]


def _y_out(h="h"):
    return [helper.make_node("QuantizeLinear", [h, "sy", "zy"], ["yq"], name="q_out"),
            helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["y"])]


def test_zero_points_left_out_are_zero(tmp_path):
    """DequantizeLinear / QuantizeLinear without a zero point input (it defaults to 0)."""
    rng = np.random.default_rng(8)
    inits = _hand_inits(rng)
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx"], ["xq"]), helper.make_node("DequantizeLinear", ["xq", "sx"],
                                                                                        ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "sw"], ["wd"]),
             helper.make_node("MatMul", ["xd", "wd"], ["h"], name="mm"),
             helper.make_node("QuantizeLinear", ["h", "sy"], ["yq"], name="q_out"),
             helper.make_node("DequantizeLinear", ["yq", "sy"], ["y"])]
    x = rng.normal(size=(40, 10)).astype(np.float32)
    program = _agrees(_hand(tmp_path, "nozp", nodes, inits), x)
    (step,) = [s for s in program.steps if s.kind == "qdense"]
    assert step.params["xzp"] == 0 and step.params["wzp"] is None and step.params["yzp"] == 0
    assert program.buffers[step.writes[0]].dtype == "uint8" and step.node == "mm -> q_out"


@pytest.mark.parametrize("axis", [None, 1, -1])
@pytest.mark.parametrize("n", [2, 6])
def test_per_channel_weight_scales_along_the_output_axis(tmp_path, axis, n):
    """MatMul's weight (K, N) is per channel along axis 1 (the default), or -1."""
    rng = np.random.default_rng(9)
    inits = _hand_inits(rng, n=n, per_channel=True)
    nodes = [*_x_in(), helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"],
                                        **({} if axis is None else {"axis": axis})),
             helper.make_node("MatMul", ["xd", "wd"], ["h"], name="mm"), *_y_out()]
    x = rng.normal(size=(40, 10)).astype(np.float32)
    program = _agrees(_hand(tmp_path, f"pc{axis}{n}", nodes, inits, y_shape=(None, n)), x)
    (step,) = [s for s in program.steps if s.kind == "qdense"]
    assert len(set(step.params["mult_v"].tolist())) == n


def test_gemm_without_trans_b_and_a_reshape_before_it(tmp_path):
    """Gemm(transB=0) reads a (K, N) weight; a Reshape between the DequantizeLinear and the Gemm is a view."""
    rng = np.random.default_rng(10)
    inits = {**_hand_inits(rng), "shape": np.array([-1, 10], np.int64)}
    nodes = [*_x_in("xd4"), helper.make_node("Reshape", ["xd4", "shape"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"]),
             helper.make_node("Gemm", ["xd", "wd"], ["h"], name="fc"), *_y_out()]
    x = rng.normal(size=(40, 2, 5)).astype(np.float32)
    _agrees(_hand(tmp_path, "gemm", nodes, inits, x_shape=(None, 2, 5)), x)


def test_a_bias_at_another_scale_or_zero_point_is_requantized(tmp_path):
    """A bias whose DequantizeLinear is not at sx * sw with zero point 0 is re-quantized from its
    real value; one that is, is taken as it is."""
    rng = np.random.default_rng(11)
    inits = _hand_inits(rng)
    acc_scale = np.float64(np.float32(0.02) * np.float32(0.01))
    for label, bs, bz, want in (
            ("same", np.float32(0.02) * np.float32(0.01), 0, [7, -3, 0, 250, -250, 1]),
            ("scaled", np.float32(0.001), 0, np.rint(np.array([7, -3, 0, 250, -250, 1]) * np.float64(np.float32(0.001))
                                                     / acc_scale)),
            ("offset", np.float32(0.02) * np.float32(0.01), 5,
             np.rint((np.array([7, -3, 0, 250, -250, 1]) - 5) * np.float64(np.float32(0.02) * np.float32(0.01))
                     / acc_scale))):
        b = {"bq": np.array([7, -3, 0, 250, -250, 1], np.int32), "bs": np.float32(bs), "bz": np.int32(bz)}
        nodes = [*_x_in(), helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"]),
                 helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"]),
                 helper.make_node("Gemm", ["xd", "wd", "bd"], ["h"], name="fc"), *_y_out()]
        program = lower_int8(load_graph(_hand(tmp_path, label, nodes, {**inits, **b}), "g"))
        (step,) = [s for s in program.steps if s.kind == "qdense"]
        assert step.params["bias_q_v"].tolist() == np.asarray(want, np.int64).tolist(), label


def test_refusals_of_weights_and_inputs_that_are_not_quantized_constants(tmp_path):
    rng = np.random.default_rng(12)
    inits = {**_hand_inits(rng), "wf": np.ones((10, 6), np.float32)}
    mm = helper.make_node("MatMul", ["xd", "wd"], ["h"], name="mm")
    _refused(_hand(tmp_path, "idw", [*_x_in(), helper.make_node("Identity", ["wf"], ["wd"]), mm, *_y_out()], inits),
             "MatMul node 'mm': input 'wd' is not a dequantized constant")
    _refused(_hand(tmp_path, "qw", [*_x_in(), helper.make_node("QuantizeLinear", ["wf", "sw", "zw"], ["wq"]),
                                    helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["wd"]), mm, *_y_out()],
                   inits),
             "MatMul node 'mm': input 'wd' is not a dequantized constant")
    dq_w = helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"])
    _refused(_hand(tmp_path, "bias", [*_x_in(), dq_w, helper.make_node("Gemm", ["xd", "wd", "xb"], ["h"], name="fc"),
                                      helper.make_node("Slice", ["x", "s0", "s6", "s1"], ["xb"]), *_y_out()],
                   {**inits, "s0": np.array([0]), "s6": np.array([6]), "s1": np.array([1])}),
             "Gemm node 'fc': bias 'xb' must be constant")
    pc = {**inits, "sx": np.full(10, 0.02, np.float32), "zx": np.full(10, 128, np.uint8)}
    _refused(_hand(tmp_path, "pca", [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"], axis=1),
                                     helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"], axis=1),
                                     dq_w, mm, *_y_out()], pc),
             "MatMul node 'mm': activations quantized per channel are not supported")
    pc = {**inits, "sx": np.full(10, 0.02, np.float32)}
    _refused(_hand(tmp_path, "pcn", [helper.make_node("QuantizeLinear", ["x", "sx"], ["xq"], axis=1),
                                     helper.make_node("DequantizeLinear", ["xq", "sx"], ["xd"], axis=1),
                                     dq_w, mm, *_y_out()], pc),
             "MatMul node 'mm': activations quantized per channel are not supported")


def test_a_compute_output_that_is_a_graph_output_is_refused(tmp_path):
    rng = np.random.default_rng(13)
    inits = _hand_inits(rng)
    dq_w = helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"])
    _refused(_hand(tmp_path, "out", [*_x_in(), dq_w, helper.make_node("MatMul", ["xd", "wd"], ["y"], name="mm")], inits),
             "MatMul node 'mm': its output must feed one QuantizeLinear (QDQ format); it feeds a graph output")
    _refused(_hand(tmp_path, "relu", [*_x_in(), dq_w, helper.make_node("MatMul", ["xd", "wd"], ["h"], name="mm"),
                                      helper.make_node("Relu", ["h"], ["y"])], inits),
             "MatMul node 'mm': its output must feed one QuantizeLinear (QDQ format); it feeds a graph output")


def test_an_unsupported_element_type_is_named(tmp_path):
    graph = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.INT32, [None, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])])
    path = tmp_path / "i32.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    _refused(path, "tensor 'x' has element type int32; C code handles float32, uint8, int8")


def test_the_program_is_int8_with_its_graph_inputs_and_outputs(tmp_path):
    path = _qdq_dense(tmp_path, name="io")
    program = lower_int8(load_graph(path, "g"))
    assert program.precision == "int8-static"
    assert (program.inputs, program.outputs) == (["x"], ["y"])
    assert (program.buffers["x"].kind, program.buffers["x"].dtype, program.buffers["x"].shape) == ("input", "float32",
                                                                                                  (1, 10))
    assert (program.buffers["y"].kind, program.buffers["y"].dtype, program.buffers["y"].shape) == ("output", "float32",
                                                                                                  (1, 6))


def _overflow_graph(tmp_path, name, B, convt=False):
    """uint8 input (zero point 128), int8 weights of +-1 (their rows sum to 0), and an int32
    bias B at scale sx * sw: the accumulator bound is 97,920 * K + |B| for a dense layer
    (2 K 255 128 for the raw products and their zero-point sums, K 255 128 for the input zero
    point) and 32,768 * taps + |B| for a transposed convolution."""
    sx, sw = np.float32(0.02), np.float32(0.01)
    inits = {"sx": sx, "zx": np.uint8(128), "sw": sw, "zw": np.int8(0), "sy": np.float32(0.05), "zy": np.uint8(0),
             "bq": np.full(1, B, np.int32), "bs": np.float32(sx * sw), "bz": np.int32(0)}
    if convt:
        inits["w"] = np.where(np.arange(100) % 2, 1, -1).astype(np.int8).reshape(100, 1, 1, 1)
        op = helper.make_node("ConvTranspose", ["xd", "wd", "bd"], ["h"], name="up", kernel_shape=[1, 1])
        shapes = (None, 100, 1, 1), (None, 1, 1, 1)
    else:
        inits["w"] = np.where(np.arange(1000) % 2, 1, -1).astype(np.int8).reshape(1, 1000)
        op = helper.make_node("Gemm", ["xd", "wd", "bd"], ["h"], name="fc", transB=1)
        shapes = (None, 1000), (None, 1)
    nodes = [*_x_in(), helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"]),
             helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"]), op, *_y_out()]
    return _hand(tmp_path, name, nodes, inits, *shapes)


@pytest.mark.parametrize("convt, per_k", [(False, 97_920_000), (True, 3_276_800)])
def test_the_accumulator_bound_is_refused_from_2_to_the_31(tmp_path, convt, per_k):
    largest = 2 ** 31 - 1 - per_k
    for B in (largest, -largest):
        program = lower_int8(load_graph(_overflow_graph(tmp_path, f"ok{B}", B, convt), "g"))
        (step,) = [s for s in program.steps if s.kind in ("qdense", "qconvt")]
        assert step.params["bias_q_v"].tolist() == [B]
    for B in (largest + 1, -largest - 1):
        what = "ConvTranspose node 'up'" if convt else "Gemm node 'fc'"
        _refused(_overflow_graph(tmp_path, f"no{B}", B, convt),
                 f"{what}: the int32 accumulator could overflow (bound {2 ** 31})")


def test_weight_scales_along_another_axis_or_of_another_count_are_refused(tmp_path):
    rng = np.random.default_rng(14)
    for label, n, k, scales, axis in (("axis", 2, 2, 2, 1), ("count", 6, 10, 3, 0)):
        inits = {**_hand_inits(rng, n=n, k=k), "w": rng.integers(-9, 9, size=(n, k)).astype(np.int8),
                 "sw": np.full(scales, 0.01, np.float32), "zw": np.zeros(scales, np.int8)}
        nodes = [*_x_in(), helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"], axis=axis),
                 helper.make_node("Gemm", ["xd", "wd"], ["h"], name="fc", transB=1), *_y_out()]
        _refused(_hand(tmp_path, label, nodes, inits, x_shape=(None, k), y_shape=(None, n)),
                 "Gemm node 'fc': weight scales must be per tensor or per output channel (axis 0), "
                 f"got {scales} along axis {axis}")


def test_what_is_not_part_of_a_group_is_refused_and_what_nothing_reads_is_ignored(tmp_path):
    rng = np.random.default_rng(15)
    inits = _hand_inits(rng)
    dq_w = helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"])
    mm = helper.make_node("MatMul", ["xd", "wd"], ["h"], name="mm")
    x = rng.normal(size=(20, 10)).astype(np.float32)
    dead = [*_x_in(), dq_w, helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["unused"], name="spare"), mm,
            *_y_out()]
    assert [s.kind for s in _agrees(_hand(tmp_path, "dead", dead, inits), x).steps] == ["quantize", "qdense",
                                                                                        "dequantize"]
    left = [*_x_in(), dq_w, mm, helper.make_node("Softmax", ["xd"], ["s"], name="sm"),
            helper.make_node("Relu", ["s"], ["unused"], name="r"), *_y_out()]
    _refused(_hand(tmp_path, "left", left, inits),
             "g: Softmax node 'sm' is not supported in an int8 graph by the C generator (it is not part of a QDQ "
             "compute group or an elementwise chain)")
    for label, nodes, extra in (
            ("relu", [*_x_in("x0"), helper.make_node("Relu", ["x0"], ["xd"])], {}),
            ("const", [helper.make_node("DequantizeLinear", ["c", "sx", "zx"], ["xd"])], {"c": np.ones((1, 10),
                                                                                                        np.uint8)})):
        _refused(_hand(tmp_path, label, [*nodes, dq_w, mm, *_y_out()], {**inits, **extra}),
                 "MatMul node 'mm': data input 'xd' does not come from a DequantizeLinear of a quantized tensor; "
                 "the C generator lowers QDQ int8 graphs only")
    _refused(_hand(tmp_path, "mm3", [*_x_in(), dq_w, mm, *_y_out()], inits, x_shape=(None, 3, 10),
                   y_shape=(None, 3, 6)),
             "MatMul node 'mm': input (1, 3, 10) does not match weight (10, 6)")
    biasq = [*_x_in(), dq_w, helper.make_node("QuantizeLinear", ["bf", "sy", "zy"], ["bq"]),
             helper.make_node("DequantizeLinear", ["bq", "sy", "zy"], ["bd"]),
             helper.make_node("Gemm", ["xd", "wd", "bd"], ["h"], name="fc"), *_y_out()]
    _refused(_hand(tmp_path, "biasq", biasq, {**inits, "bf": np.ones(6, np.float32)}),
             "Gemm node 'fc': bias 'bd' must be constant")


def test_a_bias_scale_a_little_off_is_requantized(tmp_path):
    """A bias scale 2e-6 (relative) away from sx * sw is not the accumulator's: re-quantized."""
    rng = np.random.default_rng(16)
    inits = _hand_inits(rng)
    acc = np.float32(0.02) * np.float32(0.01)
    bs = np.float32(acc * (1 + 2e-6))
    bq = np.full(6, 2_000_000, np.int32)
    nodes = [*_x_in(), helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"]),
             helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"]),
             helper.make_node("Gemm", ["xd", "wd", "bd"], ["h"], name="fc"), *_y_out()]
    program = lower_int8(load_graph(_hand(tmp_path, "off", nodes, {**inits, "bq": bq, "bs": bs,
                                                                   "bz": np.int32(0)}), "g"))
    (step,) = [s for s in program.steps if s.kind == "qdense"]
    want = np.rint(2_000_000 * np.float64(bs) / np.float64(acc))
    assert want != 2_000_000 and step.params["bias_q_v"].tolist() == [int(want)] * 6


def test_the_first_bound_decides_for_int8_zero_points_at_the_ends(tmp_path):
    """int8 input with zero point 127 and int8 weights -128 with zero point 127: |x - zx| and
    |w - zw| reach 255, so K 255 255 + |B| is the bound (above the raw-product one)."""
    k = 1000
    largest = 2 ** 31 - 1 - k * 255 * 255

    def graph(name, B):
        inits = {"sx": np.float32(0.02), "zx": np.int8(127), "w": np.full((1, k), -128, np.int8),
                 "sw": np.float32(0.01), "zw": np.int8(127), "sy": np.float32(0.05), "zy": np.int8(0),
                 "bq": np.full(1, B, np.int32), "bs": np.float32(np.float32(0.02) * np.float32(0.01)),
                 "bz": np.int32(0)}
        nodes = [*_x_in(), helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"]),
                 helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"]),
                 helper.make_node("Gemm", ["xd", "wd", "bd"], ["h"], name="fc", transB=1), *_y_out()]
        return _hand(tmp_path, name, nodes, inits, (None, k), (None, 1))

    (step,) = [s for s in lower_int8(load_graph(graph("ok", largest), "g")).steps if s.kind == "qdense"]
    assert step.params["bias_q_v"].tolist() == [largest]
    _refused(graph("no", largest + 1), f"Gemm node 'fc': the int32 accumulator could overflow (bound {2 ** 31})")


def test_a_transposed_conv_bound_follows_the_input_range(tmp_path):
    """int8 input with zero point 10: |x - zx| reaches 138, so the bound is 2 taps 138 128 + |B|."""
    taps, span = 100, 138
    largest = 2 ** 31 - 1 - 2 * taps * span * 128

    def graph(name, B):
        inits = {"sx": np.float32(0.02), "zx": np.int8(10), "w": np.ones((taps, 1, 1, 1), np.int8),
                 "sw": np.float32(0.01), "zw": np.int8(0), "sy": np.float32(0.05), "zy": np.int8(0),
                 "bq": np.full(1, B, np.int32), "bs": np.float32(np.float32(0.02) * np.float32(0.01)),
                 "bz": np.int32(0)}
        nodes = [*_x_in(), helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"]),
                 helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"]),
                 helper.make_node("ConvTranspose", ["xd", "wd", "bd"], ["h"], name="up", kernel_shape=[1, 1]),
                 *_y_out()]
        return _hand(tmp_path, name, nodes, inits, (None, taps, 1, 1), (None, 1, 1, 1))

    lower_int8(load_graph(graph("ok", largest), "g"))
    _refused(graph("no", largest + 1),
             f"ConvTranspose node 'up': the int32 accumulator could overflow (bound {2 ** 31})")


def test_a_convolution_bound_counts_its_taps(tmp_path):
    """A Conv of 50 channels and a 1 x 2 kernel has 100 taps: the bound is 97,920 x 100 + |B|,
    as for a dense layer of 100 inputs (uint8 input with zero point 128, int8 weights)."""
    largest = 2 ** 31 - 1 - 97_920 * 100

    def graph(name, B):
        inits = {"sx": np.float32(0.02), "zx": np.uint8(128), "sw": np.float32(0.01), "zw": np.int8(0),
                 "w": np.where(np.arange(100) % 2, 1, -1).astype(np.int8).reshape(1, 50, 1, 2),
                 "sy": np.float32(0.05), "zy": np.uint8(0), "bq": np.full(1, B, np.int32),
                 "bs": np.float32(np.float32(0.02) * np.float32(0.01)), "bz": np.int32(0)}
        nodes = [*_x_in(), helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"]),
                 helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"]),
                 helper.make_node("Conv", ["xd", "wd", "bd"], ["h"], name="conv", kernel_shape=[1, 2]), *_y_out()]
        return _hand(tmp_path, name, nodes, inits, (None, 50, 1, 2), (None, 1, 1, 1))

    lower_int8(load_graph(graph("ok", largest), "g"))
    _refused(graph("no", largest + 1), f"Conv node 'conv': the int32 accumulator could overflow (bound {2 ** 31})")
