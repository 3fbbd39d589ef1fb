"""The per-op rules of :mod:`edgeae.numerics`: how far an op's outputs may differ between two
correct evaluations, given how far its inputs already differ (``D``) and their values.

Every rule returns one bound array per node output. Values are ONNX Runtime's, run as
written; the other evaluation lies within ``D`` of them, so slopes are taken as their
largest over ``[v - D, v + D]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["U32", "U16", "RULES", "MOVE", "gamma", "crossings", "steps", "secant", "within", "move", "unknown", "run_node",
           "session"]

U32 = 2.0 ** -24  # unit roundoff of float32 (round to nearest)
U16 = 2.0 ** -11  # unit roundoff of float16
FN_ULPS = 16  # relative error allowed to a library exp / tanh / logistic, in ulps
FN_ABS = 2.0 ** -22  # and absolute: 4 ulps of 0.5 (vectorized logistic is 0.5 + 0.5 tanh(x / 2))
FALLBACK = 2.0 ** -12  # relative allowance after an op with no rule (recorded as a note)

# Ops that only move or select data: the bound moves the same way (MaxPool: the largest in the window).
MOVE = {"Reshape", "Flatten", "Transpose", "Identity", "Squeeze", "Unsqueeze", "Concat", "Slice", "Split",
        "Gather", "Expand", "Tile", "MaxPool", "Pad", "DepthToSpace", "SpaceToDepth", "GlobalMaxPool"}
_RANGE = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127)}


def gamma(n: int, u: float) -> float:
    """Higham's gamma_n: a sum of n products in any order is within gamma_n * sum|terms| of exact."""
    return n * u / (1 - n * u) if n * u < 1 else float("inf")


def crossings(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How many rounding points k + 1/2 lie in [lo, hi] (round half to even included)."""
    return np.maximum(np.floor(hi - 0.5) - np.ceil(lo - 0.5) + 1, 0.0)


def steps(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How many steps a value in [lo, hi] may round away from ``v`` (which lies in it): the
    rounding points on the farther side."""
    return np.maximum(crossings(lo, np.maximum(v, lo)), crossings(np.minimum(v, hi), hi))


def within(v: np.ndarray, d: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A bound ``d`` on an output both evaluations keep in ``[lo, hi]`` (an 8-bit integer):
    never more than the distance from ``v`` to the far end of the range."""
    v = np.asarray(v, np.float64)
    return np.minimum(d, np.maximum(v - lo, hi - v))


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _own(w: Any, out: np.ndarray | None, mag: Any) -> Any:
    """Both evaluations' own rounding of a result of magnitude ``mag``."""
    return (w.u_of(out) + w.u_b) * np.abs(mag)


def _acc(w: Any, n: int) -> float:
    """Accumulation error factor of both evaluations (the first accumulates in float32)."""
    return gamma(n, U32) + gamma(n, w.u_b)


def _axis(v: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """A per-channel (1-D) scale or zero point shaped to broadcast along ``axis``."""
    v = np.asarray(v, np.float64)
    if v.ndim != 1 or v.size == 1 or ndim <= 1:
        return v.reshape(()) if v.size == 1 else v
    shape = [1] * ndim
    shape[axis % ndim] = v.size
    return v.reshape(shape)


def _gemm(w, node, ins, ds, outs):
    a = _attrs(node)
    x, wt = ins[0], ins[1]
    dx, dw = ds[0], ds[1]
    if a.get("transA"):
        x, dx = x.T, dx.T
    if a.get("transB"):
        wt, dw = wt.T, dw.T
    alpha, beta = abs(a.get("alpha", 1.0)), abs(a.get("beta", 1.0))
    c = np.abs(ins[2]) * beta if len(ins) > 2 and ins[2] is not None else 0.0
    dc = ds[2] * beta if len(ins) > 2 and ins[2] is not None else 0.0
    m = alpha * (np.abs(x) @ np.abs(wt)) + c
    p = alpha * (dx @ np.abs(wt) + (np.abs(x) + dx) @ dw) + dc
    return [p + _acc(w, x.shape[-1] + 1) * m + _own(w, outs[0], outs[0])]


def _matmul(w, node, ins, ds, outs):
    x, wt, dx, dw = ins[0], ins[1], ds[0], ds[1]
    m = np.abs(x) @ np.abs(wt)
    p = dx @ np.abs(wt) + (np.abs(x) + dx) @ dw
    return [p + _acc(w, x.shape[-1]) * m + _own(w, outs[0], outs[0])]


def _conv(w, node, ins, ds, outs):
    op, a = node.op_type, _attrs(node)
    wt, dw = ins[1], ds[1]
    group = int(a.get("group", 1))
    n = (wt.shape[1] if op == "Conv" else wt.shape[0] // group) * int(np.prod(wt.shape[2:])) + 1
    b = np.abs(ins[2]) if len(ins) > 2 and ins[2] is not None else None
    f = np.float32
    m = run_node(op, [np.abs(ins[0]).astype(f), np.abs(wt).astype(f), None if b is None else b.astype(f)], a,
                 w.opset)[0]
    p = run_node(op, [ds[0].astype(f), np.abs(wt).astype(f)], a, w.opset)[0]
    if np.any(dw):
        p = p + run_node(op, [(np.abs(ins[0]) + ds[0]).astype(f), dw.astype(f)], a, w.opset)[0]
    db = ds[2] if len(ins) > 2 and ins[2] is not None else 0.0
    db = _axis(db, p.ndim, 1) if np.ndim(db) else db
    return [(p + db) * (1 + 2 ** -20) + _acc(w, n) * m + _own(w, outs[0], outs[0])]


def _integer(w, node, ins, ds, outs):
    """MatMulInteger / ConvInteger: exact integer sums of (a - z_a)(b - z_b)."""
    a_, b_ = ins[0], ins[1]
    za = ins[2] if len(ins) > 2 and ins[2] is not None else 0.0
    zb = ins[3] if len(ins) > 3 and ins[3] is not None else 0.0
    dza = ds[2] if len(ins) > 2 and ins[2] is not None else 0.0
    da, db = ds[0] + dza, ds[1]
    if node.op_type == "MatMulInteger":
        a0, b0 = a_ - za, b_ - zb  # a per-column z_b broadcasts along B's last axis
        return [da @ np.abs(b0) + (np.abs(a0) + da) @ db]
    zb = _axis(zb, b_.ndim, 0) if np.ndim(zb) else zb
    f, attrs = np.float32, _attrs(node)
    p = run_node("Conv", [np.broadcast_to(da, a_.shape).astype(f), np.abs(b_ - zb).astype(f)], attrs, w.opset)[0]
    if np.any(db):
        p = p + run_node("Conv", [(np.abs(a_ - za) + da).astype(f), np.broadcast_to(db, b_.shape).astype(f)],
                         attrs, w.opset)[0]
    return [p]


def secant(f: Any, v: np.ndarray, d: np.ndarray) -> np.ndarray:
    """How far a non-decreasing ``f`` can move from ``f(v)`` for an input within ``d`` of ``v``:
    ``max(f(v + d) - f(v), f(v) - f(v - d))``, exact for the interval, so never more than
    ``f``'s range (a Sigmoid output moves at most 1, a Tanh output 2, a Clip output its width)."""
    with np.errstate(over="ignore", invalid="ignore"):
        fv = f(v)
        out = np.maximum(f(v + d) - fv, fv - f(v - d))
    return np.where(np.isnan(out), np.inf, out)


def _monotone_rule(f):
    """An increasing library function (exp, tanh, logistic): the secant over ``[v - D, v + D]``
    plus its own rounding in both evaluations."""
    def rule(w, node, ins, ds, outs):
        fn = FN_ULPS * (w.u_of(outs[0]) + w.u_b) * np.abs(outs[0]) + 2 * FN_ABS
        return [secant(f, ins[0], ds[0]) + fn]
    return rule


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))  # the logistic without overflow for large |v|


def _relu(w, node, ins, ds, outs):
    return [secant(lambda v: np.maximum(v, 0.0), ins[0], ds[0])]


def _clip(w, node, ins, ds, outs):
    """Clip to [lo, hi] (inputs from opset 11, attributes before): the secant, never more than hi - lo."""
    a = _attrs(node)
    lo = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("min", -np.inf)
    hi = ins[2] if len(ins) > 2 and ins[2] is not None else a.get("max", np.inf)
    return [secant(lambda v: np.clip(v, lo, hi), ins[0], ds[0])]


def _addsub(w, node, ins, ds, outs):
    return [ds[0] + ds[1] + _own(w, outs[0], np.abs(ins[0]) + np.abs(ins[1]))]


def _mul(w, node, ins, ds, outs):
    a, b, da, db = ins[0], ins[1], ds[0], ds[1]
    return [np.abs(a) * db + np.abs(b) * da + da * db + _own(w, outs[0], outs[0])]


def _div(w, node, ins, ds, outs):
    a, b, da, db = ins[0], ins[1], ds[0], ds[1]
    room = np.abs(b) - db
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(room > 0, (da + np.abs(a / b) * db) / np.where(room > 0, room, 1), np.inf)
    return [d + _own(w, outs[0], outs[0])]


def _batchnorm(w, node, ins, ds, outs):
    a = _attrs(node)
    x = ins[0]
    k = _axis(ins[1] / np.sqrt(ins[4] + a.get("epsilon", 1e-5)), x.ndim, 1)
    shift = np.abs(_axis(ins[3], x.ndim, 1) * k) + np.abs(_axis(ins[2], x.ndim, 1))
    return [np.abs(k) * ds[0] + 4 * _own(w, outs[0], np.abs(k * x) + shift)]


def _round(w, node, ins, ds, outs):
    return [steps(ins[0], ins[0] - ds[0], ins[0] + ds[0])]


def _cast(w, node, ins, ds, outs):
    v, d, out = ins[0], ds[0], outs[0]
    if out is not None and np.issubdtype(out.dtype, np.integer):
        lo, hi = _RANGE.get(np.dtype(out.dtype), (-np.inf, np.inf))
        if np.all(v == np.round(v)):
            return [within(out, np.ceil(d), lo, hi)]  # integral values that differ by whole steps keep them
        return [within(out, np.maximum(np.floor(v + d) - np.ceil(v - d) + 1, 0.0), lo, hi)]
    if out is not None and out.dtype == np.float16:
        return [d + (U16 + (w.u_b if w.u_b == U16 else 0.0)) * np.abs(out)]
    return [d]


def quantize_symbols(w, node, ins, ds, outs):
    x, d, q = ins[0], ds[0], outs[0]
    axis = _attrs(node).get("axis", 1)
    s = _axis(ins[1], x.ndim, axis)
    zp = _axis(ins[2], x.ndim, axis) if len(ins) > 2 and ins[2] is not None else 0.0
    y = x / s
    qmin, qmax = _RANGE.get(np.dtype(q.dtype), (-np.inf, np.inf))
    if w.mode == "quantized":  # the graph's own rounding and clipping, measured, plus the input's
        return [within(q, d / np.abs(s) + np.abs((q.astype(np.float64) - zp) - y) + 2 * U32 * np.abs(y), qmin, qmax)]
    r = d / np.abs(s) + 2 * (U32 + w.u_b) * np.abs(y)
    lo, hi = np.maximum(y - r, qmin - zp - 0.5), np.minimum(y + r, qmax - zp + 0.5)
    return [np.where(lo <= hi, steps(y, lo, hi), 0.0)]


def _dequantize(w, node, ins, ds, outs):
    q = ins[0]
    axis = _attrs(node).get("axis", 1)
    s = _axis(ins[1], q.ndim, axis)
    zp = _axis(ins[2], q.ndim, axis) if len(ins) > 2 and ins[2] is not None else 0.0
    dzp = _axis(ds[2], q.ndim, axis) if len(ins) > 2 and ins[2] is not None else 0.0
    ds_ = _axis(ds[1], q.ndim, axis)
    return [np.abs(s) * (ds[0] + dzp) + np.abs(q - zp) * ds_ + _own(w, outs[0], outs[0])]


def _dynamic_quantize(w, node, ins, ds, outs):
    """y, scale, zero point from the data's own range (uint8): a deviation of the range moves
    the scale and may flip the zero point; every element then rounds within its interval."""
    x, d = ins[0], ds[0]
    y, s, zp = (np.asarray(o, np.float64) for o in outs)
    if w.mode == "quantized":
        return [within(y, d / s + np.abs((y - zp) - x / s) + 2 * U32 * np.abs(x / s), 0, 255), np.zeros(()),
                np.zeros(())]
    dmax = float(d.max(initial=0.0))
    ds_ = 2 * dmax / 255 + 4 * (U32 + w.u_b) * s
    lo_min = min(0.0, float(x.min(initial=0.0)))
    zr = -lo_min / s
    rz = dmax / s + abs(lo_min) * ds_ / (s * (s - ds_)) + 4 * U32 * abs(zr)
    dz = steps(zr, zr - rz, zr + rz)
    v = x / s
    r = d / s + np.abs(x) * ds_ / (s * (s - ds_)) + 2 * (U32 + w.u_b) * np.abs(v)
    lo, hi = np.maximum(v - r, -zp - 0.5 - dz), np.minimum(v + r, 255 - zp + 0.5 + dz)
    return [np.where(lo <= hi, steps(v, lo, hi), 0.0) + dz, np.asarray(ds_), np.asarray(dz)]


def move(w: Any, node: Any, values: dict[str, np.ndarray], ds: list) -> list[np.ndarray]:
    """Run the op itself on the bounds (other inputs as they are) in float32."""
    feeds = []
    for k, name in enumerate(node.input):
        if not name:
            feeds.append(None)
        elif k == 0 or node.op_type == "Concat":
            feeds.append(np.asarray(ds[k], np.float32) * np.float32(1 + 2 ** -20))
        else:
            feeds.append(np.asarray(values[name]))
    return run_node(node.op_type, feeds, _attrs(node), w.opset, len(node.output))


def unknown(w: Any, node: Any, outs: list) -> list[np.ndarray]:
    """An op with no rule: the largest input bound plus FALLBACK of the output's magnitude."""
    w.notes.append(f"{node.op_type} ({node.name}) has no error model: outputs after it are allowed "
                   f"the largest input deviation plus {FALLBACK:g} of their largest magnitude")
    d_in = max((float(np.max(w.d.get(i, 0.0), initial=0.0)) for i in node.input if i), default=0.0)
    return [np.full(np.shape(o), d_in + FALLBACK * float(np.abs(np.asarray(o, np.float64)).max(initial=0.0)))
            if o is not None else np.zeros(()) for o in outs]


RULES = {
    "Gemm": _gemm, "MatMul": _matmul, "Conv": _conv, "ConvTranspose": _conv,
    "MatMulInteger": _integer, "ConvInteger": _integer,
    "Relu": _relu, "LeakyRelu": lambda w, n, i, d, o: [d[0] * max(1.0, abs(_attrs(n).get("alpha", 0.01)))],
    "Sigmoid": _monotone_rule(_sigmoid), "Tanh": _monotone_rule(np.tanh), "Exp": _monotone_rule(np.exp),
    "Abs": lambda w, n, i, d, o: [d[0]], "Neg": lambda w, n, i, d, o: [d[0]], "Clip": _clip,
    "Add": _addsub, "Sub": _addsub, "Mul": _mul, "Div": _div, "BatchNormalization": _batchnorm,
    "Round": _round, "Cast": _cast, "QuantizeLinear": quantize_symbols, "DequantizeLinear": _dequantize,
    "DynamicQuantizeLinear": _dynamic_quantize,
}


_SESSIONS: dict[bytes, Any] = {}


def session(blob: bytes) -> Any:
    """A one-thread ONNX Runtime session running a serialized model as written (cached)."""
    import onnxruntime as ort

    from edgeae.runtime.session import session_options

    if blob not in _SESSIONS:
        if len(_SESSIONS) > 256:
            _SESSIONS.clear()
        opts = session_options(1, optimization="disabled")
        _SESSIONS[blob] = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
    return _SESSIONS[blob]


def run_node(op: str, inputs: list[np.ndarray | None], attrs: dict[str, Any], opset: int,
             n_out: int = 1) -> list[np.ndarray]:
    """Run one ONNX node in ONNX Runtime on the given arrays (None: an absent optional input)."""
    import onnx
    from onnx import helper

    names = [f"i{k}" if v is not None else "" for k, v in enumerate(inputs)]
    while names and names[-1] == "":
        names.pop()
    feeds = {n: v for n, v in zip(names, inputs, strict=False) if n}
    graph_in = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), None)
                for n, v in feeds.items()]
    outs = [f"o{k}" for k in range(n_out)]
    node = helper.make_node(op, names, outs, **attrs)
    out_info = [helper.make_empty_tensor_value_info(o) for o in outs]
    graph = helper.make_graph([node], "n", graph_in, out_info)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = min(m.ir_version, onnx.IR_VERSION, 9)
    return [np.asarray(v, np.float64) for v in session(m.SerializeToString()).run(None, feeds)]
