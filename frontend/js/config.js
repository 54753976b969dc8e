// Gate names, panels and colours in one place. Views read these; nothing else names a gate.

export const CELLS = {
  lstm: { label: "LSTM", gates: ["i", "f", "g", "o"], sigmoid: ["i", "f", "o"], hasC: true },
  gru: { label: "GRU", gates: ["r", "z", "n"], sigmoid: ["r", "z"], hasC: false },
  rnn_tanh: { label: "RNN tanh", gates: [], sigmoid: [], hasC: false },
  rnn_relu: { label: "RNN relu", gates: [], sigmoid: [], hasC: false },
};

export const GATE_TITLES = {
  i: "input gate i", f: "forget gate f", g: "candidate g", o: "output gate o",
  r: "reset gate r", z: "update gate z", n: "candidate n", a: "pre-activation a",
  c: "cell state c", h: "hidden state h",
};

// Colour scales readable by colour-blind viewers: viridis for 0..1 gates; a blue–white–red
// diverging scale (ColorBrewer RdBu, white at zero) for signed values and all gradients.
export const SEQUENTIAL = "Viridis";
export const DIVERGING = [
  [0, "#053061"], [0.1, "#2166ac"], [0.2, "#4393c3"], [0.3, "#92c5de"], [0.4, "#d1e5f0"],
  [0.5, "#ffffff"],
  [0.6, "#fddbc7"], [0.7, "#f4a582"], [0.8, "#d6604d"], [0.9, "#b2182b"], [1, "#67001f"],
];

// The value heatmaps of a layer, top to bottom, as [title, where in the layer, kind].
// kind: "unit" = sigmoid 0..1; "signed" = symmetric scale around 0.
export function valuePanels(cell) {
  if (cell === "lstm") {
    return [["i", ["gates", "i"], "unit"], ["f", ["gates", "f"], "unit"], ["g", ["gates", "g"], "signed"],
      ["o", ["gates", "o"], "unit"], ["c", ["c"], "signed"], ["h", ["h"], "signed"]];
  }
  if (cell === "gru") {
    return [["r", ["gates", "r"], "unit"], ["z", ["gates", "z"], "unit"], ["n", ["gates", "n"], "signed"],
      ["h", ["h"], "signed"]];
  }
  return [["h", ["h"], "signed"], ["a", ["pre", "a"], "signed"]];
}

// The array at `path` (e.g. ["gates", "f"], as the panels above name it) of a result's layer.
export const at = (layer, path) => path.reduce((obj, key) => obj && obj[key], layer);

// Gradient heatmaps: ∂L/∂h_t, ∂L/∂c_t (LSTM), ∂L/∂(pre-activation) of each gate.
export function gradientPanels(cell) {
  const out = [["∂L/∂h", ["grads", "h"], "signed"]];
  if (CELLS[cell].hasC) out.push(["∂L/∂c", ["grads", "c"], "signed"]);
  const gates = CELLS[cell].gates.length ? CELLS[cell].gates : ["a"];
  for (const g of gates) out.push([`∂L/∂a_${g}`, ["grads", "gates", g], "signed"]);
  return out;
}

// One plot area for every time plot, so their time axes line up under each other: the
// right margin holds any colour bar with its labels, the left one the log axis' ticks.
export const MARGIN = Object.freeze({ l: 52, r: 64, t: 20, b: 22 });

// Truncated BPTT: a dashed line where each window starts (gradients stop there).
// `truncate`: the window k, or { k, reverse: true } for a bidirectional layer's reverse
// direction, whose windows are counted from its first step read, T − 1.
export function windowBoundaries(T, truncate) {
  const k = typeof truncate === "object" && truncate ? truncate.k : truncate;
  if (!k) return [];
  const reverse = typeof truncate === "object" && truncate.reverse;
  return Array.from({ length: Math.ceil(T / k) - 1 }, (_, n) => {
    const x = reverse ? T - (n + 1) * k - 0.5 : (n + 1) * k - 0.5;
    return { type: "line", x0: x, x1: x, yref: "paper", y0: 0, y1: 1,
             line: { color: "#444", dash: "dash", width: 1 } };
  });
}

export const PLOT_CONFIG = {
  displaylogo: false,
  responsive: true,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
  toImageButtonOptions: { format: "png", scale: 2 },
};

// A token as it can be shown on an axis: spaces and line breaks made visible.
export function showToken(tok) {
  if (tok === " ") return "␣";
  if (tok === "\n") return "⏎";
  if (tok === "\t") return "⇥";
  return tok;
}

// Values for a log axis: exact zeros (a truncated window, a dead unit) and non-finite values
// cannot sit on it, so they become gaps (null). `data` is a typed array.
export function logPoints(data) {
  return Array.from(data, (v) => (v > 0 && Number.isFinite(v) ? v : null));
}

export function fmt(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return "null";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(digits - 1);
  return Number(v.toPrecision(digits)).toString();
}
