// The form: every control has a visible label. write(config) fills it, read() gives the
// configuration back; errors appear beside the control they concern (role="alert").

import { DEFAULTS } from "../state.js";

const FIELDS = Object.keys(DEFAULTS);
const ERROR_SLOTS = ["input", "weights", "loss", "run"];

export function createControls(form, { onSubmit, onUpload }) {
  const el = (id) => form.querySelector(`#${id}`);
  const runButton = el("run");
  const progress = el("progress");
  const status = el("status");

  form.addEventListener("submit", (ev) => { ev.preventDefault(); onSubmit(); });
  form.addEventListener("change", (ev) => {
    if (ev.target.id === "upload") {
      if (ev.target.files.length) onUpload(ev.target.files[0]);
      return;
    }
    refreshVisibility();
  });
  form.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); onSubmit(); }
  });

  function refreshVisibility() {
    const random = el("weights").value === "random";
    form.querySelectorAll(".when-random").forEach((n) => { n.hidden = !random; });
    form.querySelectorAll(".when-model").forEach((n) => { n.hidden = random; });
    if (random) form.querySelectorAll(".when-lstm").forEach((n) => { n.hidden = el("cell").value !== "lstm"; });
    form.querySelectorAll(".when-unit-loss").forEach((n) => { n.hidden = el("loss").value !== "unit"; });
    // an uploaded model decides its own cell and sizes
    for (const id of ["hidden", "layers"]) el(id).disabled = !random;
    el("sequence").placeholder = el("mode").value === "text" ? "hello world" : "0.5, 1\n-1, 0.25";
  }

  function write(config) {
    for (const name of FIELDS) {
      const node = el(name);
      if (node) node.value = config[name] ?? "";
    }
    refreshVisibility();
  }

  function read() {
    const config = {};
    for (const name of FIELDS) {
      const node = el(name);
      config[name] = node ? node.value : DEFAULTS[name];
    }
    for (const name of ["hidden", "layers", "seed", "lossUnit"]) {
      config[name] = config[name] === "" ? DEFAULTS[name] : Number(config[name]);
    }
    return config;
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

  function setModels(models, selected) {
    const select = el("model");
    const options = [new Option(models.length ? "— choose —" : "— upload one —", "")];
    for (const m of models) {
      const label = `${m.name} · ${m.cell.toUpperCase()} H=${m.hidden_size} L=${m.num_layers}${m.vocab ? " · text" : ""}`;
      options.push(new Option(label, m.model_id));
    }
    select.replaceChildren(...options);
    select.value = selected || "";
  }

  return { write, read, showErrors, setRunning, setModels, refreshVisibility };
}
