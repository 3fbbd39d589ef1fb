"""runtime/bundle.py: every manifest refusal word for word, the records' round trips, the graph
a bundle runs, and each file problem (written from its mutation run, docs/testing.md). The
bundle is the small PCA one of tests/_bundles.py: no training, no sessions.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import onnx
import pytest

from edgeae.errors import BundleError
from edgeae.runtime import bundle as B
from edgeae.runtime.bundle import (
    GraphEntry,
    Manifest,
    TensorSpec,
    file_problem,
    file_sha256,
    graph_entry,
    graph_problems,
    read_manifest,
    verify_bundle,
    write_manifest,
)
from tests._bundles import make_bundle


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("mutbundle") / "b", "image")[0]


@pytest.fixture
def data(folder):
    return json.loads((folder / "manifest.json").read_text())


def _refused(fn, *args) -> str:
    with pytest.raises(BundleError) as err:
        fn(*args)
    return str(err.value)


_BAD = "malformed manifest: "


@pytest.mark.parametrize(("spec", "message"), [
    ({"name": "x"}, "tensor spec {'name': 'x'} needs name, shape, dtype"),
    (("x", [1]), "tensor spec ('x', [1]) must be {name, shape, dtype}"),
    (("", [1], "float32"), "tensor name '' must be a short string"),
    (("x" * 257, [1], "float32"), None),
    (("x", [0], "float32"), "tensor x: shape [0] must be a list of positive ints or axis names"),
    (("x", [1] * 9, "float32"), "tensor x: shape [1, 1, 1, 1, 1, 1, 1, 1, 1] must be a list of positive ints or "
                                "axis names"),
    (("x", ["b" * 65], "float32"), None),
    (("x", [""], "float32"), None),
    (("x", [1], "int7"), "tensor x: dtype 'int7' is not one of: float32, float16, uint8, int8, float64"),
])
def test_tensor_spec_refusals(spec, message):
    got = _refused(TensorSpec.coerce, spec)
    assert got.startswith(_BAD)
    if message is not None:
        assert got == _BAD + message


def test_tensor_spec_forms():
    want = TensorSpec("x", ["batch", 1], "uint8")
    assert TensorSpec.coerce(("x", ("batch", 1), "uint8")) == want
    assert TensorSpec.coerce({"name": "x", "shape": ["batch", 1], "dtype": "uint8"}) == want
    assert TensorSpec.coerce(want) is want
    assert TensorSpec.coerce(("x" * 256, [1] * 8, "float16")).shape == [1] * 8


@pytest.mark.parametrize(("change", "message"), [
    ({"role": "middle"}, "graph role 'middle' is not one of: encoder, decoder"),
    ({"precision": "int4"}, "graph precision 'int4' is not one of: fp32, fp16, int8-dynamic, int8-static"),
    ({"format": "tflite"}, "graph format 'tflite' is not one of: onnx, ort"),
    ({"file": "../x.onnx"}, "graph file '../x.onnx' must be a bare file name"),
    ({"file": 7}, "graph file 7 must be a bare file name"),
    ({"opset": 0}, "graph encoder.onnx: opset 0 must be an int from 1 to 1000"),
    ({"opset": 1001}, "graph encoder.onnx: opset 1001 must be an int from 1 to 1000"),
    ({"size": -1}, "graph encoder.onnx: size -1 must be a byte count"),
    ({"sha256": "abc"}, "graph encoder.onnx: sha256 must be 64 hex digits"),
    ({"raw_io": 1}, "graph encoder.onnx: raw_io 1 must be true or false"),
    ({"fixed_batch": 0}, "graph encoder.onnx: fixed_batch 0 must be null or a positive int"),
    ({"external_data": [{"file": "a"}]},
     "graph encoder.onnx: external_data must be a list of {'file': a bare name, 'size', 'sha256'}"),
    ({"external_data": {}},
     "graph encoder.onnx: external_data must be a list of {'file': a bare name, 'size', 'sha256'}"),
    ({"inputs": {}}, "graph encoder.onnx: inputs and outputs must be lists"),
    ({"outputs": None}, "graph encoder.onnx: inputs and outputs must be lists"),
    ({"inputs": []}, "graph encoder.onnx: needs inputs and outputs"),
    ({"outputs": []}, "graph encoder.onnx: needs inputs and outputs"),
    ({"opset": None, "size": None}, "graph entry 'encoder.onnx' lacks opset, size"),
    ({"file": None, "role": None}, "graph entry '?' lacks file, role"),
])
def test_graph_entry_refusals(data, change, message):
    g = copy.deepcopy(data["graphs"][0])
    for k, v in change.items():
        if v is None and k not in ("outputs",):
            del g[k]
        else:
            g[k] = v
    assert _refused(GraphEntry.from_dict, g) == _BAD + message


def test_graph_entry_round_trip(data):
    g = GraphEntry.from_dict({**data["graphs"][0], "unknown": 1})
    assert g.inputs[0] == TensorSpec("x", ["batch", 1, 8, 8], "float32") and g.external_data == []
    assert "external_data" not in g.to_dict() and GraphEntry.from_dict(g.to_dict()) == g
    rec = {"file": "w.bin", "size": 3, "sha256": "0" * 64}
    with_ext = GraphEntry.from_dict({**data["graphs"][0], "external_data": [rec], "fixed_batch": 4})
    assert with_ext.to_dict()["external_data"] == [rec] and with_ext.to_dict()["fixed_batch"] == 4
    assert _refused(GraphEntry.from_dict, [1]) == _BAD + "graph entry must be an object, got [1]"


@pytest.mark.parametrize(("change", "message"), [
    ({"format": "x"}, _BAD + "format 'x' is not 'edgeae-bundle': is this an edgeae bundle?"),
    ({"format_version": 2}, "bundle format_version 2 is not supported: this edgeae reads format_version 1; "
                            "upgrade edgeae (pip install -U edgeae) or re-export the bundle"),
    ({"format_version": None}, "bundle format_version None is not supported: this edgeae reads format_version 1; "
                               "upgrade edgeae (pip install -U edgeae) or re-export the bundle"),
    ({"kind": None, "graphs": None}, _BAD + "missing keys: kind, graphs"),
    ({"code_size": None}, _BAD + "missing keys: code_size"),
    ({"input": None, "normalization": None}, _BAD + "missing keys: input, normalization"),
    ({"graphs": {}}, _BAD + "graphs must be a list"),
    ({"model": []}, _BAD + "model [] has the wrong type (list)"),
    ({"validation": 1}, _BAD + "validation 1 has the wrong type (int)"),
    ({"tools": "x"}, _BAD + "tools 'x' has the wrong type (str)"),
    ({"created": 5}, _BAD + "created 5 has the wrong type (int)"),
    ({"variational": "yes"}, _BAD + "variational 'yes' has the wrong type (str)"),
    ({"codec": 3}, _BAD + "codec 3 has the wrong type (int)"),
    ({"code_size": 0}, _BAD + "code_size 0 must be an int from 1 to 16777216"),
    ({"kind": "rnn"}, _BAD + "kind 'rnn' is not one of: mlp, conv, vae, conv-vae, conv1d, conv1d-vae"),
])
def test_manifest_refusals(data, change, message):
    for k, v in change.items():
        if v is None and k not in ("format_version",):
            del data[k]
        else:
            data[k] = v
    assert _refused(Manifest.from_dict, data) == message
    assert _refused(Manifest.from_dict, []) == _BAD + "top level must be a JSON object"


def test_manifest_type_errors_become_bundle_errors(data, monkeypatch):
    def boom(*a, **k):
        raise OverflowError("too big")

    monkeypatch.setattr(B, "check_records", boom)
    assert _refused(Manifest.from_dict, data) == _BAD + "OverflowError: too big; re-export the bundle"


def test_manifest_accessors_and_round_trip(folder, data):
    m = Manifest.from_dict({**data, "ignored": True})
    assert m.sample_shape == (1, 8, 8) and m.is_image is True and m.variational is False
    assert list(m.to_dict()) == ["format", "format_version", "model", "kind", "variational", "code_size", "input",
                                 "normalization", "graphs", "samples", "validation", "codec", "tools", "created"]
    assert Manifest.from_dict(m.to_dict()) == m
    assert m.precisions() == ["fp32", "int8-dynamic"] == m.precisions("decoder")
    assert m.precisions("encoder", "ort") == [] and m.find_graph("encoder", "fp32", "ort") is None
    assert m.find_graph("decoder", "int8-dynamic").file == "decoder.int8-dynamic.onnx"
    assert m.find_graph("encoder", "int8-static") is None
    # the graph to run: a dynamic batch before a fixed one, normalized I/O before raw I/O
    enc = data["graphs"][0]
    variants = [{**enc, "file": "e-fixed-raw.onnx", "fixed_batch": 1, "raw_io": True},
                {**enc, "file": "e-fixed.onnx", "fixed_batch": 1},
                {**enc, "file": "e-raw.onnx", "raw_io": True}]
    entries = [GraphEntry.from_dict(v) for v in variants]
    m.graphs = entries + m.graphs[1:]
    assert m.find_graph("encoder", "fp32").file == "e-raw.onnx"
    m.graphs = entries[:2] + m.graphs[3:]
    assert m.find_graph("encoder", "fp32").file == "e-fixed.onnx"
    assert m.samples_file(folder) == (folder / "samples.npy", None)
    m.samples = None
    assert m.samples_file(folder) == (None, None)
    assert Manifest.from_dict({**data, "variational": None}).variational is False
    vae = Manifest.from_dict({**data, "kind": "vae", "variational": None})
    assert vae.variational is True and vae.to_dict()["variational"] is True


def test_reading_and_writing(folder, tmp_path, monkeypatch):
    m = read_manifest(folder)
    out = tmp_path / "copy"
    out.mkdir()
    path = write_manifest(out, m)
    assert path == out / "manifest.json" and path.read_text().endswith("}\n")
    assert path.read_text() == json.dumps(m.to_dict(), indent=2) + "\n" and read_manifest(out) == m
    missing = tmp_path / "none"
    assert _refused(read_manifest, missing) == (f"{missing}/manifest.json not found (the folder does not exist): "
                                                f"is {missing} a bundle written by `edgeae export`?")
    assert _refused(read_manifest, tmp_path) == (f"{tmp_path}/manifest.json not found: is {tmp_path} a bundle "
                                                 "written by `edgeae export`?")
    path.write_text("{" * 10)
    got = _refused(read_manifest, out)
    assert got.startswith(f"{path} is not valid JSON (JSONDecodeError: ") and got.endswith("); re-export the bundle")
    path.write_text(json.dumps(m.to_dict()))
    monkeypatch.setattr(B, "_MAX_MANIFEST_BYTES", path.stat().st_size - 1)
    assert _refused(read_manifest, out) == (f"{path} is {path.stat().st_size} bytes, more than a manifest can be "
                                            f"({path.stat().st_size - 1}); re-export the bundle")
    monkeypatch.setattr(B, "_MAX_MANIFEST_BYTES", path.stat().st_size)
    assert read_manifest(out) == m


def test_file_problems(tmp_path):
    f = tmp_path / "g.onnx"
    f.write_bytes(b"x" * ((1 << 20) + 5))  # more than one read block
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    assert file_sha256(f) == sha
    size = f.stat().st_size
    assert file_problem(f, size, sha) is None and file_problem(f, None, sha) is None
    assert file_problem(tmp_path / "no.onnx", 1, sha) == "no.onnx: file is missing"
    assert file_problem(f, size + 1, sha) == (f"g.onnx: size {size} bytes, manifest says {size + 1} "
                                              "(truncated or replaced file; re-export or re-copy the bundle)")
    assert file_problem(f, size, "0" * 64) == (f"g.onnx: SHA-256 mismatch (expected {'0' * 64}, got {sha}); "
                                               "the file was modified: re-export or re-copy the bundle")
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(b"y")
    inner = tmp_path / "in"
    inner.mkdir()
    os.symlink(outside, inner / "l.onnx")
    assert file_problem(inner / "l.onnx", 1, "0" * 64) == (
        f"l.onnx: a link to {outside.resolve()}, outside the bundle folder; copy the file into the bundle")


def test_external_data_is_pinned(folder, tmp_path):
    model = onnx.load(folder / "encoder.onnx")
    onnx.save(model, tmp_path / "enc.onnx", save_as_external_data=True, location="enc.bin", size_threshold=0)
    spec = [("x", ["batch", 1, 8, 8], "float32")]
    e = graph_entry(tmp_path / "enc.onnx", "encoder", "fp32", 17, spec, [("code", ["batch", 16], "float32")])
    bin_ = tmp_path / "enc.bin"
    assert e.external_data == [{"file": "enc.bin", "size": bin_.stat().st_size, "sha256": file_sha256(bin_)}]
    assert e.size == (tmp_path / "enc.onnx").stat().st_size and e.sha256 == file_sha256(tmp_path / "enc.onnx")
    assert e.raw_io is False and e.fixed_batch is None and e.opset == 17 and e.format == "onnx"
    assert graph_problems(tmp_path, e) == []
    bare = GraphEntry.from_dict({**e.to_dict(), "external_data": []})
    assert graph_problems(tmp_path, bare) == [
        "enc.onnx: refers to external data 'enc.bin', which the manifest does not list, so no hash covers it; "
        "re-export the bundle with edgeae export (it pins every file) or embed the weights in the graph"]
    bin_.write_bytes(bin_.read_bytes()[:-1] + b"\x01")
    assert graph_problems(tmp_path, e) == [
        f"enc.bin: SHA-256 mismatch (expected {e.external_data[0]['sha256']}, got {file_sha256(bin_)}); the file "
        "was modified: re-export or re-copy the bundle (external data of enc.onnx)"]
    (tmp_path / "enc.onnx").write_bytes(b"damaged")
    assert graph_problems(tmp_path, e) == [f"enc.onnx: size 7 bytes, manifest says {e.size} (truncated or "
                                           "replaced file; re-export or re-copy the bundle)"]
    ort = graph_entry(folder / "encoder.onnx", "encoder", "fp32", 17, spec, [("code", ["batch", 16], "float32")],
                      raw_io=1, fixed_batch=2, format="ort")
    assert ort.external_data == [] and ort.raw_io is True and ort.fixed_batch == 2 and ort.format == "ort"


def test_verify_bundle(folder, tmp_path):
    import shutil

    assert verify_bundle(folder) == []
    copy_ = Path(shutil.copytree(folder, tmp_path / "c"))
    (copy_ / "samples.npy").write_bytes(b"0")
    (copy_ / "decoder.onnx").unlink()
    assert verify_bundle(copy_) == ["decoder.onnx: file is missing",
                                    f"samples.npy: SHA-256 mismatch (expected {read_manifest(folder).samples['sha256']}, "
                                    f"got {file_sha256(copy_ / 'samples.npy')}); the file was modified: re-export or "
                                    "re-copy the bundle"]
    (copy_ / "manifest.json").unlink()
    assert verify_bundle(copy_) == [f"{copy_}/manifest.json not found: is {copy_} a bundle written by `edgeae export`?"]


def test_samples_file_record(folder, tmp_path):
    m = read_manifest(folder)
    sha = m.samples["sha256"]
    m.samples = {"file": "held.npy", "sha256": sha}
    assert m.samples_file(tmp_path) == (tmp_path / "held.npy", "held.npy: file is missing")
    m.samples = {"sha256": sha}  # no file named: the default name
    assert m.samples_file(folder) == (folder / "samples.npy", None)
    m.samples = {"file": "samples.npy"}  # no hash recorded: nothing matches it
    path, problem = m.samples_file(folder)
    assert problem == (f"samples.npy: SHA-256 mismatch (expected , got {sha}); the file was modified: re-export "
                       "or re-copy the bundle")


def test_created_is_utc_whatever_the_local_zone(data, monkeypatch):
    import datetime as dt
    import time

    monkeypatch.setenv("TZ", "Etc/GMT-9")  # nine hours east of UTC
    time.tzset()
    try:
        stamp = Manifest.from_dict({k: v for k, v in data.items() if k != "created"}).created
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    when = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    assert abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) < 300


def test_external_data_outside_the_folder_is_refused(folder, tmp_path):
    model = onnx.load(folder / "encoder.onnx")
    onnx.save(model, tmp_path / "enc.onnx", save_as_external_data=True, location="enc.bin", size_threshold=0)
    m = onnx.load(tmp_path / "enc.onnx", load_external_data=False)
    for t in m.graph.initializer:
        for kv in t.external_data:
            if kv.key == "location":
                kv.value = "../enc.bin"
    onnx.save(m, tmp_path / "out.onnx")
    got = _refused(graph_entry, tmp_path / "out.onnx", "encoder", "fp32", 17, [("x", ["batch", 64], "float32")],
                   [("code", ["batch", 16], "float32")])
    assert got == _BAD + "out.onnx keeps external data in '../enc.bin', outside the bundle folder"


def test_more_refusals_of_read_manifest(folder, tmp_path, monkeypatch):
    import shutil

    out = Path(shutil.copytree(folder, tmp_path / "c"))
    path = out / "manifest.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "validation": {"note": "\ud800"}}))  # JSON escapes the lone surrogate
    assert _refused(read_manifest, out) == (
        _BAD + "manifest.validation holds a string that is not valid Unicode ('\\ud800'); re-export the bundle")
    path.write_text('{"format": ')
    assert _refused(read_manifest, out) == (f"{path} is not valid JSON (JSONDecodeError: Expecting value: line 1 "
                                            "column 12 (char 11)); re-export the bundle")
    path.write_text(json.dumps(data))

    def denied(self, *a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", denied)
    assert _refused(read_manifest, out) == f"{path} cannot be read (Permission denied); check the bundle's permissions"


def test_graph_problems_from_the_graph_itself(folder, tmp_path):
    import shutil

    out = Path(shutil.copytree(folder, tmp_path / "c"))
    entry = read_manifest(out).find_graph("encoder", "fp32")
    (out / entry.file).write_bytes(b"\x0a\xff\xff\xff\xff\x0f not a graph")  # a field longer than the file
    fresh = GraphEntry.from_dict({**entry.to_dict(), "size": (out / entry.file).stat().st_size,
                                  "sha256": file_sha256(out / entry.file)})
    problems = graph_problems(out, fresh)
    assert len(problems) == 1 and problems[0].startswith("encoder.onnx") and problems[0] != "None"


def test_external_data_size_and_roles(folder, tmp_path):
    model = onnx.load(folder / "encoder.onnx")
    onnx.save(model, tmp_path / "enc.onnx", save_as_external_data=True, location="enc.bin", size_threshold=0)
    e = graph_entry(tmp_path / "enc.onnx", "encoder", "fp32", 17, [("x", ["batch", 1, 8, 8], "float32")],
                    [("code", ["batch", 16], "float32")])
    bin_ = tmp_path / "enc.bin"
    size = bin_.stat().st_size
    bin_.write_bytes(bin_.read_bytes()[:-4])
    assert graph_problems(tmp_path, e) == [f"enc.bin: size {size - 4} bytes, manifest says {size} (truncated or "
                                           "replaced file; re-export or re-copy the bundle) (external data of enc.onnx)"]
    m = read_manifest(folder)
    m.graphs = [g for g in m.graphs if not (g.role == "decoder" and g.precision == "int8-dynamic")]
    assert m.precisions("encoder") == ["fp32", "int8-dynamic"] and m.precisions("decoder") == ["fp32"]
    assert all("external_data" not in g for g in m.to_dict()["graphs"])


def test_smallest_accepted_values(data):
    assert TensorSpec.coerce(("x", ["n", "b" * 64, 1], "float32")).shape == ["n", "b" * 64, 1]
    g = GraphEntry.from_dict({**data["graphs"][0], "opset": 1, "size": 0})
    assert (g.opset, g.size) == (1, 0)
    small = copy.deepcopy(data)
    small["code_size"] = 1
    for g in small["graphs"]:
        for spec in g["inputs"] + g["outputs"]:
            if spec["name"] == "code":
                spec["shape"] = ["batch", 1]
    assert Manifest.from_dict(small).code_size == 1
