"""The page in a real headless Chromium against the Python runtime.

onnxruntime-web (WASM, one thread) runs the exported graphs; the page's JS API
(``window.edgeae``) is fed the bundle's held-out samples and its codes, reconstructions and
``.eae`` bytes are compared with edgeae's Python runtime. Skips with the reason when Chromium,
Playwright or onnxruntime-web's dist/ is missing (``make web-tools`` installs them).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import edgeae.runtime as rt
from edgeae.runtime.compress import codecs_of, decompress
from edgeae.runtime.stream import compress_codes
from edgeae.web import MAX_IR_VERSION, MAX_OPSET, build_site
from edgeae.web.headless import missing, serve
from tests._bundles import make_bundle
from tests._web_pages import open_page
from tests.test_web import add_codecs

ROOT = Path(__file__).resolve().parents[1]
ORT_WEB = Path(os.environ.get("EDGEAE_ORT_WEB", ROOT / "node_modules" / "onnxruntime-web" / "dist"))
_why = missing() or (None if (ORT_WEB / "ort.wasm.min.mjs").is_file() else
                     f"onnxruntime-web not found at {ORT_WEB} (npm ci at the repo root, or set EDGEAE_ORT_WEB)")
# slow: a browser start, WASM compile and a 1-epoch export (~30 s; `make test` runs them, test-fast not)
pytestmark = [pytest.mark.skipif(_why is not None, reason=_why or ""), pytest.mark.slow]

FP32_TOL = 1e-4  # WASM vs native kernels: float32 sums in another order (measured: ~1e-6)
# int8-dynamic: both runtimes quantize activations to uint8 at run time, but with different
# kernels (ORT's native fused DynamicQuantizeMatMul vs the WASM build's separate steps), so
# codes differ by a few quantization steps of the activations (measured: <= 0.25% of the code
# range on the digits and MNIST MLPs; reconstructions <= 0.03 on the [0, 1] scale). See docs/web.md.
INT8_CODE_TOL = 0.01  # max |code difference| / code range over the samples
INT8_XHAT_TOL = 0.05  # max |reconstruction difference|, model units (images: [0, 1])
SAMPLES = 12


@pytest.fixture(scope="module")
def sites(mlp_run, tmp_path_factory):
    """One folder with three sites: an exported MLP (fp32 + int8), a VAE and a tabular bundle."""
    from edgeae.export import export

    base = tmp_path_factory.mktemp("websites")
    mlp = base / "bundle-mlp"
    export(mlp_run, mlp, precisions="fp32,int8-dynamic,fp16", latency_repeats=3)
    vae = make_bundle(base / "bundle-vae", "vae", precisions=("fp32",))[0]
    table = make_bundle(base / "bundle-table", "vector", precisions=("fp32",))[0]
    rawio = make_bundle(base / "bundle-rawio", "image", raw_io=True, precisions=("fp32",))[0]
    for b in (vae, table, rawio):
        add_codecs(b, bits=(6,))
    root = base / "www"
    build_site(mlp, root / "mlp", "fp32,int8-dynamic", ort_web=ORT_WEB, samples=SAMPLES)
    build_site(vae, root / "vae", ort_web=ORT_WEB, samples=4)
    build_site(table, root / "table", ort_web=ORT_WEB, samples=4)
    build_site(rawio, root / "rawio", ort_web=ORT_WEB, samples=4)
    build_site(mlp, root / "fp16", "fp16", ort_web=ORT_WEB, samples=SAMPLES)
    return {"root": root, "mlp": mlp, "vae": vae, "table": table, "rawio": rawio}


@pytest.fixture(scope="module")
def url(sites):
    with serve(sites["root"]) as base:
        yield base


def _open(chromium, url, name, width=360):
    # fp32 where offered: no timing, no switch (test_web_choose.py)
    return open_page(chromium, f"{url}{name}/?precision=fp32", width, device_scale_factor=2, has_touch=True)


@pytest.fixture(scope="module")
def mlp_page(chromium, url):
    page = _open(chromium, url, "mlp")
    yield page
    page.close()


@pytest.mark.parametrize("precision", ["fp32", "int8-dynamic"])
def test_codes_and_reconstructions_match_python(mlp_page, sites, precision):
    model = rt.load(sites["mlp"], precision, providers="cpu")
    x = np.load(sites["mlp"] / "samples.npy")[:SAMPLES]
    js = np.array(mlp_page.evaluate(
        "async ([n, p]) => { const out = []; for (let k = 0; k < n; k++) out.push(await edgeae.encode(edgeae.sample(k), p)); return out; }",
        [SAMPLES, precision]), np.float32)
    py = model.encode(x)
    err = np.abs(js - py).max()
    if precision == "fp32":
        assert err <= FP32_TOL, err
    else:
        assert err <= INT8_CODE_TOL * (py.max() - py.min()), (err, py.max() - py.min())
    # the decoder, fed the same codes on both sides
    js_hat = np.array(mlp_page.evaluate(
        "async ([codes, p]) => { const out = []; for (const c of codes) out.push((await edgeae.decode(c, p)).model); return out; }",
        [js.astype(float).tolist(), precision]), np.float32)
    py_hat = model.decode(js).reshape(len(js), -1)
    tol = FP32_TOL if precision == "fp32" else INT8_XHAT_TOL
    assert np.abs(js_hat - py_hat).max() <= tol


def test_eae_bytes_equal_python_at_every_bit_depth(mlp_page, sites):
    model = rt.load(sites["mlp"], providers="cpu")
    codecs = codecs_of(model.manifest)
    assert sorted(c.bits for c, _ in codecs) == [4, 6, 8]
    codes = np.array(mlp_page.evaluate(
        "async (n) => { const out = []; for (let k = 0; k < n; k++) out.push(await edgeae.encode(edgeae.sample(k))); return out; }",
        SAMPLES), np.float32)
    for codec, mid in codecs:
        js = mlp_page.evaluate("([codes, bits]) => codes.map((c) => edgeae.compress(c, bits))",
                               [codes.astype(float).tolist(), codec.bits])
        for k, stream in enumerate(js):
            assert bytes(stream) == compress_codes(codec, mid, codes[k:k + 1]), (codec.bits, k)
        back = decompress(model, bytes(js[0]))  # what `edgeae decompress` reads
        np.testing.assert_array_equal(back, model.decode(codec.dequantize(codec.quantize(codes[:1])), raw=True))
    check = mlp_page.evaluate("edgeae.selfCheck('fp32')")
    assert check["eae_equal"] == check["eae_total"] == 3 * SAMPLES and check["max_code_diff"] <= FP32_TOL
    assert not mlp_page.errors


def _ink(page, selector):
    """Sum of red-channel values painted on a canvas (0 = blank)."""
    return page.evaluate(f"""() => {{ const c = document.querySelector('{selector}');
        return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 === 0).reduce((a, b) => a + b, 0); }}""")


def test_draw_a_stroke_then_download(mlp_page, sites, tmp_path):
    before = mlp_page.evaluate("edgeae.last().code")
    mlp_page.click("#clear")
    box = mlp_page.locator("#pad").bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    mouse = mlp_page.mouse
    mouse.move(x0 + 0.5 * w, y0 + 0.15 * h)  # a "1": one vertical stroke with a flag
    mouse.down()
    mouse.move(x0 + 0.35 * w, y0 + 0.3 * h, steps=5)
    mouse.move(x0 + 0.5 * w, y0 + 0.15 * h, steps=5)
    mouse.move(x0 + 0.5 * w, y0 + 0.85 * h, steps=12)
    mouse.up()
    mlp_page.wait_for_function("(prev) => edgeae.last().code.join() !== prev.join()", arg=before, timeout=20_000)
    mlp_page.evaluate("edgeae.page.busy")  # the update queued by the stroke has finished
    last = mlp_page.evaluate("edgeae.last()")
    drawn = np.array(last["raw"]).reshape(8, 8)
    assert drawn[:, 3:5].sum() > drawn[:, :2].sum() + drawn[:, 6:].sum()  # a centred vertical stroke
    assert _ink(mlp_page, "#input-view") > 0 and _ink(mlp_page, "#recon-view") > 0
    sizes = {int(el.get_attribute("data-bits")): int(el.inner_text())
             for el in mlp_page.locator("#eae-table td[data-bits]").all()}
    # 18 bytes of framing + at most 16 bits per symbol (the rarest symbol of a table) x 16 dims
    assert set(sizes) == {4, 6, 8} and all(18 < n <= 18 + 32 for n in sizes.values())
    assert sizes == {int(k): v for k, v in last["bytes"].items()}
    with mlp_page.expect_download() as dl:
        mlp_page.click("#download")
    path = tmp_path / "drawn.eae"
    dl.value.save_as(path)
    model = rt.load(sites["mlp"], providers="cpu")
    x_hat = decompress(model, path.read_bytes())
    assert x_hat.shape == (1, 1, 8, 8) and path.stat().st_size == sizes[6]
    assert "PSNR" in mlp_page.inner_text("#quality") and "ms" in mlp_page.inner_text("#latency")


def test_draw_with_a_finger(mlp_page):
    """Touch events (as a phone sends them) draw too: the pad uses pointer events."""
    mlp_page.click("#clear")
    before = mlp_page.evaluate("edgeae.last().code")
    box = mlp_page.locator("#pad").bounding_box()
    cdp = mlp_page.context.new_cdp_session(mlp_page)
    pts = [(box["x"] + box["width"] * (0.2 + 0.6 * t / 10), box["y"] + box["height"] * 0.5) for t in range(11)]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": pts[0][0], "y": pts[0][1]}]})
    for x, y in pts[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()
    mlp_page.wait_for_function("(prev) => edgeae.last().code.join() !== prev.join()", arg=before, timeout=20_000)
    mlp_page.evaluate("edgeae.page.busy")
    drawn = np.array(mlp_page.evaluate("edgeae.last().raw")).reshape(8, 8)
    assert drawn[3:5].sum() > 0.8 * drawn.sum()  # a horizontal bar across the middle rows


def test_phone_width_screenshot(mlp_page, tmp_path):
    from PIL import Image

    out = Path(os.environ.get("EDGEAE_WEB_SCREENSHOT", tmp_path / "web.png"))
    mlp_page.evaluate("edgeae.show(3)")
    mlp_page.screenshot(path=str(out), full_page=True)
    with Image.open(out) as im:
        assert im.width == 2 * 360 and im.height > 2 * 600
    assert mlp_page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling


def test_vae_sliders_and_prior(chromium, url, sites):
    page = _open(chromium, url, "vae")
    assert page.locator("#sliders input[type=range]").count() == 6
    page.evaluate("edgeae.page.busy")
    before = _ink(page, "#gen-view")
    slider = page.locator("#sliders input").first
    slider.fill("3")  # fires input: decode live
    page.wait_for_function("() => true")
    page.evaluate("edgeae.page.busy")
    moved = _ink(page, "#gen-view")
    page.click("#prior")
    page.evaluate("edgeae.page.busy")
    z = np.array(page.evaluate("Array.from(edgeae.page.z)"))
    assert moved != before and z.std() > 0.3  # N(0, I) draws
    # the shown generation is the decoder's output for z
    model = rt.load(sites["vae"], providers="cpu")
    want = model.decode(z.astype(np.float32), raw=True).reshape(-1)
    got = np.array(page.evaluate("edgeae.decode(Array.from(edgeae.page.z)).then((d) => d.raw)"))
    np.testing.assert_array_equal(got, want)
    assert not page.errors
    page.close()


def test_tabular_form(chromium, url, sites):
    page = _open(chromium, url, "table")
    assert page.locator("#features input").count() == 64 and page.locator("#image-ui").is_hidden()
    page.select_option("#sample-pick", "2")
    page.fill("#features input[name=f10]", "7.5")
    page.click("button[form=features]")
    page.wait_for_function("edgeae.last().raw[10] === 7.5")
    last = page.evaluate("edgeae.last()")
    x = np.load(sites["table"] / "samples.npy")[2].copy()
    x[10] = 7.5
    model = rt.load(sites["table"], providers="cpu")
    assert np.abs(np.array(last["code"]) - model.encode(x)).max() <= FP32_TOL
    assert page.locator("#recon-table tr").count() == 65
    assert not page.errors
    page.close()


def test_raw_io_graphs(chromium, url, sites):
    """Graphs exported with --raw-io take uint8 pixels and return uint8 pixels; the page feeds them as such."""
    page = _open(chromium, url, "rawio")
    model = rt.load(sites["rawio"], providers="cpu")
    x = np.load(sites["rawio"] / "samples.npy")[:4]
    got = page.evaluate("async () => { const o = []; for (let k = 0; k < 4; k++) { const c = await edgeae.encode(edgeae.sample(k));"
                        " o.push([c, (await edgeae.decode(c)).raw]); } return o; }")
    codes = np.array([c for c, _ in got], np.float32)
    assert np.abs(codes - model.encode(x)).max() <= FP32_TOL
    np.testing.assert_array_equal(np.array([r for _, r in got]), model.decode(codes, raw=True).reshape(4, -1))
    assert page.evaluate("edgeae.selfCheck()")["eae_equal"] == 4 and not page.errors
    page.close()


def test_graph_limits_hold_in_the_browser(chromium, url, sites, tmp_path):
    """MAX_IR_VERSION / MAX_OPSET are what this onnxruntime-web loads; one more is refused."""
    import onnx
    from onnx import TensorProto, helper

    folder = sites["root"] / "limits"
    folder.mkdir(exist_ok=True)
    for name, ir, opset in (("ok", MAX_IR_VERSION, MAX_OPSET), ("ir", MAX_IR_VERSION + 1, 17),
                            ("opset", 10, MAX_OPSET + 1)):
        g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)
        onnx.save(m, folder / f"{name}.onnx")
    page = _open(chromium, url, "mlp")
    got = page.evaluate("""async () => { const ort = edgeae.runner.ort, out = {};
        for (const n of ['ok', 'ir', 'opset']) { try { await ort.InferenceSession.create(`../limits/${n}.onnx`); out[n] = 'loaded'; }
        catch (e) { out[n] = 'refused'; } } return out; }""")
    assert got == {"ok": "loaded", "ir": "refused", "opset": "refused"}
    page.close()


def test_fp16_graphs_work(chromium, url, sites):
    """`edgeae web --precision fp16`: float16 weights and compute, float32 inputs and outputs (docs/web.md)."""
    page = _open(chromium, url, "fp16")
    check = page.evaluate("edgeae.selfCheck('fp16')")
    assert check["ok"] and check["max_code_diff"] <= FP32_TOL, check
    assert page.inner_text("#selfcheck").startswith("✓ Self-check passed") and "fp16 codes within" in page.inner_text("#selfcheck")
    model = rt.load(sites["mlp"], "fp16", providers="cpu")
    x = np.load(sites["mlp"] / "samples.npy")[:4]
    got = page.evaluate("async () => { const o = []; for (let k = 0; k < 4; k++) { const c = await edgeae.encode(edgeae.sample(k));"
                        " o.push((await edgeae.decode(c)).raw); } return o; }")
    want = model.decode(model.encode(x), raw=True).reshape(4, -1).astype(int)
    assert np.abs(np.array(got) - want).max() <= 1  # reconstructions within one uint8 level
    assert not page.errors
    page.close()


def test_cli_check_runs_the_page_in_chromium(sites, tmp_path):
    """`edgeae web --check` (a subprocess: this module's browser already holds Playwright's loop)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "edgeae", "web", str(sites["mlp"]), "-o", str(tmp_path / "s"),
                        "--precision", "fp32,int8-dynamic", "--ort-web", str(ORT_WEB), "--samples", "6", "--check"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Checked in Chromium" in r.stdout and "fp32 codes within" in r.stdout
    assert ".eae bytes identical in 18 of 18 streams" in r.stdout
