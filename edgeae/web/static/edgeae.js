// edgeae.js: the page of one edgeae bundle, its JS API and the .eae entropy coder.
//
// One ES module, no framework, no build step. The page reads site.json (written by
// `edgeae web`), loads onnxruntime-web (WASM, one thread), and runs:
//
//   raw sample -> normalize -> encoder.onnx -> code -> quantize -> range coder -> .eae bytes
//                                             code -> decoder.onnx -> reconstruction, PSNR
//
// The coder writes the bytes edgeae.runtime.stream writes for the same codes (docs/FORMAT.md):
// the arithmetic of constriction 0.5's RangeEncoder (32-bit words, 64-bit state) with
// Categorical models quantized to 24-bit CDFs, reproduced in exact integer (BigInt) steps.
// In Node (no `document`) the module only exports the coder, so it can be tested without a browser.

// ------------------------------------------------------------------ .eae coder
const M64 = (1n << 64n) - 1n;
const WORD = 1n << 32n;
const MODEL_PRECISION = 24; // constriction's DefaultContiguousCategoricalEntropyModel
const MAX_CHUNK_SYMBOLS = 1 << 18; // a writer splits larger inputs (FORMAT.md)
const TRIM_TRIES = 7; // tail bytes the writer tries to drop from each payload

/** Integer table (sums to 2**precision) -> constriction's 24-bit CDF (length L + 1).
 *  cdf[i] = floor(C_i * (2^24 - L) / 2^precision) + i, C_i = freqs[0] + ... + freqs[i-1];
 *  exact in doubles because C_i * (2^24 - L) < 2^48. */
export function cdfOf(freqs, precision) {
  const L = freqs.length, free = 2 ** MODEL_PRECISION - L, div = 2 ** precision;
  const cdf = new Array(L + 1);
  let c = 0;
  for (let i = 0; i < L; i++) {
    cdf[i] = Math.floor((c * free) / div) + i;
    c += freqs[i];
  }
  cdf[L] = 2 ** MODEL_PRECISION;
  return cdf;
}

function wordsToBytes(words) {
  const out = new Uint8Array(4 * words.length);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setUint32(4 * i, Number(w), true));
  return out;
}

/** Symbols q (Int32Array, n x D sample-major) -> the coder's sealed words as bytes.
 *  Dimension-major order: all n symbols of dim 0 with cdfs[0], then dim 1, ... */
export function rangeEncode(q, n, D, cdfs) {
  let lower = 0n, range = M64, inverted = 0, first = 0n;
  const words = [];
  for (let d = 0; d < D; d++) {
    const cdf = cdfs[d];
    for (let i = 0; i < n; i++) {
      const s = q[i * D + d];
      const scale = range >> 24n;
      range = scale * BigInt(cdf[s + 1] - cdf[s]);
      const newLower = (lower + scale * BigInt(cdf[s])) & M64;
      if (inverted && ((newLower + range) & M64) > newLower) { // carry resolved: flush
        const wrapped = newLower < lower;
        words.push(wrapped ? (first + 1n) & 0xffffffffn : first);
        for (let k = 1; k < inverted; k++) words.push(wrapped ? 0n : 0xffffffffn);
        inverted = 0;
      }
      lower = newLower;
      if (range < WORD) { // renormalize: emit the top word of lower
        range <<= 32n;
        const top = lower >> 32n;
        lower = (lower << 32n) & M64;
        if (inverted) inverted++;
        else if (((lower + range) & M64) > lower) words.push(top);
        else { inverted = 1; first = top; }
      }
    }
  }
  if (range === M64) return new Uint8Array(0); // nothing encoded: no words
  const point = (lower + WORD - 1n) & M64; // seal: the shortest point inside [lower, lower + range)
  if (inverted) {
    const up = point >= lower;
    words.push(up ? first : (first + 1n) & 0xffffffffn);
    for (let k = 1; k < inverted; k++) words.push(up ? 0xffffffffn : 0n);
  }
  words.push(point >> 32n);
  if (((lower + range) & M64) >> 32n === point >> 32n) words.push(0n);
  return wordsToBytes(words);
}

/** Payload bytes -> Int32Array (n x D) symbols, or null where constriction refuses the data.
 *  The payload is zero-padded to a multiple of 4 plus 8 bytes, as edgeae's reader does. */
export function rangeDecode(bytes, n, D, cdfs) {
  const buf = new Uint8Array(bytes.length + ((4 - (bytes.length % 4)) % 4) + 8);
  buf.set(bytes);
  const view = new DataView(buf.buffer);
  const nWords = buf.length / 4;
  let pos = 2;
  let point = (BigInt(view.getUint32(0, true)) << 32n) | BigInt(view.getUint32(4, true));
  let lower = 0n, range = M64;
  const out = new Int32Array(n * D);
  for (let d = 0; d < D; d++) {
    const cdf = cdfs[d], L = cdf.length - 1;
    for (let i = 0; i < n; i++) {
      const scale = range >> 24n;
      const quantile = ((point - lower) & M64) / scale;
      if (quantile >= 1n << 24n) return null;
      const qn = Number(quantile);
      let a = 0, b = L - 1; // largest s with cdf[s] <= qn
      while (a < b) {
        const m = (a + b + 1) >> 1;
        if (cdf[m] <= qn) a = m; else b = m - 1;
      }
      lower = (lower + scale * BigInt(cdf[a])) & M64;
      range = scale * BigInt(cdf[a + 1] - cdf[a]);
      if (range < WORD) {
        lower = (lower << 32n) & M64;
        range <<= 32n;
        point = (point << 32n) & M64;
        if (pos < nWords) point |= BigInt(view.getUint32(4 * pos++, true));
      }
      out[i * D + d] = a;
    }
  }
  return out;
}

/** The shortest payload that decodes back to q: edgeae's writer drops up to 7 tail bytes
 *  (first trying the last kept byte + 1), checking each candidate by decoding. */
export function encodePayload(q, n, D, cdfs) {
  const full = rangeEncode(q, n, D, cdfs);
  const same = (dec) => dec !== null && dec.every((v, i) => v === q[i]);
  for (let k = Math.min(TRIM_TRIES, full.length); k > 0; k--) {
    const head = full.slice(0, full.length - k);
    const cands = [head];
    if (head.length && head[head.length - 1] !== 0xff) {
      const up = head.slice();
      up[up.length - 1] += 1;
      cands.unshift(up);
    }
    for (const cand of cands) if (same(rangeDecode(cand, n, D, cdfs))) return cand;
  }
  return full;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32 as zlib.crc32(bytes, seed). */
export function crc32(bytes, seed = 0) {
  let c = (seed ^ 0xffffffff) >>> 0;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Unsigned LEB128. */
export function varint(value) {
  const out = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return out;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function rint(x) { // numpy's rint: halves go to the even neighbour
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** Codes (n x D floats) -> Int32Array symbols, as LatentCodec.quantize (float64 arithmetic). */
export function quantize(codec, codes) {
  const D = codec.lo.length, top = 2 ** codec.bits - 1, q = new Int32Array(codes.length);
  for (let j = 0; j < codes.length; j++) {
    const d = j % D, lo = codec.lo[d], step = (codec.hi[d] - lo) / top;
    q[j] = step > 0 ? Math.min(Math.max(rint((codes[j] - lo) / step), 0), top) : 0;
  }
  return q;
}

/** Symbols -> float32 codes at the bin centres lo + q * step. */
export function dequantize(codec, q) {
  const D = codec.lo.length, top = 2 ** codec.bits - 1, out = new Float32Array(q.length);
  for (let j = 0; j < q.length; j++) {
    const d = j % D;
    out[j] = codec.lo[d] + q[j] * ((codec.hi[d] - codec.lo[d]) / top);
  }
  return out;
}

function cdfsOf(codec) {
  if (!codec._cdfs) codec._cdfs = codec.freqs.map((row) => cdfOf(row, codec.precision));
  return codec._cdfs;
}

/** Symbols of n samples -> a whole .eae stream (header + chunks) for this codec record. */
export function compressSymbols(codec, q, n) {
  const D = codec.lo.length;
  const id = codec.model_id.match(/../g).map((h) => parseInt(h, 16));
  const header = Uint8Array.from([0x45, 0x41, 1, ...id, ...varint(D)]);
  const seed = crc32(header);
  const parts = [header], per = Math.max(1, Math.floor(MAX_CHUNK_SYMBOLS / D));
  for (let s = 0; s < n; s += per) {
    const m = Math.min(per, n - s);
    const payload = encodePayload(q.subarray(s * D, (s + m) * D), m, D, cdfsOf(codec));
    const body = concat([Uint8Array.from([...varint(m), ...varint(payload.length)]), payload]);
    const crc = crc32(body, seed);
    parts.push(body, Uint8Array.from([crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24]));
  }
  return concat(parts);
}

/** Float codes of n samples -> a .eae stream (quantized with the codec first). */
export function compressCodes(codec, codes, n) {
  return compressSymbols(codec, quantize(codec, codes), n);
}

// ------------------------------------------------------------------ model runner
const prod = (a) => a.reduce((x, y) => x * y, 1);
const now = () => performance.now();

/** Normalization of site.json: raw <-> model units, float32 steps as edgeae.runtime.preprocess. */
class Norm {
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

function psnr(a, b, peak) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  const mse = s / a.length;
  return mse > 0 ? 10 * Math.log10((peak * peak) / mse) : Infinity;
}

function peakOf(norm, x) {
  if (norm.bounded) return 1;
  let lo = Infinity, hi = -Infinity;
  for (const v of x) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  return Math.max(hi - lo, 1e-12);
}

class Runner {
  constructor(ort, site) {
    this.ort = ort;
    this.site = site;
    this.shape = site.sample_shape;
    this.size = prod(site.sample_shape);
    this.norm = new Norm(site.normalization, this.size);
    this.sessions = {};
    this.timing = { session_ms: {}, first_call_ms: {} };
  }
  async open(precision) {
    if (!this.sessions[precision]) {
      const g = this.site.graphs[precision];
      if (!g) throw new Error(`precision ${precision} is not on this page; have ${this.site.precisions}`);
      const opts = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
      const t0 = now();
      const enc = await this.ort.InferenceSession.create(g.encoder.file, opts);
      const dec = await this.ort.InferenceSession.create(g.decoder.file, opts);
      this.timing.session_ms[precision] = now() - t0;
      this.sessions[precision] = { g, enc, dec, calls: 0 };
    }
    return this.sessions[precision];
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

// ------------------------------------------------------------------ the page
const $ = (id) => document.getElementById(id);
const fmt = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : "∞");

function sampleAt(site, k) {
  const n = prod(site.sample_shape);
  return site.samples.data.slice(k * n, (k + 1) * n);
}

/** Draw a CHW sample (raw units) onto a canvas at its own resolution (CSS scales it). */
function paint(canvas, raw, shape, uint8) {
  const [C, H, W] = shape.length === 3 ? shape : [1, 1, shape[0]];
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(W, H);
  const k = uint8 ? 1 : 255;
  for (let p = 0; p < H * W; p++) {
    for (let c = 0; c < 3; c++) img.data[4 * p + c] = Math.min(255, Math.max(0, raw[(C === 3 ? c : 0) * H * W + p] * k));
    img.data[4 * p + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function barChart(canvas, code, ref) {
  const w = (canvas.width = canvas.clientWidth * devicePixelRatio || 320);
  const h = (canvas.height = 120 * devicePixelRatio);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  const m = Math.max(1e-6, ...Array.from(code, Math.abs), ...(ref ? Array.from(ref, Math.abs) : []));
  const bw = w / code.length;
  ctx.fillStyle = "#d0d7de";
  ctx.fillRect(0, h / 2, w, 1);
  code.forEach((v, i) => {
    ctx.fillStyle = v >= 0 ? "#0969da" : "#cf222e";
    const y = (v / m) * (h / 2 - 2);
    ctx.fillRect(i * bw + 1, v >= 0 ? h / 2 - y : h / 2, Math.max(1, bw - 2), Math.abs(y));
  });
}

/** Drawn strokes -> a sample like the training data: crop the ink, keep the aspect, box-filter
 *  down; 8x8 (digits-like): fill the frame; larger (MNIST-like): fit in 20/28 of it and centre
 *  the centre of mass. Returns raw values (0..255 for uint8 data, else 0..1). */
function padToSample(pad, shape, uint8) {
  const { width: PW, height: PH } = pad;
  const px = pad.getContext("2d").getImageData(0, 0, PW, PH).data;
  return inkToSample(Float32Array.from({ length: PW * PH }, (_, i) => px[4 * i] / 255), PW, PH, shape, uint8);
}

/** Ink (PW x PH, 0..1) -> a CHW sample in raw units; the rule of padToSample. */
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

class Page {
  constructor(site, runner) {
    this.site = site;
    this.runner = runner;
    this.precision = site.precisions[0];
    this.bits = site.codecs.length ? site.codecs[0].bits : null;
    this.last = null;
    this.busy = Promise.resolve();
  }

  codec(bits) { return this.site.codecs.find((c) => c.bits === bits); }

  /** The whole pipeline for one raw sample; updates every view. */
  async show(raw) {
    const r = this.runner, site = this.site;
    const e = await r.encode(raw, this.precision);
    const d = await r.decode(e.code, this.precision);
    const x = r.modelUnits(raw, this.precision);
    const peak = peakOf(r.norm, x);
    const t0 = now();
    const eae = site.codecs.map((c) => {
      const q = quantize(c, e.code);
      return { bits: c.bits, stream: compressSymbols(c, q, 1), code_hat: dequantize(c, q) };
    });
    const coderMs = now() - t0;
    for (const row of eae) row.psnr = psnr(x, (await r.decode(row.code_hat, this.precision)).model, peak);
    this.last = { raw: Array.from(raw), code: Array.from(e.code), x_hat: Array.from(d.model),
      psnr: psnr(x, d.model, peak), encode_ms: e.ms, decode_ms: d.ms, coder_ms: coderMs,
      bytes: Object.fromEntries(eae.map((row) => [row.bits, row.stream.length])), eae };
    this.render(raw, d);
    return this.last;
  }

  render(raw, d) {
    const L = this.last, site = this.site, uint8 = this.runner.norm.uint8;
    if (site.is_image) {
      paint($("input-view"), raw, site.sample_shape, uint8);
      paint($("recon-view"), d.raw, site.sample_shape, uint8);
    } else {
      const rows = Array.from(raw, (v, i) => `<tr><td>f${i}</td><td>${fmt(v, 3)}</td><td>${fmt(d.raw[i], 3)}</td></tr>`);
      $("recon-table").innerHTML = `<tr><th>feature</th><th>input</th><th>reconstruction</th></tr>${rows.join("")}`;
    }
    $("quality").textContent = `PSNR ${fmt(L.psnr)} dB`;
    $("latency").textContent = `encode ${fmt(L.encode_ms)} ms · decode ${fmt(L.decode_ms)} ms · entropy coder ${fmt(L.coder_ms)} ms`;
    barChart($("code-chart"), L.code);
    $("code-caption").textContent = `${L.code.length} numbers (float32: ${4 * L.code.length} bytes; the sample: ${raw.length} values)`;
    $("eae-table").innerHTML = L.eae.length
      ? `<tr><th>bits</th><th>.eae bytes</th><th>PSNR (dB)</th></tr>` +
        L.eae.map((row) => `<tr class="${row.bits === this.bits ? "on" : ""}"><td>${row.bits}</td>` +
          `<td data-bits="${row.bits}">${row.stream.length}</td><td>${fmt(row.psnr)}</td></tr>`).join("")
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

  // ---- image input: a drawing pad and held-out samples
  initImage() {
    $("image-ui").hidden = false;
    $("samples-ui").hidden = false;
    const pad = $("pad"), ctx = pad.getContext("2d");
    const hint = $("pad-hint");
    const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height); hint.hidden = false; };
    clear();
    const [, H] = this.site.sample_shape;
    ctx.strokeStyle = "#fff";
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.lineWidth = pad.width * (H >= 16 ? 0.07 : 0.13); // strokes about as thick as the training digits
    let drawing = false, pending = false;
    const at = (ev) => {
      const b = pad.getBoundingClientRect();
      return [((ev.clientX - b.left) * pad.width) / b.width, ((ev.clientY - b.top) * pad.height) / b.height];
    };
    const update = () => {
      if (pending) return;
      pending = true;
      this.queue(async () => { pending = false; await this.show(padToSample(pad, this.site.sample_shape, this.runner.norm.uint8)); });
    };
    pad.addEventListener("pointerdown", (ev) => {
      drawing = true;
      hint.hidden = true;
      pad.setPointerCapture(ev.pointerId);
      ctx.beginPath();
      ctx.moveTo(...at(ev));
      ctx.lineTo(...at(ev));
      ctx.stroke();
    });
    pad.addEventListener("pointermove", (ev) => {
      if (!drawing) return;
      ctx.lineTo(...at(ev));
      ctx.stroke();
      update();
    });
    const end = () => { if (drawing) { drawing = false; update(); } };
    pad.addEventListener("pointerup", end);
    pad.addEventListener("pointercancel", end);
    $("clear").addEventListener("click", clear);
    const strip = $("sample-strip");
    const n = this.site.samples ? this.site.samples.shape[0] : 0;
    for (let k = 0; k < n; k++) {
      const c = document.createElement("canvas");
      c.className = "thumb";
      c.title = `held-out sample ${k}`;
      paint(c, sampleAt(this.site, k), this.site.sample_shape, this.runner.norm.uint8);
      c.addEventListener("click", () => this.queue(() => this.show(sampleAt(this.site, k))));
      strip.appendChild(c);
    }
    if (!n) strip.textContent = "this bundle has no held-out samples";
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
    const k = Math.min(6, this.site.code_size), box = $("sliders");
    this.z = new Float32Array(this.site.code_size);
    box.innerHTML = Array.from({ length: k }, (_, i) =>
      `<label>z${i}<input type="range" min="-3" max="3" step="0.05" value="0" data-dim="${i}"></label>`).join("");
    box.addEventListener("input", (ev) => { this.z[+ev.target.dataset.dim] = +ev.target.value; this.generate(); });
    $("prior").addEventListener("click", () => {
      this.z = Float32Array.from(this.z, () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random()));
      this.setSliders(this.z);
      this.generate();
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
      const d = await this.runner.decode(this.z, this.precision);
      if (this.site.is_image) paint($("gen-view"), d.raw, this.site.sample_shape, this.runner.norm.uint8);
      $("gen-caption").textContent = `decoded in ${fmt(d.ms)} ms`;
    });
  }
}

function status(text, bad = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("bad", bad);
}

/** The page's JS API (window.edgeae): what the page does, callable from scripts and tests. */
function api(site, runner, page) {
  const sample = (k) => Float32Array.from(sampleAt(site, k));
  return {
    site,
    runner,
    page,
    timing: runner.timing,
    quantize, dequantize, compressSymbols, compressCodes, cdfOf, rangeEncode, rangeDecode, crc32,
    /** Raw sample (flat array, raw units) -> Array code. */
    async encode(raw, precision = page.precision) { return Array.from((await runner.encode(raw, precision)).code); },
    /** Code -> {model, raw} reconstruction arrays. */
    async decode(code, precision = page.precision) {
      const d = await runner.decode(code, precision);
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
    show(k) { return page.queue(() => page.show(sample(k))).then(() => page.last); },
    last: () => page.last,
    setPrecision(p) { page.precision = p; },
    /** n encode calls on held-out sample k, one at a time: per-call milliseconds and summary. */
    async bench(n = 100, k = 0, precision = page.precision) {
      const x = sample(k), times = [];
      await runner.encode(x, precision); // warm-up
      const t0 = now();
      for (let i = 0; i < n; i++) times.push((await runner.encode(x, precision)).ms);
      const block = (now() - t0) / n; // whole calls, JS side included
      const s = [...times].sort((a, b) => a - b), q = (p) => s[Math.min(n - 1, Math.floor(p * n))];
      return { calls: n, mean_ms: times.reduce((a, b) => a + b, 0) / n, p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99),
        block_mean_ms: block, timer_resolution_ms: crossOriginIsolated ? 0.005 : 0.1, times_ms: times };
    },
    /** The page against the Python runtime's results stored by `edgeae web`. */
    async selfCheck(precision = page.precision) {
      const ref = site.reference[precision];
      if (!ref) return null;
      let maxDiff = 0, equal = 0, total = 0;
      for (let k = 0; k < ref.codes.length; k++) {
        const code = (await runner.encode(sample(k), precision)).code;
        code.forEach((v, i) => { maxDiff = Math.max(maxDiff, Math.abs(v - ref.codes[k][i])); });
        for (const c of site.codecs) { // the Python bytes of the Python code: the coder alone
          const want = atob(ref.eae[c.bits][k]);
          const got = compressCodes(c, Float32Array.from(ref.codes[k]), 1);
          total++;
          if (got.length === want.length && got.every((b, i) => b === want.charCodeAt(i))) equal++;
        }
      }
      return { precision, samples: ref.codes.length, max_code_diff: maxDiff, eae_equal: equal, eae_total: total };
    },
  };
}

async function main() {
  const site = await (await fetch("site.json")).json();
  $("bundle-name").textContent = site.bundle;
  const where = site.ort.source === "cdn" ? `from ${site.ort.url} (a public CDN)` : "from this site";
  $("about").textContent = `${site.kind} bundle · code size ${site.code_size} · onnxruntime-web ${site.ort.version} ` +
    `(WASM, one thread) loaded ${where}.`;
  status(`Loading onnxruntime-web ${where}…`);
  const ort = await import(new URL(site.ort.url + "ort.wasm.min.mjs", location.href).href);
  ort.env.wasm.wasmPaths = new URL(site.ort.url, location.href).href;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  const runner = new Runner(ort, site);
  const page = new Page(site, runner);
  await runner.open(page.precision);
  const precSel = $("precision");
  precSel.innerHTML = site.precisions.map((p) => `<option>${p}</option>`).join("");
  precSel.addEventListener("change", () => page.queue(async () => {
    page.precision = precSel.value;
    await runner.open(page.precision);
    if (page.last) await page.show(Float32Array.from(page.last.raw));
  }));
  const bitsSel = $("bits");
  bitsSel.innerHTML = site.codecs.map((c) => `<option value="${c.bits}">${c.bits} bits</option>`).join("");
  bitsSel.addEventListener("change", () => { page.bits = +bitsSel.value; if (page.last) page.render(page.last.raw, { raw: page.runner.norm.denormalize(page.last.x_hat) }); });
  $("download").addEventListener("click", () => page.download());
  if (site.is_image) page.initImage(); else page.initTable();
  if (site.variational) page.initVae();
  window.edgeae = api(site, runner, page);
  if (site.samples) await page.queue(() => page.show(window.edgeae.sample(0)));
  const t = runner.timing;
  status(`Ready: session ${fmt(t.session_ms[page.precision], 1)} ms, first call ${fmt(t.first_call_ms[page.precision], 2)} ms. ` +
    (site.is_image ? "Draw a digit or tap a sample." : "Edit the features or pick a sample."));
  const check = await window.edgeae.selfCheck();
  if (check) {
    $("selfcheck").textContent = `Self-check on ${check.samples} held-out samples: codes within ${check.max_code_diff.toExponential(1)} ` +
      `of the Python runtime; .eae bytes identical to Python's in ${check.eae_equal} of ${check.eae_total} streams.`;
  }
  document.body.dataset.ready = "1";
}

if (typeof document !== "undefined") {
  main().catch((err) => { status(`Error: ${err.message}`, true); console.error(err); });
}
