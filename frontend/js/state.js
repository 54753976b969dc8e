// The one state object: the run configuration, the view (step, unit, layer …), the result.
// The form writes into `config`, a run reads it, and both halves round-trip through the URL,
// so a copied link reproduces the view. Every property is declared once, in PROPS.

import { parseNumbers, parseTokens } from "./numbers.js";

// How a property reads from text (a URL parameter, a form field); undefined = not valid,
// so the default stands.
const finite = (n) => (Number.isFinite(n) ? n : undefined);
const TYPES = {
  string: (text) => text,
  // one of the property's `choices` (a select's options)
  choice: (text, prop) => (prop.choices.includes(text) ? text : undefined),
  number: (text) => (text.trim() === "" ? undefined : finite(Number(text))),
  // a number that may be left empty: "" = not set (no truncation, no clipping, …)
  optionalNumber: (text) => (text.trim() === "" ? "" : finite(Number(text))),
};

// key: the name in state.config / state.view (and the form control's id); param: its URL
// parameter (short, stable: links depend on it); part: the run configuration or the view.
export const PROPS = Object.freeze([
  { key: "cell", param: "cell", type: "choice", default: "lstm", part: "config",
    choices: ["lstm", "gru", "rnn_tanh", "rnn_relu"] },
  { key: "hidden", param: "H", type: "number", default: 16, part: "config" },
  { key: "layers", param: "L", type: "number", default: 1, part: "config" },
  { key: "weights", param: "w", type: "choice", default: "random", part: "config",
    choices: ["random", "model"] },
  { key: "seed", param: "seed", type: "number", default: 0, part: "config" },
  { key: "forgetBias", param: "fb", type: "optionalNumber", default: "", part: "config" },
  { key: "model", param: "model", type: "string", default: "", part: "config" },
  { key: "mode", param: "mode", type: "choice", default: "text", part: "config",
    choices: ["text", "numbers", "tokens"] },
  { key: "sequence", param: "seq", type: "string", default: "hello world", part: "config" },
  { key: "loss", param: "loss", type: "choice", default: "last", part: "config",
    choices: ["last", "unit", "all", "task", "next"] },
  { key: "lossStep", param: "ls", type: "optionalNumber", default: "", part: "config" },
  { key: "lossUnit", param: "lu", type: "number", default: 0, part: "config" },
  { key: "truncate", param: "k", type: "optionalNumber", default: "", part: "config" },
  { key: "clip", param: "clip", type: "optionalNumber", default: "", part: "config" },
  { key: "dtype", param: "dtype", type: "choice", default: "float64", part: "config",
    choices: ["float64", "float32"] },
  { key: "step", param: "t", type: "number", default: 0, part: "view" },
  { key: "unit", param: "u", type: "number", default: 0, part: "view" },
  { key: "layer", param: "layer", type: "number", default: 0, part: "view" },
  // the gradient race: shown (1) or not, its recurrent scale, the LSTM's forget-gate bias
  { key: "race", param: "race", type: "number", default: 0, part: "view" },
  { key: "raceScale", param: "rs", type: "number", default: 1, part: "view" },
  { key: "raceForget", param: "rfb", type: "optionalNumber", default: 1, part: "view" },
  // the interventions, as views/interventions.js formats them
  { key: "iv", param: "iv", type: "string", default: "", part: "view" },
  { key: "conn", param: "conn", type: "number", default: 0, part: "view" },  // connectivity shown?
  { key: "tour", param: "tour", type: "number", default: 0, part: "view" },  // its stop, from 1; 0 = none
  // the gradient heatmaps' colour scale: "linear" or "log"
  { key: "gscale", param: "gs", type: "choice", default: "linear", part: "view",
    choices: ["linear", "log"] },
].map(Object.freeze));

const defaults = (part) => Object.freeze(Object.fromEntries(
  PROPS.filter((p) => p.part === part).map((p) => [p.key, p.default])));
export const DEFAULTS = defaults("config");
export const VIEW_DEFAULTS = defaults("view");
const BY_KEY = new Map(PROPS.map((p) => [p.key, p]));

// `text` as property `key` holds it, typed; its default when the text is not valid.
export function parse(key, text) {
  const prop = BY_KEY.get(key);
  const value = TYPES[prop.type](String(text), prop);
  return value === undefined ? prop.default : value;
}

export function createState() {
  return {
    config: { ...DEFAULTS },  // what the form shows (it writes here); the next run's
    view: { ...VIEW_DEFAULTS },
    result: null,       // the decoded /run response of `ranConfig`
    ranConfig: null,    // the configuration the result belongs to (a copy)
    request: null,      // the /run request that gave `result`
    inputs: null,       // x_t of the first layer per step (one-hot or the numbers)
    revision: 0,        // bumped per result, so Plotly redraws
    running: false,
    inflight: null,     // the promise of the run in flight
    restoreAfterRun: false,  // back/forward came during a run: restore once it ends
    playing: false,
    timing: null,       // {request, draw} ms of the last run
    lastStepMs: 0,      // the last step's render time
    models: [],         // GET /api/v1/models: the stored models and presets
    raceRequests: null, // the gradient race's three /run requests, once it ran
  };
}

// Only what differs from the default goes into the URL, so links stay short.
// A stored model's cell and sizes are its own (the page shows them, a link need not say
// them), so a link to one leaves them out.
const MODEL_OWN = new Set(["cell", "hidden", "layers"]);

export function toQuery(config, view) {
  const q = new URLSearchParams();
  for (const { key, param, part, default: dflt } of PROPS) {
    if (config.weights === "model" && MODEL_OWN.has(key)) continue;
    const value = (part === "config" ? config : view)[key];
    if (value !== undefined && String(value) !== String(dflt)) q.set(param, String(value));
  }
  return q.toString();
}

export function fromQuery(search) {
  const q = new URLSearchParams(search);
  const out = { config: { ...DEFAULTS }, view: { ...VIEW_DEFAULTS } };
  for (const { key, param, part } of PROPS) {
    if (q.has(param)) out[part][key] = parse(key, q.get(param));
  }
  return out;
}

export function sameConfig(a, b) {
  return !!a && !!b && Object.keys(DEFAULTS).every((k) => String(a[k]) === String(b[k]));
}

// The step, unit and layer shown, within a result's.
export function clampView(view, result) {
  const within = (v, n) => Math.min(Math.max(0, v | 0), n - 1);
  view.step = within(view.step, result.steps);
  view.unit = within(view.unit, result.hidden_size);
  view.layer = within(view.layer, result.layers.length);  // a layer, or one direction of one
}

// The configuration for a stored model: its cell and sizes, and an input it can take — text
// in its vocab (the current text if every character is in it), token ids for a model with an
// embedding and no vocab, else numbers of its input size.
export function configForModel(config, info) {
  const out = { ...config, weights: "model", model: info.model_id, cell: info.cell,
                hidden: info.hidden_size, layers: info.num_layers };
  if (info.embedding && !info.vocab) {
    const V = info.embedding.num_embeddings;
    let fits = false;
    try {
      fits = out.mode === "tokens" && parseTokens(out.sequence).every((id) => id < V);
    } catch { /* not token ids: replaced below */ }
    if (!fits) {
      out.mode = "tokens";
      out.sequence = Array.from({ length: 12 }, (_, t) => (t * 7) % V).join(" ");
    }
  } else if (info.vocab) {
    const fits = out.mode === "text" && out.sequence && [...out.sequence].every((ch) => info.vocab.includes(ch));
    if (!fits) {
      out.mode = "text";
      const chars = [...info.vocab];
      out.sequence = Array.from({ length: Math.max(12, chars.length) }, (_, t) => chars[t % chars.length]).join("");
    }
  } else {
    let width = 0;
    try {
      width = out.mode === "numbers" ? parseNumbers(out.sequence)[0].length : 0;
    } catch { /* not numbers this model can take: replaced below */ }
    if (width !== info.input_size) {
      out.mode = "numbers";
      out.sequence = Array.from({ length: 4 }, (_, t) => Array.from({ length: info.input_size },
        (_, d) => ((t + d) % 3 - 1) * 0.5).join(", ")).join("\n");
    }
  }
  return out;
}

// A trained preset in one click: configForModel, the example its card suggests, its task's loss.
export function configForPreset(config, info) {
  const out = configForModel(config, info);
  const example = info.card && info.card.example;
  if (example) Object.assign(out, { mode: "text", sequence: example });
  if (info.readout) out.loss = info.task ? "task" : "next";
  return out;
}
