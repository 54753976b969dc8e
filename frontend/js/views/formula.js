// The lecture's formula: ∂c_t/∂c_{t−1} = direct + forget + input + candidate (LSTM), each
// term's Frobenius norm and the gradient it carries back, per step, one colour per term —
// and at the cursor's step the H×H matrices themselves. For a GRU or an RNN, the whole
// ∂h_t/∂h_{t−1}; for the RNN, the fixed pattern diag(1 − h_t²)·W_hh that makes it vanish.

import { DIVERGING, fmt, logPoints, MARGIN, PLOT_CONFIG } from "../config.js";

export const TERMS = [  // colour-blind-safe (Okabe–Ito), the same in equation, lines, matrices
  { key: "direct", label: "direct", color: "#0072B2", math: "diag(f_t)" },
  { key: "forget", label: "forget", color: "#D55E00", math: "diag(c_{t−1}⊙f_t⊙(1−f_t))·W_hf·D_{t−1}" },
  { key: "input", label: "input", color: "#009E73", math: "diag(g_t⊙i_t⊙(1−i_t))·W_hi·D_{t−1}" },
  { key: "candidate", label: "candidate", color: "#CC79A7", math: "diag(i_t⊙(1−g_t²))·W_hg·D_{t−1}" },
];
const TOTAL = { key: "total", label: "total", color: "#222222" };

const EXPLAIN = {
  gru: "∂h_t/∂h_{t−1} = diag(z) + diag((h_{t−1}−n)⊙z(1−z))·W_hz + diag((1−z)(1−n²)⊙r)·W_hn + "
    + "diag((1−z)(1−n²)⊙hn⊙r(1−r))·W_hr — the update gate's diag(z) is a direct path, like the "
    + "LSTM's forget gate, so the gradient need not follow one fixed pattern.",
  rnn_tanh: "∂h_t/∂h_{t−1} = diag(1 − h_t²)·W_hh — the same W_hh at every step, scaled by tanh's "
    + "slope (at most 1): a fixed pattern, so over many steps the gradient shrinks (or grows) "
    + "geometrically. That is why a vanilla RNN loses long-term dependencies.",
  rnn_relu: "∂h_t/∂h_{t−1} = diag([a_t > 0])·W_hh — the same W_hh at every step, masked by the "
    + "active units: a fixed pattern, so the gradient vanishes or explodes geometrically.",
};

function frobenius(data) {
  let sum = 0;
  for (const v of data) sum += v * v;
  return Math.sqrt(sum);
}

export function createFormula(root) {
  const eq = root.querySelector("#formula-eq");
  const normPlot = root.querySelector("#formula-norms");
  const flowPlot = root.querySelector("#formula-flow");
  const stepTitle = root.querySelector("#formula-step-title");
  const matrices = root.querySelector("#formula-matrices");
  const error = root.querySelector("#error-formula");

  function equation(cell) {
    eq.replaceChildren();
    if (cell !== "lstm") {
      eq.textContent = EXPLAIN[cell];
      return;
    }
    eq.append("∂c_t/∂c_{t−1} = ");
    TERMS.forEach((term, k) => {
      const span = document.createElement("span");
      span.className = "term";
      span.style.color = term.color;
      span.title = term.label;
      span.textContent = term.math;
      eq.append(...(k ? [" + ", span] : [span]));
    });
    eq.append("   with D_{t−1} = diag(o_{t−1}⊙(1−tanh²(c_{t−1}))) = ∂h_{t−1}/∂c_{t−1}");
  }


  // Called once per result or layer: the per-step lines.
  async function update(res, k) {
    const jac = res.layers[k].jacobian;
    equation(res.cell);
    const x = Array.from({ length: res.steps }, (_, t) => t);
    const lines = (list, source) => list.filter((term) => source[term.key]).map((term) => ({
      x, y: logPoints(source[term.key].data), name: term.label, mode: "lines",
      line: { color: term.color, width: term.key === "total" ? 2.5 : 1.5 },
    }));
    const layout = (title) => ({
      margin: { ...MARGIN, t: 26, b: 30 }, uirevision: "keep", hovermode: "x unified",
      title: { text: title, font: { size: 12 }, x: 0.01 },
      xaxis: { title: { text: "t", standoff: 2 }, tickfont: { size: 10 } },
      yaxis: { type: "log", exponentformat: "power", tickfont: { size: 10 } },
      legend: { orientation: "h", y: -0.25, font: { size: 10 } },
    });
    const config = (name) => ({ ...PLOT_CONFIG, toImageButtonOptions: { ...PLOT_CONFIG.toImageButtonOptions, filename: name } });
    const normTitle = res.cell === "lstm" ? "‖term‖_F per step" : "‖∂h_t/∂h_{t−1}‖_F per step";
    await Plotly.react(normPlot, lines(res.cell === "lstm" ? [...TERMS, TOTAL] : [TOTAL], jac),
                       layout(normTitle), config("gatescope-jacobian-terms"));
    flowPlot.hidden = !jac.flow;
    if (jac.flow) {
      await Plotly.react(flowPlot, lines(TERMS, jac.flow),
                         layout("gradient reaching c_{t−1} through each term: ‖termᵀ ∂L/∂c_t‖"),
                         config("gatescope-gradient-flow"));
    }
  }

  // The matrices at one step (a /jacobian result), drawn as small heatmaps.
  async function showMatrices(jac, cell, tokens) {
    error.hidden = true;
    const tok = tokens ? ` (token ${JSON.stringify(tokens[jac.step])})` : "";
    stepTitle.textContent = `At step t = ${jac.step}${tok}, layer ${jac.layer}: row i, column j = ∂state_t[i]/∂state_{t−1}[j]`;
    const items = cell === "lstm" ? [...TERMS.map((t) => [t, jac.terms[t.key]]), [TOTAL, jac.total]]
      : [[{ ...TOTAL, label: "∂h_t/∂h_{t−1}" }, jac.total]];
    if (matrices.children.length !== items.length) {
      for (const div of matrices.children) Plotly.purge(div);
      matrices.replaceChildren(...items.map(() => {
        const div = document.createElement("div");
        div.className = "matrix";
        return div;
      }));
    }
    await Promise.all(items.map(([term, arr], k) => {
      const [H] = arr.shape;
      const rows = Array.from({ length: H }, (_, i) => arr.data.subarray(i * H, (i + 1) * H));
      let m = 0;
      for (const v of arr.data) if (Math.abs(v) > m) m = Math.abs(v);
      matrices.children[k].gsValues = arr;
      return Plotly.react(matrices.children[k], [{
        type: "heatmap", z: rows, zmin: -(m || 1), zmax: m || 1, colorscale: DIVERGING,
        colorbar: { thickness: 6, tickfont: { size: 9 }, outlinewidth: 0 },
        hovertemplate: "row %{y}, column %{x}: %{z:.4g}<extra></extra>",
      }], {
        margin: { l: 28, r: 4, t: 22, b: 20 }, uirevision: "keep",
        title: { text: `${term.label}  (‖·‖_F = ${fmt(frobenius(arr.data))})`, font: { size: 11, color: term.color }, x: 0.02 },
        yaxis: { autorange: "reversed", tickfont: { size: 9 } }, xaxis: { tickfont: { size: 9 } },
      }, { ...PLOT_CONFIG, toImageButtonOptions: { ...PLOT_CONFIG.toImageButtonOptions, filename: `gatescope-${term.key}-t${jac.step}` } });
    }));
  }

  function showError(message) { error.textContent = message; error.hidden = false; }

  return { update, showMatrices, showError };
}
