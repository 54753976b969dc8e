// Downloads: the whole result as the API's JSON, and the current step's values as CSV.

import { stepValues } from "../values.js";

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
  const columns = Object.keys(v).filter((k) => !HELPERS.has(k) && v[k] && v[k].length === res.hidden_size);
  const lines = [["unit", ...columns].join(",")];
  for (let j = 0; j < res.hidden_size; j++) {
    lines.push([j, ...columns.map((k) => (Number.isFinite(v[k][j]) ? String(v[k][j]) : ""))].join(","));
  }
  const header = `# gatescope ${res.cell} layer ${layer} step ${t}${res.tokens ? ` token ${JSON.stringify(res.tokens[t])}` : ""}`;
  return `${header}\n${lines.join("\n")}\n`;
}
