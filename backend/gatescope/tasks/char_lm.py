"""A character language model of Python source: CPython's own standard library.

    text:    d e f ␣ f ( x ) : ⏎ …
    target:  e f ␣ f ( x ) : ⏎ ␣ … none      every step: the next character

The corpus is a fixed list of pure-Python modules of CPython 3.11.7's standard library,
shipped beside this module (corpus/, with its license): read from the running interpreter,
their text, and so every score, changed a little with each Python release. Training
windows come from TRAIN_FILES, held-out windows from VALIDATION_FILES: the split is by file.

The vocab is newline, the 95 printable ASCII characters and U+FFFD, which stands for any
other character (a tab, a non-ASCII letter in a docstring): 97 inputs, and the same 97
classes. The metric is the held-out loss in nats per character, against a unigram baseline
(the validation text's cross-entropy under the training text's character frequencies,
add-one smoothed). Default `char_lm:length=100`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..core.readout import NO_TARGET
from .base import Metric, Split, Task, check_range, nats_per_token

PLACEHOLDER = "\ufffd"
VOCAB = "\n" + "".join(chr(c) for c in range(32, 127)) + PLACEHOLDER  # sorted by code point
TRAIN_FILES = ("argparse.py", "contextlib.py", "dataclasses.py", "fractions.py",
               "functools.py", "heapq.py", "shlex.py")
VALIDATION_FILES = ("textwrap.py",)
EXAMPLE = '''def mean(values):
    """Return the arithmetic mean of a list of numbers."""
    total = 0
    for value in values:
        total += value
    return total / len(values)
'''


CORPUS = Path(__file__).resolve().parent / "corpus"  # <module>.py.txt, CPython 3.11.7's
CORPUS_PYTHON = "3.11.7"


def clean(text: str) -> str:
    """The text with every character outside the vocab replaced by U+FFFD."""
    return "".join(ch if ch in _INDEX else PLACEHOLDER for ch in text)


_INDEX = {ch: k for k, ch in enumerate(VOCAB)}


@cache
def corpus(split: Split) -> np.ndarray:
    """The split's files, concatenated in list order, as token indices (read once)."""
    names = {"train": TRAIN_FILES, "validation": VALIDATION_FILES}.get(split)
    if names is None:
        raise ValueError(f"unknown split {split!r}: 'train' or 'validation'")
    texts = []
    for name in names:
        path = CORPUS / f"{name}.txt"
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"the char_lm corpus needs {path}, which cannot be read ({exc}); "
                             "gatescope's installation is incomplete") from None
    lookup = np.full(128, _INDEX[PLACEHOLDER], np.int64)  # ASCII → index; anything else → U+FFFD
    for ch, k in _INDEX.items():
        if ord(ch) < 128:
            lookup[ord(ch)] = k
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), "<u4")
    return np.where(codes < 128, lookup[np.minimum(codes, 127)], _INDEX[PLACEHOLDER])


@cache
def unigram_nats() -> float:
    """−mean log p(c) over the validation text, p = add-one smoothed training frequencies."""
    counts = np.bincount(corpus("train"), minlength=len(VOCAB)) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(-log_p[corpus("validation")].mean())


@dataclass(frozen=True)
class CharLM(Task):
    kind: ClassVar[str] = "char_lm"
    properties: ClassVar[tuple[str, ...]] = ("in_quotes", "indent", "depth")
    length: int = 100

    def __post_init__(self) -> None:
        check_range(self, "length", 2, 4000)

    @property
    def vocab(self) -> str:
        return VOCAB

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(VOCAB)

    @property
    def seq_len(self) -> int:
        return self.length

    @property
    def metric(self) -> Metric:
        return Metric("nats_per_char", nats_per_token, "unigram", unigram_nats(), False)

    def sample(self, rng: np.random.Generator, n: int, split: Split = "train"
               ) -> tuple[np.ndarray, np.ndarray]:
        """n windows of `length` characters at uniform offsets into the split's text;
        targets: the next character within the window (none at the last step)."""
        data = corpus(split)
        T = self.length
        starts = rng.integers(0, len(data) - T + 1, n)
        tokens = data[starts[None, :] + np.arange(T)[:, None]]
        targets = np.full((T, n), NO_TARGET, np.int64)
        targets[:-1] = tokens[1:]
        return tokens, targets

    def _targets(self, text: str) -> list[int | None]:
        if len(text) < 2:
            raise ValueError("a character-model text needs at least 2 characters: the target "
                             "at each step is the next one")
        return [_INDEX[ch] for ch in text[1:]] + [None]

    def example(self) -> str:
        return EXAMPLE

    def describe(self) -> str:
        sizes = {s: len(corpus(s)) for s in ("train", "validation")}
        return (f"next-character prediction on Python source from the standard library of "
                f"CPython {CORPUS_PYTHON}: train on {', '.join(TRAIN_FILES)} "
                f"({sizes['train']} characters), validate on {', '.join(VALIDATION_FILES)} "
                f"({sizes['validation']} characters); windows of {self.length} characters at "
                "uniform offsets; newline + printable ASCII, anything else as U+FFFD.")
