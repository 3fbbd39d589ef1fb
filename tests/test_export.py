"""Export: bundle contents, ORT / ReferenceEvaluator agreement, raw I/O, packaging, errors, CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

import edgeae
from edgeae.checkpoint import load_run
from edgeae.cli import cli
from edgeae.errors import CheckpointError, ConfigError, ExportError, ValidationError
from edgeae.export import export, export_modules
from edgeae.runtime.bundle import read_manifest, verify_bundle
from edgeae.runtime.preprocess import Normalizer


def _sess(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _held_out(bundle):
    raw = np.load(bundle / "samples.npy")
    m = read_manifest(bundle)
    return raw, Normalizer(m.normalization, m.sample_shape).normalize(raw)


def _batch(x, n):
    return np.ascontiguousarray(np.concatenate([x] * (n // len(x) + 1))[:n])


def test_bundle_manifest_files_and_metadata(mlp_bundle):
    assert verify_bundle(mlp_bundle) == []
    m = read_manifest(mlp_bundle)
    assert m.kind == "mlp" and m.code_size == 16 and m.sample_shape == (1, 8, 8)
    files = {g.file for g in m.graphs}
    assert {"encoder.onnx", "decoder.onnx", "encoder.int8-dynamic.onnx", "encoder.raw.onnx", "encoder.ort",
            "encoder.fp32.b4.onnx", "decoder.int8-dynamic.ort"} <= files
    assert (mlp_bundle / "required_operators.config").is_file()
    assert m.samples["count"] == len(np.load(mlp_bundle / "samples.npy")) > 0
    enc = m.find_graph("encoder", "fp32")
    assert enc.inputs[0].shape == ["batch", 1, 8, 8] and enc.outputs[0].name == "code"
    assert m.validation["fp32"]["max_abs_error"]["code"] <= 1e-5
    assert set(m.validation) == {"fp32", "int8-dynamic"}
    meta = {p.key: p.value for p in onnx.load(str(mlp_bundle / "encoder.raw.onnx")).metadata_props}
    assert meta["edgeae.role"] == "encoder" and meta["edgeae.code_size"] == "16"
    assert json.loads(meta["edgeae.input_shape"]) == [1, 8, 8] and meta["edgeae.input_dtype"] == "uint8"
    assert meta["edgeae.raw_io"] == "true" and json.loads(meta["edgeae.normalization"])["mode"] == "scale255"
    assert meta["edgeae.precision"] == "fp32" and meta["edgeae.version"] == edgeae.__version__


def test_fp32_graphs_match_pytorch_and_reference_evaluator(mlp_bundle, mlp_run):
    from onnx.reference import ReferenceEvaluator

    _, model = load_run(mlp_run)
    _, x = _held_out(mlp_bundle)
    enc, dec = _sess(mlp_bundle / "encoder.onnx"), _sess(mlp_bundle / "decoder.onnx")
    ref_enc = ReferenceEvaluator(onnx.load(str(mlp_bundle / "encoder.onnx")))
    for n in (1, 7, 64):
        xb = _batch(x, n)
        with torch.no_grad():
            code_t = model.encoder(torch.from_numpy(xb)).numpy()
            x_hat_t = model.decoder(torch.from_numpy(code_t)).numpy()
        code = enc.run(["code"], {"x": xb})[0]
        assert code.shape == (n, 16)
        np.testing.assert_allclose(code, code_t, atol=1e-5, rtol=0)
        np.testing.assert_allclose(dec.run(["x_hat"], {"code": code})[0], x_hat_t, atol=1e-5, rtol=0)
        np.testing.assert_allclose(ref_enc.run(None, {"x": xb})[0], code_t, atol=1e-4, rtol=0)


def test_raw_io_graphs_fold_normalization(mlp_bundle):
    raw, x = _held_out(mlp_bundle)
    m = read_manifest(mlp_bundle)
    norm = Normalizer(m.normalization, m.sample_shape)
    enc_raw, dec_raw = _sess(mlp_bundle / "encoder.raw.onnx"), _sess(mlp_bundle / "decoder.raw.onnx")
    assert enc_raw.get_inputs()[0].type == "tensor(uint8)" and dec_raw.get_outputs()[0].type == "tensor(uint8)"
    code = _sess(mlp_bundle / "encoder.onnx").run(["code"], {"x": x})[0]
    np.testing.assert_allclose(enc_raw.run(["code"], {"x": raw})[0], code, atol=1e-5, rtol=0)
    want = norm.denormalize(_sess(mlp_bundle / "decoder.onnx").run(["x_hat"], {"code": code})[0])
    got = dec_raw.run(["x_hat"], {"code": code})[0]
    assert got.dtype == np.uint8 and np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_ort_and_fixed_batch_copies_give_the_same_outputs(mlp_bundle):
    _, x = _held_out(mlp_bundle)
    for onnx_file, ort_file in [("encoder.onnx", "encoder.ort"), ("encoder.int8-dynamic.onnx", "encoder.int8-dynamic.ort")]:
        xb = _batch(x, 7)
        want = _sess(mlp_bundle / onnx_file).run(["code"], {"x": xb})[0]
        np.testing.assert_allclose(_sess(mlp_bundle / ort_file).run(["code"], {"x": xb})[0], want, atol=1e-5)
    fixed = _sess(mlp_bundle / "encoder.fp32.b4.onnx")
    assert fixed.get_inputs()[0].shape == [4, 1, 8, 8]
    want = _sess(mlp_bundle / "encoder.onnx").run(["code"], {"x": x[:4]})[0]
    np.testing.assert_allclose(fixed.run(["code"], {"x": x[:4]})[0], want, atol=1e-6)


def test_edgeae_export_is_callable():
    assert callable(edgeae.export) and edgeae.export.export is export


def test_export_modules_exports_a_plain_pair(tmp_path):
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.Tanh())
    dec = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Sigmoid())
    x = np.random.default_rng(0).random((40, 6), dtype=np.float32)
    result = export_modules(encoder=enc, decoder=dec, example_input=x, out_dir=tmp_path / "b",
                            precisions="fp32,int8-static", calibration_data=x, latency_repeats=2)
    m = read_manifest(tmp_path / "b")
    assert m.kind == "mlp" and m.code_size == 3 and m.samples is None
    assert result.validation["fp32"]["max_abs_error"]["end_to_end"] <= 1e-5
    assert "int8-static" in result.validation


# --- errors ----------------------------------------------------------------------------------


def test_run_folder_without_config_or_weights(tmp_path, mlp_run):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match=f"^{empty} is not a run folder: config.json is missing$"):
        export(empty, tmp_path / "b")
    no_weights = tmp_path / "noweights"
    no_weights.mkdir()
    shutil.copy(mlp_run / "config.json", no_weights)
    with pytest.raises(CheckpointError, match="has no weights"):
        export(no_weights, tmp_path / "b")


def test_weights_not_fitting_config(tmp_path, mlp_run):
    bad = tmp_path / "bad"
    shutil.copytree(mlp_run, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model"]["code_size"] = 5
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not fit the model described by config.json"):
        export(bad, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_option_errors(tmp_path, mlp_run):
    with pytest.raises(ConfigError, match=r"^unknown precision 'int4'; choose from: fp32, fp16, int8-dynamic, int8-static, int8"):
        export(mlp_run, tmp_path / "b", precisions="fp32,int4")
    with pytest.raises(ConfigError, match=r"^opset 12 is too low for int8-static \(per-channel"):
        export(mlp_run, tmp_path / "b", precisions="int8-static", opset=12)
    with pytest.raises(ConfigError, match=r"^opset 14 is below 15, the lowest opset torch's exporter writes"):
        export(mlp_run, tmp_path / "b", opset=14)
    with pytest.raises(ConfigError, match="^unknown calibration method 'mean'"):
        export(mlp_run, tmp_path / "b", calibration_method="mean")
    assert not (tmp_path / "b").exists()


def test_int8_static_without_calibration_data(tmp_path):
    lin = torch.nn.Linear(4, 2)
    with pytest.raises(ConfigError, match=r"^int8-static needs calibration data \(training samples\)"):
        export_modules(encoder=lin, decoder=torch.nn.Linear(2, 4), example_input=np.ones((3, 4), np.float32),
                       out_dir=tmp_path / "b", precisions="int8-static")


def test_output_folder_not_empty_or_not_writable(tmp_path, mlp_run):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    with pytest.raises(ExportError, match=f"^{full} is not empty; choose another -o or pass --overwrite"):
        export(mlp_run, full)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="^cannot write the bundle into .*; choose a writable -o$"):
        export(mlp_run, blocker / "bundle")
    assert (full / "keep.txt").read_text() == "x"


def test_failed_validation_leaves_nothing_behind(tmp_path, mlp_run):
    out = tmp_path / "bundle"
    with pytest.raises(ValidationError) as info:
        export(mlp_run, out, atol=1e-12, latency_repeats=1)
    text = str(info.value)
    assert "nothing was written" in text and "encoder.onnx code (batch 1, vs pytorch)" in text
    assert "decoder.onnx x_hat" in text and "end_to_end" in text  # every mismatch is listed
    assert list(tmp_path.iterdir()) == []


def test_cli_export_and_errors(tmp_path, mlp_run):
    runner = CliRunner()
    out = tmp_path / "b"
    res = runner.invoke(cli, ["export", str(mlp_run), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "precision" in res.output and "fp32" in res.output
    assert f"next: edgeae info {out}; edgeae bench {out}" in res.output
    res = runner.invoke(cli, ["export", str(mlp_run), "-o", str(out)])
    assert res.exit_code == 1
    assert res.output == f"Error: {out} is not empty; choose another -o or pass --overwrite to replace it\n"
    res = runner.invoke(cli, ["export", str(mlp_run), "-o", str(out), "--precision", "int3"])
    assert res.exit_code == 1 and res.output.startswith("Error: unknown precision 'int3'")


def test_overwrite_replaces_only_bundles(tmp_path, mlp_run):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    with pytest.raises(ExportError, match=r"is not an edgeae bundle \(no manifest.json\); --overwrite only replaces bundles"):
        export(mlp_run, folder, overwrite=True, latency_repeats=1)
    assert (folder / "notes.txt").read_text() == "keep"
