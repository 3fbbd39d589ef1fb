"""End to end: train -> export -> torch-free runtime -> compress, on the built-in digits."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import edgeae.runtime as rt
from edgeae.cli import cli
from edgeae.runtime.compress import compress, decompress

ROOT = Path(__file__).resolve().parents[1]


def test_runtime_matches_exporter_validation(mlp_bundle, mlp_run):
    """The runtime's PSNR on the bundle's held-out samples equals what export measured."""
    import json
    import math

    manifest = rt.read_manifest(mlp_bundle)
    samples = np.load(mlp_bundle / "samples.npy")
    # digits hold out 180 samples: samples.npy keeps all of them (up to 256), which export scored
    n_val = json.loads((mlp_run / "metrics.json").read_text())["n_val"]
    assert len(samples) == manifest.samples["count"] == n_val == 180
    psnr = {}
    for precision in ("fp32", "int8-dynamic"):
        model = rt.load(mlp_bundle, precision=precision)
        x_hat = model.reconstruct(samples)
        psnr[precision] = 10 * math.log10(1 / float(np.mean((samples / 255.0 - x_hat.astype(np.float64)) ** 2)))
        assert rt.psnr(model.to_model_units(samples), x_hat) == pytest.approx(psnr[precision], abs=1e-6)
        assert psnr[precision] == pytest.approx(manifest.validation[precision]["psnr"], abs=1e-3)
    assert psnr["fp32"] == pytest.approx(json.loads((mlp_run / "metrics.json").read_text())["val_psnr"], abs=1e-3)
    assert psnr["fp32"] - 0.5 <= psnr["int8-dynamic"] != psnr["fp32"]  # really quantized, close in quality


def test_codec_tables_in_manifest(mlp_bundle):
    manifest = rt.read_manifest(mlp_bundle)
    assert [c["bits"] for c in manifest.codec] == [6, 4, 8]
    report = manifest.validation["fp32"]["codec"]
    assert report["4"]["bytes_per_sample"] < report["6"]["bytes_per_sample"] < report["8"]["bytes_per_sample"]
    assert report["4"]["psnr"] <= report["8"]["psnr"] + 1e-6


def test_compress_round_trip_across_precisions(mlp_bundle):
    samples = np.load(mlp_bundle / "samples.npy")
    fp32 = rt.load(mlp_bundle)
    int8 = rt.load(mlp_bundle, precision="int8-dynamic")
    stream = compress(int8, samples, bits=4)
    again = compress(int8, samples, bits=4)
    assert stream == again  # deterministic bytes
    back = decompress(fp32, stream)  # a stream from the int8 encoder decodes with the fp32 decoder
    assert back.shape == samples.shape and back.dtype == np.uint8
    codes = int8.encode(samples)
    # what the receiver gets equals decoding the quantized codes directly
    from edgeae.runtime.compress import codecs_of

    codec = [c for c, _ in codecs_of(fp32.manifest) if c.bits == 4][0]
    direct = fp32.decode(codec.dequantize(codec.quantize(codes)), raw=True)
    assert np.array_equal(back, direct)


def test_cli_compress_decompress(mlp_bundle, tmp_path):
    runner = CliRunner()
    x = tmp_path / "x.npy"
    np.save(x, np.load(mlp_bundle / "samples.npy")[:50])
    out = tmp_path / "d.eae"
    res = runner.invoke(cli, ["compress", str(mlp_bundle), str(x), "-o", str(out), "--bits", "6"])
    assert res.exit_code == 0, res.output
    assert "Compressed 50 samples" in res.output and "bytes/sample" in res.output and "PSNR" in res.output
    size = out.stat().st_size
    res = runner.invoke(cli, ["compress", str(mlp_bundle), str(x), "-o", str(out)])
    assert res.exit_code == 1
    assert res.output.strip() == (f"Error: {out} already exists; use --append to add samples to it, --overwrite "
                                  "to replace it, or choose another -o")
    assert out.stat().st_size == size  # nothing lost
    res = runner.invoke(cli, ["compress", str(mlp_bundle), str(x), "-o", str(out), "--append"])
    assert res.exit_code == 0 and out.stat().st_size > size
    res = runner.invoke(cli, ["decompress", str(mlp_bundle), str(out), "-o", str(tmp_path / "back.npy")])
    assert res.exit_code == 0, res.output
    back = np.load(tmp_path / "back.npy")
    assert back.shape == (100, 1, 8, 8)
    res = runner.invoke(cli, ["decompress", str(mlp_bundle), str(out), "-o", str(tmp_path / "png")])
    assert res.exit_code == 0 and len(list((tmp_path / "png").glob("*.png"))) == 100
    res = runner.invoke(cli, ["compress", str(mlp_bundle), str(x), "-o", str(tmp_path / "e.eae"), "--bits", "3"])
    assert res.exit_code == 1
    assert res.output.strip() == ("Error: bits=3 has no codec tables in this bundle; available: [4, 6, 8] "
                                  "(omit bits, or re-export with tables for that bit depth)")


def test_cli_decompress_rejects_damage(mlp_bundle, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.load(mlp_bundle / "samples.npy")[:10])
    out = tmp_path / "d.eae"
    runner = CliRunner()
    assert runner.invoke(cli, ["compress", str(mlp_bundle), str(x), "-o", str(out)]).exit_code == 0
    data = bytearray(out.read_bytes())
    data[-3] ^= 0x10
    bad = tmp_path / "bad.eae"
    bad.write_bytes(bytes(data))
    res = runner.invoke(cli, ["decompress", str(mlp_bundle), str(bad), "-o", str(tmp_path / "o.npy")])
    assert res.exit_code == 1 and res.output.startswith("Error: ") and "Traceback" not in res.output
    assert not (tmp_path / "o.npy").exists()
    res = runner.invoke(cli, ["decompress", str(mlp_bundle), str(tmp_path / "none.eae"), "-o", "o.npy"])
    assert res.exit_code == 1 and res.output.startswith(f"Error: cannot read stream {tmp_path / 'none.eae'}")


def test_quantization_aware_training_uses_its_grid(tmp_path):
    from edgeae.export import export
    from edgeae.train import train

    run = train("digits", out=tmp_path / "run", epochs=3, latent_bits=4, code_size=12)
    assert run.config.model.code_activation == "sigmoid"
    export(run.run_dir, tmp_path / "b", latency_repeats=2)
    manifest = rt.read_manifest(tmp_path / "b")
    (codec,) = manifest.codec
    assert codec["bits"] == 4 and set(codec["lo"]) == {0.0} and set(codec["hi"]) == {1.0}


@pytest.mark.skipif(not os.environ.get("EDGEAE_RUNTIME_PYTHON"),
                    reason="EDGEAE_RUNTIME_PYTHON not set (make test sets it to a base-install venv)")
def test_exported_bundle_in_base_install(mlp_bundle, tmp_path):
    """A bundle exported here runs in an environment with only the base install."""
    python = os.environ["EDGEAE_RUNTIME_PYTHON"]
    np.save(tmp_path / "x.npy", np.load(mlp_bundle / "samples.npy")[:32])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def edgeae(*args):
        code = f"import sys; from edgeae.cli import main; sys.argv = {['edgeae', *args]!r}; main()"
        r = subprocess.run([python, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    info = edgeae("info", str(mlp_bundle))
    assert "verification  all files OK" in info and "encoder.int8-dynamic.onnx" in info and "BAD" not in info
    edgeae("encode", str(mlp_bundle), "x.npy", "-o", "codes.npy", "--precision", "int8-dynamic")
    assert np.load(tmp_path / "codes.npy").shape == (32, rt.read_manifest(mlp_bundle).code_size)
    edgeae("decode", str(mlp_bundle), "codes.npy", "-o", "recon.npy")
    assert "PSNR" in edgeae("reconstruct", str(mlp_bundle), "x.npy")
    assert "bytes/sample" in edgeae("compress", str(mlp_bundle), "x.npy", "-o", "x.eae")
    edgeae("decompress", str(mlp_bundle), "x.eae", "-o", "back.npy")
    code = "import sys; from edgeae.cli import main; sys.argv = ['edgeae', 'train', '--epochs', '1']; main()"
    r = subprocess.run([python, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("Error: this command needs the training side of edgeae (torch is not installed): "
                                "pip install 'edgeae[train]'")
    assert np.load(tmp_path / "back.npy").shape == (32, 1, 8, 8)
    probe = subprocess.run([python, "-c", "import importlib.util as u; print(u.find_spec('torch'), u.find_spec('onnx'))"],
                           capture_output=True, text=True, env=env)
    assert probe.stdout.strip() == "None None"


def test_append_with_other_bits_is_refused(mlp_bundle, tmp_path):
    from edgeae.errors import ConfigError
    from edgeae.runtime.compress import append

    model = rt.load(mlp_bundle)
    samples = np.load(mlp_bundle / "samples.npy")[:4]
    path = tmp_path / "log.eae"
    append(model, path, samples, bits=4)
    with pytest.raises(ConfigError, match=r"holds 4-bit codes; omit --bits or pass --bits 4"):
        append(model, path, samples, bits=6)
    append(model, path, samples)  # without bits: the file's own codec
    assert decompress(model, path.read_bytes()).shape == (8, 1, 8, 8)


def test_manifest_with_bad_normalization_is_refused(mlp_bundle, tmp_path):
    import json
    import shutil

    from edgeae.errors import BundleError

    copy = tmp_path / "b"
    shutil.copytree(mlp_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["normalization"]["offset"] = [0.0, 1.0, 2.0]
    manifest["normalization"]["scale"] = [1.0, 1.0, 1.0]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="normalization has 3 offset/scale values; expected 1 or one per feature"):
        rt.load(copy)
    manifest["normalization"]["offset"], manifest["normalization"]["scale"] = [0.0], [0.0]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="normalization: normalization values must be finite and scales non-zero"):
        rt.load(copy)
