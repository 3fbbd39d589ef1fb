"""fp32 graphs -> Program: dense / conv / transposed-conv kernels and fused elementwise loops.

Lowering rules (batch 1, shapes static):

- Gemm (transA=0) and MatMul with a constant right operand -> ``dense_f32``; the weight is
  stored (K, N) so the inner loop runs over outputs (vectorizes without reassociation);
  alpha and beta are folded into the stored weight and bias.
- Conv / ConvTranspose, 2-D, any stride / padding / dilation / group -> ``conv_f32`` /
  ``convt_f32``; 1-D ones (N, C, T) run on the same kernels as 2-D with height 1; BatchNormalization becomes a per-channel multiply-add.
- Reshape / Flatten / Squeeze / Unsqueeze / Identity move no data (the output names the same
  bytes); a copy is made only when a graph output must own them.
- Chains of elementwise operators (Relu, LeakyRelu, Sigmoid, Tanh, Clip, Round, Cast, Add /
  Sub / Mul / Div with a constant or a same-shaped tensor) become one loop per chain.
"""

from __future__ import annotations

import numpy as np

from edgeae.codegen.conv_layout import COLUMN_PIXELS, convt_phase_matrices
from edgeae.codegen.graph import Graph, Node, UnsupportedOpError
from edgeae.codegen.program import Program, Step

__all__ = ["lower_fp32", "ALIAS_OPS", "POINTWISE_OPS", "reshape_alias", "conv_params", "as_2d_weight"]

ALIAS_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
POINTWISE_OPS = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Round", "Cast", "Add", "Sub", "Mul", "Div",
                 "Neg", "Abs", "BatchNormalization")
_DTYPES = {"float32", "uint8", "int8"}


def _f(v: float) -> str:
    """An exact C float literal for a float32 value (9 significant digits round-trip)."""
    v = float(np.float32(v))
    if not np.isfinite(v):
        raise UnsupportedOpError(f"constant {v} is not finite; C float literals must be finite")
    s = f"{v:.9g}"
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


def as_2d_weight(w: np.ndarray) -> np.ndarray:
    """A 1-D convolution's weight (M, C, K) as the 2-D kernels' (M, C, 1, K); 2-D weights unchanged."""
    return w.reshape(w.shape[:2] + (1,) + w.shape[2:]) if w.ndim == 3 else w


def conv_params(node: Node, xs: tuple[int, ...], ys: tuple[int, ...], w: np.ndarray) -> dict:
    """Shape, stride, padding, dilation and group of a Conv / ConvTranspose as the 2-D kernels read them.

    A 1-D convolution over (N, C, T) runs as a 2-D one over (N, C, 1, T) with a (1, K) kernel:
    height 1, stride 1, no padding or dilation along it; its bytes are laid out the same way.
    """
    a = node.attrs
    one_d = len(xs) == 3 and w.ndim == 3 and len(ys) == 3
    if not one_d and (len(xs) != 4 or w.ndim != 4 or len(ys) != 4):
        raise UnsupportedOpError(f"{node.where()}: only 1-D (N, C, T) and 2-D (N, C, H, W) convolutions are "
                                 f"supported, got input {xs} and weight {w.shape}")
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") and not a.get("pads"):
        raise UnsupportedOpError(f"{node.where()}: auto_pad={a['auto_pad']} is not supported; export with "
                                 "explicit pads")
    if node.op == "ConvTranspose" and "output_shape" in a:
        raise UnsupportedOpError(f"{node.where()}: ConvTranspose output_shape is not supported")
    rank = 1 if one_d else 2
    pads = list(a.get("pads", [0] * 2 * rank))
    s = list(a.get("strides", [1] * rank))
    d = list(a.get("dilations", [1] * rank))
    if one_d:  # height 1: (T) -> (1, T)
        xs, ys, pads, s, d = (xs[0], xs[1], 1, xs[2]), (ys[0], ys[1], 1, ys[2]), [0, pads[0]], [1, s[0]], [1, d[0]]
        w = as_2d_weight(w)
    return {"C": xs[1], "H": xs[2], "W": xs[3], "M": ys[1], "OH": ys[2], "OW": ys[3],
            "KH": int(w.shape[2]), "KW": int(w.shape[3]), "SH": s[0], "SW": s[1], "PT": pads[0], "PL": pads[1],
            "DH": d[0], "DW": d[1], "G": int(a.get("group", 1))}


def reshape_alias(g: Graph, node: Node) -> None:
    """Check that an alias op only reinterprets shape (its data input is the first input)."""
    src, dst = node.inputs[0], node.outputs[0]
    if g.numel(src) != g.numel(dst):
        raise UnsupportedOpError(f"{node.where()} changes the element count ({g.shapes[src]} -> {g.shapes[dst]})")


class _Lowering:
    def __init__(self, g: Graph, tag: str):
        self.g, self.tag = g, tag
        self.p = Program("fp32", {}, [], list(g.inputs), list(g.outputs))
        self.alias: dict[str, str] = {}  # tensor -> buffer that holds its bytes
        for t in g.inputs:
            self._buffer(t, "input")
        for t in g.outputs:
            if t not in self.p.buffers:
                self._buffer(t, "output")

    # ---- helpers -------------------------------------------------------------------------
    def _dtype(self, t: str) -> str:
        d = self.g.dtypes.get(t)
        name = np.dtype(d).name if d is not None else "float32"
        if name not in _DTYPES:
            raise UnsupportedOpError(f"tensor {t!r} has element type {name}; C code handles float32, uint8, int8")
        return name

    def _buffer(self, t: str, kind: str = "arena") -> str:
        self.p.add_buffer(t, self._dtype(t), self.g.shapes[t], kind)
        return t

    def buf(self, t: str) -> str:
        """The buffer holding tensor ``t`` (follows reshapes)."""
        if t in self.g.consts:
            raise UnsupportedOpError(f"tensor {t!r} is a constant where the C generator expects computed data")
        return self.alias.get(t, t)

    def out(self, t: str) -> str:
        return t if t in self.p.buffers else self._buffer(t)

    def const(self, node: Node, k: int, required: bool = True) -> np.ndarray | None:
        if len(node.inputs) <= k or not node.inputs[k]:
            if required:
                raise UnsupportedOpError(f"{node.where()} lacks input {k}")
            return None
        t = node.inputs[k]
        if t not in self.g.consts:
            raise UnsupportedOpError(f"{node.where()}: input {t!r} must be a constant (an initializer) for the "
                                     "C generator")
        return self.g.consts[t]

    def single_use(self, t: str) -> bool:
        return len(self.g.consumers(t)) == 1 and t not in self.g.outputs

    # ---- lowering --------------------------------------------------------------------------
    def run(self) -> Program:
        for node in self.g.nodes:
            handler = getattr(self, f"op_{node.op}", None)
            if handler is None:
                raise UnsupportedOpError(
                    f"{self.g.name}: {node.where()} is not supported by the C generator; supported: "
                    f"Gemm, MatMul, Conv, ConvTranspose, {', '.join(POINTWISE_OPS)}, {', '.join(ALIAS_OPS)}")
            handler(node)
        for t in self.g.outputs:  # an output that only aliases another buffer gets its own copy
            src = self.buf(t)
            if src != t:
                self.p.steps.append(Step("copy", f"output {t}", [src], [t], {"n": self.g.numel(t)}))
        return self.p

    def _alias(self, node: Node) -> None:
        reshape_alias(self.g, node)
        src, dst = node.inputs[0], node.outputs[0]
        self.alias[dst] = self.buf(src)  # a graph output keeps its own buffer; run() copies into it

    op_Reshape = op_Flatten = op_Squeeze = op_Unsqueeze = op_Identity = _alias

    def op_Gemm(self, node: Node) -> None:
        a = node.attrs
        if a.get("transA", 0):
            raise UnsupportedOpError(f"{node.where()}: transA=1 is not supported")
        w = self.const(node, 1).astype(np.float32)
        w = w.T if a.get("transB", 0) else w  # (K, N)
        w = w * np.float32(a.get("alpha", 1.0))
        b = self.const(node, 2, required=False)
        self._dense(node, w, b if b is None else (b * np.float32(a.get("beta", 1.0))))

    def op_MatMul(self, node: Node) -> None:
        w = self.const(node, 1).astype(np.float32)
        if w.ndim != 2:
            raise UnsupportedOpError(f"{node.where()}: the constant right operand must be 2-D, got {w.shape}")
        self._dense(node, w, None)

    def _dense(self, node: Node, w: np.ndarray, b: np.ndarray | None) -> None:
        x, y = node.inputs[0], node.outputs[0]
        k, n = w.shape
        if self.g.numel(x) != k or self.g.numel(y) != n:
            raise UnsupportedOpError(f"{node.where()}: input {self.g.shapes[x]} x weight {w.shape} is not a "
                                     "batch-1 vector-matrix product")
        bias = np.zeros(n, np.float32) if b is None else np.broadcast_to(b.astype(np.float32).reshape(-1), (n,))
        params = {"K": k, "N": n, "w": self.p.add_const(f"{node.name}_weight", np.ascontiguousarray(w)),
                  "b": self.p.add_const(f"{node.name}_bias", np.ascontiguousarray(bias))}
        scratch = self.p.add_buffer(f"{y}/partial_sums", "float32", (n,)).name  # lives for this step only
        self.p.steps.append(Step("dense_f32", node.name, [self.buf(x)], [self.out(y), scratch], params))

    def _conv(self, node: Node, transposed: bool) -> None:
        w = self.const(node, 1)
        params = conv_params(node, self.g.shapes[node.inputs[0]], self.g.shapes[node.outputs[0]], w)
        w = as_2d_weight(w).astype(np.float32)
        b = self.const(node, 2, required=False)
        bias = np.zeros(params["M"], np.float32) if b is None else b.astype(np.float32)
        writes = [self.out(node.outputs[0])]
        # taps by outputs per group (transposed: per group and phase); 8 pixels' patches as scratch
        mats = (list(convt_phase_matrices(w, params)) if transposed else
                [grp.reshape(len(grp), -1) for grp in np.split(w, params["G"])])
        w = np.concatenate([m.T.reshape(-1) for m in mats])
        writes.append(self.p.add_buffer(f"{node.outputs[0]}/column", "float32",
                                        (COLUMN_PIXELS * max(m.shape[1] for m in mats),)).name)
        params["w"] = self.p.add_const(f"{node.name}_weight", np.ascontiguousarray(w))
        params["b"] = self.p.add_const(f"{node.name}_bias", bias)
        kind = "convt_f32" if transposed else "conv_f32"
        self.p.steps.append(Step(kind, node.name, [self.buf(node.inputs[0])], writes, params))

    def op_Conv(self, node: Node) -> None:
        self._conv(node, False)

    def op_ConvTranspose(self, node: Node) -> None:
        self._conv(node, True)

    # ---- elementwise chains --------------------------------------------------------------------
    def _operand(self, node: Node, t: str, shape: tuple[int, ...]) -> str:
        """A C expression for constant operand ``t`` at element ``i`` of a tensor of ``shape``."""
        v = self.g.consts[t].astype(np.float32)
        if v.size == 1:
            return _f(v.reshape(-1)[0])
        full = np.broadcast_to(v, shape) if np.broadcast_shapes(v.shape, shape) == tuple(shape) else None
        if full is None:
            raise UnsupportedOpError(f"{node.where()}: constant {t!r} {v.shape} does not broadcast to {shape}")
        if len(shape) >= 2 and shape[1] > 1:  # one value per channel?
            per = np.ascontiguousarray(full.reshape(shape[0], shape[1], -1)[0, :, 0])
            if np.array_equal(full, np.broadcast_to(per.reshape((1, -1) + (1,) * (len(shape) - 2)), shape)):
                inner = int(np.prod(shape[2:])) if len(shape) > 2 else 1
                name = self.p.add_const(f"{node.name}_{t}", per)
                return f"PFX_{name}[(i / {inner}u) % {shape[1]}u]" if inner > 1 else f"PFX_{name}[i % {shape[1]}u]"
        name = self.p.add_const(f"{node.name}_{t}", np.ascontiguousarray(full).reshape(-1))
        return f"PFX_{name}[i]"

    def _exprs(self, node: Node) -> tuple[list[str], str | None]:
        """C statements updating ``v`` for one elementwise node; plus a second data input if any."""
        op, ins, shape = node.op, node.inputs, self.g.shapes[node.outputs[0]]
        if op == "Relu":
            return ["v = v > 0.0f ? v : 0.0f;"], None
        if op == "LeakyRelu":
            return [f"v = v >= 0.0f ? v : v * {_f(node.attrs.get('alpha', 0.01))};"], None
        if op == "Sigmoid":
            return ["v = 1.0f / (1.0f + expf(-v));"], None
        if op == "Tanh":
            return ["v = tanhf(v);"], None
        if op == "Round":
            return ["v = rintf(v); /* ONNX Round: halves to even (default rounding mode) */"], None
        if op == "Neg":
            return ["v = -v;"], None
        if op == "Abs":
            return ["v = v < 0.0f ? -v : v;"], None
        if op == "Clip":
            out = []
            if len(ins) > 1 and ins[1]:
                out.append(f"v = v < {self._operand(node, ins[1], shape)} ? {self._operand(node, ins[1], shape)} : v;")
            if len(ins) > 2 and ins[2]:
                out.append(f"v = v > {self._operand(node, ins[2], shape)} ? {self._operand(node, ins[2], shape)} : v;")
            return out, None
        if op == "Cast":
            to = np.dtype(self.g.dtypes[node.outputs[0]]).name
            if to == "float32":
                return [], None
            if to in ("uint8", "int8"):
                ct = "uint8_t" if to == "uint8" else "int8_t"
                return [f"v = (float)({ct})v; /* Cast to {to} (inputs are in range here) */"], None
            raise UnsupportedOpError(f"{node.where()}: Cast to {to} is not supported")
        if op == "BatchNormalization":
            scale, bias, mean, var = (self.g.consts[t].astype(np.float64) for t in ins[1:5])
            a = scale / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
            b = bias - mean * a
            ca = self.p.add_const(f"{node.name}_mul", a.astype(np.float32))
            cb = self.p.add_const(f"{node.name}_add", b.astype(np.float32))
            inner = int(np.prod(shape[2:])) if len(shape) > 2 else 1
            idx = f"(i / {inner}u) % {shape[1]}u"
            return [f"v = v * PFX_{ca}[{idx}] + PFX_{cb}[{idx}]; /* BatchNormalization folded */"], None
        sym = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}[op]
        a, b = ins[0], ins[1]
        if b in self.g.consts:
            return [f"v = v {sym} {self._operand(node, b, shape)};"], None
        if a in self.g.consts:
            return [f"v = {self._operand(node, a, shape)} {sym} v;"], None
        if self.g.shapes[a] != self.g.shapes[b]:
            raise UnsupportedOpError(f"{node.where()}: {op} of two tensors needs equal shapes, got "
                                     f"{self.g.shapes[a]} and {self.g.shapes[b]}")
        other = b
        return [f"v = v {sym} (float)u[i];"], other

    def _pointwise(self, node: Node) -> None:
        exprs, other = self._exprs(node)
        ins = node.inputs
        src = ins[0] if not (node.op in ("Add", "Sub", "Mul", "Div") and ins[0] in self.g.consts) else ins[1]
        y = node.outputs[0]
        prev = self.p.steps[-1] if self.p.steps else None
        s_buf = self.buf(src)
        # fuse into the previous chain when it produced our input and nothing else reads it
        if (prev is not None and prev.kind == "pointwise" and prev.writes[0] == s_buf and other is None
                and prev.params.get("other") is None and self.single_use(src) and src not in self.alias):
            del self.p.buffers[s_buf]
            prev.writes[0] = self.out(y)
            prev.params["exprs"] += exprs
            prev.node += f", {node.name}"
            return
        reads = [s_buf] + ([self.buf(other)] if other else [])
        self.p.steps.append(Step("pointwise", node.name, reads, [self.out(y)],
                                 {"exprs": exprs, "other": self.buf(other) if other else None, "n": self.g.numel(y)},
                                 inplace=True))

    op_Relu = op_LeakyRelu = op_Sigmoid = op_Tanh = op_Clip = op_Round = op_Cast = _pointwise
    op_Add = op_Sub = op_Mul = op_Div = op_Neg = op_Abs = op_BatchNormalization = _pointwise


def lower_fp32(g: Graph, tag: str = "") -> Program:
    """Lower an fp32 graph; raises UnsupportedOpError naming the first op it cannot lower."""
    return _Lowering(g, tag).run()
