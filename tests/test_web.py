"""`edgeae web` without a browser: the site it writes, its refusals, and the JS coder under Node."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from edgeae.cli import cli
from edgeae.errors import BundleError, ConfigError
from edgeae.runtime.bundle import file_sha256, read_manifest, write_manifest
from edgeae.runtime.codec import LatentCodec
from edgeae.runtime.stream import append_codes, compress_codes
from edgeae.web import (
    MAX_IR_VERSION,
    MAX_OPSET,
    ORT_WEB_CDN,
    ORT_WEB_FILES,
    build_site,
    onnx_header,
)
from tests._bundles import digits_features, digits_uint8, make_bundle

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "edgeae" / "web" / "static"
GOLDEN = Path(__file__).parent / "golden"
NODE = shutil.which("node")


def add_codecs(folder: Path, bits=(6, 4, 8)) -> None:
    """Fit codec tables on the bundle's own codes of the digits (as export does)."""
    import edgeae.runtime as rt

    manifest = read_manifest(folder)
    data = digits_uint8() if manifest.normalization["raw_dtype"] == "uint8" else digits_features()
    codes = rt.load(folder).encode(data[:1200])
    manifest.codec = [LatentCodec.fit(codes, b).to_dict() for b in bits]
    write_manifest(folder, manifest)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = make_bundle(tmp_path_factory.mktemp("web") / "b", "image")[0]
    add_codecs(folder)
    return folder


@pytest.fixture()
def fake_dist(tmp_path):
    """A folder shaped like onnxruntime-web's dist/ (the generator only copies these files)."""
    dist = tmp_path / "onnxruntime-web" / "dist"
    dist.mkdir(parents=True)
    for name in ORT_WEB_FILES:
        (dist / name).write_bytes(b"// " + name.encode())
    (dist.parent / "package.json").write_text('{"version": "1.30.0"}')
    return dist


def test_site_files_and_content(bundle, tmp_path, fake_dist):
    r = build_site(bundle, tmp_path / "site", "fp32,int8-dynamic", ort_web=fake_dist, samples=5)
    site = json.loads((tmp_path / "site" / "site.json").read_text())
    assert {"index.html", "page.mjs", "inputs.mjs", "runner.mjs", "coder.mjs", "style.css", "site.json", "encoder.onnx", "decoder.onnx",
            "encoder.int8-dynamic.onnx", "decoder.int8-dynamic.onnx"} <= set(r.files)
    assert all(f"ort/{name}" in r.files for name in ORT_WEB_FILES)
    assert r.page_bytes == r.total_bytes - sum(r.files[f"ort/{n}"] for n in ORT_WEB_FILES)
    assert site["precisions"] == ["fp32", "int8-dynamic"] and site["ort"] == {
        "source": "local", "url": "ort/", "version": "1.30.0"}
    assert site["sample_shape"] == [1, 8, 8] and site["is_image"] and not site["variational"]
    assert site["samples"]["shape"] == [5, 1, 8, 8]
    x = np.load(bundle / "samples.npy")[:5]
    assert site["samples"]["data"] == x.reshape(-1).tolist()
    # model ids and reference bytes are Python's own
    import edgeae.runtime as rt
    from edgeae.runtime.compress import codecs_of

    model = rt.load(bundle)
    assert [c["model_id"] for c in site["codecs"]] == [m.hex() for _, m in codecs_of(model.manifest)]
    codes = model.encode(x)
    np.testing.assert_array_equal(np.array(site["reference"]["fp32"]["codes"], np.float32), codes)
    codec, mid = codecs_of(model.manifest)[1]
    assert base64.b64decode(site["reference"]["fp32"]["eae"]["4"][2]) == compress_codes(codec, mid, codes[2:3])
    assert site["reference"]["fp32"]["code_tol"] == 1e-4
    int8 = site["reference"]["int8-dynamic"]
    assert int8["code_tol"] == pytest.approx(0.01 * np.ptp(np.array(int8["codes"])))  # 1% of the code range
    assert all(len(site["graphs"][p][r]["sha256"]) == 64 for p in site["precisions"] for r in ("encoder", "decoder"))
    assert not r.notes


def test_cdn_default_is_said(bundle, tmp_path):
    r = build_site(bundle, tmp_path / "site")
    assert r.ort_source == "cdn" and r.ort_url == ORT_WEB_CDN and "ort/" not in "".join(r.files)
    assert any("CDN" in n or ORT_WEB_CDN in n for n in r.notes)
    assert json.loads((tmp_path / "site" / "site.json").read_text())["ort"]["url"] == ORT_WEB_CDN


def test_refusals(bundle, tmp_path, fake_dist):
    with pytest.raises(BundleError, match="precision 'fp16' is not in bundle .*it has: fp32, int8-dynamic"):
        build_site(bundle, tmp_path / "a", "fp16")
    with pytest.raises(ConfigError, match="unknown precision 'int4'"):
        build_site(bundle, tmp_path / "a", "int4")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ConfigError, match="is not empty; choose another -o or pass --overwrite"):
        build_site(bundle, tmp_path / "full")
    with pytest.raises(ConfigError, match=r"is not an edgeae site \(no site.json\); --overwrite only replaces sites"):
        build_site(bundle, tmp_path / "full", overwrite=True)
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["x"]
    (fake_dist / ORT_WEB_FILES[2]).unlink()
    with pytest.raises(ConfigError, match="lacks ort-wasm-simd-threaded.wasm: pass the dist/ folder"):
        build_site(bundle, tmp_path / "b", ort_web=fake_dist)


def _restamp(folder: Path, file: str, ir: int | None = None, opset: int | None = None) -> None:
    """Rewrite a graph's IR version / opset and re-pin it in the manifest."""
    path = folder / file
    m = onnx.load(path)
    if ir is not None:
        m.ir_version = ir
    if opset is not None:
        m.opset_import[0].version = opset
    onnx.save(m, path)
    manifest = read_manifest(folder)
    for g in manifest.graphs:
        if g.file == file:
            g.size, g.sha256 = path.stat().st_size, file_sha256(path)
    write_manifest(folder, manifest)


def test_graph_too_new_is_refused_with_the_fix(bundle, tmp_path):
    ir, opsets = onnx_header(bundle / "encoder.onnx")
    m = onnx.load(bundle / "encoder.onnx")
    assert ir == m.ir_version and opsets == {o.domain: o.version for o in m.opset_import}
    new = shutil.copytree(bundle, tmp_path / "new")
    _restamp(new, "encoder.onnx", ir=MAX_IR_VERSION + 1)
    with pytest.raises(BundleError, match=f"IR version {MAX_IR_VERSION + 1}; onnxruntime-web .* loads IR <= {MAX_IR_VERSION}"):
        build_site(new, tmp_path / "s1")
    _restamp(new, "encoder.onnx", ir=ir, opset=MAX_OPSET + 1)
    with pytest.raises(BundleError, match=f"opset {MAX_OPSET + 1}; .* re-export with --opset {MAX_OPSET}"):
        build_site(new, tmp_path / "s2")
    _restamp(new, "encoder.onnx", opset=opsets[""])
    (new / "decoder.onnx").write_bytes(b"\xff" * 10)
    with pytest.raises(BundleError, match="SHA-256 mismatch|size"):
        build_site(new, tmp_path / "s3")


def test_cli(bundle, tmp_path, fake_dist):
    r = CliRunner().invoke(cli, ["web", str(bundle), "-o", str(tmp_path / "s"), "--precision", "fp32,int8-dynamic",
                                 "--ort-web", str(fake_dist), "--samples", "3"])
    assert r.exit_code == 0, r.output
    assert "precisions fp32, int8-dynamic; codec bits 6, 4, 8; 3 held-out samples; onnxruntime-web 1.30.0 copied" in r.output
    assert "python -m http.server -d" in r.output
    r = CliRunner().invoke(cli, ["web", str(bundle), "-o", str(tmp_path / "t")])
    assert r.exit_code == 0 and f"loads onnxruntime-web 1.30.0 from {ORT_WEB_CDN}" in r.output
    r = CliRunner().invoke(cli, ["web", str(bundle), "-o", str(tmp_path / "u"), "--precision", "fp16"])
    assert r.exit_code == 1 and r.output.startswith("Error: precision 'fp16' is not in bundle")
    assert "Traceback" not in r.output


@pytest.mark.parametrize("python", ["blocked", "runtime-venv"])
def test_runs_without_torch_or_onnx(bundle, tmp_path, python):
    """The generator is device-side: torch and onnx blocked, or a base-install interpreter."""
    import os
    import sys

    exe = sys.executable
    block = "import sys; [sys.modules.__setitem__(m, None) for m in ('torch', 'onnx', 'onnxscript')]; "
    if python == "runtime-venv":
        exe = os.environ.get("EDGEAE_RUNTIME_PYTHON")
        if not exe:
            pytest.skip("EDGEAE_RUNTIME_PYTHON not set (make test sets it to a base-install venv)")
        block = "import sys; "
    code = block + f"from edgeae.cli import main; sys.argv = ['edgeae', 'web', {str(bundle)!r}, '-o', 'site']; main()"
    r = subprocess.run([exe, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for name in ("index.html", "page.mjs", "inputs.mjs", "runner.mjs", "coder.mjs", "style.css"):
        assert (tmp_path / "site" / name).read_bytes() == (STATIC / name).read_bytes()
    assert json.loads((tmp_path / "site" / "site.json").read_text())["reference"]["fp32"]["codes"]


# ---------------------------------------------------------------- the JS coder under Node
def _modules(folder: Path, kind: str = "module") -> Path:
    """The page's DOM-free modules in ``folder`` beside a package.json of "type": ``kind``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("coder.mjs", "runner.mjs"):
        shutil.copyfile(STATIC / name, folder / name)
    (folder / "package.json").write_text(json.dumps({"type": kind}))
    return folder


def _node(tmp_path: Path, cases: list[dict]) -> list[str]:
    """Run coder.mjs's compressCodes on each case in Node; returns base64 streams."""
    _modules(tmp_path, "commonjs")
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    script = tmp_path / "run.mjs"
    script.write_text(
        "import fs from 'fs'; import * as e from './coder.mjs';\n"
        "const cases = JSON.parse(fs.readFileSync(process.argv[2]));\n"
        "const out = cases.map((c) => Buffer.from(e.compressCodes(c.codec, Float64Array.from(c.codes), c.n)).toString('base64'));\n"
        "console.log(JSON.stringify(out));\n")
    res = subprocess.run([NODE, str(script), str(tmp_path / "cases.json")], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.skipif(NODE is None, reason="node not installed (apt-get install nodejs)")
@pytest.mark.parametrize("kind", ["commonjs", "module"])
def test_coder_imports_in_node_under_any_package_type(tmp_path, kind):
    """The .mjs names make the modules ES modules whatever package.json says; CommonJS can import() them."""
    folder = _modules(tmp_path, kind)
    check = ("const ok = typeof c.compressCodes === 'function' && typeof r.Runner === 'function' "
             f"&& c.crc32(new TextEncoder().encode('edgeae')) === {zlib.crc32(b'edgeae')}; console.log(ok ? 'ok' : 'bad');")
    (folder / "esm.mjs").write_text(f"import * as c from './coder.mjs'; import * as r from './runner.mjs'; {check}\n")
    cjs = "cjs.js" if kind == "commonjs" else "cjs.cjs"
    (folder / cjs).write_text("Promise.all([import('./coder.mjs'), import('./runner.mjs')]).then(([c, r]) => { "
                              f"{check} }});\n")
    for script in ("esm.mjs", cjs):
        res = subprocess.run([NODE, script], capture_output=True, text=True, timeout=60, cwd=folder)
        assert res.returncode == 0 and res.stdout.strip() == "ok", (script, res.stderr)


@pytest.mark.skipif(NODE is None, reason="node not installed (apt-get install nodejs)")
def test_js_sha256_equals_hashlib(tmp_path):
    """The plain-JS SHA-256 (pages served over plain http have no Web Crypto) and Web Crypto agree with hashlib."""
    import hashlib

    rs = np.random.default_rng(3)
    sizes = [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_003]
    blobs = [rs.integers(0, 256, n, dtype=np.uint8).tobytes() for n in sizes]
    folder = _modules(tmp_path)
    (folder / "blobs.json").write_text(json.dumps([base64.b64encode(b).decode() for b in blobs]))
    (folder / "run.mjs").write_text(
        "import fs from 'fs'; import { sha256, sha256Hex } from './coder.mjs';\n"
        "const hex = (b) => Buffer.from(b).toString('hex');\n"
        "const blobs = JSON.parse(fs.readFileSync('blobs.json')).map((s) => new Uint8Array(Buffer.from(s, 'base64')));\n"
        "const out = []; for (const b of blobs) out.push([hex(sha256(b)), await sha256Hex(b)]);\n"
        "console.log(JSON.stringify(out));\n")
    res = subprocess.run([NODE, "run.mjs"], capture_output=True, text=True, timeout=60, cwd=folder)
    assert res.returncode == 0, res.stderr
    for blob, (plain, subtle) in zip(blobs, json.loads(res.stdout), strict=True):
        assert plain == subtle == hashlib.sha256(blob).hexdigest(), len(blob)


@pytest.mark.skipif(NODE is None, reason="node not installed (apt-get install nodejs); the browser test covers the coder too")
def test_js_coder_bytes_equal_python(tmp_path):
    rs = np.random.default_rng(7)
    cases, want = [], []
    for bits in range(2, 9):
        for _ in range(4):
            d, n = int(rs.integers(1, 40)), int(rs.integers(1, 60))
            train = rs.standard_normal((400, d)) * rs.random(d) * 3
            codec = LatentCodec.fit(train, bits, precision=int(rs.choice([12, 16, 20])))
            codes = (rs.standard_normal((n, d)) * 2).astype(np.float32)  # some clip at the range ends
            mid = rs.bytes(8)
            cases.append({"codec": {**codec.to_dict(), "model_id": mid.hex()},
                          "codes": codes.astype(float).ravel().tolist(), "n": n})
            want.append(compress_codes(codec, mid, codes))
    got = [base64.b64decode(s) for s in _node(tmp_path, cases)]
    bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    assert not bad, f"JS bytes differ from Python's in cases {bad}"


@pytest.mark.skipif(NODE is None, reason="node not installed (apt-get install nodejs)")
def test_js_coder_reproduces_golden_stream(tmp_path):
    """The golden file: 30 samples, then 10 appended (an appended chunk = a stream's chunk)."""
    record = json.loads((GOLDEN / "codec_v1.json").read_text())
    codec = LatentCodec.from_dict(record)
    golden = (GOLDEN / "stream_v1.eae").read_bytes()
    mid = golden[3:11]
    codes = np.load(GOLDEN / "codes_v1.npy")
    rec = {**codec.to_dict(), "model_id": mid.hex()}
    parts = [{"codec": rec, "codes": np.asarray(c, float).ravel().tolist(), "n": len(c)} for c in (codes[:30], codes[30:])]
    first, second = (base64.b64decode(s) for s in _node(tmp_path, parts))
    head = 12  # magic 2 + version 1 + model id 8 + varint code size 1
    assert first + second[head:] == golden
    assert second[head:] == append_codes(codec, mid, first, codes[30:])


@pytest.mark.skipif(NODE is None, reason="node not installed (apt-get install nodejs)")
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
def test_drawing_becomes_a_sample_like_the_training_data(tmp_path, shape):
    """A stroke drawn off-centre on the pad: cropped, scaled, centred (MNIST: 20x20 box, centre of mass)."""
    _modules(tmp_path)
    ink = np.zeros((280, 280))
    ink[20:140, 30:60] = 1.0  # a tall bar in the top-left corner
    (tmp_path / "ink.json").write_text(json.dumps(ink.ravel().tolist()))
    (tmp_path / "run.mjs").write_text(
        "import fs from 'fs'; import * as e from './runner.mjs';\n"
        "const ink = Float32Array.from(JSON.parse(fs.readFileSync('ink.json')));\n"
        f"console.log(JSON.stringify(Array.from(e.inkToSample(ink, 280, 280, {list(shape)}, true))));\n")
    res = subprocess.run([NODE, "run.mjs"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    x = np.array(json.loads(res.stdout)).reshape(shape[1:])
    assert x.max() <= 255 and x.min() >= 0 and x.dtype.kind in "if"
    rows, cols = np.nonzero(x > 0)
    height = rows.max() - rows.min() + 1
    if shape[1] == 8:
        assert height == 8  # digits fill the frame on the long side
    else:
        assert height == 20  # MNIST: the long side fits a 20x20 box
        cy, cx = (np.indices(x.shape) * x).reshape(2, -1).sum(1) / x.sum()
        assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5  # centre of mass in the middle
    assert abs(cols.mean() - (shape[2] - 1) / 2) <= 1.0  # the corner stroke ends up centred
