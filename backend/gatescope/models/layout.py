"""What a model file holds, found among its tensors: the RNN, an embedding in front of it, a
head on top of it, and every tensor that is none of these (`ignored`).

    locate(model_file, choice, cell) → Layout
    rnn_name(model_file, choice)      → the RNN's module name, if there is one

The RNN is `torch.nn.LSTM/GRU/RNN` under any prefix ("enc.lstm.weight_ih_l0"), or the cells
of a Python loop: `nn.LSTMCell/GRUCell/RNNCell` tensors without `_l{k}` ("dec.rnn.weight_ih"),
cells whose prefixes differ only in a trailing number ("cells.0.", "cells.1.") stacked as
layers when their sizes chain. An embedding is a bias-less `X.weight` (V, E) with E the RNN's
input size; a head, `X.weight` (K, H) (and `X.bias` (K)) on the top layer's H outputs, as
`torch.nn.Linear` names it. Where several fit, `choice` (the upload's `embedding`, `rnn` and
`head` fields: module names, or "none") decides; else the error lists them.

Inside gatescope the RNN's tensors take `torch.nn.LSTM`'s plain names (weight_ih_l{k}, …) and
the head's `readout.weight`/`readout.bias`; `Layout.names` maps each back to the file's.
A tensor the file does not have (bias=False) is a zero inside, with no file name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..core.params import projection_name, unit_names
from ..core.readout import BIAS, WEIGHT
from .files import ModelFile, ModelFileError

EMBEDDING = "embedding.weight"  # the embedding's (V, E) weight, inside gatescope
NONE = "none"  # a choice: the model has no embedding (or no head)
CELL_NAMES = ("lstm", "gru", "rnn_tanh", "rnn_relu")

_MODULE = re.compile(
    r"(?P<prefix>(?:.*\.)?)(?P<name>(?:weight|bias)_(?:ih|hh)|weight_hr)_l(?P<layer>[0-9]{1,2})"
    r"(?P<reverse>_reverse)?")
_CELL = re.compile(r"(?P<prefix>(?:.*\.)?)(?P<name>(?:weight|bias)_(?:ih|hh))")
_STACKED = re.compile(r"(?P<stem>.*?)(?P<index>[0-9]{1,2})")  # "cells.0" → "cells.", 0
_LINEAR = re.compile(r"(?P<module>.+)\.weight")


@dataclass(frozen=True)
class Choice:
    """The upload's choices among several candidates: a module name ("encoder.lstm", ""
    for the file's top level), NONE, or None to let gatescope find the one that fits."""

    embedding: str | None = None
    rnn: str | None = None
    head: str | None = None

    def given(self) -> bool:
        return any(v is not None for v in (self.embedding, self.rnn, self.head))


ANY = Choice()  # no choice made: find the one part that fits


@dataclass
class Layout:
    """A model file's parts.

    cell: lstm / gru / rnn_tanh / rnn_relu. rnn: its module name ("cells.{k}" for stacked
    cells). state: the RNN's tensors under torch.nn.LSTM's plain names (zeros for biases the
    file lacks). embedding: (V, E) or None. head: {readout.weight (K, H), readout.bias (K)}
    or None. names: gatescope's name → the file's, for every tensor the file has.
    ignored: the file's tensors that are none of these, by name.
    """

    cell: str
    rnn: str
    cells: bool  # the RNN is a loop of *Cell modules
    state: dict[str, np.ndarray]
    directions: int = 1  # 2: bidirectional
    embedding_name: str | None = None
    embedding: np.ndarray | None = None
    head_name: str | None = None
    head: dict[str, np.ndarray] | None = None
    names: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(D, H, L): the RNN's input size, hidden size and layers (each of `directions`)."""
        L = sum(1 for k in range(16) if f"weight_hh_l{k}" in self.state)
        w_ih, w_hh = self.state["weight_ih_l0"], self.state["weight_hh_l0"]
        w_hr = self.state.get("weight_hr_l0")  # (P, H) with a projection
        return w_ih.shape[1], w_hh.shape[1] if w_hr is None else w_hr.shape[1], L

    @property
    def proj(self) -> int:
        """An LSTM's proj_size P (weight_hr_l0 is P×H), 0 without one."""
        w_hr = self.state.get("weight_hr_l0")
        return 0 if w_hr is None else w_hr.shape[0]


@dataclass
class _Candidate:
    """One RNN the file may hold: its module name and its tensors' file names by layer."""

    name: str
    layers: list[dict[str, str]]  # per unit: short name (weight_ih, …) → file name
    cells: bool
    prefixes: list[str]  # per unit: the file names around the short name ("{}_l0_reverse")
    directions: int = 1  # units per layer: 2 for a bidirectional RNN


def locate(model: ModelFile, choice: Choice = ANY, cell: str | None = None) -> Layout:
    """The RNN, the embedding and the head of a parsed file. `cell`: the upload's cell field
    (else the file's `cell` metadata): needed for a plain RNN, whose nonlinearity its
    tensors cannot tell. Raises ModelFileError (422) naming the field that would decide."""
    every: dict[str, np.ndarray | str] = {**model.unreadable, **model.tensors}
    rnn = _pick_rnn(_rnn_candidates(model.shapes), choice.rnn)
    used = {file for layer in rnn.layers for file in layer.values()}
    state, names = _rnn_state(every, rnn)
    name = _cell_name(state, cell or model.metadata.get("cell"))
    out = Layout(name, rnn.name, rnn.cells, state, rnn.directions, names=names)
    D, H, _ = out.sizes
    if out.proj and name != "lstm":
        raise ModelFileError(f"the RNN {_shown(rnn.name)} has weight_hr tensors, an LSTM's "
                             f"projection (proj_size), but its weights are a {name}'s")
    _find_ends(out, every, model.shapes, used, choice, D, rnn.directions * (out.proj or H))
    used |= set(out.names.values())
    out.ignored = sorted(set(model.shapes) - used)
    return out


def rnn_name(model: ModelFile, choice: Choice = ANY) -> str | None:
    """The RNN's module name, or None where the file holds none, or several and `choice`
    picks none of them (locate says why)."""
    try:
        return _pick_rnn(_rnn_candidates(model.shapes), choice.rnn).name
    except ModelFileError:
        return None


# ── the RNN ────────────────────────────────────────────────────────────────────────

def _rnn_candidates(shapes: Mapping[str, tuple[int, ...]]) -> list[_Candidate]:
    """Every RNN of the file: nn.LSTM/GRU/RNN modules, then loops of cells (stacked where
    their names number them)."""
    modules: dict[str, dict[tuple[int, int], dict[str, str]]] = {}
    cells: dict[str, dict[str, str]] = {}
    for key in shapes:
        m = _MODULE.fullmatch(key)
        if m is not None:
            unit = (int(m["layer"]), int(bool(m["reverse"])))
            modules.setdefault(m["prefix"], {}).setdefault(unit, {})[m["name"]] = key
            continue
        c = _CELL.fullmatch(key)
        if c is not None:
            cells.setdefault(c["prefix"], {})[c["name"]] = key
    out = []
    for prefix, units in sorted(modules.items()):
        # layers 0 … the highest named, each in both directions if any is reversed: one
        # left out is _rnn_state's to report
        L, directions = max(k for k, _ in units) + 1, 1 + max(d for _, d in units)
        order = [(k, d) for k in range(L) for d in range(directions)]
        out.append(_Candidate(prefix.removesuffix("."), [units.get(u, {}) for u in order],
                              False, [f"{prefix}{{}}_l{k}{'_reverse' if d else ''}"
                                      for k, d in order], directions))
    out += _stacked(cells, shapes)
    return out


def _stacked(cells: dict[str, dict[str, str]], shapes: Mapping[str, tuple[int, ...]]
             ) -> list[_Candidate]:
    """Cell groups as RNNs: groups named stem + 0, 1, … (or 1, 2, …) whose sizes chain
    (layer k's input size is layer k − 1's hidden size) are one RNN of several layers,
    named stem + "{k}"; every other group is a one-layer RNN."""
    out: list[_Candidate] = []
    runs: dict[str, dict[int, str]] = {}
    for prefix in cells:
        m = _STACKED.fullmatch(prefix.removesuffix("."))
        if m is not None and prefix:
            runs.setdefault(m["stem"], {})[int(m["index"])] = prefix
    taken: set[str] = set()
    for stem, by_index in sorted(runs.items()):
        first = min(by_index)
        chain: list[str] = []
        while first + len(chain) in by_index:
            chain.append(by_index[first + len(chain)])
        if len(chain) > 1 and first in (0, 1) and _chains([cells[p] for p in chain], shapes):
            out.append(_Candidate(f"{stem}{{k}}", [cells[p] for p in chain], True,
                                  [f"{p}{{}}" for p in chain]))
            taken |= set(chain)
    for prefix, tensors in sorted(cells.items()):
        if prefix not in taken:
            out.append(_Candidate(prefix.removesuffix("."), [tensors], True,
                                  [f"{prefix}{{}}"]))
    return out


def _chains(layers: list[dict[str, str]], shapes: Mapping[str, tuple[int, ...]]) -> bool:
    """Whether each layer's weight_ih takes the layer below's hidden size, with one H."""
    if not all("weight_ih" in t and "weight_hh" in t for t in layers):
        return False
    pairs = [(shapes[t["weight_ih"]], shapes[t["weight_hh"]]) for t in layers]
    if not all(len(ih) == 2 and len(hh) == 2 for ih, hh in pairs):
        return False
    H = pairs[0][1][1]
    return all(hh[1] == H for _, hh in pairs) and all(ih[1] == H for ih, _ in pairs[1:])


def _pick_rnn(candidates: list[_Candidate], chosen: str | None) -> _Candidate:
    if chosen is not None:
        name = chosen.removesuffix(".")
        for c in candidates:
            if c.name == name:
                return c
        raise ModelFileError(f"the rnn field names {chosen!r}, but the file's RNNs are "
                             f"{_listed(c.name for c in candidates)}", field="rnn")
    if not candidates:
        raise ModelFileError("no recurrent layer in the file: no nn.LSTM/GRU/RNN tensors "
                             "(weight_ih_l0, weight_hh_l0, …) and no LSTMCell/GRUCell/"
                             "RNNCell tensors (weight_ih, weight_hh, …)", field="file")
    if len(candidates) > 1:
        raise ModelFileError(f"the file holds {len(candidates)} RNNs: "
                             f"{_listed(c.name for c in candidates)}; say which with the rnn "
                             "field (its module name)", field="rnn")
    return candidates[0]


def _rnn_state(every: Mapping[str, np.ndarray | str], rnn: _Candidate
               ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The RNN's tensors under plain names, a zero for each bias the file lacks (bias=False
    drops all four), and plain name → file name."""
    state: dict[str, np.ndarray] = {}
    names: dict[str, str] = {}
    biases = any(name.startswith("bias") for layer in rnn.layers for name in layer)
    projected = any("weight_hr" in layer for layer in rnn.layers)
    for u, layer in enumerate(rnn.layers):
        if projected:  # an LSTM with proj_size: every unit has its weight_hr
            if "weight_hr" not in layer:
                raise ModelFileError(f"{rnn.prefixes[u].format('weight_hr')} is missing: an "
                                     "LSTM with proj_size has a projection in every layer "
                                     "and direction")
            value = _readable(layer["weight_hr"], every[layer["weight_hr"]])
            if value.ndim != 2:
                raise ModelFileError(f"tensor {layer['weight_hr']!r} has shape {value.shape}: "
                                     "a weight must be a matrix")
            plain = projection_name(u, rnn.directions)
            state[plain], names[plain] = value, layer["weight_hr"]
        for plain, short in zip(unit_names(u, rnn.directions), ("weight_ih", "weight_hh",
                                                                 "bias_ih", "bias_hh"),
                                strict=True):
            if short not in layer:
                if short.startswith("bias") and not biases:
                    continue
                raise ModelFileError(f"{rnn.prefixes[u].format(short)} is missing: layer "
                                     f"{u // rnn.directions} of the RNN needs weight_ih, "
                                     "weight_hh, bias_ih and bias_hh (or, with bias=False, "
                                     "no bias at all) in each direction")
            value = _readable(layer[short], every[layer[short]])
            if value.ndim != (2 if short.startswith("weight") else 1):
                what = "a weight must be a matrix" if short.startswith("weight") else \
                    "a bias must be a vector"
                raise ModelFileError(f"tensor {layer[short]!r} has shape {value.shape}: {what}")
            state[plain], names[plain] = value, layer[short]
    if not biases:
        for u in range(len(rnn.layers)):
            w_ih, w_hh, b_ih, b_hh = unit_names(u, rnn.directions)
            state[b_ih] = np.zeros(state[w_ih].shape[0], state[w_ih].dtype)
            state[b_hh] = np.zeros(state[w_hh].shape[0], state[w_hh].dtype)
    return state, names


def _cell_name(state: Mapping[str, np.ndarray], hint: str | None) -> str:
    """lstm / gru / rnn_tanh / rnn_relu from weight_hh_l0 (G·H, H): G = 4, 3 or 1 (H from
    weight_hr_l0, P×H, for an LSTM with proj_size, whose weight_hh is 4H×P). A plain RNN's
    nonlinearity is not in its tensors, so `hint` must say it: never a guess."""
    w = state["weight_hh_l0"]
    w_hr = state.get("weight_hr_l0")
    H = w.shape[1] if w_hr is None or w_hr.ndim != 2 else w_hr.shape[1]
    if H == 0 or w.shape[0] % H:
        raise ModelFileError(f"weight_hh has shape {tuple(w.shape)}: not a (G·H, H) matrix")
    inferred = {4: "lstm", 3: "gru", 1: "rnn"}.get(w.shape[0] // H)
    if inferred is None:
        raise ModelFileError(f"weight_hh has shape {tuple(w.shape)}: {w.shape[0]} rows is "
                             f"not 4, 3 or 1 × H = {H} (LSTM, GRU, RNN)")
    if hint is not None and hint not in CELL_NAMES:
        raise ModelFileError(f"the cell {hint!r} is not one of {', '.join(CELL_NAMES)}",
                             field="cell")
    if inferred == "rnn":
        if hint is None:
            raise ModelFileError("the weights are a plain RNN's (weight_hh has H rows), and "
                                 "its nonlinearity cannot be read from its tensors: give the "
                                 "cell field, rnn_tanh (nn.RNN's default) or rnn_relu "
                                 "(nonlinearity='relu')", field="cell")
        if hint not in ("rnn_tanh", "rnn_relu"):
            raise ModelFileError(f"the weights are a plain RNN's (G = 1), not a {hint}'s",
                                 field="cell")
        return hint
    if hint is not None and hint != inferred:
        raise ModelFileError(f"the weights are an {inferred.upper()}'s (weight_hh has "
                             f"{w.shape[0]} = {w.shape[0] // w.shape[1]}×{w.shape[1]} rows), "
                             f"not a {hint}'s", field="cell")
    return inferred


# ── the embedding and the head ─────────────────────────────────────────────────────

def _find_ends(out: Layout, every: Mapping[str, np.ndarray | str],
               shapes: Mapping[str, tuple[int, ...]], used: set[str], choice: Choice,
               D: int, H: int) -> None:
    """The embedding (a bias-less (V, D) weight) and the head ((K, H) weight, optional
    bias): each chosen, or the one way to have as many of the two as the file allows."""
    linear = {}
    for key, shape in shapes.items():
        m = _LINEAR.fullmatch(key)
        if m is not None and key not in used and len(shape) == 2:
            linear[m["module"]] = key
    embeddings = [m for m, key in linear.items()
                  if shapes[key][1] == D and f"{m}.bias" not in shapes]
    heads = [m for m, key in linear.items()
             if shapes[key][1] == H and shapes.get(f"{m}.bias", shapes[key][:1])
             == shapes[key][:1]]
    emb = _choose("embedding", choice.embedding, linear, embeddings)
    head = _choose("head", choice.head, linear, heads)
    if emb is None and head is None and choice.embedding is None and choice.head is None:
        emb, head = _settle(embeddings, heads)
    elif emb is None and choice.embedding is None:
        emb = _only("embedding", [m for m in embeddings if m != head], heads=False)
    elif head is None and choice.head is None:
        head = _only("head", [m for m in heads if m != emb], heads=True)
    if emb is not None and emb == head:
        raise ModelFileError(f"{emb!r} cannot be both the embedding and the head",
                             field="head")
    if emb is not None:
        if f"{emb}.bias" in shapes:
            raise ModelFileError(f"{emb!r} has a bias, {emb}.bias: an nn.Embedding has none, "
                                 "so it is no embedding (a Linear in front is not read)",
                                 field="embedding")
        weight = _readable(linear[emb], every[linear[emb]])
        if weight.shape[1] != D:
            raise ModelFileError(f"the embedding {emb!r} is {weight.shape[0]}×"
                                 f"{weight.shape[1]}, but the RNN takes inputs of size {D}: "
                                 f"an embedding must be V×{D}", field="embedding")
        out.embedding_name, out.embedding = emb, weight
        out.names[EMBEDDING] = linear[emb]
    if head is not None:
        weight = _readable(linear[head], every[linear[head]])
        if weight.shape[1] != H:
            raise ModelFileError(f"the head {head!r} is {weight.shape[0]}×{weight.shape[1]}, "
                                 f"but the RNN's top layer has {H} outputs: a head must be "
                                 f"K×{H}", field="head")
        bias_name = f"{head}.bias"
        out.head_name = head
        out.names[WEIGHT] = linear[head]
        if bias_name in every:
            bias = _readable(bias_name, every[bias_name])
            if bias.shape != (weight.shape[0],):
                raise ModelFileError(f"{bias_name!r} has shape {bias.shape}, but "
                                     f"{linear[head]!r} has {weight.shape[0]} rows",
                                     field="head")
            out.names[BIAS] = bias_name
        else:  # torch.nn.Linear(bias=False)
            bias = np.zeros(weight.shape[0], weight.dtype)
        out.head = {WEIGHT: weight, BIAS: bias}


def _choose(what: str, chosen: str | None, linear: Mapping[str, str],
            fitting: list[str]) -> str | None:
    """The module the upload's field names (None for NONE or no choice)."""
    if chosen is None or chosen == NONE:
        return None
    name = chosen.removesuffix(".weight").removesuffix(".")
    if name not in linear:
        raise ModelFileError(f"the {what} field names {chosen!r}, but the file has no "
                             f"{name}.weight matrix beside the RNN; candidates: "
                             f"{_listed(fitting)}", field=what)
    return name


def _only(what: str, fitting: list[str], heads: bool) -> str | None:
    if len(fitting) > 1:
        shape = "(K, H) weights on the RNN's outputs" if heads else \
            "bias-less (V, E) weights of the RNN's input size"
        raise ModelFileError(f"the file holds several possible {what}s, {shape}: "
                             f"{_listed(fitting)}; say which with the {what} field (or "
                             f"{NONE!r})", field=what)
    return fitting[0] if fitting else None


def _settle(embeddings: list[str], heads: list[str]) -> tuple[str | None, str | None]:
    """The one (embedding, head) pair with the most parts, two different tensors; several
    equally full pairs are ambiguous."""
    pairs = [(e, h) for e in [*embeddings, None] for h in [*heads, None]
             if e is None or e != h]
    most = max(sum(x is not None for x in p) for p in pairs)
    best = [p for p in pairs if sum(x is not None for x in p) == most]
    if len(best) == 1:
        return best[0]
    shown = "; ".join(f"embedding {e or NONE!r}, head {h or NONE!r}" for e, h in best[:6])
    raise ModelFileError(f"the file's tensors fit an embedding and a head in several ways "
                         f"({shown}); say which with the embedding and head fields (a module "
                         f"name, or {NONE!r})", field="head")


# ── helpers ────────────────────────────────────────────────────────────────────────

def _readable(name: str, value: np.ndarray | str) -> np.ndarray:
    if isinstance(value, str):
        raise ModelFileError(f"tensor {name!r} has dtype {value}; gatescope reads F16, F32 "
                             "and F64 (float16/32/64) — convert it with tensor.float() "
                             "before saving")
    return value


def _shown(name: str) -> str:
    return repr(name) if name else "at the file's top level"


def _listed(names: object) -> str:
    items = [repr(n) if n else "'.' (the top level)" for n in names]  # type: ignore[attr-defined]
    return ", ".join(items[:12]) + (f" and {len(items) - 12} more" if len(items) > 12 else "") \
        if items else "none"
