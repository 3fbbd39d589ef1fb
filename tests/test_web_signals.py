"""The page of a signal bundle (conv1d on (C, T) windows) in headless Chromium against the Python runtime.

A tiny conv1d and conv1d-vae are trained on made-up signals whose channels live on different
scales (so the per-channel normalization is exercised), exported with codec tables and built
into sites. The tests read what the page draws (one SVG per channel, a path of T points for
the input and one for the reconstruction, mapped back to values through the plot's geometry)
and what it tabulates (each window's ``.eae`` bytes and RMSE), and compare them with
``edgeae.runtime`` on the same windows. Skips with the reason when Chromium, Playwright or
onnxruntime-web's dist/ is missing (``make web-tools``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edgeae.runtime as rt
from edgeae.runtime.compress import codecs_of, compress
from edgeae.web import build_site
from edgeae.web.headless import missing, serve
from tests._web_pages import open_page

ROOT = Path(__file__).resolve().parents[1]
ORT_WEB = Path(os.environ.get("EDGEAE_ORT_WEB", ROOT / "node_modules" / "onnxruntime-web" / "dist"))
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
_why = missing() or (None if (ORT_WEB / "ort.wasm.min.mjs").is_file() else
                     f"onnxruntime-web not found at {ORT_WEB} (npm ci at the repo root, or set EDGEAE_ORT_WEB)")
needs_browser = pytest.mark.skipif(_why is not None, reason=_why or "")
slow = pytest.mark.slow  # training, export and a browser start (~40 s)
NODE = shutil.which("node")
STATIC = ROOT / "edgeae" / "web" / "static"

C, T = 3, 40
FP32_TOL = 1e-4  # WASM vs native kernels, relative to a channel's range (measured ~1e-7)
PX = 0.006  # SVG coordinates carry two decimals: a point is within 0.005 units of its value


def made_up_signals(n: int = 96, seed: int = 0) -> np.ndarray:
    """Sines of random frequency and phase, channel c on its own scale and offset: (n, C, T) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / T
    freq = rng.uniform(1, 3, (n, C, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, C, 1))
    scale = np.array([1.0, 20.0, 0.05])[None, :, None]
    return (scale * np.sin(2 * np.pi * freq * t + phase) + [[[3.0], [-40.0], [0.5]]]).astype(np.float32)


@pytest.mark.skipif(NODE is None, reason="node not installed (apt-get install nodejs)")
def test_plot_scales_under_node(tmp_path):
    """signals.mjs's axis rules: round ticks inside the range, headroom around both series, a band for a flat line."""
    for name in ("signals.mjs", "runner.mjs", "coder.mjs"):
        shutil.copyfile(STATIC / name, tmp_path / name)
    script = (f"import {{ ticks, valueRange, rmse }} from '{(tmp_path / 'signals.mjs').as_uri()}';\n"
              "console.log(JSON.stringify({ a: ticks(-13.2, 21.7), b: ticks(0, 99, 5), c: ticks(2.951, 3.049),"
              " r: valueRange([[1, 2, 3], [0.5, 2.5]]), flat: valueRange([[4, 4]]), zero: valueRange([[0]]),"
              " e: rmse([1, 2, 3, 4], [1, 2, 3, 0]), part: rmse([1, 2, 3, 4], [0, 2, 3, 0], 1, 3) }));")
    (tmp_path / "t.mjs").write_text(script)
    got = json.loads(subprocess.run([NODE, str(tmp_path / "t.mjs")], capture_output=True, text=True, check=True,
                                    timeout=60).stdout)
    assert got["a"] == [-10, 0, 10, 20] and got["b"] == [0, 20, 40, 60, 80]
    np.testing.assert_allclose(got["c"], [2.96, 2.98, 3.0, 3.02, 3.04])
    np.testing.assert_allclose(got["r"], [0.5 - 0.15, 3 + 0.15])
    assert got["flat"] == pytest.approx([3.6, 4.4]) and got["zero"] == [-1, 1]
    assert got["e"] == 2 and got["part"] == 0


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """A conv1d and a conv1d-vae bundle of made-up signals, and their sites in one folder."""
    from edgeae.data import Dataset
    from edgeae.export import export
    from edgeae.train import train

    base = tmp_path_factory.mktemp("websignals")
    ds = Dataset(made_up_signals(), None, "made-up signals", "array", False)
    out = {}
    for kind, epochs in (("conv1d", 6), ("conv1d-vae", 2)):
        train(ds, model=kind, out=base / f"run-{kind}", epochs=epochs, channels=(8, 16), code_size=6, batch_size=8)
        export(base / f"run-{kind}", base / kind, precisions="fp32", data=ds, latency_repeats=1)
        if _why is None:
            build_site(base / kind, base / "www" / kind, ort_web=ORT_WEB)
        out[kind] = base / kind
    return {"root": base / "www", **out}


@slow
def test_site_json_marks_signal_bundles(sites, tmp_path):
    """site.json says is_signal for (C, T) windows; the page ships signals.mjs (no other JS)."""
    build_site(sites["conv1d"], tmp_path / "s", samples=4)
    site = json.loads((tmp_path / "s" / "site.json").read_text())
    assert site["is_signal"] and not site["is_image"] and site["sample_shape"] == [C, T]
    assert site["samples"]["shape"] == [4, C, T] and (tmp_path / "s" / "signals.mjs").is_file()
    scripts = re.findall(r"<script[^>]*src=\"([^\"]+)\"", (tmp_path / "s" / "index.html").read_text())
    assert scripts == ["page.mjs"]  # everything else is imported from the site's own modules
    imports = re.findall(r"from \"([^\"]+)\"", (tmp_path / "s" / "signals.mjs").read_text())
    assert sorted(imports) == ["./coder.mjs", "./runner.mjs"]


@pytest.fixture(scope="module")
def url(sites):
    if _why is not None:
        pytest.skip(_why)
    with serve(sites["root"]) as base:
        yield base


def _open(chromium, url, name, width=360):
    page = open_page(chromium, f"{url}{name}/", width)
    page.evaluate("edgeae.page.busy")
    return page


@pytest.fixture(scope="module")
def conv_page(chromium, url):
    page = _open(chromium, url, "conv1d")
    yield page
    page.close()


def _plots(page, box="#signal-plots"):
    """Every channel plot in ``box``: its title and, per path class, the values its points stand for."""
    got = page.evaluate(f"""() => Array.from(document.querySelectorAll('{box} svg'), (svg) => ({{
        channel: +svg.dataset.channel, lo: +svg.dataset.lo, hi: +svg.dataset.hi, box: svg.dataset.box.split(' ').map(Number),
        title: svg.querySelector('.title').textContent, legend: Array.from(svg.querySelectorAll('.legend'), (e) => e.textContent),
        axes: Array.from(svg.querySelectorAll('.axis'), (e) => e.textContent),
        paths: Object.fromEntries(Array.from(svg.querySelectorAll('path'), (p) => [p.getAttribute('class'), p.getAttribute('d')])) }}))""")
    for plot in got:
        x0, y0, w, h = plot["box"]
        plot["values"], plot["times"] = {}, {}
        for cls, d in plot["paths"].items():
            assert d.startswith("M")
            pts = np.array([[float(v) for v in p.split(",")] for p in d[1:].split("L")])
            plot["times"][cls] = (pts[:, 0] - x0) / w * (T - 1)
            plot["values"][cls] = plot["lo"] + (y0 + h - pts[:, 1]) / h * (plot["hi"] - plot["lo"])
    return got


def _tol(plot):
    return (plot["hi"] - plot["lo"]) * (PX / plot["box"][3] + FP32_TOL)


@slow
@needs_browser
@pytest.mark.parametrize("k", [0, 3])
def test_plots_per_channel_match_python(conv_page, sites, k):
    model = rt.load(sites["conv1d"], providers="cpu")
    x = np.load(sites["conv1d"] / "samples.npy")[k]
    want = model.reconstruct(x[None], raw=True)[0]  # (C, T) in the data's units
    last = conv_page.evaluate("(k) => edgeae.show(k)", k)
    plots = _plots(conv_page)
    assert [p["channel"] for p in plots] == list(range(C))
    assert conv_page.inner_text("#signal-which") == str(k)
    for c, plot in enumerate(plots):
        assert set(plot["values"]) == {"input", "recon"}
        for cls in ("input", "recon"):
            assert len(plot["values"][cls]) == T  # one point per time step
            np.testing.assert_allclose(plot["times"][cls], np.arange(T), atol=0.01)
        np.testing.assert_allclose(plot["values"]["input"], x[c], atol=_tol(plot))
        np.testing.assert_allclose(plot["values"]["recon"], want[c], atol=_tol(plot))
        assert plot["lo"] < min(x[c].min(), want[c].min()) and plot["hi"] > max(x[c].max(), want[c].max())
        r = float(np.sqrt(np.mean((want[c] - x[c]) ** 2)))
        assert plot["title"].startswith(f"channel {c} · RMSE ")
        assert float(plot["title"].split("RMSE ")[1]) == pytest.approx(r, rel=6e-3)  # shown to 3 digits
        assert plot["legend"] == ["input", "reconstruction"] and plot["axes"] == ["time step", "value"]
    rmse = float(np.sqrt(np.mean((want - x) ** 2)))
    assert last["rmse"] == pytest.approx(rmse, rel=1e-4)
    np.testing.assert_allclose(last["x_hat_raw"], want.reshape(-1), atol=FP32_TOL * np.ptp(x))
    assert conv_page.inner_text("#quality").startswith("RMSE ") and not conv_page.errors


@slow
@needs_browser
def test_bytes_per_window_equal_python_compress(conv_page, sites):
    model = rt.load(sites["conv1d"], providers="cpu")
    x = np.load(sites["conv1d"] / "samples.npy")
    rows = conv_page.evaluate("edgeae.windows()")
    assert [r["window"] for r in rows] == list(range(len(x))) and len(x) >= 6
    bits = sorted(c.bits for c, _ in codecs_of(model.manifest))
    cells = conv_page.evaluate("""() => Array.from(document.querySelectorAll('#windows-table tr[data-window]'), (tr) =>
        [Object.fromEntries(Array.from(tr.querySelectorAll('td[data-bits]'), (td) => [td.dataset.bits, +td.textContent])),
         +tr.querySelector('.rmse').textContent, +tr.querySelector('.rmse-model').textContent])""")
    recon = model.reconstruct(x, raw=True)
    scale = np.asarray(model.manifest.normalization["scale"], np.float64).reshape(C, T)
    for k, row in enumerate(rows):
        for b in bits:
            stream = compress(model, x[k], bits=b)  # the window alone: its own stream, header included
            assert row["bytes"][str(b)] == len(stream) == cells[k][0][str(b)], (k, b)
            assert bytes(conv_page.evaluate("([k, b]) => edgeae.encode(edgeae.sample(k)).then((c) => edgeae.compress(c, b))",
                                            [k, b])) == stream
        err = recon[k] - x[k]
        assert row["rmse"] == pytest.approx(float(np.sqrt(np.mean(err ** 2))), rel=1e-4)
        assert row["rmse_model"] == pytest.approx(float(np.sqrt(np.mean((err / scale) ** 2))), rel=1e-4)
        assert cells[k][1] == pytest.approx(row["rmse"], rel=6e-3) and cells[k][2] == pytest.approx(row["rmse_model"], rel=6e-3)
    check = conv_page.evaluate("edgeae.selfCheck()")
    assert check["ok"] and check["eae_equal"] == check["eae_total"] == len(bits) * len(x)


@slow
@needs_browser
def test_strip_and_codec_menu(conv_page, sites):
    """A tap on a window's thumbnail plots it and marks its row; the codec menu marks its column."""
    x = np.load(sites["conv1d"] / "samples.npy")
    strip = conv_page.locator("#sample-strip .thumb")
    assert strip.count() == len(x) and strip.nth(2).get_attribute("aria-label") == "held-out window 2"
    strip.nth(2).click()
    conv_page.wait_for_function("document.querySelector('#signal-which').textContent === '2'")
    conv_page.evaluate("edgeae.page.busy")
    plot = _plots(conv_page)[1]
    np.testing.assert_allclose(plot["values"]["input"], x[2, 1], atol=_tol(plot))
    assert conv_page.locator("#windows-table tr.on").get_attribute("data-window") == "2"
    conv_page.select_option("#bits", "4")
    assert conv_page.inner_text("#windows-table th.on").startswith("4-bit")
    assert conv_page.inner_text("#eae-table tr.on td >> nth=0") == "4"
    assert conv_page.inner_text("#eae-table th >> nth=2") == "RMSE"


@slow
@needs_browser
def test_phone_layout_and_accessibility(conv_page):
    assert conv_page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    assert conv_page.locator("#image-ui").is_hidden() and conv_page.locator("#table-ui").is_hidden()
    if not AXE.is_file():
        pytest.skip("axe-core not installed (npm ci at the repo root)")
    conv_page.add_script_tag(path=str(AXE))
    found = conv_page.evaluate("axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations"
                               ".map((v) => ({ id: v.id, impact: v.impact })))")
    assert not [v for v in found if v["impact"] in ("serious", "critical")], found


@slow
@needs_browser
def test_vae_generates_signals(chromium, url, sites):
    """conv1d-vae: the prior's draws are plotted per channel, one line each, as the decoder gives them."""
    page = _open(chromium, url, "conv1d-vae")
    page.click("#prior")
    page.evaluate("edgeae.page.busy")
    z = np.array(page.evaluate("Array.from(edgeae.page.z)"), np.float32)
    want = rt.load(sites["conv1d-vae"], providers="cpu").decode(z[None], raw=True)[0]
    plots = _plots(page, "#gen-plots")
    assert len(plots) == C and page.locator("#gen-view").is_hidden()
    for c, plot in enumerate(plots):
        assert list(plot["values"]) == ["gen"] and plot["legend"] == ["generated"]
        np.testing.assert_allclose(plot["values"]["gen"], want[c], atol=_tol(plot))
    assert not page.errors
    page.close()
