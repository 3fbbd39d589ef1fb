"""The runtime commands: encode, decode, reconstruct, info (exit codes and exact errors)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import edgeae.runtime as rt
from edgeae.cli import cli
from tests._bundles import add_ort_copies, digits_features, digits_uint8, make_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("cli"), "image")[0]


@pytest.fixture()
def inputs(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, digits_uint8()[:120])
    return path


def _run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


def test_encode_decode_round_trip(bundle, inputs, tmp_path):
    codes, out = tmp_path / "c.npy", tmp_path / "r.npy"
    r = _run("encode", bundle, inputs, "-o", codes, "--batch-size", 50)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("Encoded 120 samples -> ")
    model = rt.load(bundle)
    np.testing.assert_allclose(np.load(codes), model.encode(digits_uint8()[:120]), atol=1e-6)
    r = _run("decode", bundle, codes, "-o", out)
    assert r.exit_code == 0, r.output
    x = np.load(out)
    assert x.dtype == np.uint8 and x.shape == (120, 1, 8, 8)
    np.testing.assert_array_equal(x, model.decode(np.load(codes), raw=True))


def test_decode_to_png_folder(bundle, inputs, tmp_path):
    codes = tmp_path / "c.npy"
    assert _run("encode", bundle, inputs, "-o", codes).exit_code == 0
    r = _run("decode", bundle, codes, "-o", tmp_path / "png")
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "png").glob("*.png"))) == 120


def test_reconstruct_prints_psnr(bundle, inputs, tmp_path):
    r = _run("reconstruct", bundle, inputs, "--precision", "int8-dynamic", "-o", tmp_path / "r.npy")
    assert r.exit_code == 0, r.output
    _, ref = make_bundle(tmp_path / "again", "image")  # the same PCA: its numpy integer reference
    x = digits_uint8()[:120]
    x01 = x / np.float32(255)
    expected = rt.psnr(x01, ref.decode_int8(ref.encode_int8(x01)))
    fp32 = rt.psnr(x01, ref.decode(ref.encode(x01)))
    shown = float(re.search(r"PSNR ([\d.]+) dB", r.output).group(1))
    assert shown == pytest.approx(expected, abs=0.006) and abs(shown - fp32) < 0.5
    assert "[int8-dynamic, CPUExecutionProvider]" in r.output
    written = np.load(tmp_path / "r.npy")
    assert written.dtype == np.uint8
    want = np.rint(ref.decode_int8(ref.encode_int8(x01)) * 255)
    assert np.abs(written.astype(int) - want).max() <= 1


def test_reconstruct_standardized_reports_mse_only(tmp_path):
    folder, _ = make_bundle(tmp_path / "v", "vector")
    np.save(tmp_path / "f.npy", digits_features()[:50])
    r = _run("reconstruct", folder, tmp_path / "f.npy")
    assert r.exit_code == 0, r.output
    assert "MSE" in r.output and "PSNR" not in r.output
    r = _run("decode", folder, tmp_path / "f.npy", "-o", tmp_path / "pngs")
    assert r.exit_code == 1
    assert r.output == f"Error: {tmp_path / 'f.npy'} has shape (50, 64); expected (16,) (one sample) or (N, 16) (a batch)\n"
    np.save(tmp_path / "c.npy", np.zeros((3, 16), np.float32))
    r = _run("decode", folder, tmp_path / "c.npy", "-o", tmp_path / "pngs")
    assert r.output == (f"Error: decoded samples are vectors, not images, so {str(tmp_path / 'pngs')!r} cannot be "
                        "a PNG folder: use -o OUT.npy\n")


def test_errors_are_exact(bundle, inputs, tmp_path):
    r = _run("encode", bundle, inputs, "-o", tmp_path / "c.npy", "--precision", "fp16")
    assert r.exit_code == 1
    assert r.output == (f"Error: precision 'fp16' (onnx) is not in bundle {bundle}; available encoder precisions: "
                        "fp32, int8-dynamic; choose one of them or re-export with it\n")
    np.save(tmp_path / "c64.npy", np.zeros((2, 16), complex))
    r = _run("decode", bundle, tmp_path / "c64.npy", "-o", tmp_path / "o.npy")
    assert r.exit_code == 1
    assert r.output == (f"Error: {tmp_path / 'c64.npy'} has dtype complex128; expected floats (or integers): "
                        "use code.astype(np.float32)\n")
    r = _run("encode", tmp_path / "nowhere", inputs, "-o", tmp_path / "c.npy")
    assert r.exit_code == 1
    assert r.output.startswith(f"Error: {tmp_path / 'nowhere' / 'manifest.json'} not found (the folder does not exist)")
    missing = next(p for p in ("tensorrt", "coreml", "openvino", "qnn")
                   if rt.session.PROVIDER_ALIASES[p] not in rt.available_providers())
    r = _run("encode", bundle, inputs, "-o", tmp_path / "c.npy", "--provider", missing)
    assert r.exit_code == 1
    assert r.output.startswith(f"Error: execution provider '{missing}' is not available in this onnxruntime; ")
    assert not (tmp_path / "c.npy").exists()


def test_provider_threads_and_format_options(bundle, inputs, tmp_path, monkeypatch):
    """--provider cpu, --threads N and --format ort reach the sessions the command runs."""
    loaded = []
    real = rt.load

    def recording(*args, **kw):
        loaded.append(real(*args, **kw))
        return loaded[-1]

    monkeypatch.setattr(rt, "load", recording)
    r = _run("reconstruct", bundle, inputs, "--provider", "cpu", "--threads", 3)
    assert r.exit_code == 0, r.output
    assert "[fp32, CPUExecutionProvider]" in r.output
    for graph in (loaded[-1]._encoder, loaded[-1]._decoder):
        assert graph.session.get_providers() == ["CPUExecutionProvider"]
        assert graph.session.get_session_options().intra_op_num_threads == 3
    r = _run("encode", bundle, inputs, "-o", tmp_path / "c.npy")
    assert r.exit_code == 0, r.output
    assert loaded[-1]._encoder.session.get_session_options().intra_op_num_threads == 1  # the default
    # --format ort: a bundle whose .onnx graphs are gone still runs from its .ort copies
    folder = shutil.copytree(bundle, tmp_path / "ortb")
    add_ort_copies(folder)
    for name in ("encoder.onnx", "decoder.onnx"):
        (folder / name).unlink()
    r = _run("encode", folder, inputs, "-o", tmp_path / "o.npy", "--format", "ort")
    assert r.exit_code == 0, r.output
    assert [g["file"] for g in loaded[-1].info["graphs"]] == ["encoder.ort", "decoder.ort"]
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), np.load(tmp_path / "c.npy"), atol=1e-5, rtol=0)
    r = _run("encode", folder, inputs, "-o", tmp_path / "p.npy")
    assert r.exit_code == 1 and r.output.startswith(f"Error: bundle {folder}: encoder.onnx")
    r = _run("encode", bundle, inputs, "-o", tmp_path / "p.npy", "--threads", -1)
    assert r.exit_code == 2 and "Invalid value for '--threads'" in r.output


def test_info_ok_and_tampered(bundle, tmp_path):
    r = _run("info", bundle)
    assert r.exit_code == 0, r.output
    for text in ("model         mlp, code size 16", "encoder.onnx", "decoder.int8-dynamic.onnx", "all files OK",
                 "validation"):
        assert text in r.output
    folder = shutil.copytree(bundle, tmp_path / "b")
    data = bytearray((folder / "decoder.onnx").read_bytes())
    data[-5] ^= 1
    (folder / "decoder.onnx").write_bytes(bytes(data))
    r = _run("info", folder)
    assert r.exit_code == 1
    assert ".. BAD" in r.output and "decoder.onnx: SHA-256 mismatch" in r.output
    assert r.output.endswith(f"Error: bundle {folder} failed verification (1 problem(s) listed above)\n")


def test_runtime_commands_have_help():
    for name in ("encode", "decode", "reconstruct", "info"):
        r = _run(name, "--help")
        assert r.exit_code == 0 and "Usage: " in r.output


def test_outputs_are_never_replaced_silently(tmp_path):
    b, _ = make_bundle(tmp_path / "b", "image")
    np.save(tmp_path / "x.npy", digits_uint8()[:5])
    runner = CliRunner()
    codes = tmp_path / "c.npy"
    codes.write_bytes(b"precious")
    res = runner.invoke(cli, ["encode", str(b), str(tmp_path / "x.npy"), "-o", str(codes)])
    assert res.exit_code == 1
    assert res.output.strip() == f"Error: {codes} already exists; pass --overwrite to replace it, or choose another -o"
    assert codes.read_bytes() == b"precious"
    res = runner.invoke(cli, ["encode", str(b), str(tmp_path / "x.npy"), "-o", str(tmp_path / "codes")])
    assert res.output.strip() == "Error: -o 'PATH' must be a .npy file, e.g. -o codes.npy".replace(
        "PATH", str(tmp_path / "codes"))
    assert runner.invoke(cli, ["encode", str(b), str(tmp_path / "x.npy"), "-o", str(codes), "--overwrite"]).exit_code == 0
    pngs = tmp_path / "png"
    assert runner.invoke(cli, ["decode", str(b), str(codes), "-o", str(pngs)]).exit_code == 0
    res = runner.invoke(cli, ["decode", str(b), str(codes), "-o", str(pngs)])
    assert res.output.strip() == f"Error: {pngs} is not empty; choose another -o or pass --overwrite to replace it"
    np.save(tmp_path / "two.npy", np.load(codes)[:2])
    assert runner.invoke(cli, ["decode", str(b), str(tmp_path / "two.npy"), "-o", str(pngs), "--overwrite"]).exit_code == 0
    assert len(list(pngs.glob("*.png"))) == 2  # no stale images from the earlier run
    res = runner.invoke(cli, ["decode", str(b), str(codes), "-o", str(tmp_path / "missing" / "deeper" / "r.npy")])
    assert res.exit_code == 1 and res.output.startswith("Error: ") and "Traceback" not in res.output
    np.savez(tmp_path / "c.npz", a=np.load(codes))
    res = runner.invoke(cli, ["decode", str(b), str(tmp_path / "c.npz"), "-o", str(tmp_path / "r.npy")])
    assert res.exit_code == 1 and "holds an .npz archive; expected a .npy array of codes" in res.output


def test_float_pixels_for_a_uint8_bundle_are_refused(tmp_path):
    b, _ = make_bundle(tmp_path / "b", "image")
    np.save(tmp_path / "x.npy", digits_uint8()[:5].astype(np.float32))  # 0..255 floats
    res = CliRunner().invoke(cli, ["reconstruct", str(b), str(tmp_path / "x.npy")])
    assert res.exit_code == 1
    assert res.output.strip() == (f"Error: {tmp_path / 'x.npy'} holds float values up to 255 (root-mean-square 118 > 1), but "
                                  "this bundle takes "
                                  "uint8 pixels or floats already scaled to [0, 1]: save the pixels as uint8, or "
                                  "divide by 255")
    np.save(tmp_path / "y.npy", digits_uint8()[:5].astype(np.float32) / 255)
    assert CliRunner().invoke(cli, ["reconstruct", str(b), str(tmp_path / "y.npy")]).exit_code == 0
