"""Text → the input matrix X (T, D): one-hot rows over a vocab, one per character (Unicode
code point). The request's checks (a repeated or missing character) are runner/prepare.py's;
these functions take a vocab that holds every character of the text once."""

from __future__ import annotations

import numpy as np


def default_vocab(text: str) -> str:
    """The sorted distinct characters (Unicode code points) of the text."""
    return "".join(sorted(set(text)))


def encode_text(text: str, vocab: str, dtype: np.dtype) -> np.ndarray:
    """One-hot rows, one per character: X[t, vocab.index(text[t])] = 1. Returns (T, D)."""
    index = {ch: k for k, ch in enumerate(vocab)}
    X = np.zeros((len(text), len(vocab)), dtype)
    X[np.arange(len(text)), [index[ch] for ch in text]] = 1.0
    return X
