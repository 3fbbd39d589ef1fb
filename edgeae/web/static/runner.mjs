// runner.mjs: the graphs of one site in onnxruntime-web, checked before they run.
//
//   site.json graph record -> fetch -> size + SHA-256 (Web Crypto, or the fallback below)
//     -> InferenceSession (WASM, one thread)
//   raw sample -> normalize -> encoder -> code;  code -> decoder -> model units -> raw units
//   held-out samples -> encoder -> codes and .eae bytes vs the Python runtime's (selfCheck)
//
// No DOM: Node can import it (the drawing rule inkToSample is tested there). onnxruntime-web
// is passed in (`new Runner(ort, site)`), so this module imports only the coder.

import { compressSymbols, quantize, rint } from "./coder.mjs";

export const prod = (a) => a.reduce((x, y) => x * y, 1);
export const now = () => performance.now();

// ------------------------------------------------------------------ SHA-256
const K = Uint32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
const ror = (x, n) => (x >>> n) | (x << (32 - n));

/** SHA-256 of bytes in plain JS (FIPS 180-4). Web Crypto exists only in secure contexts
 *  (https, localhost): a phone opening http://192.168.x.y:8000 checks the graphs with this. */
export function sha256(bytes) {
  const n = bytes.length, total = ((n + 72) >> 6) << 6;
  const buf = new Uint8Array(total);
  buf.set(bytes);
  buf[n] = 0x80;
  const view = new DataView(buf.buffer);
  view.setUint32(total - 8, Math.floor(n / 2 ** 29));
  view.setUint32(total - 4, (n * 8) >>> 0);
  const H = Uint32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const W = new Uint32Array(64);
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) W[i] = view.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const a = W[i - 15], b = W[i - 2];
      W[i] = W[i - 16] + (ror(a, 7) ^ ror(a, 18) ^ (a >>> 3)) + W[i - 7] + (ror(b, 17) ^ ror(b, 19) ^ (b >>> 10));
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {
      const t1 = (h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      const t2 = ((ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    [a, b, c, d, e, f, g, h].forEach((v, i) => { H[i] += v; });
  }
  const out = new Uint8Array(32);
  H.forEach((v, i) => new DataView(out.buffer).setUint32(4 * i, v));
  return out;
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** Hex SHA-256: Web Crypto where the browser offers it, else the plain-JS digest. */
export async function sha256Hex(bytes) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  return hex(subtle ? new Uint8Array(await subtle.digest("SHA-256", bytes)) : sha256(bytes));
}

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
