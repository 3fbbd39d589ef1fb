"""torch -> ONNX for one encoder or decoder: export, raw-I/O wrappers, metadata, checks.

Graphs are written with ``torch.onnx.export(dynamo=True)``: since PyTorch 2.9 the
``torch.export``-based exporter is the default and the TorchScript one is deprecated
(it warns "will be removed"). The dynamo exporter builds opset 18 and down-converts with
the ONNX version converter; below opset 15 that conversion silently falls back to 18, so
:data:`MIN_OPSET` is 15 and every written graph is checked to carry the opset asked for.

The default opset is 17: it runs on ONNX Runtime >= 1.14 (including its mobile and web
builds), TensorRT 8.6+, OpenVINO 2022.3+ and TFLite converters (onnx2tf), and it is the
lowest opset the exporter writes natively for all our ops (LayerNorm-free Gemm / Conv /
ConvTranspose graphs). Pass ``opset=`` to go higher when a target needs it.

Graph I/O (the bundle contract)::

    encoder: x (batch, *input_shape) -> code (batch, K)   [VAE: also mean, log_var; code = mean]
    decoder: code (batch, K) -> x_hat (batch, *input_shape)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from edgeae.errors import ConfigError, ExportError
from edgeae.export.quiet import quiet

__all__ = [
    "DEFAULT_OPSET",
    "MIN_OPSET",
    "FEATURE_MIN_OPSET",
    "RawEncoder",
    "RawDecoder",
    "check_opset",
    "export_graph",
    "set_metadata",
    "check_graph",
    "tensor_specs",
    "fix_batch",
    "graph_opset",
    "gemm_to_matmul",
]

DEFAULT_OPSET = 17  # broadest device support the exporter writes natively (see module docstring)
MIN_OPSET = 15  # lowest opset torch's dynamo exporter really writes (lower silently becomes 18)
# Features that need more than the exporter's minimum, with why (checked before exporting).
FEATURE_MIN_OPSET = {
    "int8-static": (13, "per-channel QuantizeLinear/DequantizeLinear (axis attribute)"),
    "int8-dynamic": (11, "DynamicQuantizeLinear"),
    "raw_io": (12, "Clip on uint8 tensors"),
    "fp16": (7, "float16 Cast"),
}
_NP_TO_ONNX = {np.dtype("float32"): "float32", np.dtype("float16"): "float16", np.dtype("uint8"): "uint8"}


def _ort_max_opset() -> int:
    from edgeae.runtime.session import max_supported_opset

    return max_supported_opset()


def check_opset(opset: int, features: list[str]) -> None:
    """Refuse an opset the exporter cannot write, a requested feature cannot use, or ORT cannot run."""
    for feature in features:
        need, why = FEATURE_MIN_OPSET.get(feature, (0, ""))
        if opset < need:
            raise ConfigError(
                f"opset {opset} is too low for {feature} ({why} needs opset >= {need}); "
                f"use --opset {max(need, MIN_OPSET)} or higher (default {DEFAULT_OPSET})"
            )
    if opset < MIN_OPSET:
        raise ConfigError(
            f"opset {opset} is below {MIN_OPSET}, the lowest opset torch's exporter writes; "
            f"use --opset {MIN_OPSET} or higher (default {DEFAULT_OPSET})"
        )
    top = _ort_max_opset()
    if opset > top:
        raise ConfigError(
            f"opset {opset} is newer than the installed onnxruntime runs (up to {top}); "
            f"use --opset {DEFAULT_OPSET} or upgrade onnxruntime"
        )


class _VariationalEncoder(nn.Module):
    """Exports a VAE encoder as (mean, log_var); ``code`` is added as Identity(mean) afterwards."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor):
        mean, log_var = self.encoder(x)
        return mean, log_var  # (B, K), (B, K)


class RawEncoder(nn.Module):
    """Raw samples (uint8 pixels or raw float features) -> normalized -> encoder."""

    def __init__(self, encoder: nn.Module, offset: np.ndarray, scale: np.ndarray):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("offset", torch.tensor(np.array(offset, dtype=np.float32)))
        self.register_buffer("inv_scale", torch.tensor(np.array(1.0 / np.asarray(scale, np.float32), dtype=np.float32)))

    def forward(self, raw: torch.Tensor):
        x = (raw.to(torch.float32) - self.offset) * self.inv_scale  # same formula as Normalizer
        return self.encoder(x)


class RawDecoder(nn.Module):
    """Decoder -> inverse normalization -> raw units (uint8: round half to even, clip 0..255)."""

    def __init__(self, decoder: nn.Module, offset: np.ndarray, scale: np.ndarray, uint8: bool):
        super().__init__()
        self.decoder = decoder
        self.uint8 = uint8
        self.register_buffer("offset", torch.tensor(np.array(offset, dtype=np.float32)))
        self.register_buffer("scale", torch.tensor(np.array(scale, dtype=np.float32)))

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        y = self.decoder(code) * self.scale + self.offset  # (B, *input_shape)
        if self.uint8:
            return torch.clamp(torch.round(y), 0.0, 255.0).to(torch.uint8)
        return y


def graph_opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def export_graph(
    module: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_names: list[str],
    opset: int, variational: bool = False,
) -> None:
    """Export ``module`` as one self-contained .onnx file with a dynamic batch axis."""
    module = _VariationalEncoder(module) if variational else module
    names = ["mean", "log_var"] if variational else output_names
    module.eval()
    try:
        # The dynamo exporter prints progress and warns about its internals; keep the CLI clean.
        with quiet("torch.onnx"), torch.no_grad():
            program = torch.onnx.export(
                module, (example,), dynamo=True, opset_version=opset, input_names=[input_name],
                output_names=names, dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                external_data=False,
            )
            model = program.model_proto
    except Exception as exc:  # the exporter raises many types; name the module and the cause
        raise ExportError(f"torch.onnx.export failed for the {input_name}->{'/'.join(output_names)} graph: {exc}") from exc
    got = graph_opset(model)
    if got != opset:
        raise ExportError(f"the exporter wrote opset {got}, not the requested {opset}; use --opset {DEFAULT_OPSET}")
    if variational:
        model.graph.node.append(helper.make_node("Identity", ["mean"], ["code"], name="code_is_mean"))
        outs = {o.name: o for o in model.graph.output}
        code = onnx.ValueInfoProto()
        code.CopyFrom(outs["mean"])
        code.name = "code"
        del model.graph.output[:]
        model.graph.output.extend([code, outs["mean"], outs["log_var"]])
    _name_batch_axis(model)
    onnx.save_model(model, str(path))


def _name_batch_axis(model: onnx.ModelProto, batch: int | None = None) -> None:
    """Inputs and outputs get dim 0 named "batch" (or fixed to ``batch``)."""
    for vi in list(model.graph.input) + list(model.graph.output):
        dim = vi.type.tensor_type.shape.dim[0]
        if batch is None:
            dim.dim_param = "batch"
        else:
            dim.dim_value = batch


def set_metadata(path: Path, props: dict[str, Any]) -> None:
    """Write edgeae.* metadata_props so a device app can read the essentials from the file alone."""
    model = onnx.load(str(path))
    keep = [p for p in model.metadata_props if not p.key.startswith("edgeae.")]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in props.items():
        text = value if isinstance(value, str) else json.dumps(value)
        model.metadata_props.append(onnx.StringStringEntryProto(key=f"edgeae.{key}", value=text))
    model.producer_name = "edgeae"
    onnx.save_model(model, str(path))


def check_graph(path: Path) -> None:
    """onnx.checker (full check) + strict shape inference; raises ExportError naming the file."""
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:
        raise ExportError(f"{path.name} failed the ONNX checker: {exc}") from exc


def tensor_specs(path: Path) -> tuple[list[dict], list[dict]]:
    """The manifest's inputs/outputs records, read from the written graph itself."""
    model = onnx.load(str(path), load_external_data=False)

    def spec(vi) -> dict:
        tt = vi.type.tensor_type
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        shape = [d.dim_param if d.dim_param else int(d.dim_value) for d in tt.shape.dim]
        return {"name": vi.name, "shape": shape, "dtype": _NP_TO_ONNX.get(dtype, dtype.name)}

    inits = {i.name for i in model.graph.initializer}
    return [spec(v) for v in model.graph.input if v.name not in inits], [spec(v) for v in model.graph.output]


def fix_batch(src: Path, dst: Path, batch: int) -> None:
    """Copy a graph with its batch axis fixed to ``batch`` (lets compilers plan static memory)."""
    model = onnx.load(str(src))
    _name_batch_axis(model, batch)
    del model.graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model)
    for p in model.metadata_props:
        if p.key == "edgeae.fixed_batch":
            p.value = str(batch)
            break
    else:
        model.metadata_props.append(onnx.StringStringEntryProto(key="edgeae.fixed_batch", value=str(batch)))
    onnx.save_model(model, str(dst))


def gemm_to_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite Gemm(x, W, b) as MatMul + Add: ORT's dynamic quantizer handles MatMul, not Gemm."""
    inits = {i.name: i for i in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ok = (node.op_type == "Gemm" and node.input[1] in inits and attrs.get("transA", 0) == 0
              and math.isclose(attrs.get("alpha", 1.0), 1.0) and math.isclose(attrs.get("beta", 1.0), 1.0))
        if not ok:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        if attrs.get("transB", 0):
            w = np.ascontiguousarray(w.T)
        w_name = node.input[1] + "_kn"
        model.graph.initializer.append(numpy_helper.from_array(w, w_name))
        if len(node.input) > 2 and node.input[2]:
            mid = node.output[0] + "_mm"
            nodes.append(helper.make_node("MatMul", [node.input[0], w_name], [mid], name=node.name + "_matmul"))
            nodes.append(helper.make_node("Add", [mid, node.input[2]], list(node.output), name=node.name + "_add"))
        else:
            nodes.append(helper.make_node("MatMul", [node.input[0], w_name], list(node.output), name=node.name + "_matmul"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {i for n in model.graph.node for i in n.input}
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    return model
