"""How far two correct evaluations of an ONNX graph may differ, element by element.

Two correct implementations of one graph (PyTorch and ONNX Runtime, ONNX Runtime's fused
integer kernels and ``onnx.reference``, generated C and ONNX Runtime) differ only where
floating-point rounding happens. This module walks the graph once, node by node, on the
real inputs, and carries a bound ``D`` on ``|A - B|`` for every tensor:

- a sum of ``n`` products (MatMul, Gemm, Conv, ConvTranspose) in any order rounds to within
  ``gamma_n * sum|w||x|`` of the exact sum, ``gamma_n = n u / (1 - n u)`` (Higham,
  *Accuracy and Stability of Numerical Algorithms*, 2nd ed., Lemma 3.1 and eq. 3.5), so
  ``D_out = |W| D_in + |x| D_W + D_in D_W + (gamma_n^A + gamma_n^B) (|W||x| + |b|)``;
- a non-decreasing element-wise function (Relu, Clip, Sigmoid, Tanh, Exp) moves a value
  at most by its secant over ``[v - D, v + D]``, ``max(f(v + D) - f(v), f(v) - f(v - D))``,
  which never exceeds the function's range (a Sigmoid output moves at most 1, a Clip
  output its width), plus its own rounding (16 ulps and 2**-22 absolute for the library
  approximations of exp, tanh, logistic);
- data movement (Reshape, Transpose, Concat, MaxPool ...) moves ``D`` with the data;
- a quantizer (QuantizeLinear, DynamicQuantizeLinear, Round, a float -> int Cast) turns a
  deviation into whole steps: the outputs may differ by as many steps as there are rounding
  points (half-integers) within ``[v - D, v + D]``; zero when no tie is near, one at a tie;
  never more than the distance to the far end of the 8-bit range both outputs lie in;
- integer products (MatMulInteger, ConvInteger) are exact: ``D_out = |W - z_W| D_in``.

Modes: ``"float"`` (two float evaluations of the same graph), ``"fp16"`` (the float16 graph
against the float32 model it came from: float16 weights and stored activations are within
half a float16 step, ``u16 |v|``, of the float32 ones) and ``"quantized"`` (an int8 graph
against the float model it came from: every quantizer's own rounding and clipping error,
measured on the real values, plus half a step for every 8-bit weight). The second
evaluator's unit roundoff is ``u_b`` (onnx.reference accumulates float16 in float16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeae import numerics_rules as R
from edgeae.numerics_rules import U16, U32

__all__ = ["U32", "U16", "Deviation", "deviation_bounds", "graph_values", "compare_bounded"]

_SHAPES = {"Shape", "Constant", "ConstantOfShape", "Size", "Range"}  # no data flows through them


@dataclass
class Deviation:
    """Bounds for one graph on one batch: graph output -> per-element bound, plus notes."""

    bounds: dict[str, np.ndarray]  # output name -> bound on |A - B|, the output's shape
    values: dict[str, np.ndarray]  # output name -> the value the bound is centred on
    notes: list[str]  # ops without an error model, and what was assumed instead


def compare_bounded(got: np.ndarray, want: np.ndarray, bound: np.ndarray) -> tuple[float, float, int]:
    """(max |got - want|, largest share of the bound used, elements over it).

    Non-finite values anywhere count as infinitely wrong, also when both sides agree on NaN:
    a graph that computes NaN on real samples is not a correct model. An element whose bound
    is zero must match exactly (a share of inf when it does not)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return float("inf"), float("inf"), int(max(got.size, want.size, 1))
    if not (np.isfinite(got).all() and np.isfinite(want).all()):
        return float("inf"), float("inf"), int(np.count_nonzero(~(np.isfinite(got) & np.isfinite(want))))
    diff = np.abs(got - want)
    b = np.broadcast_to(np.asarray(bound, np.float64), diff.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(diff == 0, 0.0, np.where(b > 0, diff / np.where(b > 0, b, 1), np.inf))
    over = int(np.count_nonzero(diff > b))
    return (float(diff.max()) if diff.size else 0.0), (float(share.max()) if share.size else 0.0), over


def deviation_bounds(model: Any, x: np.ndarray, mode: str = "float", d_in: np.ndarray | None = None,
                     u_b: float = U32, values: dict[str, np.ndarray] | None = None,
                     weight_steps: dict[str, np.ndarray] | None = None) -> Deviation:
    """Per-element bounds on how far two evaluations of ``model`` (ModelProto or path) on
    ``x`` may differ; ``d_in`` bounds how far the two evaluations' inputs already differ.
    ``values`` (:func:`graph_values` of the same model and input) saves running the graph
    again when one batch is bounded in several modes. ``weight_steps`` ("quantized" mode):
    8-bit initializer -> how far each weight measured from its float weight, in steps
    (:func:`edgeae.export.weightcheck.weight_steps`); used where it is below the half step
    (one step at the range's ends) rounding allows, which stays the bound elsewhere."""
    model = _load(model)
    if mode not in ("float", "fp16", "quantized"):
        raise ValueError(f"unknown mode {mode!r}")
    walk = _Walk(model, mode, u_b, weight_steps)
    values = walk.evaluate(x) if values is None else values
    name = model.graph.input[0].name
    walk.d[name] = np.zeros(np.shape(x)) if d_in is None else np.asarray(d_in, np.float64)
    for node in model.graph.node:
        walk.step(node, values)
    outs = [o.name for o in model.graph.output]
    return Deviation({o: walk.d.get(o, np.zeros(np.shape(values[o]))) for o in outs},
                     {o: values[o] for o in outs}, walk.notes)


def graph_values(model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of ``model`` (ModelProto or path) on ``x``: the graph run as written, no fusions."""
    model = _load(model)
    return _Walk(model, "float", U32).evaluate(x)


def _load(model: Any) -> Any:
    import onnx

    return model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))


class _Walk:
    """One pass over the graph: values from ONNX Runtime, bounds by the rules above."""

    def __init__(self, model: Any, mode: str, u_b: float, weight_steps: dict[str, np.ndarray] | None = None):
        from onnx import numpy_helper

        self.model, self.mode, self.u_b, self.weight_steps = model, mode, u_b, weight_steps or {}
        self.consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        for n in model.graph.node:
            if n.op_type == "Constant":
                from onnx import helper

                for a in n.attribute:
                    if a.name == "value":
                        self.consts[n.output[0]] = numpy_helper.to_array(helper.get_attribute_value(a))
        self.d: dict[str, np.ndarray] = {}
        self.notes: list[str] = []
        self.opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=17)

    def evaluate(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every tensor's value: the graph run as written (no fusions) with all tensors as outputs."""
        import onnx

        m = onnx.ModelProto()
        m.CopyFrom(self.model)
        inferred = onnx.shape_inference.infer_shapes(m)
        types = {v.name: v for v in inferred.graph.value_info}
        have = {o.name for o in m.graph.output}
        for n in m.graph.node:
            for o in n.output:
                if o and o not in have and o in types:
                    m.graph.output.append(types[o])
                    have.add(o)
        sess = R.session(m.SerializeToString())
        names = [o.name for o in sess.get_outputs()]
        vals = dict(zip(names, sess.run(names, {sess.get_inputs()[0].name: x}), strict=True))
        vals[m.graph.input[0].name] = x
        return {**{k: v for k, v in self.consts.items()}, **vals}

    def dev(self, name: str, values: dict[str, np.ndarray]) -> np.ndarray:
        """The bound of an input tensor: known, an initializer's own, or zero for empty names."""
        if name in self.d:
            return self.d[name]
        if name in self.consts:
            c = self.consts[name]
            if self.mode == "fp16" and c.dtype == np.float16:
                return U16 * np.abs(c.astype(np.float64))  # rounded from the float32 weight
            if self.mode == "quantized" and c.dtype in (np.uint8, np.int8) and c.ndim >= 1:
                # an 8-bit weight is within half a step of the float one, one step at the range's ends
                # (the rounded zero point may clip the extreme weight; edgeae.export.validate.weight_steps)
                lo, hi = np.iinfo(c.dtype).min, np.iinfo(c.dtype).max
                rounding = np.where((c == lo) | (c == hi), 1.0, 0.5)
                measured = self.weight_steps.get(name)
                if measured is not None and np.shape(measured) == c.shape:
                    return np.minimum(np.asarray(measured, np.float64) + 2.0 ** -20, rounding)
                return rounding
            if self.mode == "quantized" and c.dtype == np.int32 and name.endswith("_quantized"):
                return np.full(c.shape, 0.5)  # an int32 bias, rounded to a step of s_x s_w
            return np.zeros(np.shape(c))
        return np.zeros(np.shape(values.get(name, 0.0)))

    def step(self, node: Any, values: dict[str, np.ndarray]) -> None:
        op = node.op_type
        if op in _SHAPES:
            for o in node.output:
                self.d[o] = np.zeros(np.shape(values.get(o, 0.0)))
            return
        ins = [np.asarray(values[i], np.float64) if i else None for i in node.input]
        ds = [self.dev(i, values) if i else None for i in node.input]
        outs = [np.asarray(values[o]) if o in values else None for o in node.output]
        rule = R.RULES.get(op)
        if rule is not None:
            result = rule(self, node, ins, ds, outs)
        elif op in R.MOVE:
            result = R.move(self, node, values, ds)
        else:
            result = R.unknown(self, node, outs)
        for o, r in zip(node.output, result, strict=False):
            if o:
                self.d[o] = np.asarray(r, np.float64)

    def u_of(self, out: np.ndarray | None) -> float:
        """Unit roundoff of the first evaluator for a tensor of this dtype."""
        return U16 if out is not None and out.dtype == np.float16 else U32
