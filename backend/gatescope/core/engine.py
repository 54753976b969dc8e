"""The sequence loop: a stack of layers forward through time, then backpropagation through time.

Shapes: T steps, N sequences, D input size, H hidden size, L layers, G gate blocks.
Layer k > 0 takes layer k−1's h_t as its input at the same step. Only the recurrence is
a Python loop; the input projection of every step (X W_ihᵀ + b_ih) is one matrix product
before it, and the parameter gradients (dAᵀX, dAᵀH) are matrix products after it.

Truncated BPTT with window k: the state that enters step t is detached whenever t is a
positive multiple of k — values carry on, gradients stop, in every layer.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from .cells import Cell, Trace, head
from .cells.clamps import StepClamps
from .memory import keep_freed_memory
from .params import StateDict, param_names

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
) -> list[Trace]:
    """Run every layer over the whole sequence.

    X: (T, N, D). h0, c0: (L, N, H) initial states (c0 only for the LSTM).
    clamps: per layer, None or one tuple of interventions per step (cells/clamps.py).
    checkpoint: called before each layer. Returns one cell Trace per layer, bottom first.
    """
    T, N, _ = X.shape
    traces = []
    layer_input = X
    for k in range(h0.shape[0]):
        checkpoint()
        W_ih, W_hh, b_ih, b_hh = (params[name] for name in param_names(k))
        # every step's input projection at once, as one 2-D product (a 3-D operand would make
        # NumPy run T small products): (T·N, D_k) @ (D_k, G·H) → (T, N, G·H)
        xw = (layer_input.reshape(T * N, -1) @ W_ih.T).reshape(T, N, -1)
        b_folded, b_step = cell.split_recurrent_bias(b_hh)
        xw += b_ih + b_folded
        W_hhT = np.ascontiguousarray(W_hh.T)
        trace = cell.new_trace(T, h0[k], None if c0 is None else c0[k])
        layer_clamps = clamps[k] if clamps else None
        with step_loop_threads():
            cell.forward(xw, W_hhT, b_step, trace, layer_clamps)
        if layer_clamps:
            trace.clamped = clamped_masks(layer_clamps, (T, N, h0.shape[-1]))
        traces.append(trace)
        layer_input = trace.h[1:]
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
) -> Gradients:
    """Backpropagation through time, from ∂L/∂h_t of the top layer (T, N, H).

    truncate: window k, or None for full BPTT. The traces may hold one sequence while dH_top
    holds N: they broadcast, which runs N backward passes through one forward pass at once
    (connectivity). param_grads=False skips the parameter gradients (then params is {}).
    checkpoint: called before each layer.
    """
    T, N, H = dH_top.shape
    L = len(traces)
    dt = dH_top.dtype
    layers: list[LayerGrads] = [None] * L  # type: ignore[list-item]
    grads: StateDict = {}
    dh0 = np.zeros((L, N, H), dt)
    dc0 = np.zeros((L, N, H), dt) if cell.has_cell_state else None
    d_external = dH_top  # ∂L/∂h_t from outside the recurrence: the loss or the layer above
    for k in reversed(range(L)):
        checkpoint()
        trace = traces[k]
        W_ih, W_hh, _, _ = (params[name] for name in param_names(k))
        dA = np.empty((T, N, cell.blocks * H), dt)
        dH = np.empty((T, N, H), dt)
        dC = np.empty((T, N, H), dt) if cell.has_cell_state else None
        with step_loop_threads():
            dh0[k], dc_first = cell.backward(trace.local, d_external, W_hh, truncate, dA, dH, dC)
        if dc0 is not None:
            dc0[k] = dc_first

        flat = dA.reshape(T * N, -1)
        if param_grads:
            layer_input = X if k == 0 else traces[k - 1].h[1:]
            flat_hh = cell.recurrent_grad(dA, trace).reshape(T * N, -1)
            n_ih, n_hh, n_bih, n_bhh = param_names(k)
            grads[n_ih] = flat.T @ layer_input.reshape(T * N, -1)  # dW_ih = Σ_t dA_tᵀ x_t
            grads[n_hh] = flat_hh.T @ trace.h[:-1].reshape(T * N, H)  # dW_hh = Σ dA_tᵀ h_{t−1}
            grads[n_bih] = flat.sum(axis=0)
            grads[n_bhh] = flat_hh.sum(axis=0)
        # ∂L/∂(this layer's input): the layer below's h, or x
        d_external = (flat @ W_ih).reshape(T, N, -1)
        layers[k] = LayerGrads(dH, dC, dA)
    ordered = {name: grads[name] for k in range(L) for name in param_names(k) if name in grads}
    return Gradients(layers, d_external, ordered, dh0, dc0)


CONNECTIVITY_BYTES = 128 * 2**20  # the backward buffers of one chunk of outputs


def connectivity(cell: Cell, params: StateDict, X: np.ndarray, traces: list[Trace],
                 k: int, checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
    """Distill's connectivity of layer k: (T, T), row t, column s = ‖∂(Σ_j h_t[j]) / ∂x_s‖₂
    for s ≤ t, else 0 — with full BPTT, whatever the run's truncation.

    One backward pass per output step t, run as a batch: the traces (one sequence) broadcast
    against N = a chunk of outputs, and a chunk ending at t1 only goes back from t1.
    checkpoint: called before each chunk's layers.
    """
    T = X.shape[0]
    H = traces[k].h.shape[-1]
    per_output = T * cell.blocks * H * X.dtype.itemsize * 3  # dA, dH, dC and the rest
    chunk = max(1, min(T, CONNECTIVITY_BYTES // per_output))
    out = np.zeros((T, T), X.dtype)
    for t0 in range(0, T, chunk):
        t1 = min(T, t0 + chunk)
        n = t1 - t0
        dH = np.zeros((t1, n, H), X.dtype)
        dH[np.arange(t0, t1), np.arange(n), :] = 1.0  # output m of the chunk: Σ_j h_{t0+m}[j]
        heads = [head(trace, t1) for trace in traces[:k + 1]]
        grads = backward(cell, params, X[:t1], heads, dH, None, param_grads=False,
                         checkpoint=checkpoint)
        out[t0:t1, :t1] = np.linalg.norm(grads.input, axis=-1).T  # (n, t1)
    return np.tril(out)
