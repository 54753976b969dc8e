// Wiring, and only wiring: the state object, the URL, the API and the views meet here.
// Views never fetch and never call each other.

import * as api from "./api.js";
import { GATE_TITLES, at, gradientPanels, valuePanels } from "./config.js";
import { ApiError } from "./errors.js";
import { layerLabel } from "./values.js";
import {
  DEFAULTS, clampView, configForModel, configForPreset, createState, fromQuery, sameConfig, toQuery,
} from "./state.js";
import { createClip } from "./views/clip.js";
import { createControls } from "./views/controls.js";
import { download, stepCSV } from "./views/exporter.js";
import { createConnectivity } from "./views/connectivity.js";
import { createHeatmaps } from "./views/heatmaps.js";
import { createFindUnits, propertyForTask } from "./views/findunits.js";
import { createFormula } from "./views/formula.js";
import { compare, createInterventions, formatList, misfit, parseList } from "./views/interventions.js";
import { createNormPlot } from "./views/normplot.js";
import { createPredictions } from "./views/predictions.js";
import { RACERS, createRace } from "./views/race.js";
import { createSaturation } from "./views/saturation.js";
import { createStepPanel } from "./views/steppanel.js";
import { createTbptt } from "./views/tbptt.js";
import { createStepper } from "./views/stepper.js";
import { createTooltip } from "./views/tooltip.js";
import { createTour } from "./views/tour.js";

const state = createState();
const $ = (id) => document.getElementById(id);

const tooltip = createTooltip($("tooltip"));
// the form writes into state.config as it is edited; a run reads state.config, never the form
const controls = createControls($("controls"), {
  onChange: (key, value) => {
    state.config[key] = value;
    if (key === "weights" && value === "random" && state.config.mode === "tokens") {
      // token ids are an embedding's input: random weights read text again
      Object.assign(state.config, { mode: DEFAULTS.mode, sequence: DEFAULTS.sequence });
      controls.write(state.config);
    }
    // a stored model decides its cell and sizes, and the input it takes: the form shows them
    if ((key === "model" || key === "weights") && state.config.weights === "model") {
      const info = modelInfo({ weights: { model_id: state.config.model } });
      if (info) {
        state.config = configForModel(state.config, info);
        controls.write(state.config);
      }
    }
  },
  onSubmit: () => runNow({ push: true }),
  onUpload: (file) => uploadModel(file),
  onPreset: (id) => loadPreset(id),
});
// a click on a value map picks a region for an intervention while that is on, else the step
const valueMaps = createHeatmaps($("value-maps"), {
  onPick: (t, unit, key) => {
    const entry = state.result.layers[state.view.layer];
    return interventions.pick(t, unit, key, { cell: state.result.cell, index: entry.layer,
                                              reverse: entry.direction === "reverse" }) || pick(t, unit);
  },
  tooltip,
});
const gradMaps = createHeatmaps($("grad-maps"), { onPick: pick, tooltip });
const normPlot = createNormPlot($("norm-plot"));
$("grad-scale").addEventListener("change", (ev) => setGradientScale(ev.target.value));
const panel = createStepPanel(document.querySelector(".step-panel"), { onUnit: (u) => setUnit(u) });
const race = createRace($("race"), { onRun: (settings) => runRace(settings), onScale: (settings) => runRace(settings) });
const formula = createFormula($("formula"));
const tbptt = createTbptt($("tbptt"));
const clip = createClip($("clip-summary"));
const interventions = createInterventions($("interventions"), {
  onRun: (items) => runInterventions(items),
  onClear: () => { state.view.iv = ""; clearInterventions(); writeURL("replace"); },
  onPickMode: (on) => document.body.classList.toggle("picking", on),
});
const ivMaps = createHeatmaps($("iv-maps"), { onPick: pick, tooltip });
const predictions = createPredictions($("predictions"));
const findUnits = createFindUnits($("find-units"), { onUnit: (u) => setUnit(u) });
const saturation = createSaturation($("saturation"), { onUnit: (u) => setUnit(u) });
const connectivity = createConnectivity($("connectivity"), {
  onCompute: () => computeConnectivity(), onHide: () => hideConnectivity(), onPick: (t) => setStep(t), tooltip,
});
const tour = createTour($("tour"), $("tour-banner"), {
  onEnd: () => { state.view.tour = 0; writeURL("replace"); },
});
const stepper = createStepper($("stepper"), {
  onStep: (s) => setStep(typeof s === "function" ? s(state.view.step) : s),
  onPlay: () => togglePlay(),
  onSpeed: () => { if (state.playing) { togglePlay(); togglePlay(); } },
  onLayer: (k) => setLayer(k),
  onUnit: (u) => setUnit(u),
  onExportJSON: () => exportJSON(),
  onExportCSV: () => exportCSV(),
});

// ── running ──────────────────────────────────────────────────────────────────────────
function runNow(options) {
  if (state.running) return state.inflight;
  state.inflight = runOnce(options);
  return state.inflight;
}

async function runOnce({ push }) {
  const config = { ...state.config };  // this run's; the form may change meanwhile
  let request;
  try {
    request = api.buildRequest(config);
  } catch (err) {
    showError(err);
    return;
  }
  if (push && state.ranConfig && !sameConfig(config, state.ranConfig) && state.view.tour) {
    state.view.tour = 0;  // the banner described the stop's example, not this one
    tour.show(0);
  }
  state.running = true;
  stopPlay();
  controls.showErrors({});
  controls.setRunning(true);
  document.body.dataset.state = "running";
  const started = performance.now();
  try {
    const result = await api.run(request);
    const received = performance.now();
    state.result = result;
    state.ranConfig = config;
    state.request = request;
    state.inputs = api.inputsOf(request, result);
    state.revision = (state.revision || 0) + 1;
    clampView(state.view, result);
    await drawResult();
    state.timing = { request: received - started, draw: performance.now() - received };
    const ms = Math.round(performance.now() - started);
    const warn = result.warnings.length ? ` · ${result.warnings.length} overflow warning(s): ${result.warnings[0]}` : "";
    controls.setRunning(false, `${result.steps} steps × ${result.hidden_size} units in ${ms} ms${warn}`);
    if (!state.restoreAfterRun) writeURL(push ? "push" : "replace");
    document.body.dataset.state = "ready";
  } catch (err) {
    controls.setRunning(false, state.result ? "The maps still show the previous run." : "");
    showError(err);
    document.body.dataset.state = state.result ? "ready" : "error";
  } finally {
    state.running = false;
  }
  if (state.restoreAfterRun) {  // back/forward was pressed while this run computed: it wins
    state.restoreAfterRun = false;
    await restore({ push: false });
  }
}

function showError(err) {
  if (err instanceof ApiError) {
    controls.showErrors({ [err.field]: err.message });
  } else if (err instanceof TypeError && /fetch|network/i.test(err.message)) {
    controls.showErrors({ run: "The server could not be reached. Is `gatescope serve` running?" });
  } else {  // a bug of the page's own: say so plainly, and leave the details for developers
    console.error(err);
    controls.showErrors({ run: `Something went wrong showing this result (${err.message}).` });
  }
}

// A lab view's error in words: the server's message (it names the field and the limit), or
// what could not be done and why.
function failure(err, what) {
  return err instanceof ApiError ? err.message : `${what} (${err.message}).`;
}

// The truncation windows of the layer shown: a reverse direction counts from the end.
function windowOf(res) {
  const entry = res.layers[state.view.layer];
  return entry && entry.direction === "reverse" && res.truncate ? { k: res.truncate, reverse: true } : res.truncate;
}

function drawGradientMaps() {
  const res = state.result;
  const layer = res.layers[state.view.layer];
  const grads = gradientPanels(res.cell).map(([name, path, kind]) => [name, at(layer, path), kind]);
  return gradMaps.update(grads, res.tokens, `${state.revision}/${state.view.layer}`, windowOf(res), [],
                         state.view.gscale);
}

async function drawResult() {
  const res = state.result;
  const layer = res.layers[state.view.layer];
  const title = (name) => (GATE_TITLES[name] ? `${name} — ${GATE_TITLES[name]}` : name);
  $("values-title").textContent = `Values · ${layerLabel(res, state.view.layer)} · ${res.cell.toUpperCase()} · T=${res.steps}, H=${res.hidden_size}`;
  const values = valuePanels(res.cell).map(([name, path, kind]) => [title(name), at(layer, path), kind, name]);
  const rev = `${state.revision}/${state.view.layer}`;
  await Promise.all([valueMaps.update(values, res.tokens, rev, windowOf(res)), drawGradientMaps(),
    normPlot.update(layer.grads, rev), formula.update(res, state.view.layer),
    saturation.update(res, state.view.layer)]);
  const info = modelInfo(state.request);
  // a character model predicts the next character: the grid outlines it
  const nextChar = state.request.loss.type === "next_token" || /^char_lm\b/.test(info?.task || "");
  predictions.update(res, info?.labels, nextChar);
  renderStep();
  compareTruncation(res);
  clip.update(res);
  findUnits.update(res, state.view.layer, state.view.unit);
  interventions.setModel(res);
  showInterventions();
  showConnectivity();
}

// ── stepping: cursors and the small views only ─────────────────────────────────────────
// Synchronous, so the DOM is current when the key handler returns; it costs a few ms.
function renderStep() {
  const started = performance.now();
  const t = state.view.step;
  valueMaps.moveCursor(t);
  gradMaps.moveCursor(t);
  ivMaps.moveCursor(t);
  normPlot.moveCursor(t);
  predictions.moveCursor(t);
  stepper.update(state);
  panel.update(state, state.inputs);
  document.body.dataset.step = String(t);
  writeURL("later");
  scheduleMatrices();
  state.lastStepMs = performance.now() - started;
}

function setStep(t) {
  if (!state.result) return;
  const T = state.result.steps;
  const next = Math.min(Math.max(0, Number.isFinite(t) ? t : T - 1), T - 1);
  if (next === state.view.step) return;
  state.view.step = next;
  renderStep();
}

function setUnit(u) {
  if (!state.result || !Number.isFinite(u)) return;
  state.view.unit = Math.min(Math.max(0, u | 0), state.result.hidden_size - 1);
  renderStep();
  findUnits.update(state.result, state.view.layer, state.view.unit);  // it marks the unit
}

async function setLayer(k) {
  if (!state.result) return;
  state.view.layer = k;
  await drawResult();
  writeURL("push");
}

async function setGradientScale(scale) {
  state.view.gscale = scale;
  if (!state.result) return;
  await drawGradientMaps();
  gradMaps.moveCursor(state.view.step);
  writeURL("replace");
}

function pick(t, unit) {
  state.view.step = t;
  setUnit(unit);
}

let timer = 0;
function togglePlay() {
  if (state.playing) { stopPlay(); return; }
  if (!state.result) return;
  if (state.view.step >= state.result.steps - 1) state.view.step = 0;
  state.playing = true;
  timer = setInterval(() => {
    if (state.view.step >= state.result.steps - 1) { stopPlay(); return; }
    setStep(state.view.step + 1);
  }, 1000 / stepper.speed());
  stepper.update(state);
}

function stopPlay() {
  clearInterval(timer);
  state.playing = false;
  if (state.result) stepper.update(state);
}

document.addEventListener("keydown", (ev) => {
  const tag = ev.target.tagName;
  const typing = (tag === "INPUT" && ev.target.type !== "range") || tag === "TEXTAREA" || tag === "SELECT";
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey || !state.result) return;
  const moves = { ArrowRight: (s) => s + 1, ArrowLeft: (s) => s - 1, Home: () => 0, End: () => Infinity };
  if (ev.key in moves) {
    if (tag === "INPUT") return; // the slider moves itself and reports through onStep
    ev.preventDefault();
    setStep(moves[ev.key](state.view.step));
  } else if (ev.key === " " && !ev.target.closest("button, summary, a, [role=button]")) {
    ev.preventDefault();
    togglePlay();
  }
});

// With a truncation window, the same request with full BPTT, for the comparison view
// (asked once per run: a layer change redraws the rest without asking again).
async function compareTruncation(result) {
  if (!result.truncate) { tbptt.clear(); return; }
  try {
    const full = await runVariant("tbptt", { truncate: null });
    if (!full) return;  // a newer run came meanwhile
    await tbptt.update(result, full);
    document.body.dataset.tbptt = String(result.truncate);
  } catch (err) {
    tbptt.showError(failure(err, "The comparison could not run"));
  }
}

// The formula view's H×H matrices at the cursor's step: fetched once the cursor rests
// (200 ms), so stepping and playback stay within a frame.
let matricesTimer = 0;
function scheduleMatrices() {
  clearTimeout(matricesTimer);
  matricesTimer = setTimeout(async () => {
    const { request, result } = state;
    const { step, layer } = state.view;
    if (!request || !result) return;
    try {
      const jac = await api.jacobian(request, step, result.layers[layer]);
      if (state.request !== request || state.view.step !== step || state.view.layer !== layer) return;
      await formula.showMatrices(jac, result.cell, result.tokens);
      document.body.dataset.matrices = `${step}/${layer}`;
    } catch (err) {
      formula.showError(failure(err, "The matrices could not be drawn"));
    }
  }, 200);
}

// ── lab variants of the run: full BPTT, interventions, connectivity ──────────────────────
// The run's request plus a few fields, for one view. Each (run, fields) is asked once and
// kept, so a layer change redraws without a request; only the newest ask of a view lands —
// an answer for an older run or an older ask comes back as null, so quick clicks, layer
// changes and back/forward never draw a stale result.
const variants = {};  // view → {base, key, promise}
function runVariant(view, extra) {
  const base = state.request;
  const key = JSON.stringify(extra);
  const asked = variants[view];
  if (asked && asked.base === base && asked.key === key) return asked.promise;
  const mine = { base, key };
  mine.promise = api.run({ ...base, ...extra }).then(
    (result) => (variants[view] === mine && state.request === base ? result : null),
    (err) => {
      if (variants[view] !== mine) return null;
      delete variants[view];  // a refused ask may be asked again, after a change
      throw err;
    });
  variants[view] = mine;
  return mine.promise;
}

// ── interventions ─────────────────────────────────────────────────────────────────────
async function runInterventions(items) {
  if (!state.request) return;
  interventions.showError("");
  document.body.dataset.interventions = "running";
  try {
    const result = await runVariant("interventions", { interventions: items });
    if (!result) return;  // superseded: a newer run or list draws instead
    state.view.iv = formatList(items);
    writeURL("replace");
    await drawInterventions(result, items);
    document.body.dataset.interventions = "ready";
  } catch (err) {
    interventions.showError(failure(err, "The intervention could not run"));
    document.body.dataset.interventions = "error";
  }
}

// After a run or a layer change: the view's interventions, if they still fit the model.
function showInterventions() {
  const items = parseList(state.view.iv);
  const problem = misfit(items, state.result);
  if (problem) {
    state.view.iv = "";
    interventions.setItems([]);
    // the URL follows with the run's own write (a write here would rewrite the entry before)
    clearInterventions(`The interventions no longer fit this run (${problem}), so they were cleared.`);
  } else if (items.length) {
    runInterventions(items);
  } else {
    clearInterventions();
  }
}

function clearInterventions(message) {
  delete variants.interventions;
  ivMaps.update([], null, 0);
  interventions.showSummary(message || "Pick a region on a value heatmap (or type it), choose a value, "
    + "and run: the maps here then show (intervened − original) for the layer shown above.");
}

async function drawInterventions(after, items) {
  const k = state.view.layer;
  const { maps, boxes, summary } = compare(state.result, after, k, items);
  await ivMaps.update(maps, state.result.tokens, `${state.revision}/${k}/iv/${state.view.iv}`,
                      state.result.truncate, boxes);
  ivMaps.moveCursor(state.view.step);
  interventions.showSummary(summary);
}

// ── connectivity ──────────────────────────────────────────────────────────────────────
async function computeConnectivity() {
  if (!state.request) return;
  connectivity.setRunning(true);
  connectivity.showError("");
  document.body.dataset.connectivity = "running";
  try {
    const result = await runVariant("connectivity", { connectivity: true });
    if (!result) return;
    state.view.conn = 1;
    writeURL("replace");
    const k = state.view.layer;
    await connectivity.update(result.layers[k].connectivity, result.tokens, k);
    document.body.dataset.connectivity = "ready";
  } catch (err) {
    connectivity.showError(failure(err, "Connectivity could not be computed"));
    state.view.conn = 0;  // not asked again on every later run
    writeURL("replace");
    document.body.dataset.connectivity = "error";
  } finally {
    connectivity.setRunning(false);
  }
}

function showConnectivity() {
  if (state.view.conn) computeConnectivity();
  else connectivity.clear("Press the button: one backward pass per step, so it takes a moment for long sequences.");
}

function hideConnectivity() {
  state.view.conn = 0;
  delete variants.connectivity;
  showConnectivity();
  writeURL("replace");
}

// ── the gradient race ───────────────────────────────────────────────────────────────────
async function runRace({ scale, forgetBias }) {
  let requests;
  try {
    requests = api.raceRequests(state.config, { scale, forgetBias }, RACERS.map((r) => r.cell));
  } catch (err) {
    race.showError(err.message);
    return;
  }
  race.setRunning(true);
  race.showError("");
  document.body.dataset.race = "running";
  try {
    const results = await Promise.all(requests.map((r) => api.run(r)));
    await race.update(RACERS.map((racer, k) => ({ racer, result: results[k] })));
    Object.assign(state.view, { race: 1, raceScale: scale, raceForget: forgetBias ?? "" });
    state.raceRequests = requests;
    writeURL("replace");
    document.body.dataset.race = "ready";
  } catch (err) {
    race.showError(failure(err, "The race could not run"));
    document.body.dataset.race = "error";
  } finally {
    race.setRunning(false);
  }
}

// ── the URL holds the state ─────────────────────────────────────────────────────────────
let lastURL = "";
let urlTimer = 0;
// mode: "push" (a new history entry, at once), "replace" (at once) or "later" (a replace
// coalesced over 150 ms: playback would otherwise flood the history API).
function writeURL(mode) {
  if (!state.ranConfig || state.restoreAfterRun) return; // back/forward is about to win
  const url = `${location.pathname}?${toQuery(state.ranConfig, state.view)}`;
  clearTimeout(urlTimer);
  if (url === lastURL) return;
  const apply = () => {
    if (mode === "push") history.pushState(null, "", url); else history.replaceState(null, "", url);
    lastURL = url;
  };
  if (mode === "later") urlTimer = setTimeout(apply, 150); else apply();
}

window.addEventListener("popstate", () => restore({ push: false }));

async function restore({ push }) {
  const { config, view } = fromQuery(location.search);
  clearTimeout(urlTimer);
  lastURL = `${location.pathname}${location.search}`;
  const info = config.weights === "model" ? modelInfo({ weights: { model_id: config.model } }) : undefined;
  // a link's cell and sizes mean nothing for a stored model: the form shows the model's own
  state.config = info ? { ...config, cell: info.cell, hidden: info.hidden_size, layers: info.num_layers }
    : { ...config };
  controls.write(state.config);
  if (info && info.task) findUnits.setProperty(propertyForTask(info.task));
  if (state.running) {  // finish the run in flight first, then come back here
    state.restoreAfterRun = true;
    return;
  }
  state.view = view;
  interventions.setItems(parseList(view.iv));  // back/forward brings its own list
  if (sameConfig(state.config, state.ranConfig) && state.result) {
    clampView(state.view, state.result);
    await drawResult();
  } else {
    await runNow({ push });
  }
  tour.show(view.tour);
  $("grad-scale").value = view.gscale;
  if (view.race) {
    await runRace(race.write({ scale: view.raceScale, forgetBias: view.raceForget === "" ? null : view.raceForget }));
  }
}

// ── models ──────────────────────────────────────────────────────────────────────────────
async function refreshModels(selected) {
  try {
    state.models = await api.listModels();
    controls.setModels(state.models, selected);
    tour.setModels(state.models);
  } catch (err) {
    showError(err);
  }
}

// The stored model a request runs (its labels, task and card), or undefined.
function modelInfo(request) {
  const id = request && request.weights && request.weights.model_id;
  return id ? state.models.find((m) => m.model_id === id) : undefined;
}

// A trained preset in one click: the model, the example its card suggests, its task's loss,
// and the property its units are known for.
async function loadPreset(id) {
  const info = modelInfo({ weights: { model_id: id } });
  if (!info) return;
  if (state.running) await state.inflight;
  state.config = configForPreset(state.config, info);
  controls.write(state.config);
  findUnits.setProperty(propertyForTask(info.task));
  await runNow({ push: true });
}

async function uploadModel(file, cell = null) {
  controls.showErrors({});
  controls.setRunning(true, `Uploading ${file.name}…`);
  try {
    const info = await api.upload(file, cell);
    await refreshModels(info.model_id);
    if (state.running) await state.inflight; // then run the new model, not drop it
    state.config = configForModel(state.config, info);
    controls.write(state.config);
    controls.setRunning(false, `Stored ${info.name}: ${info.cell.toUpperCase()}, ${info.num_layers} layer(s), H = ${info.hidden_size}, D = ${info.input_size}`);
    await runNow({ push: true });
  } catch (err) {
    controls.setRunning(false);
    if (err instanceof ApiError && err.loc && err.loc[1] === "cell" && !cell) {
      // a plain RNN: its file cannot say tanh or relu, so the page asks rather than guesses
      controls.askCell(`${file.name} holds a plain RNN, and a file cannot say which nonlinearity it applies. Which is it?`,
                       (chosen) => uploadModel(file, chosen));
      return;
    }
    showError(err);
  }
}

// ── export ──────────────────────────────────────────────────────────────────────────────
async function exportJSON() {
  if (!state.request) return;
  try {
    download("gatescope-result.json", await api.runJSON(state.request));
  } catch (err) {
    showError(err);
  }
}

function exportCSV() {
  if (!state.result) return;
  const { layer, step } = state.view;
  const csv = stepCSV(state.result, layer, step, state.inputs);
  download(`gatescope-layer${layer}-step${step}.csv`, new Blob([csv], { type: "text/csv" }));
}

window.addEventListener("resize", () => renderStep());

// first visit: the URL's example (or the default one), run at once
(async () => {
  const { config } = fromQuery(location.search);
  const section = location.hash.slice(1); // read now: writing the URL state drops it
  await refreshModels(config.model);
  await restore({ push: false });
  // a link to a section (the tour's): go there once the page has its height
  const target = section && document.getElementById(section);
  if (target) target.scrollIntoView();
})();

window.gatescope = { state }; // for the browser tests and the curious
