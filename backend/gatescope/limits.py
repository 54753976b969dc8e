"""The contract's limits (../shared/API.md). The schema carries them as field constraints
(so the OpenAPI document shows them); a server may lower them with GATESCOPE_MAX_* and
`Limits.check` enforces what it sets. Raising them above the schema's would need a schema
built per server; gatescope does not do that (README, "Limits")."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import invalid

MAX_STEPS = 4096  # T
MAX_HIDDEN = 1024  # H
MAX_INPUT = 1024  # D
MAX_LAYERS = 4  # L
MAX_WORK = 2_097_152  # T·H·L
MAX_CLASSES = 1024  # K, the outputs of a readout (readout.weight is K×H)


@dataclass(frozen=True)
class Limits:
    max_steps: int = MAX_STEPS
    max_hidden: int = MAX_HIDDEN
    max_input: int = MAX_INPUT
    max_layers: int = MAX_LAYERS
    max_work: int = MAX_WORK
    max_classes: int = MAX_CLASSES

    def check(self, T: int, D: int, H: int, L: int) -> None:
        """Raise a ValidationError naming the field of the first size over its limit."""
        if self.max_steps < T:
            raise invalid(("input",), f"the sequence has {T} steps, over the limit of "
                          f"{self.max_steps}", T)
        if self.max_input < D:
            raise invalid(("input",), f"the input size D is {D}, over the limit of "
                          f"{self.max_input}", D)
        if self.max_hidden < H:
            raise invalid(("hidden_size",), f"hidden_size {H} is over the limit of "
                          f"{self.max_hidden}", H)
        if self.max_layers < L:
            raise invalid(("num_layers",), f"num_layers {L} is over the limit of "
                          f"{self.max_layers}", L)
        if self.max_work < T * H * L:
            raise invalid(("input",), f"steps × hidden_size × num_layers = {T}×{H}×{L} = "
                          f"{T * H * L:,} is over the limit of {self.max_work:,}; use a "
                          "shorter sequence, fewer units or fewer layers", T * H * L)
