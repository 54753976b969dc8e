// The heatmaps' colour scales as functions, for the step panel's strips and bars.

import { DIVERGING } from "./config.js";

// Viridis, sampled at 9 points (matplotlib's values).
const VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962",
  "#addc30", "#fde725"].map(hex);

function hex(h) {
  return [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16));
}

function interpolate(stops, x) {
  const clamped = Math.min(Math.max(x, 0), 1);
  const pos = clamped * (stops.length - 1);
  const k = Math.min(Math.floor(pos), stops.length - 2);
  const f = pos - k;
  return stops[k].map((c, i) => Math.round(c + (stops[k + 1][i] - c) * f));
}

const DIVERGING_STOPS = DIVERGING.map(([, c]) => hex(c));

// kind "unit": 0..1 on viridis; "signed": −scale..scale on blue–white–red.
export function colorOf(value, kind, scale = 1) {
  if (!Number.isFinite(value)) return [170, 170, 170];
  if (kind === "unit") return interpolate(VIRIDIS, value);
  return interpolate(DIVERGING_STOPS, 0.5 + value / (2 * (scale || 1)));
}

// 1024-entry lookup tables for painting whole heatmaps: RGBA per entry.
const LUT_SIZE = 1024;
function lut(kind) {
  const table = new Uint8ClampedArray(LUT_SIZE * 4);
  for (let k = 0; k < LUT_SIZE; k++) {
    const x = k / (LUT_SIZE - 1);
    const rgb = kind === "unit" ? interpolate(VIRIDIS, x) : interpolate(DIVERGING_STOPS, x);
    table.set([...rgb, 255], 4 * k);
  }
  return table;
}
const LUTS = { unit: lut("unit"), signed: lut("signed") };

// A (T, H) array → RGBA pixels of an H×T image (units down, time across), values mapped
// from [zmin, zmax] onto the kind's scale; non-finite values grey.
export function paint(data, T, H, kind, zmin, zmax) {
  const table = LUTS[kind];
  const pixels = new Uint8ClampedArray(T * H * 4);
  const scale = (LUT_SIZE - 1) / (zmax - zmin || 1);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < H; j++) {
      const v = data[t * H + j];
      const o = 4 * (j * T + t);
      if (!Number.isFinite(v)) { pixels[o] = pixels[o + 1] = pixels[o + 2] = 170; pixels[o + 3] = 255; continue; }
      let k = Math.round((v - zmin) * scale);
      k = k < 0 ? 0 : k > LUT_SIZE - 1 ? LUT_SIZE - 1 : k;
      pixels[o] = table[4 * k]; pixels[o + 1] = table[4 * k + 1]; pixels[o + 2] = table[4 * k + 2]; pixels[o + 3] = 255;
    }
  }
  return pixels;
}

// CSS colour strings from the same tables, 256 per scale, for drawing many bars quickly.
const CSS = {};
for (const kind of ["unit", "signed"]) {
  CSS[kind] = Array.from({ length: 256 }, (_, k) => {
    const o = 4 * Math.round((k / 255) * (LUT_SIZE - 1));
    return `rgb(${LUTS[kind][o]},${LUTS[kind][o + 1]},${LUTS[kind][o + 2]})`;
  });
}
export function cssColor(value, kind, scale = 1) {
  if (!Number.isFinite(value)) return "rgb(170,170,170)";
  const x = kind === "unit" ? value : 0.5 + value / (2 * (scale || 1));
  return CSS[kind][Math.min(255, Math.max(0, Math.round(x * 255)))];
}
