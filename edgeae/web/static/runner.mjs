// runner.mjs: the graphs of one site in onnxruntime-web, checked before they run.
//
//   site.json graph record -> fetch -> size + SHA-256 (Web Crypto, or coder.mjs's plain-JS digest)
//     -> InferenceSession (WASM, one thread)
//   raw sample -> normalize -> encoder -> code;  code -> decoder -> model units -> raw units
//   held-out samples -> encoder -> codes and .eae bytes vs the Python runtime's (selfCheck)
//   every precision -> interleaved blocks of calls -> the one to run on this device (decide)
//
// No DOM: Node can import it (the drawing rule inkToSample and the precision choice are tested there). onnxruntime-web
// is passed in (`new Runner(ort, site)`), so this module imports only the coder.

import { compressSymbols, quantize, rint, sha256Hex } from "./coder.mjs";

export const prod = (a) => a.reduce((x, y) => x * y, 1);
export const now = () => performance.now();

/** A graph file of the site, refused unless its size and SHA-256 are the ones in site.json. */
export async function fetchGraph(rec) {
  let res;
  try {
    res = await fetch(rec.file);
  } catch (err) {
    throw new Error(`could not read ${rec.file} (${err.message})`);
  }
  if (!res.ok) throw new Error(`${rec.file}: the server answered ${res.status} ${res.statusText}; serve the whole folder edgeae web wrote`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const got = await sha256Hex(bytes);
  if (got !== rec.sha256) {
    throw new Error(`${rec.file} is not the graph edgeae web wrote: it has ${bytes.length} bytes and SHA-256 ${got.slice(0, 12)}…, ` +
      `site.json expects ${rec.size} bytes and ${rec.sha256.slice(0, 12)}…. It was changed or damaged after the site was ` +
      "built: copy the site again, or rebuild it with edgeae web.");
  }
  return bytes;
}

// ------------------------------------------------------------------ timing
/** The browser's timer step in ms (5 us cross-origin isolated, 100 us otherwise in Chromium). */
export function timerResolution() {
  let best = Infinity;
  for (let k = 0; k < 5; k++) {
    const t0 = now();
    let t1 = now();
    while (t1 === t0) t1 = now();
    best = Math.min(best, t1 - t0);
  }
  return best;
}

/** Per-call ms of `call` (an async function): one call when it spans >= 20 timer steps, else
 *  the mean over as many calls as fill 20 steps (at most 2000), so a coarse timer never reads 0. */
export async function measure(call, resolution) {
  const floor = 20 * resolution;
  let t0 = now();
  await call();
  const once = now() - t0;
  if (once >= floor) return { ms: once, calls: 1 };
  let calls = 0;
  t0 = now();
  do { await call(); calls++; } while (now() - t0 < floor && calls < 2000);
  return { ms: (now() - t0) / calls, calls };
}

// ------------------------------------------------------------------ normalization, samples
/** Normalization of site.json: raw <-> model units, float32 steps as edgeae.runtime.preprocess. */
export class Norm {
  constructor(rec, size) {
    const f = Math.fround;
    const many = rec.offset.length > 1;
    this.offset = Float32Array.from({ length: size }, (_, i) => rec.offset[many ? i : 0]);
    this.scale = Float32Array.from({ length: size }, (_, i) => rec.scale[many ? i : 0]);
    this.inv = this.scale.map((s) => f(1 / s));
    this.identity = rec.mode === "identity" || (!many && rec.offset[0] === 0 && rec.scale[0] === 1);
    this.uint8 = rec.raw_dtype === "uint8";
    this.bounded = rec.mode !== "standardize";
  }
  normalize(raw) {
    const y = Float32Array.from(raw);
    if (!this.identity) for (let i = 0; i < y.length; i++) y[i] = Math.fround(y[i] - this.offset[i]) * this.inv[i];
    return y;
  }
  denormalize(x) {
    const y = Float32Array.from(x);
    if (!this.identity) for (let i = 0; i < y.length; i++) y[i] = Math.fround(y[i] * this.scale[i]) + this.offset[i];
    return this.uint8 ? Uint8Array.from(y, (v) => Math.min(Math.max(rint(v), 0), 255)) : y;
  }
}

export function psnr(a, b, peak) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  const mse = s / a.length;
  return mse > 0 ? 10 * Math.log10((peak * peak) / mse) : Infinity;
}

export function peakOf(norm, x) {
  if (norm.bounded) return 1;
  let lo = Infinity, hi = -Infinity;
  for (const v of x) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  return Math.max(hi - lo, 1e-12);
}

/** Held-out sample k of site.json (flat, raw units). */
export function sampleAt(site, k) {
  const n = prod(site.sample_shape);
  return Float32Array.from(site.samples.data.slice(k * n, (k + 1) * n));
}

/** Ink (PW x PH, 0..1) -> a CHW sample in raw units, the way the training data was made:
 *  crop the ink, keep the aspect, box-filter down; 8x8 (digits-like): fill the frame; larger
 *  (MNIST-like): fit in 20/28 of it and centre the centre of mass. */
export function inkToSample(ink, PW, PH, shape, uint8) {
  const [C, H, W] = shape;
  let x0 = PW, y0 = PH, x1 = -1, y1 = -1;
  for (let i = 0; i < PW * PH; i++) {
    if (ink[i] > 0.05) {
      const x = i % PW, y = (i / PW) | 0;
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    }
  }
  const out = new Float32Array(C * H * W);
  if (x1 < 0) return out;
  const mnist = H >= 16;
  const box = mnist ? (20 / 28) * Math.min(H, W) : Math.min(H, W);
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1, s = box / Math.max(bw, bh); // source px -> target px
  const img = new Float32Array(H * W);
  const ox = (W - bw * s) / 2, oy = (H - bh * s) / 2;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const tx = Math.floor((x - x0) * s + ox), ty = Math.floor((y - y0) * s + oy);
      if (tx >= 0 && tx < W && ty >= 0 && ty < H) img[ty * W + tx] += ink[y * PW + x] * s * s;
    }
  }
  let shiftX = 0, shiftY = 0;
  if (mnist) { // move the centre of mass to the centre, like MNIST
    let m = 0, cx = 0, cy = 0;
    img.forEach((v, i) => { m += v; cx += v * (i % W); cy += v * ((i / W) | 0); });
    shiftX = Math.round((W - 1) / 2 - cx / m);
    shiftY = Math.round((H - 1) / 2 - cy / m);
  }
  const peak = uint8 ? 255 : 1;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const sx = x - shiftX, sy = y - shiftY;
      const v = sx >= 0 && sx < W && sy >= 0 && sy < H ? Math.min(1, img[sy * W + sx]) : 0;
      for (let c = 0; c < C; c++) out[c * H * W + y * W + x] = uint8 ? Math.round(v * peak) : v * peak;
    }
  }
  return out;
}

// ------------------------------------------------------------------ the runner
export class Runner {
  constructor(ort, site) {
    this.ort = ort;
    this.site = site;
    this.shape = site.sample_shape;
    this.size = prod(site.sample_shape);
    this.norm = new Norm(site.normalization, this.size);
    this.sessions = {};
    this.timing = { verify_ms: {}, session_ms: {}, first_call_ms: {}, resolution_ms: timerResolution() };
  }
  /** Sessions of one precision; every graph is hash-checked before onnxruntime-web sees it. */
  async open(precision) {
    if (!this.sessions[precision]) {
      const g = this.site.graphs[precision];
      if (!g) throw new Error(`precision ${precision} is not on this page; have ${this.site.precisions}`);
      let t0 = now();
      const bytes = [await fetchGraph(g.encoder), await fetchGraph(g.decoder)];
      this.timing.verify_ms[precision] = now() - t0;
      t0 = now();
      const [enc, dec] = [await this.session(g.encoder, bytes[0]), await this.session(g.decoder, bytes[1])];
      this.timing.session_ms[precision] = now() - t0;
      this.sessions[precision] = { g, enc, dec, calls: 0 };
    }
    return this.sessions[precision];
  }
  async session(rec, bytes) {
    try {
      return await this.ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    } catch (err) {
      const why = String(err.message || err).replace(/\s+/g, " ").slice(0, 300);
      throw new Error(`${rec.file}: onnxruntime-web ${this.site.ort.version} cannot load it (${why}); rebuild the site with edgeae web`);
    }
  }
  tensor(spec, data, shape) {
    if (spec.input_dtype === "uint8") return new this.ort.Tensor("uint8", Uint8Array.from(data, (v) => rint(v)), shape);
    return new this.ort.Tensor("float32", Float32Array.from(data), shape);
  }
  /** One raw sample (raw units, flat) -> Float32Array code. */
  async encode(raw, precision) {
    const s = await this.open(precision);
    if (raw.length !== this.size) throw new Error(`sample has ${raw.length} values; expected ${this.size}`);
    const spec = s.g.encoder;
    const feed = spec.raw_io ? raw : (this.norm.uint8 || !this.norm.bounded ? this.norm.normalize(raw) : raw);
    const t0 = now();
    const out = await s.enc.run({ [spec.input]: this.tensor(spec, feed, [1, ...this.shape]) }, [spec.output]);
    const ms = now() - t0;
    if (s.calls++ === 0) this.timing.first_call_ms[precision] = ms;
    return { code: Float32Array.from(out[spec.output].data), ms };
  }
  /** One code -> reconstruction in model units and raw units. */
  async decode(code, precision) {
    const s = await this.open(precision);
    const spec = s.g.decoder;
    const t0 = now();
    const out = await s.dec.run({ [spec.input]: new this.ort.Tensor("float32", Float32Array.from(code), [1, code.length]) },
      [spec.output]);
    const ms = now() - t0;
    const y = out[spec.output].data;
    if (spec.raw_io) return { model: this.norm.normalize(y), raw: Uint8Array.from(y), ms };
    const model = Float32Array.from(y);
    return { model, raw: this.norm.denormalize(model), ms };
  }
  modelUnits(raw, precision) {
    const spec = this.site.graphs[precision].encoder;
    return this.norm.uint8 || !this.norm.bounded || spec.raw_io ? this.norm.normalize(raw) : Float32Array.from(raw);
  }
}

// ------------------------------------------------------------------ the self-check
const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
const unbase64 = (s) => Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));

/** The page against the Python runtime on the held-out samples stored by `edgeae web`.
 *  Codes: the page's encoder against Python's, within site.json's code_tol. Streams: the page's
 *  own codes through the page's coder against Python's bytes; where a code sits on a bin edge
 *  the symbols (and so the bytes) may move, which is counted, not failed; equal symbols with
 *  other bytes fail. Coder: Python's codes through the page's coder must give Python's bytes. */
export async function selfCheck(site, runner, precision) {
  const ref = site.reference[precision];
  if (!ref) return null;
  let maxDiff = 0, equal = 0, moved = 0, wrong = 0, coder = 0, total = 0;
  for (let k = 0; k < ref.codes.length; k++) {
    const code = (await runner.encode(sampleAt(site, k), precision)).code;
    code.forEach((v, i) => { maxDiff = Math.max(maxDiff, Math.abs(v - ref.codes[k][i])); });
    if (code.some((v) => !Number.isFinite(v))) maxDiff = Infinity;
    for (const c of site.codecs) {
      const want = unbase64(ref.eae[c.bits][k]);
      const mine = quantize(c, code), theirs = quantize(c, Float64Array.from(ref.codes[k]));
      total++;
      if (same(compressSymbols(c, mine, 1), want)) equal++;
      else if (same(mine, theirs)) wrong++;
      else moved++;
      if (same(compressSymbols(c, theirs, 1), want)) coder++;
    }
  }
  const ok = maxDiff <= ref.code_tol && wrong === 0 && coder === total;
  return { precision, samples: ref.codes.length, max_code_diff: maxDiff, code_tol: ref.code_tol, eae_equal: equal,
    eae_moved: moved, eae_wrong: wrong, coder_equal: coder, eae_total: total, ok };
}

// ------------------------------------------------------------------ precision choice
// Which precision runs fastest on this device, measured here (docs/web.md, "Precision on this
// device"), by the method of edgeae/bench/timing.py:
//   every precision the site offers -> interleaved blocks of encode + decode calls, 12 rounds
//     (each round runs a block of every variant, the first one rotating, so the browser's and
//     the machine's noise hits all of them alike) -> per round, each variant's ms per call
//   -> decide(): the default, unless another variant is resolvably more than 5% faster
//   -> remembered per device and bundle (localStorage) until the user overrides or re-measures
// The clock, the storage and the digest are passed in: Node runs these on fake ones.

export const ROUNDS = 12; // as bench.timing.ROUNDS: a 95% interval of the median between the 3rd and 10th values
export const MIN_GAIN = 0.05; // as bench.report: a gain within the method's 5% never picks a variant
export const LEVEL = 0.95;
export const SUB_STEPS = 20; // a timed stretch spans at least 20 timer steps (runner.measure's rule)
export const MIN_STRETCHES = 3; // a block's figure is the median of at least 3 stretches
export const WARMUP_PASSES = 5;
export const STORE_PREFIX = "edgeae.precision.v1:";

/** Runner indices per round, the first one rotating ([[0, 1, 2], [1, 2, 0], [2, 0, 1], ...]). */
export function blockOrder(n, rounds) {
  return Array.from({ length: rounds }, (_, r) => Array.from({ length: n }, (_, i) => (r + i) % n));
}

export function median(values) {
  const v = [...values].sort((a, b) => a - b), n = v.length;
  if (!n) return NaN;
  return n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

function binom(n, k) {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c;
}

/** Median and its distribution-free interval (order statistics of the sign test), as
 *  bench.timing.median_ci: lo/hi are null when there are too few values for the level. */
export function medianCI(values, level = LEVEL) {
  const v = [...values].sort((a, b) => a - b), n = v.length;
  if (!n) return { median: NaN, lo: null, hi: null };
  let k = 0, tail = 0;
  while (k < Math.floor(n / 2)) {
    tail += binom(n, k) / 2 ** n;
    if (tail > (1 - level) / 2) break;
    k++;
  }
  if (k === 0) return { median: median(v), lo: null, hi: null };
  return { median: median(v), lo: v[k - 1], hi: v[n - k] };
}

/** How many times faster `fast` ran than `slow`, round by round (both lists: ms per call in
 *  each round; the blocks of one round are adjacent in time, so the machine's state cancels). */
export function pairedRatio(slow, fast, level = LEVEL) {
  if (!slow || !fast || !slow.length || slow.length !== fast.length) return null;
  const { median: ratio, lo, hi } = medianCI(slow.map((s, i) => s / fast[i]), level);
  const resolved = lo !== null && (lo > 1 || hi < 1);
  return { ratio, lo, hi, rounds: slow.length, resolved, faster: resolved && lo > 1 };
}

/**
 * The precision to run: `base` (the site's default) unless another eligible precision is
 * resolvably faster: its paired ratio against `base` lies wholly above 1 + minGain, and its
 * own interval of ms per call lies wholly below base's (the two intervals do not overlap).
 * Among those, the highest median ratio. `measured`: {precision: {rounds_ms: [...]}};
 * `eligible`: the precisions allowed to win (the self-check passed); base always is.
 * Returns {choice, base, rows: {p: {ms, lo, hi, ratio, ratio_lo, ratio_hi, eligible, faster}}, why}.
 */
export function decide(measured, base, { minGain = MIN_GAIN, eligible = null, level = LEVEL } = {}) {
  const rows = {};
  for (const [p, m] of Object.entries(measured)) {
    const ci = medianCI(m.rounds_ms, level);
    rows[p] = { ms: ci.median, lo: ci.lo, hi: ci.hi, eligible: p === base || !eligible || eligible.includes(p) };
  }
  const b = rows[base];
  if (!b) throw new Error(`the default precision ${base} was not measured`);
  let choice = base, best = null;
  for (const [p, row] of Object.entries(rows)) {
    if (p === base) continue;
    const cmp = pairedRatio(measured[base].rounds_ms, measured[p].rounds_ms, level);
    Object.assign(row, cmp ? { ratio: cmp.ratio, ratio_lo: cmp.lo, ratio_hi: cmp.hi } : {});
    const apart = row.hi !== null && b.lo !== null && row.hi < b.lo;
    row.faster = !!cmp && cmp.lo !== null && cmp.lo > 1 + minGain && apart;
    if (row.faster && row.eligible && (best === null || cmp.ratio > best.ratio)) { choice = p; best = cmp; }
  }
  const why = best
    ? `${choice} is ${best.ratio.toFixed(2)}x ${base} [${best.lo.toFixed(2)}–${best.hi.toFixed(2)}] on this device`
    : `no other precision is resolvably more than ${Math.round(minGain * 100)}% faster than ${base} on this device`;
  return { choice, base, rows, why };
}

/** Calls of one runner per timed stretch, and stretches per block, for a block of `blockMs`. */
export function blockPlan(callMs, resolution, blockMs) {
  const perStretch = Math.max(1, Math.ceil((SUB_STEPS * resolution) / Math.max(callMs, 1e-6)));
  const stretches = Math.floor(blockMs / (perStretch * Math.max(callMs, 1e-6)));
  return { perStretch, stretches: Math.min(Math.max(stretches, MIN_STRETCHES), 50) };
}

/**
 * Time `runners` ({name: async () => ...}) in interleaved blocks: `rounds` rounds, each with
 * one block of every runner (first one rotating). A block makes one untimed call (the
 * variant's weights come back into cache), then 3 to 50 timed stretches of `perStretch` calls
 * each (a stretch spans >= 20 timer steps, so a coarse browser timer never reads 0); the
 * block's figure is the median stretch's ms per call. `durationMs` is shared equally by the blocks.
 * Returns {name: {rounds_ms, calls_per_block}}.
 */
export async function measureBlocks(runners, { rounds = ROUNDS, durationMs = 1500, resolution = 0.1,
  clock = () => performance.now() } = {}) {
  const names = Object.keys(runners), plans = {};
  for (const name of names) { // warm-up: one call, then the cost of a call over >= 20 timer steps, five
    await runners[name](); //    times; the least plans the blocks (first calls and pauses are slow)
    let callMs = Infinity;
    for (let pass = 0; pass < WARMUP_PASSES; pass++) {
      let calls = 0;
      const t0 = clock();
      do { await runners[name](); calls++; } while (clock() - t0 < SUB_STEPS * resolution && calls < 10000);
      callMs = Math.min(callMs, (clock() - t0) / calls);
    }
    plans[name] = blockPlan(callMs, resolution, durationMs / (rounds * names.length));
  }
  const out = Object.fromEntries(names.map((n) => [n, { rounds_ms: [], calls_per_block: 0 }]));
  for (const order of blockOrder(names.length, rounds)) {
    for (const i of order) {
      const name = names[i], run = runners[name], { perStretch, stretches } = plans[name], per = [];
      await run();
      for (let s = 0; s < stretches; s++) {
        const t0 = clock();
        for (let c = 0; c < perStretch; c++) await run();
        per.push((clock() - t0) / perStretch);
      }
      out[name].rounds_ms.push(median(per));
      out[name].calls_per_block = perStretch * stretches;
    }
  }
  return out;
}

/** The device as far as a page can tell: browser, its version, cores; with the runtime's version. */
export function deviceOf(nav, ortVersion) {
  return `${nav.userAgent || "unknown browser"} | ${nav.hardwareConcurrency || "?"} cores | onnxruntime-web ${ortVersion}`;
}

/** What identifies the graphs the page runs: every graph file's SHA-256, by precision and role. */
export function bundleText(site) {
  return Object.keys(site.graphs).sort().map((p) =>
    ["encoder", "decoder"].map((role) => `${p}:${role}:${site.graphs[p][role].sha256}`).join("\n")).join("\n");
}

/** The storage key of one device and bundle: a digest of both (`digest`: text -> hex). */
export async function storageKey(device, site, digest) {
  return STORE_PREFIX + (await digest(new TextEncoder().encode(`${device}\n${bundleText(site)}`)));
}

/** A remembered choice, or null when none is stored or it no longer fits the site. */
export function recall(storage, key, site) {
  let rec = null;
  try {
    rec = JSON.parse(storage.getItem(key) || "null");
  } catch {
    return null; // storage refused (private mode) or a damaged record: measure again
  }
  return rec && typeof rec === "object" && site.precisions.includes(rec.choice) ? rec : null;
}

/** Store a choice record; a storage that refuses (quota, private mode) only costs a re-measure. */
export function remember(storage, key, rec) {
  try {
    storage.setItem(key, JSON.stringify(rec));
    return true;
  } catch {
    return false;
  }
}
