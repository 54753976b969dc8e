// Downloads: the whole result as the API's JSON, and the current step's values as CSV.

import { layerLabel, stepValues } from "../values.js";

const HELPERS = new Set(["x", "dcNext", "fNext"]); // not this step's own vectors

export function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// One row per unit: every vector of the step, forward and backward.
export function stepCSV(res, layer, t, inputs) {
  const v = stepValues(res, layer, t, inputs);
  // every vector of the step: H wide, or P wide (h with proj_size: its rows past P empty)
  const widths = new Set([res.hidden_size, res.proj_size || res.hidden_size]);
  const columns = Object.keys(v).filter((k) => !HELPERS.has(k) && v[k] && widths.has(v[k].length));
  const lines = [["unit", ...columns].join(",")];
  for (let j = 0; j < res.hidden_size; j++) {
    lines.push([j, ...columns.map((k) => (j < v[k].length && Number.isFinite(v[k][j]) ? String(v[k][j]) : ""))].join(","));
  }
  const header = `# gatescope ${res.cell} ${layerLabel(res, layer)} step ${t}${res.tokens ? ` token ${JSON.stringify(res.tokens[t])}` : ""}`;
  return `${header}\n${lines.join("\n")}\n`;
}
