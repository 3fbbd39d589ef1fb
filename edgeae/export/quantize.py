"""Reduced-precision variants of an fp32 graph: int8 dynamic, int8 static (QDQ), fp16.

- ``int8-dynamic``: 8-bit weights, activations quantized per batch at run time
  (``onnxruntime.quantization.quantize_dynamic``). ORT's dynamic quantizer handles MatMul
  and Conv but not Gemm, so Gemm nodes are first rewritten as MatMul + Add.
- ``int8-static``: QDQ graph with activation ranges calibrated on training samples
  (``quantize_static``, per-channel weights; minmax | entropy | percentile).

Both int8 variants store weights as **uint8** (asymmetric, with zero points), activations
as uint8: see :data:`INT8_FORMATS` for why. Without VNNI, ONNX Runtime's x86 kernels
multiply-add u8 x s8 pairs into int16 with saturation (``vpmaddubsw``), so an int8-weight
graph computes something else on an AVX2-only CPU than on a VNNI or ARM64 one; its u8 x u8
kernels widen to 16 bits first and accumulate exactly in int32 on every CPU.
- ``fp16``: float16 weights and compute, float32 inputs/outputs (``keep_io_types``) via
  ``onnxruntime.transformers.float16`` (onnxconverter-common is not needed).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

from edgeae.errors import ConfigError, ExportError
from edgeae.export.graphs import gemm_to_matmul
from edgeae.export.quiet import quiet
from edgeae.runtime.precision import PRECISIONS
from edgeae.runtime.precision import parse_precisions as parse_names

__all__ = ["PRECISIONS", "CALIBRATION_METHODS", "INT8_FORMATS", "parse_precisions", "quantize_graph"]

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")

_WHY_UINT8 = (
    "uint8 weights: ONNX Runtime's u8 x u8 kernels accumulate exactly in int32 on every CPU "
    "(x86 with or without VNNI / AVX-512, ARM64); u8 x s8 (int8 weights) saturates in int16 "
    "on x86 CPUs without VNNI, so the same graph would compute differently there"
)
# The quantization formats each int8 variant is written with; recorded in the manifest.
INT8_FORMATS: dict[str, dict[str, object]] = {
    "int8-dynamic": {"format": "operator (DynamicQuantizeLinear + MatMulInteger / ConvInteger)",
                     "weights": "uint8", "activations": "uint8 (range per batch at run time)",
                     "per_channel": False, "reduce_range": False, "why": _WHY_UINT8},
    "int8-static": {"format": "QDQ", "weights": "uint8", "activations": "uint8 (calibrated ranges)",
                    "per_channel": True, "reduce_range": False, "why": _WHY_UINT8},
}


def parse_precisions(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"fp32,int8"`` -> ``["fp32", "int8-static"]``: the precisions to export, fp32 (the reference) first.

    Names and the alias ``int8`` (= int8-static) as everywhere: :mod:`edgeae.runtime.precision`.
    """
    return list(dict.fromkeys(["fp32", *parse_names(value, allow_empty=True)]))


class _Reader:
    """CalibrationDataReader over training samples, fed in equal batches of up to 32.

    onnxruntime's histogram calibrators (entropy, percentile) stack the batches' outputs,
    so every batch has the same size: the largest divisor of the sample count up to 32
    (every sample is used; a prime count of samples goes one at a time)."""

    def __init__(self, input_name: str, data: np.ndarray, batch: int = 32):
        n = len(data)
        batch = next(b for b in range(min(batch, max(n, 1)), 0, -1) if n % b == 0)
        self._batches = [{input_name: data[i : i + batch]} for i in range(0, n, batch)]
        self._i = 0

    def get_next(self):
        if self._i >= len(self._batches):
            return None
        self._i += 1
        return self._batches[self._i - 1]

    def rewind(self) -> None:
        self._i = 0


def _topological(model: onnx.ModelProto) -> onnx.ModelProto:
    """Order nodes so each runs after its inputs exist (the fp16 converter appends its I/O Casts)."""
    ready = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    pending, ordered = list(model.graph.node), []
    while pending:
        rest = []
        for n in pending:
            if set(n.input) <= ready:
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ExportError(f"graph has a cycle or a missing input near node {rest[0].name!r}")
        pending = rest
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    return model


def quantize_graph(
    src: Path, dst: Path, precision: str, calibration: np.ndarray | None = None,
    method: str = "minmax", input_name: str = "x",
) -> None:
    """Write the ``precision`` variant of the fp32 graph ``src`` to ``dst``."""
    from onnxruntime import quantization as q

    if method not in CALIBRATION_METHODS:
        raise ConfigError(f"unknown calibration method {method!r}; choose one of: {', '.join(CALIBRATION_METHODS)}")
    try:
        with quiet(), tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
            if precision == "int8-dynamic":
                prepared = Path(tmp) / "prepared.onnx"
                onnx.save_model(gemm_to_matmul(onnx.load(str(src))), str(prepared))
                q.quantize_dynamic(str(prepared), str(dst), weight_type=q.QuantType.QUInt8, per_channel=False,
                                   extra_options={"MatMulConstBOnly": True})
            elif precision == "int8-static":
                if calibration is None or len(calibration) == 0:
                    raise ConfigError(
                        "int8-static needs calibration data (training samples) to set activation ranges; "
                        "pass calibration_data=... or use int8-dynamic"
                    )
                calib_method = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
                                "percentile": q.CalibrationMethod.Percentile}[method]
                q.quantize_static(
                    str(src), str(dst), _Reader(input_name, np.ascontiguousarray(calibration)),
                    quant_format=q.QuantFormat.QDQ, per_channel=True, activation_type=q.QuantType.QUInt8,
                    weight_type=q.QuantType.QUInt8, calibrate_method=calib_method,
                    extra_options={"CalibTensorRangeSymmetric": False, "CalibMovingAverage": False},
                )
            elif precision == "fp16":
                from onnxruntime.transformers.float16 import convert_float_to_float16

                model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True, disable_shape_infer=False)
                onnx.save_model(_topological(model), str(dst))
            else:
                raise ConfigError(f"cannot quantize to {precision!r}; choose from {', '.join(PRECISIONS[1:])}")
    except ConfigError:
        raise
    except Exception as exc:
        raise ExportError(f"writing the {precision} variant of {src.name} failed: {exc}") from exc
