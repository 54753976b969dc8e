"""The contract's limits (docs/API.md, "Limits"). The schema carries them as field
constraints, so the OpenAPI document shows them; a server may lower them with
GATESCOPE_MAX_* (`Limits`), and runner/prepare.py checks a request against what it sets.
Raising them above the schema's would need a schema built per server; gatescope does not
do that (README, "Limits")."""

from __future__ import annotations

from dataclasses import dataclass

MAX_STEPS = 4096  # T
MAX_HIDDEN = 1024  # H
MAX_INPUT = 1024  # D
MAX_LAYERS = 4  # L
MAX_WORK = 2_097_152  # T·H·L
MAX_CLASSES = 1024  # K, the outputs of a readout (readout.weight is K×H)
MAX_VOCAB = 65536  # V, an embedding's rows: token ids 0 … V − 1
MAX_BATCH = 64  # sequences in one request's input.batch
MAX_CONNECTIVITY_STEPS = 512
# one backward pass per output step, each of T steps of (1, H) × (H, G·H) products: the
# cost grows as T²·H²·L (T = 256, H = 128, L = 1: 0.4 s here); at most 4× that
MAX_CONNECTIVITY_COST = 512 * 512 * 128 * 128
# a run's budget, checked from its sizes before any work (runner/budget.py)
MAX_RESPONSE_BYTES = 256 * 2**20  # the response body, in the encoding asked for
MAX_MEMORY_BYTES = 2**30  # the peak memory of computing and encoding it


@dataclass(frozen=True)
class Limits:
    """One server's limits: the sizes at most the contract's; the budgets as it sets them."""

    max_steps: int = MAX_STEPS
    max_hidden: int = MAX_HIDDEN
    max_input: int = MAX_INPUT
    max_layers: int = MAX_LAYERS
    max_work: int = MAX_WORK
    max_classes: int = MAX_CLASSES
    max_batch: int = MAX_BATCH
    max_response_bytes: int = MAX_RESPONSE_BYTES
    max_memory_bytes: int = MAX_MEMORY_BYTES
