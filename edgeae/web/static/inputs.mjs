// inputs.mjs: the page's two inputs that are more than a form control.
//
//   drawing pad: pointer (finger, pen, mouse) or keyboard (a pen cursor) -> ink -> a sample
//   sample strip: held-out samples as buttons in one scrolling row that says it scrolls
//
// Both are usable by touch, mouse and keyboard alone; page.mjs wires them to the runner.

import { inkToSample } from "./runner.mjs";

/** Draw a CHW sample (raw units) onto a canvas at its own resolution (CSS scales it). */
export function paint(canvas, raw, shape, uint8) {
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

/** The pad's ink as a sample of `shape` (runner.inkToSample's rule). */
export function padToSample(pad, shape, uint8) {
  const { width: PW, height: PH } = pad;
  const px = pad.getContext("2d").getImageData(0, 0, PW, PH).data;
  return inkToSample(Float32Array.from({ length: PW * PH }, (_, i) => px[4 * i] / 255), PW, PH, shape, uint8);
}

/** Make `pad` (a canvas) drawable by pointer and keyboard; `update` runs after each change.
 *  H (the sample height) sets the stroke width: about as thick as the training digits. Returns clear(). */
export function drawingPad(pad, cursor, hint, H, update) {
  const ctx = pad.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height); hint.hidden = false; };
  clear();
  ctx.strokeStyle = "#fff";
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.lineWidth = pad.width * (H >= 16 ? 0.07 : 0.13);
  const stroke = (from, to) => { hint.hidden = true; ctx.beginPath(); ctx.moveTo(...from); ctx.lineTo(...to); ctx.stroke(); };
  pointerPad(pad, stroke, update);
  keyPad(pad, cursor, stroke, update, clear);
  return clear;
}

function pointerPad(pad, stroke, update) {
  let last = null;
  const at = (ev) => {
    const b = pad.getBoundingClientRect();
    return [((ev.clientX - b.left) * pad.width) / b.width, ((ev.clientY - b.top) * pad.height) / b.height];
  };
  pad.addEventListener("pointerdown", (ev) => { pad.setPointerCapture(ev.pointerId); last = at(ev); stroke(last, last); });
  pad.addEventListener("pointermove", (ev) => { if (last) { const p = at(ev); stroke(last, p); last = p; update(); } });
  const end = () => { if (last) { last = null; update(); } };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
}

/** The pad from the keyboard: a pen cursor that arrows move, Space/Enter lower or lift, Delete clears. */
function keyPad(pad, cursor, stroke, update, clear) {
  let pos = [pad.width / 2, pad.height / 2], down = false;
  const place = () => {
    cursor.style.left = `${(100 * pos[0]) / pad.width}%`;
    cursor.style.top = `${(100 * pos[1]) / pad.height}%`;
    cursor.classList.toggle("down", down);
  };
  const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  // The pen cursor shows for keyboard focus only (a tap or click focuses the pad too).
  pad.addEventListener("focus", () => { cursor.hidden = !pad.matches(":focus-visible"); place(); });
  pad.addEventListener("pointerdown", () => { cursor.hidden = true; });
  pad.addEventListener("blur", () => { cursor.hidden = true; if (down) { down = false; update(); } });
  pad.addEventListener("keydown", (ev) => {
    const step = (pad.width / 28) * (ev.shiftKey ? 3 : 1);
    if (moves[ev.key]) {
      const [dx, dy] = moves[ev.key];
      const next = [Math.min(Math.max(pos[0] + dx * step, 0), pad.width), Math.min(Math.max(pos[1] + dy * step, 0), pad.height)];
      if (down) { stroke(pos, next); update(); }
      pos = next;
    } else if (ev.key === " " || ev.key === "Enter") {
      down = !down;
      if (down) stroke(pos, pos);
      update();
    } else if (ev.key === "Delete" || ev.key === "Backspace") {
      clear();
    } else {
      return;
    }
    ev.preventDefault();
    cursor.hidden = false;
    place();
  });
}

/** n held-out samples as buttons in `strip`: one Tab stop, arrows (Home, End) move along it;
 *  draw(canvas, k) paints thumbnail k, pick(k) runs on a tap, click or Enter; `noun` names them
 *  ("held-out sample 3", or "held-out window 3" for signals). */
export function sampleStrip(strip, hint, n, draw, pick, noun = "held-out sample") {
  const thumbs = [];
  for (let k = 0; k < n; k++) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "thumb";
    b.tabIndex = k === 0 ? 0 : -1;
    b.setAttribute("aria-label", `${noun} ${k}`);
    const c = document.createElement("canvas");
    b.appendChild(c);
    draw(c, k); // the thumbnail's button is its parent by now
    b.addEventListener("click", () => pick(k));
    b.addEventListener("focus", () => thumbs.forEach((t, i) => { t.tabIndex = i === k ? 0 : -1; }));
    thumbs.push(b);
    strip.appendChild(b);
  }
  strip.addEventListener("keydown", (ev) => {
    const k = thumbs.indexOf(document.activeElement);
    const to = { ArrowLeft: k - 1, ArrowRight: k + 1, Home: 0, End: n - 1 }[ev.key];
    if (k < 0 || to === undefined) return;
    ev.preventDefault();
    thumbs[Math.min(Math.max(to, 0), n - 1)].focus();
  });
  const say = () => stripHint(strip, hint, n, `${noun.split(" ").pop()}s`);
  strip.addEventListener("scroll", say, { passive: true });
  addEventListener("resize", say);
  say();
}

/** Says that the strip scrolls, and which samples show: "samples 1–6 of 24 · scroll for more →";
 *  fades (CSS, classes on the strip's box) mark the sides with more. */
function stripHint(strip, el, n, plural) {
  const box = strip.parentElement;
  const over = strip.scrollWidth > strip.clientWidth + 1;
  const left = over && strip.scrollLeft > 4, right = over && strip.scrollLeft + strip.clientWidth < strip.scrollWidth - 4;
  box.classList.toggle("more-left", left);
  box.classList.toggle("more-right", right);
  el.hidden = !over;
  if (!over) return;
  const pitch = strip.scrollWidth / n;
  const first = Math.floor(strip.scrollLeft / pitch) + 1, shown = Math.min(n, Math.floor((strip.scrollLeft + strip.clientWidth) / pitch));
  el.textContent = `${plural} ${first}–${Math.max(first, shown)} of ${n} · ${left ? "← " : ""}scroll for more${right ? " →" : ""}`;
}
