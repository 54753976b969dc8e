// What a stored model is, beside the Model controls: what the server found in its file (the
// embedding, the RNN, the head) and what it ignored; for a bundled preset, its model card —
// the data, the command that trained it, its held-out score, the units worth looking at.
// Every name comes from an uploaded file, so it is put in as text, never as HTML.

function node(tag, text, className) {
  const n = document.createElement(tag);
  if (text !== undefined) n.textContent = text;
  if (className) n.className = className;
  return n;
}

// "RNN <code>rnn</code>: LSTM, 2 layers, bidirectional" as nodes: a label, a name, the rest.
function part(label, name, rest) {
  const li = node("li");
  li.append(node("b", label), " ", node("code", name === "" ? "(top level)" : name), `: ${rest}`);
  return li;
}

const CELL_NAMES = { lstm: "LSTM", gru: "GRU", rnn_tanh: "RNN (tanh)", rnn_relu: "RNN (relu)" };

// The found parts as list items (a model stored before they were recorded has only sizes).
export function foundParts(info) {
  const items = [];
  if (info.embedding) {
    const e = info.embedding;
    items.push(part("Embedding", e.name, `${e.num_embeddings} token ids → vectors of ${e.embedding_dim}`));
  }
  const rnn = info.rnn || { name: (info.prefix || "").replace(/\.$/, ""), cell: info.cell,
                            layers: info.num_layers, bidirectional: false, cells: false, bias: true };
  const traits = [`${rnn.layers} layer${rnn.layers === 1 ? "" : "s"}`, `H = ${info.hidden_size}`,
    `input size ${info.input_size}`];
  if (rnn.bidirectional) traits.push("bidirectional (each layer also reads backwards)");
  if (rnn.proj_size) traits.push(`h projected to P = ${rnn.proj_size} (proj_size)`);
  if (rnn.cells) traits.push(`a loop of ${CELL_NAMES[rnn.cell].split(" ")[0]}Cell modules`);
  if (!rnn.bias) traits.push("no biases");
  items.push(part("RNN", rnn.name, `${CELL_NAMES[rnn.cell]}, ${traits.join(", ")}`));
  if (info.head) {
    const h = info.head;
    const what = h.out_features === 1 ? "1 output: a binary classifier (σ)" : `${h.out_features} outputs (softmax)`;
    items.push(part("Head", h.name, `${what}${h.bias ? "" : ", no bias"}`));
  } else {
    items.push(node("li", "No head: losses on the hidden states only."));
  }
  const ignored = info.ignored || [];
  const li = node("li");
  li.append(node("b", "Ignored"), ` (${ignored.length}): `);
  if (!ignored.length) li.append("nothing");
  ignored.slice(0, 12).forEach((name, k) => li.append(k ? ", " : "", node("code", name)));
  if (ignored.length > 12) li.append(` and ${ignored.length - 12} more`);
  items.push(li);
  return items;
}

// A preset's card in a few lines: data, command, held-out metric, units worth looking at.
export function cardLines(card) {
  if (!card) return [];
  const out = [];
  if (card.data) out.push(["Trained on", card.data]);
  const m = card.metrics;
  if (m && m.final) {
    const metric = m.metric || "accuracy";
    const value = m.final[metric];
    const shown = metric === "accuracy" ? `${(100 * value).toFixed(1)} %` : `${value}`;
    const base = m.baseline && typeof m.baseline[metric] === "number"
      ? ` (baseline, ${m.baseline.name}: ${metric === "accuracy" ? `${(100 * m.baseline[metric]).toFixed(1)} %` : m.baseline[metric]})` : "";
    out.push(["Held out", `${metric} ${shown} on ${m.held_out_sequences ?? "?"} sequences${base}`]);
  }
  if (Array.isArray(card.units) && card.units.length) {
    out.push(["Units worth looking at", card.units.slice(0, 4)
      .map((u) => `unit ${u.unit} of layer ${u.layer}: ${u.why || u.property}`).join("; ")]);
  }
  if (card.command) out.push(["Command", card.command]);
  return out;
}

export function createModelAbout(root) {
  // Show `info` (a ModelInfo), or nothing for random weights / no model chosen.
  function show(info) {
    root.hidden = !info;
    if (!info) { root.replaceChildren(); return; }
    const title = node("h3", null, "about-title");
    title.append(node("span", info.preset ? "Preset" : "Uploaded", info.preset ? "tag preset" : "tag upload"),
      " ", info.name);
    const list = node("ul", null, "about-parts");
    list.append(...foundParts(info));
    const children = [title, list];
    const lines = cardLines(info.preset ? info.card : null);
    if (lines.length) {
      const dl = node("dl", null, "about-card");
      for (const [key, value] of lines) {
        dl.append(node("dt", key), node("dd", value, key === "Command" ? "command" : undefined));
      }
      children.push(dl);
    }
    children.push(node("p", "Cell, hidden size and layers are the model's own: they cannot be changed while it is chosen.", "help"));
    root.replaceChildren(...children);
  }

  // A plain RNN's file cannot tell tanh from relu: ask, with one button for each.
  function askCell(message, onChoose) {
    root.hidden = false;
    const p = node("p", message, "ask");
    const buttons = ["rnn_tanh", "rnn_relu"].map((cell) => {
      const b = node("button", `It is ${CELL_NAMES[cell]}`);
      b.type = "button";
      b.dataset.cell = cell;
      b.addEventListener("click", () => onChoose(cell));
      return b;
    });
    root.replaceChildren(p, ...buttons);
  }

  return { show, askCell };
}
