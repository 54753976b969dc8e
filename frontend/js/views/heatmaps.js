// A column of heatmaps (time across, units down) for one layer, with a time cursor.
// Drawn once per run or layer; a step only moves the cursors (no Plotly call at all).

import { cellAt } from "../plotcell.js";
import { paint } from "../colors.js";
import {
  DIVERGING, MARGIN, PLOT_CONFIG, SEQUENTIAL, fmt, showToken, windowBoundaries,
} from "../config.js";

export const LOG_DECADES = 6;

// A signed map on a log scale: v → sign(v)·log₁₀(|v| / floor) / D in [−1, 1], with D decades
// below the largest |v| (floor = max|v|·10^−D); smaller values are white. A gradient that
// vanishes over hundreds of steps shows its whole fall instead of one dark last column.
export function symlog(data, decades = LOG_DECADES) {
  let m = 0;
  for (const v of data) if (Number.isFinite(v) && Math.abs(v) > m) m = Math.abs(v);
  const out = new Float64Array(data.length);
  if (m === 0) return { data: out, max: 0 };
  const floor = m * 10 ** -decades;
  for (let k = 0; k < data.length; k++) {
    const v = data[k];
    const a = Math.abs(v);
    out[k] = !Number.isFinite(v) ? v : a > floor ? Math.sign(v) * Math.log10(a / floor) / decades : 0;
  }
  return { data: out, max: m };
}

export function createHeatmaps(container, { onPick, tooltip }) {
  let panels = [];       // [{key, div, plot, cursor}]
  let signature = "";    // which panels exist
  let step = 0;

  function build(defs) {
    container.replaceChildren();
    panels = defs.map(([title, , , key]) => {
      const div = document.createElement("div");
      div.className = "map";
      const h3 = document.createElement("h3");
      h3.textContent = title;
      div.setAttribute("role", "group");
      div.setAttribute("aria-label", `heatmap of ${title}: time across, units down`);
      const plot = document.createElement("div");
      plot.className = "plot";
      const cursor = document.createElement("div");
      cursor.className = "cursor";
      cursor.hidden = true;
      div.append(h3, plot, cursor);
      container.append(div);
      return { title, key: key ?? title, div, plot, cursor, wired: false };
    });
  }

  // defs: [[title, array {data, shape:[T, H]}, kind, key?]] (key: what onPick reports, e.g.
  // the gate); tokens: strings or null; shapes: more Plotly shapes to draw on every map;
  // scale: "linear" or "log" (signed maps only, see symlog).
  async function update(defs, tokens, revision, truncate = null, shapes = [], scale = "linear") {
    const sig = defs.map((d) => d[0]).join("|");
    if (sig !== signature) {
      for (const p of panels) Plotly.purge(p.plot);
      build(defs);
      signature = sig;
    }
    await Promise.all(defs.map(([title, arr, kind], k) => draw(panels[k], title, arr, kind, tokens,
                                                                revision, truncate, shapes, scale)));
    moveCursor(step);
  }

  // Plotly draws the axes, zoom, hover events and PNG export; the cells themselves are one
  // image painted here from the typed array (Plotly's own heatmap colours each of 262,144
  // cells through d3 — ~90 ms per map at T = 1024, H = 256; this costs a few).
  function draw(panel, title, arr, kind, tokens, revision, truncate, shapes, scale) {
    const [T, H] = arr.shape;
    let zmin = 0;
    let zmax = 1;
    const log = scale === "log" && kind === "signed";
    let painted = arr.data;  // what the colours encode
    let colorbarAxis = {};
    if (log) {
      const { data, max } = symlog(arr.data);
      painted = data;
      zmin = -1;
      zmax = 1;
      const ticks = [-1, -0.5, 0, 0.5, 1];
      colorbarAxis = { tickvals: ticks, ticktext: ticks.map((u) => (u === 0 ? "0" : fmt(Math.sign(u) * max * 10 ** (LOG_DECADES * (Math.abs(u) - 1)), 2))) };
    } else if (kind === "signed") {
      let m = 0;
      for (const v of arr.data) if (Math.abs(v) > m) m = Math.abs(v);
      zmax = m > 0 ? m : 1;
      zmin = -zmax;
    }
    const canvas = document.createElement("canvas");
    canvas.width = T;
    canvas.height = H;
    canvas.getContext("2d").putImageData(new ImageData(paint(painted, T, H, kind, zmin, zmax), T, H), 0, 0);
    const image = {
      type: "image", source: canvas.toDataURL("image/png"), x0: 0, dx: 1, y0: 0, dy: 1,
      hoverinfo: "none", zsmooth: false,
    };
    const colorbar = {  // no points: it only carries the colour scale's bar
      type: "scatter", x: [null], y: [null], mode: "markers", hoverinfo: "skip", showlegend: false,
      marker: { color: [zmin], cmin: zmin, cmax: zmax, colorscale: kind === "unit" ? SEQUENTIAL : DIVERGING,
                showscale: true, colorbar: { thickness: 8, len: 0.9, tickfont: { size: 10 }, outlinewidth: 0,
                                             x: 1.01, xanchor: "left", xpad: 4, ...colorbarAxis } },
    };
    const xaxis = { range: [-0.5, T - 0.5], zeroline: false, showgrid: false, tickfont: { size: 10 } };
    if (tokens && T <= 80) {
      xaxis.tickvals = tokens.map((_, t) => t);
      xaxis.ticktext = tokens.map(showToken);
      xaxis.tickangle = 0;
    }
    const layout = {
      margin: { ...MARGIN }, xaxis,
      // an image trace would otherwise square its pixels (scaleanchor): cells fill the width
      yaxis: { range: [H - 0.5, -0.5], zeroline: false, showgrid: false, tickfont: { size: 10 },
               scaleanchor: false },
      uirevision: "keep", datarevision: revision, plot_bgcolor: "#fff",
      shapes: [...windowBoundaries(T, truncate), ...shapes],
    };
    panel.values = { data: arr.data, shape: [T, H], kind, zmin, zmax, scale: log ? "log" : "linear", painted }; // what the image shows
    panel.plot.gsValues = panel.values; // for tests and the console: the numbers behind the map
    panel.tokens = tokens;
    const config = { ...PLOT_CONFIG, toImageButtonOptions: { ...PLOT_CONFIG.toImageButtonOptions, filename: `gatescope-${title}` } };
    return Plotly.react(panel.plot, [image, colorbar], layout, config).then(() => {
      if (panel.wired) return;
      panel.wired = true;
      panel.plot.on("plotly_click", (ev) => {
        const cell = cellAt(panel.plot, ev);
        const [T, H] = panel.values.shape;
        if (cell && cell.x >= 0 && cell.x < T && cell.y >= 0 && cell.y < H) onPick(cell.x, cell.y, panel.key);
      });
      panel.plot.on("plotly_hover", (ev) => {
        const p = ev.points && ev.points[0];
        if (!p) return;
        const t = Math.round(p.x);
        const j = Math.round(p.y);
        const { data, shape } = panel.values;
        if (t < 0 || j < 0 || t >= shape[0] || j >= shape[1]) return;
        const tok = panel.tokens ? `  token ${JSON.stringify(panel.tokens[t])}` : "";
        tooltip.show(ev.event, `${panel.title}\nstep ${t}${tok}\nunit ${j}\nvalue ${fmt(data[t * shape[1] + j], 6)}`);
      });
      panel.plot.on("plotly_unhover", () => tooltip.hide());
      panel.plot.on("plotly_relayout", () => moveCursor(step));
    });
  }

  // The cursor over column t of every heatmap: a positioned element, no redraw.
  function moveCursor(t) {
    step = t;
    for (const p of panels) placeCursor(p.plot, p.cursor, t);
  }

  return { update, moveCursor, get panels() { return panels; } };
}

export function placeCursor(plot, cursor, t) {
  const full = plot._fullLayout;
  if (!full || !full.xaxis || !full.xaxis.l2p) { cursor.hidden = true; return; }
  const xa = full.xaxis;
  const ya = full.yaxis;
  const half = cursor.classList.contains("line") ? 0 : 0.5; // a line marks t itself
  const left = xa._offset + xa.l2p(t - half);
  const right = xa._offset + xa.l2p(t + half);
  const inside = right >= xa._offset && left <= xa._offset + xa._length;
  cursor.hidden = !inside;
  cursor.style.left = `${Math.max(left, xa._offset)}px`;
  cursor.style.width = `${Math.max(Math.min(right, xa._offset + xa._length) - Math.max(left, xa._offset), 1)}px`;
  cursor.style.top = `${ya._offset}px`;
  cursor.style.height = `${ya._length}px`;
}
