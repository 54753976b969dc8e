// The current step: the cell as a diagram of coloured vector strips (x_t, h_{t−1}, the
// gates, the cell-state path), bars of the gate values, and — for the picked unit — the
// equations with the actual numbers (views/equations.js). Canvas only: a step costs far
// less than a frame.

import { CELLS, GATE_TITLES, fmt } from "../config.js";
import { colorOf, cssColor } from "../colors.js";
import { layerLabel, stepValues } from "../values.js";
import { equations } from "./equations.js";

export function createStepPanel(root, { onUnit }) {
  const title = root.querySelector("#panel-title");
  const diagram = root.querySelector("#diagram");
  const bars = root.querySelector("#bars");
  const eqs = root.querySelector("#equations");
  let rows = [];         // [{name, canvas, val}]
  let signature = "";
  let barCanvas = null;

  function build(spec) {
    diagram.replaceChildren();
    rows = spec.map((item) => {
      if (item.flow) {
        const p = document.createElement("div");
        p.className = "flow";
        p.textContent = item.flow;
        diagram.append(p);
        return null;
      }
      const row = document.createElement("div");
      row.className = "strip-row";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = item.name;
      name.title = item.title || "";
      const canvas = document.createElement("canvas");
      canvas.className = "strip";
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `${item.name}: one cell per unit`);
      canvas.addEventListener("click", (ev) => {
        const rect = canvas.getBoundingClientRect();
        onUnit(Math.floor(((ev.clientX - rect.left) / rect.width) * canvas.width));
      });
      const val = document.createElement("span");
      val.className = "val";
      row.append(name, canvas, val);
      diagram.append(row);
      return { ...item, canvas, val };
    }).filter(Boolean);
    bars.replaceChildren();
    barCanvas = document.createElement("canvas");
    barCanvas.setAttribute("role", "img");
    barCanvas.setAttribute("aria-label", "bars of the gate values at this step, one per unit");
    bars.append(barCanvas);
  }

  function update(state, inputs) {
    const res = state.result;
    if (!res) return;
    const { step: t, unit } = state.view;
    const k = state.view.layer;
    const layer = res.layers[k];
    const cell = res.cell;
    const spec = diagramSpec(cell, k);
    const sig = `${cell}|${spec.map((s) => s.name || s.flow).join("|")}`;
    if (sig !== signature) { build(spec); signature = sig; }
    const token = res.tokens ? ` · token ${JSON.stringify(res.tokens[t])}` : "";
    title.textContent = `Step t = ${t}${token} · ${layerLabel(res, k)} · unit ${unit}`;
    const values = stepValues(res, k, t, inputs);
    for (const row of rows) {
      const v = values[row.key];
      drawStrip(row.canvas, v, row.kind, row.kind === "signed" ? scaleOf(layer) : 1,
                row.key === "x" ? -1 : unit);
      row.val.textContent = v && unit < v.length && row.key !== "x" ? fmt(v[unit]) : "";
    }
    drawBars(barCanvas, cell, values, unit);
    eqs.replaceChildren(...equations(cell, values, unit, t, res, k));
  }

  return { update };
}

// The diagram of each cell, top to bottom: strips (key → values at this step) and flow text.
function diagramSpec(cell, k) {
  const x = { key: "x", name: k === 0 ? "x_t" : "x_t = h_t below", kind: "signed", title: "the input at this step" };
  const hPrev = { key: "hPrev", name: "h_{t−1}", kind: "signed" };
  if (cell === "lstm") {
    return [x, hPrev, { flow: "↓ W_ih x_t + W_hh h_{t−1} + b → four gates" },
      { key: "i", name: "i", kind: "unit", title: GATE_TITLES.i },
      { key: "f", name: "f", kind: "unit", title: GATE_TITLES.f },
      { key: "g", name: "g", kind: "signed", title: GATE_TITLES.g },
      { key: "o", name: "o", kind: "unit", title: GATE_TITLES.o },
      { flow: "c_{t−1} ─⊙f─▶ ⊕ ◀─ i⊙g" },
      { key: "cPrev", name: "c_{t−1}", kind: "signed" },
      { key: "fc", name: "f⊙c_{t−1}", kind: "signed" },
      { key: "ig", name: "i⊙g", kind: "signed" },
      { key: "c", name: "c_t", kind: "signed" },
      { flow: "c_t ─tanh─⊙o─▶ h_t" },
      { key: "tanhC", name: "tanh(c_t)", kind: "signed" },
      { key: "h", name: "h_t", kind: "signed" }];
  }
  if (cell === "gru") {
    return [x, hPrev, { flow: "↓ r, z from x_t and h_{t−1}; n sees h_{t−1} through r" },
      { key: "r", name: "r", kind: "unit", title: GATE_TITLES.r },
      { key: "z", name: "z", kind: "unit", title: GATE_TITLES.z },
      { key: "n", name: "n", kind: "signed", title: GATE_TITLES.n },
      { flow: "h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}" },
      { key: "zn", name: "(1−z)⊙n", kind: "signed" },
      { key: "zh", name: "z⊙h_{t−1}", kind: "signed" },
      { key: "h", name: "h_t", kind: "signed" }];
  }
  return [x, hPrev, { flow: `↓ a = W_ih x_t + W_hh h_{t−1} + b,  h_t = ${cell === "rnn_relu" ? "relu" : "tanh"}(a)` },
    { key: "a", name: "a", kind: "signed", title: GATE_TITLES.a },
    { key: "h", name: "h_t", kind: "signed" }];
}

// One symmetric scale per layer for its signed strips (max |h|, |c| over all steps), so a
// strip's colours compare across steps. Computed once per layer of a result.
const scales = new WeakMap();
function scaleOf(layer) {
  if (!scales.has(layer)) {
    let m = 0;
    for (const a of [layer.h, layer.c].filter(Boolean)) {
      for (const x of a.data) if (Math.abs(x) > m) m = Math.abs(x);
    }
    scales.set(layer, m || 1);
  }
  return scales.get(layer);
}

function drawStrip(canvas, values, kind, scale, unit) {
  if (!values) { canvas.width = 1; return; }
  const n = values.length;
  if (canvas.width !== n) { canvas.width = n; canvas.height = 1; }
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(n, 1);
  for (let j = 0; j < n; j++) {
    const [r, g, b] = colorOf(values[j], kind, kind === "signed" ? Math.max(scale, 1e-12) : 1);
    img.data.set([r, g, b, 255], 4 * j);
  }
  if (unit >= 0 && unit < n) img.data.set([255, 0, 255, 255], 4 * unit); // the picked unit
  ctx.putImageData(img, 0, 0);
}

function drawBars(canvas, cell, values, unit) {
  const names = CELLS[cell].gates.length ? CELLS[cell].gates : ["h"];
  const rowH = 26;
  const width = canvas.clientWidth || 380;
  const ratio = window.devicePixelRatio || 1;
  const w = Math.round(width * ratio);
  const hgt = Math.round(rowH * names.length * ratio);
  if (canvas.width !== w || canvas.height !== hgt) {  // resizing clears and costs: only on change
    canvas.width = w;
    canvas.height = hgt;
    canvas.style.height = `${rowH * names.length}px`;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, rowH * names.length);
  ctx.font = "11px ui-monospace, monospace";
  names.forEach((name, r) => {
    const v = values[name];
    if (!v) return;
    const top = r * rowH;
    const left = 18;
    const bw = (width - left) / v.length;
    const sig = CELLS[cell].sigmoid.includes(name);
    const kind = sig ? "unit" : "signed";
    const mid = sig ? top + rowH - 2 : top + rowH / 2;
    ctx.fillStyle = "#5b6170";
    ctx.fillText(name, 2, top + rowH / 2 + 4);
    const gap = bw > 3 ? 1 : 0;
    for (let j = 0; j < v.length; j++) {
      const x = v[j];
      const h = sig ? x * (rowH - 4) : Math.max(-1, Math.min(1, x)) * (rowH / 2 - 2);
      ctx.fillStyle = j === unit ? "#ff00ff" : cssColor(x, kind);
      ctx.fillRect(left + j * bw, Math.min(mid, mid - h), Math.max(bw - gap, 0.5), Math.abs(h) || 0.5);
    }
    ctx.strokeStyle = "#dcdfe5";
    ctx.beginPath();
    ctx.moveTo(left, mid + 0.5);
    ctx.lineTo(width, mid + 0.5);
    ctx.stroke();
  });
}
