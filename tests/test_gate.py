"""The validation gate's bounds (edgeae.numerics) on small graphs built by hand.

Each case is one the old absolute tolerances got wrong on real data: a uint8 pixel one level
apart at a rounding tie, one quantization step before a Sigmoid that becomes 17 steps after
it, a float sum whose rounding grows with its length and magnitude. The bound must admit
them, and still refuse a value moved where no tie is near, a swapped weight row, and NaN.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeae.numerics import compare_bounded, deviation_bounds


def _model(nodes, inits, out_type=TensorProto.FLOAT, opset=17):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", out_type, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _ort(model, x):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_raw_pixel_at_a_tie_may_differ_by_one_level_only_there():
    """Issue case 1: decoder output * 255 -> Round -> uint8; a value on k + 1/2 may round either way."""
    m = _model([helper.make_node("Mul", ["x", "k"], ["p"]), helper.make_node("Round", ["p"], ["r"]),
                helper.make_node("Clip", ["r", "lo", "hi"], ["c"]),
                helper.make_node("Cast", ["c"], ["y"], to=TensorProto.UINT8)],
               {"k": np.float32(255), "lo": np.float32(0), "hi": np.float32(255)}, TensorProto.UINT8)
    x = np.array([[100.5 / 255, 0.25, 0.75]], np.float32)  # the first lands on a tie, the others far from one
    dev = deviation_bounds(m, x)
    assert dev.bounds["y"].tolist() == [[1.0, 0.0, 0.0]]
    want = _ort(m, x)
    at_tie = want.astype(np.int16) + np.array([[1, 0, 0]])
    assert compare_bounded(at_tie, want, dev.bounds["y"])[1] <= 1
    elsewhere = want.astype(np.int16) + np.array([[0, 1, 0]])
    assert compare_bounded(elsewhere, want, dev.bounds["y"])[2] == 1  # refused: no tie near that pixel


def test_one_step_before_a_sigmoid_is_bounded_after_it():
    """Issue case 2: 0.3987981 / 0.26586542 = 1.5000 sits on a quantizer tie; one step there is
    17 output steps after Sigmoid, and the bound says so (and 0 for the element far from a tie)."""
    s1, s2 = np.float32(0.26586542), np.float32(1 / 255)
    z = np.uint8(0)
    m = _model([helper.make_node("QuantizeLinear", ["x", "s1", "z"], ["q1"]),
                helper.make_node("DequantizeLinear", ["q1", "s1", "z"], ["d1"]),
                helper.make_node("Sigmoid", ["d1"], ["g"]),
                helper.make_node("QuantizeLinear", ["g", "s2", "z"], ["q2"]),
                helper.make_node("DequantizeLinear", ["q2", "s2", "z"], ["y"])],
               {"s1": s1, "s2": s2, "z": z})
    x = np.array([[0.3987981, 1.0]], np.float32)
    dev = deviation_bounds(m, x)
    b = dev.bounds["y"][0]
    assert 17 * s2 <= b[0] <= 19 * s2 and b[1] < s2 / 100  # the step a tie may flip, as Sigmoid passes it on
    want = _ort(m, x)
    fused = want.copy()
    fused[0, 0] -= 17 * s2  # what a fused kernel gives when the tie rounds the other way
    assert compare_bounded(fused, want, dev.bounds["y"])[1] <= 1
    far = want.copy()
    far[0, 1] -= s2
    assert compare_bounded(far, want, dev.bounds["y"])[2] == 1


@pytest.mark.parametrize("k, scale", [(16, 1.0), (4096, 1.0), (4096, 1e3)])
def test_sum_bound_grows_with_length_and_magnitude(k, scale):
    """Float sums: the exact (float64) result and ONNX Runtime's float32 one are within the bound,
    whatever the length and magnitude; a swapped weight row is far outside it."""
    rng = np.random.default_rng(k)
    w = rng.normal(size=(k, 8)).astype(np.float32)
    x = (scale * rng.normal(size=(64, k))).astype(np.float32)
    m = _model([helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])], {"w": w})
    bound = deviation_bounds(m, x).bounds["y"]
    exact = np.maximum(x.astype(np.float64) @ w.astype(np.float64), 0)
    got = _ort(m, x)
    err, share, over = compare_bounded(got, exact, bound)
    assert over == 0 and share <= 1, (err, share)
    swapped = w.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    wrong = _ort(_model([helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
                        {"w": swapped}), x)
    assert compare_bounded(wrong, exact, bound)[2] > 0


def test_nan_and_inf_are_never_within_a_bound():
    a = np.array([1.0, np.nan])
    assert compare_bounded(a, a, np.full(2, 1e9))[1] == np.inf
    assert compare_bounded(np.array([np.inf]), np.array([np.inf]), np.ones(1))[2] == 1


def test_unknown_op_is_noted_not_trusted():
    m = _model([helper.make_node("Softplus", ["x"], ["y"])], {})
    dev = deviation_bounds(m, np.array([[1.0, 2.0]], np.float32))
    assert dev.notes and "Softplus" in dev.notes[0]
    assert 0 < dev.bounds["y"].max() < 1e-2


def test_fp16_weights_are_half_a_float16_step_from_the_float32_ones():
    w = np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8)
    m = _model([helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16),
                helper.make_node("MatMul", ["x16", "w"], ["h"]),
                helper.make_node("Cast", ["h"], ["y"], to=TensorProto.FLOAT)], {"w": w.astype(np.float16)})
    x = np.ones((2, 4), np.float32)
    bound = deviation_bounds(m, x, "fp16").bounds["y"]
    exact = x.astype(np.float64) @ w.astype(np.float64)
    assert compare_bounded(_ort(m, x), exact, bound)[1] <= 1
    off = _ort(_model(m.graph.node, {"w": (w * 1.02).astype(np.float16)}), x)  # weights 2% off
    assert compare_bounded(off, exact, bound)[2] > 0


@pytest.mark.parametrize("op, lo, hi", [("Sigmoid", 0.0, 1.0), ("Tanh", -1.0, 1.0), ("Relu", 0.0, np.inf)])
def test_a_bound_never_exceeds_what_the_function_can_move(op, lo, hi):
    """A huge deviation before a monotone function (int8 against PyTorch deep in a model) is
    capped by the function: the secant over [v - D, v + D], within the output's range, and
    exact for the interval (no point of it moves further)."""
    rng = np.random.default_rng(1)
    m = _model([helper.make_node("Mul", ["x", "k"], ["h"]), helper.make_node(op, ["h"], ["y"])], {"k": np.float32(1)})
    x = rng.normal(scale=4, size=(4, 16)).astype(np.float32)
    d_in = np.full(x.shape, 50.0)
    bound = deviation_bounds(m, x, d_in=d_in).bounds["y"]
    f = {"Sigmoid": lambda v: 1 / (1 + np.exp(-v)), "Tanh": np.tanh, "Relu": lambda v: np.maximum(v, 0)}[op]
    v = x.astype(np.float64)
    far = np.maximum(np.abs(f(v + 50) - f(v)), np.abs(f(v - 50) - f(v)))
    assert np.all(bound >= far) and np.all(bound <= far + 1e-5)
    assert bound.max() <= (hi - lo) + 1e-5


def test_clip_and_an_8_bit_output_cap_the_bound_by_their_range():
    m = _model([helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
                helper.make_node("QuantizeLinear", ["c", "s", "z"], ["y"])],
               {"lo": np.float32(0), "hi": np.float32(1), "s": np.float32(1 / 255), "z": np.uint8(0)},
               TensorProto.UINT8)
    x = np.array([[-3.0, 0.0, 0.5, 1.0, 9.0]], np.float32)
    b = deviation_bounds(m, x, d_in=np.full(x.shape, 1e3)).bounds["y"][0]
    assert b.max() <= 255 and b[2] <= 128  # 0.5 -> 127 or 128: at most 128 steps to either end
    q = deviation_bounds(m, x, "quantized", d_in=np.full(x.shape, 1e3)).bounds["y"][0]
    assert q.max() <= 255


def _int8_graphs(tmp_path):
    """A float MatMul graph and its int8 forms as the exporter writes them."""
    import onnx

    from edgeae.export.quantize import quantize_graph

    rng = np.random.default_rng(0)
    w = rng.normal(size=(32, 8)).astype(np.float32)
    src = tmp_path / "f.onnx"
    m = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], {"w": w})
    m.graph.input[0].CopyFrom(helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 32]))
    m.graph.output[0].CopyFrom(helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8]))
    onnx.save_model(m, str(src))
    calib = rng.random((64, 32), dtype=np.float32)
    out = {}
    for p in ("int8-dynamic", "int8-static"):
        out[p] = tmp_path / f"{p}.onnx"
        quantize_graph(src, out[p], p, calib, "minmax", "x")
    return src, out


def test_8_bit_weights_are_checked_against_the_float_weights(tmp_path):
    """Each 8-bit weight lies within half a step of the float weight it came from; two rows
    swapped (the quantizer fault) are many steps off and refused with a wide margin."""
    import onnx

    from benchmarks.gate_faults import swap_rows
    from edgeae.export.weightcheck import weight_check

    src, graphs = _int8_graphs(tmp_path)
    for p, path in graphs.items():
        record, problems, notes, _ = weight_check(path, src)
        assert not problems and not notes, (p, problems, notes)
        assert 0.9 < record["share"] <= 1 and record["largest_steps"] <= 0.5 + 1e-3
        bad = onnx.load(str(path))
        swap_rows(bad, src)
        onnx.save_model(bad, str(path))
        record, problems, _, _ = weight_check(path, src)
        assert problems and record["share"] > 10, (p, record)


def test_export_latency_is_timed_in_blocks():
    """The manifest's latency record uses the benchmark's method: every variant in blocks of
    calls (warm, its own weights in cache), not alternated call by call."""
    from types import SimpleNamespace

    from edgeae.export.validate import measure_latency

    log = []

    class Graph:
        def __init__(self, tag):
            self.tag = tag

        def get_inputs(self):
            return [SimpleNamespace(name="x")]

        def run(self, names, feeds):
            log.append(self.tag)
            return [np.zeros((len(feeds["x"]), 2), np.float32)]

    pairs = {p: (Graph(p), Graph(p + "-dec")) for p in ("a", "b")}
    out = measure_latency(pairs, np.zeros((4, 3), np.float32), batches=(1,), repeats=12)
    assert set(out) == {"a", "b"} and all(out[p]["batch1"] >= 0 for p in out)
    encs = [t for t in log if not t.endswith("-dec")]
    runs = [encs[0]]
    for t in encs[1:]:
        if t != runs[-1]:
            runs.append(t)
    assert len(runs) < len(encs) / 2  # consecutive calls of one variant: blocks, not A B A B
