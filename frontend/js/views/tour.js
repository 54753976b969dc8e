// The guided tour: the lecture's claims in order, each stop a link into the views (the URL
// holds the whole state), with a banner that leads on to the next stop. Skippable: closing
// it is remembered in this browser.

// A stop: what to look at, and the view that shows it (a query string and the section).
const LONG = "the quick brown fox jumps over the lazy dog and then runs back home again";
export const STOPS = [
  { title: "A vanilla RNN forgets", section: "race",
    query: { cell: "rnn_tanh", H: 32, seq: LONG, race: 1 },
    text: "Three cells read the same 74 characters; the loss sits at the last step. Follow ‖∂L/∂h_t‖ back in time: the tanh RNN's gradient falls by many orders of magnitude — a long-range dependency leaves it almost no learning signal." },
  { title: "…or explodes", section: "race",
    query: { cell: "rnn_tanh", H: 32, seq: LONG, race: 1, rs: 3 },
    text: "The same race with every recurrent weight matrix scaled by 3: now the RNN's gradient grows going back, far past any useful size. Vanishing and exploding are the same product of Jacobians, shrinking or growing." },
  { title: "The LSTM's gates", section: "value-maps",
    query: { cell: "lstm", H: 16, fb: 1, seq: "hello world, hello gates", t: 6 },
    text: "An LSTM with forget-gate bias 1. Step through time (← →): the forget gate f decides what of c_{t−1} to keep, the input gate i what of the candidate g to write, the output gate o what of tanh(c_t) to show as h_t." },
  { title: "∂c_t/∂c_{t−1} in four terms", section: "formula",
    query: { cell: "lstm", H: 16, fb: 1, seq: "hello world, hello gates", t: 8 },
    text: "The cell-state gradient splits into the direct term diag(f_t) and three terms through h_{t−1}. The direct term is the forget gate itself: no fixed decaying pattern, the gate chooses. The plots show each term's size and the gradient that flows through it." },
  { title: "Force the forget gate", section: "interventions",
    query: { cell: "lstm", H: 16, fb: 1, seq: "hello world, hello gates", iv: "0:f:0-24:*:1" },
    text: "Every forget gate forced open (f = 1) for the whole sequence: c now only adds, nothing is forgotten. The difference maps show how every later gate, state and gradient changes." },
  { title: "Truncated BPTT cuts the gradient", section: "tbptt",
    query: { cell: "lstm", H: 16, seq: LONG, k: 10, loss: "all" },
    text: "With a window of 10 steps, no gradient crosses a dashed boundary: a dependency longer than the window cannot be learnt. The view compares it with full BPTT, step by step and as the angle between the parameter gradients." },
  { title: "Clipping tames an explosion", section: "tbptt",
    query: { cell: "rnn_tanh", H: 32, seq: LONG, clip: 1 },
    text: "Gradient clipping rescales all parameter gradients together when their total norm passes a threshold (here 1): the direction is kept, the size capped — what keeps an exploding step from wrecking training." },
  { title: "The GRU: two gates, one state", section: "saturation",
    query: { cell: "gru", H: 16, seq: LONG },
    text: "A GRU's update gate z mixes the old state and the candidate; its reset gate r decides how much of the old state the candidate sees. The saturation plots show, per unit, how often each gate is shut or open." },
  { title: "What depends on what", section: "connectivity",
    query: { cell: "lstm", H: 32, fb: 1, seq: "a cat sat on a mat with a hat", conn: 1 },
    text: "Connectivity: how strongly the state after each character depends on each earlier one. Far-back characters fade — how fast is the memory the lecture is about." },
  { title: "What a trained LSTM's units learn", section: "find-units",
    preset: { task: "bracket_depth", cell: "lstm" },  // its model id and example come from the server
    text: "An LSTM trained to output the bracket depth after each character (a bundled preset). Find units ranks its units by how closely h_t follows the depth: several track it almost perfectly — a counter nobody programmed. The predictions under the heatmaps show its answers." },
];

let presets = [];  // the server's bundled models, for stops that open one

// The stop's preset as GET /api/v1/models lists it, or undefined.
function presetOf(stop) {
  return stop.preset && presets.find((m) => m.preset && m.cell === stop.preset.cell
    && (m.task || "").split(":")[0] === stop.preset.task);
}

// The link of stop n (0-based), or "" when it needs a preset the server does not have.
export function stopURL(n) {
  const stop = STOPS[n];
  let query = stop.query;
  if (stop.preset) {
    const model = presetOf(stop);
    if (!model) return "";
    query = { w: "model", model: model.model_id, loss: "task", seq: model.card.example };
  }
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) q.set(k, String(v));
  q.set("tour", String(n + 1));
  return `?${q.toString()}#${stop.section}`;
}

const SKIPPED = "gatescope.tourSkipped";

export function createTour(root, banner, { onEnd }) {
  const list = root.querySelector("#tour-stops");
  let shown = 0;
  function render() {
    list.replaceChildren(...STOPS.map((stop, n) => {
      const li = document.createElement("li");
      const href = stopURL(n);
      const a = document.createElement(href ? "a" : "span");
      if (href) a.href = href; else a.title = "needs the bundled presets, which this server lacks";
      a.textContent = stop.title;
      li.append(a);
      return li;
    }));
    show(shown);
  }
  root.querySelector("#tour-skip").addEventListener("click", () => {
    root.open = false;
    try { localStorage.setItem(SKIPPED, "1"); } catch { /* private mode: just close */ }
  });
  banner.querySelector(".tour-end").addEventListener("click", () => { banner.hidden = true; onEnd(); });
  let skipped = false;
  try { skipped = localStorage.getItem(SKIPPED) === "1"; } catch { /* no storage */ }
  root.open = !skipped;

  // n: the stop shown (1-based; 0 = none).
  function show(n) {
    shown = n;
    if (!(n >= 1 && n <= STOPS.length)) { banner.hidden = true; return; }
    const stop = STOPS[n - 1];
    banner.hidden = false;
    banner.dataset.stop = String(n);
    banner.querySelector(".tour-title").textContent = `Tour ${n}/${STOPS.length}: ${stop.title}`;
    banner.querySelector(".tour-text").textContent = stop.text;
    const prev = banner.querySelector(".tour-prev");
    const next = banner.querySelector(".tour-next");
    prev.hidden = n === 1;
    prev.href = n > 1 ? stopURL(n - 2) : "";
    next.textContent = n < STOPS.length ? "Next stop ›" : "Back to the start";
    next.href = n < STOPS.length ? stopURL(n) : stopURL(0);
    for (const li of list.children) li.removeAttribute("aria-current");
    list.children[n - 1].setAttribute("aria-current", "step");
  }

  // The server's models: the links of stops that open a preset.
  function setModels(models) {
    presets = models;
    render();
  }

  render();
  return { show, setModels };
}
