// page.mjs: the page of one edgeae bundle and its JS API (window.edgeae).
//
//   site.json -> onnxruntime-web (this site's ort/ or the CDN) -> Runner (graphs hash-checked)
//     -> views: drawing pad / held-out samples / feature form / signal plots -> code, .eae sizes, PSNR or RMSE
//     -> self-check against the Python runtime, shown as pass or FAIL at the top
//     -> the precision for this device: ?precision= in the address, else the one remembered for
//        this device and bundle, else every precision timed here (runner.mjs: decide)
//
// Every failure on the way ends in one visible state: the reason in #status (aria-live) and
// no empty controls. No framework, no build step: coder.mjs and runner.mjs hold the logic,
// inputs.mjs the drawing pad and the sample strip, signals.mjs the plots of (C, T) windows.

import { compressCodes, compressSymbols, cdfOf, crc32, dequantize, quantize, rangeDecode, rangeEncode, sha256Hex }
  from "./coder.mjs";
import { drawingPad, padToSample, paint, sampleStrip } from "./inputs.mjs";
import { ROUNDS, Runner, decide, deviceOf, measure, measureBlocks, now, peakOf, prod, psnr, recall, remember, sampleAt,
  selfCheck, storageKey } from "./runner.mjs";
import { measureWindows, plotChannels, rmse, sparkline, windowTable } from "./signals.mjs";

const $ = (id) => document.getElementById(id);
const fmt = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : "∞");
/** Milliseconds with two significant digits below 1 ms: a small figure never reads "0.00". */
const fmtMs = (v) => (v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(2));

function barChart(canvas, code) {
  const w = (canvas.width = canvas.clientWidth * devicePixelRatio || 320);
  const h = (canvas.height = 120 * devicePixelRatio);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  const m = Math.max(1e-6, ...Array.from(code, Math.abs));
  const bw = w / code.length;
  ctx.fillStyle = "#d0d7de";
  ctx.fillRect(0, h / 2, w, 1);
  code.forEach((v, i) => {
    ctx.fillStyle = v >= 0 ? "#0969da" : "#cf222e";
    const y = (v / m) * (h / 2 - 2);
    ctx.fillRect(i * bw + 1, v >= 0 ? h / 2 - y : h / 2, Math.max(1, bw - 2), Math.abs(y));
  });
}

function status(text, bad = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("bad", bad);
}

/** The self-check verdict, at the top of the page: green when it passed, red (an alert) when not. */
function showCheck(c, precision) {
  const el = $("selfcheck");
  el.hidden = false;
  if (!c) {
    el.className = "check";
    el.textContent = `No self-check for ${precision}: the site has no held-out samples (built with --samples 0).`;
    return;
  }
  const moved = !c.eae_moved ? "" : c.max_code_diff <= c.code_tol
    ? ` (${c.eae_moved} quantize to other symbols, from codes that differ within the tolerance)`
    : ` (${c.eae_moved} quantize to other symbols)`;
  const coder = c.coder_equal < c.eae_total ? `; the coder gives Python's bytes for Python's codes in only ` +
    `${c.coder_equal} of ${c.eae_total}` : "";
  const facts = `${c.samples} held-out samples, ${precision} codes within ${c.max_code_diff.toExponential(1)} of ` +
    `edgeae's Python runtime (allowed ${c.code_tol.toExponential(1)}); .eae bytes identical to Python's in ` +
    `${c.eae_equal} of ${c.eae_total} streams${moved}${coder}.`;
  el.className = c.ok ? "check ok" : "check bad";
  el.setAttribute("role", c.ok ? "status" : "alert");
  el.textContent = c.ok ? `✓ Self-check passed: ${facts}`
    : `✗ Self-check FAILED: ${facts} Do not trust the numbers on this page: its graphs or this browser do not ` +
      "compute what the bundle computes.";
}

class Page {
  constructor(site, runner) {
    this.site = site;
    this.runner = runner;
    this.precision = site.precisions[0];
    this.bits = site.codecs.length ? site.codecs[0].bits : null;
    this.last = null;
    this.window = null; // the held-out window shown (signal bundles)
    this.windows = []; // every held-out window's .eae bytes and RMSE (signal bundles: measureWindows)
    this.check = null;
    this.busy = Promise.resolve();
    this.choice = null; // how this.precision was chosen (choosePrecision)
    this.chosen = Promise.resolve(); // settles when the first choice is made; the JS API waits for it
  }

  codec(bits) { return this.site.codecs.find((c) => c.bits === bits); }

  /** The whole pipeline for one raw sample; updates every view. Times are per call, averaged
   *  over repeated calls where one call is too short for this browser's timer (runner.measure). */
  async show(raw) {
    const r = this.runner, site = this.site, p = this.precision, res = r.timing.resolution_ms;
    let e, d, eae;
    const te = await measure(async () => { e = await r.encode(raw, p); }, res);
    const td = await measure(async () => { d = await r.decode(e.code, p); }, res);
    const tc = await measure(async () => {
      eae = site.codecs.map((c) => {
        const q = quantize(c, e.code);
        return { bits: c.bits, stream: compressSymbols(c, q, 1), code_hat: dequantize(c, q) };
      });
    }, res);
    const x = r.modelUnits(raw, p);
    const peak = peakOf(r.norm, x);
    for (const row of eae) {
      const q = await r.decode(row.code_hat, p);
      Object.assign(row, { psnr: psnr(x, q.model, peak), rmse: rmse(raw, q.raw) });
    }
    this.last = { raw: Array.from(raw), code: Array.from(e.code), x_hat: Array.from(d.model), x_hat_raw: Array.from(d.raw),
      psnr: psnr(x, d.model, peak), rmse: rmse(raw, d.raw), rmse_model: rmse(x, d.model),
      encode_ms: te.ms, decode_ms: td.ms, coder_ms: tc.ms,
      calls: { encode: te.calls, decode: td.calls, coder: tc.calls },
      bytes: Object.fromEntries(eae.map((row) => [row.bits, row.stream.length])), eae };
    this.render(raw, d);
    return this.last;
  }

  /** Held-out window k (signal bundles): plotted, and its row marked in the table of windows. */
  async showWindow(k) {
    this.window = k;
    await this.show(sampleAt(this.site, k));
    this.renderWindows();
    return this.last;
  }

  render(raw, d) {
    const L = this.last, site = this.site, uint8 = this.runner.norm.uint8;
    if (site.is_image) {
      paint($("input-view"), raw, site.sample_shape, uint8);
      paint($("recon-view"), d.raw, site.sample_shape, uint8);
    } else if (site.is_signal) {
      L.rmse_channels = plotChannels($("signal-plots"), raw, d.raw, site.sample_shape);
      $("signal-which").textContent = this.window === null ? "" : `${this.window}`;
    } else {
      const rows = Array.from(raw, (v, i) => `<tr><td>f${i}</td><td>${fmt(v, 3)}</td><td>${fmt(d.raw[i], 3)}</td></tr>`);
      $("recon-table").innerHTML = `<tr><th>feature</th><th>input</th><th>reconstruction</th></tr>${rows.join("")}`;
    }
    $("quality").textContent = site.is_signal ? `RMSE ${L.rmse.toPrecision(3)} (data units)` +
      (this.runner.norm.bounded ? "" : ` · ${L.rmse_model.toPrecision(3)} std`) : `PSNR ${fmt(L.psnr)} dB`;
    const many = Math.max(L.calls.encode, L.calls.decode, L.calls.coder) > 1;
    $("latency").textContent = `encode ${fmtMs(L.encode_ms)} ms · decode ${fmtMs(L.decode_ms)} ms · entropy coder ` +
      `${fmtMs(L.coder_ms)} ms` + (many ? ` (means over repeated calls: this browser's timer steps by ` +
      `${fmtMs(this.runner.timing.resolution_ms)} ms)` : "");
    barChart($("code-chart"), L.code);
    $("code-caption").textContent = `${L.code.length} numbers (float32: ${4 * L.code.length} bytes; the sample: ${raw.length} values)`;
    const rmseCol = site.is_signal; // signals: the error in the data's units; images and features: PSNR
    $("eae-table").innerHTML = L.eae.length
      ? `<tr><th>bits</th><th>.eae bytes</th><th>${rmseCol ? "RMSE" : "PSNR (dB)"}</th></tr>` +
        L.eae.map((row) => `<tr class="${row.bits === this.bits ? "on" : ""}"><td>${row.bits}</td>` +
          `<td data-bits="${row.bits}">${row.stream.length}</td>` +
          `<td>${rmseCol ? row.rmse.toPrecision(3) : fmt(row.psnr)}</td></tr>`).join("")
      : `<tr><td>no codec tables in this bundle</td></tr>`;
    $("download").disabled = !L.eae.length;
    if (site.variational) this.setSliders(L.code);
  }

  download() {
    const row = this.last && this.last.eae.find((r) => r.bits === this.bits);
    if (!row) return;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([row.stream], { type: "application/octet-stream" }));
    a.download = `${this.site.bundle || "sample"}-${row.bits}bit.eae`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  queue(fn) { this.busy = this.busy.then(fn).catch((err) => status(`Error: ${err.message}`, true)); return this.busy; }

  /** Run precision p from now on: its graphs checked and loaded, the last sample again, its self-check. */
  async usePrecision(p) {
    this.precision = p;
    $("precision").value = p;
    status(`Checking and loading the ${p} graphs…`);
    await this.runner.open(p);
    if (this.last) await this.show(Float32Array.from(this.last.raw));
    if (this.site.is_signal) await this.measureWindows();
    await this.selfCheck();
    status(`Ready (${p}).`, !this.check?.ok && !!this.check);
  }

  /** Self-check of the current precision; its verdict goes to the banner. */
  async selfCheck() {
    this.check = await selfCheck(this.site, this.runner, this.precision);
    showCheck(this.check, this.precision);
    return this.check;
  }

  // ---- image input: the drawing pad and the held-out samples (inputs.mjs)
  initImage() {
    $("image-ui").hidden = false;
    const pad = $("pad"), site = this.site, uint8 = this.runner.norm.uint8;
    let pending = false;
    const update = () => { // one queued update at a time, whatever the pointer or keys do meanwhile
      if (pending) return;
      pending = true;
      this.queue(async () => { pending = false; await this.show(padToSample(pad, site.sample_shape, uint8)); });
    };
    $("clear").addEventListener("click", drawingPad(pad, $("pad-cursor"), $("pad-hint"), site.sample_shape[1], update));
    const n = site.samples ? site.samples.shape[0] : 0;
    if (!n) return;
    $("samples-ui").hidden = false;
    sampleStrip($("sample-strip"), $("strip-hint"), n, (canvas, k) => paint(canvas, sampleAt(site, k), site.sample_shape, uint8),
      (k) => this.queue(() => this.show(sampleAt(site, k))));
  }

  // ---- signal windows (C, T): held-out windows in the strip, plots per channel, the table of windows
  initSignal() {
    $("signal-ui").hidden = false;
    const site = this.site, n = site.samples ? site.samples.shape[0] : 0;
    const [C, T] = site.sample_shape;
    $("signal-shape").textContent = `${C} channel${C > 1 ? "s" : ""} x ${T} time steps; ` +
      (n ? "pick a held-out window below." : "this site has no held-out windows (built with --samples 0).");
    if (!n) return;
    $("samples-title").textContent = "Held-out windows";
    $("samples-ui").hidden = false;
    $("windows-ui").hidden = false;
    sampleStrip($("sample-strip"), $("strip-hint"), n, (canvas, k) => {
      canvas.parentElement.classList.add("sig");
      sparkline(canvas, sampleAt(site, k), site.sample_shape);
    }, (k) => this.queue(() => this.showWindow(k)), "held-out window");
  }
  /** Every held-out window through the current precision (signals.measureWindows), then the table. */
  async measureWindows() {
    this.windows = await measureWindows(this.site, this.runner, this.precision);
    this.renderWindows();
    return this.windows;
  }
  renderWindows() {
    if (!this.site.is_signal || !this.windows.length) return;
    windowTable($("windows-table"), this.windows, this.site.codecs, this.bits, this.window, !this.runner.norm.bounded);
    const std = this.runner.norm.bounded ? "" : "; RMSE / std: in the standardized units of each channel";
    $("windows-caption").textContent = `${this.windows.length} held-out windows through the ${this.precision} graphs: ` +
      `bytes of each window's own .eae stream (header included) at every bit depth; RMSE of the reconstruction ` +
      `from the unquantized code, in the data's units${std}.`;
  }

  // ---- tabular input: a form of the features
  initTable() {
    $("table-ui").hidden = false;
    const n = prod(this.site.sample_shape), form = $("features");
    form.innerHTML = Array.from({ length: n }, (_, i) =>
      `<label>f${i}<input type="number" step="any" name="f${i}" value="0"></label>`).join("");
    const pick = $("sample-pick");
    const count = this.site.samples ? this.site.samples.shape[0] : 0;
    pick.innerHTML = Array.from({ length: count }, (_, k) => `<option value="${k}">held-out sample ${k}</option>`).join("");
    pick.parentElement.hidden = !count;
    const fill = (k) => sampleAt(this.site, k).forEach((v, i) => { form.elements[`f${i}`].value = v; });
    pick.addEventListener("change", () => { fill(+pick.value); this.queue(() => this.show(this.readForm())); });
    form.addEventListener("submit", (ev) => { ev.preventDefault(); this.queue(() => this.show(this.readForm())); });
    if (count) fill(0);
  }
  readForm() {
    const form = $("features");
    return Float32Array.from({ length: prod(this.site.sample_shape) }, (_, i) => parseFloat(form.elements[`f${i}`].value) || 0);
  }

  // ---- VAE: sliders over the first latent dims, and samples from the prior N(0, I)
  initVae() {
    $("vae-ui").hidden = false;
    $("gen-view").hidden = !this.site.is_image; // signals: plots in #gen-plots
    const k = Math.min(6, this.site.code_size), box = $("sliders");
    this.z = new Float32Array(this.site.code_size);
    box.innerHTML = Array.from({ length: k }, (_, i) =>
      `<label>z${i}<input type="range" min="-3" max="3" step="0.05" value="0" data-dim="${i}"></label>`).join("");
    box.addEventListener("input", (ev) => { this.z[+ev.target.dataset.dim] = +ev.target.value; this.generate(); });
    $("prior").addEventListener("click", () => {
      this.z = Float32Array.from(this.z, () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random()));
      this.setSliders(this.z);
    });
    this.generate();
  }
  setSliders(code) {
    this.z = Float32Array.from(code);
    document.querySelectorAll("#sliders input").forEach((el) => { el.value = this.z[+el.dataset.dim]; });
    this.generate();
  }
  generate() {
    this.queue(async () => {
      let d;
      const t = await measure(async () => { d = await this.runner.decode(this.z, this.precision); },
        this.runner.timing.resolution_ms);
      if (this.site.is_image) paint($("gen-view"), d.raw, this.site.sample_shape, this.runner.norm.uint8);
      else if (this.site.is_signal) plotChannels($("gen-plots"), d.raw, null, this.site.sample_shape);
      $("gen-caption").textContent = `decoded in ${fmtMs(t.ms)} ms` + (t.calls > 1 ? ` (mean of ${t.calls} calls)` : "");
    });
  }
}

/** The page's JS API (window.edgeae): what the page does, callable from scripts and tests. */
function api(site, runner, page) {
  const sample = (k) => sampleAt(site, k);
  return {
    site,
    runner,
    page,
    timing: runner.timing,
    quantize, dequantize, compressSymbols, compressCodes, cdfOf, rangeEncode, rangeDecode, crc32,
    /** Raw sample (flat array, raw units) -> Array code. */
    async encode(raw, precision) {
      await page.chosen;
      return Array.from((await runner.encode(raw, precision ?? page.precision)).code);
    },
    /** Code -> {model, raw} reconstruction arrays. */
    async decode(code, precision) {
      await page.chosen;
      const d = await runner.decode(code, precision ?? page.precision);
      return { model: Array.from(d.model), raw: Array.from(d.raw) };
    },
    /** Code -> the bytes of a one-sample .eae stream at `bits`. */
    compress(code, bits = page.bits) {
      const c = page.codec(bits);
      if (!c) throw new Error(`no codec tables for ${bits} bits; have ${site.codecs.map((x) => x.bits)}`);
      return Array.from(compressCodes(c, Float32Array.from(code), 1));
    },
    sample,
    /** Run the page on held-out sample k (as a tap on its thumbnail does). */
    show(k) { return page.queue(() => (site.is_signal ? page.showWindow(k) : page.show(sample(k)))).then(() => page.last); },
    last: () => page.last,
    /** Signal bundles: every held-out window's .eae bytes per bit depth and RMSE, as the table shows them. */
    windows: () => page.queue(() => null).then(() => page.windows),
    setPrecision(p) { page.precision = p; },
    /** n encode calls on held-out sample k, one at a time: per-call milliseconds and summary. */
    async bench(n = 100, k = 0, precision) {
      await page.chosen;
      precision ??= page.precision;
      const x = sample(k), times = [];
      await runner.encode(x, precision); // warm-up
      const t0 = now();
      for (let i = 0; i < n; i++) times.push((await runner.encode(x, precision)).ms);
      const block = (now() - t0) / n; // whole calls, JS side included
      const s = [...times].sort((a, b) => a - b), q = (p) => s[Math.min(n - 1, Math.floor(p * n))];
      return { calls: n, mean_ms: times.reduce((a, b) => a + b, 0) / n, p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99),
        block_mean_ms: block, timer_resolution_ms: runner.timing.resolution_ms, times_ms: times };
    },
    /** The page against the Python runtime's results stored by `edgeae web` (runner.selfCheck). */
    async selfCheck(precision) { await page.chosen; return selfCheck(site, runner, precision ?? page.precision); },
    /** How the precision was chosen: {source: url | single | measured | stored | override, choice, rows, ...}. */
    choice: () => page.choice,
    /** Time every precision again (interleaved blocks), choose and remember, as "Measure again" does. */
    measure() { return page.queue(() => choosePrecision(page, true)).then(() => page.choice); },
  };
}

// ---- the precision for this device (runner.mjs: measureBlocks, decide; docs/web.md)
/** localStorage, or a stand-in that forgets where the browser refuses storage. */
function storage() {
  try {
    if (globalThis.localStorage) return globalThis.localStorage;
  } catch { /* storage disabled, or a sandboxed frame */ }
  const m = new Map();
  return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v) };
}

async function choiceKey(page) {
  page.key ??= await storageKey(deviceOf(navigator, page.site.ort.version), page.site, sha256Hex);
  return page.key;
}

/** Every precision of the site timed here, in interleaved blocks of encode + decode calls on one
 *  held-out sample; only precisions whose self-check passed (or that have none) may win. */
async function measurePrecisions(page) {
  const { site, runner } = page, eligible = [];
  for (const p of site.precisions) {
    await runner.open(p);
    const c = p === page.precision && page.check ? page.check : await selfCheck(site, runner, p);
    if (!c || c.ok) eligible.push(p);
  }
  const x = site.samples ? sampleAt(site, 0) : new Float32Array(runner.size);
  const runners = Object.fromEntries(site.precisions.map((p) => [p, async () => {
    await runner.decode((await runner.encode(x, p)).code, p);
  }]));
  const measured = await measureBlocks(runners, { resolution: runner.timing.resolution_ms });
  const d = decide(measured, site.precisions[0], { eligible });
  const each = (f) => Object.fromEntries(Object.entries(measured).map(([p, m]) => [p, f(m)]));
  return { choice: d.choice, measured_choice: d.choice, base: d.base, why: d.why, rows: d.rows, eligible,
    rounds: ROUNDS, rounds_ms: each((m) => m.rounds_ms), calls_per_block: each((m) => m.calls_per_block),
    device: deviceOf(navigator, site.ort.version), measured_at: new Date().toISOString(), override: false };
}

/** The precision to run, and why: the address's ?precision=, else the choice remembered for this
 *  device and bundle, else measured now. `force` (Measure again): measure whatever was remembered. */
async function choosePrecision(page, force = false) {
  const { site } = page, asked = new URLSearchParams(location.search).get("precision");
  let rec;
  if (!force && site.precisions.includes(asked)) rec = { choice: asked, source: "url" };
  else if (site.precisions.length < 2) rec = { choice: site.precisions[0], source: "single" };
  else {
    const key = await choiceKey(page), stored = force ? null : recall(storage(), key, site);
    if (stored) rec = { ...stored, source: stored.override ? "override" : "stored" };
    else {
      $("speed-ui").hidden = false;
      $("speed").textContent = `Timing ${site.precisions.join(", ")} on this device…`;
      $("speed-table").innerHTML = "";
      rec = await measurePrecisions(page);
      remember(storage(), key, rec);
      rec = { ...rec, source: "measured" };
    }
  }
  page.choice = rec;
  if (rec.choice !== page.precision) await page.usePrecision(rec.choice);
  showChoice(page);
  return rec;
}

/** The user picked precision p: it stays picked on this device for this bundle. */
async function overridePrecision(page, p) {
  if (page.site.precisions.length < 2) return;
  const { source, ...rec } = { ...(page.choice?.rows ? page.choice : {}), choice: p, override: true };
  remember(storage(), await choiceKey(page), rec);
  page.choice = { ...rec, source: "override" };
  showChoice(page);
}

const span = (lo, hi, f) => (lo === null || lo === undefined ? "" : ` [${f(lo)}–${f(hi)}]`);

/** What was measured, the precision running, and why. */
function showChoice(page) {
  const c = page.choice, box = $("speed-ui");
  document.body.dataset.choice = c.source;
  box.hidden = c.source === "single";
  const rows = Object.entries(c.rows || {});
  $("speed-table").innerHTML = !rows.length ? "" : `<tr><th>precision</th><th>ms per encode + decode</th>` +
    `<th>speed-up vs ${c.base}</th></tr>` + rows.map(([p, r]) => `<tr class="${p === c.choice ? "on" : ""}" ` +
      `data-precision="${p}"><td>${p}${r.eligible ? "" : " (self-check failed)"}</td><td>${fmtMs(r.ms)}` +
      `${span(r.lo, r.hi, fmtMs)}</td><td>${p === c.base ? "default" : r.ratio === undefined ? "–"
        : `${fmt(r.ratio)}x${span(r.ratio_lo, r.ratio_hi, fmt)}`}</td></tr>`).join("");
  const how = `${c.rounds} rounds of interleaved blocks of encode + decode calls (onnxruntime-web, WASM, one thread); ` +
    `medians with 95% intervals. Another precision replaces ${c.base} only when its whole speed-up interval lies ` +
    `above 1.05 and its interval of ms per call does not overlap ${c.base}'s.`;
  const when = c.source === "measured" ? "Timed just now" : `Timed on ${String(c.measured_at).slice(0, 10)} and ` +
    "remembered for this device and bundle";
  $("speed").textContent = c.source === "url"
    ? `Running ${c.choice}: set by this page's address (?precision=${c.choice}); nothing was timed.`
    : c.source === "override"
      ? `Running ${c.choice}: your choice, remembered for this device and bundle` +
        (c.measured_choice ? ` (the timing below picked ${c.measured_choice}: ${c.why}).` : ".") +
        " Measure again to let the timing choose."
      : `Running ${c.choice}: ${c.why}. ${when}: ${how}`;
}

async function loadSite() {
  const res = await fetch("site.json").catch((err) => { throw new Error(`could not read site.json (${err.message})`); });
  if (!res.ok) throw new Error(`site.json: the server answered ${res.status}; serve the folder edgeae web wrote`);
  try {
    return await res.json();
  } catch (err) {
    throw new Error(`site.json is not valid JSON (${err.message}); rebuild the site with edgeae web`);
  }
}

/** onnxruntime-web from this site's ort/ or the CDN; a failure says how to get it. */
async function loadOrt(site) {
  const url = new URL(site.ort.url + "ort.wasm.min.mjs", location.href).href;
  let ort;
  try {
    ort = await import(url);
  } catch (err) {
    throw new Error(site.ort.source === "cdn"
      ? `could not load onnxruntime-web from ${site.ort.url} (${err.message}). This site was built without --ort-web, ` +
        "so it needs the internet; to work offline, rebuild it with: edgeae web BUNDLE -o SITE --ort-web " +
        "node_modules/onnxruntime-web/dist"
      : `could not load onnxruntime-web from this site's ${site.ort.url} (${err.message}); copy the whole site ` +
        "folder, or rebuild it with edgeae web --ort-web node_modules/onnxruntime-web/dist");
  }
  ort.env.wasm.wasmPaths = new URL(site.ort.url, location.href).href;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  return ort;
}

function controls(site, page) {
  const precSel = $("precision");
  precSel.innerHTML = site.precisions.map((p) => `<option>${p}</option>`).join("");
  precSel.addEventListener("change", () => page.queue(async () => {
    await page.usePrecision(precSel.value);
    await overridePrecision(page, precSel.value);
  }));
  $("remeasure").addEventListener("click", () => page.queue(() => choosePrecision(page, true)));
  const bitsSel = $("bits");
  bitsSel.innerHTML = site.codecs.map((c) => `<option value="${c.bits}">${c.bits} bits</option>`).join("");
  $("bits-label").hidden = !site.codecs.length;
  bitsSel.addEventListener("change", () => {
    page.bits = +bitsSel.value;
    if (page.last) page.render(page.last.raw, { raw: page.runner.norm.denormalize(page.last.x_hat) });
    page.renderWindows();
  });
  $("download").addEventListener("click", () => page.download());
}

async function main() {
  if (location.protocol === "file:") return; // index.html's inline script says how to serve the folder
  const site = await loadSite();
  $("bundle-name").textContent = site.bundle;
  const where = site.ort.source === "cdn" ? `from ${site.ort.url} (a public CDN)` : "from this site";
  $("about").textContent = `${site.kind} bundle · code size ${site.code_size} · onnxruntime-web ${site.ort.version} ` +
    `(WASM, one thread) loaded ${where}.`;
  status(`Loading onnxruntime-web ${where}…`);
  const ort = await loadOrt(site);
  const runner = new Runner(ort, site);
  const page = new Page(site, runner);
  status("Checking the graphs against site.json (SHA-256)…");
  await runner.open(page.precision);
  controls(site, page);
  $("app").hidden = false;
  if (site.is_image) page.initImage(); else if (site.is_signal) page.initSignal(); else page.initTable();
  if (site.variational) page.initVae();
  window.edgeae = api(site, runner, page);
  if (site.samples) {
    const x = sampleAt(site, 0);
    await runner.decode((await runner.encode(x, page.precision)).code, page.precision); // the first, slow call
    if (site.is_signal) {
      await page.measureWindows();
      await page.showWindow(0);
    } else await page.show(x);
  }
  const check = await page.selfCheck();
  const t = runner.timing, p = page.precision;
  const next = site.is_image ? "Draw a digit or tap a sample." : site.is_signal ? "Pick a held-out window."
    : "Edit the features or pick a sample.";
  status(check && !check.ok ? "Self-check FAILED: see the red box; the results below are not trustworthy."
    : `Ready: graphs match site.json (SHA-256); session ${fmt(t.session_ms[p], 1)} ms` +
      (p in t.first_call_ms ? `, first call ${fmtMs(t.first_call_ms[p])} ms. ` : ". ") + next, check && !check.ok);
  document.body.dataset.ready = "1";
  page.chosen = page.queue(() => choosePrecision(page));
}

main().catch((err) => {
  status(`Error: ${err.message}`, true);
  $("app").hidden = true;
  document.body.dataset.error = "1";
  console.error(err);
});
