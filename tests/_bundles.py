"""Tiny real bundles for runtime tests, built with onnx.helper (no exporter, no torch).

The graphs are a PCA of scikit-learn's digits written as Gemm layers, so reconstructions
are meaningful and a numpy reference (:class:`PCARef`) gives the exact expected values:

    image bundle:  x (B,1,8,8) -> Flatten -> MatMul+Add -> code (B,16) -> MatMul+Add -> Clip(0,1) -> Reshape -> x_hat
    vector bundle: x (B,64) standardized -> MatMul+Add -> code -> MatMul+Add -> x_hat (no clip)
    vae bundle:    image bundle whose encoder also outputs mean (= code) and log_var
    raw_io:        uint8 in / uint8 out with x/255 and round(255 y) folded into the graphs

The "int8-dynamic" graphs are real quantized graphs: ``quantize_dynamic`` of the fp32 graph
with uint8 weights (DynamicQuantizeLinear + MatMulInteger). :meth:`PCARef.encode_int8` and
:meth:`PCARef.decode_int8` compute the same integer arithmetic in numpy from the weights
quantized here, independently of the graph file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeae.runtime.bundle import Manifest, graph_entry, write_manifest

OPSET = 17
CODE = 16


@lru_cache(maxsize=1)
def digits_uint8() -> np.ndarray:
    """sklearn digits as uint8 images (1797, 1, 8, 8) in 0..255."""
    from sklearn.datasets import load_digits

    images = load_digits().images  # (N, 8, 8) in 0..16
    return np.clip(np.rint(images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[:, None]


@lru_cache(maxsize=1)
def digits_features() -> np.ndarray:
    """sklearn digits as raw float32 feature vectors (1797, 64) in 0..16."""
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float32)


@dataclass
class PCARef:
    """The numpy reference of a test bundle's graphs, in model units."""

    w: np.ndarray  # (64, CODE) encoder weights
    mean: np.ndarray  # (64,) mean of the model-unit inputs
    clip: bool  # decoder clips to [0, 1]
    sample_shape: tuple[int, ...]

    def encode(self, x_model: np.ndarray) -> np.ndarray:
        return ((x_model.reshape(len(x_model), -1) - self.mean) @ self.w).astype(np.float32)

    def decode(self, code: np.ndarray) -> np.ndarray:
        return self._finish_decode(code @ self.w.T + self.mean, len(code))

    def encode_int8(self, x_model: np.ndarray) -> np.ndarray:
        """What the int8-dynamic encoder computes: uint8 activations quantized per call, uint8 weights."""
        bias = -(self.mean @ self.w)
        return (_dynamic_matmul(x_model.reshape(len(x_model), -1), self.w) + bias).astype(np.float32)

    def decode_int8(self, code: np.ndarray) -> np.ndarray:
        """What the int8-dynamic decoder computes (one call: activation range over the whole batch)."""
        return self._finish_decode(_dynamic_matmul(code, self.w.T) + self.mean, len(code))

    def _finish_decode(self, y: np.ndarray, n: int) -> np.ndarray:
        if self.clip:
            y = np.clip(y, 0, 1)
        return y.reshape(n, *self.sample_shape).astype(np.float32)


def quantize_uint8(v: np.ndarray) -> tuple[np.ndarray, np.float32, np.uint8]:
    """Asymmetric uint8 quantization of one tensor (range widened to hold 0), as ONNX's
    DynamicQuantizeLinear defines it: scale = (max - min) / 255, zero point = round(-min / scale)."""
    lo, hi = min(float(v.min()), 0.0), max(float(v.max()), 0.0)
    scale = np.float32((hi - lo) / 255.0) if hi > lo else np.float32(1.0)
    zero = np.uint8(np.clip(np.rint(-lo / scale), 0, 255))
    q = np.clip(np.rint(v.astype(np.float32) / scale) + zero, 0, 255).astype(np.uint8)
    return q, scale, zero


def _dynamic_matmul(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """float a @ w done the int8-dynamic way: both sides uint8, int32 accumulation, one rescale."""
    qa, sa, za = quantize_uint8(np.asarray(a, np.float32))
    qw, sw, zw = quantize_uint8(w)
    acc = (qa.astype(np.int64) - int(za)) @ (qw.astype(np.int64) - int(zw))
    return acc.astype(np.float32) * (sa * sw)


def _pca(x_model: np.ndarray, sample_shape: tuple[int, ...], clip: bool) -> PCARef:
    flat = x_model.reshape(len(x_model), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    return PCARef(vt[:CODE].T.astype(np.float32), mean.astype(np.float32), clip, sample_shape)


def _init(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def _dense(x: str, w: str, b: str, out: str) -> list[onnx.NodeProto]:
    """y = x @ w + b as MatMul + Add (what ONNX Runtime's dynamic quantizer rewrites)."""
    return [helper.make_node("MatMul", [x, w], [f"{out}_mm"]), helper.make_node("Add", [f"{out}_mm", b], [out])]


def write_int8_dynamic(src: Path, dst: Path) -> None:
    """``onnxruntime.quantization.quantize_dynamic`` of an fp32 graph, uint8 weights per tensor."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # the quantizer logs advice on every call
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8, per_channel=False)
    finally:
        root.setLevel(level)


def _encoder(ref: PCARef, raw_io: bool, vae: bool) -> onnx.ModelProto:
    shape = ["batch", *ref.sample_shape]
    bias = -(ref.mean @ ref.w)
    nodes, inits = [], [_init("W", ref.w), _init("b", bias.astype(np.float32))]
    src = "x"
    if raw_io:
        inits.append(_init("inv255", np.array(1 / 255, np.float32)))
        nodes += [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", ["xf", "inv255"], ["xn"])]
        src = "xn"
    nodes.append(helper.make_node("Flatten", [src], ["flat"], axis=1))
    outputs = [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", CODE])]
    if vae:
        inits += [_init("Wz", np.zeros_like(ref.w)), _init("bz", np.full(CODE, -2.0, np.float32))]
        nodes += [*_dense("flat", "W", "b", "mean"), helper.make_node("Identity", ["mean"], ["code"]),
                  *_dense("flat", "Wz", "bz", "log_var")]
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", CODE]) for n in ("mean", "log_var")]
    else:
        nodes += _dense("flat", "W", "b", "code")
    in_type = TensorProto.UINT8 if raw_io else TensorProto.FLOAT
    graph = helper.make_graph(nodes, "encoder", [helper.make_tensor_value_info("x", in_type, shape)], outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)


def _decoder(ref: PCARef, raw_io: bool) -> onnx.ModelProto:
    shape = ["batch", *ref.sample_shape]
    inits = [_init("Wt", ref.w.T.copy()), _init("m", ref.mean),
             _init("shape", np.array([-1, *ref.sample_shape], np.int64))]
    nodes = _dense("code", "Wt", "m", "y")
    src = "y"
    if ref.clip:
        inits += [_init("lo", np.array(0, np.float32)), _init("hi", np.array(1, np.float32))]
        nodes.append(helper.make_node("Clip", ["y", "lo", "hi"], ["yc"]))
        src = "yc"
    out_type = TensorProto.FLOAT
    if raw_io:
        inits += [_init("k255", np.array(255, np.float32)), _init("z", np.array(0, np.float32))]
        nodes += [helper.make_node("Mul", [src, "k255"], ["ys"]), helper.make_node("Round", ["ys"], ["yr"]),
                  helper.make_node("Clip", ["yr", "z", "k255"], ["yk"]),
                  helper.make_node("Cast", ["yk"], ["yu"], to=TensorProto.UINT8)]
        src, out_type = "yu", TensorProto.UINT8
    nodes.append(helper.make_node("Reshape", [src, "shape"], ["x_hat"]))
    graph = helper.make_graph(nodes, "decoder", [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", CODE])],
                              [helper.make_tensor_value_info("x_hat", out_type, shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)


def _specs(model: onnx.ModelProto, which: str) -> list[dict]:
    dtypes = {TensorProto.FLOAT: "float32", TensorProto.UINT8: "uint8"}
    out = []
    for v in getattr(model.graph, which):
        t = v.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        out.append({"name": v.name, "shape": dims, "dtype": dtypes[t.elem_type]})
    return out


def make_bundle(folder: Path, kind: str = "image", raw_io: bool = False,
                precisions: tuple[str, ...] = ("fp32", "int8-dynamic")) -> tuple[Path, PCARef]:
    """Write a bundle (kind image | vector | vae) into ``folder``; returns it and its reference.

    ``int8-dynamic`` graphs are quantized from the fp32 ones (see :func:`write_int8_dynamic`);
    other extra precisions are byte copies of the fp32 graphs (enough to test selection).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "vector":
        raw = digits_features()
        mean, std = raw.mean(axis=0), raw.std(axis=0)
        std[std == 0] = 1.0
        norm = {"mode": "standardize", "raw_dtype": "float32", "offset": mean.tolist(), "scale": std.tolist()}
        ref = _pca((raw - mean) / std, (64,), clip=False)
        is_image = False
    else:
        raw = digits_uint8()
        norm = {"mode": "scale255", "raw_dtype": "uint8", "offset": [0.0], "scale": [255.0]}
        ref = _pca(raw.astype(np.float32) / 255.0, (1, 8, 8), clip=True)
        is_image = True
    vae = kind == "vae"
    graphs = []
    for role, model in (("encoder", _encoder(ref, raw_io, vae)), ("decoder", _decoder(ref, raw_io))):
        path = folder / f"{role}.onnx"
        onnx.save(model, path)
        for precision in precisions:
            target = path if precision == "fp32" else folder / f"{role}.{precision}.onnx"
            if precision == "int8-dynamic":
                write_int8_dynamic(path, target)
            elif target != path:
                target.write_bytes(path.read_bytes())
            written = onnx.load(str(target))
            graphs.append(graph_entry(target, role, precision, OPSET, _specs(written, "input"),
                                      _specs(written, "output"), raw_io=raw_io))
    samples = folder / "samples.npy"
    np.save(samples, raw[-64:])
    from edgeae.runtime.bundle import file_sha256

    manifest = Manifest(
        kind="vae" if vae else "mlp", code_size=CODE,
        input={"shape": list(ref.sample_shape), "dtype": "float32", "is_image": is_image},
        normalization=norm, graphs=graphs,
        model={"kind": "vae" if vae else "mlp", "input_shape": list(ref.sample_shape), "code_size": CODE},
        samples={"file": "samples.npy", "sha256": file_sha256(samples), "count": 64},
        validation={"fp32": {"max_abs_error": {"code": 1e-6, "x_hat": 2e-6}, "psnr": 20.0, "passed": True}},
        tools={"edgeae": "0.1.0", "onnx": onnx.__version__},
    )
    write_manifest(folder, manifest)
    return folder, ref


def add_ort_copies(folder: Path) -> None:
    """Save every graph of a bundle also as an ORT-format file and list it (format "ort")."""
    import json

    import onnxruntime as ort

    from edgeae.runtime.bundle import file_sha256

    manifest = json.loads((folder / "manifest.json").read_text())
    for g in list(manifest["graphs"]):
        target = folder / g["file"].replace(".onnx", ".ort")
        opts = ort.SessionOptions()
        opts.optimized_model_filepath = str(target)
        opts.add_session_config_entry("session.save_model_format", "ORT")
        ort.InferenceSession(str(folder / g["file"]), opts, providers=["CPUExecutionProvider"])
        manifest["graphs"].append({**g, "file": target.name, "format": "ort", "size": target.stat().st_size,
                                   "sha256": file_sha256(target)})
    (folder / "manifest.json").write_text(json.dumps(manifest))
