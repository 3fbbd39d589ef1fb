"""Helpers for checking quantized graphs on their own terms (no exporter code involved)."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper

__all__ = ["session", "outputs", "psnr", "output_step", "check_quantized_weights"]

_WEIGHTED = {"MatMul", "Gemm", "Conv", "ConvTranspose"}


def session(path, optimize: bool = True):
    """A one-thread CPU session; ``optimize=False`` runs the graph as written (ORT_DISABLE_ALL),
    the integer reference a quantized graph declares."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def outputs(sess, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of a one-input session, by name."""
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {sess.get_inputs()[0].name: x}), strict=True))


def psnr(x_hat: np.ndarray, x: np.ndarray) -> float:
    """dB on the [0, 1] scale of the digits models, MSE over the whole set."""
    mse = float(np.mean((np.asarray(x_hat, np.float64) - np.asarray(x, np.float64)) ** 2))
    return 10 * math.log10(1.0 / mse)


def output_step(path, output: str) -> float:
    """Scale of the DequantizeLinear that produces ``output``, through shape-only ops and
    element-wise activations that move no value further than its input moved (|f'| <= 1)."""
    graph = onnx.load(str(path)).graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    by_output = {o: n for n in graph.node for o in n.output}
    name = output
    while name in by_output:
        node = by_output[name]
        if node.op_type == "DequantizeLinear":
            scale = consts[node.input[1]]
            assert scale.size == 1, "output quantized per channel"
            return float(scale)
        assert node.op_type in ("Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze", "Relu", "Tanh", "Sigmoid",
                                "Clip"), node.op_type
        name = node.input[0]
    raise AssertionError(f"{path.name}: output {output} is not dequantized from 8-bit values")


def check_quantized_weights(path, precision: str) -> None:
    """Every weighted node reads 8-bit weights (int8-static: through DequantizeLinear)."""
    graph = onnx.load(str(path)).graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    by_output = {o: n for n in graph.node for o in n.output}
    ops = [n.op_type for n in graph.node]
    if precision == "int8-dynamic":
        integer = [n for n in graph.node if n.op_type in ("MatMulInteger", "ConvInteger")]
        assert integer, ops
        for n in integer:
            assert consts[n.input[1]].dtype in (np.int8, np.uint8)
        for n in graph.node:  # ORT has no dynamic ConvTranspose: the only float layer allowed
            if n.op_type in _WEIGHTED - {"ConvTranspose"}:
                raise AssertionError(f"{path.name}: {n.op_type} {n.name} left in float: {ops}")
        return
    weighted = [n for n in graph.node if n.op_type in _WEIGHTED]
    assert weighted, ops
    for n in weighted:
        for i, kind in ((0, "activation"), (1, "weight")):
            src = by_output.get(n.input[i])
            assert src is not None and src.op_type == "DequantizeLinear", f"{n.name}: {kind} is not dequantized"
            if kind == "weight":
                assert consts[src.input[0]].dtype in (np.int8, np.uint8)
