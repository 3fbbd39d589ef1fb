"""The gate still refuses a wrong model: each deliberate fault below must stop the export
(or the generated-C check), with nothing written.

Faults are injected where they would arise: in the graph the quantizer writes (int8 weight
rows swapped, a layer left in float, fp16 weights 2% off), in the model (a NaN-producing
decoder), in a finished bundle (a decoder from another model with the manifest hash
updated), and on another CPU (int8 weights under an emulated Haswell, where u8 x s8 products
saturate in int16).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from edgeae.errors import ValidationError

_FAST = {"latency_repeats": 1, "codec_bits": "none"}


def _corrupting(monkeypatch, precision: str, corrupt) -> None:
    """Make the exporter's quantizer write a corrupted ``precision`` graph (encoder and decoder)."""
    from edgeae.export import pipeline

    real = pipeline.quantize_graph

    def fake(src, dst, p, *args, **kwargs):
        real(src, dst, p, *args, **kwargs)
        if p == precision:
            model = onnx.load(str(dst))
            corrupt(model, Path(src))
            onnx.save_model(model, str(dst))

    monkeypatch.setattr(pipeline, "quantize_graph", fake)


def _refused(run_dir: Path, out: Path, precisions: str, match: str) -> str:
    from edgeae.export import export

    with pytest.raises(ValidationError, match=match) as info:
        export(run_dir, out, precisions=precisions, **_FAST)
    assert not out.exists()
    return str(info.value)


def _swap_rows(model, src) -> None:
    """Swap the two most different rows of the largest 8-bit weight."""
    w = max((i for i in model.graph.initializer if i.data_type == onnx.TensorProto.UINT8 and len(i.dims) == 2),
            key=lambda i: int(np.prod(i.dims)))
    a = numpy_helper.to_array(w).copy()
    d = np.abs(a[:, None, :].astype(np.int32) - a[None, :, :]).sum(-1)
    i, j = np.unravel_index(int(d.argmax()), d.shape)
    a[[i, j]] = a[[j, i]]
    w.CopyFrom(numpy_helper.from_array(a, w.name))


def _scale_fp16(model, src) -> None:
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT16 and len(init.dims) >= 2:
            init.CopyFrom(numpy_helper.from_array((numpy_helper.to_array(init) * 1.02).astype(np.float16), init.name))


def _one_layer_in_float(model, src) -> None:
    """int8-dynamic with the first MatMul excluded from quantization, as a quantizer bug would leave it."""
    from onnxruntime import quantization as q

    from edgeae.export.graphs import gemm_to_matmul

    prepared = gemm_to_matmul(onnx.load(str(src)))
    first = next(n.name for n in prepared.graph.node if n.op_type == "MatMul")
    tmp = src.parent / f"{src.stem}.prep-fault.onnx"
    out = src.parent / f"{src.stem}.fault.onnx"
    onnx.save_model(prepared, str(tmp))
    q.quantize_dynamic(str(tmp), str(out), weight_type=q.QuantType.QUInt8, nodes_to_exclude=[first],
                       extra_options={"MatMulConstBOnly": True})
    model.CopyFrom(onnx.load(str(out)))
    tmp.unlink()
    out.unlink()


@pytest.mark.parametrize("precision, corrupt, match", [
    ("int8-static", _swap_rows, "quantization bound"),
    ("int8-dynamic", _swap_rows, "quantization bound"),
    ("fp16", _scale_fp16, "float16 rounding bound"),
    ("int8-dynamic", _one_layer_in_float, "left in float"),
])
def test_corrupted_graph_is_refused(precision, corrupt, match, monkeypatch, mlp_run, tmp_path):
    _corrupting(monkeypatch, precision, corrupt)
    _refused(mlp_run, tmp_path / "b", f"fp32,{precision}", match)


class _NaNDecoder(nn.Module):
    def __init__(self, code: int, out: int):
        super().__init__()
        self.fc = nn.Linear(code, out)

    def forward(self, z):
        return torch.sqrt(self.fc(z) - 1e3)  # negative under the root on every sample


def test_nan_producing_graph_is_refused(tmp_path):
    from edgeae.export import export_modules

    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(16, 4))
    x = np.random.default_rng(0).random((32, 16), dtype=np.float32)
    with pytest.raises(ValidationError, match="outside their bound"):
        export_modules(enc, _NaNDecoder(4, 16), x, tmp_path / "b", latency_repeats=1)
    assert not (tmp_path / "b").exists()


def test_decoder_from_another_model_is_refused(mlp_run, tmp_path):
    """A bundle whose decoder.onnx comes from another run, its manifest hash rewritten to match:
    every file verifies, and the generated C's end-to-end check on the carried samples refuses."""
    import shutil

    from edgeae.codegen import generate_c
    from edgeae.export import export
    from edgeae.runtime.bundle import file_sha256
    from edgeae.train import train

    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed (Makefile system-tools)")
    a, b = tmp_path / "a", tmp_path / "b"
    other = tmp_path / "other-run"
    train("digits", out=other, epochs=1, seed=1, overwrite=True, model="mlp")  # same shapes, other weights
    export(mlp_run, a, **_FAST)
    export(other, b, **_FAST)
    shutil.copy(b / "decoder.onnx", a / "decoder.onnx")
    manifest = json.loads((a / "manifest.json").read_text())
    for g in manifest["graphs"]:
        if g["file"] == "decoder.onnx":
            g["sha256"], g["size"] = file_sha256(a / "decoder.onnx"), (a / "decoder.onnx").stat().st_size
    (a / "manifest.json").write_text(json.dumps(manifest, indent=2))
    with pytest.raises(ValidationError, match="does not belong to this model"):
        generate_c(a, tmp_path / "c", precisions="fp32")
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_int8_weights_refused_under_emulated_haswell(mlp_run, tmp_path):
    """QInt8 weights: ONNX Runtime's u8 x s8 kernel on an AVX2 CPU without VNNI saturates in
    int16; the exporter's reference check, run there, refuses the graph."""
    from onnxruntime import quantization as q

    from edgeae.export import export
    from edgeae.export.cpucheck import qemu, run_emulated
    from edgeae.export.graphs import gemm_to_matmul
    from edgeae.runtime.bundle import read_manifest
    from edgeae.runtime.preprocess import Normalizer

    if qemu() is None:
        pytest.skip("qemu-x86_64-static is not installed (Debian: apt-get install qemu-user-static)")
    bundle = tmp_path / "b"
    export(mlp_run, bundle, **_FAST)
    m = read_manifest(bundle)
    x = Normalizer(m.normalization, m.sample_shape).normalize(np.load(bundle / "samples.npy"))[:64]
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    prepared, bad = tmp_path / "prep.onnx", tmp_path / "encoder.qint8.onnx"
    onnx.save_model(gemm_to_matmul(onnx.load(str(bundle / "encoder.onnx"))), str(prepared))
    q.quantize_dynamic(str(prepared), str(bad), weight_type=q.QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
    report = run_emulated("haswell", {str(bad): str(tmp_path / "x.npy")}, timeout=1200)
    assert report[str(bad)]["failures"], report
    assert any("integer semantics" in f for f in report[str(bad)]["failures"]), report
