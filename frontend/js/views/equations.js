// The picked unit's equations at this step, with the numbers the server returned put in.
// The middle of each line is recomputed here from the other returned values, so a reader
// can check it; the last number of a line is the server's own value (for ∂L/∂a_r and the
// Jacobian's norm only that, as their other factors are not in the response).

import { fmt } from "../config.js";

const sig = "σ";

function line(text) {
  const div = document.createElement("div");
  div.className = "eq";
  div.textContent = text;
  return div;
}

function heading(text) {
  const h = document.createElement("h3");
  h.textContent = text;
  return h;
}

export function equations(cell, v, j, t, res, k) {
  const width = v.c ? v.c.length : v.h && v.h.length;  // an LSTM's units are its H cells
  if (!v.h || j >= width) return [line(`unit ${j} does not exist in this layer`)];
  // n: a result; p: an operand, in parentheses when negative ("0.5·(−0.25)", "+ (−0.2)")
  const n = (x) => fmt(x, 5);
  const p = (x) => (x < 0 ? `(${fmt(x, 5)})` : fmt(x, 5));
  // the step it reads next: t+1, or t−1 in a reverse direction (which reads x_{T−1} … x_0);
  // truncation detaches the state entering every k-th step of its own reading
  const T = res.steps;
  const reverse = res.layers[k].direction === "reverse";
  const read = reverse ? T - 1 - t : t;  // how many steps it read before this one
  const next = reverse ? "t−1" : "t+1";
  const boundary = res.truncate && (read + 1) % res.truncate === 0;
  const proj = res.proj_size > 0;  // h_t = W_hr m_t: P numbers, each mixing all H cells
  const out = [heading(`Forward, unit ${j}`)];
  if (cell === "lstm") {
    out.push(
      line(`i = ${sig}(a_i) = ${sig}(${n(v.a_i[j])}) = ${n(v.i[j])}`),
      line(`f = ${sig}(a_f) = ${sig}(${n(v.a_f[j])}) = ${n(v.f[j])}`),
      line(`g = tanh(a_g) = tanh(${n(v.a_g[j])}) = ${n(v.g[j])}`),
      line(`o = ${sig}(a_o) = ${sig}(${n(v.a_o[j])}) = ${n(v.o[j])}`),
      line(`c_t = f·c_{t−1} + i·g\n    = ${p(v.f[j])}·${p(v.cPrev[j])} + ${p(v.i[j])}·${p(v.g[j])} = ${n(v.c[j])}`),
      proj ? line(`m_t = o·tanh(c_t) = ${p(v.o[j])}·tanh(${n(v.c[j])}) = ${n(v.o[j] * Math.tanh(v.c[j]))}\n    h_t = W_hr m_t: ${res.proj_size} numbers (proj_size), each mixing all ${width} cells`)
        : line(`h_t = o·tanh(c_t) = ${p(v.o[j])}·tanh(${n(v.c[j])}) = ${n(v.h[j])}`),
      heading("Backward"),
      proj ? line("∂L/∂m_t = W_hrᵀ ∂L/∂h_t   (W_hr is not in the response: the values below are the server's)")
        : line(`∂L/∂h_t = ${n(v.dh[j])}   (loss, layer above and step ${next})`),
    );
    const carried = v.dcNext && !boundary ? v.dcNext[j] * v.fNext[j] : 0;
    const local = proj ? NaN : v.dh[j] * v.o[j] * (1 - Math.tanh(v.c[j]) ** 2);
    const via = !v.dcNext ? `  (last step it reads: nothing comes from ${next})`
      : boundary ? `  (window boundary at ${next} = ${reverse ? t - 1 : t + 1}: nothing flows back)` : "";
    const dh = proj ? "∂L/∂m_t" : "∂L/∂h_t";
    out.push(
      proj ? line(`∂L/∂c_t = ∂L/∂m_t·o·(1−tanh²c_t) + ∂L/∂c_{${next}}·f_{${next}} = ${n(v.dc[j])}${via}`)
        : line(`∂L/∂c_t = ∂L/∂h_t·o·(1−tanh²c_t) + ∂L/∂c_{${next}}·f_{${next}}\n        = ${p(local)} + ${p(carried)} = ${n(v.dc[j])}${via}`),
      line(`∂L/∂a_i = ∂L/∂c_t·g·i(1−i) = ${p(v.dc[j])}·${p(v.g[j])}·${p(v.i[j] * (1 - v.i[j]))} = ${n(v.da_i[j])}`),
      line(`∂L/∂a_f = ∂L/∂c_t·c_{t−1}·f(1−f) = ${p(v.dc[j])}·${p(v.cPrev[j])}·${p(v.f[j] * (1 - v.f[j]))} = ${n(v.da_f[j])}`),
      line(`∂L/∂a_g = ∂L/∂c_t·i·(1−g²) = ${p(v.dc[j])}·${p(v.i[j])}·${p(1 - v.g[j] ** 2)} = ${n(v.da_g[j])}`),
      proj ? line(`∂L/∂a_o = ${dh}·tanh(c_t)·o(1−o) = ${n(v.da_o[j])}`)
        : line(`∂L/∂a_o = ∂L/∂h_t·tanh(c_t)·o(1−o) = ${p(v.dh[j])}·${p(Math.tanh(v.c[j]))}·${p(v.o[j] * (1 - v.o[j]))} = ${n(v.da_o[j])}`),
    );
  } else if (cell === "gru") {
    out.push(
      line(`r = ${sig}(a_r) = ${sig}(${n(v.a_r[j])}) = ${n(v.r[j])}`),
      line(`z = ${sig}(a_z) = ${sig}(${n(v.a_z[j])}) = ${n(v.z[j])}`),
      line(`n = tanh(a_n) = tanh(${n(v.a_n[j])}) = ${n(v.n[j])}\n    a_n = W_in x + b_in + r·(W_hn h_{t−1} + b_hn)`),
      line(`h_t = (1−z)·n + z·h_{t−1}\n    = ${p(1 - v.z[j])}·${p(v.n[j])} + ${p(v.z[j])}·${p(v.hPrev[j])} = ${n(v.h[j])}`),
      heading("Backward"),
      line(`∂L/∂h_t = ${n(v.dh[j])}   (loss, layer above and step ${next})`),
      line(`∂L/∂a_n = ∂L/∂h_t·(1−z)·(1−n²) = ${p(v.dh[j])}·${p(1 - v.z[j])}·${p(1 - v.n[j] ** 2)} = ${n(v.da_n[j])}`),
      line(`∂L/∂a_z = ∂L/∂h_t·(h_{t−1}−n)·z(1−z) = ${p(v.dh[j])}·${p(v.hPrev[j] - v.n[j])}·${p(v.z[j] * (1 - v.z[j]))} = ${n(v.da_z[j])}`),
      line(`∂L/∂a_r = ∂L/∂a_n·(W_hn h_{t−1} + b_hn)·r(1−r) = ${n(v.da_r[j])}\n    (W_hn h_{t−1} + b_hn is not in the response: the server's value)`),
    );
  } else {
    const relu = cell === "rnn_relu";
    const phi = relu ? "relu" : "tanh";
    const dphi = relu ? (v.a[j] > 0 ? 1 : 0) : 1 - v.h[j] ** 2;
    out.push(
      line(`h_t = ${phi}(a) = ${phi}(${n(v.a[j])}) = ${n(v.h[j])}`),
      line("    a = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh"),
      heading("Backward"),
      line(`∂L/∂h_t = ${n(v.dh[j])}   (loss, layer above and step ${next})`),
      line(`∂L/∂a = ∂L/∂h_t·${relu ? "[a > 0]" : "(1−h_t²)"} = ${p(v.dh[j])}·${p(dphi)} = ${n(v.da_a[j])}`),
    );
  }
  const jac = res.layers[k].jacobian.total.data[t];
  out.push(heading("This step's Jacobian"),
    line(`‖${cell === "lstm" ? "∂c_t/∂c_{t−1}" : "∂h_t/∂h_{t−1}"}‖_F = ${n(jac)}`));
  return out;
}
