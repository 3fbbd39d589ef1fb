"""The page's precision for the device it runs on (runner.mjs: measureBlocks, decide; docs/web.md).

Under Node: the decision rule fed measured numbers (and checked against edgeae.bench's interval
of a median), the interleaved-block loop on a fake clock, and the remembered record. In headless
Chromium: the page times every precision, runs the one the rule picks, remembers it per device
and bundle, shows what it measured, and lets the user override it. Skips with the reason when
Node, Chromium, Playwright or onnxruntime-web's dist/ is missing (``make web-tools``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeae.bench.timing import block_order, median_ci
from edgeae.web import build_site
from edgeae.web.headless import missing, serve
from tests._bundles import make_bundle

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "edgeae" / "web" / "static"
NODE = shutil.which("node")
ORT_WEB = Path(os.environ.get("EDGEAE_ORT_WEB", ROOT / "node_modules" / "onnxruntime-web" / "dist"))
needs_node = pytest.mark.skipif(NODE is None, reason="node not installed (apt-get install nodejs)")
_why = missing() or (None if (ORT_WEB / "ort.wasm.min.mjs").is_file() else
                     f"onnxruntime-web not found at {ORT_WEB} (npm ci at the repo root, or set EDGEAE_ORT_WEB)")


def _js(tmp_path: Path, body: str, data: object = None):
    """Run ``body`` (an ES module that imports runner.mjs as ``r`` and sees ``data``) in Node; its JSON output."""
    for name in ("coder.mjs", "runner.mjs"):
        shutil.copyfile(STATIC / name, tmp_path / name)
    (tmp_path / "data.json").write_text(json.dumps(data))
    (tmp_path / "run.mjs").write_text("import fs from 'fs'; import * as r from './runner.mjs';\n"
                                      "const data = JSON.parse(fs.readFileSync('data.json'));\n" + body)
    res = subprocess.run([NODE, "run.mjs"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _rule(rounds: dict[str, list[float]], base: str, eligible: list[str] | None = None, gain: float = 0.05) -> str:
    """The rule written again in Python from bench.timing's median_ci: an independent check of decide()."""
    _, b_lo, _ = median_ci(rounds[base])
    best, best_ratio = base, 0.0
    for p, ms in rounds.items():
        if p == base or (eligible is not None and p not in eligible):
            continue
        ratio, lo, _ = median_ci([a / f for a, f in zip(rounds[base], ms, strict=True)])
        _, _, p_hi = median_ci(ms)
        if lo is not None and lo > 1 + gain and p_hi < b_lo and ratio > best_ratio:
            best, best_ratio = p, ratio
    return best


def _rounds(rng, ms: float, spread: float, n: int = 12) -> list[float]:
    return (ms * (1 + spread * rng.standard_normal(n))).tolist()


@needs_node
def test_median_interval_equals_bench_timing(tmp_path):
    rng = np.random.default_rng(0)
    cases = [rng.lognormal(0, 0.3, n).tolist() for n in (1, 3, 5, 6, 7, 12, 13, 40)]
    got = _js(tmp_path, "console.log(JSON.stringify(data.map((v) => r.medianCI(v))));", cases)
    for values, js in zip(cases, got, strict=True):
        med, lo, hi = median_ci(values)
        assert js["median"] == pytest.approx(med, rel=1e-12)
        assert (js["lo"], js["hi"]) == ((lo, hi) if lo is not None else (None, None))
    order = _js(tmp_path, "console.log(JSON.stringify(r.blockOrder(3, 12)));")
    assert order == block_order(3, 12)


@needs_node
def test_decision_rule_on_measured_numbers(tmp_path):
    """Each case: per-round ms of each precision -> the precision decide() picks."""
    rng = np.random.default_rng(1)
    cases = {
        "int8 twice as fast": ({"fp32": _rounds(rng, 0.08, 0.02), "int8": _rounds(rng, 0.04, 0.02)}, None, "int8"),
        "int8 slower": ({"fp32": _rounds(rng, 0.04, 0.02), "int8": _rounds(rng, 0.09, 0.02)}, None, "fp32"),
        "4% faster, resolved": ({"fp32": [0.104] * 12, "int8": [0.100] * 12}, None, "fp32"),
        "6% faster, resolved": ({"fp32": [0.106 + 1e-4 * i for i in range(12)],
                                 "int8": [0.100 + 1e-4 * i for i in range(12)]}, None, "int8"),
        "faster median, noisy": ({"fp32": _rounds(rng, 0.10, 0.30), "int8": _rounds(rng, 0.08, 0.30)}, None, "fp32"),
        "faster but self-check failed": ({"fp32": _rounds(rng, 0.08, 0.01), "int8": _rounds(rng, 0.04, 0.01)},
                                         ["fp32"], "fp32"),
        "the fastest of two": ({"fp32": _rounds(rng, 0.09, 0.01), "fp16": _rounds(rng, 0.06, 0.01),
                                "int8": _rounds(rng, 0.03, 0.01)}, None, "int8"),
        "default other than fp32": ({"int8": _rounds(rng, 0.05, 0.01), "fp32": _rounds(rng, 0.10, 0.01)},
                                    None, "int8"),
    }
    # paired ratios resolved above 1.05, yet the two precisions' own intervals overlap: no switch
    slow = [0.100, 0.130, 0.101, 0.131, 0.102, 0.132, 0.103, 0.133, 0.104, 0.134, 0.105, 0.135]
    cases["paired gain, intervals overlap"] = ({"fp32": slow, "int8": [s / 1.1 for s in slow]}, None, "fp32")
    data = [{"name": k, "measured": {p: {"rounds_ms": v} for p, v in m.items()}, "base": next(iter(m)),
             "eligible": e} for k, (m, e, _) in cases.items()]
    got = _js(tmp_path, "console.log(JSON.stringify(data.map((c) => r.decide(c.measured, c.base, "
                        "{ eligible: c.eligible }))));", data)
    for (name, (measured, eligible, want)), d in zip(cases.items(), got, strict=True):
        assert d["choice"] == want == _rule(measured, next(iter(measured)), eligible), (name, d)
        assert set(d["rows"]) == set(measured) and d["base"] == next(iter(measured))
        if want != d["base"]:
            assert d["why"].startswith(f"{want} is ") and d["rows"][want]["faster"]
        else:
            assert "no other precision is resolvably more than 5% faster" in d["why"]
    overlap = got[-1]["rows"]
    assert overlap["int8"]["ratio_lo"] > 1.05 and not overlap["int8"]["faster"]
    assert got[5]["rows"]["int8"]["faster"] and not got[5]["rows"]["int8"]["eligible"]


@needs_node
def test_blocks_on_a_fake_clock(tmp_path):
    """fp32 costs 1.0 ms a call and int8 0.25 ms on a clock that steps by 0.1 ms: 12 rounds of
    rotating blocks, every timed stretch >= 20 steps, 3 to 50 stretches a block, exact per-call
    figures, one untimed call a block."""
    body = """
let t = 0; const log = [];
const runner = (name, ms) => async () => { t += ms; log.push(name); };
const out = await r.measureBlocks({ fp32: runner("fp32", 1.0), int8: runner("int8", 0.25) },
  { rounds: 12, durationMs: 240, resolution: 0.1, clock: () => t });
const plan = { fp32: r.blockPlan(1.0, 0.1, 10), int8: r.blockPlan(0.25, 0.1, 10) };
const few = r.blockPlan(20, 0.1, 10), many = r.blockPlan(0.001, 0.005, 1000);  // a slow call; a fast one
console.log(JSON.stringify({ out, plan, few, many, log, decision: r.decide(out, "fp32") }));
"""
    got = _js(tmp_path, body)
    out, plan, log = got["out"], got["plan"], got["log"]
    assert plan == {"fp32": {"perStretch": 2, "stretches": 5}, "int8": {"perStretch": 8, "stretches": 5}}
    assert got["few"] == {"perStretch": 1, "stretches": 3} and got["many"]["stretches"] == 50
    for name, ms in (("fp32", 1.0), ("int8", 0.25)):
        assert out[name]["rounds_ms"] == pytest.approx([ms] * 12)
        assert out[name]["calls_per_block"] == plan[name]["perStretch"] * plan[name]["stretches"]
    want = ["fp32"] * 11 + ["int8"] * 41  # warm-ups: one call, then five times calls until 20 timer steps passed
    for order in block_order(2, 12):  # one untimed call, then the timed stretches
        want += [n for i in order for n in [("fp32", "int8")[i]] * (1 + out[("fp32", "int8")[i]]["calls_per_block"])]
    assert log == want
    assert got["decision"]["choice"] == "int8"
    assert got["decision"]["rows"]["int8"]["ratio"] == pytest.approx(4.0)


@needs_node
def test_remembered_record_and_key(tmp_path):
    body = """
const mem = new Map(), store = { getItem: (k) => mem.get(k) ?? null, setItem: (k, v) => mem.set(k, v) };
const full = { getItem: () => null, setItem: () => { throw new Error("QuotaExceededError"); } };
const site = { precisions: ["fp32", "int8-dynamic"], graphs: data };
const hex = async (b) => Array.from(b.slice(0, 16), (x) => x.toString(16).padStart(2, "0")).join("") + b.length;
const digest = async (b) => { const { sha256Hex } = await import("./coder.mjs"); return sha256Hex(b); };
const k1 = await r.storageKey("dev A", site, digest), k2 = await r.storageKey("dev B", site, digest);
const other = { ...site, graphs: { ...data, fp32: { ...data.fp32, encoder: { sha256: "ff" } } } };
const k3 = await r.storageKey("dev A", other, digest);
const stored = r.remember(store, k1, { choice: "int8-dynamic", override: false });
mem.set("bad", "{not json"); mem.set("gone", JSON.stringify({ choice: "int8-static" }));
console.log(JSON.stringify({ k1, k2, k3, stored, again: await r.storageKey("dev A", site, digest),
  back: r.recall(store, k1, site), none: r.recall(store, k2, site), bad: r.recall(store, "bad", site),
  gone: r.recall(store, "gone", site), full: r.remember(full, k1, {}), dev: r.deviceOf({ userAgent: "UA",
  hardwareConcurrency: 8 }, "1.20.0"), unused: typeof hex }));
"""
    graphs = {p: {role: {"sha256": f"{p}-{role}"} for role in ("encoder", "decoder")} for p in ("fp32", "int8-dynamic")}
    got = _js(tmp_path, body, graphs)
    assert got["k1"].startswith("edgeae.precision.v1:") and len(got["k1"]) == len("edgeae.precision.v1:") + 64
    assert got["k1"] == got["again"] and len({got["k1"], got["k2"], got["k3"]}) == 3  # per device and per bundle
    assert got["stored"] is True and got["back"] == {"choice": "int8-dynamic", "override": False}
    assert got["none"] is None and got["bad"] is None and got["gone"] is None  # absent, damaged, not on the site
    assert got["full"] is False and got["dev"] == "UA | 8 cores | onnxruntime-web 1.20.0"


# ------------------------------------------------------------------ the page in Chromium
@pytest.fixture(scope="module")
def www(tmp_path_factory):
    base = tmp_path_factory.mktemp("webchoose")
    img = make_bundle(base / "bundle-img", "image", precisions=("fp32", "fp16", "int8-dynamic"))[0]
    vec = make_bundle(base / "bundle-vec", "vector")[0]
    build_site(img, base / "www" / "img", "fp32,fp16,int8-dynamic", ort_web=ORT_WEB, samples=4)
    build_site(vec, base / "www" / "vec", "fp32,int8-dynamic", ort_web=ORT_WEB, samples=4)
    with serve(base / "www") as url:
        yield url


def _goto(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-choice], body[data-error]", state="attached", timeout=90_000)
    assert page.get_attribute("body", "data-error") is None, page.inner_text("#status")


def _stored(page) -> dict:
    return page.evaluate("Object.fromEntries(Object.keys(localStorage).map((k) => [k, JSON.parse(localStorage[k])]))")


@pytest.mark.slow  # a browser start, WASM compile and three timings of the page (~20 s)
@pytest.mark.skipif(_why is not None, reason=_why or "")
def test_page_measures_chooses_remembers_and_takes_overrides(chromium, www):
    ctx = chromium.new_context(viewport={"width": 360, "height": 740})
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _goto(page, f"{www}img/")
    c = page.evaluate("edgeae.choice()")
    assert c["source"] == "measured" and c["base"] == "fp32" and c["rounds"] == 12
    assert set(c["rows"]) == set(c["rounds_ms"]) == {"fp32", "fp16", "int8-dynamic"}
    assert all(len(v) == 12 and min(v) > 0 for v in c["rounds_ms"].values())
    assert c["choice"] == _rule(c["rounds_ms"], "fp32", c["eligible"])  # the rule, applied again here
    assert page.evaluate("edgeae.page.precision") == c["choice"] == page.input_value("#precision")
    assert page.locator("#speed-ui").is_visible() and page.locator("#remeasure").is_visible()
    text = page.inner_text("#speed")
    assert text.startswith(f"Running {c['choice']}: ") and "12 rounds of interleaved blocks" in text
    for p, row in c["rows"].items():
        cell = page.inner_text(f"#speed-table tr[data-precision='{p}'] td:nth-child(2)")
        assert float(cell.split()[0]) == pytest.approx(row["ms"], rel=0.06), (p, cell)
    stored = _stored(page)
    (key, rec), = stored.items()
    assert key.startswith("edgeae.precision.v1:") and rec["choice"] == c["choice"] and rec["override"] is False

    _goto(page, f"{www}img/")  # again on this device: remembered, not timed again
    again = page.evaluate("edgeae.choice()")
    assert again["source"] == "stored" and again["measured_at"] == c["measured_at"]

    other = "int8-dynamic" if c["choice"] != "int8-dynamic" else "fp32"
    page.evaluate("([k, r]) => localStorage.setItem(k, JSON.stringify(r))", [key, {**rec, "choice": other}])
    _goto(page, f"{www}img/")  # a remembered measurement that picked another precision: the page runs it
    assert page.evaluate("edgeae.choice().source") == "stored" and page.evaluate("edgeae.page.precision") == other
    page.wait_for_function("(p) => new RegExp(p + ' codes').test(document.getElementById('selfcheck').textContent)",
                           arg=other)

    page.select_option("#precision", "fp16")  # the user's choice wins, and stays
    page.wait_for_function("document.body.dataset.choice === 'override'")
    assert _stored(page)[key]["choice"] == "fp16" and _stored(page)[key]["override"] is True
    assert "your choice" in page.inner_text("#speed")
    _goto(page, f"{www}img/")
    assert page.evaluate("[edgeae.choice().source, edgeae.page.precision]") == ["override", "fp16"]

    page.click("#remeasure")  # Measure again: the timing decides once more
    page.wait_for_function("document.body.dataset.choice === 'measured'", timeout=90_000)
    fresh = page.evaluate("edgeae.choice()")
    assert fresh["measured_at"] != c["measured_at"] and _stored(page)[key]["override"] is False
    assert page.evaluate("edgeae.page.precision") == fresh["choice"] == _rule(fresh["rounds_ms"], "fp32",
                                                                               fresh["eligible"])

    _goto(page, f"{www}vec/")  # another bundle on the same device: its own record
    assert page.evaluate("edgeae.choice().source") == "measured" and len(_stored(page)) == 2

    _goto(page, f"{www}img/?precision=int8-dynamic")  # the address names a precision: nothing timed
    assert page.evaluate("[edgeae.choice().source, edgeae.page.precision]") == ["url", "int8-dynamic"]
    assert "set by this page's address" in page.inner_text("#speed")
    assert not errors
    ctx.close()
