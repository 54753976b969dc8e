// Time controls: slider, first/previous/play/next/last, speed, layer and unit pickers.

import { showToken } from "../config.js";
import { layerLabel } from "../values.js";

export function createStepper(root, handlers) {
  const el = (id) => root.querySelector(`#${id}`);
  const slider = el("step");
  const readout = el("step-readout");
  const play = el("play");
  const layerSelect = el("layer");
  const unitInput = el("unit");

  slider.addEventListener("input", () => handlers.onStep(Number(slider.value)));
  el("first").addEventListener("click", () => handlers.onStep(0));
  el("last").addEventListener("click", () => handlers.onStep(Infinity));
  el("prev").addEventListener("click", () => handlers.onStep((s) => s - 1));
  el("next").addEventListener("click", () => handlers.onStep((s) => s + 1));
  play.addEventListener("click", () => handlers.onPlay());
  el("speed").addEventListener("change", () => handlers.onSpeed(Number(el("speed").value)));
  layerSelect.addEventListener("change", () => handlers.onLayer(Number(layerSelect.value)));
  unitInput.addEventListener("change", () => handlers.onUnit(Number(unitInput.value)));
  el("export-json").addEventListener("click", () => handlers.onExportJSON());
  el("export-csv").addEventListener("click", () => handlers.onExportCSV());

  function update(state) {
    const res = state.result;
    const T = res ? res.steps : 1;
    const { step, unit, layer } = state.view;
    slider.max = String(T - 1);
    slider.value = String(step);
    const tok = res && res.tokens ? `  ${showToken(res.tokens[step])}` : "";
    readout.textContent = `t = ${step} / ${T - 1}${tok}`;
    play.textContent = state.playing ? "❚❚" : "▶";
    play.setAttribute("aria-label", state.playing ? "Pause" : "Play");
    // one option per entry of the result's layers: a layer, or one direction of one
    const labels = res ? res.layers.map((_, k) => layerLabel(res, k).replace(/^layer /, "")) : ["0"];
    if ([...layerSelect.options].map((o) => o.text).join("|") !== labels.join("|")) {
      layerSelect.replaceChildren(...labels.map((label, k) => new Option(label, String(k))));
    }
    layerSelect.value = String(layer);
    unitInput.max = String(res ? res.hidden_size - 1 : 0);
    if (document.activeElement !== unitInput) unitInput.value = String(unit);
    for (const id of ["first", "prev", "play", "next", "last", "export-json", "export-csv"]) {
      el(id).disabled = !res;
    }
    slider.disabled = !res;
  }

  return { update, speed: () => Number(el("speed").value) };
}
