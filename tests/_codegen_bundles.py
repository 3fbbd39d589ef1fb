"""Small bundles for the C generator tests: the PCA bundles of ``_bundles`` plus a tiny conv
autoencoder (Conv, ConvTranspose, Relu, LeakyRelu, Sigmoid, Flatten, Reshape) written with
onnx.helper; int8-static variants are made by the exporter's own quantizer (QDQ)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeae.runtime.bundle import Manifest, file_sha256, graph_entry, read_manifest, write_manifest
from tests._bundles import OPSET, _specs, digits_uint8

CONV_CODE = 6
# Tests that compile the generated C need the host compilers.
needs_compilers = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("g++") is None,
    reason="gcc and g++ are needed to compile the generated C (apt-get install build-essential)")


def _init(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def _model(nodes, name, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)


def conv_graphs(seed: int = 0) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """x (B,1,8,8) float -> Conv s2 -> Relu -> Conv s2 -> LeakyRelu -> Flatten -> Gemm -> code (B,6);
    code -> Gemm -> Relu -> Reshape (B,8,2,2) -> ConvT s2 -> Relu -> ConvT s2 -> Sigmoid -> x_hat."""
    rng = np.random.default_rng(seed)

    def w(*shape, fan):
        return (rng.standard_normal(shape) / np.sqrt(fan)).astype(np.float32)

    enc_inits = [_init("w1", w(4, 1, 3, 3, fan=9)), _init("b1", w(4, fan=4)), _init("w2", w(8, 4, 3, 3, fan=36)),
                 _init("b2", w(8, fan=8)), _init("wg", w(CONV_CODE, 32, fan=32)), _init("bg", w(CONV_CODE, fan=6))]
    conv = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    enc_nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="enc_conv1", **conv),
                 helper.make_node("Relu", ["c1"], ["r1"], name="enc_relu1"),
                 helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="enc_conv2", **conv),
                 helper.make_node("LeakyRelu", ["c2"], ["r2"], name="enc_leaky", alpha=0.1),
                 helper.make_node("Flatten", ["r2"], ["f"], name="enc_flatten", axis=1),
                 helper.make_node("Gemm", ["f", "wg", "bg"], ["code"], name="enc_head", transB=1)]
    enc = _model(enc_nodes, "encoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
                 [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", CONV_CODE])], enc_inits)
    dec_inits = [_init("wd", w(32, CONV_CODE, fan=6)), _init("bd", w(32, fan=32)),
                 _init("shape", np.array([-1, 8, 2, 2], np.int64)),
                 _init("wt1", w(8, 4, 3, 3, fan=72)), _init("bt1", w(4, fan=4)),
                 _init("wt2", w(4, 1, 3, 3, fan=36)), _init("bt2", np.zeros(1, np.float32))]
    convt = dict(conv, output_padding=[1, 1])
    dec_nodes = [helper.make_node("Gemm", ["code", "wd", "bd"], ["d1"], name="dec_fc", transB=1),
                 helper.make_node("Relu", ["d1"], ["d1r"], name="dec_relu0"),
                 helper.make_node("Reshape", ["d1r", "shape"], ["d1s"], name="dec_reshape"),
                 helper.make_node("ConvTranspose", ["d1s", "wt1", "bt1"], ["t1"], name="dec_convt1", **convt),
                 helper.make_node("Relu", ["t1"], ["t1r"], name="dec_relu1"),
                 helper.make_node("ConvTranspose", ["t1r", "wt2", "bt2"], ["t2"], name="dec_convt2", **convt),
                 helper.make_node("Sigmoid", ["t2"], ["x_hat"], name="dec_sigmoid")]
    dec = _model(dec_nodes, "decoder", [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", CONV_CODE])],
                 [helper.make_tensor_value_info("x_hat", TensorProto.FLOAT, ["batch", 1, 8, 8])], dec_inits)
    return enc, dec


def write_bundle(folder: Path, enc: onnx.ModelProto, dec: onnx.ModelProto, code_size: int,
                 samples: np.ndarray, kind: str = "conv") -> Path:
    """A bundle of two fp32 graphs (model-unit I/O, scale255 normalization) + held-out samples."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    graphs = []
    for role, model in (("encoder", enc), ("decoder", dec)):
        path = folder / f"{role}.onnx"
        onnx.save(model, path)
        graphs.append(graph_entry(path, role, "fp32", OPSET, _specs(model, "input"), _specs(model, "output")))
    np.save(folder / "samples.npy", samples)
    shape = list(samples.shape[1:])
    manifest = Manifest(
        kind=kind, code_size=code_size, input={"shape": shape, "dtype": "float32", "is_image": len(shape) == 3},
        normalization={"mode": "scale255", "raw_dtype": "uint8", "offset": [0.0], "scale": [255.0]}, graphs=graphs,
        samples={"file": "samples.npy", "sha256": file_sha256(folder / "samples.npy"), "count": len(samples)},
        tools={"edgeae": "0.1.0", "onnx": onnx.__version__})
    write_manifest(folder, manifest)
    return folder


def conv_bundle(folder: Path) -> Path:
    enc, dec = conv_graphs()
    return write_bundle(folder, enc, dec, CONV_CODE, digits_uint8()[-48:])


def quantize_qdq(src: Path, dst: Path, x: np.ndarray, act: str = "QUInt8", weight: str = "QUInt8",
                 per_channel: bool = True, symmetric: bool = False) -> Path:
    """ONNX Runtime's static quantizer, QDQ format, min/max calibration on ``x`` (input "x"), with
    the activation and weight types named as ``QuantType`` members; writes and returns ``dst``."""
    from onnxruntime import quantization as q

    class Reader:
        def __init__(self):
            self.items = iter([{"x": x[i:i + 16]} for i in range(0, len(x), 16)])

        def get_next(self):
            return next(self.items, None)

    q.quantize_static(str(src), str(dst), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=per_channel,
                      activation_type=getattr(q.QuantType, act), weight_type=getattr(q.QuantType, weight),
                      extra_options={"WeightSymmetric": symmetric, "ActivationSymmetric": False})
    return dst


def add_int8_static(folder: Path) -> Path:
    """Quantize every fp32 graph of the bundle to int8-static (QDQ) with the exporter's quantizer."""
    import onnxruntime as ort

    from edgeae.export.quantize import quantize_graph

    folder = Path(folder)
    m = read_manifest(folder)
    calib_raw = digits_uint8()[:256]
    entries = list(m.graphs)
    codes = {}
    for raw in sorted({g.raw_io for g in m.graphs if g.precision == "fp32"}):
        enc = next(g for g in m.graphs if (g.role, g.precision, g.raw_io) == ("encoder", "fp32", raw))
        x = calib_raw if raw else (calib_raw.astype(np.float32) / 255.0)
        sess = ort.InferenceSession(str(folder / enc.file), providers=["CPUExecutionProvider"])
        codes[raw] = (x, sess.run(None, {"x": x})[0].astype(np.float32))
    for g in [g for g in m.graphs if g.precision == "fp32"]:
        x, code = codes[g.raw_io]
        calib = x if g.role == "encoder" else code
        dst = folder / g.file.replace(".onnx", ".int8-static.onnx").replace(".raw.int8-static", ".int8-static.raw")
        quantize_graph(folder / g.file, dst, "int8-static", calib, "minmax", "x" if g.role == "encoder" else "code")
        model = onnx.load(dst)
        entries.append(graph_entry(dst, g.role, "int8-static", OPSET, _specs(model, "input"), _specs(model, "output"),
                                   raw_io=g.raw_io))
    data = json.loads((folder / "manifest.json").read_text())
    data["graphs"] = [e.to_dict() if hasattr(e, "to_dict") else e for e in entries]
    write_manifest(folder, Manifest.from_dict(data))
    return folder
