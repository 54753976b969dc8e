"""The readable reference: one plain step forward and one step backward per cell, one named
line per gate, and a plain loop over steps and layers. The file to open to read the equations.

This is an oracle, not the fast path. The engine (engine.py, cells/lstm.py, cells/gru.py,
cells/rnn.py) fuses the input projection of every step into one product, keeps the sigmoid
gates negated in its loops and writes into views of preallocated buffers, which makes it fast
and hard to read. Here every quantity has a name and its own line, as in CS231n's
rnn_step_forward / rnn_step_backward, and the tests (tests/engine/test_reference.py) check
both against each other and against PyTorch. It is allowed to be slow.

Shapes: N sequences, D input size (D_k = H above layer 0), H hidden size, T steps, L layers,
G gate blocks (LSTM 4, GRU 3, RNN 1). One step sees x (N, D), h_prev and c_prev (N, H).
Weights use PyTorch's state_dict layout and gate order: W_ih (G·H, D), W_hh (G·H, H),
b_ih and b_hh (G·H,), the blocks stacked as LSTM i, f, g, o; GRU r, z, n; RNN one block.
A row vector convention: x @ W_ii.T is PyTorch's W_ii x for every sequence at once.

PyTorch's equations (σ the logistic sigmoid, ⊙ the elementwise product):

    LSTM   i  = σ(W_ii x + b_ii + W_hi h + b_hi)        input gate
           f  = σ(W_if x + b_if + W_hf h + b_hf)        forget gate
           g  = tanh(W_ig x + b_ig + W_hg h + b_hg)     candidate
           o  = σ(W_io x + b_io + W_ho h + b_ho)        output gate
           c' = f ⊙ c + i ⊙ g
           h' = o ⊙ tanh(c')

    GRU    r  = σ(W_ir x + b_ir + W_hr h + b_hr)        reset gate
           z  = σ(W_iz x + b_iz + W_hz h + b_hz)        update gate
           n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))   candidate (b_hn sits behind r)
           h' = (1 − z) ⊙ n + z ⊙ h

    RNN    a  = W_ih x + b_ih + W_hh h + b_hh
           h' = tanh(a)  or  relu(a)    (relu'(0) = 0, as in PyTorch)

A gate's pre-activation is the argument of its nonlinearity (named a_i, a_f, …; the GRU's a_n
is the whole argument of n's tanh). Truncated BPTT with window k: the state that enters step t
is detached whenever t is a positive multiple of k; values carry on, gradients stop, in every
layer.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# gate names per cell in PyTorch's order; the RNN has no gates, only a pre-activation "a"
GATES: dict[str, tuple[str, ...]] = {
    "lstm": ("i", "f", "g", "o"),
    "gru": ("r", "z", "n"),
    "rnn_tanh": (),
    "rnn_relu": (),
}
PRE_ACTIVATIONS: dict[str, tuple[str, ...]] = {
    "lstm": ("i", "f", "g", "o"),
    "gru": ("r", "z", "n"),
    "rnn_tanh": ("a",),
    "rnn_relu": ("a",),
}


# ── elementwise helpers ───────────────────────────────────────────────────────────────

def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^(−x)), stable for any x: e^(−|x|) is in (0, 1], so it never
    overflows (it underflows to 0 for x < −745, where σ(x) is 0 in float64 anyway).

        x ≥ 0:  σ(x) = 1 / (1 + e^(−x))
        x < 0:  σ(x) = e^x / (1 + e^x)
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0)."""
    return np.maximum(x, 0.0)


def split_blocks(a: np.ndarray, G: int) -> tuple[np.ndarray, ...]:
    """A stacked weight (G·H, D) or bias (G·H,) → its G gate blocks, (H, D) or (H,) each,
    in PyTorch's order."""
    H = a.shape[0] // G
    return tuple(a[k * H:(k + 1) * H] for k in range(G))


def state_dict_names(layer: int) -> tuple[str, str, str, str]:
    """PyTorch's names of layer k's tensors: W_ih, W_hh, b_ih, b_hh. (core/params.py has the
    same; spelt out again so this oracle shares no code with the path it checks.)"""
    return (f"weight_ih_l{layer}", f"weight_hh_l{layer}", f"bias_ih_l{layer}",
            f"bias_hh_l{layer}")


# ── LSTM ─────────────────────────────────────────────────────────────────────────────

class LSTMCache(NamedTuple):
    """What lstm_step_backward needs from one forward step. Arrays (N, H) unless noted."""

    x: np.ndarray  # (N, D) input
    h_prev: np.ndarray  # h_{t−1}
    c_prev: np.ndarray  # c_{t−1}
    W_ih: np.ndarray  # (4H, D)
    W_hh: np.ndarray  # (4H, H)
    a_i: np.ndarray  # pre-activations
    a_f: np.ndarray
    a_g: np.ndarray
    a_o: np.ndarray
    i: np.ndarray  # gates
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    c: np.ndarray  # c_t
    tanh_c: np.ndarray  # tanh(c_t)
    h: np.ndarray  # h_t


class LSTMGrads(NamedTuple):
    """The gradients of one LSTM step. Arrays (N, H) unless noted."""

    dx: np.ndarray  # (N, D) ∂L/∂x
    dh_prev: np.ndarray  # ∂L/∂h_{t−1} through this step
    dc_prev: np.ndarray  # ∂L/∂c_{t−1} through this step
    dW_ih: np.ndarray  # (4H, D)  # noqa: N815 (the equations' W)
    dW_hh: np.ndarray  # (4H, H)  # noqa: N815 (the equations' W)
    db_ih: np.ndarray  # (4H,)
    db_hh: np.ndarray  # (4H,)
    dc: np.ndarray  # total ∂L/∂c_t: from later steps and through h_t
    da_i: np.ndarray  # ∂L/∂ pre-activations
    da_f: np.ndarray
    da_g: np.ndarray
    da_o: np.ndarray


def lstm_step_forward(x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray,
                      W_ih: np.ndarray, W_hh: np.ndarray, b_ih: np.ndarray,
                      b_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray, LSTMCache]:
    """One LSTM step.

    x: (N, D). h_prev, c_prev: (N, H). W_ih: (4H, D). W_hh: (4H, H). b_ih, b_hh: (4H,).
    Returns h, c: (N, H) each, and the step's cache.
    """
    W_ii, W_if, W_ig, W_io = split_blocks(W_ih, 4)
    W_hi, W_hf, W_hg, W_ho = split_blocks(W_hh, 4)
    b_ii, b_if, b_ig, b_io = split_blocks(b_ih, 4)
    b_hi, b_hf, b_hg, b_ho = split_blocks(b_hh, 4)

    a_i = x @ W_ii.T + b_ii + h_prev @ W_hi.T + b_hi
    a_f = x @ W_if.T + b_if + h_prev @ W_hf.T + b_hf
    a_g = x @ W_ig.T + b_ig + h_prev @ W_hg.T + b_hg
    a_o = x @ W_io.T + b_io + h_prev @ W_ho.T + b_ho
    i = sigmoid(a_i)  # input gate
    f = sigmoid(a_f)  # forget gate
    g = np.tanh(a_g)  # candidate
    o = sigmoid(a_o)  # output gate
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c

    cache = LSTMCache(x, h_prev, c_prev, W_ih, W_hh, a_i, a_f, a_g, a_o, i, f, g, o, c,
                      tanh_c, h)
    return h, c, cache


def lstm_step_backward(dh: np.ndarray, dc: np.ndarray, cache: LSTMCache) -> LSTMGrads:
    """Backward through one LSTM step.

    dh: (N, H) total ∂L/∂h_t (from the loss or the layer above, and from step t+1).
    dc: (N, H) ∂L/∂c_t from step t+1 only (the path through h_t is added here).
    """
    x, h_prev, c_prev, W_ih, W_hh = cache.x, cache.h_prev, cache.c_prev, cache.W_ih, cache.W_hh
    i, f, g, o, tanh_c = cache.i, cache.f, cache.g, cache.o, cache.tanh_c
    W_ii, W_if, W_ig, W_io = split_blocks(W_ih, 4)
    W_hi, W_hf, W_hg, W_ho = split_blocks(W_hh, 4)

    do = dh * tanh_c  # h = o ⊙ tanh(c)
    dc_total = dc + dh * o * (1.0 - tanh_c**2)  # … and tanh'(c) = 1 − tanh²(c)
    df = dc_total * c_prev  # c = f ⊙ c_prev + i ⊙ g
    di = dc_total * g
    dg = dc_total * i
    dc_prev = dc_total * f
    da_i = di * i * (1.0 - i)  # σ'(a) = σ(a)(1 − σ(a))
    da_f = df * f * (1.0 - f)
    da_g = dg * (1.0 - g**2)  # tanh'(a) = 1 − tanh²(a)
    da_o = do * o * (1.0 - o)

    # a_i = x W_iiᵀ + b_ii + h_prev W_hiᵀ + b_hi, and the same for f, g, o
    dx = da_i @ W_ii + da_f @ W_if + da_g @ W_ig + da_o @ W_io
    dh_prev = da_i @ W_hi + da_f @ W_hf + da_g @ W_hg + da_o @ W_ho
    dW_ih = np.concatenate([da_i.T @ x, da_f.T @ x, da_g.T @ x, da_o.T @ x])
    dW_hh = np.concatenate([da_i.T @ h_prev, da_f.T @ h_prev, da_g.T @ h_prev,
                            da_o.T @ h_prev])
    db_ih = np.concatenate([da_i.sum(axis=0), da_f.sum(axis=0), da_g.sum(axis=0),
                            da_o.sum(axis=0)])
    db_hh = db_ih.copy()  # b_ih and b_hh enter every gate as the same sum

    return LSTMGrads(dx, dh_prev, dc_prev, dW_ih, dW_hh, db_ih, db_hh, dc_total,
                     da_i, da_f, da_g, da_o)


# ── GRU ──────────────────────────────────────────────────────────────────────────────

class GRUCache(NamedTuple):
    """What gru_step_backward needs from one forward step. Arrays (N, H) unless noted."""

    x: np.ndarray  # (N, D) input
    h_prev: np.ndarray  # h_{t−1}
    W_ih: np.ndarray  # (3H, D)
    W_hh: np.ndarray  # (3H, H)
    a_r: np.ndarray  # pre-activations
    a_z: np.ndarray
    a_n: np.ndarray  # the whole argument of n's tanh
    hn: np.ndarray  # W_hn h_{t−1} + b_hn, the part of a_n that r gates
    r: np.ndarray  # gates
    z: np.ndarray
    n: np.ndarray
    h: np.ndarray  # h_t


class GRUGrads(NamedTuple):
    """The gradients of one GRU step. Arrays (N, H) unless noted."""

    dx: np.ndarray  # (N, D) ∂L/∂x
    dh_prev: np.ndarray  # ∂L/∂h_{t−1} through this step
    dW_ih: np.ndarray  # (3H, D)  # noqa: N815 (the equations' W)
    dW_hh: np.ndarray  # (3H, H)  # noqa: N815 (the equations' W)
    db_ih: np.ndarray  # (3H,)
    db_hh: np.ndarray  # (3H,)
    da_r: np.ndarray  # ∂L/∂ pre-activations
    da_z: np.ndarray
    da_n: np.ndarray


def gru_step_forward(x: np.ndarray, h_prev: np.ndarray, W_ih: np.ndarray, W_hh: np.ndarray,
                     b_ih: np.ndarray, b_hh: np.ndarray) -> tuple[np.ndarray, GRUCache]:
    """One GRU step.

    x: (N, D). h_prev: (N, H). W_ih: (3H, D). W_hh: (3H, H). b_ih, b_hh: (3H,).
    Returns h: (N, H), and the step's cache.
    """
    W_ir, W_iz, W_in = split_blocks(W_ih, 3)
    W_hr, W_hz, W_hn = split_blocks(W_hh, 3)
    b_ir, b_iz, b_in = split_blocks(b_ih, 3)
    b_hr, b_hz, b_hn = split_blocks(b_hh, 3)

    a_r = x @ W_ir.T + b_ir + h_prev @ W_hr.T + b_hr
    a_z = x @ W_iz.T + b_iz + h_prev @ W_hz.T + b_hz
    r = sigmoid(a_r)  # reset gate
    z = sigmoid(a_z)  # update gate
    hn = h_prev @ W_hn.T + b_hn
    a_n = x @ W_in.T + b_in + r * hn
    n = np.tanh(a_n)  # candidate
    h = (1.0 - z) * n + z * h_prev

    return h, GRUCache(x, h_prev, W_ih, W_hh, a_r, a_z, a_n, hn, r, z, n, h)


def gru_step_backward(dh: np.ndarray, cache: GRUCache) -> GRUGrads:
    """Backward through one GRU step.

    dh: (N, H) total ∂L/∂h_t (from the loss or the layer above, and from step t+1).
    """
    x, h_prev, W_ih, W_hh = cache.x, cache.h_prev, cache.W_ih, cache.W_hh
    r, z, n, hn = cache.r, cache.z, cache.n, cache.hn
    W_ir, W_iz, W_in = split_blocks(W_ih, 3)
    W_hr, W_hz, W_hn = split_blocks(W_hh, 3)

    dn = dh * (1.0 - z)  # h = (1 − z) ⊙ n + z ⊙ h_prev
    dz = dh * (h_prev - n)
    da_n = dn * (1.0 - n**2)  # n = tanh(a_n)
    dr = da_n * hn  # a_n = x W_inᵀ + b_in + r ⊙ hn
    dhn = da_n * r  # ∂L/∂hn, hn = h_prev W_hnᵀ + b_hn
    da_r = dr * r * (1.0 - r)  # σ'(a) = σ(a)(1 − σ(a))
    da_z = dz * z * (1.0 - z)

    # a_r = x W_irᵀ + b_ir + h_prev W_hrᵀ + b_hr, the same for z; n's input part is outside r
    dx = da_r @ W_ir + da_z @ W_iz + da_n @ W_in
    dh_prev = dh * z + da_r @ W_hr + da_z @ W_hz + dhn @ W_hn
    dW_ih = np.concatenate([da_r.T @ x, da_z.T @ x, da_n.T @ x])
    dW_hh = np.concatenate([da_r.T @ h_prev, da_z.T @ h_prev, dhn.T @ h_prev])
    db_ih = np.concatenate([da_r.sum(axis=0), da_z.sum(axis=0), da_n.sum(axis=0)])
    db_hh = np.concatenate([da_r.sum(axis=0), da_z.sum(axis=0), dhn.sum(axis=0)])

    return GRUGrads(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh, da_r, da_z, da_n)


# ── Elman RNN (tanh or relu) ─────────────────────────────────────────────────────────

class RNNCache(NamedTuple):
    """What rnn_step_backward needs from one forward step. Arrays (N, H) unless noted."""

    x: np.ndarray  # (N, D) input
    h_prev: np.ndarray  # h_{t−1}
    W_ih: np.ndarray  # (H, D)
    W_hh: np.ndarray  # (H, H)
    a: np.ndarray  # the pre-activation
    h: np.ndarray  # h_t
    nonlinearity: str  # "tanh" or "relu"


class RNNGrads(NamedTuple):
    """The gradients of one RNN step. Arrays (N, H) unless noted."""

    dx: np.ndarray  # (N, D) ∂L/∂x
    dh_prev: np.ndarray  # ∂L/∂h_{t−1} through this step
    dW_ih: np.ndarray  # (H, D)  # noqa: N815 (the equations' W)
    dW_hh: np.ndarray  # (H, H)  # noqa: N815 (the equations' W)
    db_ih: np.ndarray  # (H,)
    db_hh: np.ndarray  # (H,)
    da: np.ndarray  # ∂L/∂a


def rnn_step_forward(x: np.ndarray, h_prev: np.ndarray, W_ih: np.ndarray, W_hh: np.ndarray,
                     b_ih: np.ndarray, b_hh: np.ndarray, nonlinearity: str = "tanh"
                     ) -> tuple[np.ndarray, RNNCache]:
    """One Elman RNN step, nonlinearity "tanh" or "relu".

    x: (N, D). h_prev: (N, H). W_ih: (H, D). W_hh: (H, H). b_ih, b_hh: (H,).
    Returns h: (N, H), and the step's cache.
    """
    a = x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh
    if nonlinearity == "tanh":
        h = np.tanh(a)
    elif nonlinearity == "relu":
        h = relu(a)
    else:
        raise ValueError(f"nonlinearity is 'tanh' or 'relu', not {nonlinearity!r}")
    return h, RNNCache(x, h_prev, W_ih, W_hh, a, h, nonlinearity)


def rnn_step_backward(dh: np.ndarray, cache: RNNCache) -> RNNGrads:
    """Backward through one RNN step.

    dh: (N, H) total ∂L/∂h_t (from the loss or the layer above, and from step t+1).
    """
    x, h_prev, W_ih, W_hh, a, h = cache.x, cache.h_prev, cache.W_ih, cache.W_hh, cache.a, cache.h

    # φ'(a): tanh'(a) = 1 − tanh²(a); relu'(a) = 1 where a > 0, else 0 (0 at a = 0, as PyTorch)
    dphi = 1.0 - h**2 if cache.nonlinearity == "tanh" else (a > 0).astype(a.dtype)
    da = dh * dphi  # h = φ(a)

    # a = x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh
    dx = da @ W_ih
    dh_prev = da @ W_hh
    dW_ih = da.T @ x
    dW_hh = da.T @ h_prev
    db_ih = da.sum(axis=0)
    db_hh = da.sum(axis=0)

    return RNNGrads(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh, da)


# ── the sequence: T steps, L layers ──────────────────────────────────────────────────

StepCache = LSTMCache | GRUCache | RNNCache


class LayerForward(NamedTuple):
    """One layer's forward pass, time first.

    h: (T, N, H) h_t for t = 0 … T−1 (the initial state is not included).
    c: (T, N, H) c_t for the LSTM, else None.
    gates: gate name → (T, N, H) the gate's values (LSTM i f g o; GRU r z n; RNN none).
    pre: gate name → (T, N, H) its pre-activation (the RNN's single one is "a").
    caches: the T step caches, for backward.
    """

    h: np.ndarray
    c: np.ndarray | None
    gates: dict[str, np.ndarray]
    pre: dict[str, np.ndarray]
    caches: list[StepCache]


class LayerBackward(NamedTuple):
    """One layer's gradients, time first.

    h: (T, N, H) total ∂L/∂h_t (the loss or the layer above, and all later steps).
    c: (T, N, H) total ∂L/∂c_t for the LSTM, else None.
    pre: gate name → (T, N, H) ∂L/∂(the gate's pre-activation).
    """

    h: np.ndarray
    c: np.ndarray | None
    pre: dict[str, np.ndarray]


class Gradients(NamedTuple):
    """Everything backpropagation through time gives.

    layers: per layer, bottom first. input: (T, N, D) ∂L/∂x_t.
    params: ∂L/∂ every tensor, under PyTorch's state_dict names, in state_dict order.
    h0, c0: (L, N, H) ∂L/∂ initial states (c0 None unless LSTM).
    """

    layers: list[LayerBackward]
    input: np.ndarray
    params: dict[str, np.ndarray]
    h0: np.ndarray
    c0: np.ndarray | None


def _pre_field(gate: str) -> str:
    """A pre-activation's name in a cache: a_i, a_f, … ("a" for the RNN); ∂L/∂ it in the
    step's grads is the same name with a d in front (da_i, …, da)."""
    return gate if gate == "a" else f"a_{gate}"


def forward(cell_name: str, params: dict[str, np.ndarray], X: np.ndarray, h0: np.ndarray,
            c0: np.ndarray | None = None) -> list[LayerForward]:
    """Run every layer over the sequence, one step at a time.

    cell_name: "lstm", "gru", "rnn_tanh" or "rnn_relu". params: PyTorch's state_dict names
    → arrays (weight_ih_l{k} (G·H, D_k), weight_hh_l{k} (G·H, H), bias_ih_l{k},
    bias_hh_l{k} (G·H,)). X: (T, N, D). h0: (L, N, H). c0: (L, N, H), the LSTM's only.
    Layer k > 0 takes layer k−1's h_t as its input x_t. Returns one LayerForward per layer.
    """
    if cell_name not in GATES:
        raise ValueError(f"unknown cell {cell_name!r}; one of {sorted(GATES)}")
    if cell_name == "lstm" and c0 is None:
        raise ValueError("an LSTM needs c0")
    T, L = X.shape[0], h0.shape[0]
    layers = []
    layer_input = X
    for k in range(L):
        W_ih, W_hh, b_ih, b_hh = (params[name] for name in state_dict_names(k))
        h = h0[k]
        c = c0[k] if cell_name == "lstm" and c0 is not None else None
        hs: list[np.ndarray] = []
        cs: list[np.ndarray] = []
        caches: list[StepCache] = []
        for t in range(T):
            cache: StepCache
            if cell_name == "lstm":
                assert c is not None
                h, c, cache = lstm_step_forward(layer_input[t], h, c, W_ih, W_hh, b_ih, b_hh)
                cs.append(c)
            elif cell_name == "gru":
                h, cache = gru_step_forward(layer_input[t], h, W_ih, W_hh, b_ih, b_hh)
            else:
                nonlinearity = cell_name.removeprefix("rnn_")
                h, cache = rnn_step_forward(layer_input[t], h, W_ih, W_hh, b_ih, b_hh,
                                            nonlinearity)
            hs.append(h)
            caches.append(cache)
        gates = {name: np.stack([getattr(s, name) for s in caches])
                 for name in GATES[cell_name]}
        pre = {name: np.stack([getattr(s, _pre_field(name)) for s in caches])
               for name in PRE_ACTIVATIONS[cell_name]}
        layers.append(LayerForward(np.stack(hs), np.stack(cs) if cs else None, gates, pre,
                                   caches))
        layer_input = layers[-1].h
    return layers


def backward(layers: list[LayerForward], dH_top: np.ndarray, truncate: int | None = None
             ) -> Gradients:
    """Backpropagation through time, from dH_top: (T, N, H) ∂L/∂h_t of the top layer.

    layers: forward's result (its caches know the cell). truncate: the window k, or None for
    full BPTT: the state entering step t is detached where t is a positive multiple of k.
    Layers from the top down; in each, steps t = T−1 … 0, carrying dh_next = ∂L/∂h_t and
    dc_next = ∂L/∂c_t from step t+1 into step t.
    """
    T, N, H = dH_top.shape
    L = len(layers)
    lstm = layers[0].c is not None
    pre_names = list(layers[0].pre)
    params: dict[str, np.ndarray] = {}
    dh0 = np.zeros((L, N, H), dH_top.dtype)
    dc0 = np.zeros((L, N, H), dH_top.dtype) if lstm else None
    out: list[LayerBackward] = []
    d_from_above = dH_top  # ∂L/∂h_t from outside the recurrence: the loss or the layer above
    for k in reversed(range(L)):
        caches = layers[k].caches
        D_k = caches[0].x.shape[1]
        dH = np.zeros((T, N, H), dH_top.dtype)
        dC = np.zeros((T, N, H), dH_top.dtype)
        dpre = {name: np.zeros((T, N, H), dH_top.dtype) for name in pre_names}
        dX = np.zeros((T, N, D_k), dH_top.dtype)
        dW_ih = np.zeros_like(caches[0].W_ih)
        dW_hh = np.zeros_like(caches[0].W_hh)
        db_ih = np.zeros(caches[0].W_ih.shape[0], dH_top.dtype)
        db_hh = np.zeros(caches[0].W_hh.shape[0], dH_top.dtype)
        dh_next = np.zeros((N, H), dH_top.dtype)  # ∂L/∂h_t from step t+1 (none after T−1)
        dc_next = np.zeros((N, H), dH_top.dtype)  # ∂L/∂c_t from step t+1
        for t in reversed(range(T)):
            dh = d_from_above[t] + dh_next  # total ∂L/∂h_t
            cache = caches[t]
            grads: LSTMGrads | GRUGrads | RNNGrads
            if isinstance(cache, LSTMCache):
                grads = lstm_step_backward(dh, dc_next, cache)
                dC[t] = grads.dc
            elif isinstance(cache, GRUCache):
                grads = gru_step_backward(dh, cache)
            else:
                grads = rnn_step_backward(dh, cache)
            dH[t] = dh
            for name in pre_names:
                dpre[name][t] = getattr(grads, "d" + _pre_field(name))
            dX[t] = grads.dx
            dW_ih += grads.dW_ih
            dW_hh += grads.dW_hh
            db_ih += grads.db_ih
            db_hh += grads.db_hh
            if truncate is not None and t > 0 and t % truncate == 0:
                # the state entering t is detached: values carried on, gradients stop
                dh_next = np.zeros((N, H), dH_top.dtype)
                dc_next = np.zeros((N, H), dH_top.dtype)
            else:
                dh_next = grads.dh_prev
                if isinstance(grads, LSTMGrads):
                    dc_next = grads.dc_prev
        dh0[k] = dh_next  # what reached the state entering step 0
        if dc0 is not None:
            dc0[k] = dc_next
        for name, grad in zip(state_dict_names(k), (dW_ih, dW_hh, db_ih, db_hh), strict=True):
            params[name] = grad
        out.insert(0, LayerBackward(dH, dC if lstm else None, dpre))
        d_from_above = dX  # ∂L/∂(this layer's input) = ∂L/∂h_t of the layer below
    ordered = {name: params[name] for k in range(L) for name in state_dict_names(k)}
    return Gradients(out, d_from_above, ordered, dh0, dc0)
