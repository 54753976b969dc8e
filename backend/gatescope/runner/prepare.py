"""A validated request → everything the engine needs (`Prepared`): the one place that checks
a request against its data. The schema (contract/schemas.py) checks each field alone; what
depends on several fields, on a stored model or on the sequence is checked here, in the
order a request meets it, each error a ValidationError whose `loc` names the field:

    weights    the stored model (cell, sizes), or the inline tensors' names, shapes, range
    input      text in the vocab (the model's or the text's own), or T×D numbers
    sizes      T, D, H, L and T·H·L against the server's limits
    budget     the response's bytes and the peak memory, estimated from the sizes
               (budget.py), against the server's budgets — before any weight is drawn
    readout    readout.weight (K, H), readout.bias (K)
    state      initial_state L×H (c only for an LSTM)
    loss       its step, unit, targets or task against T, H, K and the model's labels
    lab        interventions inside the model and the sequence; connectivity's cost
    jacobian   step and layer inside the sequence and the model

Arrays come out in the request's dtype; X is (T, 1, D): one sequence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import numpy as np
from pydantic import ValidationError

from .. import tasks
from ..contract.encoding import Encoding
from ..contract.errors import ModelNotFoundError, invalid
from ..contract.limits import MAX_CONNECTIVITY_COST, MAX_CONNECTIVITY_STEPS, Limits
from ..contract.schemas import (
    HIDDEN_STATE_LOSSES,
    LAYER_FIELDS,
    MSE,
    READOUT_LOSSES,
    RUN_FIELDS,
    BCEWithLogits,
    CrossEntropy,
    HiddenUnit,
    JacobianRequest,
    NextToken,
    RunRequest,
    TaskLoss,
    Upstream,
)
from ..core.cells import CELLS, Cell
from ..core.cells.clamps import Clamp, StepClamps
from ..core.inputs import default_vocab, encode_text
from ..core.params import StateDict, pytorch_init, shapes
from ..core.readout import BIAS, NO_TARGET, WEIGHT
from ..models.state_dict import check_readout, check_state_dict, infer_sizes
from ..models.stored import ModelSource
from .budget import Sizes, jacobian_response_bytes, peak_bytes, response_bytes
from .objective import HIDDEN_LOSSES, Objective

Request = TypeVar("Request", bound=RunRequest)


@dataclass
class Prepared:
    """Everything a request resolves to before the engine runs; arrays in `dtype`.

    X: (T, 1, D). h0, c0: (L·directions, 1, H) (c0 None unless LSTM), one per unit
    k·directions + d (directions 2: bidirectional). readout: {"readout.weight":
    (K, H), "readout.bias": (K,)} or None. labels: the readout's K output names, if known.
    task: the task a stored model was trained on, if it says. clamps: per layer, the
    interventions as one tuple per step, or None. embedding: (V, E) for a model with an
    embedding in front (X is then its rows `token_ids`, (T,)). names: gatescope's tensor
    name → the model's own, for the parameter gradients (None: the same names).
    """

    request: RunRequest
    cell: Cell
    dtype: np.dtype
    params: StateDict
    X: np.ndarray
    tokens: list[str] | None
    vocab: str | None
    h0: np.ndarray
    c0: np.ndarray | None
    objective: Objective
    clamps: list[StepClamps | None] | None = None
    readout: StateDict | None = None
    labels: list[str] | None = None
    task: str | None = None
    embedding: np.ndarray | None = None
    token_ids: np.ndarray | None = None
    names: dict[str, str] | None = None
    directions: int = 1
    proj: int = 0  # an LSTM's proj_size P: h0 is (L·directions, 1, P), c0 (…, H)
    cost: Sizes | None = None  # what the budget reckoned the run's cost from

    @property
    def sizes(self) -> tuple[int, int, int, int]:
        """(T, D, H, L): L layers, each of `directions` units."""
        T, _, D = self.X.shape
        U, _, H = self.h0.shape if self.c0 is None else self.c0.shape  # c0 is H wide
        return T, D, H, U // self.directions


def parse(request: Request | Mapping[str, Any], model: type[Request]) -> Request:
    """A request model from a dict (validated) or as given."""
    return request if isinstance(request, model) else model.model_validate(request)


def prepare(req: RunRequest, models: ModelSource | None = None,
            limits: Limits | None = None, encoding: Encoding | None = None,
            text_vocab: str | None = None, shared: StateDict | None = None) -> Prepared:
    """Resolve weights and inputs, and check every limit, size and budget the schema could
    not. `encoding`: what the response will be encoded as (None: NumPy, in process).
    `text_vocab`: the vocab of text input where neither the request nor the model gives one
    (default: the text's own sorted distinct characters; a batch's: all its texts').
    `shared`: the RNN's weights another sequence of the same request resolved already (a
    batch's: drawn or converted once, not once per sequence)."""
    limits = limits or Limits()
    if req.input.batch is not None:
        raise invalid(("input", "batch"), "this takes one sequence: a batch is run by "
                      "gatescope.run_batch (or POST /api/v1/run); /jacobian expands one step "
                      "of one sequence", None)
    dtype = np.dtype(req.dtype)
    explicit = req.model_fields_set
    cell_name: str = req.cell
    tensors: StateDict | None = None
    model_vocab: str | None = None
    readout = labels = task = None
    embedding: np.ndarray | None = None
    names: dict[str, str] | None = None
    directions = 2 if req.bidirectional else 1
    proj = 0
    loc: tuple[str, ...] = ("weights", "tensors")

    # the weights: a stored model, or tensors given inline
    if req.weights.model_id is not None:
        if models is None:
            raise ModelNotFoundError(f"no model store is configured, so model_id "
                                     f"{req.weights.model_id!r} cannot be found")
        stored = models.load(req.weights.model_id)
        if "cell" in explicit and req.cell != stored.cell:
            raise invalid(("cell",), f"model {req.weights.model_id} is a {stored.cell}, "
                          f"not a {req.cell}; leave cell out or set it to {stored.cell!r}",
                          req.cell)
        cell_name, tensors, model_vocab = stored.cell, stored.tensors, stored.vocab
        readout, labels, task = stored.readout, stored.labels, stored.task
        embedding, names, directions = stored.embedding, stored.names, stored.directions
        loc = ("weights", "model_id")
    elif req.weights.tensors is not None:
        tensors, readout = _split_readout(_as_arrays(req.weights.tensors, dtype, loc))
        tensors, names = _without_biases(tensors)
        if names is not None and readout is not None:  # the readout's gradients too
            names.update({name: name for name in readout})
    cell = CELLS[cell_name]

    H, L = req.hidden_size, req.num_layers
    if tensors is not None:
        H, L, directions, proj = infer_sizes(tensors, loc)
        for name, value in (("hidden_size", H), ("num_layers", L),
                            ("bidirectional", directions == 2)):
            if name in explicit and getattr(req, name) != value:
                raise invalid((name,), f"{name} is {getattr(req, name)} but the weights have "
                              f"{value}; leave {name} out to take it from the weights",
                              getattr(req, name))

    # the input
    tokens = vocab = ids = None
    if embedding is not None:  # token ids, given or read from text through the vocab
        ids, vocab = _token_ids(req, embedding.shape[0], model_vocab)
        embedding = embedding.astype(dtype, copy=False)  # a float64 run copies nothing
        X = embedding[ids]  # x_t = E[id_t]
        tokens = list(req.input.text) if req.input.text is not None else None
    elif req.input.tokens is not None:
        raise invalid(("input", "tokens"), "token ids are input for a model with an embedding "
                      "(nn.Embedding) in front, and this one has none: give text (one-hot over "
                      "its vocab) or values", None)
    elif req.input.text is not None:
        vocab = req.input.vocab or model_vocab or text_vocab or default_vocab(req.input.text)
        if len(vocab) > limits.max_input:
            raise invalid(("input", "text"), f"the text has {len(vocab)} distinct characters, "
                          f"over the limit of {limits.max_input} input units (D)", None)
        _check_vocab(req.input.text, vocab)
        X = encode_text(req.input.text, vocab, dtype)
        tokens = list(req.input.text)
    else:
        assert req.input.values is not None  # the schema: text, values or tokens
        X = _values(req.input.values, dtype)
    T, D = X.shape
    _check_sizes(limits, T=T, D=D, H=H, L=L, directions=directions)
    if req.connectivity and T > MAX_CONNECTIVITY_STEPS:
        raise invalid(("connectivity",), f"connectivity is computed for at most "
                      f"{MAX_CONNECTIVITY_STEPS} steps; this sequence has {T}", True)
    U = L * directions  # units: a layer's directions each run their own recurrence
    if req.connectivity and T * T * H * H * U > MAX_CONNECTIVITY_COST:
        raise invalid(("connectivity",), f"connectivity costs steps² × hidden_size² × "
                      f"num_layers{' × 2 directions' if directions == 2 else ''} = "
                      f"{T}²×{H}²×{U} = {T * T * H * H * U:,}, over the limit of "
                      f"{MAX_CONNECTIVITY_COST:,} (e.g. 512 steps × 128 units × 1 layer)", True)
    K = np.shape(readout[WEIGHT])[0] if readout is not None and WEIGHT in readout else 0
    parts = None if req.fields is None and req.backward else frozenset(
        part for part in (*LAYER_FIELDS, *RUN_FIELDS) if req.wants(part))
    cost = Sizes(cell, T, D, H, L, K, dtype.itemsize, req.connectivity, _request_values(req),
                 0 if embedding is None else embedding.size, directions, proj, parts)
    _check_budget(cost, limits, encoding)

    if shared is not None:  # the batch's own, checked with its first sequence
        params = shared
    elif tensors is None:
        seed, forget_bias = req.weights.seed, req.weights.forget_bias
        if forget_bias is not None and "f" not in cell.gates:
            raise invalid(("weights", "forget_bias"), f"forget_bias is for an LSTM; a "
                          f"{cell.name} has no forget gate", forget_bias)
        params = _seeded(cell.name, D, H, L, seed, forget_bias, dtype.str,
                         req.weights.recurrent_scale, directions)
    else:
        D_weights = np.shape(tensors["weight_ih_l0"])[-1] if "weight_ih_l0" in tensors else 0
        check_state_dict(cell, tensors, D_weights, H, L, loc, directions, proj)
        if D_weights != D:
            what = (f"the embedding's vectors have {D} numbers" if embedding is not None
                    else f"the vocab has {D} characters" if vocab is not None
                    else f"each step has {D} numbers")
            raise invalid(("input",), f"the weights take inputs of size {D_weights} "
                          f"(weight_ih_l0 has {D_weights} columns) but {what}", None)
        params = _as_arrays(tensors, dtype, loc)
    width = directions * (proj or H)  # the top layer's output: [h→; h←], each H (or P) wide
    if readout is not None:
        check_readout(readout, width, limits.max_classes, loc)
        readout = _as_arrays(readout, dtype, loc)

    h0, c0 = _initial_state(req, cell, U, H, dtype, directions, proj)
    objective = _objective(req, T, width, dtype, readout, labels, vocab, task)
    _check_loss_layer(req, cell, L, directions * H, T, dtype, objective)
    clamps = _clamps(req, cell, T, H, L, directions, proj)
    return Prepared(req, cell, dtype, params, X[:, None, :], tokens, vocab, h0, c0, objective,
                    clamps, readout, labels, task,
                    embedding, ids, names, directions, proj, cost)


def prepare_jacobian(req: JacobianRequest, models: ModelSource | None = None,
                     limits: Limits | None = None, encoding: Encoding | None = None
                     ) -> Prepared:
    """`prepare`, and the step and layer to expand inside the sequence and the model. Its
    memory is budgeted as a run's (which it does not exceed); its response, the H×H
    matrices, against the response budget."""
    limits = limits or Limits()
    p = prepare(req, models, limits)
    if encoding is not None:
        s = Sizes(p.cell, *p.sizes, itemsize=p.dtype.itemsize)
        body = jacobian_response_bytes(s, encoding)
        if body > limits.max_response_bytes:
            raise invalid(("hidden_size",), f"the {encoding} response would be about "
                          f"{_mib(body)} ({s.H}×{s.H} matrices), over this server's budget "
                          f"of {_mib(limits.max_response_bytes)} "
                          "(GATESCOPE_MAX_RESPONSE_BYTES); use fewer units", None,
                          "over_budget")
    T, _, _, L = p.sizes
    if req.step >= T:
        raise invalid(("step",), f"step {req.step} is past the last step ({T - 1}) of this "
                      f"{T}-step sequence", req.step)
    if req.layer >= L:
        raise invalid(("layer",), f"layer {req.layer} does not exist: this model has {L} "
                      f"layer(s), numbered from 0", req.layer)
    if req.direction == "reverse" and p.directions == 1:
        raise invalid(("direction",), "this model is not bidirectional: its layers have "
                      "only the forward direction", req.direction)
    return p


# ── numbers ──────────────────────────────────────────────────────────────────────────

def finite_array(values: Any, dtype: np.dtype, loc: tuple[str | int, ...]) -> np.ndarray:
    """`values` as an array of `dtype`; a number beyond the dtype's range (float32 holds
    ±3.4e38) is a ValidationError at `loc`, not an infinity that surfaces later."""
    with np.errstate(over="ignore"):
        a = np.asarray(values, dtype=dtype)
    if not np.isfinite(a).all():
        raise invalid(loc, f"holds a number beyond the range of {np.dtype(dtype).name} "
                      f"(±{np.finfo(dtype).max:.3g}); use dtype float64 or smaller numbers")
    return a


def _as_arrays(tensors: Mapping[str, Any], dtype: np.dtype, loc: tuple[str, ...]) -> StateDict:
    """Nested lists or arrays → arrays of `dtype`; a ragged list, or a number beyond the
    dtype's range, is a clear error."""
    out = {}
    for name, value in tensors.items():
        try:
            out[name] = finite_array(value, dtype, (*loc, name))
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                raise
            raise invalid((*loc, name), f"{name} is ragged: every row must have the same "
                          "length", None) from None
    return out


def _without_biases(tensors: StateDict) -> tuple[StateDict, dict[str, str] | None]:
    """Inline tensors without any bias (bias=False): zero biases inside, and the names the
    gradients are returned under (the given ones only); as given otherwise (None)."""
    if any(name.startswith("bias_") for name in tensors):
        return tensors, None
    names = {name: name for name in tensors}
    full = dict(tensors)
    for name, w in tensors.items():  # weight_ih / weight_hh: not a projection's weight_hr
        if name.startswith(("weight_ih", "weight_hh")) and np.ndim(w) == 2:
            full[name.replace("weight_", "bias_", 1)] = np.zeros(np.shape(w)[0], w.dtype)
    return full, names


def _split_readout(tensors: StateDict) -> tuple[StateDict, StateDict | None]:
    """(the recurrent layers' tensors, the readout's {readout.weight, readout.bias} or None
    when neither is given)."""
    rnn = {k: v for k, v in tensors.items() if k not in (WEIGHT, BIAS)}
    readout = {k: tensors[k] for k in (WEIGHT, BIAS) if k in tensors}
    return rnn, readout or None


# ── the input and the sizes ──────────────────────────────────────────────────────────

def _check_vocab(text: str, vocab: str) -> None:
    """Each vocab character once, and every character of the text in it."""
    if len(set(vocab)) != len(vocab):
        repeated = next(ch for k, ch in enumerate(vocab) if ch in vocab[:k])
        raise invalid(("input", "vocab"), f"the vocab lists {repeated!r} twice; each character "
                      "must appear once", vocab)
    known = set(vocab)
    missing = [ch for ch in dict.fromkeys(text) if ch not in known]
    if missing:
        shown = ", ".join(repr(ch) for ch in missing[:5])
        raise invalid(("input", "text"), f"character {shown} (first at position "
                      f"{text.index(missing[0])}) is not in the vocab ({len(vocab)} characters)"
                      if len(missing) == 1 else
                      f"characters {shown} are not in the vocab ({len(vocab)} characters)", text)


def _token_ids(req: RunRequest, V: int, model_vocab: str | None
               ) -> tuple[np.ndarray, str | None]:
    """(T,) token ids below V, and the vocab text was read through: given as tokens, or
    each character of text as its index in the vocab (the request's, else the model's),
    which must have V characters. Values are refused: the model's input is token ids."""
    if req.input.tokens is not None:
        for t, i in enumerate(req.input.tokens):
            if i >= V:
                raise invalid(("input", "tokens", t), f"token id {i} at step {t} is not in the "
                              f"embedding: it has V = {V} rows, so an id is 0 … {V - 1}", i)
        return np.asarray(req.input.tokens, dtype=np.intp), model_vocab
    if req.input.text is None:
        raise invalid(("input", "values"), "this model starts with an embedding "
                      "(nn.Embedding), so its input is token ids: give input.tokens, or text "
                      "with a vocab", None)
    vocab = req.input.vocab or model_vocab
    if vocab is None:
        raise invalid(("input", "vocab"), f"this model embeds token ids (its embedding has "
                      f"V = {V} rows) and has no vocab to read text through: give "
                      f"input.tokens, or input.vocab, {V} characters, one per token id", None)
    if len(vocab) != V:
        raise invalid(("input", "vocab"), f"the vocab has {len(vocab)} characters but the "
                      f"embedding has V = {V} rows: one character per token id", vocab)
    _check_vocab(req.input.text, vocab)
    index = {ch: k for k, ch in enumerate(vocab)}
    return np.array([index[ch] for ch in req.input.text], dtype=np.intp), vocab


def _values(values: list[list[float]], dtype: np.dtype) -> np.ndarray:
    """T rows of D numbers → (T, D); every row must have the same length."""
    D = len(values[0])
    for t, row in enumerate(values):
        if len(row) != D:
            raise invalid(("input", "values", t), f"row {t} has {len(row)} numbers but row 0 "
                          f"has {D}: every step needs the same input size D", row)
    return finite_array(values, dtype, ("input", "values"))


def _check_sizes(limits: Limits, T: int, D: int, H: int, L: int, directions: int = 1
                 ) -> None:
    """The first size over the server's limit, as an error naming its field."""
    if limits.max_steps < T:
        raise invalid(("input",), f"the sequence has {T} steps, over the limit of "
                      f"{limits.max_steps}", T)
    if limits.max_input < D:
        raise invalid(("input",), f"the input size D is {D}, over the limit of "
                      f"{limits.max_input}", D)
    if limits.max_hidden < H:
        raise invalid(("hidden_size",), f"hidden_size {H} is over the limit of "
                      f"{limits.max_hidden}", H)
    if limits.max_layers < L:
        raise invalid(("num_layers",), f"num_layers {L} is over the limit of "
                      f"{limits.max_layers}", L)
    U = L * directions
    if limits.max_work < T * H * U:
        two = " × 2 directions" if directions == 2 else ""
        raise invalid(("input",), f"steps × hidden_size × num_layers{two} = {T}×{H}×{U} = "
                      f"{T * H * U:,} is over the limit of {limits.max_work:,}; use a "
                      "shorter sequence, fewer units or fewer layers", T * H * U)


# ── the budget ───────────────────────────────────────────────────────────────────

def _request_values(req: RunRequest) -> int:
    """The numbers the parsed request holds as Python floats."""
    count = 0
    if req.input.values is not None:
        count += sum(len(row) for row in req.input.values)
    for tensor in (req.weights.tensors or {}).values():
        count += sum(len(row) if isinstance(row, list) else 1 for row in tensor)
    if isinstance(req.loss, MSE):
        count += sum(len(row) for row in req.loss.targets)
    if isinstance(req.loss, Upstream):
        count += sum(len(row) for rows in (req.loss.dh, req.loss.dc) for row in rows or ()
                     if row is not None)
    state = req.initial_state
    for rows in ((state.h, state.c) if state is not None else ()):
        count += sum(len(row) for row in rows or ())
    return count


def _check_budget(sizes: Sizes, limits: Limits, encoding: Encoding | None) -> None:
    """The run's peak memory and its response's bytes, estimated from the sizes, within the
    server's budgets; else an error saying what it would cost and how to fit."""
    s = sizes
    what = (f"{s.T} steps × {s.H} units × {s.L} layer(s) of {s.cell.name}, {s.D} inputs"
            + (f", a readout of {s.K}" if s.K else "") + (", connectivity" if s.connectivity
                                                         else ""))
    # the sizes that dominate the cost: the step-long arrays, or the H×H matrices
    loc = ("hidden_size",) if s.H * s.H > 8 * s.T * s.H else ("input",)
    fit = "use fewer layers, a shorter sequence or fewer units"
    # what the binary encoding would cost instead (the page's), when another was asked for
    binary = (f"; ?encoding=binary sends the same numbers in about "
              f"{_mib(response_bytes(s, 'binary'))}" if encoding not in (None, "binary") and
              peak_bytes(s, "binary") <= limits.max_memory_bytes and
              response_bytes(s, "binary") <= limits.max_response_bytes else "")
    if encoding is not None and response_bytes(s, encoding) > limits.max_response_bytes:
        raise invalid(loc, f"the {encoding} response would be about "
                      f"{_mib(response_bytes(s, encoding))} ({what}), over this server's "
                      f"budget of {_mib(limits.max_response_bytes)} "
                      f"(GATESCOPE_MAX_RESPONSE_BYTES){binary}; or {fit}", None, "over_budget")
    peak = peak_bytes(s, encoding)
    if peak > limits.max_memory_bytes:
        raise invalid(loc, f"this run would take about {_mib(peak)} of memory ({what}), over "
                      f"this server's budget of {_mib(limits.max_memory_bytes)} "
                      f"(GATESCOPE_MAX_MEMORY_BYTES){binary}; or {fit}", None, "over_budget")


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n / 1024:,.0f} KiB"


# ── seeded weights ───────────────────────────────────────────────────────────────────

def _seeded(cell: str, D: int, H: int, L: int, seed: int, forget_bias: float | None,
            dtype: str, recurrent_scale: float, directions: int = 1) -> StateDict:
    """pytorch_init's weights, read-only, remembered for the next run of the same model: the
    explorer runs one seeded model again on every edit of its input, and drawing 330,000
    numbers (an LSTM with D = 64, H = 256) costs ~2 ms. Models over 16 MiB are not kept."""
    count = sum(int(np.prod(shape))
                for shape in shapes(CELLS[cell], D, H, L, directions).values())
    if count * np.dtype(dtype).itemsize > _SEEDED_MAX_BYTES:
        return pytorch_init(CELLS[cell], D, H, L, seed, forget_bias, np.dtype(dtype),
                            recurrent_scale, directions)
    kept = _seeded_kept(cell, D, H, L, seed, forget_bias, dtype, recurrent_scale, directions)
    return {name: a.view() for name, a in kept.items()}  # a view of read-only stays read-only


@lru_cache(maxsize=4)
def _seeded_kept(cell: str, D: int, H: int, L: int, seed: int, forget_bias: float | None,
                 dtype: str, recurrent_scale: float, directions: int) -> StateDict:
    params = pytorch_init(CELLS[cell], D, H, L, seed, forget_bias, np.dtype(dtype),
                          recurrent_scale, directions)
    for a in params.values():
        a.flags.writeable = False  # shared by every run that asks for this model
    return params


_SEEDED_MAX_BYTES = 16 * 2**20


# ── the initial state ────────────────────────────────────────────────────────────────

def _initial_state(req: RunRequest, cell: Cell, L: int, H: int, dtype: np.dtype,
                   directions: int = 1, proj: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """(L, 1, H) arrays, L the units (layers × directions); h0 (L, 1, P) with an LSTM's
    proj_size P; zeros where not given."""
    h0 = np.zeros((L, 1, proj or H), dtype)
    c0 = np.zeros((L, 1, H), dtype) if cell.has_cell_state else None
    state = req.initial_state
    if state is None:
        return h0, c0
    if state.c is not None and c0 is None:
        raise invalid(("initial_state", "c"), f"a {cell.name} has no cell state c; give only h",
                      None)
    for name, rows, target in (("h", state.h, h0), ("c", state.c, c0)):
        if rows is None or target is None:
            continue
        got = (len(rows), *{len(r) for r in rows})
        if got != target.shape[::2]:
            per = ("per layer" if directions == 1 else
                   "per layer and direction, layer k's forward 2k, its reverse 2k + 1")
            wide, size = ("proj_size", "P") if name == "h" and proj else ("hidden_size", "H")
            raise invalid(("initial_state", name), f"initial_state.{name} must be "
                          f"{'L' if directions == 1 else '2L'}×{size} = {L}×{target.shape[-1]} "
                          f"(one row of {wide} numbers {per}), got "
                          f"{len(rows)} rows of {'/'.join(map(str, got[1:]))}", None)
        target[:, 0, :] = finite_array(rows, dtype, ("initial_state", name))
    return h0, c0


# ── the loss ─────────────────────────────────────────────────────────────────────────

def _objective(req: RunRequest, T: int, H: int, dtype: np.dtype, weights: StateDict | None,
               labels: list[str] | None, vocab: str | None, task: str | None) -> Objective:
    """Check the loss against the sequence (T steps), the top layer (H units) and the
    readout (`weights`, None without one); resolve its targets.

    `labels`: the model's K output names; next_token falls back to the input `vocab` when
    the model has none and the vocab has K characters (a character model's readout).
    `task`: the task a stored model was trained on (for the task loss).
    Errors name the field as the schema does: ("loss", <type>, <field>).
    """
    loss = req.loss
    if isinstance(loss, READOUT_LOSSES):
        if weights is None:
            raise invalid(("loss", loss.type), f"{loss.type} is a loss on a readout's outputs, "
                          "and these weights have no readout: load a model with "
                          "readout.weight and readout.bias (or give both in weights.tensors), "
                          f"or use a loss on the hidden states ({HIDDEN_LOSSES})", loss.type)
        K = weights[WEIGHT].shape[0]
        if isinstance(loss, BCEWithLogits):
            return Objective(loss, binary=_binary_targets(loss, T, K)[:, None])
        if K == 1:
            raise invalid(("loss", loss.type), f"this model's head has one output: it is a "
                          f"binary classifier, whose loss is bce_with_logits (a target 0 or 1 "
                          f"per step); {loss.type} over a single class is always 0", loss.type)
        return Objective(loss, classes=_classes(req, T, K, labels, vocab, task)[:, None])
    if isinstance(loss, HiddenUnit):
        if loss.step is not None and loss.step >= T:
            raise invalid(("loss", loss.type, "step"), f"step {loss.step} is past the last "
                          f"step ({T - 1}) of this {T}-step sequence", loss.step)
        if loss.unit >= H:
            raise invalid(("loss", loss.type, "unit"), f"unit {loss.unit} is past the last "
                          f"hidden unit ({H - 1}) of hidden_size {H}", loss.unit)
    if isinstance(loss, Upstream):
        dh = None if loss.dh is None else _rows(loss.dh, T, H, dtype, ("loss", loss.type,
                                                                       "dh"), "h_t")
        return Objective(loss, dh=dh)
    if not isinstance(loss, MSE):
        return Objective(loss)
    loc = ("loss", loss.type, "targets")
    shape = (len(loss.targets), *{len(r) for r in loss.targets})
    if shape != (T, H):
        raise invalid(loc, f"targets must be T×H = {T}×{H} (one hidden_size vector per "
                      f"step), got {shape[0]} rows of {'/'.join(map(str, shape[1:]))}", None)
    return Objective(loss, targets=finite_array(loss.targets, dtype, loc)[:, None, :])


def _check_loss_layer(req: RunRequest, cell: Cell, L: int, c_width: int, T: int,
                      dtype: np.dtype, objective: Objective) -> None:
    """A hidden-state loss's layer inside the model; an upstream loss's dh and dc rows
    resolved (zeros for null), dc only for an LSTM, H (2H) wide. The dh rows' width is the
    layer's output width, checked by _objective."""
    loss = req.loss
    if not isinstance(loss, HIDDEN_STATE_LOSSES):
        return
    if loss.layer is not None and loss.layer >= L:
        raise invalid(("loss", loss.type, "layer"), f"layer {loss.layer} does not exist: "
                      f"this model has {L} layer(s), numbered from 0", loss.layer)
    if isinstance(loss, Upstream) and loss.dc is not None:
        if not cell.has_cell_state:
            raise invalid(("loss", loss.type, "dc"), f"a {cell.name} has no cell state c; "
                          "give only dh", None)
        objective.dc = _rows(loss.dc, T, c_width, dtype, ("loss", loss.type, "dc"), "c_t")


def _rows(rows: list[list[float] | None], T: int, width: int, dtype: np.dtype,
          loc: tuple[str, ...], what: str) -> np.ndarray:
    """T rows of `width` numbers, or null for zeros → (T, 1, width)."""
    if len(rows) != T:
        raise invalid(loc, f"give T = {T} rows, one ∂L/∂{what} per step (null for none), "
                      f"got {len(rows)}", None)
    out = np.zeros((T, 1, width), dtype)
    for t, row in enumerate(rows):
        if row is None:
            continue
        if len(row) != width:
            raise invalid((*loc, t), f"row {t} has {len(row)} numbers, but ∂L/∂{what} is "
                          f"{width} wide here", None)
        out[t, 0] = finite_array(row, dtype, (*loc, t))
    return out


def _binary_targets(loss: BCEWithLogits, T: int, K: int) -> np.ndarray:
    """(T,) targets of bce_with_logits, NaN where a step has none; the head has K = 1."""
    loc = ("loss", loss.type)
    if K != 1:
        raise invalid(loc, f"bce_with_logits is the loss of a one-output head (a binary "
                      f"classifier); this model's head has K = {K} outputs: use cross_entropy",
                      loss.type)
    if len(loss.targets) != T:
        raise invalid((*loc, "targets"), f"targets must have T = {T} entries, one 0/1 target "
                      f"per step (null where a step has none), got {len(loss.targets)}", None)
    return np.array([np.nan if y is None else y for y in loss.targets], dtype=np.float64)


def _classes(req: RunRequest, T: int, K: int, labels: list[str] | None, vocab: str | None,
             task: str | None) -> np.ndarray:
    """(T,) class indices of a readout loss, NO_TARGET where a step has none; at least one
    step has a target."""
    loss = req.loss
    if isinstance(loss, CrossEntropy):
        loc = ("loss", loss.type, "targets")
        if len(loss.targets) != T:
            raise invalid(loc, f"targets must have T = {T} entries, one class index per step "
                          f"(null where a step has none), got {len(loss.targets)}", None)
        for t, k in enumerate(loss.targets):
            if k is not None and k >= K:
                raise invalid((*loc, t), f"target {k} at step {t} is not an output of this "
                              f"readout: it has K = {K}, so a target is 0 … {K - 1} or null",
                              k)
        return np.array([NO_TARGET if k is None else k for k in loss.targets], dtype=np.intp)
    if isinstance(loss, NextToken):
        return _next_characters(req, T, K, labels, vocab)
    if isinstance(loss, TaskLoss):
        return _task_targets(req, K, labels, task)
    raise AssertionError(f"no targets for the loss {loss.type!r}")


def _task_targets(req: RunRequest, K: int, labels: list[str] | None, task: str | None
                  ) -> np.ndarray:
    """k_t = tasks.get(task).targets(text)[t], NO_TARGET where the task sets none: the
    targets the model was trained on, so L is its training loss on this text."""
    loc = ("loss", "task")
    if task is None:
        raise invalid(loc, "the task loss is the loss a model was trained with, and this "
                      "model names no task: load a trained model (model_id) whose metadata "
                      "has a task, or use cross_entropy with targets", "task")
    try:
        definition = tasks.get(task)
    except ValueError as exc:
        raise invalid(loc, f"the model's task {task!r} is not a task gatescope defines "
                      f"({exc}); use cross_entropy with targets", "task") from None
    text = req.input.text
    if text is None:
        raise invalid(loc, f"the {definition.kind} task defines its targets on text, so the "
                      "task loss needs text input; for values use cross_entropy with "
                      "targets", "task")
    try:
        targets = definition.targets(text)
    except ValueError as exc:
        raise invalid(loc, f"this text is not an instance of the model's task "
                      f"{definition.name}: {exc}", "task") from None
    want = list(definition.labels)  # the targets index these, so the readout must too
    if len(want) != K:
        raise invalid(loc, f"the {definition.kind} task has {len(want)} classes but this "
                      f"model's readout has K = {K} outputs, so the task's targets do not "
                      "index it; use cross_entropy with targets", "task")
    if labels is not None and list(labels) != want:
        raise invalid(loc, f"this model's readout labels {_shown(labels)} are not the "
                      f"{definition.kind} task's classes {_shown(want)} in order, so the "
                      "task's targets would pick the wrong outputs; use cross_entropy with "
                      "targets", "task")
    if all(k is None for k in targets):
        raise invalid(loc, f"the {definition.kind} task sets no target anywhere in this text, "
                      "so there is no loss to compute", "task")
    return np.array([NO_TARGET if k is None else k for k in targets], dtype=np.intp)


def _shown(labels: list[str], limit: int = 8) -> str:
    """The first labels, for a message."""
    return "[" + ", ".join(map(repr, labels[:limit])) + (", …]" if len(labels) > limit else "]")


def _next_characters(req: RunRequest, T: int, K: int, labels: list[str] | None,
                     vocab: str | None) -> np.ndarray:
    """k_t = the index of character t + 1 among the labels, for t < T − 1; none at T − 1."""
    loc = ("loss", "next_token")
    text = req.input.text
    if text is None:
        raise invalid(loc, "next_token predicts the next character, so it needs text input; "
                      "for values use cross_entropy with targets", "next_token")
    if T < 2:
        raise invalid(loc, "next_token needs at least 2 characters: the last step has no "
                      "next character to predict", "next_token")
    if labels is None and vocab is not None and len(vocab) == K:
        labels = list(vocab)  # no labels given: the readout predicts the input characters
    if labels is None:
        raise invalid(loc, f"next_token needs the model's labels (the K = {K} characters its "
                      f"readout predicts); this model has none, and the input vocab has "
                      f"{len(vocab or '')} characters, not {K}", "next_token")
    index = {label: k for k, label in enumerate(labels)}
    missing = sorted({ch for ch in text[1:] if ch not in index})
    if missing:
        shown = ", ".join(map(repr, missing[:20])) + (", …" if len(missing) > 20 else "")
        raise invalid(loc, f"next_token's targets are the next characters among the model's "
                      f"{K} labels, which lack {shown}: use only characters among them after "
                      "the first", "next_token")
    return np.array([index[ch] for ch in text[1:]] + [NO_TARGET], dtype=np.intp)


# ── the gradient-flow lab ────────────────────────────────────────────────────────────

def _clamps(req: RunRequest, cell: Cell, T: int, H: int, L: int, directions: int = 1,
            proj: int = 0) -> list[StepClamps | None] | None:
    """The interventions as per-unit, per-step Clamps (unit k·directions + d, steps in its
    reading order: a reverse direction's input step t is its step T−1−t), each checked
    against the model."""
    if not req.interventions:
        return None
    targets = set(cell.gates) | {"h"} | ({"c"} if cell.has_cell_state else set())
    out: list[StepClamps | None] = [None] * (L * directions)
    for n, iv in enumerate(req.interventions):
        loc = ("interventions", n)
        if iv.layer >= L:
            raise invalid((*loc, "layer"), f"layer {iv.layer} does not exist: the model has "
                          f"{L} layer(s), numbered from 0", iv.layer)
        if iv.target not in targets:
            raise invalid((*loc, "target"), f"a {cell.name} has no {iv.target!r} to replace; "
                          f"it has {', '.join(sorted(targets))}", iv.target)
        if iv.target == "h" and proj:
            raise invalid((*loc, "target"), "this LSTM projects h (proj_size): replace a gate "
                          "or c, whose units are the H cells; h's P units are a mix of them",
                          iv.target)
        stop = T if iv.stop is None else iv.stop
        if not iv.start < stop <= T:
            raise invalid((*loc, "stop"), f"steps {iv.start} ≤ t < {stop} must lie within the "
                          f"{T}-step sequence, with start < stop", iv.stop)
        if iv.units is not None and max(iv.units) >= H:
            raise invalid((*loc, "units"), f"unit {max(iv.units)} is past the last hidden unit "
                          f"({H - 1}) of hidden_size {H}", iv.units)
        reverse = iv.direction == "reverse"
        if reverse and directions == 1:
            raise invalid((*loc, "direction"), "this model is not bidirectional: its layers "
                          "have only the forward direction", iv.direction)
        units: np.ndarray | slice = slice(None) if iv.units is None else np.asarray(iv.units)
        u = iv.layer * directions + reverse
        steps = out[u] = out[u] or [() for _ in range(T)]
        for t in range(iv.start, stop):
            r = T - 1 - t if reverse else t
            steps[r] = (*steps[r], Clamp(iv.target, units, iv.value))
    return out
