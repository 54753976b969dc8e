"""A request run end to end: `prepare` checks it against its data (prepare.py), the engine
runs it, the loss is evaluated (objective.py) and the diagnostics are gathered into a
RunResult (pipeline.py)."""

from .batch import run_batch
from .pipeline import jacobian, run

__all__ = ["jacobian", "run", "run_batch"]
