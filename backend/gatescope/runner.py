"""One computation behind every door (Python, CLI, REST): request → weights and inputs →
engine → diagnostics → RunResult.

    request (validated) → prepare(): X (T, 1, D), state_dict, readout, initial states, loss
                        → engine.forward → objective.evaluate (L, ∂L/∂h_t, readout outputs)
                        → engine.backward → jacobians.norms → RunResult
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from . import engine, jacobians, objective
from .cells import CELLS, Cell, Trace
from .cells.clamps import Clamp
from .clipping import clip_grad_norm, coefficient
from .engine import StateDict, param_names
from .errors import ModelNotFoundError, invalid
from .inputs import default_vocab, encode_text, encode_values
from .limits import Limits
from .numerics import finite_array
from .results import JacobianResult, LayerResult, RunResult, check_overflow
from .schemas import (
    MAX_CONNECTIVITY_STEPS,
    MAX_CONNECTIVITY_WORK,
    JacobianRequest,
    RunRequest,
)
from .weights import (
    as_arrays,
    check_readout,
    check_state_dict,
    infer_sizes,
    pytorch_init,
    shapes,
    split_readout,
)


@dataclass
class StoredModel:
    """A model as loaded from a store: cell name, the RNN's state_dict, and optionally its
    vocab, a readout {"readout.weight": (K, H), "readout.bias": (K,)} with K output labels,
    the task it was trained on and its model card."""

    cell: str
    tensors: StateDict
    vocab: str | None = None
    readout: StateDict | None = None
    labels: list[str] | None = None
    task: str | None = None
    card: dict[str, Any] | None = None


class ModelSource(Protocol):
    def load(self, model_id: str) -> StoredModel: ...


@dataclass
class Prepared:
    """Everything a request resolves to before the engine runs; arrays in `dtype`.

    X: (T, 1, D). h0, c0: (L, 1, H) (c0 None unless LSTM). readout: {"readout.weight":
    (K, H), "readout.bias": (K,)} or None. labels: the readout's K output names, if known.
    task: the task a stored model was trained on, if it says.
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
    objective: objective.Objective
    clamps: list[engine.StepClamps | None] | None = None  # per layer: the interventions
    readout: StateDict | None = None
    labels: list[str] | None = None
    task: str | None = None

    @property
    def sizes(self) -> tuple[int, int, int, int]:
        """(T, D, H, L)."""
        T, _, D = self.X.shape
        L, _, H = self.h0.shape
        return T, D, H, L


def parse(request: RunRequest | Mapping[str, Any], model: type[RunRequest] = RunRequest
          ) -> RunRequest:
    """A request model from a dict (validated) or as given."""
    return request if isinstance(request, model) else model.model_validate(request)


def prepare(req: RunRequest, models: ModelSource | None = None,
            limits: Limits | None = None) -> Prepared:
    """Resolve weights and inputs, and check every limit and size the schema could not."""
    limits = limits or Limits()
    dtype = np.dtype(req.dtype)
    explicit = req.model_fields_set
    cell_name, tensors, model_vocab = req.cell, None, None
    readout = labels = task = None
    loc: tuple[str, ...] = ("weights", "tensors")

    if req.weights.source == "model":
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
        loc = ("weights", "model_id")
    elif req.weights.source == "tensors":
        tensors, readout = split_readout(as_arrays(req.weights.tensors, dtype, loc))
    cell = CELLS[cell_name]

    H, L = req.hidden_size, req.num_layers
    if tensors is not None:
        H, L = infer_sizes(tensors, loc)
        for name, value in (("hidden_size", H), ("num_layers", L)):
            if name in explicit and getattr(req, name) != value:
                raise invalid((name,), f"{name} is {getattr(req, name)} but the weights have "
                              f"{value}; leave {name} out to take it from the weights",
                              getattr(req, name))

    # the input
    tokens = vocab = None
    if req.input.text is not None:
        vocab = req.input.vocab or model_vocab or default_vocab(req.input.text)
        if len(vocab) > limits.max_input:
            raise invalid(("input", "text"), f"the text has {len(vocab)} distinct characters, "
                          f"over the limit of {limits.max_input} input units (D)", None)
        X = encode_text(req.input.text, vocab, dtype)
        tokens = list(req.input.text)
    else:
        X = encode_values(req.input.values, dtype)
    T, D = X.shape
    limits.check(T=T, D=D, H=H, L=L)

    if tensors is None:
        seed, forget_bias = req.weights.seed, req.weights.forget_bias
        if forget_bias is not None and cell.name != "lstm":
            raise invalid(("weights", "forget_bias"), f"forget_bias is for an LSTM; a "
                          f"{cell.name} has no forget gate", forget_bias)
        params = _seeded(cell.name, D, H, L, seed, forget_bias, dtype.str,
                         req.weights.recurrent_scale)
    else:
        D_weights = np.shape(tensors["weight_ih_l0"])[-1] if "weight_ih_l0" in tensors else 0
        check_state_dict(cell, tensors, D_weights, H, L, loc)
        if D_weights != D:
            what = (f"the vocab has {D} characters" if vocab is not None
                    else f"each step has {D} numbers")
            raise invalid(("input",), f"the weights take inputs of size {D_weights} "
                          f"(weight_ih_l0 has {D_weights} columns) but {what}", None)
        params = as_arrays(tensors, dtype, loc)
    if readout is not None:
        check_readout(readout, H, limits.max_classes, loc)
        readout = as_arrays(readout, dtype, loc)

    h0, c0 = _initial_state(req, cell, L, H, dtype)
    loss = objective.plan(req, T, H, dtype, readout, labels, vocab, task)
    clamps = _clamps(req, cell, T, H, L)
    if req.connectivity and T > MAX_CONNECTIVITY_STEPS:
        raise invalid(("connectivity",), f"connectivity is computed for at most "
                      f"{MAX_CONNECTIVITY_STEPS} steps; this sequence has {T}", True)
    if req.connectivity and T * T * H * L > MAX_CONNECTIVITY_WORK:
        raise invalid(("connectivity",), f"connectivity costs steps² × hidden_size × "
                      f"num_layers = {T}²×{H}×{L} = {T * T * H * L:,}, over the limit of "
                      f"{MAX_CONNECTIVITY_WORK:,} (e.g. 512 steps × 128 units × 1 layer)", True)
    return Prepared(req, cell, dtype, params, X[:, None, :], tokens, vocab, h0, c0, loss,
                    clamps, readout, labels, task)


def _seeded(cell: str, D: int, H: int, L: int, seed: int, forget_bias: float | None,
            dtype: str, recurrent_scale: float) -> StateDict:
    """pytorch_init's weights, read-only, remembered for the next run of the same model: the
    explorer runs one seeded model again on every edit of its input, and drawing 330,000
    numbers (an LSTM with D = 64, H = 256) costs ~2 ms. Models over 16 MiB are not kept."""
    count = sum(int(np.prod(shape)) for shape in shapes(CELLS[cell], D, H, L).values())
    if count * np.dtype(dtype).itemsize > _SEEDED_MAX_BYTES:
        return pytorch_init(CELLS[cell], D, H, L, seed, forget_bias, np.dtype(dtype),
                            recurrent_scale)
    kept = _seeded_kept(cell, D, H, L, seed, forget_bias, dtype, recurrent_scale)
    return {name: a.view() for name, a in kept.items()}  # a view of read-only stays read-only


@lru_cache(maxsize=4)
def _seeded_kept(cell: str, D: int, H: int, L: int, seed: int, forget_bias: float | None,
                 dtype: str, recurrent_scale: float) -> StateDict:
    params = pytorch_init(CELLS[cell], D, H, L, seed, forget_bias, np.dtype(dtype),
                          recurrent_scale)
    for a in params.values():
        a.flags.writeable = False  # shared by every run that asks for this model
    return params


_SEEDED_MAX_BYTES = 16 * 2**20


def _clamps(req: RunRequest, cell: Cell, T: int, H: int, L: int
            ) -> list[engine.StepClamps | None] | None:
    """The interventions as per-layer, per-step Clamps, each checked against the model."""
    if not req.interventions:
        return None
    targets = set(cell.gates) | {"h"} | ({"c"} if cell.has_cell_state else set())
    out: list[engine.StepClamps | None] = [None] * L
    for n, iv in enumerate(req.interventions):
        loc = ("interventions", n)
        if iv.layer >= L:
            raise invalid((*loc, "layer"), f"layer {iv.layer} does not exist: the model has "
                          f"{L} layer(s), numbered from 0", iv.layer)
        if iv.target not in targets:
            raise invalid((*loc, "target"), f"a {cell.name} has no {iv.target!r} to replace; "
                          f"it has {', '.join(sorted(targets))}", iv.target)
        stop = T if iv.stop is None else iv.stop
        if not iv.start < stop <= T:
            raise invalid((*loc, "stop"), f"steps {iv.start} ≤ t < {stop} must lie within the "
                          f"{T}-step sequence, with start < stop", iv.stop)
        if iv.units is not None and max(iv.units) >= H:
            raise invalid((*loc, "units"), f"unit {max(iv.units)} is past the last hidden unit "
                          f"({H - 1}) of hidden_size {H}", iv.units)
        units = slice(None) if iv.units is None else np.asarray(iv.units)
        steps = out[iv.layer] = out[iv.layer] or [() for _ in range(T)]
        for t in range(iv.start, stop):
            steps[t] = (*steps[t], Clamp(iv.target, units, iv.value))
    return out


def _initial_state(req: RunRequest, cell: Cell, L: int, H: int, dtype: np.dtype
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """(L, 1, H) arrays; zeros where not given."""
    h0 = np.zeros((L, 1, H), dtype)
    c0 = np.zeros((L, 1, H), dtype) if cell.has_cell_state else None
    state = req.initial_state
    if state is None:
        return h0, c0
    if state.c is not None and c0 is None:
        raise invalid(("initial_state", "c"), f"a {cell.name} has no cell state c; give only h",
                      None)
    for name, rows, target in (("h", state.h, h0), ("c", state.c, c0)):
        if rows is None:
            continue
        got = (len(rows), *{len(r) for r in rows})
        if got != (L, H):
            raise invalid(("initial_state", name), f"initial_state.{name} must be L×H = "
                          f"{L}×{H} (one row of hidden_size numbers per layer), got "
                          f"{len(rows)} rows of {'/'.join(map(str, got[1:]))}", None)
        target[:, 0, :] = finite_array(rows, dtype, ("initial_state", name))
    return h0, c0


def run(request: RunRequest | Mapping[str, Any], *, models: ModelSource | None = None,
        limits: Limits | None = None) -> RunResult:
    """Forward pass and backpropagation through time for one `/run` request.

    `request` is a dict in the contract's shape (../shared/API.md) or a RunRequest.
    Raises pydantic.ValidationError naming the field for any bad input, ModelNotFoundError for
    an unknown model_id.
    """
    p = prepare(parse(request), models, limits)
    T, D, H, L = p.sizes
    req = p.request
    with np.errstate(all="ignore"):  # overflow is reported in `warnings`, not as noise
        traces = engine.forward(p.cell, p.params, p.X, p.h0, p.c0, p.clamps)
        scored = objective.evaluate(p.objective, traces[-1].h[1:], p.readout)
        W_hh = [p.params[param_names(k)[1]] for k in range(L)]
        grads = engine.backward(p.cell, p.params, p.X, traces, scored.dh, req.truncate)
        # Serial on purpose: on a second thread the norms' big products fought the step loop
        # for memory bandwidth and the GIL, and the whole run took ~13 % longer.
        layers = [_layer_result(p.cell, trace, g, jacobians.norms(p.cell, trace, w))
                  for trace, g, w in zip(traces, grads.layers, W_hh, strict=True)]
        if p.cell.name == "lstm":
            for k, layer in enumerate(layers):
                flow = jacobians.flow(p.cell, traces[k], W_hh[k], grads.layers[k].c,
                                      req.truncate)
                layer.jacobian["flow"] = {name: a[:, 0] for name, a in flow.items()}
        if req.connectivity:
            for k, layer in enumerate(layers):
                layer.connectivity = engine.connectivity(p.cell, p.params, p.X, traces, k)
        # PyTorch's parameter order: the RNN's, then the readout's
        param_grads = {**grads.params, **(scored.readout_grads or {})}
        grad_norm = None if req.clip is None else _clip(param_grads, req.clip.max_norm)
    outputs = None if scored.outputs is None else {k: a[:, 0] for k, a in scored.outputs.items()}
    state_grad = {"h": grads.h0[:, 0]}
    if grads.c0 is not None:
        state_grad["c"] = grads.c0[:, 0]
    result = RunResult(
        cell=p.cell.name, dtype=req.dtype, steps=T, input_size=D, hidden_size=H,
        num_layers=L, truncate=req.truncate, tokens=p.tokens, vocab=p.vocab, loss=scored.loss,
        layers=layers, input_grad=grads.input[:, 0], param_grads=param_grads,
        initial_state_grad=state_grad, grad_norm=grad_norm, outputs=outputs,
    )
    check_overflow(result, result.as_dict())
    return result


def _clip(grads: dict[str, np.ndarray], max_norm: float) -> dict[str, float]:
    """Scale every parameter gradient in place (the readout's included) as
    torch.nn.utils.clip_grad_norm_ over all parameters does; the norm before and after."""
    total = clip_grad_norm(grads, max_norm)
    dtype = next(iter(grads.values())).dtype
    return {"total": total, "clipped": total * coefficient(total, max_norm, dtype)}


def _layer_result(cell: Cell, trace: Trace, g: engine.LayerGrads,
                  norms: dict[str, np.ndarray]) -> LayerResult:
    """Squeeze the single sequence (N = 1) out of a layer's trace and gradients."""
    first = 0  # the sequence shown
    grad_gates = {name: a[:, first] for name, a in cell.split(g.pre).items()}
    grads: dict[str, Any] = {"h": g.h[:, first]}
    if g.c is not None:
        grads["c"] = g.c[:, first]
    grads["gates"] = grad_gates
    grads["h_norm"] = np.linalg.norm(g.h[:, first], axis=-1)
    if g.c is not None:
        grads["c_norm"] = np.linalg.norm(g.c[:, first], axis=-1)
    return LayerResult(
        h=trace.h[1:, first],
        c=None if trace.c is None else trace.c[1:, first],
        gates={name: a[:, first] for name, a in trace.gates().items()},
        pre={name: a[:, first] for name, a in trace.pre_activations().items()},
        grads=grads,
        jacobian={name: a[:, first] for name, a in norms.items()},
    )


def jacobian(request: JacobianRequest | Mapping[str, Any], step: int | None = None,
             layer: int | None = None, *, models: ModelSource | None = None,
             limits: Limits | None = None) -> JacobianResult:
    """The full H×H one-step Jacobian (and the LSTM's four terms) at one step and layer.

    `step` and `layer` override the request's own fields when given.
    """
    raw: Any = request.model_dump(exclude_unset=True) if isinstance(request, RunRequest) \
        else request
    if isinstance(raw, Mapping):
        raw = {**raw, **({} if step is None else {"step": step}),
               **({} if layer is None else {"layer": layer})}
    req = JacobianRequest.model_validate(raw)  # anything else fails here, as a ValidationError
    p = prepare(req, models, limits)
    T, _, _, L = p.sizes
    if req.step >= T:
        raise invalid(("step",), f"step {req.step} is past the last step ({T - 1}) of this "
                      f"{T}-step sequence", req.step)
    if req.layer >= L:
        raise invalid(("layer",), f"layer {req.layer} does not exist: this model has {L} "
                      f"layer(s), numbered from 0", req.layer)
    with np.errstate(all="ignore"):
        traces = engine.forward(p.cell, p.params, p.X, p.h0, p.c0, p.clamps)
        W_hh = p.params[param_names(req.layer)[1]]
        mats = jacobians.matrices(p.cell, traces[req.layer], W_hh, req.step)
    result = JacobianResult(req.step, req.layer, mats["terms"], mats["total"])
    check_overflow(result, {"terms": result.terms, "total": result.total})
    return result
