// Connectivity, as in Distill's "Visualizing memorization in RNNs" (Madsen, 2019): row t,
// column s = ‖∂(Σ_j h_t[j]) / ∂x_s‖₂ — how strongly the state after character t depends on
// the character at s ≤ t. A lower triangle, on a log colour scale: it spans many decades.

import { cellAt } from "../plotcell.js";
import { paint } from "../colors.js";
import { MARGIN, PLOT_CONFIG, SEQUENTIAL, fmt, showToken } from "../config.js";

export const DECADES = 6; // the colour scale spans at most 6 decades; below is the darkest colour

export function createConnectivity(root, { onCompute, onHide, onPick, tooltip }) {
  const plot = root.querySelector("#connectivity-plot");
  const summary = root.querySelector("#connectivity-summary");
  const button = root.querySelector("#connectivity-run");
  const error = root.querySelector("#error-connectivity");
  const hide = root.querySelector("#connectivity-hide");
  button.addEventListener("click", () => onCompute());
  hide.addEventListener("click", () => onHide());
  let shown = null; // {data, T, tokens}

  function setRunning(running) { button.disabled = running; root.setAttribute("aria-busy", String(running)); }
  function showError(message) { error.textContent = message || ""; error.hidden = !message; }

  function clear(message) {
    Plotly.purge(plot);
    shown = null;
    hide.hidden = true;
    showError("");
    delete root.dataset.layer;
    summary.textContent = message;
  }

  // arr: {data, shape: [T, T]} of one layer; tokens: the input's characters or null.
  async function update(arr, tokens, layer) {
    showError("");
    const T = arr.shape[0];
    let peak = 0;
    let least = Infinity;
    for (const v of arr.data) { if (v > peak) peak = v; if (v > 0 && v < least) least = v; }
    const top = peak > 0 ? Math.log10(peak) : 0;
    // the scale spans the data (a short sequence may hardly decay), at most DECADES of it
    const bottom = peak > 0 ? Math.max(top - DECADES, Math.min(Math.log10(least), top - 0.5)) : top - 1;
    const logs = Float64Array.from(arr.data, (v) => (v > 0 ? Math.log10(v) : -Infinity));
    // the map is painted with t down (rows) and s across (columns): an H×T image of (T, H)
    // data is exactly that when "time" is s and "unit" is t, so transpose into (s, t) order
    const bySource = new Float64Array(T * T);
    for (let t = 0; t < T; t++) for (let s = 0; s < T; s++) bySource[s * T + t] = logs[t * T + s];
    const pixels = paint(bySource, T, T, "unit", bottom, top);
    for (let t = 0; t < T; t++) {  // s > t: the future, which h_t cannot depend on — no colour
      for (let s = t + 1; s < T; s++) pixels[4 * (t * T + s) + 3] = 0;
    }
    const canvas = document.createElement("canvas");
    canvas.width = T;
    canvas.height = T;
    canvas.getContext("2d").putImageData(new ImageData(pixels, T, T), 0, 0);
    // token labels while they fit: across up to 80, down (rows are denser) up to 40
    const axis = (title, labels) => ({
      title: { text: title, font: { size: 11 } }, zeroline: false, showgrid: false, tickfont: { size: 10 },
      ...(labels ? { tickvals: tokens.map((_, t) => t), ticktext: tokens.map(showToken), tickangle: 0 } : {}),
    });
    const colorbar = {
      type: "scatter", x: [null], y: [null], mode: "markers", hoverinfo: "skip", showlegend: false,
      marker: { color: [top], cmin: bottom, cmax: top, colorscale: SEQUENTIAL, showscale: true,
                colorbar: { thickness: 8, len: 0.9, tickfont: { size: 10 }, outlinewidth: 0,
                            title: { text: "log₁₀", font: { size: 10 } } } },
    };
    shown = { data: arr.data, T, tokens };
    hide.hidden = false;
    plot.gsValues = { data: arr.data, shape: [T, T] }; // the numbers behind the map
    root.dataset.layer = String(layer);
    await Plotly.react(plot, [
      { type: "image", source: canvas.toDataURL("image/png"), x0: 0, dx: 1, y0: 0, dy: 1, hoverinfo: "none" },
      colorbar,
    ], {
      margin: { ...MARGIN, l: 60, b: 44, t: 10 }, plot_bgcolor: "#fff", uirevision: "keep",
      xaxis: { ...axis("input character s", tokens && T <= 80), range: [-0.5, T - 0.5] },
      yaxis: { ...axis("output step t", tokens && T <= 40), range: [T - 0.5, -0.5], scaleanchor: false },
    }, { ...PLOT_CONFIG, toImageButtonOptions: { ...PLOT_CONFIG.toImageButtonOptions, filename: "gatescope-connectivity" } });
    if (!plot.gsWired) {
      plot.gsWired = true;
      plot.on("plotly_hover", (ev) => {
        const p = ev.points && ev.points[0];
        if (!p || !shown) return;
        const s = Math.round(p.x);
        const t = Math.round(p.y);
        if (s < 0 || t < 0 || s >= shown.T || t >= shown.T || s > t) { tooltip.hide(); return; }
        const tok = (n) => (shown.tokens ? ` ${JSON.stringify(shown.tokens[n])}` : "");
        tooltip.show(ev.event, `output step ${t}${tok(t)}\n← input ${s}${tok(s)}\n‖∂Σh_t/∂x_s‖ = ${fmt(shown.data[t * shown.T + s], 6)}`);
      });
      plot.on("plotly_unhover", () => tooltip.hide());
      plot.on("plotly_click", (ev) => {
        const cell = cellAt(plot, ev);
        if (cell && cell.y >= 0) onPick(cell.y);
      });
    }
    // how far back does the last step still see? the oldest s within 1e−3 of its row's peak
    const last = Array.from(arr.data.subarray((T - 1) * T, T * T));
    const rowPeak = Math.max(...last);
    const reach = rowPeak > 0 ? last.findIndex((v) => v >= 1e-3 * rowPeak) : T - 1;
    const back = (n) => (n === 0 ? "the character itself" : `the character ${n} step${n === 1 ? "" : "s"} back`);
    summary.textContent = `Layer ${layer}, ${T} steps. The last state still depends on ${back(T - 1 - reach)} `
      + `with at least 1/1000 of the strength of its strongest input, ${back(T - 1 - last.indexOf(rowPeak))}. `
      + `Colours span 10^${fmt(bottom, 3)} to 10^${fmt(top, 3)}. Click a row to step there.`;
  }

  return { update, clear, setRunning, showError };
}
