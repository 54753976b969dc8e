"""A batch: `input.batch`'s sequences run together, each result what a run of that sequence
alone returns, and their parameter gradients summed (`param_grads_total`).

    run_batch(request) → BatchResult

Each sequence is prepared on its own (its input, its loss — `losses` gives each its own —
checked as a single run's, errors at ["input", "batch", n, …] and ["losses", n, …]); the
batch's budget is the sum of theirs. Sequences of one length and one loss layer run as one
batch of N through the engine (pipeline.run_together); different lengths run as separate
groups, so nothing is padded and every result is exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from ..contract.encoding import Encoding
from ..contract.errors import invalid
from ..contract.limits import Limits
from ..contract.results import BatchResult, RunResult, overflow_warnings
from ..contract.schemas import Input, RunRequest
from ..core import engine
from ..core.inputs import default_vocab
from ..core.params import StateDict
from ..models.stored import ModelSource
from .budget import batch_peak_bytes, response_bytes
from .pipeline import run_together
from .prepare import Prepared, parse, prepare


def run_batch(request: RunRequest | Mapping[str, Any], *, models: ModelSource | None = None,
              limits: Limits | None = None, encoding: Encoding | None = None,
              checkpoint: engine.Checkpoint = engine.no_checkpoint) -> BatchResult:
    """Every sequence of `input.batch` through the engine, together where they can be.
    Raises pydantic.ValidationError naming the field (the sequence's index among them)."""
    req = parse(request, RunRequest)
    limits = limits or Limits()
    seqs = req.input.batch
    if seqs is None:
        raise invalid(("input", "batch"), "run_batch takes a request whose input is a batch; "
                      "a single sequence is gatescope.run's", None)
    if len(seqs) > limits.max_batch:
        raise invalid(("input", "batch"), f"the batch has {len(seqs)} sequences, over this "
                      f"server's limit of {limits.max_batch} (GATESCOPE_MAX_BATCH)", None)
    if req.connectivity:
        raise invalid(("connectivity",), "connectivity is computed for one sequence at a "
                      "time: send those runs one by one", True)
    losses = req.losses or [req.loss] * len(seqs)
    # texts without a vocab share one, all their characters: one model reads them all
    shared = default_vocab("".join(s.text for s in seqs if s.text is not None and
                                   s.vocab is None)) or None
    first = _prepare(req, 0, seqs[0], losses[0], models, limits, shared, None)
    # the other sequences share its weights: drawn or converted once for the batch
    prepared = [first] + [_prepare(req, n, seq, losses[n], models, limits, shared,
                                   first.params) for n, seq in enumerate(seqs) if n > 0]
    D = prepared[0].sizes[1]
    for n, p in enumerate(prepared):
        if p.sizes[1] != D:
            raise invalid(("input", "batch", n), f"sequence {n} has input size {p.sizes[1]} "
                          f"but sequence 0 has {D}: every sequence of a batch goes into one "
                          "model", None)
    _check_budget(prepared, limits, encoding)
    results: list[RunResult | None] = [None] * len(prepared)
    groups: dict[tuple[int, int | None], list[int]] = {}
    for n, p in enumerate(prepared):  # one length, one loss layer: one engine batch
        groups.setdefault((p.sizes[0], p.objective.layer), []).append(n)
    for members in groups.values():
        for n, result in zip(members, run_together([prepared[n] for n in members],
                                                   checkpoint), strict=True):
            results[n] = result
    done = [r for r in results if r is not None]
    total = None
    if all(r.param_grads is not None for r in done):
        total = {name: sum((r.param_grads[name] for r in done[1:]),  # type: ignore[index]
                           start=done[0].param_grads[name].copy())  # type: ignore[index]
                 for name in done[0].param_grads or {}}
    # a sum may overflow where no sequence did
    return BatchResult(done, total, overflow_warnings({"param_grads_total": total or {}}))


def _prepare(req: RunRequest, n: int, seq: Any, loss: Any, models: ModelSource | None,
             limits: Limits, text_vocab: str | None, params: StateDict | None) -> Prepared:
    """Sequence n as a run of its own; its errors' loc says which sequence."""
    sub = req.model_copy(update={
        "input": Input(**{k: getattr(seq, k) for k in ("text", "vocab", "values", "tokens")
                          if getattr(seq, k) is not None}),
        "loss": loss, "losses": None})
    try:
        return prepare(sub, models, limits, None, text_vocab, params)
    except ValidationError as exc:
        raise _in_sequence(exc, n, req.losses is not None) from None


def _in_sequence(exc: ValidationError, n: int, own_loss: bool) -> ValidationError:
    """The errors of sequence n's run, at ["input", "batch", n, …] (its input) and
    ["losses", n, …] (its own loss)."""
    details = []
    for e in exc.errors(include_url=False, include_context=False):
        loc = tuple(e["loc"])
        if loc[:1] == ("input",):
            loc = ("input", "batch", n, *loc[1:])
        elif loc[:1] == ("loss",) and own_loss:
            loc = ("losses", n, *loc[1:])
        details.append(InitErrorDetails(
            type=PydanticCustomError(e["type"], "{message}",
                                     {"message": f"sequence {n}: {e['msg']}"}),
            loc=loc, input=None))
    return ValidationError.from_exception_data("gatescope request", details)


def _check_budget(prepared: list[Prepared], limits: Limits, encoding: Encoding | None
                  ) -> None:
    """The batch's response (every sequence's, summed) and its peak memory within the
    server's budgets; each sequence passed its own already."""
    sizes = [p.cost for p in prepared if p.cost is not None]
    # param_grads_total: one more copy of every parameter gradient, when they are sent
    total = replace(sizes[0], parts=frozenset({"param_grads"}), connectivity=False) \
        if sizes and sizes[0].sends("param_grads") and prepared[0].request.backward else None
    if encoding is not None:
        body = sum(response_bytes(s, encoding) for s in sizes)
        body += 0 if total is None else response_bytes(total, encoding)
        if body > limits.max_response_bytes:
            raise invalid(("input", "batch"), f"the batch's {encoding} response would be "
                          f"about {body / 2**20:,.0f} MiB, over this server's budget of "
                          f"{limits.max_response_bytes / 2**20:,.0f} MiB "
                          "(GATESCOPE_MAX_RESPONSE_BYTES): send fewer sequences at a time"
                          + ("" if encoding == "binary" else ", or ?encoding=binary"), None,
                          "over_budget")
    peak = batch_peak_bytes(sizes if total is None else [*sizes, total], encoding)
    if peak > limits.max_memory_bytes:
        raise invalid(("input", "batch"), f"the batch would take about {peak / 2**20:,.0f} "
                      f"MiB of memory, over this server's budget of "
                      f"{limits.max_memory_bytes / 2**20:,.0f} MiB "
                      "(GATESCOPE_MAX_MEMORY_BYTES): send fewer sequences at a time", None,
                      "over_budget")


__all__ = ["run_batch"]
