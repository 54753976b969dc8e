"""Sequences → the input matrix X (T, D): text one-hot over a vocab, or numbers as given."""

from __future__ import annotations

import numpy as np

from .errors import invalid
from .numerics import finite_array


def default_vocab(text: str) -> str:
    """The sorted distinct characters (Unicode code points) of the text."""
    return "".join(sorted(set(text)))


def encode_text(text: str, vocab: str, dtype: np.dtype) -> np.ndarray:
    """One-hot rows, one per character: X[t, vocab.index(text[t])] = 1. Returns (T, D)."""
    if len(set(vocab)) != len(vocab):
        repeated = next(ch for k, ch in enumerate(vocab) if ch in vocab[:k])
        raise invalid(("input", "vocab"), f"the vocab lists {repeated!r} twice; each character "
                      "must appear once", vocab)
    index = {ch: k for k, ch in enumerate(vocab)}
    missing = [ch for ch in dict.fromkeys(text) if ch not in index]
    if missing:
        shown = ", ".join(repr(ch) for ch in missing[:5])
        raise invalid(("input", "text"), f"character {shown} (first at position "
                      f"{text.index(missing[0])}) is not in the vocab ({len(vocab)} characters)"
                      if len(missing) == 1 else
                      f"characters {shown} are not in the vocab ({len(vocab)} characters)", text)
    X = np.zeros((len(text), len(vocab)), dtype)
    X[np.arange(len(text)), [index[ch] for ch in text]] = 1.0
    return X


def encode_values(values: list[list[float]], dtype: np.dtype) -> np.ndarray:
    """T rows of D numbers → (T, D); every row must have the same length."""
    D = len(values[0])
    for t, row in enumerate(values):
        if len(row) != D:
            raise invalid(("input", "values", t), f"row {t} has {len(row)} numbers but row 0 "
                          f"has {D}: every step needs the same input size D", row)
    return finite_array(values, dtype, ("input", "values"))
