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
MAX_CONNECTIVITY_STEPS = 512
# one backward pass per output step: the cost grows as T²·H·L (T = 256, H = 128: 0.4 s)
MAX_CONNECTIVITY_WORK = 512 * 512 * 128


@dataclass(frozen=True)
class Limits:
    """One server's limits, at most the contract's."""

    max_steps: int = MAX_STEPS
    max_hidden: int = MAX_HIDDEN
    max_input: int = MAX_INPUT
    max_layers: int = MAX_LAYERS
    max_work: int = MAX_WORK
    max_classes: int = MAX_CLASSES
