// coder.mjs: the .eae entropy coder of the page, byte for byte the one of edgeae.runtime.stream.
//
//   codes -> quantize (LatentCodec's bins) -> range coder -> trimmed payload -> .eae stream
//
// The arithmetic of constriction 0.5's RangeEncoder (32-bit words, 64-bit state) with
// Categorical models quantized to 24-bit CDFs, reproduced in exact integer (BigInt) steps
// (docs/FORMAT.md, docs/web.md); and the SHA-256 that checks the graphs. No DOM and no
// imports: the browser page and Node (any package.json "type": the .mjs name makes it an ES
// module) load the same file.

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

/** numpy's rint: halves go to the even neighbour. */
export function rint(x) {
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

// ------------------------------------------------------------------ SHA-256 (the graphs' hash check)
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
