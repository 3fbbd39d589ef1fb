"""Read one ONNX graph of a bundle into plain Python: nodes, constants, static batch-1 shapes.

Only the ``onnx`` package is used (the ``codegen`` extra), never torch. Shapes come from
ONNX shape inference on a copy whose batch axis is fixed to 1, so every tensor the C code
touches has a size known at generation time.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeae.errors import BundleError, ConfigError

__all__ = ["Node", "Graph", "load_graph", "UnsupportedOpError"]


class UnsupportedOpError(ConfigError):
    """The graph uses an operator (or an operator setting) the C generator does not lower."""


@dataclass
class Node:
    """One ONNX node, attributes decoded to Python values."""

    op: str  # op_type, e.g. "Gemm"
    name: str  # node name (or "<op>#<index>" when the graph leaves it empty)
    inputs: list[str]  # tensor names ("" = optional input left out)
    outputs: list[str]  # tensor names
    attrs: dict[str, Any] = field(default_factory=dict)

    def where(self) -> str:
        return f"{self.op} node {self.name!r}"


@dataclass
class Graph:
    """A graph ready for lowering: constants as numpy arrays, every tensor's batch-1 shape."""

    name: str  # "encoder" | "decoder" (role) or the graph's own name
    nodes: list[Node]  # topological order, as stored
    consts: dict[str, np.ndarray]  # initializers and Constant nodes
    shapes: dict[str, tuple[int, ...]]  # tensor -> shape with batch 1
    dtypes: dict[str, np.dtype]  # tensor -> element type
    inputs: list[str]  # graph inputs (initializers excluded)
    outputs: list[str]  # graph outputs
    sha256: str  # of the .onnx file
    opset: int  # ai.onnx opset

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def numel(self, tensor: str) -> int:
        return int(math.prod(self.shapes[tensor]))


def _onnx():
    try:
        import onnx
    except ModuleNotFoundError:
        raise ConfigError("generating C needs the onnx package to read .onnx files: "
                          "pip install 'edgeae[codegen]'") from None
    return onnx


def load_graph(path: str | Path, name: str | None = None) -> Graph:
    """Load ``path``, fix the batch axis to 1, infer every shape; refuses what C cannot size."""
    onnx = _onnx()
    from onnx import helper, numpy_helper

    path = Path(path)
    data = path.read_bytes()
    model = onnx.load_from_string(data)
    for vi in list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_value = 1  # the batch axis: C runs one sample per call
    del model.graph.value_info[:]
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise BundleError(f"{path.name}: ONNX shape inference failed ({exc}); re-export the bundle") from None
    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    nodes: list[Node] = []
    for k, n in enumerate(g.node):
        attrs = {}
        for a in n.attribute:
            v = helper.get_attribute_value(a)
            attrs[a.name] = numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else (
                v.decode() if isinstance(v, bytes) else v)
        node = Node(n.op_type, n.name or f"{n.op_type}#{k}", list(n.input), list(n.output), attrs)
        if n.domain not in ("", "ai.onnx"):
            raise UnsupportedOpError(f"{path.name}: {node.where()} is in domain {n.domain!r}; the C generator "
                                     "lowers standard ONNX operators only")
        if node.op == "Constant":
            if "value" not in attrs:
                raise UnsupportedOpError(f"{path.name}: {node.where()} has no tensor 'value'")
            consts[node.outputs[0]] = np.asarray(attrs["value"])
            continue
        nodes.append(node)
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, np.dtype] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if tt.elem_type:
            dtypes[vi.name] = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        if all(d is not None for d in dims):
            shapes[vi.name] = tuple(int(d) for d in dims)
    for k, v in consts.items():
        shapes[k], dtypes[k] = tuple(v.shape), v.dtype
    for n in nodes:
        for t in n.outputs:
            if t and t not in shapes:
                raise UnsupportedOpError(f"{path.name}: {n.where()} output {t!r} has no static shape at batch 1; "
                                         "the C generator needs every shape known at generation time")
    inputs = [i.name for i in g.input if i.name not in consts]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return Graph(name or g.name, nodes, consts, shapes, dtypes, inputs, [o.name for o in g.output],
                 hashlib.sha256(data).hexdigest(), opset)
