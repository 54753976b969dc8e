// Every vector of one step of one layer — the step panel's strips, the equations and the CSV
// all read them from here.

function row(arr, t) {
  if (!arr || t < 0) return null;
  const H = arr.shape[1];
  return arr.data.subarray(t * H, (t + 1) * H);
}

// Every vector of the diagram, the equations and the CSV at step t of layer k.
export function stepValues(res, k, t, inputs) {
  const layer = res.layers[k];
  const H = layer.h.shape[1];
  const zeros = new Float64Array(H);
  const v = {
    h: row(layer.h, t), hPrev: t > 0 ? row(layer.h, t - 1) : zeros,
    dh: row(layer.grads.h, t),
  };
  v.x = k === 0 ? (inputs ? inputs[t] : null) : row(res.layers[k - 1].h, t);
  for (const [name, arr] of Object.entries(layer.gates)) v[name] = row(arr, t);
  for (const [name, arr] of Object.entries(layer.pre)) v[`a_${name}`] = row(arr, t);
  for (const [name, arr] of Object.entries(layer.grads.gates)) v[`da_${name}`] = row(arr, t);
  if (res.cell === "rnn_tanh" || res.cell === "rnn_relu") v.a = v.a_a;
  if (layer.c) {
    v.c = row(layer.c, t);
    v.cPrev = t > 0 ? row(layer.c, t - 1) : zeros;
    v.dc = row(layer.grads.c, t);
    v.dcNext = t + 1 < layer.c.shape[0] ? row(layer.grads.c, t + 1) : null;
    v.fNext = t + 1 < layer.c.shape[0] ? row(layer.gates.f, t + 1) : null;
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

