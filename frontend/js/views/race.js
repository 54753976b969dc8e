// The gradient race: ‖∂L/∂h_t‖ of a tanh RNN, an LSTM and a GRU on the same sequence,
// overlaid on a log scale, with each one's memory horizon stated in words.

import { fmt, logPoints, MARGIN, PLOT_CONFIG } from "../config.js";

export const RACERS = [  // colour-blind-safe (Okabe–Ito)
  { cell: "rnn_tanh", label: "RNN (tanh)", color: "#D55E00" },
  { cell: "lstm", label: "LSTM", color: "#0072B2" },
  { cell: "gru", label: "GRU", color: "#009E73" },
];
export const HORIZON_FLOOR = 1e-6; // "still there": above this share of its largest value

// The longest lag back from the last step at which ‖∂L/∂h_t‖ ≥ 1e−6 of its largest value.
export function horizon(norms) {
  const T = norms.length;
  let peak = 0;
  for (const v of norms) if (Number.isFinite(v) && v > peak) peak = v;
  if (peak === 0) return 0;
  for (let t = 0; t < T; t++) if (norms[t] >= HORIZON_FLOOR * peak) return T - 1 - t;
  return 0;
}

export function createRace(root, { onRun, onScale }) {
  const plot = root.querySelector("#race-plot");
  const list = root.querySelector("#race-horizons");
  const scale = root.querySelector("#race-scale");
  const readout = root.querySelector("#race-scale-readout");
  const forget = root.querySelector("#race-fb");
  const button = root.querySelector("#race-run");
  const error = root.querySelector("#error-race");
  // each reports the race's settings: {scale, forgetBias (null: none)}
  button.addEventListener("click", () => onRun(read()));
  scale.addEventListener("input", () => { readout.textContent = `× ${Number(scale.value).toFixed(2)}`; });
  scale.addEventListener("change", () => onScale(read()));

  function read() {
    return { scale: Number(scale.value), forgetBias: forget.value === "" ? null : Number(forget.value) };
  }

  // Show settings; returns them as the controls hold them (the slider keeps to its range).
  function write({ scale: s, forgetBias }) {
    scale.value = String(s);
    readout.textContent = `× ${Number(scale.value).toFixed(2)}`;
    forget.value = forgetBias === null ? "" : String(forgetBias);
    return read();
  }

  function setRunning(running) { button.disabled = running; root.setAttribute("aria-busy", String(running)); }

  function showError(message) { error.textContent = message || ""; error.hidden = !message; }

  // results: [{racer, result}] in RACERS order.
  async function update(results) {
    const traces = results.map(({ racer, result }) => {
      const norms = result.layers[0].grads.h_norm.data;
      return {
        x: Array.from(norms, (_, t) => t), y: logPoints(norms),
        name: racer.label, mode: "lines", line: { color: racer.color, width: 2 },
      };
    });
    await Plotly.react(plot, traces, {
      margin: { ...MARGIN, t: 8, b: 34 }, uirevision: "keep",
      xaxis: { title: { text: "t (the loss is at the last step)", standoff: 2 }, tickfont: { size: 10 } },
      yaxis: { type: "log", exponentformat: "power", title: { text: "‖∂L/∂h_t‖" }, tickfont: { size: 10 } },
      legend: { orientation: "h", x: 0, y: 1.12 }, hovermode: "x unified",
    }, { ...PLOT_CONFIG, toImageButtonOptions: { ...PLOT_CONFIG.toImageButtonOptions, filename: "gatescope-race" } });
    list.replaceChildren(...results.map(({ racer, result }) => {
      const li = document.createElement("li");
      const norms = result.layers[0].grads.h_norm.data;
      const T = norms.length;
      const lag = horizon(norms);
      const overflow = result.warnings.find((w) => w.includes("grads.h"));
      li.dataset.cell = racer.cell;
      li.dataset.horizon = String(lag);
      const growth = norms[0] / norms[T - 1];  // over 10: it grows going back, it explodes
      const steps = (n) => `${n} step${n === 1 ? "" : "s"}`;
      li.textContent = overflow
        ? `${racer.label}: the gradient explodes — it overflowed float64 (${overflow}); gaps mark the overflowed steps.`
        : growth > 10
          ? `${racer.label}: the gradient explodes going back: ‖∂L/∂h_0‖ = ${fmt(norms[0])}, ${fmt(growth, 2)}× the last step's.`
          : lag >= T - 1
            ? `${racer.label}: the gradient keeps at least 10⁻⁶ of its largest value all the way back — ${steps(T - 1)}, the whole sequence (‖∂L/∂h_0‖ = ${fmt(norms[0])}).`
            : `${racer.label}: the gradient keeps at least 10⁻⁶ of its largest value for ${steps(lag)} back, then vanishes (‖∂L/∂h_0‖ = ${fmt(norms[0])}).`;
      return li;
    }));
  }

  return { write, update, setRunning, showError };
}
