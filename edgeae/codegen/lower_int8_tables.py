"""int8 lowering, second half: elementwise chains between quantized tensors as lookup tables.

Everything between a quantized tensor and the next QuantizeLinear (or a graph output) that is
elementwise on that one tensor is a function of one 8-bit value: :class:`TableLowering`
follows such a chain back to its source (:meth:`TableLowering.chain`), tabulates it into a
256-entry table by running that very subgraph in ONNX Runtime (one table per position when a
constant varies along the sample, up to :data:`MAX_TABLE_ROWS`), and makes the step that
produces the chain's end (:meth:`TableLowering.sink`). Mixed into the int8 lowering of
:mod:`edgeae.codegen.lower_int8`, whose graph, buffers and steps it uses.
"""

from __future__ import annotations

import numpy as np

from edgeae.codegen.graph import Node, UnsupportedOpError
from edgeae.codegen.lower_fp32 import ALIAS_OPS
from edgeae.codegen.program import Step

__all__ = ["COMPUTE_OPS", "MAX_TABLE_ROWS", "QRANGE", "TABLE_OPS", "TableLowering"]

COMPUTE_OPS = ("Gemm", "MatMul", "Conv", "ConvTranspose")
TABLE_OPS = ALIAS_OPS + ("DequantizeLinear", "QuantizeLinear", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip",
                         "Round", "Cast", "Add", "Sub", "Mul", "Div", "Neg", "Abs")
QRANGE = {"uint8": (0, 255), "int8": (-128, 127)}
MAX_TABLE_ROWS = 256  # per-position tables: at most 64 KiB of flash for one elementwise region


class TableLowering:
    """The table half of the int8 lowering (a mixin: ``self.g``, ``self.prod``, buffers and steps
    come from :mod:`edgeae.codegen.lower_int8`)."""

    def chain(self, t: str) -> tuple[list[Node], str]:
        """Nodes from a source tensor to ``t`` (oldest first) and the source: a quantized tensor
        (output of a QuantizeLinear) or a graph input."""
        nodes: list[Node] = []
        while True:
            n = self.prod.get(t)
            if n is None:
                return nodes[::-1], t
            if n.op == "QuantizeLinear" and nodes:
                return nodes[::-1], t
            if n.op not in TABLE_OPS or n.op in COMPUTE_OPS:
                raise UnsupportedOpError(f"{self.g.name}: {n.where()} is not supported in an int8 graph by the C "
                                         f"generator (supported: {', '.join(COMPUTE_OPS)} in QDQ form, and "
                                         f"elementwise {', '.join(TABLE_OPS)})")
            data = [i for i in n.inputs if i and i not in self.g.consts and not self._const_dq(i)]
            if len(data) != 1:
                raise UnsupportedOpError(f"{n.where()}: elementwise ops in an int8 graph must have one data "
                                         f"input and constant others, got {data}")
            nodes.append(n)
            t = data[0]

    def _vector_consts(self, nodes: list[Node]) -> list[str]:
        """Constants with more than one value that elementwise ops of ``nodes`` combine with the data
        (a bias Add after a MatMul, per-feature normalization): their tables depend on the position."""
        out = []
        for n in nodes:
            if n.op in ALIAS_OPS or n.op in ("QuantizeLinear", "DequantizeLinear"):
                continue
            for i in n.inputs[1:] if n.op not in ("Add", "Mul", "Sub", "Div") else n.inputs:
                if not i:
                    continue
                v = self.g.consts.get(i)
                if v is None and self._const_dq(i):
                    v = self.g.consts[self.prod[i].inputs[0]]
                if v is not None and v.size != 1:
                    out.append(i)
        return out

    def _const_dq(self, t: str) -> bool:
        n = self.prod.get(t)
        return n is not None and n.op == "DequantizeLinear" and n.inputs[0] in self.g.consts

    def sink(self, t: str) -> None:
        """Make the step that produces buffer ``t`` (a QuantizeLinear output or a graph output)."""
        nodes, src = self.chain(t)
        g = self.g
        self.used.update(n.name for n in nodes)
        for n in nodes:
            for i in n.inputs:
                if i and self._const_dq(i):
                    self.used.add(self.prod[i].name)
        dst_dtype = self._dt(t)
        shape = g.shapes[t]
        if src in g.inputs and self._dt(src) == "float32":
            if not nodes or nodes[-1].op != "QuantizeLinear" or any(n.op not in ALIAS_OPS for n in nodes[:-1]):
                raise UnsupportedOpError(f"{g.name}: the float input {src!r} must go (through reshapes only) to a "
                                         f"QuantizeLinear, got {[n.op for n in nodes]}; for raw-I/O graphs of "
                                         "float data use the model-unit graphs (--io model)")
            q = nodes[-1]
            scale = float(g.consts[q.inputs[1]].reshape(-1)[0])
            zp = int(g.consts[q.inputs[2]].reshape(-1)[0]) if len(q.inputs) > 2 and q.inputs[2] else 0
            lo, hi = QRANGE[dst_dtype]
            self.p.add_buffer(t, dst_dtype, shape, "output" if t in g.outputs else "arena")
            self.p.steps.append(Step("quantize", q.name, [src], [t], {
                "n": g.numel(t), "scale": np.float32(scale), "scale_text": f"{scale:.9g}", "zp": zp, "lo": lo, "hi": hi}))
            return
        src_buf = src if src in g.inputs else self.qbuf(src)
        src_dtype = self.p.buffers[src_buf].dtype
        if src_dtype not in QRANGE:
            raise UnsupportedOpError(f"{g.name}: tensor {src!r} feeding {[n.op for n in nodes]} is not 8-bit")
        dq = [n for n in nodes if n.op not in ALIAS_OPS]
        if (dst_dtype == "float32" and len(dq) == 1 and dq[0].op == "DequantizeLinear"
                and g.consts[dq[0].inputs[1]].size == 1):
            scale = np.float32(g.consts[dq[0].inputs[1]].reshape(-1)[0])
            zp = int(g.consts[dq[0].inputs[2]].reshape(-1)[0]) if len(dq[0].inputs) > 2 and dq[0].inputs[2] else 0
            self.p.add_buffer(t, dst_dtype, shape, "output" if t in g.outputs else "arena")
            self.p.steps.append(Step("dequantize", dq[0].name, [src_buf], [t],
                                     {"n": g.numel(t), "scale": scale, "zp": zp}))
            return
        table = self._table(nodes, src, src_dtype, t)
        codes = np.arange(256) if src_dtype == "uint8" else np.arange(-128, 128)
        if table.ndim == 2 and len(table) > MAX_TABLE_ROWS:
            raise UnsupportedOpError(
                f"{g.name}: {' -> '.join(n.op for n in nodes)} on {src!r} combines the data with per-feature "
                f"constants ({', '.join(self._vector_consts(nodes))}) over {len(table)} positions; tabulated in "
                f"8 bits that is {len(table) * 256} bytes of flash (limit {MAX_TABLE_ROWS * 256}). Export with the "
                "bias inside the Gemm/MatMul node, or use --io model for per-feature normalization")
        if (dst_dtype == src_dtype and table.ndim == 1 and np.array_equal(table.astype(np.int64), codes)
                and t not in g.outputs):
            self.alias[t] = src_buf  # re-quantization to the same scale and zero point: no data moves
            return
        self.p.add_buffer(t, dst_dtype, shape, "output" if t in g.outputs else "arena")
        name = self.p.add_const(f"{t}_table", table)
        what = " -> ".join(n.op for n in nodes) or "copy"
        rows = f"{len(table)} x 256-entry tables, one per position" if table.ndim == 2 else "a 256-entry table"
        self.p.steps.append(Step("lut", f"{what} (as {rows})", [src_buf], [t],
                                 {"n": g.numel(t), "table": name, "table_v": table}))

    def _table(self, nodes: list[Node], src: str, src_dtype: str, dst: str) -> np.ndarray:
        """Run the elementwise subgraph on all 256 codes in ONNX Runtime (optimizations off).

        Scalar constants only: one table (256,). With per-feature constants (a bias Add after a
        quantized MatMul): the subgraph runs on a batch of 256 samples, sample c all code c, and
        the result is a table per position (P, 256), P the shortest period along the flattened
        sample (the bias length for a dense layer)."""
        if not self._vector_consts(nodes):
            return self._run_table(nodes, src, src_dtype, dst, None)
        full = self._run_table(nodes, src, src_dtype, dst, self.g.shapes[src])  # (256, numel)
        table = np.ascontiguousarray(full.reshape(256, -1).T)  # (numel, 256)
        n = len(table)
        for period in range(1, n + 1):
            if n % period == 0 and np.array_equal(table.reshape(n // period, period, 256),
                                                  np.broadcast_to(table[:period], (n // period, period, 256))):
                return np.ascontiguousarray(table[:period])
        return table  # pragma: no cover - period n always matches

    def _run_table(self, nodes: list[Node], src: str, src_dtype: str, dst: str,
                   shape: tuple[int, ...] | None) -> np.ndarray:
        import onnx
        import onnxruntime as ort
        from onnx import helper, numpy_helper

        onnx_type = {"uint8": onnx.TensorProto.UINT8, "int8": onnx.TensorProto.INT8,
                     "float32": onnx.TensorProto.FLOAT}
        inits, made, seen = [], [], set()
        for n in nodes:
            keep = shape is not None or n.op not in ALIAS_OPS  # per-position tables keep the real shapes
            op = n.op if keep else "Identity"
            ins = n.inputs if keep else n.inputs[:1]
            attrs = n.attrs if keep else {}
            made.append(helper.make_node(op, ins, n.outputs[:1], name=n.name, **attrs))
            for i in ins:
                if i in self.g.consts and i not in seen:
                    inits.append(numpy_helper.from_array(self.g.consts[i], i))
                    seen.add(i)
                elif i and self._const_dq(i) and i not in seen:
                    dq = self.prod[i]
                    made.insert(0, helper.make_node("DequantizeLinear", dq.inputs, [i], name=dq.name, **dq.attrs))
                    for c in dq.inputs:
                        if c and c not in seen:
                            inits.append(numpy_helper.from_array(self.g.consts[c], c))
                            seen.add(c)
                    seen.add(i)
        out_t = nodes[-1].outputs[0] if nodes else src
        in_shape = [256] if shape is None else [256, *shape[1:]]
        graph = helper.make_graph(made, "table", [helper.make_tensor_value_info(src, onnx_type[src_dtype], in_shape)],
                                  [helper.make_tensor_value_info(out_t, onnx_type[self._dt(dst)], None)], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", max(self.g.opset, 13))])
        model.ir_version = min(model.ir_version, 8)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        codes = (np.arange(256) if src_dtype == "uint8" else np.arange(-128, 128)).astype(src_dtype)
        if shape is not None:
            codes = np.ascontiguousarray(np.broadcast_to(codes.reshape((256,) + (1,) * (len(in_shape) - 1)), in_shape))
        out = np.ascontiguousarray(sess.run(None, {src: codes})[0])
        return out.reshape(256, -1) if shape is not None else out

    def _compose_tables(self) -> None:
        """A table lookup whose input comes only from another table lookup becomes one lookup."""
        while True:
            for s2 in self.p.steps:
                if s2.kind != "lut":
                    continue
                mid = s2.reads[0]
                users = [s for s in self.p.steps if mid in s.reads]
                s1 = next((s for s in self.p.steps if s.writes[0] == mid), None)
                if s1 is None or s1.kind != "lut" or len(users) != 1 or self.p.buffers[mid].kind != "arena":
                    continue
                v1, v2 = s1.params["table_v"], s2.params["table_v"]
                if v1.ndim == 2 and v2.ndim == 2 and len(v1) != len(v2):
                    continue
                idx = v1.astype(np.int64) + (128 if self.p.buffers[mid].dtype == "int8" else 0)
                if v2.ndim == 1:
                    table = np.ascontiguousarray(v2[idx])  # same shape as v1
                elif v1.ndim == 1:
                    table = np.ascontiguousarray(v2[:, idx])
                else:
                    table = np.ascontiguousarray(np.take_along_axis(v2, idx, axis=1))
                del self.p.consts[s2.params["table"]]
                if not any(s is not s1 and s.params.get("table") == s1.params["table"] for s in self.p.steps):
                    self.p.consts.pop(s1.params["table"], None)
                name = self.p.add_const(f"{s2.writes[0]}_table", table)
                s2.params.update(table=name, table_v=table)
                s2.node = f"{s1.node.split(' (as ')[0]} -> {s2.node}"
                s2.reads = list(s1.reads)
                self.p.steps.remove(s1)
                del self.p.buffers[mid]
                break
            else:
                return
