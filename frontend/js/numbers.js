// Numbers typed one step per line (or separated by ";"), the values of a step by commas or
// spaces: what the form's "Numbers" input means. No server needed to read them.

import { ApiError } from "./errors.js";

// "1, 2; 3 4" or one step per line → [[1, 2], [3, 4]].
export function parseNumbers(text) {
  const rows = text.split(/[;\n]/).map((r) => r.trim()).filter((r) => r.length);
  if (!rows.length) throw new ApiError("Type the numbers of at least one step.", "input");
  const values = rows.map((row, t) => row.split(/[\s,]+/).filter((v) => v.length).map((v) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new ApiError(`Step ${t}: "${v}" is not a number.`, "input");
    return n;
  }));
  const D = values[0].length;
  const bad = values.findIndex((r) => r.length !== D);
  if (bad >= 0) {
    throw new ApiError(`Step ${bad} has ${values[bad].length} numbers but step 0 has ${D}: every step needs the same count.`, "input");
  }
  return values;
}

// "3 1 4, 1" → [3, 1, 4, 1]: token ids, for a model with an embedding.
export function parseTokens(text) {
  const parts = text.split(/[\s,;]+/).filter((v) => v.length);
  if (!parts.length) throw new ApiError("Type at least one token id.", "input");
  return parts.map((v, t) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new ApiError(`Step ${t}: "${v}" is not a token id (a whole number from 0).`, "input");
    return n;
  });
}
