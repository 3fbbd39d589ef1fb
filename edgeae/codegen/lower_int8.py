"""int8-static (QDQ) graphs -> Program with integer kernels only.

A QDQ graph says, for every compute node, how its inputs and output are quantized::

    xq -> DequantizeLinear(sx, zx) -> Gemm/MatMul/Conv/ConvTranspose <- DQ(wq, sw[c], zw[c]), DQ(bq)
       -> [Relu] -> QuantizeLinear(sy, zy) -> yq

Each such group becomes one integer kernel (activations and weights uint8 or int8, read
from the graph, zero points anywhere)::

    acc  = bq[c] + sum (xq - zx) * (wq - zw[c])                 int32, exact
    yq   = clamp(zy + round_half_even(acc * sx * sw[c] / sy))   multiplier as mult[c] / 2^shift[c]

with ``mult`` a 31-bit integer and ``shift`` chosen at generation; Relu becomes the lower
clamp ``zy``. Everything between a quantized tensor and the next QuantizeLinear (or a graph
output) that is elementwise on that one tensor - DequantizeLinear, Sigmoid, Tanh, Mul by a
constant, Round, Clip, Cast, ... - is a function of one 8-bit value, so it is tabulated at
generation into a 256-entry table by running that very subgraph in ONNX Runtime: the C
code does a table lookup. A float graph input is quantized once at entry (one division
per element, ties to even, saturating); a float output is ``(q - zp) * scale``, one float
multiply per element, as DequantizeLinear defines it.
"""

from __future__ import annotations

import math

import numpy as np

from edgeae.codegen.conv_layout import conv_column, convt_phase_matrices
from edgeae.codegen.graph import Graph, Node, UnsupportedOpError
from edgeae.codegen.lower_fp32 import ALIAS_OPS, as_2d_weight, conv_params, reshape_alias
from edgeae.codegen.lower_int8_tables import COMPUTE_OPS, QRANGE, TableLowering
from edgeae.codegen.program import Program, Step

__all__ = ["lower_int8", "multiplier", "rows_by_four"]



def multiplier(real: float) -> tuple[int, int]:
    """(mult, shift) with real ~= mult / 2^shift, mult in [2^30, 2^31), shift in 1..62.

    Multipliers too small to matter for any int32 accumulator (< 2^-32: |acc * real| < 1/2,
    which rounds to 0) become (0, 1)."""
    if not (real >= 0 and math.isfinite(real)):
        raise UnsupportedOpError(f"requantization multiplier {real} must be a finite number >= 0")
    if real < 2.0 ** -32:
        return 0, 1
    f, e = math.frexp(real)  # real = f * 2^e, f in [0.5, 1)
    m = round(f * (1 << 31))
    if m == 1 << 31:
        m, e = m // 2, e + 1
    shift = 31 - e  # <= 62: real >= 2^-32 gives e >= -31
    if shift < 1:
        raise UnsupportedOpError(f"requantization multiplier {real} is out of the supported range 0 .. 2^30")
    return int(m), int(shift)


def rows_by_four(w: np.ndarray, groups: int = 1) -> np.ndarray:
    """The int8 row kernel's weight layout of ``w`` (N, K), flat: per group of N/groups rows,
    each block of four rows as [K // 4 blocks of rows 0..3 x 4 inputs] + [rows 0..3 x the K % 4
    last inputs], then the N/groups % 4 last rows in plain order. One pointer walks it forward,
    which keeps a Cortex-M's registers for the sums."""
    n, k = w.shape
    k4 = k // 4 * 4
    out = []
    for rows in np.split(np.asarray(w), groups):
        n4 = len(rows) // 4 * 4
        for r in range(0, n4, 4):
            block = rows[r:r + 4]
            out.append(block[:, :k4].reshape(4, k4 // 4, 4).transpose(1, 0, 2).reshape(-1))
            out.append(block[:, k4:].reshape(-1))
        out.append(rows[n4:].reshape(-1))
    flat = np.concatenate(out)  # one part at least per group (its last rows, maybe none)
    if flat.size != n * k:  # pragma: no cover - a layout bug, never data
        raise AssertionError("rows_by_four lost weights")
    return np.ascontiguousarray(flat)


class _Int8(TableLowering):
    def __init__(self, g: Graph):
        self.g = g
        self.p = Program("int8-static", {}, [], list(g.inputs), list(g.outputs))
        self.prod = {t: n for n in g.nodes for t in n.outputs}
        self.cons: dict[str, list[Node]] = {}
        for n in g.nodes:
            for t in n.inputs:
                self.cons.setdefault(t, []).append(n)
        self.used: set[str] = set()  # node names covered by a step
        self.alias: dict[str, str] = {}  # quantized tensor -> buffer holding it
        for t in g.inputs:
            self.p.add_buffer(t, self._dt(t), g.shapes[t], "input")
        for t in g.outputs:
            self.p.add_buffer(t, self._dt(t), g.shapes[t], "output")

    def _dt(self, t: str) -> str:
        name = np.dtype(self.g.dtypes[t]).name
        if name not in ("float32", "uint8", "int8"):
            raise UnsupportedOpError(f"tensor {t!r} has element type {name}; C code handles float32, uint8, int8")
        return name

    # ---- constants -----------------------------------------------------------------------
    def qconst(self, t: str, where: Node) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(q, scale, zero_point, axis) of DequantizeLinear(initializer) feeding ``where``."""
        n = self.prod.get(t)
        if n is None or n.op != "DequantizeLinear" or n.inputs[0] not in self.g.consts:
            if t in self.g.consts:  # a float constant: not quantized
                raise UnsupportedOpError(f"{where.where()}: weight {t!r} is float in an int8 graph; "
                                         "the C generator needs QDQ weights (quantize_static, QDQ format)")
            raise UnsupportedOpError(f"{where.where()}: input {t!r} is not a dequantized constant")
        self.used.add(n.name)
        q = self.g.consts[n.inputs[0]]
        scale = self.g.consts[n.inputs[1]].astype(np.float32)
        zp = self.g.consts[n.inputs[2]] if len(n.inputs) > 2 and n.inputs[2] else np.zeros_like(scale, np.int32)
        axis = int(n.attrs.get("axis", 1)) if scale.size > 1 else -1
        if axis < 0 and scale.size > 1:
            axis += q.ndim
        return q, scale.reshape(-1), np.asarray(zp).reshape(-1).astype(np.int64), axis

    def source(self, t: str, where: Node) -> tuple[str, float, int]:
        """(buffer, scale, zp) of the quantized tensor a DequantizeLinear output ``t`` comes from."""
        n = self.prod.get(t)
        while n is not None and n.op in ALIAS_OPS:
            reshape_alias(self.g, n)
            self.used.add(n.name)
            t = n.inputs[0]
            n = self.prod.get(t)
        if n is None or n.op != "DequantizeLinear" or n.inputs[0] in self.g.consts:
            raise UnsupportedOpError(f"{where.where()}: data input {t!r} does not come from a DequantizeLinear of a "
                                     "quantized tensor; the C generator lowers QDQ int8 graphs only")
        self.used.add(n.name)
        buf = self.qbuf(n.inputs[0])
        scale = float(self.g.consts[n.inputs[1]].reshape(-1)[0])
        zp = int(self.g.consts[n.inputs[2]].reshape(-1)[0]) if len(n.inputs) > 2 and n.inputs[2] else 0
        if self.g.consts[n.inputs[1]].size != 1:
            raise UnsupportedOpError(f"{where.where()}: activations quantized per channel are not supported")
        return buf, scale, zp

    def qbuf(self, t: str) -> str:
        """The buffer of quantized tensor ``t`` (made by a QuantizeLinear, resolved lazily)."""
        t = self.alias.get(t, t)
        if t not in self.p.buffers:
            self.sink(t)
        return self.alias.get(t, t)

    # ---- compute groups ---------------------------------------------------------------------
    def _group(self, node: Node) -> tuple[Node, bool]:
        """The QuantizeLinear that closes ``node``'s QDQ group, and whether a Relu sits in between."""
        g = self.g
        y = node.outputs[0]
        relu = False
        after = self.cons.get(y, [])
        if len(after) == 1 and after[0].op == "Relu" and y not in g.outputs:
            self.used.add(after[0].name)
            relu, y = True, after[0].outputs[0]
            after = self.cons.get(y, [])
        if len(after) != 1 or after[0].op != "QuantizeLinear" or y in g.outputs:
            raise UnsupportedOpError(f"{node.where()}: its output must feed one QuantizeLinear (QDQ format); "
                                     f"it feeds {[n.op for n in after] or 'a graph output'}")
        return after[0], relu

    def _weight_layout(self, node: Node, wq: np.ndarray) -> tuple[np.ndarray, int]:
        """The weight as the kernel reads it, and the axis of output channels in the stored weight."""
        a = node.attrs
        if node.op in ("Gemm", "MatMul"):
            if a.get("transA", 0):
                raise UnsupportedOpError(f"{node.where()}: transA=1 is not supported")
            if node.op == "Gemm" and not (math.isclose(a.get("alpha", 1.0), 1.0) and math.isclose(a.get("beta", 1.0), 1.0)):
                raise UnsupportedOpError(f"{node.where()}: alpha/beta other than 1 are not supported in int8")
            trans = bool(a.get("transB", 0)) if node.op == "Gemm" else False
            w = wq if trans else wq.T  # (N, K)
            out_axis = 0 if trans else 1
        elif node.op == "Conv":  # a 1-D convolution's (M, C, K) as (M, C, 1, K): the 2-D kernels with height 1
            w, out_axis = as_2d_weight(wq), 0
        else:
            w, out_axis = as_2d_weight(wq), 1
        return w, out_axis

    def _bias(self, node: Node, sx: float, sw_c: np.ndarray, n_out: int) -> np.ndarray:
        """Bias: int32 at scale sx*sw[c] (as QDQ writes it), else re-quantized from its real value."""
        g = self.g
        bias = np.zeros(n_out, np.int64)
        if len(node.inputs) > 2 and node.inputs[2]:
            bt = node.inputs[2]
            bn = self.prod.get(bt)
            if bn is not None and bn.op == "DequantizeLinear" and bn.inputs[0] in g.consts:
                bq, bs, bz, _ = self.qconst(bt, node)
                real = (bq.astype(np.float64) - bz) * bs.astype(np.float64)
                want = (np.float32(sx) * sw_c).astype(np.float64)
                if np.allclose(np.broadcast_to(bs, (n_out,)), want, rtol=1e-6, atol=0) and not np.any(bz):
                    bias = bq.astype(np.int64).reshape(-1)
                else:
                    bias = np.rint(np.broadcast_to(real, (n_out,)) / want).astype(np.int64)
            elif bt in g.consts:
                bias = np.rint(g.consts[bt].astype(np.float64) / (np.float64(sx) * sw_c)).astype(np.int64)
            else:
                raise UnsupportedOpError(f"{node.where()}: bias {bt!r} must be constant")
        return bias

    def _kernel(self, node: Node, w: np.ndarray, wq: np.ndarray, zw_c: np.ndarray, bias: np.ndarray, zx: int,
                xdt: str, params: dict) -> tuple[str, np.ndarray]:
        """Kernel kind and final bias; fills the shape params and checks the int32 accumulator cannot overflow."""
        g = self.g
        wdt = wq.dtype.name
        xr = QRANGE[xdt]
        span = max(abs(xr[0] - zx), abs(xr[1] - zx))
        if node.op == "ConvTranspose":
            params.update(self._conv(node))
            kind = "qconvt"
            taps = params["KH"] * params["KW"] * params["C"] // params["G"]
            # the kernel sums (x - zx) * w and (x - zx) * zw apart; this also bounds their
            # difference, the true sum (|w - zw| <= 255 <= 2 max |w|)
            bound = 2 * taps * span * max(abs(v) for v in QRANGE[wdt]) + int(np.max(np.abs(bias)))
        else:  # dense, or a convolution as dense over each pixel's im2col column
            if node.op == "Conv":
                params.update(self._conv(node))
                k, kind = params["KH"] * params["KW"] * params["C"] // params["G"], "qconv"
            else:
                k, kind = int(w.shape[1]), "qdense"
                if g.numel(node.inputs[0]) != k:
                    raise UnsupportedOpError(f"{node.where()}: input {g.shapes[node.inputs[0]]} does not match weight "
                                             f"{wq.shape}")
                params.update(K=k, N=len(zw_c))
            wspan = int(np.max(np.abs(w.reshape(len(zw_c), -1).astype(np.int64) - zw_c[:, None])))
            bound = k * span * max(wspan, 1) + int(np.max(np.abs(bias)))
            # the kernel sums x * w and x * wzp separately (raw codes, zero points applied per row)
            xmax, wmax = max(abs(v) for v in xr), max(abs(v) for v in QRANGE[wdt])
            bound = max(bound, 2 * k * xmax * wmax + int(np.max(np.abs(bias))) + k * xmax * abs(zx))
            # fold the input zero point into the bias: sum (x - zx)(w - zw) = sum x (w - zw) - zx sum (w - zw);
            # a convolution's padding holds zx, so its taps add x (w - zw) - zx (w - zw) = 0 as they should
            wsum = (w.reshape(len(zw_c), -1).astype(np.int64) - zw_c[:, None]).sum(axis=1)
            bias = bias - zx * wsum
        if bound >= 2 ** 31 or np.max(np.abs(bias)) >= 2 ** 31:
            raise UnsupportedOpError(f"{node.where()}: the int32 accumulator could overflow (bound {bound})")
        return kind, bias

    def _add_step(self, node: Node, qnode: Node, relu: bool, x_buf: str, out: str, kind: str, params: dict,
                  bias: np.ndarray, w: np.ndarray, has_wzp: bool) -> None:
        """Store the group's constants and append its integer step."""
        params["bias_v"] = bias.astype(np.int32)
        params["w_v"] = np.ascontiguousarray(w)
        base = node.name
        if kind == "qconvt":  # one rows-by-four matrix per group and sub-pixel phase
            stored = np.concatenate([rows_by_four(m) for m in convt_phase_matrices(params["w_v"], params)])
        else:
            stored = rows_by_four(params["w_v"].reshape(len(bias), -1), params.get("G", 1))
        params["w"] = self.p.add_const(f"{base}_weight", stored)
        params["bias"] = self.p.add_const(f"{base}_bias", params["bias_v"])
        params["wzp"] = self.p.add_const(f"{base}_wzp", params["wzp_v"]) if has_wzp else None
        params["mult"] = self.p.add_const(f"{base}_mult", params["mult_v"])
        params["shift"] = self.p.add_const(f"{base}_shift", params["shift_v"])
        writes = [out]
        if kind in ("qconv", "qconvt"):  # 8 output pixels' inputs as int16 (taps to a multiple of 4), this step only
            writes.append(self.p.add_buffer(f"{out}/column", "int16", (conv_column(params, kind == "qconvt"),)).name)
        self.p.steps.append(Step(kind, f"{node.name}{' + Relu' if relu else ''} -> {qnode.name}", [x_buf], writes,
                                 params))

    def compute(self, node: Node) -> None:
        """One QDQ compute group (Gemm/MatMul/Conv/ConvTranspose [+ Relu] -> QuantizeLinear) -> one integer step."""
        g = self.g
        qnode, relu = self._group(node)
        self.used.update({node.name, qnode.name})
        x_buf, sx, zx = self.source(node.inputs[0], node)
        wq, sw, zw, axis = self.qconst(node.inputs[1], node)
        sy = float(g.consts[qnode.inputs[1]].reshape(-1)[0])
        zq = g.consts[qnode.inputs[2]] if len(qnode.inputs) > 2 and qnode.inputs[2] else np.uint8(0)
        zy, ydt = int(np.asarray(zq).reshape(-1)[0]), np.asarray(zq).dtype.name
        if ydt not in QRANGE:
            raise UnsupportedOpError(f"{qnode.where()}: output type {ydt} is not 8-bit")
        w, out_axis = self._weight_layout(node, wq)
        per = int(wq.shape[out_axis])
        if sw.size not in (1, per) or (sw.size > 1 and axis != out_axis):
            raise UnsupportedOpError(f"{node.where()}: weight scales must be per tensor or per output channel "
                                     f"(axis {out_axis}), got {sw.size} along axis {axis}")
        # a grouped ConvTranspose stores (C, M/G, ...): a scale along axis 1 serves that channel of every group
        groups = int(node.attrs.get("group", 1)) if node.op == "ConvTranspose" else 1
        n_out = per * groups
        sw_c = np.tile(np.broadcast_to(sw, (per,)), groups).astype(np.float32)
        zw_c = np.tile(np.broadcast_to(zw, (per,)), groups).astype(np.int64)
        bias = self._bias(node, sx, sw_c, n_out)
        mult, shift = zip(*(multiplier(float(np.float64(sx) * float(s) / sy)) for s in sw_c), strict=True)
        qlo, qhi = QRANGE[ydt]
        lo = max(qlo, zy) if relu else qlo
        xdt = self.p.buffers[x_buf].dtype
        wdt = wq.dtype.name
        if wdt not in QRANGE or xdt not in QRANGE:
            raise UnsupportedOpError(f"{node.where()}: weights {wdt} / activations {xdt} must be uint8 or int8")
        out = self.p.add_buffer(qnode.outputs[0], ydt, g.shapes[qnode.outputs[0]])
        has_wzp = bool(np.any(zw_c))
        params = {"yzp": zy, "lo": lo, "hi": qhi, "xzp": zx, "bias_q_v": bias.astype(np.int64),
                  "mult_v": np.array(mult, np.int32), "shift_v": np.array(shift, np.int32), "wzp_v": zw_c.astype(np.int32)}
        kind, bias = self._kernel(node, w, wq, zw_c, bias, zx, xdt, params)
        self._add_step(node, qnode, relu, x_buf, out.name, kind, params, bias, w, has_wzp)

    def _conv(self, node: Node) -> dict:
        w = self.g.consts[self.prod[node.inputs[1]].inputs[0]]
        return conv_params(node, self.g.shapes[node.inputs[0]], self.g.shapes[node.outputs[0]], w)

    # ---- elementwise regions -> tables ------------------------------------------------------------
    def run(self) -> Program:
        for node in self.g.nodes:
            if node.op in COMPUTE_OPS:
                self.compute(node)
        for t in self.g.outputs:
            if t not in self.p.buffers or not any(t in s.writes for s in self.p.steps):
                self.sink(t)
        left = [n for n in self.g.nodes if n.name not in self.used and not self._dead(n)]
        if left:
            n = left[0]
            raise UnsupportedOpError(f"{self.g.name}: {n.where()} is not supported in an int8 graph by the C "
                                     "generator (it is not part of a QDQ compute group or an elementwise chain)")
        # steps must run in dependency order: sinks were resolved lazily
        return self._ordered()

    def _dead(self, n: Node) -> bool:
        """A node whose outputs nothing reads (e.g. a DequantizeLinear left unused)."""
        return all(not self.cons.get(o) and o not in self.g.outputs for o in n.outputs)

    def _ordered(self) -> Program:
        ready = set(self.p.inputs)
        steps, pending = [], list(self.p.steps)
        while pending:
            rest = [s for s in pending if not set(s.reads) <= ready]
            now = [s for s in pending if set(s.reads) <= ready]
            if not now:
                raise UnsupportedOpError(f"{self.g.name}: could not order the int8 steps (cycle near {rest[0].node})")
            for s in now:
                steps.append(s)
                ready.update(s.writes)
            pending = rest
        self.p.steps = steps
        self._compose_tables()
        return self.p


def lower_int8(g: Graph) -> Program:
    """Lower a QDQ int8 graph; raises UnsupportedOpError naming the first op it cannot lower."""
    return _Int8(g).run()
