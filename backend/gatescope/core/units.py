"""Units worth looking at: simple properties of the input text, one value per character,
and the hidden units whose state follows them most closely (|Pearson r|).

The explorer's "find units" helper re-implements these properties in JavaScript, so each
is defined exactly, for a text x_0 … x_{T−1}, with v_t the value after reading x_t:

    depth        v_t = #{s ≤ t : x_s ∈ "([{"} − #{s ≤ t : x_s ∈ ")]}"}
                 (may go negative on a text that closes more than it opens)
    in_quotes    v_t = 1.0 if, after x_t, the text is inside a string literal, else 0.0.
                 One state q (None outside, else the quote character that opened it):
                 outside, a ' or " opens a string (q = x_t); inside, the same character
                 closes it (q = None); every other character leaves q as it is. No escapes,
                 no triple quotes: '"' inside '…' is just a character. So the opening quote
                 itself reads 1.0 and the closing quote 0.0.
    indent       v_t = the number of spaces between the last newline at or before t (or the
                 start of the text) and the first non-space character after it, counting
                 only characters up to t: it grows while the indentation is typed, then
                 stays; a newline itself reads 0.
    since_start  v_t = t (steps since the first character; in delayed recall, since the
                 symbol to remember).

rank_units(h, v) → [(unit, r), …] sorted by |r| descending (ties: lower unit first), with
r_j = Σ_t (h_tj − h̄_j)(v_t − v̄) / √(Σ_t (h_tj − h̄_j)² · Σ_t (v_t − v̄)²), and r_j = 0 when
either factor under the root is 0 (a unit or a property that never changes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

OPEN, CLOSE, QUOTES = "([{", ")]}", "'\""


def depth(text: str) -> np.ndarray:
    """(T,) openings minus closings of ( [ { in text[0..t]."""
    step = np.array([1.0 if ch in OPEN else -1.0 if ch in CLOSE else 0.0 for ch in text])
    return np.cumsum(step)


def in_quotes(text: str) -> np.ndarray:
    """(T,) 1.0 where, after reading text[t], a ' or " string is open, else 0.0."""
    out, quote = np.zeros(len(text)), None
    for t, ch in enumerate(text):
        if quote is None and ch in QUOTES:
            quote = ch  # opens
        elif ch == quote:
            quote = None  # the same character closes
        out[t] = quote is not None
    return out


def indent(text: str) -> np.ndarray:
    """(T,) leading spaces of the current line seen so far (0 at a newline)."""
    out, spaces, leading = np.zeros(len(text)), 0, True
    for t, ch in enumerate(text):
        if ch == "\n":
            spaces, leading = 0, True
        elif leading and ch == " ":
            spaces += 1
        else:
            leading = False  # the first other character ends the indentation
        out[t] = spaces
    return out


def since_start(text: str) -> np.ndarray:
    """(T,) t."""
    return np.arange(len(text), dtype=np.float64)


PROPERTIES: dict[str, Callable[[str], np.ndarray]] = {
    "depth": depth, "in_quotes": in_quotes, "indent": indent, "since_start": since_start}

# what a property measures, as the end of "its h tracks …"
DESCRIPTIONS = {
    "depth": "the bracket depth",
    "in_quotes": "whether the text is inside a string literal",
    "indent": "the indentation of the current line",
    "since_start": "the number of steps since the first character",
}


def values(name: str, texts: Sequence[str]) -> np.ndarray:
    """A property over n texts of one length T, time first as h is: (T, n)."""
    if name not in PROPERTIES:
        raise ValueError(f"unknown property {name!r}; the properties are "
                         f"{', '.join(PROPERTIES)}")
    return np.stack([PROPERTIES[name](text) for text in texts], axis=1)


def pearson(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(H,) r_j between each column of h (M, H) and v (M,) (module docstring), float64."""
    h = np.asarray(h, np.float64)
    v = np.asarray(v, np.float64)
    if h.ndim != 2 or v.shape != (h.shape[0],):
        raise ValueError(f"h must be (M, H) and values (M,), got {h.shape} and {v.shape}")
    dh = h - h.mean(axis=0)
    dv = v - v.mean()
    num = dv @ dh  # Σ_t (h_tj − h̄_j)(v_t − v̄)
    den = np.sqrt((dh * dh).sum(axis=0) * (dv @ dv))
    # a constant unit or property: no linear relation to speak of, r = 0 (not 0/0)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def rank_units(h: np.ndarray, values: np.ndarray) -> list[tuple[int, float]]:
    """Every unit as (unit, r), by |r| descending, ties by unit.

    h: (T, H) hidden states, or several texts' states concatenated along time (or any
    (…, H) array: leading axes are flattened, as values' are, in the same order).
    values: the property at the same steps, h.shape[:-1].
    """
    h = np.asarray(h)
    r = pearson(h.reshape(-1, h.shape[-1]), np.asarray(values).reshape(-1))
    order = np.argsort(-np.abs(r), kind="stable")
    return [(int(j), float(r[j])) for j in order]


def why(name: str, r: float, sequences: int, steps: int) -> str:
    """One sentence saying what the numbers say about a unit and a property, e.g. "its h
    tracks the bracket depth (r = 0.97 over 64 validation sequences of 40 steps)"."""
    strength = abs(r)
    verb = ("tracks" if strength >= 0.8 else "partly follows" if strength >= 0.5
            else "is loosely related to" if strength >= 0.2 else "is barely related to")
    sign = ", inversely" if r < 0 and strength >= 0.2 else ""  # high where the property is low
    return (f"its h {verb} {DESCRIPTIONS[name]}{sign} (r = {r:.2f} over {sequences} "
            f"validation sequences of {steps} steps)")


__all__ = ["DESCRIPTIONS", "PROPERTIES", "depth", "in_quotes", "indent", "pearson",
           "rank_units", "since_start", "values", "why"]
