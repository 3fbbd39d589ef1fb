// signals.mjs: windows of sensor signals, (C, T) = channels x time steps, on the page.
//
//   one window (raw units) + its reconstruction -> one SVG line plot per channel, both overlaid,
//     with axes, tick labels, a legend and the channel's RMSE
//   every held-out window -> encoder, decoder, .eae coder -> a table of bytes per window and RMSE
//   a window -> a thumbnail for the sample strip (every channel scaled to its own range)
//
// Plain SVG and canvas, no chart library. Each plot's geometry is on its <svg> (data-lo, data-hi:
// the value range; data-box: the plot area in SVG units), so a reader of the page (the browser
// tests) can map a path's points back to values.

import { compressCodes } from "./coder.mjs";
import { sampleAt } from "./runner.mjs";

const NS = "http://www.w3.org/2000/svg";
// plot area margins in SVG units (= CSS px at the width the plot was drawn for)
const M = { left: 50, right: 10, top: 28, bottom: 34 };
const HEIGHT = 170; // SVG units: 108 for the plot area
const COLORS = ["#0969da", "#bc4c00", "#1a7f37", "#8250df", "#bf3989", "#0a7ea4"]; // thumbnails, channel by channel

/** Root mean square of a - b over all values (a, b: flat arrays of one length). */
export function rmse(a, b, from = 0, to = a.length) {
  let s = 0;
  for (let i = from; i < to; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / Math.max(1, to - from));
}

/** [C, T] of a signal sample shape. */
export const dims = (shape) => [shape[0], shape[1]];

/** About `n` round tick values (1, 2 or 5 times a power of ten) covering [lo, hi]. */
export function ticks(lo, hi, n = 4) {
  const raw = (hi - lo) / n, p = 10 ** Math.floor(Math.log10(raw)), m = raw / p;
  const step = (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p, out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** The value range a channel's plot shows: both series, 6% headroom; a flat line gets a band. */
export function valueRange(series) {
  let lo = Infinity, hi = -Infinity;
  for (const s of series) for (const v of s) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (!(hi > lo)) { const d = Math.abs(lo) * 0.1 || 1; return [lo - d, hi + d]; }
  const pad = 0.06 * (hi - lo);
  return [lo - pad, hi + pad];
}

const label = (v) => String(Number(v.toPrecision(3)));
const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** The SVG path of one channel: T points, "M x,y L x,y ...", two decimals. */
function pathOf(values, box, lo, hi) {
  const [x0, y0, w, h] = box, T = values.length, dx = T > 1 ? w / (T - 1) : 0;
  const pts = Array.from(values, (v, t) => `${(x0 + t * dx).toFixed(2)},${(y0 + h - ((v - lo) / (hi - lo)) * h).toFixed(2)}`);
  return `M${pts.join("L")}`;
}

/** Where the title and the legend go: one row when both fit the width, else the legend below the title. */
function header(W, title, series) {
  const widths = series.map((s) => 30 + 6.5 * s.name.length); // line sample + gap + text at 11 px
  const legendW = widths.reduce((a, b) => a + b, 0), oneRow = M.left + 7 * title.length + 12 + legendW <= W - M.right;
  let lx = W - M.right - legendW;
  const ly = oneRow ? 13 : 31;
  const legend = series.map((s, i) => {
    const at = lx;
    lx += widths[i];
    return `<line class="${s.cls}" x1="${at}" x2="${at + 22}" y1="${ly}" y2="${ly}"/>` +
      `<text class="legend" x="${at + 27}" y="${ly}" dominant-baseline="middle">${s.name}</text>`;
  });
  return { top: oneRow ? M.top : M.top + 18, legend: legend.join("") };
}

/** One channel's plot as SVG markup: axes, ticks, the input (solid) and reconstruction (dashed). */
function channelSvg(c, series, W, T, rmseC) {
  const title = `channel ${c}` + (rmseC === null ? "" : ` · RMSE ${label(rmseC)}`);
  const head = header(W, title, series), H = HEIGHT + head.top - M.top;
  const box = [M.left, head.top, W - M.left - M.right, H - head.top - M.bottom];
  const [x0, y0, w, h] = box, [lo, hi] = valueRange(series.map((s) => s.values));
  const y = (v) => (y0 + h - ((v - lo) / (hi - lo)) * h).toFixed(2);
  const x = (t) => (x0 + (T > 1 ? (t * w) / (T - 1) : 0)).toFixed(2);
  const yt = ticks(lo, hi).map((v) => `<line class="grid" x1="${x0}" x2="${x0 + w}" y1="${y(v)}" y2="${y(v)}"/>` +
    `<text class="tick" x="${x0 - 5}" y="${y(v)}" text-anchor="end" dominant-baseline="middle">${label(v)}</text>`);
  const xt = ticks(0, T - 1, 5).filter((t) => Number.isInteger(t)).map((t) =>
    `<line class="tickmark" x1="${x(t)}" x2="${x(t)}" y1="${y0 + h}" y2="${y0 + h + 4}"/>` +
    `<text class="tick" x="${x(t)}" y="${y0 + h + 15}" text-anchor="middle">${t}</text>`);
  const paths = series.map((s) => `<path class="${s.cls}" d="${pathOf(s.values, box, lo, hi)}"/>`);
  return `<svg xmlns="${NS}" viewBox="0 0 ${W} ${H}" role="img" data-channel="${c}" data-lo="${lo}" ` +
    `data-hi="${hi}" data-box="${box.join(" ")}" aria-label="${esc(title)}: ${esc(series.map((s) => s.name).join(" and "))} ` +
    `over ${T} time steps">` +
    `<rect class="frame" x="${x0}" y="${y0}" width="${w}" height="${h}"/>${yt.join("")}${xt.join("")}` +
    `${paths.join("")}<text class="title" x="${x0}" y="13" dominant-baseline="middle">${esc(title)}</text>` +
    `${head.legend}<text class="axis" x="${x0 + w / 2}" y="${H - 3}" text-anchor="middle">time step</text>` +
    `<text class="axis" transform="translate(11 ${y0 + h / 2}) rotate(-90)" text-anchor="middle">value</text></svg>`;
}

/**
 * One plot per channel into `box`: `raw` (flat C*T, raw units) and, when given, `recon` overlaid.
 * Drawn for the box's current width (SVG units = CSS px there), scaled with it afterwards.
 * Returns the per-channel RMSE (null without `recon`).
 */
export function plotChannels(box, raw, recon, shape, { names = ["input", "reconstruction"] } = {}) {
  const [C, T] = dims(shape), W = Math.max(280, Math.round(box.clientWidth) || 360);
  const perChannel = [];
  const figs = [];
  for (let c = 0; c < C; c++) {
    const from = c * T, to = from + T;
    const series = [{ cls: recon ? "input" : "gen", name: recon ? names[0] : "generated", values: raw.slice(from, to) }];
    if (recon) series.push({ cls: "recon", name: names[1], values: recon.slice(from, to) });
    const r = recon ? rmse(raw, recon, from, to) : null;
    perChannel.push(r);
    figs.push(`<figure class="sig">${channelSvg(c, series, W, T, r)}</figure>`);
  }
  box.innerHTML = figs.join("");
  return recon ? perChannel : null;
}

/** A window as a thumbnail: every channel a line scaled to its own range, one colour each. */
export function sparkline(canvas, raw, shape) {
  const [C, T] = dims(shape), S = 96;
  canvas.width = canvas.height = S;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, S, S);
  ctx.lineWidth = 3;
  for (let c = 0; c < C; c++) {
    const v = raw.slice(c * T, (c + 1) * T), [lo, hi] = valueRange([v]);
    ctx.strokeStyle = COLORS[c % COLORS.length];
    ctx.beginPath();
    v.forEach((y, t) => ctx.lineTo(4 + (t * (S - 8)) / Math.max(1, T - 1), S - 4 - ((y - lo) / (hi - lo)) * (S - 8)));
    ctx.stroke();
  }
}

/**
 * Every held-out window through the page at `precision`: its code, the bytes of its one-window
 * .eae stream at every bit depth (the page's coder; Python's `compress` of that window gives the
 * same bytes), the RMSE of its reconstruction in raw units and in model units (the
 * standardized scale of a per-channel normalization).
 */
export async function measureWindows(site, runner, precision) {
  const n = site.samples ? site.samples.shape[0] : 0, rows = [];
  for (let k = 0; k < n; k++) {
    const raw = sampleAt(site, k);
    const { code } = await runner.encode(raw, precision);
    const d = await runner.decode(code, precision);
    const bytes = Object.fromEntries(site.codecs.map((c) => [c.bits, compressCodes(c, code, 1).length]));
    rows.push({ window: k, bytes, rmse: rmse(raw, d.raw), rmse_model: rmse(runner.modelUnits(raw, precision), d.model) });
  }
  return rows;
}

/** The table of measureWindows' rows; the column of `bits` and the row of window `current` stand out. */
export function windowTable(table, rows, codecs, bits, current, standardized) {
  const depths = codecs.map((c) => c.bits);
  const head = `<tr><th>window</th>${depths.map((b) => `<th class="${b === bits ? "on" : ""}">${b}-bit .eae bytes</th>`).join("")}` +
    `<th>RMSE</th>${standardized ? "<th>RMSE / std</th>" : ""}</tr>`;
  const body = rows.map((r) => `<tr data-window="${r.window}" class="${r.window === current ? "on" : ""}"><td>${r.window}</td>` +
    depths.map((b) => `<td data-bits="${b}" class="${b === bits ? "on" : ""}">${r.bytes[b]}</td>`).join("") +
    `<td class="rmse">${label(r.rmse)}</td>${standardized ? `<td class="rmse-model">${label(r.rmse_model)}</td>` : ""}</tr>`);
  table.innerHTML = head + body.join("");
}
