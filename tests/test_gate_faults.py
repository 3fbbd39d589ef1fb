"""The gate still refuses a wrong model: each deliberate fault below must stop the export
(or the generated-C check), with nothing written.

Faults are injected where they would arise: in the graph the quantizer writes (int8 weight
rows swapped, a layer left in float, fp16 weights 2% off), in the model (a NaN-producing
decoder), in a finished bundle (a decoder from another model with the manifest hash
updated), and on another CPU (int8 weights under an emulated Haswell, where u8 x s8 products
saturate in int16).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import gate_faults as F
from edgeae.errors import ValidationError

_FAST = {"latency_repeats": 1, "codec_bits": "none"}


def _refused(run_dir: Path, out: Path, precisions: str, match: str) -> str:
    from edgeae.export import export

    with pytest.raises(ValidationError, match=match) as info:
        export(run_dir, out, precisions=precisions, **_FAST)
    assert not out.exists()
    return str(info.value)


@pytest.mark.parametrize("precision, corrupt, match", [
    ("int8-static", F.swap_rows, "(?s)quantization bound.*8-bit weight .* steps from the float weight"),
    ("int8-dynamic", F.swap_rows, "(?s)quantization bound.*8-bit weight .* steps from the float weight"),
    ("fp16", F.scale_fp16, "float16 rounding bound"),
    ("int8-dynamic", F.one_layer_in_float, "left in float"),
])
def test_corrupted_graph_is_refused(precision, corrupt, match, mlp_run, tmp_path):
    with F.corrupting(precision, corrupt):
        _refused(mlp_run, tmp_path / "b", f"fp32,{precision}", match)


def test_nan_producing_graph_is_refused(tmp_path):
    case = F.nan_fault(tmp_path / "b")
    assert case["refused"] and "outside their bound" in case["by"], case


def test_decoder_from_another_model_is_refused(mlp_run, tmp_path):
    """A bundle whose decoder.onnx comes from another run, its manifest hash rewritten to match:
    every file verifies, and the generated C's end-to-end check on the carried samples refuses."""
    import shutil

    from edgeae.codegen import generate_c
    from edgeae.export import export
    from edgeae.runtime.bundle import verify_bundle
    from edgeae.train import train

    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed (Makefile system-tools)")
    a, b = tmp_path / "a", tmp_path / "b"
    other = tmp_path / "other-run"
    train("digits", out=other, epochs=1, seed=1, overwrite=True, model="mlp")  # same shapes, other weights
    export(mlp_run, a, **_FAST)
    export(other, b, **_FAST)
    F.other_decoder(a, b)
    assert verify_bundle(a) == []  # every hash matches
    with pytest.raises(ValidationError, match="does not belong to this model"):
        generate_c(a, tmp_path / "c", precisions="fp32")
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_int8_weights_refused_under_emulated_haswell(mlp_run, tmp_path):
    """QInt8 weights: ONNX Runtime's u8 x s8 kernel on an AVX2 CPU without VNNI saturates in
    int16; the exporter's reference check, run there, refuses the graph."""
    from edgeae.export import export
    from edgeae.export.cpucheck import qemu, run_emulated
    from edgeae.runtime.bundle import read_manifest
    from edgeae.runtime.preprocess import Normalizer

    if qemu() is None:
        pytest.skip("qemu-x86_64-static is not installed (Debian: apt-get install qemu-user-static)")
    bundle = tmp_path / "b"
    export(mlp_run, bundle, **_FAST)
    m = read_manifest(bundle)
    x = Normalizer(m.normalization, m.sample_shape).normalize(np.load(bundle / "samples.npy"))[:64]
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    bad = F.qint8_graph(bundle / "encoder.onnx", tmp_path / "encoder.qint8.onnx")
    report = run_emulated("haswell", {str(bad): str(tmp_path / "x.npy")}, timeout=1200)
    assert report[str(bad)]["failures"], report
    assert any("integer semantics" in f for f in report[str(bad)]["failures"]), report
