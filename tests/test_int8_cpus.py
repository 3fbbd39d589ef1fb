"""int8 bundles compute the same on CPUs without VNNI / AVX-512 (emulated with qemu user mode).

ONNX Runtime picks its integer kernels from the CPU's features (CPUID). qemu's user-mode
emulator reports another x86 model's features, so the same wheel runs that model's kernels:
Haswell (AVX2, no VNNI) and AMD EPYC Milan (AVX2, no VNNI) are where int8 x uint8 products
saturate in int16. Each int8 graph of a real bundle is run there by ONNX Runtime with the
runtime's session settings and compared with onnx.reference through the exporter's own
check, which must pass for the bundle's formats and refuse a graph with int8 weights.
Slow (emulation is 10-50x slower); skipped where qemu-x86_64-static is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _emulated(cpu: str, graphs: dict[str, str], tmp_path: Path) -> dict:
    from edgeae.export.cpucheck import qemu, run_emulated

    if qemu() is None:
        pytest.skip("qemu-x86_64-static is not installed (Debian: apt-get install qemu-user-static)")
    return run_emulated(cpu, graphs, timeout=1200)


def _inputs(bundle: Path, tmp_path: Path) -> tuple[str, str]:
    """(held-out samples in model units, their fp32 codes) as .npy files."""
    import onnxruntime as ort

    from edgeae.runtime.bundle import read_manifest
    from edgeae.runtime.preprocess import Normalizer

    m = read_manifest(bundle)
    x = Normalizer(m.normalization, m.sample_shape).normalize(np.load(bundle / "samples.npy"))[:64]
    enc = ort.InferenceSession(str(bundle / "encoder.onnx"), providers=["CPUExecutionProvider"])
    codes = enc.run(["code"], {"x": x})[0]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "codes.npy", codes)
    return str(tmp_path / "x.npy"), str(tmp_path / "codes.npy")


@pytest.fixture(scope="module")
def int8_bundles(trained_run, tmp_path_factory):
    from edgeae.export import export

    out = {}
    for kind in ("mlp", "conv"):
        out[kind] = tmp_path_factory.mktemp("int8") / kind
        export(trained_run(kind), out[kind], precisions="fp32,int8-dynamic,int8-static", latency_repeats=2,
               codec_bits="none")
    return out


def _int8_weight_graph(bundle: Path, dst: Path) -> Path:
    """The same encoder quantized with int8 (QInt8) weights: the format the exporter avoids."""
    import onnx
    from onnxruntime import quantization as q

    from edgeae.export.graphs import gemm_to_matmul

    prepared = dst.with_suffix(".prep.onnx")
    onnx.save_model(gemm_to_matmul(onnx.load(str(bundle / "encoder.onnx"))), str(prepared))
    q.quantize_dynamic(str(prepared), str(dst), weight_type=q.QuantType.QInt8, per_channel=False,
                       extra_options={"MatMulConstBOnly": True})
    return dst


@pytest.mark.parametrize("cpu", ["haswell", "epyc"])
def test_int8_mlp_graphs_are_exact_without_vnni(cpu, int8_bundles, tmp_path):
    bundle = int8_bundles["mlp"]
    x, codes = _inputs(bundle, tmp_path)
    graphs = {str(bundle / f"{role}.{p}.onnx"): (x if role == "encoder" else codes)
              for role in ("encoder", "decoder") for p in ("int8-dynamic", "int8-static")}
    bad = _int8_weight_graph(bundle, tmp_path / "encoder.qint8.onnx")
    graphs[str(bad)] = x
    report = _emulated(cpu, graphs, tmp_path)
    for path, r in report.items():
        if path == str(bad):
            continue
        assert r["notes"] == [] and r["checks"] == 3, (path, r)
        assert r["failures"] == [], (path, r)
        assert r["max_error"] <= 1e-6, (path, r)  # the integer results are exact; floats differ by ulps at most
    # The control: int8 weights saturate on this CPU, and the exporter's check refuses the graph.
    assert report[str(bad)]["failures"], report[str(bad)]
    assert report[str(bad)]["max_error"] > 1e-3


def test_int8_conv_graphs_are_exact_without_vnni(int8_bundles, tmp_path):
    bundle = int8_bundles["conv"]
    x, codes = _inputs(bundle, tmp_path)
    graphs = {str(bundle / f"{role}.{p}.onnx"): (x if role == "encoder" else codes)
              for role in ("encoder", "decoder") for p in ("int8-dynamic", "int8-static")}
    report = _emulated("haswell", graphs, tmp_path)
    for path, r in report.items():
        assert r["failures"] == [] and r["checks"] == 3, (path, r)
        assert r["max_error"] <= 1e-6, (path, r)


def test_manifest_records_int8_formats(int8_bundles):
    import onnx

    from edgeae.runtime.bundle import read_manifest

    bundle = int8_bundles["mlp"]
    m = read_manifest(bundle)
    for p in ("int8-dynamic", "int8-static"):
        q = m.validation[p]["quantization"]
        assert q["weights"] == "uint8" and q["activations"].startswith("uint8") and "saturates" in q["why"]
        meta = {e.key: e.value for e in onnx.load(str(bundle / f"encoder.{p}.onnx")).metadata_props}
        assert json.loads(meta["edgeae.quantization"])["weights"] == "uint8"
        # every weight initializer feeding an integer product is uint8 in the written graph
        model = onnx.load(str(bundle / f"encoder.{p}.onnx"))
        quantized = [i for i in model.graph.initializer if i.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
                     and len(i.dims) >= 2]
        assert quantized and all(i.data_type == onnx.TensorProto.UINT8 for i in quantized)
