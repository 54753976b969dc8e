// Find units: rank the hidden units of the layer shown by how well h_t[j] follows a simple
// property of the input text (Pearson r over the steps), as Karpathy et al. found cells that
// track quotes, indentation and bracket depth. The properties are the ones the trainer uses
// for its model cards (backend/gatescope/core/units.py), defined identically.

import { PLOT_CONFIG, MARGIN, fmt } from "../config.js";

const OPEN = "([{";
const CLOSE = ")]}";

// Each property: one value per character of the text, after reading that character.
export const PROPERTIES = {
  depth: {
    label: "bracket depth",
    // opening brackets ( [ { minus closing ) ] } in text[0..t]
    values(chars) {
      let depth = 0;
      return chars.map((ch) => {
        if (OPEN.includes(ch)) depth += 1; else if (CLOSE.includes(ch)) depth -= 1;
        return depth;
      });
    },
  },
  in_quotes: {
    label: "inside a string",
    // 1 inside a '…' or "…" string: a quote opens one when outside; the same quote closes it
    values(chars) {
      let open = null;
      return chars.map((ch) => {
        if (open === null && (ch === "'" || ch === "\"")) open = ch; else if (ch === open) open = null;
        return open === null ? 0 : 1;
      });
    },
  },
  indent: {
    label: "indentation",
    // leading spaces of the current line as far as seen; a newline itself reads 0
    values(chars) {
      let spaces = 0;
      let leading = true;
      return chars.map((ch) => {
        if (ch === "\n") { spaces = 0; leading = true; } else if (leading && ch === " ") spaces += 1;
        else leading = false;  // the first other character ends the indentation
        return spaces;
      });
    },
  },
  since_start: {
    label: "steps since the first character",
    values(chars) { return chars.map((_, t) => t); },
  },
};

// Pearson r of each unit's h_t[j] with the property: h {data, shape: [T, H]}, values [T].
// A unit (or a property) that never changes has r = 0: it tracks nothing.
export function correlations(h, values) {
  const [T, H] = h.shape;
  const mean = values.reduce((a, v) => a + v, 0) / T;
  const dv = values.map((v) => v - mean);
  const vv = dv.reduce((a, d) => a + d * d, 0);
  const r = new Float64Array(H);
  for (let j = 0; j < H; j++) {
    let m = 0;
    for (let t = 0; t < T; t++) m += h.data[t * H + j];
    m /= T;
    let hv = 0;
    let hh = 0;
    for (let t = 0; t < T; t++) {
      const d = h.data[t * H + j] - m;
      hv += d * dv[t];
      hh += d * d;
    }
    r[j] = hh > 0 && vv > 0 ? hv / Math.sqrt(hh * vv) : 0;
  }
  return r;
}

// [[unit, r]] by |r|, largest first (ties: the lower unit).
export function rank(r) {
  return Array.from(r, (v, j) => [j, v]).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]) || a[0] - b[0]);
}

// The property that suits a task (from the model card's task name), for the first look.
export function propertyForTask(task) {
  const kind = (task || "").split(":")[0];
  return { bracket_depth: "depth", char_lm: "in_quotes", delayed_recall: "since_start", adding: "since_start" }[kind] || "depth";
}

export function createFindUnits(root, { onUnit }) {
  const select = root.querySelector("#fu-property");
  const summary = root.querySelector("#fu-summary");
  const list = root.querySelector("#fu-list");
  const plot = root.querySelector("#fu-plot");
  select.replaceChildren(...Object.entries(PROPERTIES).map(([key, p]) => new Option(p.label, key)));
  let shown = null; // {result, k}
  select.addEventListener("change", () => { if (shown) update(shown.result, shown.k, shown.unit); });

  function setProperty(key) { if (key in PROPERTIES) select.value = key; }

  // result: a /run result; k: the layer; unit: the unit selected in the page.
  function update(result, k, unit) {
    shown = { result, k, unit };
    if (!result.tokens) {
      list.replaceChildren();
      Plotly.purge(plot);
      summary.textContent = "Find units reads properties of text: choose text input.";
      return;
    }
    const chars = result.tokens;
    const values = PROPERTIES[select.value].values(chars);
    const h = result.layers[k].h;
    const ranked = rank(correlations(h, values));
    list.gsRanked = ranked; // for tests and the console
    list.replaceChildren(...ranked.slice(0, 10).map(([j, r]) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.unit = String(j);
      button.textContent = `unit ${j}: r = ${fmt(r, 3)}`;
      if (j === unit) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => onUnit(j));
      li.append(button);
      return li;
    }));
    const [best, rBest] = ranked[0];
    const constant = values.every((v) => v === values[0]);
    summary.textContent = constant
      ? `This input has no ${PROPERTIES[select.value].label} to follow: it never changes. Try text where it does.`
      : `Layer ${k}: unit ${best} follows ${PROPERTIES[select.value].label} best (r = ${fmt(rBest, 3)} over ${chars.length} steps). Click a unit to follow it everywhere on the page.`;
    // the plot follows the page's unit when it is among the ten listed, else the best one
    const follow = ranked.slice(0, 10).some(([j]) => j === unit) ? unit : best;
    plot.dataset.unit = String(follow);
    const x = chars.map((_, t) => t);
    const H = h.shape[1];
    Plotly.react(plot, [
      { x, y: values, name: PROPERTIES[select.value].label, mode: "lines", line: { color: "#999", width: 2, shape: "hv" } },
      { x, y: x.map((t) => h.data[t * H + follow]), name: `h_t[${follow}]`, yaxis: "y2", mode: "lines", line: { color: "#D55E00", width: 2 } },
    ], {
      margin: { ...MARGIN, t: 8, b: 34, r: 52 }, uirevision: "keep", hovermode: "x unified",
      xaxis: { title: { text: "t", standoff: 2 }, tickfont: { size: 10 } },
      yaxis: { title: { text: PROPERTIES[select.value].label, font: { size: 11 } }, tickfont: { size: 10 } },
      yaxis2: { overlaying: "y", side: "right", zeroline: false, showgrid: false, title: { text: `h_t[${follow}]`, font: { size: 11 } }, tickfont: { size: 10 } },
      legend: { orientation: "h", y: 1.12, x: 0 },
    }, { ...PLOT_CONFIG, toImageButtonOptions: { ...PLOT_CONFIG.toImageButtonOptions, filename: "gatescope-find-units" } });
  }

  return { update, setProperty, get property() { return select.value; } };
}
