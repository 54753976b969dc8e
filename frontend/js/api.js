// Everything that talks to the server. Results come in the binary encoding: a JSON header
// whose arrays point into the body, viewed in place as Float32Array / Float64Array.

import { ApiError } from "./errors.js";
import { parseNumbers, parseTokens } from "./numbers.js";

const API = "/api/v1";

// The /run request for a configuration (throws ApiError for input the page can see is wrong).
export function buildRequest(config) {
  const req = { cell: config.cell, dtype: config.dtype };
  if (config.weights === "model") {
    if (!config.model) throw new ApiError("Choose a stored model, or upload one first.", "weights");
    req.weights = { model_id: config.model };
    delete req.cell; // the model decides the cell and sizes
  } else {
    req.hidden_size = Number(config.hidden);
    req.num_layers = Number(config.layers);
    req.weights = { init: "pytorch", seed: Number(config.seed) };
    if (config.cell === "lstm" && config.forgetBias !== "" && config.forgetBias !== null) {
      req.weights.forget_bias = Number(config.forgetBias);
    }
  }
  if (config.mode === "numbers") {
    req.input = { values: parseNumbers(config.sequence) };
  } else if (config.mode === "tokens") {
    req.input = { tokens: parseTokens(config.sequence) };
  } else {
    if (!config.sequence) throw new ApiError("Type a sequence to run: at least one character.", "input");
    req.input = { text: config.sequence };
  }
  if (config.loss === "all") req.loss = { type: "all_hidden_sum" };
  else if (config.loss === "task") req.loss = { type: "task" };
  else if (config.loss === "next") req.loss = { type: "next_token" };
  else if (config.loss === "unit") {
    req.loss = { type: "hidden_unit", unit: Number(config.lossUnit) || 0 };
    if (config.lossStep !== "" && config.lossStep !== null) req.loss.step = Number(config.lossStep);
  } else req.loss = { type: "last_hidden_sum" };
  if (config.truncate !== "" && config.truncate !== null) req.truncate = Number(config.truncate);
  if (config.clip !== "" && config.clip !== null) req.clip = { max_norm: Number(config.clip) };
  return req;
}

// The gradient race's requests: the configuration's sequence, hidden size and seed through
// each of `cells`, one layer, float64 (vanishing gradients fall far below float32's range),
// loss = Σ h_{T−1}, the recurrent weights scaled by `scale`, the LSTM's forget-gate bias if
// one is set (null: none).
export function raceRequests(config, { scale, forgetBias }, cells) {
  const base = buildRequest({ ...config, weights: "random", layers: 1, loss: "last", truncate: "",
                              dtype: "float64", forgetBias: "" });
  return cells.map((cell) => ({
    ...base, cell,
    weights: { init: "pytorch", seed: Number(config.seed), recurrent_scale: scale,
               ...(cell === "lstm" && forgetBias !== null ? { forget_bias: forgetBias } : {}) },
  }));
}

// x_t of a run's first layer, for the step panel: one-hot over the vocab, or the numbers;
// null for a model with an embedding (x_t is its row of the embedding, which stays on the
// server).
export function inputsOf(request, result) {
  if (result.token_ids) return null;
  if (request.input.values) return request.input.values.map((row) => Float64Array.from(row));
  const vocab = [...result.vocab];
  return result.tokens.map((tok) => {
    const x = new Float64Array(vocab.length);
    x[vocab.indexOf(tok)] = 1;
    return x;
  });
}

// Which control a server error concerns, from its loc.
function fieldOf(loc) {
  const head = loc && loc[0] === "body" ? loc[1] : loc && loc[0];
  if (head === "input") return "input";
  if (["hidden_size", "num_layers", "cell", "weights", "file", "vocab"].includes(head)) return "weights";
  if (["loss", "truncate", "dtype", "clip"].includes(head)) return "loss";
  return "run";
}

// A server error in words a learner understands (the server's message names the limit).
function describe(status, body) {
  if (status === 413) {
    return `That is too large for the server: ${typeof body.detail === "string" ? body.detail : "the request is over its size limit"}.`;
  }
  if (status === 404) return typeof body.detail === "string" ? body.detail : "Not found.";
  if (!Array.isArray(body.detail)) return String(body.detail || `The server answered ${status}.`);
  return body.detail.map((d) => {
    const where = (d.loc || []).filter((p) => p !== "body").join(" → ");
    return where ? `${where}: ${d.msg}` : d.msg;
  }).join("\n");
}

async function failure(response) {
  let body = {};
  try { body = await response.json(); } catch { /* not JSON */ }
  const first = Array.isArray(body.detail) && body.detail.length ? body.detail[0].loc : null;
  return new ApiError(describe(response.status, body), fieldOf(first), first);
}

export async function run(request) {
  const response = await fetch(`${API}/run?encoding=binary`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify(request),
  });
  if (!response.ok) throw await failure(response);
  return decodeBinary(await response.arrayBuffer());
}

// The H×H one-step Jacobian (and the LSTM's four terms) at one step of one entry of a
// result's layers (a layer, or one direction of a bidirectional one).
export async function jacobian(request, step, entry) {
  const where = { layer: entry.layer, ...(entry.direction === "reverse" ? { direction: "reverse" } : {}) };
  const response = await fetch(`${API}/jacobian?encoding=binary`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...request, step, ...where }),
  });
  if (!response.ok) throw await failure(response);
  return decodeBinary(await response.arrayBuffer());
}

export async function runJSON(request) {
  const response = await fetch(`${API}/run`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(request),
  });
  if (!response.ok) throw await failure(response);
  return response.blob();
}

// Every stored model and preset: the list comes in pages (at most MODEL_PAGE each).
const MODEL_PAGE = 1000;
export async function listModels() {
  const all = [];
  for (let offset = 0; ; offset += MODEL_PAGE) {  // by what was asked: a page may come back short
    const response = await fetch(`${API}/models?limit=${MODEL_PAGE}&offset=${offset}`);
    if (!response.ok) throw await failure(response);
    const page = await response.json();
    all.push(...page.data);
    if (!page.data.length || offset + MODEL_PAGE >= page.count) return all;
  }
}

// Store a model file. `cell` only when the user said which nonlinearity a plain RNN has
// (its file cannot tell): the page never sends a guess.
export async function upload(file, cell = null) {
  const form = new FormData();
  form.append("file", file, file.name);
  if (cell) form.append("cell", cell);
  const response = await fetch(`${API}/models`, { method: "POST", body: form });
  if (!response.ok) {
    const err = await failure(response);
    err.field = "weights";
    throw err;
  }
  return response.json();
}

// ── the binary encoding ──────────────────────────────────────────────────────────────
// "GSB1" | uint32 n | n bytes of JSON header | arrays, each 8-byte aligned.
// An array is {data: TypedArray, shape: [..]}; arrays the server sent as lists (they hold
// null where a value overflowed) become Float64Array with NaN in those places.
export function decodeBinary(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== "GSB1") throw new ApiError("The server sent something that is not a result.", "run");
  const n = new DataView(buffer).getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const base = 8 + n;
  const resolve = (obj) => {
    if (obj && typeof obj === "object" && !Array.isArray(obj)) {
      if ("offset" in obj && "nbytes" in obj && "dtype" in obj) {
        const Typed = obj.dtype === "f4" ? Float32Array : Float64Array;
        const shape = obj.shape.split(",").map(Number);
        return { data: new Typed(buffer, base + obj.offset, obj.nbytes / Typed.BYTES_PER_ELEMENT), shape };
      }
      const out = {};
      for (const [k, v] of Object.entries(obj)) out[k] = resolve(v);
      return out;
    }
    if (Array.isArray(obj) && obj.length && (Array.isArray(obj[0]) || typeof obj[0] === "number" || obj[0] === null)) {
      return fromLists(obj);
    }
    if (Array.isArray(obj)) return obj.map(resolve);
    return obj;
  };
  return resolve(header);
}

function fromLists(lists) {
  const rows = Array.isArray(lists[0]) ? lists : [lists];
  const shape = Array.isArray(lists[0]) ? [rows.length, rows[0].length] : [lists.length];
  const data = new Float64Array(rows.length * rows[0].length);
  rows.forEach((row, t) => row.forEach((v, j) => { data[t * row.length + j] = v === null ? NaN : v; }));
  return { data, shape };
}
