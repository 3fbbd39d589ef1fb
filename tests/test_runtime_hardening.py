"""Bundles an adversary has changed: each is refused at load (and by ``edgeae info``) with a clear error.

Every case here crashed, or computed a wrong result, before the runtime checked it:
manifest values (huge, wrong type, not valid Unicode), graphs swapped for others whose
inputs differ, external weight files no hash covered, int8 graphs with s8 weights,
graphs whose output is float64, NaN or too large to allocate, and a NaN deep in a large
file named by its index within the streaming block. The API raises a typed
:class:`EdgeAEError`; the CLI prints ``Error: ...`` and exits 1 without a traceback.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import edgeae.runtime as rt
from edgeae.cli import cli
from edgeae.errors import BundleError, InputError
from edgeae.runtime.bundle import file_sha256
from tests._bundles import CODE, OPSET, digits_uint8, make_bundle, with_codec


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return with_codec(make_bundle(tmp_path_factory.mktemp("hard") / "b", "image")[0])


@pytest.fixture
def bundle(pristine, tmp_path) -> Path:
    """A fresh copy of the image bundle for one test to damage."""
    return Path(shutil.copytree(pristine, tmp_path / "b"))


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _write_manifest(folder: Path, data: dict | str) -> None:
    (folder / "manifest.json").write_text(data if isinstance(data, str) else json.dumps(data))


def _swap(folder: Path, file: str, model: onnx.ModelProto) -> None:
    """Replace a graph file and update its size and hash in the manifest (as a careful adversary would)."""
    onnx.save(model, str(folder / file))
    data = _manifest(folder)
    for g in data["graphs"]:
        if g["file"] == file:
            g["size"], g["sha256"] = (folder / file).stat().st_size, file_sha256(folder / file)
    _write_manifest(folder, data)


def _cli_error(args: list) -> str:
    """Run the CLI; it must exit 1 with an ``Error:`` line and no traceback. -> the Error line."""
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exit_code == 1, (r.exit_code, r.output, r.exception)
    assert isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, r.output
    return errors[0]


def _graph(name: str, nodes: list, inputs: list, outputs: list, inits: list) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)


def _encoder(in_shape: list, features: int, out_type=TensorProto.FLOAT) -> onnx.ModelProto:
    """x (in_shape) -> Flatten -> MatMul -> code (B, CODE), optionally cast to another dtype."""
    w = np.random.default_rng(0).normal(0, 0.1, (features, CODE)).astype(np.float32)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "W"], ["c"])]
    nodes.append(helper.make_node("Cast", ["c"], ["code"], to=out_type) if out_type != TensorProto.FLOAT
                 else helper.make_node("Identity", ["c"], ["code"]))
    return _graph("encoder", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                  [helper.make_tensor_value_info("code", out_type, [in_shape[0], CODE])], [("W", w)])


# ---- manifest values ------------------------------------------------------------------------------
def test_manifest_code_size_of_5000_digits(bundle):
    text = (bundle / "manifest.json").read_text()
    _write_manifest(bundle, text.replace(f'"code_size": {CODE}', '"code_size": ' + "1" * 5000, 1))
    with pytest.raises(BundleError, match="not valid JSON .*integer string conversion"):
        rt.load(bundle)
    for args in (["info", bundle], ["encode", bundle, bundle / "samples.npy", "-o", bundle / "c.npy"]):
        assert _cli_error(args).startswith(f"Error: {bundle / 'manifest.json'} is not valid JSON (ValueError: "
                                           "Exceeds the limit (4300 digits) for integer string conversion")


@pytest.mark.parametrize("key, value, message", [
    ("code_size", 10**30, "code_size 1000000000000000000000000000000 must be an int from 1 to 16777216"),
    ("code_size", -16, "code_size -16 must be an int from 1 to 16777216"),
    ("code_size", 16.0, "code_size 16.0 must be an int from 1 to 16777216"),
    ("code_size", "16", "code_size '16' must be an int from 1 to 16777216"),
    ("kind", ["mlp"], "kind ['mlp'] is not one of: mlp, conv, vae, conv-vae"),
    ("validation", {"fp32": [1]}, "validation['fp32'] [1] must be an object of figures"),
    ("validation", {"fp32": {"codec": {"6": 1}}}, "validation['fp32'].codec {'6': 1} must be an object of "
                                                   "per-bit-depth figures"),
    ("tools", {"edgeae": 1}, "tools {'edgeae': 1} must map names to versions"),
    ("codec", [], "codec is an empty list; write null for a bundle without codec tables"),
    ("input", {"shape": [1, 8, 8], "is_image": "yes"}, "input is_image 'yes' must be true or false"),
    ("input", {"shape": [2**40, 8, 8]}, "input shape [1099511627776, 8, 8] must be a list of 1 to 3 positive ints"),
    ("normalization", {"mode": "scale255", "raw_dtype": "uint8", "offset": [1e308], "scale": [255.0]},
     "normalization offset/scale values must lie within float32's range"),
])
def test_manifest_values_are_checked(bundle, key, value, message):
    _write_manifest(bundle, {**_manifest(bundle), key: value})
    with pytest.raises(BundleError, match="malformed manifest: " + _escape(message)):
        rt.load(bundle)
    assert _cli_error(["info", bundle]).startswith("Error: malformed manifest: " + message)


def _escape(text: str) -> str:
    import re

    return re.escape(text)


@pytest.mark.parametrize("where", ["key", "value"])
def test_manifest_lone_surrogate_is_refused(bundle, where):
    data = _manifest(bundle)
    data["tools"] = {"x\ud800": "1"} if where == "key" else {"edgeae": "x\ud800"}
    _write_manifest(bundle, json.dumps(data))  # ensure_ascii: the file holds the escape "\ud800"
    with pytest.raises(BundleError, match="holds a string that is not valid Unicode"):
        rt.read_manifest(bundle)
    assert _cli_error(["info", bundle]) == ("Error: malformed manifest: manifest.tools holds a string that is not "
                                            "valid Unicode ('x\\ud800'); re-export the bundle")


def test_manifest_nested_too_deep_is_refused(bundle):
    deep: list = []
    for _ in range(200):
        deep = [deep]
    _write_manifest(bundle, {**_manifest(bundle), "model": {"x": deep}})
    assert _cli_error(["info", bundle]).startswith("Error: malformed manifest: manifest.model.x")


def test_load_none_is_a_typed_error():
    with pytest.raises(BundleError, match="bundle_dir must be the path of a bundle folder .* got NoneType"):
        rt.load(None)
    with pytest.raises(BundleError, match="got int"):
        rt.load(3)


@pytest.mark.parametrize("option, value, message", [
    ("providers", 5, "providers must be a name (auto, cpu, cuda, ...) or a list of names, got int 5"),
    ("providers", ["cpu", None], "providers must be a name (auto, cpu, cuda, ...) or a list of names, got list"),
    ("threads", 10**30, "threads=1000000000000000000000000000000 is more than 4096; pass 0 for all cores"),
    ("threads", True, "threads must be a non-negative int (0 = all cores), got True"),
    ("precision", None, "precision must be a str (fp32, fp16, int8-dynamic, int8-static), got NoneType"),
])
def test_load_options_of_the_wrong_type_are_typed_errors(pristine, option, value, message):
    from edgeae.errors import EdgeAEError

    with pytest.raises(EdgeAEError, match=_escape(message)):
        rt.load(pristine, **{option: value})


# ---- graphs swapped for others ---------------------------------------------------------------------
@pytest.mark.parametrize("case, file, model, problem", [
    ("3x8x8", "encoder.onnx", lambda: _encoder(["batch", 3, 8, 8], 192),
     "encoder.onnx: graph input x has shape ['batch', 3, 8, 8] (axis 1 is 3), manifest expects [batch, 1, 8, 8]"),
    ("flat", "encoder.onnx", lambda: _encoder(["batch", 64], 64),
     "encoder.onnx: graph input x has shape ['batch', 64], manifest expects [batch, 1, 8, 8]"),
    ("batch1", "encoder.onnx", lambda: _encoder([1, 1, 8, 8], 64),
     "encoder.onnx: graph input x runs only batch 1, manifest expects [batch, 1, 8, 8] (a dynamic batch axis)"),
    ("8 codes", "decoder.onnx", lambda: _decoder_taking(8),
     "decoder.onnx: graph input code has shape ['batch', 8] (axis 1 is 8), manifest expects [batch, 16]"),
    ("float64", "encoder.onnx", lambda: _encoder(["batch", 1, 8, 8], 64, TensorProto.DOUBLE),
     "encoder.onnx: graph output code is float64; the runtime needs float32 there for a model-unit encoder"),
])
def test_swapped_graph_with_other_io_is_refused_at_load(bundle, case, file, model, problem):
    _swap(bundle, file, model())
    with pytest.raises(BundleError) as err:
        rt.load(bundle)
    assert problem in str(err.value)
    assert _cli_error(["info", bundle]).startswith(f"Error: bundle {bundle} failed verification")
    r = CliRunner().invoke(cli, ["info", str(bundle)])
    assert f"  - {problem}" in r.output and "BAD I/O" in r.output
    error = _cli_error(["encode", bundle, bundle / "samples.npy", "-o", bundle / "codes.npy"])
    assert error.startswith("Error: ") and problem in error


def _decoder_taking(codes: int) -> onnx.ModelProto:
    w = np.zeros((codes, 64), np.float32)
    nodes = [helper.make_node("MatMul", ["code", "W"], ["y"]), helper.make_node("Reshape", ["y", "s"], ["x_hat"])]
    return _graph("decoder", nodes, [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", codes])],
                  [helper.make_tensor_value_info("x_hat", TensorProto.FLOAT, ["batch", 1, 8, 8])],
                  [("W", w), ("s", np.array([-1, 1, 8, 8], np.int64))])


def test_graph_that_cannot_allocate_is_an_error_naming_it(bundle):
    """A decoder declaring a 2^72-element intermediate: onnxruntime's Fail becomes a BundleError."""
    nodes = [helper.make_node("ConstantOfShape", ["big"], ["z"]),
             helper.make_node("ReduceSum", ["z"], ["s"], keepdims=0),
             helper.make_node("MatMul", ["code", "W"], ["y"]), helper.make_node("Add", ["y", "s"], ["y2"]),
             helper.make_node("Reshape", ["y2", "shape"], ["x_hat"])]
    model = _graph("decoder", nodes, [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", CODE])],
                   [helper.make_tensor_value_info("x_hat", TensorProto.FLOAT, ["batch", 1, 8, 8])],
                   [("big", np.array([2**31, 2**31, 2**10], np.int64)), ("W", np.zeros((CODE, 64), np.float32)),
                    ("shape", np.array([-1, 1, 8, 8], np.int64))])
    _swap(bundle, "decoder.onnx", model)
    m = rt.load(bundle)
    with pytest.raises(BundleError, match="onnxruntime failed running decoder.onnx on a batch of 3: "):
        m.reconstruct(digits_uint8()[:3])
    error = _cli_error(["reconstruct", bundle, bundle / "samples.npy"])
    assert error.startswith("Error: onnxruntime failed running decoder.onnx on a batch of 64: ")


# ---- external data ---------------------------------------------------------------------------------
def _externalize(folder: Path, file: str = "encoder.onnx", list_it: bool = True) -> Path:
    """Save a graph with its weights in ``<file>.data`` beside it; listed in the manifest or not."""
    from onnx.external_data_helper import convert_model_to_external_data

    model = onnx.load(str(folder / file))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location=file + ".data",
                                   size_threshold=0)
    onnx.save(model, str(folder / file))
    data = _manifest(folder)
    for g in data["graphs"]:
        if g["file"] == file:
            fresh = rt.graph_entry(folder / file, g["role"], g["precision"], g["opset"], g["inputs"], g["outputs"])
            g.update(size=fresh.size, sha256=fresh.sha256)
            if list_it:
                g["external_data"] = fresh.external_data
    _write_manifest(folder, data)
    return folder / (file + ".data")


def test_external_weights_are_pinned_by_the_manifest(bundle):
    x = digits_uint8()[:20]
    before = rt.load(bundle).encode(x)
    weights = _externalize(bundle)
    entry = next(g for g in rt.read_manifest(bundle).graphs if g.file == "encoder.onnx")
    assert entry.external_data == [{"file": "encoder.onnx.data", "size": weights.stat().st_size,
                                    "sha256": file_sha256(weights)}]
    np.testing.assert_array_equal(rt.load(bundle).encode(x), before)  # pinned and intact: loads
    assert rt.verify_bundle(bundle) == []
    raw = bytearray(weights.read_bytes())
    w = np.frombuffer(raw, np.float32).copy() * np.float32(1.5)  # every weight scaled by 1.5, same size
    weights.write_bytes(w.tobytes())
    with pytest.raises(BundleError, match=r"encoder.onnx.data: SHA-256 mismatch .* \(external data of encoder.onnx\)"):
        rt.load(bundle)
    r = CliRunner().invoke(cli, ["info", str(bundle)])
    assert r.exit_code == 1 and "all files OK" not in r.output and "1 problem(s)" in r.output
    assert "encoder.onnx +1 data file(s)" in r.output


def test_external_weights_not_listed_are_refused(bundle):
    _externalize(bundle, list_it=False)
    message = ("encoder.onnx: refers to external data 'encoder.onnx.data', which the manifest does not list, so "
               "no hash covers it; re-export the bundle with edgeae export (it pins every file) or embed the "
               "weights in the graph")
    with pytest.raises(BundleError, match=_escape(message)):
        rt.load(bundle)
    assert f"  - {message}" in CliRunner().invoke(cli, ["info", str(bundle)]).output
    assert _cli_error(["info", bundle]) == f"Error: bundle {bundle} failed verification (1 problem(s) listed above)"


# ---- int8 weights --------------------------------------------------------------------------------
def _s8_bundle(folder: Path) -> Path:
    """The bundle with its int8-dynamic graphs quantized again with s8 (QInt8) weights."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer's chatter; restored so later tests see their logs
    try:
        for role in ("encoder", "decoder"):
            dst = folder / f"{role}.int8-dynamic.onnx"
            quantize_dynamic(str(folder / f"{role}.onnx"), str(dst), weight_type=QuantType.QInt8,
                             per_channel=False)
            _swap(folder, dst.name, onnx.load(str(dst)))
    finally:
        root.setLevel(level)
    return folder


def test_s8_weights_are_detected_and_run_exact(bundle):
    from edgeae.runtime.session import EXACT_INT8

    u8 = rt.load(bundle, precision="int8-dynamic")
    assert u8.info["weights"] == {"encoder": "u8", "decoder": "u8"}
    m = rt.load(_s8_bundle(bundle), precision="int8-dynamic")
    assert m.info["weights"] == {"encoder": "s8", "decoder": "s8"}
    for g in (m._encoder, m._decoder):
        assert g.session.get_session_options().get_session_config_entry(EXACT_INT8[0]) == "1"
    assert rt.load(bundle).info["weights"] == {"encoder": "float", "decoder": "float"}
    out = CliRunner().invoke(cli, ["info", str(bundle)]).output
    assert "int8-dynamic  encoder.int8-dynamic.onnx" in out and " s8 " in out
    assert f"run with exact u8 x s8 products (session option {EXACT_INT8[0]}=1" in out


# ---- values out of range -------------------------------------------------------------------------
def test_codes_out_of_range_are_refused(bundle):
    m = rt.load(bundle)
    codes = m.encode(digits_uint8()[:5])
    codes[3] = 3e38
    message = ("code holds values up to 3e+38, out of the range any encoder writes (their sum of squares overflows "
               "float32) (first in sample 3); pass codes written by encode()")
    with pytest.raises(InputError, match=_escape(message)):
        m.decode(codes)
    with pytest.raises(InputError, match=r"first in sample 4099\)"):  # its index in the whole array
        m.decode(np.concatenate([np.repeat(codes[:1], 4096, axis=0), codes]), batch_size=1000)
    np.save(bundle / "codes.npy", codes)
    assert _cli_error(["decode", bundle, bundle / "codes.npy", "-o", bundle / "x.npy"]) == (
        f"Error: {bundle / 'codes.npy'}" + message[len("code"):])


def test_graph_outputs_with_nan_are_errors(bundle):
    """A decoder (or encoder) computing NaN from finite input: refused, naming the sample."""
    nodes = [helper.make_node("Sqrt", ["code"], ["r"]), helper.make_node("MatMul", ["r", "W"], ["y"]),
             helper.make_node("Reshape", ["y", "s"], ["x_hat"])]
    _swap(bundle, "decoder.onnx", _graph(
        "decoder", nodes, [helper.make_tensor_value_info("code", TensorProto.FLOAT, ["batch", CODE])],
        [helper.make_tensor_value_info("x_hat", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [("W", np.ones((CODE, 64), np.float32)), ("s", np.array([-1, 1, 8, 8], np.int64))]))
    enc = _encoder(["batch", 1, 8, 8], 64)
    enc.graph.node[-1].op_type = "Log"  # code = log(x @ W): NaN where x @ W < 0
    _swap(bundle, "encoder.onnx", enc)
    m = rt.load(bundle)
    x = digits_uint8()[:50]
    with pytest.raises(InputError, match=r"the encoder's output contains NaN or inf \(first in sample \d+\); the "
                                         r"encoder graph computed it from finite input"):
        m.encode(x)
    with pytest.raises(InputError, match=r"the encoder's output contains NaN or inf"):
        m.encode(x, batch_size=7)  # the general path as well as the fast one
    codes = np.abs(np.random.default_rng(0).normal(size=(4, CODE))).astype(np.float32)
    codes[2, 0] = -1.0
    with pytest.raises(InputError, match=r"the decoder's output contains NaN or inf \(first in sample 2\); the "
                                         r"decoder graph computed it from codes up to 2.\d+: codes far outside"):
        m.decode(codes)


def test_nan_deep_in_a_file_is_named_by_its_index_in_the_file(bundle, tmp_path):
    x = np.tile(digits_uint8().astype(np.float32) / 255, (12, 1, 1, 1))[:20_000]  # more than one block
    x[19_000, 0, 2, 2] = np.nan
    np.save(tmp_path / "x.npy", x)
    expected = f"Error: {tmp_path / 'x.npy'} contains NaN or inf (first in sample 19000); expected finite values"
    assert _cli_error(["encode", bundle, tmp_path / "x.npy", "-o", tmp_path / "c.npy"]) == expected
    assert _cli_error(["compress", bundle, tmp_path / "x.npy", "-o", tmp_path / "c.eae"]) == expected
    assert not (tmp_path / "c.npy").exists() and not (tmp_path / "c.eae").exists()



_EMULATED = """
import sys, numpy as np, onnxruntime as ort, edgeae.runtime as rt
folder, x = sys.argv[1], np.load(sys.argv[2])
m = rt.load(folder, precision="int8-dynamic")
plain = ort.InferenceSession(folder + "/encoder.int8-dynamic.onnx", providers=["CPUExecutionProvider"])
np.savez(sys.argv[3], codes=m.encode(x), x_hat=m.reconstruct(x), plain=plain.run(None, {"x": x / np.float32(255)})[0])
"""


@pytest.mark.slow
def test_s8_weights_compute_the_same_without_vnni(bundle, tmp_path):
    """On an emulated Haswell (AVX2, no VNNI) the runtime's s8 sessions give this CPU's exact results.

    The control: the same graph in a plain session saturates there (u8 x s8 pairs summed in int16).
    """
    import os
    import subprocess
    import sys

    from edgeae.export.cpucheck import EMULATED_CPUS, qemu

    if qemu() is None:
        pytest.skip("qemu-x86_64-static is not installed (Debian: apt-get install qemu-user-static)")
    _s8_bundle(bundle)
    np.save(tmp_path / "x.npy", digits_uint8())
    root = str(Path(__file__).resolve().parents[1])
    results = {}
    for cpu, prefix in (("native", []), ("haswell", [qemu(), "-cpu", EMULATED_CPUS["haswell"]])):
        out = tmp_path / f"{cpu}.npz"
        subprocess.run([*prefix, sys.executable, "-c", _EMULATED, str(bundle), str(tmp_path / "x.npy"), str(out)],
                       check=True, timeout=600, capture_output=True, env={**os.environ, "PYTHONPATH": root})
        results[cpu] = np.load(out)
    native, haswell = results["native"], results["haswell"]
    np.testing.assert_array_equal(haswell["codes"], native["codes"])
    np.testing.assert_array_equal(haswell["x_hat"], native["x_hat"])
    assert np.abs(haswell["plain"] - haswell["codes"]).max() > 0.05  # saturated without the session option


@pytest.mark.parametrize("lo", [10**400, float("nan"), 1e308, "0"])
def test_codec_ranges_out_of_float32_are_refused(bundle, lo):
    from edgeae.runtime.compress import compress

    data = _manifest(bundle)
    data["codec"][0]["lo"][0] = lo
    _write_manifest(bundle, json.dumps(data))
    with pytest.raises(BundleError, match=r"codec range of dim 0 is \[.{1,40}, .*\]; expected lo <= hi within "
                                          r"\+-1e\+30 \(float32 codes\)"):
        compress(rt.load(bundle), digits_uint8()[:4])
    assert _cli_error(["compress", bundle, bundle / "samples.npy", "-o", bundle / "s.eae"]).startswith(
        "Error: codec range of dim 0 is [")


def test_raw_io_flag_that_does_not_fit_the_graph_is_refused(bundle):
    """A float graph marked raw I/O would be fed pixels 0..255 as model units: refused at load."""
    data = _manifest(bundle)
    for g in data["graphs"]:
        if g["file"] == "encoder.onnx":
            g["raw_io"] = True
    _write_manifest(bundle, data)
    with pytest.raises(BundleError, match="encoder.onnx: graph input x is float32; the runtime needs uint8 there "
                                          "for a raw-I/O encoder"):
        rt.load(bundle)
