// Truncated BPTT against full BPTT on the same run: ‖∂L/∂h_t‖ side by side, the share of
// the gradient each step loses, and the cosine similarity of the parameter gradients.

import { fmt, logPoints, MARGIN, PLOT_CONFIG, windowBoundaries } from "../config.js";

// ‖full − truncated‖ / ‖full‖ per step of the top layer's ∂L/∂h_t (0 where full is 0).
export function lostShare(full, truncated) {
  const [T, H] = full.shape;
  return Array.from({ length: T }, (_, t) => {
    let diff = 0;
    let norm = 0;
    for (let j = t * H; j < (t + 1) * H; j++) {
      diff += (full.data[j] - truncated.data[j]) ** 2;
      norm += full.data[j] ** 2;
    }
    return norm > 0 ? Math.sqrt(diff / norm) : 0;
  });
}

// cos(full, truncated) over every parameter gradient, flattened together.
export function cosine(fullGrads, truncGrads) {
  let dot = 0;
  let a = 0;
  let b = 0;
  for (const name of Object.keys(fullGrads)) {
    const x = fullGrads[name].data;
    const y = truncGrads[name].data;
    for (let k = 0; k < x.length; k++) { dot += x[k] * y[k]; a += x[k] * x[k]; b += y[k] * y[k]; }
  }
  return a > 0 && b > 0 ? dot / Math.sqrt(a * b) : 0;
}

export function createTbptt(root) {
  const summary = root.querySelector("#tbptt-summary");
  const normPlot = root.querySelector("#tbptt-norms");
  const lostPlot = root.querySelector("#tbptt-lost");
  const error = root.querySelector("#error-tbptt");

  function clear() {
    for (const plot of [normPlot, lostPlot]) Plotly.purge(plot);
    summary.textContent = "Set a truncation window above and run: the same sequence is then also "
      + "run with full BPTT, and the two gradients are compared here.";
    error.hidden = true;
  }

  async function update(truncated, full) {
    error.hidden = true;
    const k = truncated.truncate;
    const top = (truncated.num_layers - 1) * (truncated.bidirectional ? 2 : 1);  // its forward direction
    const T = truncated.steps;
    const x = Array.from({ length: T }, (_, t) => t);
    const boundaries = windowBoundaries(T, k);
    const layout = (title, log) => ({
      margin: { ...MARGIN, t: 26, b: 30 }, uirevision: "keep", hovermode: "x unified", shapes: boundaries,
      title: { text: title, font: { size: 12 }, x: 0.01 },
      xaxis: { title: { text: "t", standoff: 2 }, range: [-0.5, T - 0.5], tickfont: { size: 10 } },
      yaxis: log ? { type: "log", exponentformat: "power", tickfont: { size: 10 } } : { range: [0, 1.05], tickformat: ".0%", tickfont: { size: 10 } },
      legend: { orientation: "h", y: -0.25, font: { size: 10 } },
    });
    const config = (name) => ({ ...PLOT_CONFIG, toImageButtonOptions: { ...PLOT_CONFIG.toImageButtonOptions, filename: name } });
    await Plotly.react(normPlot, [
      { x, y: logPoints(full.layers[top].grads.h_norm.data), name: "full BPTT", mode: "lines", line: { color: "#0072B2", width: 2 } },
      { x, y: logPoints(truncated.layers[top].grads.h_norm.data), name: `truncated, k = ${k}`, mode: "lines+markers", marker: { size: 4 }, line: { color: "#D55E00", dash: "dot", width: 2 } },
    ], layout("‖∂L/∂h_t‖ of the top layer (dashed: window boundaries)", true), config("gatescope-tbptt-norms"));
    const lost = lostShare(full.layers[top].grads.h, truncated.layers[top].grads.h);
    await Plotly.react(lostPlot, [{ x, y: lost, name: "lost", type: "bar", marker: { color: "#D55E00" } }],
                       layout("share of ∂L/∂h_t lost to truncation: ‖full − truncated‖ / ‖full‖", false),
                       config("gatescope-tbptt-lost"));
    lostPlot.gsLost = lost;
    const cos = cosine(full.param_grads, truncated.param_grads);
    root.dataset.cosine = String(cos);
    const dropped = lost.filter((v) => v > 0.999).length;
    summary.textContent = `With a window of ${k} steps, ${dropped} of ${T} steps lose (almost) all of their gradient; `
      + `the truncated parameter gradient points ${fmt(Math.acos(Math.min(1, Math.max(-1, cos))) * 180 / Math.PI, 3)}° `
      + `away from the full one (cosine similarity ${fmt(cos, 6)}). A dependency longer than the window cannot be learnt: `
      + "nothing flows back across a boundary.";
  }

  function showError(message) { error.textContent = message; error.hidden = false; }

  return { update, clear, showError };
}
