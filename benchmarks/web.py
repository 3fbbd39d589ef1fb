"""The browser page beside the Python runtime: weight, start-up and encode latency; a screenshot.

    bundle -> edgeae web (--ort-web) -> headless Chromium (onnxruntime-web, WASM, one thread)
           -> page weight, session creation, first call, rounds of 100 encode calls
           -> Python runtime (onnxruntime, one thread), same samples, rounds interleaved
           -> benchmarks/results/web-<name>.json / .md, docs/img/web.png (360 px wide)

Usage: ``python -m benchmarks.web [--model mnist-mlp | --bundle DIR] [--rounds 5] [--screenshot PATH]``;
``--screenshots DIR`` only writes the page at 360x740, 740x360 (phone, landscape) and 1280x800
into DIR (docs/img: web-<w>x<h>.png, and web.png as the phone one), a "7" drawn on its pad; for a
signal bundle ((C, T) windows) web-signals-<w>x<h>.png with held-out window 1 plotted.
``--model`` trains and exports once (cached under benchmarks/work/, like benchmarks.run).
Needs Chromium, ``pip install playwright`` and ``npm ci`` (onnxruntime-web); see docs/web.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
ORT_WEB = ROOT / "node_modules" / "onnxruntime-web" / "dist"


def _rel(path: Path) -> str:
    """A path relative to the repository when it lies inside it (results stay machine-neutral)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _pct(times: list[float]) -> dict[str, float]:
    s = sorted(times)
    q = lambda p: s[min(len(s) - 1, int(p * len(s)))]  # noqa: E731
    return {"mean_ms": statistics.fmean(s), "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99)}


def _python_side(bundle: Path, precision: str, x: np.ndarray):
    import edgeae.runtime as rt

    t0 = time.perf_counter_ns()
    model = rt.load(bundle, precision, providers="cpu", threads=1)
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    t0 = time.perf_counter_ns()
    model.encode(x[:1])
    first_ms = (time.perf_counter_ns() - t0) / 1e6
    return {"load_ms": load_ms, "first_call_ms": first_ms}, model


def _py_calls(model, sample: np.ndarray, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        model.encode(sample)
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def _draw(page, shape: str) -> None:
    """Draw a digit on the pad with mouse events ("7": a bar, then a diagonal)."""
    page.locator("#pad").scroll_into_view_if_needed()
    box = page.locator("#pad").bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    m = page.mouse
    m.move(x0 + 0.28 * w, y0 + 0.22 * h)
    m.down()
    m.move(x0 + 0.72 * w, y0 + 0.22 * h, steps=10)
    m.move(x0 + 0.42 * w, y0 + 0.82 * h, steps=16)
    m.up()
    page.wait_for_timeout(300)
    page.evaluate("edgeae.page.busy")


def run(bundle: Path, name: str, rounds: int, calls: int, screenshot: Path | None, log=print) -> dict:
    from edgeae.runtime.bundle import read_manifest
    from edgeae.web import ASSETS, build_site
    from edgeae.web.headless import browser, chromium_path, serve

    site_dir = HERE / "work" / "web" / name
    precisions = [p for p in ("fp32", "int8-dynamic") if p in read_manifest(bundle).precisions()]
    report = build_site(bundle, site_dir, precisions, ort_web=ORT_WEB, overwrite=True, title=name)
    x = np.load(bundle / "samples.npy")
    files = report.files
    weight = {
        "page_bytes": report.page_bytes,  # html + js + css + site.json + graphs
        "site_json_bytes": files["site.json"],
        "graph_bytes": sum(n for f, n in files.items() if f.endswith(".onnx")),
        "own_code_bytes": sum(files[f] for f in ASSETS),
        "ort_js_bytes": sum(n for f, n in files.items() if f.startswith("ort/") and f.endswith(".mjs")),
        "ort_wasm_bytes": sum(n for f, n in files.items() if f.endswith(".wasm")),
    }
    result: dict = {"bundle": _rel(bundle), "name": name, "weight": weight, "precisions": {}}
    with serve(site_dir) as url, browser() as b:
        result["machine"] = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                             "chromium": b.version, "chromium_path": chromium_path(),
                             "onnxruntime_web": report.ort_version,
                             "onnxruntime": __import__("onnxruntime").__version__, "loadavg": os.getloadavg()}
        starts = []
        for _ in range(3):  # fresh pages: session creation and first call as a visitor sees them
            page = b.new_page(viewport={"width": 360, "height": 780}, device_scale_factor=2, has_touch=True)
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']", timeout=120_000)
            starts.append(page.evaluate("edgeae.timing"))
            page.close()
        page = b.new_page(viewport={"width": 360, "height": 780}, device_scale_factor=2, has_touch=True)
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        for precision in precisions:
            py_start, model = _python_side(bundle, precision, x)
            js_codes = np.array(page.evaluate(
                "async ([n, p]) => { const o = []; for (let k = 0; k < n; k++) o.push(await edgeae.encode(edgeae.sample(k), p)); return o; }",
                [min(len(x), 24), precision]), np.float32)
            py_codes = model.encode(x[:len(js_codes)])
            js_rounds, py_rounds, js_all, py_all = [], [], [], []
            for r in range(rounds):  # interleaved: browser, Python, browser, ...
                k = r % len(js_codes)
                js = page.evaluate("([n, k, p]) => edgeae.bench(n, k, p)", [calls, k, precision])
                js_t = js["times_ms"]
                py_t = _py_calls(model, x[k:k + 1], calls)
                js_rounds.append(js["block_mean_ms"])  # whole calls: normalize, tensor, run, copy out
                py_rounds.append(statistics.fmean(py_t))
                js_all += js_t
                py_all += py_t
            # the default precision opens as the page loads (median of the fresh pages); others on first use
            seen = starts if precision == precisions[0] else [page.evaluate("edgeae.timing")]
            result["precisions"][precision] = {
                "browser": {"session_ms": statistics.median(s["session_ms"][precision] for s in seen),
                            "first_call_ms": statistics.median(s["first_call_ms"][precision] for s in seen),
                            **_pct(js_all), "mean_ms": statistics.fmean(js_rounds), "round_means_ms": js_rounds, "median_round_ms": statistics.median(js_rounds),
                            "timer_resolution_ms": js["timer_resolution_ms"]},
                "python": {**py_start, "round_means_ms": py_rounds, "median_round_ms": statistics.median(py_rounds),
                           **_pct(py_all)},
                "max_code_diff": float(np.abs(js_codes - py_codes).max()),
                "code_range": float(py_codes.max() - py_codes.min()),
            }
            log(f"{precision}: browser {statistics.median(js_rounds):.3f} ms, Python {statistics.median(py_rounds):.3f} ms "
                "(median of round means)")
        if screenshot is not None:
            page.evaluate("edgeae.setPrecision('fp32')")
            _draw(page, "7")
            page.screenshot(path=str(screenshot), full_page=True)
            result["screenshot"] = _rel(screenshot)
        page.close()
    return result


SCREEN_SIZES = ((360, 740), (740, 360), (1280, 800))  # phone, phone in landscape, desktop


def screenshots(bundle: Path, name: str, out_dir: Path, log=print) -> list[Path]:
    """The page of ``bundle`` at each of SCREEN_SIZES (full page, 2x pixels), a "7" drawn on its pad
    (signal bundles: held-out window 1 plotted, files named web-signals-<w>x<h>.png)."""
    from edgeae.runtime.bundle import read_manifest
    from edgeae.web import build_site
    from edgeae.web.headless import browser, serve

    site_dir = HERE / "work" / "web" / name
    manifest = read_manifest(bundle)
    signal = not manifest.is_image and len(manifest.sample_shape) == 2
    precisions = [p for p in ("fp32", "int8-dynamic") if p in manifest.precisions()]
    build_site(bundle, site_dir, precisions, ort_web=ORT_WEB, overwrite=True, title=name)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with serve(site_dir) as url, browser() as b:
        for w, h in SCREEN_SIZES:
            page = b.new_page(viewport={"width": w, "height": h}, device_scale_factor=2, has_touch=w < 1000)
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']", state="attached", timeout=120_000)
            if signal:
                page.evaluate("edgeae.show(1)")
            else:
                _draw(page, "7")
            page.evaluate("window.scrollTo(0, 0)")
            paths = [out_dir / f"web-signals-{w}x{h}.png"] if signal else \
                [out_dir / f"web-{w}x{h}.png"] + ([out_dir / "web.png"] if (w, h) == SCREEN_SIZES[0] else [])
            for path in paths:
                page.screenshot(path=str(path), full_page=True)
                written.append(path)
                log(f"wrote {_rel(path)}")
            page.close()
    return written


def _rounds(side: dict) -> str:
    m = side["round_means_ms"]
    return f"{statistics.median(m):.3f} ms ({min(m):.3f}-{max(m):.3f})"


def markdown(r: dict) -> str:
    w, m = r["weight"], r["machine"]
    kib = lambda n: f"{n / 1024:.0f} KiB"  # noqa: E731
    lines = [
        f"# The browser page of {r['name']} (`python -m benchmarks.web`)", "",
        f"Machine: {m['cpu_count']} CPU cores ({m['platform']}), load average {m['loadavg'][0]:.1f} while measuring; "
        f"headless Chromium {m['chromium']}; onnxruntime-web {m['onnxruntime_web']} (WASM, SIMD, one thread); "
        f"Python runtime on onnxruntime {m['onnxruntime']} (one intra-op thread). Each side runs rounds of 100 "
        f"batch-1 encode calls on the same held-out samples, {len(next(iter(r['precisions'].values()))['python']['round_means_ms'])} "
        "rounds interleaved (browser, Python, ...). mean of 100 calls = median over the rounds (lowest-highest "
        "round in brackets) of the wall time of whole `encode` calls / calls (JS: `edgeae.encode`'s work incl. normalization and "
        "tensor creation; Python: `EdgeModel.encode`); p50/p90/p99 of single calls (JS: the `session.run` part, "
        "timer resolution 5 us under cross-origin isolation). A shared, loaded machine: compare the two rows, "
        "not the absolute values. Session creation: the default graph opens as the page loads, so its time "
        "includes compiling onnxruntime-web's WASM (median of 3 fresh pages); the second graph opens with WASM "
        "ready. Python: `edgeae.runtime.load` (hash checks included).", "",
        f"Page weight without onnxruntime-web: **{kib(w['page_bytes'])}** (page code {kib(w['own_code_bytes'])}, "
        f"graphs {kib(w['graph_bytes'])}, site.json {kib(w['site_json_bytes'])} with the held-out samples and the "
        f"Python reference for the self-check); onnxruntime-web adds {kib(w['ort_js_bytes'])} of JS and "
        f"{w['ort_wasm_bytes'] / 1e6:.1f} MB of WASM.", "",
        "| graph | side | session creation | first call | mean of 100 calls | p50 | p90 | p99 | max code diff vs Python |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p, v in r["precisions"].items():
        b, py = v["browser"], v["python"]
        lines.append(f"| {p} | Chromium (WASM) | {b['session_ms']:.0f} ms | {b['first_call_ms']:.2f} ms | "
                     f"{_rounds(b)} | {b['p50_ms']:.3f} | {b['p90_ms']:.3f} | {b['p99_ms']:.3f} | "
                     f"{v['max_code_diff']:.1e} (code range {v['code_range']:.1f}) |")
        lines.append(f"| {p} | Python runtime | {py['load_ms']:.0f} ms (load + verify) | {py['first_call_ms']:.2f} ms | "
                     f"{_rounds(py)} | {py['p50_ms']:.3f} | {py['p90_ms']:.3f} | {py['p99_ms']:.3f} | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mnist-mlp", help="a model of benchmarks.run (trained once, cached)")
    ap.add_argument("--bundle", type=Path, default=None, help="use this bundle instead of --model")
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--screenshot", type=Path, default=ROOT / "docs" / "img" / "web.png")
    ap.add_argument("--data", type=Path, default=None, help="MNIST folder for --model mnist-*")
    ap.add_argument("--screenshots", type=Path, default=None,
                    help="only write the page's screenshots at phone, landscape and desktop sizes into this folder")
    args = ap.parse_args()
    if args.bundle is not None:
        bundle, name = args.bundle, args.bundle.name
    else:
        from benchmarks.run import MNIST, MODELS, _prepare

        _, bundle = _prepare(args.model, MODELS[args.model], args.data or MNIST, False, print)
        name = args.model
    if args.screenshots is not None:
        screenshots(bundle, name, args.screenshots)
        return
    result = run(bundle, name, args.rounds, args.calls, args.screenshot)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"web-{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    (RESULTS / f"web-{name}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
