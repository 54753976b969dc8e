"""What a run will cost, from its sizes alone, checked before any work: the response's bytes
in the encoding asked for, and the peak memory of computing and encoding it.

Shapes: T steps, D inputs, H units, L layers, G gate blocks (4 LSTM, 3 GRU, 1 RNN), K readout
outputs. Per layer (and direction, for a bidirectional RNN) the response holds 2 + 2c + g + 2G
arrays of T×H (h; c; the g gates' values; the G pre-activations; ∂L/∂h, ∂L/∂c, ∂L/∂ each
pre-activation; c = 1 for an LSTM), per-step norms, the Jacobian norms (9 per step for an
LSTM: five terms and four flows; one otherwise), and T×T connectivity when asked; then ∂L/∂x
(T×D), every parameter gradient (Σ_k G·H·(D_k + H + 2) per direction, plus K·(H + 1) for a
readout and V·E for an embedding), the readout's outputs (2·T·K) and the initial states'
gradients (L·H·(1 + c)). `response_values` counts them exactly.

Bytes per value: binary 4 or 8 (float32, float64), typed arrays base64 of those (4/3 ×),
JSON at most 16 or 25 characters (the longest shortest-repr of a float32 or float64 and its
separator; the run-of-the-mill value takes 11.6 or 21.3). The peak memory adds the engine's
buffers for every layer (traces, local derivatives, gradients), the Jacobian's transient
products for one layer at a time, the weights and their gradients, the request's numbers as
Python floats, and the response being built (twice over where an encoder copies).
`tests/engine/test_budget.py` measures both against real runs: every estimate is an upper
bound within a small factor.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..contract.encoding import Encoding
from ..core.cells import Cell
from ..core.engine import CONNECTIVITY_BYTES

# the most bytes one value takes in each encoding, by the dtype's itemsize
_PER_VALUE: dict[str, dict[int, float]] = {
    "binary": {4: 4, 8: 8},
    "typed": {4: 16 / 3, 8: 32 / 3},
    "json": {4: 16, 8: 25},
}
_PER_ARRAY = 128  # an array's header: its dotted name, dtype, shape, offsets; alignment
_PER_TOKEN = 12  # a token in JSON: a UTF-8 code point (up to 4 bytes), quotes, comma
_FIXED = 4096  # the response's fixed fields and warnings
_PY_FLOAT = 32  # a number of the parsed request: a Python float and its list slot
_BASE = 8 * 2**20  # what any run allocates besides its arrays (dicts, caches, first imports)
# copies of the body an encoder holds at once: binary the buffer and its bytes; typed the
# arrays' little-endian copies, their base64 and the JSON around it; JSON its text and gzip
_COPIES = {"binary": 2, "typed": 3, "json": 2}


@dataclass(frozen=True)
class Sizes:
    """What a run's cost depends on. K: readout outputs (0 without a readout); request_values:
    the numbers the parsed request holds (inline tensors, values, targets, initial states);
    embedding: V·E, the values of an embedding in front (0 without one)."""

    cell: Cell
    T: int
    D: int
    H: int
    L: int
    K: int = 0
    itemsize: int = 8
    connectivity: bool = False
    request_values: int = 0
    embedding: int = 0  # V·E: an embedding's values (and as many in its gradient)
    directions: int = 1  # 2: bidirectional, every layer two units
    proj: int = 0  # an LSTM's proj_size P (< H): its h arrays are counted H wide all the same
    parts: frozenset[str] | None = None  # the parts the response sends (`fields`); None: all

    def sends(self, part: str) -> bool:
        return self.parts is None or part in self.parts

    @property
    def units(self) -> int:
        """Units: a recurrence each (layers × directions), each with its own arrays."""
        return self.L * self.directions

    @property
    def params(self) -> int:
        """Numbers in the state_dict (and as many in its gradient), a readout's included."""
        G, H, n = self.cell.blocks, self.H, self.directions
        P = self.proj or H
        rnn = n * sum(G * H * ((self.D if k == 0 else n * P) + P + 2) + (P * H if self.proj
                                                                         else 0)
                      for k in range(self.L))
        return rnn + self.K * (n * P + 1) + self.embedding


def _layer_arrays(s: Sizes) -> tuple[dict[str, int], dict[str, int]]:
    """Each part of a layer: how many (T, H) arrays it holds, and how many (T,) ones."""
    c, g, G = int(s.cell.has_cell_state), len(s.cell.gates), s.cell.blocks
    norms = 9 if s.cell.jacobian_terms else 1  # the Jacobian's norms (and an LSTM's flows)
    return {"h": 1, "c": c, "gates": g, "pre": G, "grads": 1 + c + G}, \
        {"grads": 1 + c, "jacobian": norms}


def response_values(s: Sizes) -> int:
    """Every number the /run response holds, exactly (the module docstring): the parts it
    sends."""
    T, H, L = s.T, s.H, s.units
    c = int(s.cell.has_cell_state)
    wide, narrow = _layer_arrays(s)
    per_layer = sum(n * T * H for part, n in wide.items() if s.sends(part))
    per_layer += sum(n * T for part, n in narrow.items() if s.sends(part))
    per_layer += T * T if s.connectivity else 0
    return (L * per_layer + (T * s.D if s.sends("input_grad") else 0)
            + (s.params if s.sends("param_grads") else 0)
            + (2 * T * s.K if s.sends("outputs") else 0)
            + (L * H * (1 + c) if s.sends("initial_state_grad") else 0))


def response_arrays(s: Sizes) -> int:
    """How many arrays the response holds (each costs a header in binary and typed)."""
    wide, narrow = _layer_arrays(s)
    per_layer = sum(n for part, n in (*wide.items(), *narrow.items()) if s.sends(part))
    return s.units * (per_layer + s.connectivity + 4) + 5


def response_bytes(s: Sizes, encoding: Encoding) -> int:
    """An upper bound of the response body's bytes (before any gzip)."""
    values = response_values(s) * _PER_VALUE[encoding][s.itemsize]
    return int(values + response_arrays(s) * _PER_ARRAY + s.T * _PER_TOKEN + 4 * s.D + _FIXED)


def jacobian_response_bytes(s: Sizes, encoding: Encoding) -> int:
    """An upper bound of a /jacobian response's bytes: the H×H total, and an LSTM's four
    terms beside it."""
    matrices = 5 if s.cell.jacobian_terms else 1
    values = matrices * s.H * s.H * _PER_VALUE[encoding][s.itemsize]
    return int(values + matrices * _PER_ARRAY + _FIXED)


def batch_peak_bytes(sizes: list[Sizes], encoding: Encoding | None) -> int:
    """An upper bound of a batch's peak memory: every sequence's engine buffers and
    responses at once (run together, then encoded together), the fixed cost once."""
    if not sizes:
        return 0
    each = sum(peak_bytes(s, encoding) - _BASE for s in sizes)
    return each + _BASE


def peak_bytes(s: Sizes, encoding: Encoding | None) -> int:
    """An upper bound of the memory a run takes at its peak, and its encoding into
    `encoding` (None: the in-process result only, NumPy arrays)."""
    T, H, L, G, b = s.T, s.H, s.units, s.cell.blocks, s.itemsize
    TH, GTH = T * H, s.cell.blocks * T * H
    # kept for every layer until the result is encoded: the trace (pre, act; h, c, tanh_c),
    # local derivatives (up to 5 T×H), gradients (dA, dH, dC), the input projection's copy
    per_layer = 4 * GTH + 10 * TH + T * max(s.D, H)
    # transient, one layer at a time: the Jacobian's pairwise products (P = 6 pairs of
    # factors at most: H×H each, stacked, and T×P·H), the local derivatives' temporaries
    pairs = 6 if G > 1 else 1
    transient = 2 * pairs * H * H + pairs * TH + 4 * TH + GTH
    engine = (L * per_layer + transient + 3 * s.params) * b
    if s.connectivity:  # a chunk of backward passes at once (engine.connectivity), the map
        # engine.connectivity's chunk: every unit's dA, dH, dC, the input's gradient
        per_output = T * (s.units * (G + 2) * H + s.D + s.directions * H) * b
        engine += min(T * per_output, 2 * CONNECTIVITY_BYTES) + 2 * T * T * b + 6 * TH * b
    fixed = _BASE + s.request_values * _PY_FLOAT
    if encoding is None:
        return engine + fixed
    return engine + fixed + _COPIES[encoding] * response_bytes(s, encoding)
