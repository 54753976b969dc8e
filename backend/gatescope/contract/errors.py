"""Errors a request can meet after its schema validated, in pydantic's own form.

A size that only the data reveals (a character outside the vocab, a tensor of the wrong
shape, T·H·L over the limit) raises the same `pydantic.ValidationError` a schema check does,
with `loc` naming the field, so every caller — Python, CLI, REST — sees one kind of error.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError


class ModelNotFoundError(LookupError):
    """A model_id that names no stored or bundled model."""


def error_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """The errors as plain JSON: {"loc", "msg", "type"} each — never the input back, which
    may be megabytes."""
    return [{"loc": [part for part in e["loc"] if not _union_member(part)], "msg": e["msg"],
             "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False, include_context=False)]


def _union_member(part: str | int) -> bool:
    """pydantic names the union member it tried in `loc` ("list[float]"); a client needs
    the field's path, not our type names."""
    return isinstance(part, str) and "[" in part


def invalid(loc: tuple[str | int, ...], message: str, value: Any = None,
            kind: str = "invalid_request") -> ValidationError:
    """A ValidationError for one field. `message` should name the limit or the fix."""
    detail = InitErrorDetails(
        type=PydanticCustomError(kind, "{message}", {"message": message}),
        loc=loc,
        input=value,
    )
    return ValidationError.from_exception_data("gatescope request", [detail])
