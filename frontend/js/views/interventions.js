// Interventions: replace a gate, c or h of one layer for chosen units and steps (force f = 1,
// wipe c = 0, close o = 0 …), re-run, and see what changed downstream as diverging heatmaps
// of (intervened − original). The list lives in the URL, so an experiment is a link.

import { CELLS, GATE_TITLES, at, fmt, valuePanels } from "../config.js";

// What a cell lets you replace: its gates, c (LSTM) and h.
export function targetsOf(cell) {
  return [...CELLS[cell].gates, ...(CELLS[cell].hasC ? ["c"] : []), "h"];
}

// One intervention in the URL: "layer:target:start-stop:units:value", units "j0-j1" or "*",
// start ≤ t < stop as in the API; several joined by ",". parse(format(list)) == list.
export function formatList(list) {
  return list.map((iv) => [iv.layer, iv.target, `${iv.start}-${iv.stop}`,
    iv.units ? `${iv.units[0]}-${iv.units[iv.units.length - 1]}` : "*", iv.value].join(":")).join(",");
}

// An item that does not read as one (a hand-edited link) is left out.
const ITEM = /^(\d+):([a-z]):(\d+)-(\d+):(\*|(\d+)-(\d+)):(-?[\d.]+(?:e[+-]?\d+)?)$/;
export const MAX_UNITS = 1024;  // the API's largest hidden size

export function parseList(text) {
  if (!text) return [];
  return String(text).split(",").map((item) => {
    const m = ITEM.exec(item);
    if (!m) return null;
    const [layer, start, stop, value] = [m[1], m[3], m[4], m[8]].map(Number);
    const [u0, u1] = [Number(m[6]), Number(m[7])];
    if (!(start < stop) || !Number.isFinite(value) || (m[5] !== "*" && !(u0 <= u1 && u1 < MAX_UNITS))) return null;
    const units = m[5] === "*" ? null : Array.from({ length: u1 - u0 + 1 }, (_, k) => u0 + k);
    return { layer, target: m[2], start, stop, units, value };
  }).filter(Boolean);
}

// Why a list cannot run on a result ("" when it can): a target the cell lacks, a layer,
// step or unit past the model's.
export function misfit(items, result) {
  const targets = targetsOf(result.cell);
  for (const iv of items) {
    if (!targets.includes(iv.target)) return `a ${CELLS[result.cell].label} has no ${iv.target}`;
    if (iv.layer >= result.num_layers) return `there is no layer ${iv.layer}`;
    if (iv.stop > result.steps) return `step ${iv.stop - 1} is past the last step, ${result.steps - 1}`;
    if (iv.units && iv.units[iv.units.length - 1] >= result.hidden_size) return `unit ${iv.units[iv.units.length - 1]} is past the last unit, ${result.hidden_size - 1}`;
  }
  return "";
}

export function describe(iv) {
  const units = iv.units ? (iv.units.length === 1 ? `unit ${iv.units[0]}` : `units ${iv.units[0]}–${iv.units[iv.units.length - 1]}`) : "every unit";
  const steps = iv.stop - iv.start === 1 ? `step ${iv.start}` : `steps ${iv.start}–${iv.stop - 1}`;
  return `layer ${iv.layer}: ${iv.target} ← ${iv.value} for ${units} at ${steps}`;
}

// (intervened − original) of two {data, shape} arrays, as a Float64Array with the same shape.
export function difference(after, before) {
  const data = new Float64Array(after.data.length);
  for (let k = 0; k < data.length; k++) data[k] = after.data[k] - before.data[k];
  return { data, shape: after.shape };
}

// What the intervention changed in layer `k`: a map of (intervened − original) per value
// heatmap and ∂L/∂h, dotted boxes where entries were replaced, and a summary in words.
export function compare(before, after, k, items) {
  const maps = [...valuePanels(before.cell), ["∂L/∂h", ["grads", "h"], "signed"]].map(([name, path]) => [
    `Δ ${name} (intervened − original)`, difference(at(after.layers[k], path), at(before.layers[k], path)), "signed", name]);
  const T = before.steps;
  const shown = before.layers[k];  // the page's interventions replace forward directions
  const boxes = items.filter((iv) => iv.layer === shown.layer && shown.direction !== "reverse").map((iv) => ({
    type: "rect", x0: iv.start - 0.5, x1: Math.min(iv.stop, T) - 0.5,
    y0: (iv.units ? iv.units[0] : 0) - 0.5, y1: (iv.units ? iv.units[iv.units.length - 1] : before.hidden_size - 1) + 0.5,
    line: { color: "#111", width: 1.5, dash: "dot" }, fillcolor: "rgba(0,0,0,0)",
  }));
  const top = (before.num_layers - 1) * (before.bidirectional ? 2 : 1);  // its forward direction
  const width = before.layers[top].h.shape[1];  // H, or proj_size
  const lastH = difference(after.layers[top].h, before.layers[top].h).data.subarray((T - 1) * width);
  const maxLast = lastH.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const summary = `${items.map(describe).join("; ")}. The loss goes from `
    + `${fmt(before.loss, 6)} to ${fmt(after.loss, 6)}; the top layer's last state h_${T - 1} moves by up to `
    + `${fmt(maxLast, 4)} per unit. Dotted boxes: the replaced entries (layer ${shown.layer}).`;
  return { maps, boxes, summary };
}

export function createInterventions(root, { onRun, onClear, onPickMode }) {
  const $ = (id) => root.querySelector(`#${id}`);
  const target = $("iv-target");
  const fields = { layer: $("iv-layer"), u0: $("iv-u0"), u1: $("iv-u1"), t0: $("iv-t0"), t1: $("iv-t1"), value: $("iv-value") };
  const list = $("iv-list");
  const pickButton = $("iv-pick");
  const pickStatus = $("iv-pick-status");
  const error = $("error-interventions");
  const summary = $("iv-summary");
  let items = [];
  let corner = null;  // the first corner picked on a heatmap: {t, unit}
  let picking = false;
  let limits = { T: 1, H: 1, L: 1 };
  let wanted = null;  // a target from the URL, kept until the cell's options exist

  function showError(message) { error.textContent = message || ""; error.hidden = !message; }

  function setPicking(on) {
    picking = on;
    corner = null;
    pickButton.setAttribute("aria-pressed", String(on));
    pickStatus.textContent = on ? "Click one corner of the region on a value heatmap above…" : "";
    onPickMode(on);
  }

  pickButton.addEventListener("click", () => setPicking(!picking));
  for (const button of root.querySelectorAll("[data-preset]")) {
    button.addEventListener("click", () => {
      const [name, value] = button.dataset.preset.split("=");
      if (![...target.options].some((o) => o.value === name)) {
        showError(`This cell has no ${name}: it has ${[...target.options].map((o) => o.value).join(", ")}.`);
        return;
      }
      target.value = name;
      fields.value.value = value;
      showError("");
    });
  }
  $("iv-add").addEventListener("click", () => {
    const iv = readForm();
    if (!iv) return;
    items = [...items, iv];
    renderList();
  });
  // Run: the list, with the form's entry added unless the list holds it already — so an
  // entry picked or edited in the form always takes part (later entries win where they overlap)
  $("iv-run").addEventListener("click", () => {
    const iv = readForm();
    if (!iv) return;
    if (!items.some((x) => formatList([x]) === formatList([iv]))) { items = [...items, iv]; renderList(); }
    onRun(items);
  });
  $("iv-clear").addEventListener("click", () => { items = []; renderList(); onClear(); });

  // The form as one intervention (steps and units inclusive in the form, as people count),
  // or null with the reason shown beside it.
  function readForm() {
    const int = (el, dflt) => (el.value === "" ? dflt : Number(el.value));
    const layer = int(fields.layer, 0);
    const t0 = int(fields.t0, 0);
    const t1 = int(fields.t1, limits.T - 1);
    const u0 = int(fields.u0, null);
    const u1 = int(fields.u1, u0);
    const value = Number(fields.value.value);
    const problem = fields.value.value === "" || !Number.isFinite(value) ? "Set the value to put in."
      : !(Number.isInteger(layer) && layer >= 0 && layer < limits.L) ? `The layer must be 0 to ${limits.L - 1}.`
        : !(Number.isInteger(t0) && Number.isInteger(t1) && t0 >= 0 && t0 <= t1 && t1 < limits.T) ? `Steps must run from a first to a last step within 0–${limits.T - 1}.`
          : u0 !== null && !(Number.isInteger(u0) && Number.isInteger(u1) && u0 >= 0 && u0 <= u1 && u1 < limits.H) ? `Units must run from a first to a last unit within 0–${limits.H - 1}, or be left empty for all.`
            : "";
    showError(problem);
    if (problem) return null;
    const units = u0 === null ? null : Array.from({ length: u1 - u0 + 1 }, (_, k) => u0 + k);
    return { layer, target: target.value, start: t0, stop: t1 + 1, units, value };
  }

  function renderList() {
    list.replaceChildren(...items.map((iv, n) => {
      const li = document.createElement("li");
      li.textContent = describe(iv);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "✕";
      remove.setAttribute("aria-label", `Remove: ${describe(iv)}`);
      remove.addEventListener("click", () => { items = items.filter((_, k) => k !== n); renderList(); });
      li.append(" ", remove);
      return li;
    }));
    root.dataset.count = String(items.length);
  }

  // A new result: the targets its cell has, and the limits of its steps, units and layers.
  function setModel(result) {
    limits = { T: result.steps, H: result.hidden_size, L: result.num_layers };
    const names = targetsOf(result.cell);
    if (names.join() !== [...target.options].map((o) => o.value).join()) {
      const keep = wanted ?? target.value;
      target.replaceChildren(...names.map((g) => new Option(`${g} — ${GATE_TITLES[g]}`, g)));
      if (names.includes(keep)) target.value = keep;
    } else if (wanted && names.includes(wanted)) {
      target.value = wanted;
    }
    wanted = null;
  }

  // A click on value heatmap `key` (a gate, c or h) of `layer`: one corner, then the other.
  function pick(t, unit, key, layer) {
    if (!picking) return false;
    if (!targetsOf(layer.cell).includes(key)) {
      pickStatus.textContent = `${key} is computed from others, not replaceable here: click a map of ${targetsOf(layer.cell).join(", ")}.`;
      return true;
    }
    if (layer.reverse) {
      pickStatus.textContent = "The page replaces values in a layer's forward direction: choose a forward (→) layer above to pick there. (The API's interventions take direction: \"reverse\".)";
      return true;
    }
    if (!corner) {
      corner = { t, unit };
      pickStatus.textContent = `Corner at step ${t}, unit ${unit}. Now click the opposite corner…`;
      return true;
    }
    target.value = key;
    fields.layer.value = String(layer.index);
    fields.t0.value = String(Math.min(corner.t, t));
    fields.t1.value = String(Math.max(corner.t, t));
    fields.u0.value = String(Math.min(corner.unit, unit));
    fields.u1.value = String(Math.max(corner.unit, unit));
    setPicking(false);
    pickStatus.textContent = `Selected ${key}, steps ${fields.t0.value}–${fields.t1.value}, units ${fields.u0.value}–${fields.u1.value}. Set a value, then Add or Run.`;
    return true;
  }

  // A list from the URL; the form shows its last entry, ready to vary.
  function setItems(list_) {
    items = list_;
    renderList();
    const last = items[items.length - 1];
    if (!last) return;
    wanted = last.target;  // applied now if the cell's options are there, else by setModel
    if ([...target.options].some((o) => o.value === last.target)) target.value = last.target;
    fields.layer.value = String(last.layer);
    fields.t0.value = String(last.start);
    fields.t1.value = String(last.stop - 1);
    fields.u0.value = last.units ? String(last.units[0]) : "";
    fields.u1.value = last.units ? String(last.units[last.units.length - 1]) : "";
    fields.value.value = String(last.value);
  }

  function showSummary(text) { summary.textContent = text; }

  return { setModel, pick, setItems, showError, showSummary, get items() { return items; }, get picking() { return picking; } };
}
