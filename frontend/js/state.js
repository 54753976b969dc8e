// The one state object: the run configuration, the view (step, unit, layer), the result.
// It round-trips through the URL, so a copied link reproduces the view.

export const DEFAULTS = Object.freeze({
  cell: "lstm", hidden: 16, layers: 1, weights: "random", seed: 0, forgetBias: "",
  model: "", mode: "text", sequence: "hello world", loss: "last", lossStep: "",
  lossUnit: 0, truncate: "", clip: "", dtype: "float64",
});
export const VIEW_DEFAULTS = Object.freeze({
  step: 0, unit: 0, layer: 0,
  race: 0, raceScale: 1, raceForget: 1,  // the gradient race: shown?, its scale, LSTM bias
  iv: "",    // the interventions, as views/interventions.js formats them
  conn: 0,   // connectivity shown?
  tour: 0,   // the guided tour's stop, from 1; 0 = none
  gscale: "linear",  // the gradient heatmaps' colour scale: "linear" or "log"
});

// URL parameter for each field (short, stable).
const PARAMS = {
  cell: "cell", hidden: "H", layers: "L", weights: "w", seed: "seed", forgetBias: "fb",
  model: "model", mode: "mode", sequence: "seq", loss: "loss", lossStep: "ls", lossUnit: "lu",
  truncate: "k", clip: "clip", dtype: "dtype", step: "t", unit: "u", layer: "layer",
  race: "race", raceScale: "rs", raceForget: "rfb", iv: "iv", conn: "conn", tour: "tour",
  gscale: "gs",
};
const NUMERIC = new Set(["hidden", "layers", "seed", "lossUnit", "step", "unit", "layer", "race",
  "raceScale", "raceForget", "conn", "tour"]);

export function createState() {
  return {
    config: { ...DEFAULTS },
    view: { ...VIEW_DEFAULTS },
    result: null,       // the decoded /run response of `ranConfig`
    ranConfig: null,    // the configuration the result belongs to
    request: null,      // the /run request that gave `result`
    inputs: null,       // x_t of the first layer per step (one-hot or the numbers)
    revision: 0,        // bumped per result, so Plotly redraws
    running: false,
    inflight: null,     // the promise of the run in flight
    restoreAfterRun: false,  // back/forward came during a run: restore once it ends
    playing: false,
    timing: null,       // {request, draw} ms of the last run
    lastStepMs: 0,      // the last step's render time
  };
}

export function toQuery(config, view) {
  const q = new URLSearchParams();
  for (const [key, param] of Object.entries(PARAMS)) {
    const value = key in config ? config[key] : view[key];
    const dflt = key in DEFAULTS ? DEFAULTS[key] : VIEW_DEFAULTS[key];
    if (value !== undefined && String(value) !== String(dflt)) q.set(param, String(value));
  }
  return q.toString();
}

export function fromQuery(search) {
  const q = new URLSearchParams(search);
  const config = { ...DEFAULTS };
  const view = { ...VIEW_DEFAULTS };
  for (const [key, param] of Object.entries(PARAMS)) {
    if (!q.has(param)) continue;
    let value = q.get(param);
    if (NUMERIC.has(key)) {
      const n = Number(value);
      if (!Number.isFinite(n)) continue;
      value = n;
    }
    if (key in DEFAULTS) config[key] = value; else view[key] = value;
  }
  return { config, view };
}

export function sameConfig(a, b) {
  return !!a && !!b && Object.keys(DEFAULTS).every((k) => String(a[k]) === String(b[k]));
}
