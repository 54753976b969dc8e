// The form: every control has a visible label. It writes into the state: each edit reports
// onChange(key, value), typed as state.js's PROPS say; write(config) shows a configuration.
// Errors appear beside the control they concern (role="alert").

import { DEFAULTS, parse } from "../state.js";
import { createModelAbout } from "./modelabout.js";

const FIELDS = Object.keys(DEFAULTS);  // each is the id of its control
const ERROR_SLOTS = ["input", "weights", "loss", "run"];

export function createControls(form, { onChange, onSubmit, onUpload, onPreset }) {
  const el = (id) => form.querySelector(`#${id}`);
  const runButton = el("run");
  const progress = el("progress");
  const status = el("status");
  const about = createModelAbout(el("model-about"));

  // an edit of a field goes into the state at once, typed: as it is typed ("input") and when
  // it is committed ("change")
  const edited = (ev) => {
    if (FIELDS.includes(ev.target.id)) onChange(ev.target.id, parse(ev.target.id, ev.target.value));
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); onSubmit(); });
  form.addEventListener("input", edited);
  form.addEventListener("change", (ev) => {
    if (ev.target.id === "preset") {
      if (ev.target.value) onPreset(ev.target.value);
      return;
    }
    if (ev.target.id === "upload") {
      if (ev.target.files.length) onUpload(ev.target.files[0]);
      return;
    }
    if (ev.target.id === "model" || ev.target.id === "weights") asking = false;
    edited(ev);
    keepingState(refreshVisibility);
  });
  form.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); onSubmit(); }
  });

  // The form's fields as the state holds them (an empty number field: its default).
  function shown() {
    return Object.fromEntries(FIELDS.map((name) => [name, parse(name, el(name).value)]));
  }

  // The form may change a value by itself — a select cannot show a value it has no option
  // for (a hand-edited link, a model no longer stored), a loss the model lacks falls back —
  // and the state follows what the form shows: that is what the user sees and runs.
  function report(before) {
    for (const [name, value] of Object.entries(shown())) {
      if (String(value) !== String(before[name])) onChange(name, value);
    }
  }

  function keepingState(change) {
    const before = shown();
    change();
    report(before);
  }

  function refreshVisibility() {
    const random = el("weights").value === "random";
    form.querySelectorAll(".when-random").forEach((n) => { n.hidden = !random; });
    form.querySelectorAll(".when-model").forEach((n) => { n.hidden = random; });
    if (random) form.querySelectorAll(".when-lstm").forEach((n) => { n.hidden = el("cell").value !== "lstm"; });
    form.querySelectorAll(".when-unit-loss").forEach((n) => { n.hidden = el("loss").value !== "unit"; });
    // a stored model decides its own cell and sizes: shown, not editable
    for (const id of ["cell", "hidden", "layers"]) {
      el(id).disabled = !random;
      el(id).title = random ? "" : "the chosen model's own";
    }
    el("sequence").placeholder = el("mode").value === "text" ? "hello world" : "0.5, 1\n-1, 0.25";
    // the readout's losses need a model that has one
    const chosen = !random && models.find((m) => m.model_id === el("model").value);
    for (const option of form.querySelectorAll(".needs-readout")) option.disabled = !(chosen && chosen.readout);
    if (el("loss").selectedOptions[0]?.disabled) el("loss").value = "last";  // not this model's
    el("preset").value = !random && models.some((m) => m.preset && m.model_id === el("model").value) ? el("model").value : "";
    if (!asking) about.show(chosen || null);
  }

  // a plain RNN's upload: which nonlinearity? (its file cannot tell)
  let asking = false;
  function askCell(message, onChoose) {
    asking = true;
    about.askCell(message, (cell) => { asking = false; onChoose(cell); });
  }

  // Show a configuration (after back/forward, a preset, an upload); see report().
  function write(config) {
    for (const name of FIELDS) el(name).value = config[name] ?? "";
    refreshVisibility();
    report(config);
  }

  function showErrors(errors) {
    for (const slot of ERROR_SLOTS) {
      const node = el(`error-${slot}`);
      node.textContent = errors[slot] || "";
      node.hidden = !errors[slot];
    }
  }

  function setRunning(running, message = "") {
    runButton.disabled = running;
    progress.hidden = !running;
    form.setAttribute("aria-busy", String(running));
    status.textContent = message;
  }

  let models = [];
  function setModels(list, selected) {
    keepingState(() => showModels(list, selected));
  }

  function showModels(list, selected) {
    models = list;
    const select = el("model");
    const options = [new Option(list.length ? "— choose —" : "— upload one —", "")];
    // presets and uploads apart, each labelled for what it is
    for (const [title, preset] of [["Presets (bundled, trained)", true], ["Uploaded", false]]) {
      const group = document.createElement("optgroup");
      group.label = title;
      for (const m of list.filter((x) => !!x.preset === preset)) {
        const bi = m.rnn && m.rnn.bidirectional ? " bidirectional" : "";
        const label = `${m.name} · ${m.cell.toUpperCase()}${bi} H=${m.hidden_size} L=${m.num_layers}${m.vocab ? " · text" : ""}`;
        group.append(new Option(label, m.model_id));
      }
      if (group.children.length) options.push(group);
    }
    select.replaceChildren(...options);
    select.value = selected || "";
    // the trained presets, grouped by task
    const groups = new Map();
    for (const m of list.filter((x) => x.preset)) {
      const task = (m.task || "other").split(":")[0].replace(/_/g, " ");
      if (!groups.has(task)) groups.set(task, document.createElement("optgroup"));
      groups.get(task).label = task;
      groups.get(task).append(new Option(presetLabel(m), m.model_id));
    }
    el("preset").replaceChildren(el("preset").options[0], ...groups.values());
    refreshVisibility();
  }

  return { write, showErrors, setRunning, setModels, askCell };
}

// "LSTM H=64 · accuracy 99.9 %", from a preset's card.
function presetLabel(m) {
  const final = m.card && m.card.metrics && m.card.metrics.final;
  let score = "";
  if (final && typeof final.accuracy === "number") score = ` · accuracy ${(100 * final.accuracy).toFixed(1)} %`;
  else if (final && typeof final.nats_per_char === "number") score = ` · ${final.nats_per_char.toFixed(2)} nats/char`;
  return `${m.cell.toUpperCase().replace("_", " ")} H=${m.hidden_size}${score}`;
}
