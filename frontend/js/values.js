// Every vector of one step of one layer — the step panel's strips, the equations and the CSV
// all read them from here.

function row(arr, t) {
  if (!arr || t < 0) return null;
  const H = arr.shape[1];
  return arr.data.subarray(t * H, (t + 1) * H);
}

// "layer 1" — or, bidirectional, "layer 1 →" / "layer 1 ←": entry k of a result's layers.
export function layerLabel(res, k) {
  const entry = res.layers[k];
  if (!res.bidirectional) return `layer ${k}`;
  return `layer ${entry.layer} ${entry.direction === "reverse" ? "← (reverse)" : "→ (forward)"}`;
}

// The input of entry k at step t: x_t for the first layer, else the layer below's output
// at t — both its directions, [h→_t; h←_t], for a bidirectional model.
function layerInput(res, k, t, inputs) {
  const { layer } = res.layers[k];
  if (layer === 0) return inputs ? inputs[t] : null;
  const below = res.layers.filter((e) => e.layer === layer - 1).map((e) => row(e.h, t));
  if (below.length === 1) return below[0];
  const x = new Float64Array(below.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of below) { x.set(r, at); at += r.length; }
  return x;
}

// Every vector of the diagram, the equations and the CSV at step t of entry k of the
// result's layers. The previous state is the one its direction read before: h_{t−1}, or for
// a reverse direction (which reads x_{T−1} … x_0) its state after x_{t+1}.
export function stepValues(res, k, t, inputs) {
  const layer = res.layers[k];
  const H = layer.h.shape[1];
  const T = layer.h.shape[0];
  const back = layer.direction === "reverse" ? 1 : -1;  // where its previous step lies
  const prev = t + back;  // the step it read before this one (−1 or T: the initial state)
  const next = t - back;
  const zeros = new Float64Array(H);
  const cZeros = layer.c ? new Float64Array(layer.c.shape[1]) : zeros;  // H ≥ h's P (proj_size)
  const inside = (s) => s >= 0 && s < T;
  const v = {
    h: row(layer.h, t), hPrev: inside(prev) ? row(layer.h, prev) : zeros,
    dh: row(layer.grads.h, t),
  };
  v.x = layerInput(res, k, t, inputs);
  for (const [name, arr] of Object.entries(layer.gates)) v[name] = row(arr, t);
  for (const [name, arr] of Object.entries(layer.pre)) v[`a_${name}`] = row(arr, t);
  for (const [name, arr] of Object.entries(layer.grads.gates)) v[`da_${name}`] = row(arr, t);
  if (res.cell === "rnn_tanh" || res.cell === "rnn_relu") v.a = v.a_a;
  if (layer.c) {
    v.c = row(layer.c, t);
    v.cPrev = inside(prev) ? row(layer.c, prev) : cZeros;
    v.dc = row(layer.grads.c, t);
    v.dcNext = inside(next) ? row(layer.grads.c, next) : null;
    v.fNext = inside(next) ? row(layer.gates.f, next) : null;
    v.fc = v.f.map((f, j) => f * v.cPrev[j]);
    v.ig = v.i.map((i, j) => i * v.g[j]);
    v.tanhC = v.c.map(Math.tanh);
  }
  if (res.cell === "gru") {
    v.zn = v.z.map((z, j) => (1 - z) * v.n[j]);
    v.zh = v.z.map((z, j) => z * v.hPrev[j]);
  }
  return v;
}

