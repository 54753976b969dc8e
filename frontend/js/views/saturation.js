// Gate saturation, as in Karpathy, Johnson & Fei-Fei (2015), "Visualizing and understanding
// recurrent networks", fig. 3: per gate, one point per unit at (share of steps the gate is
// below 0.1, share of steps it is above 0.9). Units near the top left are almost always
// open, near the bottom right almost always shut, on the diagonal they switch.

import { CELLS, GATE_TITLES, PLOT_CONFIG } from "../config.js";

export const LOW = 0.1;   // "left-saturated": the gate is (nearly) closed
export const HIGH = 0.9;  // "right-saturated": (nearly) open

// arr: {data, shape: [T, H]} of one gate's values → {low, high}, each a Float64Array(H) of
// the share of steps with value < 0.1 and > 0.9.
export function saturation(arr) {
  const [T, H] = arr.shape;
  const low = new Float64Array(H);
  const high = new Float64Array(H);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < H; j++) {
      const v = arr.data[t * H + j];
      if (v < LOW) low[j] += 1; else if (v > HIGH) high[j] += 1;
    }
  }
  for (let j = 0; j < H; j++) { low[j] /= T; high[j] /= T; }
  return { low, high };
}

const COLORS = { i: "#0072B2", f: "#D55E00", o: "#009E73", r: "#CC79A7", z: "#E69F00" };

export function createSaturation(root, { onUnit }) {
  const plots = root.querySelector("#saturation-plots");
  const summary = root.querySelector("#saturation-summary");
  let signature = "";

  async function update(result, k) {
    const gates = CELLS[result.cell].sigmoid;
    const layer = result.layers[k];
    root.dataset.gates = gates.join(",");
    if (!gates.length) {
      signature = "";
      plots.replaceChildren();
      summary.textContent = "A vanilla RNN has no gates: nothing in it can hold a state open or shut "
        + "it. Choose an LSTM or a GRU to see how their gates saturate.";
      return;
    }
    if (signature !== gates.join()) {
      plots.replaceChildren(...gates.map((g) => {
        const div = document.createElement("div");
        div.className = "satplot";
        div.dataset.gate = g;
        div.setAttribute("role", "group");
        div.setAttribute("aria-label", `saturation of the ${GATE_TITLES[g]}: one point per unit`);
        return div;
      }));
      signature = gates.join();
    }
    const words = [];
    await Promise.all(gates.map((g, n) => {
      const div = plots.children[n];
      const { low, high } = saturation(layer.gates[g]);
      div.gsSaturation = { low: Array.from(low), high: Array.from(high) };
      const H = low.length;
      const units = Array.from({ length: H }, (_, j) => j);
      const shut = units.filter((j) => low[j] > 0.5).length;
      const open = units.filter((j) => high[j] > 0.5).length;
      words.push(`${g}: ${open} of ${H} units open (> ${HIGH}) and ${shut} shut (< ${LOW}) for most steps`);
      return Plotly.react(div, [
        { type: "scatter", mode: "lines", x: [0, 1], y: [1, 0], hoverinfo: "skip", showlegend: false,
          line: { color: "#bbb", dash: "dot", width: 1 } },
        { type: "scatter", mode: "markers", x: Array.from(low), y: Array.from(high), customdata: units,
          marker: { size: 7, color: COLORS[g], opacity: 0.75, line: { width: 0.5, color: "#fff" } },
          hovertemplate: "unit %{customdata}<br>< 0.1: %{x:.1%} of steps<br>> 0.9: %{y:.1%}<extra></extra>",
          showlegend: false },
      ], {
        title: { text: `${g} — ${GATE_TITLES[g]}`, font: { size: 12 }, x: 0.02 },
        margin: { l: 48, r: 10, t: 28, b: 40 }, uirevision: "keep",
        xaxis: { title: { text: "share of steps < 0.1 (shut)", font: { size: 11 } }, range: [-0.03, 1.03],
                 tickformat: ".0%", tickfont: { size: 10 } },
        yaxis: { title: { text: "share > 0.9 (open)", font: { size: 11 } }, range: [-0.03, 1.03],
                 tickformat: ".0%", tickfont: { size: 10 } },
      }, { ...PLOT_CONFIG, toImageButtonOptions: { ...PLOT_CONFIG.toImageButtonOptions, filename: `gatescope-saturation-${g}` } })
        .then(() => {
          if (div.gsWired) return;
          div.gsWired = true;
          div.on("plotly_click", (ev) => {
            const p = ev.points && ev.points.find((q) => q.customdata !== undefined);
            if (p) onUnit(p.customdata);
          });
        });
    }));
    summary.textContent = `Layer ${k}, over ${result.steps} steps. ${words.join("; ")}. `
      + "Click a point to follow that unit in the heatmaps and the step panel.";
  }

  return { update };
}
