"""A tiny made-up 1-D conv autoencoder bundle for the C generator's signal tests.

x (B, C, 16) -> Conv1d k5 s2 p2 -> Relu -> Conv1d k5 s2 p2 -> Relu -> Flatten -> Gemm -> code (B, 6);
code -> Gemm -> Relu -> Reshape (B, 8, 4) -> ConvTranspose1d k5 s2 p2 op1 -> Relu -> ConvTranspose1d -> x_hat,
the layer pattern of edgeae's ``conv1d`` model, written with onnx.helper (random weights), with
per-channel standardization, held-out windows, an int8-static variant made by the exporter's
own quantizer and codec tables (6 and 4 bits)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgeae.runtime.bundle import Manifest, file_sha256, graph_entry, write_manifest
from tests._bundles import OPSET, _specs
from tests._codegen_bundles import _init, _model

SIG_CODE = 6
SIG_STEPS = 16


def synthetic_signals(n: int = 96, c: int = 6, t: int = SIG_STEPS, seed: int = 0) -> np.ndarray:
    """(n, c, t) float32: sines of random frequency and phase per channel, offsets, noise."""
    rng = np.random.default_rng(seed)
    steps = np.arange(t, dtype=np.float64)
    f = rng.uniform(0.05, 0.3, (n, c, 1))
    ph = rng.uniform(0, 2 * np.pi, (n, c, 1))
    x = 2.0 * np.sin(2 * np.pi * f * steps + ph) + rng.normal(0, 0.3, (n, c, t)) + np.arange(c)[None, :, None]
    return x.astype(np.float32)


def conv1d_graphs(c: int, seed: int = 0) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """The encoder and decoder graphs (float32, opset 17) over (B, c, 16) windows."""
    rng = np.random.default_rng(seed)

    def w(*shape, fan):
        return (rng.standard_normal(shape) / np.sqrt(fan)).astype(np.float32)

    k = {"kernel_shape": [5], "strides": [2], "pads": [2, 2]}
    enc_inits = [_init("w1", w(4, c, 5, fan=5 * c)), _init("b1", w(4, fan=4)), _init("w2", w(8, 4, 5, fan=20)),
                 _init("b2", w(8, fan=8)), _init("wg", w(SIG_CODE, 32, fan=32)), _init("bg", w(SIG_CODE, fan=6))]
    enc_nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="enc_conv1d_1", **k),
                 helper.make_node("Relu", ["c1"], ["r1"], name="enc_relu1"),
                 helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="enc_conv1d_2", **k),
                 helper.make_node("Relu", ["c2"], ["r2"], name="enc_relu2"),
                 helper.make_node("Flatten", ["r2"], ["f"], name="enc_flatten", axis=1),
                 helper.make_node("Gemm", ["f", "wg", "bg"], ["code"], name="enc_head", transB=1)]
    enc = _model(enc_nodes, "encoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", c, 16])],
                 [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", SIG_CODE])], enc_inits)
    dec_inits = [_init("wd", w(32, SIG_CODE, fan=6)), _init("bd", w(32, fan=32)),
                 _init("shape", np.array([-1, 8, 4], np.int64)),
                 _init("wt1", w(8, 4, 5, fan=40)), _init("bt1", w(4, fan=4)),
                 _init("wt2", w(4, c, 5, fan=20)), _init("bt2", w(c, fan=c))]
    kt = dict(k, output_padding=[1])
    dec_nodes = [helper.make_node("Gemm", ["code", "wd", "bd"], ["d1"], name="dec_fc", transB=1),
                 helper.make_node("Relu", ["d1"], ["d1r"], name="dec_relu0"),
                 helper.make_node("Reshape", ["d1r", "shape"], ["d1s"], name="dec_reshape"),
                 helper.make_node("ConvTranspose", ["d1s", "wt1", "bt1"], ["t1"], name="dec_convt1d_1", **kt),
                 helper.make_node("Relu", ["t1"], ["t1r"], name="dec_relu1"),
                 helper.make_node("ConvTranspose", ["t1r", "wt2", "bt2"], ["x_hat"], name="dec_convt1d_2", **kt)]
    dec = _model(dec_nodes, "decoder", [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", SIG_CODE])],
                 [helper.make_tensor_value_info("x_hat", TensorProto.FLOAT, ["batch", c, 16])], dec_inits)
    return enc, dec


def signal_bundle(folder: Path, train: np.ndarray, held_out: np.ndarray, int8: bool = True) -> Path:
    """Write the bundle: normalization fitted per channel on ``train`` (N, C, 16) windows, ``held_out``
    as its samples; fp32 graphs (+ int8-static), codec tables fitted on the training codes."""
    import onnxruntime as ort

    from edgeae.data.tsfile import fit_channel_normalization
    from edgeae.export.quantize import quantize_graph
    from edgeae.runtime import load, read_manifest
    from edgeae.runtime.codec import LatentCodec
    from edgeae.runtime.preprocess import Normalizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    c = train.shape[1]
    norm = fit_channel_normalization(train)
    record = {"mode": norm.mode, "raw_dtype": "float32", "offset": list(norm.offset), "scale": list(norm.scale)}
    x_train = Normalizer(record, (c, SIG_STEPS)).normalize(train)
    enc, dec = conv1d_graphs(c)
    graphs = []
    for role, model in (("encoder", enc), ("decoder", dec)):
        onnx.save(model, folder / f"{role}.onnx")
        graphs.append(graph_entry(folder / f"{role}.onnx", role, "fp32", OPSET, _specs(model, "input"),
                                  _specs(model, "output")))
    if int8:
        sess = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
        codes = sess.run(None, {"x": x_train})[0]
        for role, calib, name in (("encoder", x_train, "x"), ("decoder", codes, "code")):
            dst = folder / f"{role}.int8-static.onnx"
            quantize_graph(folder / f"{role}.onnx", dst, "int8-static", calib, "minmax", name)
            m = onnx.load(dst)
            graphs.append(graph_entry(dst, role, "int8-static", OPSET, _specs(m, "input"), _specs(m, "output")))
    np.save(folder / "samples.npy", np.ascontiguousarray(held_out, np.float32))
    manifest = Manifest(
        kind="conv1d", code_size=SIG_CODE, input={"shape": [c, SIG_STEPS], "dtype": "float32", "is_image": False},
        normalization=record, graphs=graphs,
        samples={"file": "samples.npy", "sha256": file_sha256(folder / "samples.npy"), "count": len(held_out)},
        tools={"edgeae": "0.1.0", "onnx": onnx.__version__})
    write_manifest(folder, manifest)
    manifest = read_manifest(folder)
    codes = load(folder).encode(train)
    manifest.codec = [LatentCodec.fit(codes, b).to_dict() for b in (6, 4)]
    write_manifest(folder, manifest)
    return folder
