"""Deliberate faults for the export gate (used by benchmarks/gate_matrix.py and tests).

Each fault is injected where it would arise: in the graph the quantizer writes (int8 weight
rows swapped, a layer left in float, fp16 weights 2% off), in the model (a NaN-producing
decoder), in a finished bundle (a decoder from another model, the manifest hash updated),
and on another CPU (int8 weights under emulated Haswell, where u8 x s8 saturates in int16).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

__all__ = ["swap_rows", "scale_fp16", "one_layer_in_float", "corrupting", "other_decoder", "qint8_graph",
           "run_faults", "nan_fault", "describe", "margin_of"]


def swap_rows(model: onnx.ModelProto, src: Path) -> None:
    """Swap two output rows (channels) of the last layer's 8-bit weight, the two most different
    ones, along the axis its consumer produces outputs on (DequantizeLinear's per-channel axis,
    MatMulInteger's columns, ConvInteger's first axis). The last layer's outputs are the graph's
    (codes, pixels), so the fault reaches them (a swap inside can hit two dead ReLU units)."""
    eight = {i.name: i for i in model.graph.initializer if i.data_type == onnx.TensorProto.UINT8 and len(i.dims) >= 2}
    user = [n for n in model.graph.node if any(k in eight for k in n.input)][-1]
    w = eight[next(k for k in user.input if k in eight)]
    axis = {"MatMulInteger": 1, "ConvInteger": 0}.get(user.op_type, 1)
    for a in user.attribute:
        if user.op_type == "DequantizeLinear" and a.name == "axis":
            axis = a.i
    arr = np.moveaxis(numpy_helper.to_array(w).copy(), axis, 0)
    flat = arr.reshape(len(arr), -1).astype(np.int32)
    d = np.abs(flat[:, None, :] - flat[None, :, :]).sum(-1)
    i, j = np.unravel_index(int(d.argmax()), d.shape)
    arr[[i, j]] = arr[[j, i]]
    w.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(np.moveaxis(arr, 0, axis)), w.name))


def scale_fp16(model: onnx.ModelProto, src: Path) -> None:
    """Every float16 weight 2% off."""
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT16 and len(init.dims) >= 2:
            init.CopyFrom(numpy_helper.from_array((numpy_helper.to_array(init) * 1.02).astype(np.float16), init.name))


def one_layer_in_float(model: onnx.ModelProto, src: Path) -> None:
    """int8-dynamic with the first MatMul excluded from quantization, as a quantizer bug would leave it."""
    from onnxruntime import quantization as q

    from edgeae.export.graphs import gemm_to_matmul

    prepared = gemm_to_matmul(onnx.load(str(src)))
    first = next(n.name for n in prepared.graph.node if n.op_type == "MatMul")
    tmp, out = src.parent / f"{src.stem}.prep-fault.onnx", src.parent / f"{src.stem}.fault.onnx"
    onnx.save_model(prepared, str(tmp))
    q.quantize_dynamic(str(tmp), str(out), weight_type=q.QuantType.QUInt8, nodes_to_exclude=[first],
                       extra_options={"MatMulConstBOnly": True})
    model.CopyFrom(onnx.load(str(out)))
    tmp.unlink()
    out.unlink()


@contextlib.contextmanager
def corrupting(precision: str, corrupt: Callable[[onnx.ModelProto, Path], None]) -> Iterator[None]:
    """While active, the exporter's quantizer writes a corrupted ``precision`` graph."""
    from edgeae.export import pipeline

    real = pipeline.quantize_graph

    def fake(src, dst, p, *args, **kwargs):
        real(src, dst, p, *args, **kwargs)
        if p == precision:
            model = onnx.load(str(dst))
            corrupt(model, Path(src))
            onnx.save_model(model, str(dst))

    pipeline.quantize_graph = fake
    try:
        yield
    finally:
        pipeline.quantize_graph = real


def other_decoder(bundle: Path, other: Path) -> None:
    """Put ``other``'s fp32 decoder into ``bundle`` and rewrite the manifest's hash and size to match."""
    from edgeae.runtime.bundle import file_sha256

    shutil.copy(other / "decoder.onnx", bundle / "decoder.onnx")
    manifest = json.loads((bundle / "manifest.json").read_text())
    for g in manifest["graphs"]:
        if g["file"] == "decoder.onnx":
            g["sha256"], g["size"] = file_sha256(bundle / "decoder.onnx"), (bundle / "decoder.onnx").stat().st_size
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))


def qint8_graph(fp32: Path, dst: Path) -> Path:
    """The fp32 graph quantized with int8 (QInt8) weights: the format the exporter avoids."""
    from onnxruntime import quantization as q

    from edgeae.export.graphs import gemm_to_matmul

    prepared = dst.with_suffix(".prep.onnx")
    onnx.save_model(gemm_to_matmul(onnx.load(str(fp32))), str(prepared))
    q.quantize_dynamic(str(prepared), str(dst), weight_type=q.QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
    return dst


def _export_refused(run: Path, out: Path, precisions: str) -> tuple[bool, str]:
    from edgeae.errors import ValidationError
    from edgeae.export import export

    if out.exists():
        shutil.rmtree(out)
    try:
        export(run, out, precisions=precisions, latency_repeats=1, codec_bits="none")
    except ValidationError as exc:
        return not out.exists(), _problems(str(exc))
    return False, "exported"


def _problems(message: str) -> str:
    """Each criterion that refused, once (its first problem line): what refused and by how much."""
    seen, lines = set(), []
    for line in message.splitlines()[1:]:
        line = line.strip()
        kind = re.sub(r"[\d.e+-]+", "#", line.split(":", 1)[-1].split(",")[0])[:60]
        if kind not in seen:
            seen.add(kind)
            lines.append(line[:220])
    return " | ".join(lines[:3])


def margin_of(by: str) -> float | None:
    """The largest 'N x the bound' (or 'x the half step') a refusal reports: how far past its bound."""
    found = [float(m) for m in re.findall(r"([0-9.]+(?:e[+-]?[0-9]+)?|inf) x the", by)]
    return max(found) if found else None


def run_faults(run: Path, other_run: Path, bundle: Path, work: Path, haswell: bool) -> list[dict[str, Any]]:
    """Every fault on one trained run (``other_run``: same shapes, other weights); one row each."""
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (name, precision, corrupt) in enumerate((
            ("int8-static weight rows swapped", "int8-static", swap_rows),
            ("int8-dynamic weight rows swapped", "int8-dynamic", swap_rows),
            ("int8-dynamic layer left in float", "int8-dynamic", one_layer_in_float),
            ("fp16 weights 2% off", "fp16", scale_fp16))):
        with corrupting(precision, corrupt):  # a folder of its own: a refusal leaves nothing there
            refused, by = _export_refused(run, work / f"fault-{k}", f"fp32,{precision}")
        rows.append({"fault": name, "refused": refused, "by": by, "margin": margin_of(by)})
    rows.append(_other_decoder_fault(run, other_run, work))
    if haswell:
        rows.append(_qint8_fault(bundle, work))
    return rows


def _other_decoder_fault(run: Path, other_run: Path, work: Path) -> dict[str, Any]:
    from edgeae.codegen import generate_c
    from edgeae.errors import ValidationError
    from edgeae.export import export

    a, b = work / "own", work / "other"
    for r, d in ((run, a), (other_run, b)):
        export(r, d, latency_repeats=1, codec_bits="none", overwrite=True)
    other_decoder(a, b)
    try:
        generate_c(a, work / "c", precisions="fp32", overwrite=True)
    except ValidationError as exc:
        by = _problems(str(exc))
        return {"fault": "decoder from another model, manifest hash updated", "refused": True, "by": by,
                "margin": margin_of(by)}
    return {"fault": "decoder from another model, manifest hash updated", "refused": False, "by": "generated"}


def _qint8_fault(bundle: Path, work: Path) -> dict[str, Any]:
    from edgeae.export.cpucheck import run_emulated
    from edgeae.runtime.bundle import read_manifest
    from edgeae.runtime.preprocess import Normalizer

    m = read_manifest(bundle)
    x = Normalizer(m.normalization, m.sample_shape).normalize(np.load(bundle / "samples.npy"))[:64]
    np.save(work / "x.npy", x.astype(np.float32))
    bad = qint8_graph(bundle / "encoder.onnx", work / "encoder.qint8.onnx")
    report = run_emulated("haswell", {str(bad): str(work / "x.npy")}, timeout=3600)[str(bad)]
    by = (report["failures"] or [f"passed: max error {report['max_error']:.3g} from the integer semantics "
                                 "(0: no u8 x s8 pair saturated on these samples, so there was no wrong output)"])[0][:220]
    return {"fault": "int8 (QInt8) weights under emulated haswell", "refused": bool(report["failures"]),
            "by": by, "margin": margin_of(by)}


def nan_fault(out: Path) -> dict[str, Any]:
    """A decoder that computes NaN on every sample (a square root of negative values)."""
    import torch
    from torch import nn

    from edgeae.errors import ValidationError
    from edgeae.export import export_modules

    class NaNDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 16)

        def forward(self, z):
            return torch.sqrt(self.fc(z) - 1e3)

    torch.manual_seed(0)
    x = np.random.default_rng(0).random((32, 16), dtype=np.float32)
    try:
        export_modules(nn.Sequential(nn.Linear(16, 4)), NaNDecoder(), x, out, latency_repeats=1, overwrite=True)
    except ValidationError as exc:
        by = _problems(str(exc))
        return {"fault": "NaN-producing decoder", "refused": not out.exists(), "by": by, "margin": margin_of(by)}
    return {"fault": "NaN-producing decoder", "refused": False, "by": "exported"}


def describe(criterion: str) -> str:
    from edgeae.export.validate import CRITERIA

    return CRITERIA.get(criterion, criterion)
