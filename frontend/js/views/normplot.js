// ‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖) against t on a log scale, with the time cursor.

import { logPoints, MARGIN, PLOT_CONFIG } from "../config.js";
import { placeCursor } from "./heatmaps.js";

export function createNormPlot(div) {
  const plot = document.createElement("div");
  plot.style.height = "100%";
  const cursor = document.createElement("div");
  cursor.className = "cursor line";
  cursor.hidden = true;
  div.append(plot, cursor);
  let step = 0;
  let wired = false;


  async function update(grads, revision) {
    const T = grads.h_norm.shape[0];
    const x = Array.from({ length: T }, (_, t) => t);
    const traces = [{ x, y: logPoints(grads.h_norm.data), name: "‖∂L/∂h_t‖", mode: "lines", line: { color: "#2456a6" } }];
    if (grads.c_norm) {
      traces.push({ x, y: logPoints(grads.c_norm.data), name: "‖∂L/∂c_t‖", mode: "lines", line: { color: "#c05600", dash: "dot" } });
    }
    await Plotly.react(plot, traces, {
      margin: { ...MARGIN, t: 8, b: 28 }, uirevision: "keep", datarevision: revision,
      xaxis: { range: [-0.5, T - 0.5], title: { text: "t", standoff: 2 }, tickfont: { size: 10 } },
      yaxis: { type: "log", exponentformat: "power", tickfont: { size: 10 } },
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1, font: { size: 11 } },
      hovermode: "x unified",
    }, { ...PLOT_CONFIG, toImageButtonOptions: { ...PLOT_CONFIG.toImageButtonOptions, filename: "gatescope-gradient-norms" } });
    if (!wired) {
      wired = true;
      plot.on("plotly_relayout", () => placeCursor(plot, cursor, step));
    }
    moveCursor(step);
  }

  function moveCursor(t) {
    step = t;
    placeCursor(plot, cursor, t);
  }

  return { update, moveCursor, plot };
}
