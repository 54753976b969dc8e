// Predictions (Karpathy, Johnson & Fei-Fei 2015, fig. 4): for a model with a readout, under
// each input character the readout's five most probable labels at that step, shaded by
// probability. A step moves one highlight; the grid is built once per result.

import { fmt, showToken } from "../config.js";

export const TOP = 5;

// probs: {data, shape: [T, K]} → per step the TOP most probable [label index, p], best first.
export function topK(probs, k = TOP) {
  const [T, K] = probs.shape;
  return Array.from({ length: T }, (_, t) => {
    const row = probs.data.subarray(t * K, (t + 1) * K);
    const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b);
    return order.slice(0, Math.min(k, K)).map((j) => [j, row[j]]);
  });
}

export function createPredictions(root) {
  const grid = root.querySelector("#predictions-grid");
  const help = root.querySelector("#predictions-help");
  let columns = [];
  let lefts = null;  // each column's offset in the grid, measured once (a step reads no layout)
  let view = null;   // the grid's visible width and scroll position, kept up to date
  grid.addEventListener("scroll", () => { if (view) view.scroll = grid.scrollLeft; }, { passive: true });
  window.addEventListener("resize", () => { lefts = null; });
  let current = -1;

  // result: a /run result; labels: the model's K label names; nextIsTarget: each step
  // predicts the next character (a character model), which is then outlined among the guesses.
  function update(result, labels, nextIsTarget = false) {
    const probs = result.outputs && result.outputs.probs;
    root.hidden = !probs;
    columns = [];
    lefts = null;
    current = -1;
    if (!probs) { grid.replaceChildren(); return; }
    const tokens = result.tokens || null;
    const names = labels || Array.from({ length: probs.shape[1] }, (_, j) => String(j));
    const top = topK(probs);
    grid.gsTop = top; // for tests and the console: what the grid shows
    const frag = document.createDocumentFragment();
    top.forEach((guesses, t) => {
      const col = document.createElement("div");
      col.className = "pred-col";
      col.setAttribute("role", "row");
      const head = document.createElement("div");
      head.className = "pred-input";
      head.textContent = tokens ? showToken(tokens[t]) : String(t);
      head.title = `step ${t}`;
      col.append(head);
      const next = nextIsTarget && tokens && t + 1 < tokens.length ? tokens[t + 1] : null;
      for (const [j, p] of guesses) {
        const cell = document.createElement("div");
        cell.className = "pred-guess";
        cell.setAttribute("role", "cell");
        cell.textContent = showToken(names[j]);
        cell.title = `${JSON.stringify(names[j])}: p = ${fmt(p, 4)}`;
        // white → blue with p: the shade is the probability
        cell.style.background = `rgba(36, 86, 166, ${Math.min(1, p).toFixed(3)})`;
        if (p > 0.5) cell.classList.add("light");
        if (next !== null && names[j] === next) cell.classList.add("hit");
        col.append(cell);
      }
      frag.append(col);
      columns.push(col);
    });
    grid.replaceChildren(frag);
    help.textContent = nextIsTarget && tokens
      ? "Under each character, the five most likely next characters (darker: more probable); outlined: the character that really comes next."
      : "Under each input step, the readout's five most likely labels (darker: more probable).";
  }

  function moveCursor(t) {
    if (!columns.length || t === current) return;
    if (columns[current]) columns[current].classList.remove("current");
    current = t;
    const col = columns[t];
    if (!col) return;
    col.classList.add("current");
    // keep the cursor's column in view, without scrolling the page or reading layout per step
    if (!lefts) {
      lefts = columns.map((c) => c.offsetLeft);  // the grid is positioned: offsets are within it
      view = { width: grid.clientWidth, scroll: grid.scrollLeft };
    }
    const right = lefts[t] + (lefts[1] ?? 30) - (lefts[0] ?? 0);
    if (lefts[t] < view.scroll || right > view.scroll + view.width) {
      grid.scrollLeft = view.scroll = Math.max(0, lefts[t] - view.width / 2);
    }
  }

  return { update, moveCursor };
}
