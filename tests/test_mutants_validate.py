"""The export gate's bookkeeping (edgeae.export.validate), checked directly on small graphs.

The export tests run the gate end to end, where a wrong share, a dropped check or a bound
computed for the wrong mode can still let a good model pass. These tests pin each piece:
what passes, which check is the tightest, what is remembered between checks, which graphs
count as int8, and the words a user reads in a refusal.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeae.errors import ExportError
from edgeae.export import validate as V
from edgeae.numerics import U16, U32

W = np.array([[0.5, -1.0], [0.25, 2.0], [1.5, 0.75]], np.float32)  # 3 inputs -> 2 outputs


def _save(path, nodes, inits, outs=("y",), opset=17, out_type=TensorProto.FLOAT, domains=()):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info(o, out_type, None) for o in outs],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                    *(helper.make_opsetid(d, 1) for d in domains)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    return path


def _matmul(path, w=W, second=False):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    if second:
        nodes.append(helper.make_node("Relu", ["y"], ["z"]))
    return _save(path, nodes, {"w": w}, outs=("y", "z") if second else ("y",))


def _x(n=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)


def _check(graph="encoder.onnx", output="code", batch=1, share=0.5, against="pytorch", err=0.1, criterion="float"):
    return V.Check(graph, output, batch, err, 1.0, against, share, 0, criterion)


# ------------------------------------------------------------------ Check, CRITERIA, BATCHES

def test_batches_and_criteria_are_the_documented_ones():
    assert V.BATCHES == (1, 7, 64)
    assert V.CRITERIA == {
        "float": "float rounding bound", "fp16": "float16 rounding bound", "quantized": "quantization bound",
        "semantics": "integer semantics, one step per tie", "copy": "same graph, rounding bound",
        "weights": "8-bit weights vs the float weights, half a step", "psnr": "held-out PSNR drop vs --max-psnr-drop"}


def test_a_check_passes_up_to_its_whole_bound():
    assert _check(share=1.0).passed and _check(share=0.0).passed
    assert not _check(share=1.0000001).passed and not _check(share=math.inf).passed
    c = V.Check("g.onnx", "y", 7, 0.5, 2.0)
    assert (c.against, c.share, c.over, c.criterion) == ("pytorch", 0.0, 0, "float")


def test_a_check_line_names_everything_a_user_needs():
    c = V.Check("decoder.onnx", "recon", 7, 0.000123456, 0.0456789, "onnxruntime/decoder.onnx", 2.5, 3, "copy")
    assert c.line() == ("decoder.onnx recon (batch 7, vs onnxruntime/decoder.onnx, same graph, rounding bound): "
                        "3 element(s) outside their bound, max abs error 0.000123, 2.5 x the bound "
                        "(largest bound 0.0457)")


# ------------------------------------------------------------------ Checks

def test_add_bounded_records_error_share_and_bound_plus_allowance():
    checks = V.Checks()
    got, want = np.array([1.0, 2.0, 3.5]), np.array([1.0, 2.5, 3.0])
    c = checks.add_bounded("g.onnx", "y", 7, got, want, np.array([0.1, 1.0, 0.25]), "quantized",
                           against="reference", atol=0.25)
    assert checks.items == [c]
    assert (c.graph, c.output, c.batch, c.criterion, c.against) == ("g.onnx", "y", 7, "quantized", "reference")
    assert c.max_abs_error == 0.5 and c.tolerance == 1.25
    assert c.share == pytest.approx(1.0) and c.over == 0 and c.passed  # 0.5 / (0.25 + 0.25)
    tight = checks.add_bounded("g.onnx", "y", 1, got, want, np.array([0.1, 1.0, 0.25]), "float")
    assert tight.share == pytest.approx(2.0) and tight.over == 1 and not tight.passed
    assert tight.against == "pytorch" and tight.tolerance == 1.0
    assert checks.failures() == [tight]


def test_add_bounded_refuses_nan_and_takes_zero_as_the_largest_bound_of_nothing():
    checks = V.Checks()
    c = checks.add_bounded("g.onnx", "y", 1, np.array([np.nan]), np.array([np.nan]), np.array([1.0]), "float")
    assert not c.passed and c.over == 1
    empty = checks.add_bounded("g.onnx", "y", 1, np.zeros(0), np.zeros(0), np.zeros(0), "float")
    assert empty.tolerance == 0.0 and empty.passed


def test_max_errors_takes_the_largest_per_output_of_the_graphs_and_source_asked():
    checks = V.Checks()
    checks.items += [V.Check("encoder.onnx", "code", 1, 0.2, 1.0), V.Check("encoder.onnx", "code", 64, 0.3, 1.0),
                     V.Check("encoder.onnx", "code", 7, 0.25, 1.0),
                     V.Check("encoder.onnx", "mu", 1, 0.0, 1.0),
                     V.Check("encoder.onnx", "code", 1, 9.0, 1.0, against="onnxruntime"),
                     V.Check("decoder.onnx", "recon", 1, 5.0, 1.0)]
    assert checks.max_errors({"encoder.onnx"}) == {"code": 0.3, "mu": 0.0}
    assert checks.max_errors({"encoder.onnx"}, against="onnxruntime") == {"code": 9.0}
    assert checks.max_errors({"encoder.onnx", "decoder.onnx"}) == {"code": 0.3, "mu": 0.0, "recon": 5.0}
    assert checks.max_errors({"other.onnx"}) == {}


def test_failures_lists_every_failing_check_in_order():
    checks = V.Checks()
    a, b, c = _check(share=2.0), _check(share=0.5), _check(share=1.5)
    checks.items += [a, b, c]
    assert checks.failures() == [a, c]
    assert V.Checks().failures() == [] and V.Checks().notes == []


class _Calls:
    """Stands in for deviation_bounds / graph_values and records what they were asked."""

    def __init__(self):
        self.bounds, self.values = [], []

    def deviation_bounds(self, proto, x, mode, d_in=None, u_b=U32, values=None, weight_steps=None):
        self.bounds.append({"mode": mode, "d_in": d_in, "u_b": u_b, "values": values, "steps": weight_steps,
                            "x": x.copy(), "graph": proto.graph.name})
        return object()

    def graph_values(self, proto, x):
        self.values.append(x.copy())
        return {"x": x.copy()}


def _patched(monkeypatch) -> _Calls:
    calls = _Calls()
    monkeypatch.setattr(V, "deviation_bounds", calls.deviation_bounds)
    monkeypatch.setattr(V, "graph_values", calls.graph_values)
    return calls


def test_bounds_are_computed_once_per_graph_input_and_mode(tmp_path, monkeypatch):
    calls = _patched(monkeypatch)
    model = _matmul(tmp_path / "enc.onnx")
    checks, x = V.Checks(), _x()
    first = checks.bounds(model, x)
    assert checks.bounds(model, x.copy()) is first  # same graph, same values: remembered
    assert len(calls.bounds) == 1 and calls.bounds[0]["mode"] == "float" and calls.bounds[0]["u_b"] == U32
    assert calls.bounds[0]["d_in"] is None and calls.bounds[0]["steps"] is None
    np.testing.assert_array_equal(calls.bounds[0]["values"]["x"], x)
    fp16 = checks.bounds(model, x, u_b=U16)
    assert fp16 is not first and calls.bounds[-1]["u_b"] == U16
    quant = checks.bounds(model, x, mode="quantized")
    assert quant is not first and calls.bounds[-1]["mode"] == "quantized"
    d_in = np.full_like(x, 0.5)
    with_d = checks.bounds(model, x, d_in=d_in)
    assert with_d is not first and calls.bounds[-1]["d_in"] is d_in
    assert checks.bounds(model, x, d_in=d_in.copy()) is with_d
    assert checks.bounds(model, x, d_in=d_in + 1) is not with_d
    assert len(calls.values) == 1  # the graph ran once on x for every mode
    other = checks.bounds(model, x + 1)
    assert other is not first and len(calls.values) == 2
    np.testing.assert_array_equal(calls.values[-1], x + 1)


def test_bounds_follow_a_graph_file_that_changed(tmp_path, monkeypatch):
    calls = _patched(monkeypatch)
    model = _matmul(tmp_path / "enc.onnx")
    checks, x = V.Checks(), _x()
    first = checks.bounds(model, x)
    g = onnx.load(str(model))
    g.graph.name = "changed"
    onnx.save_model(g, str(model))
    again = checks.bounds(model, x)
    assert again is not first and calls.bounds[-1]["graph"] == "changed" and len(calls.values) == 2


def test_bounds_tell_graph_files_of_one_size_and_time_apart(tmp_path):
    """Two graph files with the same size and modification time (a copy made in the same tick)."""
    import os

    a = _matmul(tmp_path / "a.onnx")
    b = _matmul(tmp_path / "b.onnx", w=W * 4)
    assert a.stat().st_size == b.stat().st_size
    os.utime(b, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns))
    checks, x = V.Checks(), _x()
    va, vb = checks.bounds(a, x).values["y"], checks.bounds(b, x).values["y"]
    np.testing.assert_allclose(vb, 4 * va, rtol=1e-6)


def test_bounds_keep_the_values_of_the_last_four_inputs_only(tmp_path, monkeypatch):
    calls = _patched(monkeypatch)
    model = _matmul(tmp_path / "enc.onnx")
    checks = V.Checks()
    xs = [_x(seed=s) for s in range(6)]
    for x in xs:
        checks.bounds(model, x)
    kept = [k for k in checks._memo if k[0] == "values"]
    assert len(kept) == 4 and [k[2] for k in kept] == [V._digest(x) for x in xs[2:]]
    checks.bounds(model, xs[5], mode="quantized")  # the newest input's values: reused, still kept
    assert len(calls.values) == 6 and len([k for k in checks._memo if k[0] == "values"]) == 4
    checks.bounds(model, xs[2], mode="quantized")  # an older one kept: reused and moved to the end
    assert len(calls.values) == 6 and [k[2] for k in checks._memo if k[0] == "values"][-1] == V._digest(xs[2])
    checks.bounds(model, xs[0], mode="quantized")  # dropped: run again
    assert len(calls.values) == 7


def test_quantized_bounds_use_the_graphs_measured_weight_steps(tmp_path, monkeypatch):
    calls = _patched(monkeypatch)
    model = _matmul(tmp_path / "encoder.int8.onnx")
    steps = {"w": np.array([0.25, 0.5])}
    checks, x = V.Checks(), _x()
    checks.weight_steps["encoder.int8.onnx"] = steps
    checks.weight_steps["other.onnx"] = {"w": np.zeros(1)}
    checks.bounds(model, x, mode="quantized")
    assert calls.bounds[-1]["steps"] is steps
    checks.bounds(model, x, mode="float")
    assert calls.bounds[-1]["steps"] is None
    plain = _matmul(tmp_path / "encoder.onnx")
    checks.bounds(plain, x, mode="quantized")
    assert calls.bounds[-1]["steps"] is None


def test_real_bounds_of_a_float_graph(tmp_path):
    model = _matmul(tmp_path / "enc.onnx")
    x = _x()
    dev = V.Checks().bounds(model, x)
    want = x.astype(np.float64) @ W.astype(np.float64)
    np.testing.assert_allclose(dev.values["y"], want, rtol=1e-6, atol=1e-6)
    b = dev.bounds["y"]
    assert b.shape == (5, 2) and np.all(b > 0) and np.all(b < 1e-5)


def test_digest_tells_shape_dtype_and_bytes_apart():
    a = np.arange(6, dtype=np.float32)
    assert V._digest(a) == V._digest(a.copy())
    assert V._digest(a) != V._digest(a.reshape(2, 3))
    assert V._digest(a) != V._digest(a.astype(np.int32))
    b = a.copy()
    b[5] = 7
    assert V._digest(a) != V._digest(b)
    assert V._digest(a.reshape(2, 3).T) == V._digest(np.ascontiguousarray(a.reshape(2, 3).T))


# ------------------------------------------------------------------ tightest, criteria_by_graph, _num

def test_tightest_is_the_check_that_used_most_of_its_bound():
    checks = V.Checks()
    checks.items += [V.Check("encoder.onnx", "code", 1, 0.001, 0.01, "pytorch", 0.1, 0, "float"),
                     V.Check("encoder.onnx", "code", 7, 0.0123456, 0.05, "reference", 0.4, 0, "semantics"),
                     V.Check("encoder.onnx", "code", 64, 0.003, 0.05, "pytorch", 0.4, 0, "copy"),
                     V.Check("decoder.onnx", "recon", 1, 1.0, 1.0, "pytorch", 0.9, 0, "float")]
    t = V.tightest(checks, {"encoder.onnx"})
    assert t == {"criterion": "semantics", "what": "integer semantics, one step per tie", "graph": "encoder.onnx",
                 "output": "code", "batch": 7, "against": "reference", "share": 0.4, "margin": 2.5,
                 "max_abs_error": 0.01235, "largest_bound": 0.05}
    assert V.tightest(checks, {"encoder.onnx", "decoder.onnx"})["graph"] == "decoder.onnx"
    assert V.tightest(checks, {"nothing.onnx"}) is None
    assert V.tightest(V.Checks(), {"encoder.onnx"}) is None


def test_tightest_of_exact_checks_has_no_margin_and_refusals_have_one_below_one():
    checks = V.Checks()
    checks.items.append(V.Check("e.onnx", "code", 1, 0.0, 0.5, share=0.0))
    t = V.tightest(checks, {"e.onnx"})
    assert t["margin"] is None and t["share"] == 0.0 and t["max_abs_error"] == 0.0
    checks.items.append(V.Check("e.onnx", "code", 7, math.inf, 0.5, share=math.inf, over=1))
    t = V.tightest(checks, {"e.onnx"})
    assert t["batch"] == 7 and t["share"] is None and t["margin"] == 0.0 and t["max_abs_error"] is None
    checks = V.Checks()
    checks.items.append(V.Check("e.onnx", "code", 1, 4.0, 2.0, share=4.0))
    assert V.tightest(checks, {"e.onnx"})["margin"] == 0.25


def test_criteria_by_graph_lists_only_graphs_that_were_checked():
    checks = V.Checks()
    checks.items += [V.Check("encoder.onnx", "code", 1, 0.1, 1.0, share=0.1),
                     V.Check("decoder.onnx", "recon", 1, 0.1, 1.0, share=0.3)]
    out = V.criteria_by_graph(checks, ["encoder.onnx", "decoder.onnx", "encoder.ort"])
    assert list(out) == ["encoder.onnx", "decoder.onnx"]
    assert out["encoder.onnx"] == V.tightest(checks, {"encoder.onnx"}) and out["decoder.onnx"]["share"] == 0.3
    assert V.criteria_by_graph(checks, []) == {}


@pytest.mark.parametrize("v, want", [(1.23456, 1.235), (123456.0, 123500.0), (0.000123456, 0.0001235), (0.0, 0.0),
                                     (-2.5, -2.5), (math.inf, None), (-math.inf, None), (math.nan, None)])
def test_num_rounds_to_four_digits_and_drops_non_finite(v, want):
    assert V._num(v) == want


# ------------------------------------------------------------------ session, run, take_batch

def test_session_is_pinned_and_optimizations_can_be_turned_off(tmp_path):
    import onnxruntime as ort

    model = _matmul(tmp_path / "enc.onnx")
    s = V.session(model)
    assert s.get_providers() == ["CPUExecutionProvider"]
    opts = s.get_session_options()
    assert opts.intra_op_num_threads == 1
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    off = V.session(model, optimize=False, threads=2).get_session_options()
    assert off.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    assert off.intra_op_num_threads == 2


def test_run_returns_every_output_by_name(tmp_path):
    model = _matmul(tmp_path / "enc.onnx", second=True)
    x = _x()
    out = V.run(V.session(model), x)
    assert list(out) == ["y", "z"]
    np.testing.assert_allclose(out["y"], x @ W, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["z"], np.maximum(x @ W, 0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n", [1, 4, 5])
def test_take_batch_takes_the_first_samples(n):
    x = np.asfortranarray(_x())
    got = V.take_batch(x, n)
    np.testing.assert_array_equal(got, x[:n])
    assert got.flags.c_contiguous and len(got) == n


@pytest.mark.parametrize("n", [6, 7, 10, 11, 64])
def test_take_batch_repeats_the_real_samples_in_order(n):
    x = _x()
    got = V.take_batch(x, n)
    assert got.shape == (n, 3) and got.flags.c_contiguous
    np.testing.assert_array_equal(got, np.concatenate([x] * 13)[:n])


# ------------------------------------------------------------------ check_copy

def test_a_copy_that_computes_the_same_passes_as_a_copy_check(tmp_path):
    src = _matmul(tmp_path / "encoder.onnx")
    copy = _matmul(tmp_path / "encoder.b7.onnx")
    checks, x = V.Checks(), _x()
    V.check_copy(copy, src, x, 7, checks, atol=0.0)
    (c,) = checks.items
    assert (c.graph, c.output, c.batch, c.criterion, c.against) == ("encoder.b7.onnx", "y", 7, "copy",
                                                                     "onnxruntime/encoder.onnx")
    assert c.passed and c.max_abs_error == 0.0 and c.tolerance > 0


def test_a_copy_that_computes_something_else_is_refused(tmp_path):
    src = _matmul(tmp_path / "encoder.onnx")
    bad = W.copy()
    bad[0, 0] += 1e-3
    copy = _matmul(tmp_path / "encoder.ort.onnx", w=bad)
    checks, x = V.Checks(), _x()
    V.check_copy(copy, src, x, 7, checks, atol=0.0)
    (c,) = checks.items
    assert not c.passed and c.over > 0 and c.max_abs_error == pytest.approx(np.abs(V.take_batch(x, 7)[:, 0]).max()
                                                                            * 1e-3, rel=1e-2)
    V.check_copy(copy, src, x, 7, checks, atol=1.0)  # an allowance admits it
    assert checks.items[-1].passed and checks.items[-1].tolerance > 1.0


def test_a_copy_missing_an_output_is_refused(tmp_path):
    src = _matmul(tmp_path / "encoder.onnx", second=True)
    copy = _matmul(tmp_path / "encoder.b1.onnx")
    checks = V.Checks()
    V.check_copy(copy, src, _x(), 1, checks, atol=0.0)
    assert [(c.output, c.passed) for c in checks.items] == [("y", True), ("z", False)]


def test_a_copy_that_does_not_run_names_itself(tmp_path):
    src = _matmul(tmp_path / "encoder.onnx")
    broken = tmp_path / "encoder.ort"
    broken.write_bytes(b"not a graph")
    with pytest.raises(ExportError, match=r"^encoder\.ort does not run in onnxruntime: "):
        V.check_copy(broken, src, _x(), 1, V.Checks(), atol=0.0)


# ------------------------------------------------------------------ reference_check

def test_reference_check_compares_with_what_it_is_given(tmp_path):
    model = _matmul(tmp_path / "encoder.onnx", second=True)
    x = _x()
    want = {"y": x @ W, "z": np.maximum(x @ W, 0), "unused": np.zeros(1)}
    checks = V.Checks()
    V.reference_check(model, x, want, checks, 5)
    assert [(c.graph, c.output, c.batch, c.criterion, c.against, c.passed) for c in checks.items] == [
        ("encoder.onnx", "y", 5, "float", "reference-evaluator/pytorch", True),
        ("encoder.onnx", "z", 5, "float", "reference-evaluator/pytorch", True)]
    wrong = {"y": x @ W + 1e-3}
    V.reference_check(model, x, wrong, checks, 5, against="onnxruntime", atol=0.0)
    (c,) = checks.items[2:]
    assert c.output == "y" and c.against == "reference-evaluator/onnxruntime" and not c.passed
    V.reference_check(model, x, wrong, checks, 5, atol=2e-3)
    assert checks.items[-1].passed and checks.items[-1].tolerance >= 2e-3


def test_reference_check_without_a_want_runs_the_graph_unoptimized(tmp_path, monkeypatch):
    model = _matmul(tmp_path / "encoder.onnx")
    asked = []
    real = V.session

    def spy(path, optimize=True, threads=1):
        asked.append(optimize)
        return real(path, optimize, threads)

    monkeypatch.setattr(V, "session", spy)
    checks = V.Checks()
    V.reference_check(model, _x(), None, checks, 1)
    (c,) = checks.items
    assert asked == [False] and c.against == "reference-evaluator/onnxruntime-unoptimized" and c.passed


def test_reference_check_of_fp16_uses_float16_rounding(tmp_path, monkeypatch):
    model = _matmul(tmp_path / "encoder.onnx")
    seen = []
    real = V.Checks.bounds

    def spy(self, m, x, mode="float", u_b=U32, d_in=None):
        seen.append((mode, u_b))
        return real(self, m, x, mode, u_b, d_in)

    monkeypatch.setattr(V.Checks, "bounds", spy)
    x = _x()
    checks = V.Checks()
    V.reference_check(model, x, {"y": x @ W}, checks, 1, fp16=True)
    V.reference_check(model, x, {"y": x @ W}, checks, 1)
    assert seen == [("float", U16), ("float", U32)]
    assert checks.items[0].tolerance > 100 * checks.items[1].tolerance


def _qdq(path, opset):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    return _save(path, nodes, {"s": np.float32(0.1), "z": np.uint8(128)}, opset=opset)


@pytest.mark.parametrize("opset", [13, 19])
def test_reference_check_of_an_int8_graph_holds_it_to_the_integer_semantics(tmp_path, opset):
    model = _qdq(tmp_path / "encoder.int8.onnx", opset)
    x = _x()
    want = V.run(V.session(model), x)
    checks = V.Checks()
    V.reference_check(model, x, want, checks, 5, against="onnxruntime")
    assert checks.notes == []
    (c,) = checks.items
    assert c.criterion == "semantics" and c.against == "reference-evaluator/onnxruntime" and c.passed
    off = {"y": want["y"] + np.float32(0.1) * (np.arange(15).reshape(5, 3) == 4)}  # one step, no tie near
    V.reference_check(model, x, off, checks, 5, against="onnxruntime")
    assert not checks.items[-1].passed


def test_an_op_the_reference_cannot_run_is_noted_not_failed(tmp_path):
    model = _save(tmp_path / "encoder.onnx", [helper.make_node("Mystery", ["x"], ["y"], domain="com.example")], {},
                  domains=("com.example",))
    checks = V.Checks()
    V.reference_check(model, _x(), {"y": _x()}, checks, 1)
    assert checks.items == []
    (note,) = checks.notes
    assert note.startswith("encoder.onnx: ReferenceEvaluator cannot run it (")
    assert note.endswith("); checked with ONNX Runtime only") and "\n" not in note
    assert V.structure_problems(model, "int8-static") == []


def test_the_note_names_the_error_and_its_first_line_cut_at_120(tmp_path, monkeypatch):
    model = _matmul(tmp_path / "decoder.onnx")

    def fails(m, x):
        raise NotImplementedError("q" * 150 + "\nsecond line")

    monkeypatch.setattr(V, "_reference_run", fails)
    checks = V.Checks()
    V.reference_check(model, _x(), {"y": _x()}, checks, 1)
    assert checks.notes == [f"decoder.onnx: ReferenceEvaluator cannot run it (NotImplementedError: {'q' * 120}); "
                            "checked with ONNX Runtime only"] and checks.items == []


# ------------------------------------------------------------------ structure_problems, _is_int8

def _weighted(path, producers, weight, op="MatMul"):
    """x -> [producers] -> op(a, w) -> y, where producers make "a" and "wd" from x and ``weight``."""
    nodes = [*producers, helper.make_node(op, ["a", "wd"], ["y"], name="layer")]
    zw = np.zeros((), np.asarray(weight).dtype)
    return _save(path, nodes, {"w": weight, "s": np.float32(0.1), "z": np.uint8(0), "zw": zw})


def _dq_act():
    return [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["a"])]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_an_int8_static_layer_reads_8_bit_values_on_both_sides(tmp_path, dtype):
    w = np.ones((3, 2), dtype)
    ok = _weighted(tmp_path / "ok.onnx", [*_dq_act(), helper.make_node("DequantizeLinear", ["w", "s", "zw"], ["wd"])], w)
    assert V.structure_problems(ok, "int8-static") == []


def test_an_int8_static_layer_in_float_is_named(tmp_path):
    float_act = _weighted(tmp_path / "act.onnx", [helper.make_node("Identity", ["x"], ["a"]),
                                                  helper.make_node("DequantizeLinear", ["w", "s", "zw"], ["wd"])],
                          np.ones((3, 2), np.uint8))
    assert V.structure_problems(float_act, "int8-static") == [
        "act.onnx: MatMul 'layer' reads its activation in float, not from 8-bit values"]
    wide = _weighted(tmp_path / "wide.onnx", [*_dq_act(), helper.make_node("DequantizeLinear", ["w", "s", "zw"], ["wd"])],
                     np.ones((3, 2), np.int32))
    assert V.structure_problems(wide, "int8-static") == [
        "wide.onnx: MatMul 'layer' reads its weight in float, not from 8-bit values"]
    float_w = _weighted(tmp_path / "fw.onnx", [*_dq_act(), helper.make_node("Identity", ["w"], ["wd"])],
                        np.ones((3, 2), np.float32))
    assert V.structure_problems(float_w, "int8-static") == [
        "fw.onnx: MatMul 'layer' reads its weight in float, not from 8-bit values"]
    computed = _weighted(tmp_path / "cw.onnx", [*_dq_act(), helper.make_node("Identity", ["w"], ["w8"]),
                                                helper.make_node("DequantizeLinear", ["w8", "s", "zw"], ["wd"])],
                         np.ones((3, 2), np.uint8))
    assert V.structure_problems(computed, "int8-static") == [
        "cw.onnx: MatMul 'layer' reads its weight in float, not from 8-bit values"]
    both = _weighted(tmp_path / "both.onnx", [helper.make_node("Identity", ["x"], ["a"]),
                                              helper.make_node("Identity", ["w"], ["wd"])], W)
    assert V.structure_problems(both, "int8-static") == [
        "both.onnx: MatMul 'layer' reads its activation in float, not from 8-bit values",
        "both.onnx: MatMul 'layer' reads its weight in float, not from 8-bit values"]


def test_int8_dynamic_allows_only_a_float_conv_transpose(tmp_path):
    mm = _weighted(tmp_path / "mm.onnx", [helper.make_node("Identity", ["x"], ["a"]),
                                          helper.make_node("Identity", ["w"], ["wd"])], W)
    assert V.structure_problems(mm, "int8-dynamic") == ["mm.onnx: MatMul 'layer' is left in float"]
    two = _save(tmp_path / "two.onnx", [helper.make_node("MatMul", ["x", "w"], ["h"], name="first"),
                                        helper.make_node("MatMul", ["h", "v"], ["y"], name="second")],
                {"w": W, "v": np.ones((2, 2), np.float32)})
    assert V.structure_problems(two, "int8-dynamic") == ["two.onnx: MatMul 'first' is left in float",
                                                         "two.onnx: MatMul 'second' is left in float"]
    assert V.structure_problems(mm, "fp32") == [
        "mm.onnx: MatMul 'layer' reads its activation in float, not from 8-bit values",
        "mm.onnx: MatMul 'layer' reads its weight in float, not from 8-bit values"]
    ct = _save(tmp_path / "ct.onnx", [helper.make_node("Reshape", ["x", "shape"], ["a"]),
                                      helper.make_node("ConvTranspose", ["a", "w"], ["y"], name="up")],
               {"shape": np.array([1, 1, 1, 3]), "w": np.ones((1, 1, 1, 2), np.float32)})
    assert V.structure_problems(ct, "int8-dynamic") == []
    plain = _save(tmp_path / "plain.onnx", [helper.make_node("Relu", ["x"], ["y"])], {})
    assert V.structure_problems(plain, "int8-static") == [] and V.structure_problems(plain, "int8-dynamic") == []


@pytest.mark.parametrize("op, int8", [("MatMulInteger", True), ("ConvInteger", True), ("QLinearMatMul", True),
                                      ("QLinearConv", True), ("DequantizeLinear", True), ("QuantizeLinear", False),
                                      ("MatMul", False)])
def test_is_int8_looks_for_integer_ops(op, int8):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["r"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    assert V._is_int8(helper.make_model(graph)) is int8


# ------------------------------------------------------------------ measure_latency

class _Graph:
    def __init__(self, log, tag, out):
        self.log, self.tag, self.out = log, tag, out

    def get_inputs(self):
        from types import SimpleNamespace

        return [SimpleNamespace(name=f"{self.tag}_in")]

    def run(self, names, feeds):
        (key,) = feeds
        self.log.append((self.tag, names, key, feeds[key].copy()))
        return [self.out(feeds[key])]


def test_end_to_end_feeds_the_code_to_the_decoder():
    log = []
    enc = _Graph(log, "enc", lambda x: x[:, :1] * 2)
    dec = _Graph(log, "dec", lambda c: c)
    xb = np.arange(6, dtype=np.float32).reshape(3, 2)
    V._end_to_end(enc, dec, xb)()
    assert [(t, n, k) for t, n, k, _ in log] == [("enc", ["code"], "enc_in"), ("dec", None, "dec_in")]
    np.testing.assert_array_equal(log[0][3], xb)
    np.testing.assert_array_equal(log[1][3], xb[:, :1] * 2)


def test_measure_latency_reports_milliseconds_per_variant_and_batch(monkeypatch):
    from types import SimpleNamespace

    import edgeae.bench.timing as timing

    seen = []

    def blocks(calls, iterations, warmup):
        seen.append((len(calls), iterations, warmup))
        for c in calls:
            c()
        return SimpleNamespace(calls=[np.array([1_000_000, 3_000_000, 2_000_000]),
                                      np.array([123_456_789, 5, 7])][:len(calls)])

    monkeypatch.setattr(timing, "blocks", blocks)
    log = []
    pairs = {v: (_Graph(log, f"{v}-enc", lambda x: x), _Graph(log, f"{v}-dec", lambda c: c)) for v in ("fp32", "int8")}
    x = _x(3)
    out = V.measure_latency(pairs, x, batches=(2, 5), repeats=9)
    assert out == {"fp32": {"batch2": 2.0, "batch5": 2.0}, "int8": {"batch2": 0.0, "batch5": 0.0}}
    assert seen == [(2, 9, 1), (2, 9, 1)]
    assert [len(f) for t, _, _, f in log if t == "fp32-enc"] == [2, 5]
    pairs = {"a": pairs["fp32"]}
    monkeypatch.setattr(timing, "blocks", lambda calls, iterations, warmup: SimpleNamespace(
        calls=[np.array([123_456_789])]))
    assert V.measure_latency(pairs, x, batches=(1,)) == {"a": {"batch1": 123.4568}}
    seen.clear()
    monkeypatch.setattr(timing, "blocks", blocks)
    assert V.measure_latency(pairs, x)["a"].keys() == {"batch1", "batch64"}
    assert seen == [(1, 30, 1), (1, 30, 1)]
