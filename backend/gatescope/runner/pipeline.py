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
from ..core.params import param_names
from ..models.stored import ModelSource
from . import objective
from .prepare import parse, prepare, prepare_jacobian


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
    p = prepare(parse(request, RunRequest), models, limits, encoding)
    T, D, H, L = p.sizes
    req = p.request
    with np.errstate(all="ignore"):  # overflow is reported in `warnings`, not as noise
        traces = engine.forward(p.cell, p.params, p.X, p.h0, p.c0, p.clamps, checkpoint)
        scored = objective.evaluate(p.objective, traces[-1].h[1:], p.readout)
        W_hh = [p.params[param_names(k)[1]] for k in range(L)]
        grads = engine.backward(p.cell, p.params, p.X, traces, scored.dh, req.truncate,
                                checkpoint=checkpoint)
        checkpoint()
        # Serial on purpose: on a second thread the norms' big products fought the step loop
        # for memory bandwidth and the GIL, and the whole run took ~13 % longer.
        layers = []
        for trace, g, w in zip(traces, grads.layers, W_hh, strict=True):
            checkpoint()
            layers.append(_layer_result(p.cell, trace, g, jacobians.norms(p.cell, trace, w)))
        if p.cell.jacobian_terms:  # how much gradient reaches c_{t−1} through each term
            for k, layer in enumerate(layers):
                dC = grads.layers[k].c
                assert dC is not None  # a cell whose Jacobian has terms carries c
                flow = jacobians.flow(p.cell, traces[k], W_hh[k], dC, req.truncate)
                layer.jacobian["flow"] = {name: a[:, 0] for name, a in flow.items()}
        if req.connectivity:
            for k, layer in enumerate(layers):
                layer.connectivity = engine.connectivity(p.cell, p.params, p.X, traces, k,
                                                         checkpoint)
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
    with np.errstate(all="ignore"):
        traces = engine.forward(p.cell, p.params, p.X, p.h0, p.c0, p.clamps, checkpoint)
        W_hh = p.params[param_names(req.layer)[1]]
        mats = jacobians.matrices(p.cell, traces[req.layer], W_hh, req.step)
    result = JacobianResult(req.step, req.layer, mats["terms"], mats["total"])
    check_overflow(result, {"terms": result.terms, "total": result.total})
    return result
