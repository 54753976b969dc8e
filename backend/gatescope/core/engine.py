"""The sequence loop: a stack of layers forward through time, then backpropagation through time.

Shapes: T steps, N sequences, D input size, H hidden size, L layers, G gate blocks.
Layer k > 0 takes layer k−1's h_t as its input at the same step. A bidirectional layer
is two units, its forward direction reading x_0 … x_{T−1} and its reverse direction
x_{T−1} … x_0; the layer above reads both, [h→_t; h←_t] (2H), as torch.nn.LSTM does.
Only the recurrence is a Python loop; the input projection of every step (X W_ihᵀ + b_ih)
is one matrix product before it, and the parameter gradients (dAᵀX, dAᵀH) are matrix
products after it.

Truncated BPTT with window k: the state that enters step t is detached whenever t is a
positive multiple of k — values carry on, gradients stop, in every layer.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from .cells import Cell, Trace, head, lstm
from .cells.clamps import StepClamps
from .memory import keep_freed_memory
from .params import StateDict, projection_name, unit_names

# called between layers (and chunks of connectivity): a caller's way to stop a run early,
# by raising; the math never needs one
Checkpoint = Callable[[], None]


def no_checkpoint() -> None:
    pass

_blas = ThreadpoolController()
keep_freed_memory()  # every run allocates ~100 MB: reuse pages rather than fault in new ones


def step_loop_threads() -> AbstractContextManager:
    """One BLAS thread inside the step loops. A step's product, (N, H) × (H, G·H), is too
    small to split: handing it to OpenBLAS's worker threads costs more than it saves — on
    this project's machines a (40, 512) × (512, 128) product takes 5 ms on two threads and
    0.27 ms on one. Big products outside the loops keep every thread."""
    return _blas.limit(limits=1, user_api="blas")


@dataclass
class LayerGrads:
    """Gradients of one layer, time first.

    h: (T, N, H) ∂L/∂h_t, total derivative (the loss, the layer above, and all later steps).
    c: (T, N, H) ∂L/∂c_t, total (LSTM), else None.
    pre: (T, N, G·H) ∂L/∂(pre-activation of each gate), PyTorch's gate order.
    """

    h: np.ndarray
    c: np.ndarray | None
    pre: np.ndarray


@dataclass
class Gradients:
    """Everything BPTT produced.

    layers: per layer. input: (T, N, D) ∂L/∂x_t. params: ∂L/∂ every state_dict tensor.
    h0, c0: (L, N, H) ∂L/∂(initial states); c0 is None unless LSTM.
    """

    layers: list[LayerGrads]
    input: np.ndarray
    params: StateDict
    h0: np.ndarray
    c0: np.ndarray | None


def forward(
    cell: Cell, params: StateDict, X: np.ndarray, h0: np.ndarray, c0: np.ndarray | None,
    clamps: list[StepClamps | None] | None = None, checkpoint: Checkpoint = no_checkpoint,
    directions: int = 1,
) -> list[Trace]:
    """Run every layer over the whole sequence.

    X: (T, N, D). h0, c0: (L·directions, N, H) initial states (c0 only for the LSTM), one
    per unit u = k·directions + d (PyTorch's h_0 order). directions 2: bidirectional, each
    layer's reverse direction reading x_{T−1} … x_0, the layer above reading both (T, N, 2H).
    clamps: per unit, None or one tuple of interventions per step in its reading order.
    checkpoint: called before each unit. Returns one cell Trace per unit, bottom first, each
    in its own reading order (a reverse direction's step r is input step T−1−r).
    """
    T, N, _ = X.shape
    traces = []
    layer_input = X
    for k in range(h0.shape[0] // directions):
        outputs = []
        for d in range(directions):
            u = k * directions + d
            checkpoint()
            W_ih, W_hh, b_ih, b_hh = (params[name] for name in unit_names(u, directions))
            read = layer_input if d == 0 else layer_input[::-1]
            # every step's input projection at once, as one 2-D product (a 3-D operand would
            # make NumPy run T small products): (T·N, D_k) @ (D_k, G·H) → (T, N, G·H)
            xw = (read.reshape(T * N, -1) @ W_ih.T).reshape(T, N, -1)
            b_folded, b_step = cell.split_recurrent_bias(b_hh)
            xw += b_ih + b_folded
            W_hhT = np.ascontiguousarray(W_hh.T)
            trace = cell.new_trace(T, h0[u], None if c0 is None else c0[u])
            unit_clamps = clamps[u] if clamps else None
            W_hr = params.get(projection_name(u, directions))  # an LSTM's proj_size
            with step_loop_threads():
                if W_hr is None:
                    cell.forward(xw, W_hhT, b_step, trace, unit_clamps)
                else:  # a projection: only the LSTM has one (prepare checks)
                    assert isinstance(trace, lstm.Trace)
                    lstm.forward(xw, W_hhT, b_step, trace, unit_clamps,
                                 np.ascontiguousarray(W_hr.T))
            if unit_clamps:
                width = h0.shape[-1] if c0 is None else c0.shape[-1]  # H, the gates' width
                trace.clamped = clamped_masks(unit_clamps, (T, N, width))
            traces.append(trace)
            outputs.append(trace.h[1:] if d == 0 else trace.h[:0:-1])  # in input order
        layer_input = outputs[0] if directions == 1 else np.concatenate(outputs, axis=-1)
    return traces


def clamped_masks(step_clamps: StepClamps, shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """target → (T, N, H) bool of the entries the interventions replaced."""
    masks: dict[str, np.ndarray] = {}
    for t, clamps in enumerate(step_clamps):
        for clamp in clamps:
            masks.setdefault(clamp.target, np.zeros(shape, dtype=bool))[t][:, clamp.units] = True
    return masks


def backward(
    cell: Cell,
    params: StateDict,
    X: np.ndarray,
    traces: list[Trace],
    dH_top: np.ndarray,
    truncate: int | None = None,
    param_grads: bool = True,
    checkpoint: Checkpoint = no_checkpoint,
    directions: int = 1,
    layer: int | None = None,
    dC_out: np.ndarray | None = None,
) -> Gradients:
    """Backpropagation through time, from ∂L/∂(a layer's output) (T, N, directions·H),
    in input order: the top layer's, or `layer`'s (no gradient reaches the layers above it:
    theirs are zeros, not computed). dC_out: (T, N, directions·H) ∂L/∂c_t of that layer's
    LSTM cells ([c→; c←]) from outside, or None.

    truncate: window k, or None for full BPTT, counted in each direction's reading order.
    The traces may hold one sequence while dH_top holds N: they broadcast, which runs N
    backward passes through one forward pass at once (connectivity). param_grads=False
    skips the parameter gradients (then params is {}). checkpoint: called before each unit.
    Gradients.layers is per unit, each in its reading order, as the traces.
    """
    T, N, _ = dH_top.shape
    U = len(traces)
    H = traces[0].h.shape[-1]  # h's width: P with a projection
    c = traces[0].c
    Hc = H if c is None else c.shape[-1]  # the gates' and c's width
    dt = dH_top.dtype
    layers: list[LayerGrads] = [None] * U  # type: ignore[list-item]
    grads: StateDict = {}
    dh0 = np.zeros((U, N, H), dt)
    dc0 = np.zeros((U, N, Hc), dt) if cell.has_cell_state else None
    d_external = dH_top  # ∂L/∂(layer output) from outside the recurrence: loss, layer above
    loss_layer = U // directions - 1 if layer is None else layer
    for k in reversed(range(U // directions)):
        if k > loss_layer:  # above the loss: nothing reaches it
            for u in range(k * directions, (k + 1) * directions):
                layers[u] = _no_gradient(cell, traces[u], T, N, dt)
                if param_grads:
                    for name in (*unit_names(u, directions), projection_name(u, directions)):
                        if name in params:
                            grads[name] = np.zeros_like(params[name], dtype=dt)
            continue
        layer_input = X if k == 0 else layer_output(traces, k - 1, directions)
        d_input = None
        for d in range(directions):
            u = k * directions + d
            checkpoint()
            trace = traces[u]
            W_ih, W_hh, _, _ = (params[name] for name in unit_names(u, directions))
            ext = d_external[..., d * H:(d + 1) * H]
            ext = ext if d == 0 else ext[::-1]  # into the reverse direction's reading order
            dA = np.empty((T, N, cell.blocks * Hc), dt)
            dH = np.empty((T, N, H), dt)
            dC = np.empty((T, N, Hc), dt) if cell.has_cell_state else None
            n_hr = projection_name(u, directions)
            W_hr = params.get(n_hr)
            into_c = None
            if dC_out is not None and k == loss_layer:  # ∂L/∂c_t from outside, this unit's
                into_c = dC_out[..., d * Hc:(d + 1) * Hc]
                into_c = into_c if d == 0 else into_c[::-1]
            with step_loop_threads():
                if W_hr is None and into_c is None:
                    dh0[u], dc_first = cell.backward(trace.local, ext, W_hh, truncate, dA, dH,
                                                     dC)
                else:  # a projection, or a gradient into c: only the LSTM has either
                    dh0[u], dc_first = lstm.backward(trace.local, ext, W_hh, truncate, dA, dH,
                                                     dC, W_hr, into_c)
            if dc0 is not None:
                dc0[u] = dc_first

            flat = dA.reshape(T * N, -1)
            if param_grads:
                read = layer_input if d == 0 else layer_input[::-1]
                flat_hh = cell.recurrent_grad(dA, trace).reshape(T * N, -1)
                n_ih, n_hh, n_bih, n_bhh = unit_names(u, directions)
                grads[n_ih] = flat.T @ read.reshape(T * N, -1)  # dW_ih = Σ_t dA_tᵀ x_t
                grads[n_hh] = flat_hh.T @ trace.h[:-1].reshape(T * N, H)  # Σ dA_tᵀ h_{t−1}
                grads[n_bih] = flat.sum(axis=0)
                grads[n_bhh] = flat_hh.sum(axis=0)
                if W_hr is not None:  # h_t = W_hr m_t: dW_hr = Σ_t ∂L/∂h_tᵀ m_t
                    assert isinstance(trace, lstm.Trace) and trace.m is not None
                    grads[n_hr] = dH.reshape(T * N, H).T @ trace.m.reshape(T * N, Hc)
            # ∂L/∂(this layer's input): the layer below's output, or x
            part = (flat @ W_ih).reshape(T, N, -1)
            part = part if d == 0 else part[::-1]
            d_input = part if d_input is None else d_input + part
            layers[u] = LayerGrads(dH, dC, dA)
        assert d_input is not None
        d_external = d_input
    ordered = {name: grads[name] for u in range(U)
               for name in (*unit_names(u, directions), projection_name(u, directions))
               if name in grads}
    return Gradients(layers, d_external, ordered, dh0, dc0)


def sequence_param_grads(cell: Cell, params: StateDict, X: np.ndarray, traces: list[Trace],
                         grads: Gradients, directions: int = 1) -> list[StateDict]:
    """Each of the N sequences' own parameter gradients (backward sums them over the batch):
    dW_ih = Σ_t dA_tᵀ x_t, dW_hh = Σ_t dA_tᵀ h_{t−1}, the biases Σ_t dA_t (and an LSTM's
    projection Σ_t ∂L/∂h_tᵀ m_t) per sequence, in PyTorch's order. X: (T, N, D)."""
    N = X.shape[1]
    out: list[StateDict] = [{} for _ in range(N)]
    for u, trace in enumerate(traces):
        k, d = divmod(u, directions)
        layer_input = X if k == 0 else layer_output(traces, k - 1, directions)
        read = layer_input if d == 0 else layer_input[::-1]
        g = grads.layers[u]
        dA_hh = cell.recurrent_grad(g.pre, trace)
        n_ih, n_hh, n_bih, n_bhh = unit_names(u, directions)
        n_hr = projection_name(u, directions)
        m = trace.m if isinstance(trace, lstm.Trace) else None
        for j in range(N):
            dA_j, dA_hh_j = g.pre[:, j], dA_hh[:, j]
            out[j][n_ih] = dA_j.T @ read[:, j]
            out[j][n_hh] = dA_hh_j.T @ trace.h[:-1, j]
            out[j][n_bih] = dA_j.sum(axis=0)
            out[j][n_bhh] = dA_hh_j.sum(axis=0)
            if n_hr in params and m is not None:
                out[j][n_hr] = g.h[:, j].T @ m[:, j]
    order = [name for u in range(len(traces))
             for name in (*unit_names(u, directions), projection_name(u, directions))]
    return [{name: o[name] for name in order if name in o} for o in out]


def _no_gradient(cell: Cell, trace: Trace, T: int, N: int, dt: np.dtype) -> LayerGrads:
    """A unit no gradient reaches (above the loss's layer): zeros."""
    H = trace.h.shape[-1]
    Hc = H if trace.c is None else trace.c.shape[-1]
    return LayerGrads(np.zeros((T, N, H), dt),
                      np.zeros((T, N, Hc), dt) if cell.has_cell_state else None,
                      np.zeros((T, N, cell.blocks * Hc), dt))


def layer_cells(traces: list[Trace], k: int, directions: int) -> np.ndarray | None:
    """Layer k's cell states in input order, (T, N, directions·H) ([c→; c←]); None for a
    cell without c."""
    fwd = traces[k * directions].c
    if fwd is None:
        return None
    if directions == 1:
        return fwd[1:]
    rev = traces[k * directions + 1].c
    assert rev is not None
    return np.concatenate([fwd[1:], rev[:0:-1]], axis=-1)


def layer_output(traces: list[Trace], k: int, directions: int) -> np.ndarray:
    """Layer k's output in input order: (T, N, directions·H), as the layer above reads it."""
    fwd = traces[k * directions].h[1:]
    if directions == 1:
        return fwd
    return np.concatenate([fwd, traces[k * directions + 1].h[:0:-1]], axis=-1)


CONNECTIVITY_BYTES = 128 * 2**20  # the backward buffers of one chunk of outputs


def connectivity(cell: Cell, params: StateDict, X: np.ndarray, traces: list[Trace],
                 u: int, checkpoint: Checkpoint = no_checkpoint, directions: int = 1
                 ) -> np.ndarray:
    """Distill's connectivity of unit u (layer u // directions, its direction u % directions):
    (T, T), row t, column s = ‖∂(Σ_j h_t[j]) / ∂x_s‖₂ in input order — with full BPTT,
    whatever the run's truncation. Unidirectional, it is 0 for s > t.

    One backward pass per output step t, run as a batch: the traces (one sequence) broadcast
    against N = a chunk of outputs. Unidirectional, a chunk ending at t1 only goes back from
    t1; a bidirectional stack reads the whole sequence, so every pass spans it.
    checkpoint: called before each chunk's units.
    """
    T = X.shape[0]
    H = traces[u].h.shape[-1]
    k, d = divmod(u, directions)
    below = traces[:(k + 1) * directions]
    c = traces[u].c
    Hc = H if c is None else c.shape[-1]  # the gates' width (H ≥ h's P with a projection)
    # per output step, for every unit the pass goes through: its dA, dH, dC; and the input's
    # and the layer boundary's gradients
    per_output = T * X.dtype.itemsize * (len(below) * (cell.blocks + 2) * Hc
                                         + X.shape[-1] + directions * H)
    chunk = max(1, min(T, CONNECTIVITY_BYTES // per_output))
    out = np.zeros((T, T), X.dtype)
    for t0 in range(0, T, chunk):
        t1 = min(T, t0 + chunk)
        n = t1 - t0
        span = t1 if directions == 1 else T
        dH = np.zeros((span, n, directions * H), X.dtype)
        # output m of the chunk: Σ_j h_{t0+m}[j] of this unit
        dH[np.arange(t0, t1), np.arange(n), d * H:(d + 1) * H] = 1.0
        heads = [head(trace, t1) for trace in below] if directions == 1 else below
        grads = backward(cell, params, X[:span], heads, dH, None, param_grads=False,
                         checkpoint=checkpoint, directions=directions)
        out[t0:t1, :span] = np.linalg.norm(grads.input, axis=-1).T  # (n, span)
    return np.tril(out) if directions == 1 else out
