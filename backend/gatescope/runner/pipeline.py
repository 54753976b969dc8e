"""One computation behind every door (Python, CLI, REST): request → weights and inputs →
engine → diagnostics → RunResult.

    request (validated) → prepare(): X (T, 1, D), state_dict, readout, initial states, loss
                        → engine.forward → objective.evaluate (L, ∂L/∂h_t, readout outputs)
                        → engine.backward → jacobians.norms, flow → RunResult
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..contract.encoding import Encoding
from ..contract.limits import Limits
from ..contract.results import JacobianResult, LayerResult, RunResult, check_overflow
from ..contract.schemas import JacobianRequest, RunRequest
from ..core import engine, jacobians
from ..core.cells import Cell, Trace
from ..core.clipping import clip_grad_norm, coefficient
from ..core.params import StateDict, projection_name, unit_names
from ..models.layout import EMBEDDING
from ..models.stored import ModelSource
from . import objective
from .prepare import Prepared, parse, prepare, prepare_jacobian


def run(request: RunRequest | Mapping[str, Any], *, models: ModelSource | None = None,
        limits: Limits | None = None, encoding: Encoding | None = None,
        checkpoint: engine.Checkpoint = engine.no_checkpoint) -> RunResult:
    """Forward pass and backpropagation through time for one `/run` request.

    `request` is a dict in the contract's shape (docs/API.md) or a RunRequest.
    Raises pydantic.ValidationError naming the field for any bad input (a run over the
    budget of `limits` included: `encoding` says what its response will be encoded as, None
    for NumPy arrays in process), ModelNotFoundError for an unknown model_id. `checkpoint`
    is called between layers and phases: it may raise to stop the run (the server's way to
    drop the work of a client who has gone).
    """
    req = parse(request, RunRequest)
    return run_together([prepare(req, models, limits, encoding)], checkpoint)[0]


def run_together(ps: list[Prepared], checkpoint: engine.Checkpoint = engine.no_checkpoint
                 ) -> list[RunResult]:
    """Several prepared sequences of one request, run as one batch of N = len(ps) through
    the engine: the same weights, cell, steps T, interventions and loss layer (batch.py
    groups them so). Each result is what a run of its sequence alone returns: the losses,
    gradients and norms are each sequence's own (the loss summed over the N, as the
    engine's losses are, gives each sequence its own gradients)."""
    p0 = ps[0]
    L = p0.sizes[3]
    req = p0.request
    n = p0.directions
    N = len(ps)
    # (T, N, D); a single run's own arrays as they are, with no copy
    X = p0.X if N == 1 else np.concatenate([p.X for p in ps], axis=1)
    h0 = p0.h0 if N == 1 else np.repeat(p0.h0, N, axis=1)
    c0 = p0.c0 if N == 1 or p0.c0 is None else np.repeat(p0.c0, N, axis=1)
    with np.errstate(all="ignore"):  # overflow is reported in `warnings`, not as noise
        traces = engine.forward(p0.cell, p0.params, X, h0, c0, p0.clamps, checkpoint, n)
        k = L - 1 if p0.objective.layer is None else p0.objective.layer  # the loss's layer
        top = engine.layer_output(traces, L - 1, n)
        out_k = top if k == L - 1 else engine.layer_output(traces, k, n)
        cells = engine.layer_cells(traces, k, n) if any(p.objective.dc is not None
                                                         for p in ps) else None
        scored = [objective.evaluate(p.objective, out_k[:, j:j + 1], p.readout,
                                     top[:, j:j + 1],
                                     None if cells is None else cells[:, j:j + 1])
                  for j, p in enumerate(ps)]
        W_hh = [_recurrent(p0.params, u, n) for u in range(L * n)]
        # the backward pass only where a part sent needs it (backward: false, or fields)
        grads = None
        wants_params = req.wants("param_grads") or req.clip is not None
        if req.needs_backward:
            dC = None
            if cells is not None:
                dC = np.concatenate([np.zeros_like(cells[:, :1]) if sc.dc is None else sc.dc
                                     for sc in scored], axis=1)
            grads = engine.backward(p0.cell, p0.params, X, traces,
                                    np.concatenate([sc.dh for sc in scored], axis=1),
                                    req.truncate, param_grads=wants_params and N == 1,
                                    checkpoint=checkpoint, directions=n, layer=k, dC_out=dC)
        checkpoint()
        # Serial on purpose: on a second thread the norms' big products fought the step loop
        # for memory bandwidth and the GIL, and the whole run took ~13 % longer.
        norms: list[dict[str, Any] | None] = []
        for u, (trace, w) in enumerate(zip(traces, W_hh, strict=True)):
            checkpoint()
            g = None if grads is None else grads.layers[u]
            if g is None or not req.wants("jacobian"):
                norms.append(None)
                continue
            unit_norms: dict[str, Any] = dict(jacobians.norms(p0.cell, trace, w))
            if p0.cell.jacobian_terms:  # how much gradient reaches c_{t−1} through each term
                assert g.c is not None  # a cell whose Jacobian has terms carries c
                unit_norms["flow"] = jacobians.flow(p0.cell, trace, w, g.c, req.truncate)
            norms.append(unit_norms)
        rnn_grads: list[StateDict] = []
        if grads is not None and wants_params:
            rnn_grads = [grads.params] if N == 1 else engine.sequence_param_grads(
                p0.cell, p0.params, X, traces, grads, n)
        results = []
        checked: dict[int, bool] = {}  # the group's buffers, checked for overflow once
        for j, (p, sc) in enumerate(zip(ps, scored, strict=True)):
            layers = [_layer_result(p0.cell, req, trace,
                                    None if grads is None else grads.layers[u], norms[u],
                                    u // n, u % n == 1, j)
                      for u, trace in enumerate(traces)]
            if req.connectivity:  # run alone (batch.py refuses it in a batch)
                for u, layer in enumerate(layers):
                    layer.connectivity = engine.connectivity(p.cell, p.params, p.X, traces, u,
                                                             checkpoint, n)
            param_grads = grad_norm = None
            if grads is not None and wants_params:
                param_grads = _param_grads(p, grads.input[:, j], rnn_grads[j],
                                           sc.readout_grads)
                grad_norm = None if req.clip is None else _clip(param_grads,
                                                                req.clip.max_norm)
            results.append(_result(p, sc, layers, grads, j, param_grads, grad_norm, checked))
    return results


def _result(p: Prepared, scored: objective.Evaluated, layers: list[LayerResult],
            grads: engine.Gradients | None, j: int, param_grads: dict[str, np.ndarray] | None,
            grad_norm: dict[str, float] | None, checked: dict[int, bool]) -> RunResult:
    """Sequence j's RunResult: the parts its request wants, overflow warnings set."""
    req = p.request
    T, D, H, L = p.sizes
    outputs = None
    if scored.outputs is not None and req.wants("outputs"):
        outputs = {k: a[:, 0] for k, a in scored.outputs.items()}
    state_grad = None
    if grads is not None and req.wants("initial_state_grad"):
        state_grad = {"h": grads.h0[:, j]}
        if grads.c0 is not None:
            state_grad["c"] = grads.c0[:, j]
    result = RunResult(
        cell=p.cell.name, dtype=req.dtype, steps=T, input_size=D, hidden_size=H,
        num_layers=L, truncate=req.truncate, tokens=p.tokens, vocab=p.vocab, loss=scored.loss,
        layers=layers,
        input_grad=grads.input[:, j] if grads is not None and req.wants("input_grad") else None,
        param_grads=param_grads if req.wants("param_grads") else None,
        initial_state_grad=state_grad, grad_norm=grad_norm, outputs=outputs,
        token_ids=None if p.token_ids is None else p.token_ids.tolist(),
        bidirectional=p.directions == 2, proj_size=p.proj, backward=req.backward,
        fields=None if req.fields is None else list(req.fields),
    )
    check_overflow(result, result.as_dict(), checked)
    return result


def _recurrent(params: StateDict, u: int, directions: int) -> np.ndarray:
    """The (G·H, H) matrix from a unit's state to its gates, which its Jacobian factors
    into: W_hh — or, for an LSTM with proj_size (h = W_hr m), W_hh W_hr, from m = o ⊙ tanh c
    (so ∂c_t/∂c_{t−1} keeps the lecture's four terms through D_{t−1} = ∂m_{t−1}/∂c_{t−1})."""
    W_hh = params[unit_names(u, directions)[1]]
    W_hr = params.get(projection_name(u, directions))
    return W_hh if W_hr is None else W_hh @ W_hr


def _param_grads(p: Prepared, input_grad: np.ndarray, rnn: StateDict, head: StateDict | None
                 ) -> dict[str, np.ndarray]:
    """∂L/∂ every parameter in PyTorch's usual order (the embedding's, the RNN's, the
    head's), under the model's own names; a tensor the model lacks (a zero bias of
    bias=False) has none. The embedding's is Σ over the steps reading token v of ∂L/∂x_t:
    rows of tokens the sequence never reads are zero, as in torch.nn.Embedding.
    input_grad: (T, E) ∂L/∂x_t of this sequence; rnn: the RNN's gradients, plain names."""
    out: dict[str, np.ndarray] = {}
    if p.embedding is not None and p.token_ids is not None:
        d_embedding = np.zeros_like(p.embedding)
        np.add.at(d_embedding, p.token_ids, input_grad)  # ∂L/∂E[v] = Σ_{t: id_t = v}
        out[EMBEDDING] = d_embedding
    out.update(rnn)
    out.update(head or {})
    if p.names is None:
        return out
    named: dict[str, np.ndarray] = {}
    for name, g in out.items():
        if name in p.names:  # two uses of one tied tensor: the sum, as autograd gives it
            file_name = p.names[name]
            named[file_name] = named[file_name] + g if file_name in named else g
    return named


def _clip(grads: dict[str, np.ndarray], max_norm: float) -> dict[str, float]:
    """Scale every parameter gradient in place (the readout's included) as
    torch.nn.utils.clip_grad_norm_ over all parameters does; the norm before and after."""
    total = clip_grad_norm(grads, max_norm)
    dtype = next(iter(grads.values())).dtype
    return {"total": total, "clipped": total * coefficient(total, max_norm, dtype)}


def _layer_result(cell: Cell, req: RunRequest, trace: Trace, g: engine.LayerGrads | None,
                  norms: dict[str, Any] | None, layer: int, reverse: bool, first: int = 0
                  ) -> LayerResult:
    """Sequence `first` of a unit's trace, gradients and Jacobian norms, in input order (a
    reverse direction's arrays, in its reading order, flipped); only the parts the request
    wants (None for the others)."""
    def seq(a: np.ndarray) -> np.ndarray:
        return a[::-1, first] if reverse else a[:, first]

    grads: dict[str, Any] | None = None
    if g is not None and req.wants("grads"):
        grads = {"h": seq(g.h)}
        if g.c is not None:
            grads["c"] = seq(g.c)
        grads["gates"] = {name: seq(a) for name, a in cell.split(g.pre).items()}
        grads["h_norm"] = np.linalg.norm(grads["h"], axis=-1)
        if g.c is not None:
            grads["c_norm"] = np.linalg.norm(grads["c"], axis=-1)
    jacobian = None if norms is None else {
        name: ({k: seq(v) for k, v in a.items()} if isinstance(a, dict) else seq(a))
        for name, a in norms.items()}
    return LayerResult(
        h=seq(trace.h[1:]) if req.wants("h") else None,
        c=None if trace.c is None or not req.wants("c") else seq(trace.c[1:]),
        gates={name: seq(a) for name, a in trace.gates().items()} if req.wants("gates")
        else None,
        pre={name: seq(a) for name, a in trace.pre_activations().items()}
        if req.wants("pre") else None,
        grads=grads,
        jacobian=jacobian,
        layer=layer,
        direction="reverse" if reverse else "forward",
    )


def jacobian(request: JacobianRequest | Mapping[str, Any], step: int | None = None,
             layer: int | None = None, *, models: ModelSource | None = None,
             limits: Limits | None = None, encoding: Encoding | None = None,
             checkpoint: engine.Checkpoint = engine.no_checkpoint) -> JacobianResult:
    """The full H×H one-step Jacobian (and the LSTM's four terms) at one step and layer.

    `step` and `layer` override the request's own fields when given.
    """
    raw: Any = request.model_dump(exclude_unset=True) if isinstance(request, RunRequest) \
        else request
    if isinstance(raw, Mapping):
        raw = {**raw, **({} if step is None else {"step": step}),
               **({} if layer is None else {"layer": layer})}
    req = JacobianRequest.model_validate(raw)  # anything else fails here, as a ValidationError
    p = prepare_jacobian(req, models, limits, encoding)
    n, T = p.directions, p.sizes[0]
    reverse = req.direction == "reverse"
    u = req.layer * n + reverse
    with np.errstate(all="ignore"):
        traces = engine.forward(p.cell, p.params, p.X, p.h0, p.c0, p.clamps, checkpoint, n)
        W_hh = _recurrent(p.params, u, n)
        # a reverse direction's input step t is its step T−1−t, following its own recursion
        mats = jacobians.matrices(p.cell, traces[u], W_hh, T - 1 - req.step if reverse
                                  else req.step)
    result = JacobianResult(req.step, req.layer, mats["terms"], mats["total"],
                            direction=req.direction)
    check_overflow(result, {"terms": result.terms, "total": result.total})
    return result
