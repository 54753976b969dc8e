"""docs/API.md is the contract: every name the OpenAPI document gives must be in it.

The OpenAPI document is built from the app itself (`create_app(...).openapi()`, no server,
no worker processes), and every name it holds is looked for in docs/API.md as code — an
inline code span whose whole text is the name (`` `h` ``), never a substring of a word:

    every property of every component schema, nested ones included (properties, and
    whatever anyOf / oneOf / allOf / items / additionalProperties / not hold)
    every enum and const value of those schemas (cell names, dtypes, gate targets, …)
    every discriminator value (the loss union's `type`s)
    every path, and per operation a section whose heading names it (`POST /api/v1/run`)
        holding each of its response status codes (`422`), its parameters (`encoding`)
        with their enum values (`binary`), its response headers and its media types

A failure lists every missing name and where the OpenAPI document names it. What it
cannot tell: a schema's name found elsewhere in the doc counts (`h` of one table stands in
for `h` of another); only the operations' names are looked for in their own sections.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatescope.api import create_app
from gatescope.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"
METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
NESTED = ("anyOf", "oneOf", "allOf", "items", "additionalProperties", "not", "prefixItems")

Need = tuple[str, str]  # (name, where the OpenAPI document names it)


# ── the document's code ──────────────────────────────────────────────────────────────

def _without_fences(text: str) -> str:
    """The Markdown outside fenced code blocks (inline code spans are looked for there)."""
    return re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.M | re.S)


def code_spans(text: str) -> set[str]:
    """The text of every inline code span, stripped: `` `h` `` → "h"; a span written with
    double backticks (to hold a backtick) counts too."""
    spans = re.findall(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", _without_fences(text), flags=re.S)
    return {body.strip() for _, body in spans}


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body up to the next heading of the same or a higher level), for every
    heading, outside fenced code."""
    text = _without_fences(text)
    heads = list(re.finditer(r"^(#{1,6})[ \t]+(.*)$", text, flags=re.M))
    out = []
    for k, m in enumerate(heads):
        level = len(m.group(1))
        end = len(text)
        for later in heads[k + 1:]:
            if len(later.group(1)) <= level:
                end = later.start()
                break
        out.append((m.group(2), text[m.end():end]))
    return out


# ── the OpenAPI document's names ─────────────────────────────────────────────────────

def schema_names(schema: Any, where: str) -> Iterator[Need]:
    """Property names, enum and const values, and discriminator values, recursively."""
    if isinstance(schema, list):
        for k, item in enumerate(schema):
            yield from schema_names(item, f"{where}[{k}]")
        return
    if not isinstance(schema, dict):
        return
    for name, sub in (schema.get("properties") or {}).items():
        yield name, f"{where}.{name}"
        yield from schema_names(sub, f"{where}.{name}")
    for value in schema.get("enum") or []:
        if isinstance(value, str):
            yield value, f"{where} (enum)"
    if isinstance(schema.get("const"), str):
        yield schema["const"], f"{where} (const)"
    for value in (schema.get("discriminator") or {}).get("mapping") or {}:
        yield value, f"{where} (discriminator)"
    for key in NESTED:
        if key in schema:
            yield from schema_names(schema[key], f"{where}.{key}")


def operations(openapi: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in openapi["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def operation_names(op: dict[str, Any], where: str) -> Iterator[Need]:
    """What one operation names: its status codes, parameters and their enum values,
    response headers, and the media types of its body and responses."""
    for param in op.get("parameters", []):
        yield param["name"], f"{where} parameter ({param['in']})"
        for value in param.get("schema", {}).get("enum") or []:
            yield str(value), f"{where} parameter {param['name']} (enum)"
    for media in (op.get("requestBody") or {}).get("content") or {}:
        yield media, f"{where} request body"
    for status, response in op["responses"].items():
        yield status, f"{where} response"
        for header in response.get("headers") or {}:
            yield header, f"{where} response {status} header"
        for media in response.get("content") or {}:
            yield media, f"{where} response {status}"


@pytest.fixture(scope="module")
def openapi(tmp_path_factory) -> dict[str, Any]:
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("doc"), compute_processes=1))
    return app.openapi()


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _missing(needs: list[Need], have: set[str]) -> list[str]:
    """One line per missing name, with every place the OpenAPI document names it."""
    places: dict[str, list[str]] = {}
    for name, where in needs:
        if name not in have:
            places.setdefault(name, []).append(where)
    return [f"`{name}`  ({', '.join(wheres)})" for name, wheres in places.items()]


def _report(missing: list[str], what: str) -> str:
    return (f"{len(missing)} name(s) {what} are not in docs/API.md as code (`name`):\n  "
            + "\n  ".join(missing))


# ── the tests ────────────────────────────────────────────────────────────────────────

def test_every_schema_name_is_in_the_doc(openapi, doc):
    needs = [need for name, schema in openapi["components"]["schemas"].items()
             for need in schema_names(schema, name)]
    assert len(needs) > 150  # the walk found the schemas' names at all
    missing = _missing(needs, code_spans(doc))
    assert not missing, _report(missing, "of the component schemas")


def test_every_loss_type_is_in_the_doc(openapi, doc):
    loss = openapi["components"]["schemas"]["RunRequest"]["properties"]["loss"]
    types = sorted(loss["discriminator"]["mapping"])
    assert {"last_hidden_sum", "hidden_unit", "mse", "cross_entropy", "task"} <= set(types)
    missing = _missing([(t, "RunRequest.loss (discriminator)") for t in types],
                       code_spans(doc))
    assert not missing, _report(missing, "of the loss union")


def test_every_path_is_in_the_doc(openapi, doc):
    have = code_spans(doc)
    needs = [(path, "paths") for path in openapi["paths"]]
    missing = [f"`{path}` or `{method} {path}`  (paths)"
               for method, path, _ in operations(openapi)
               if path not in have and f"{method} {path}" not in have]
    assert len(needs) >= 5
    assert not missing, _report(missing, "of the paths")


def test_each_operation_has_a_section_with_its_codes_and_parameters(openapi, doc):
    """The section headed `METHOD path` holds that operation's status codes, parameters,
    headers and media types; so a status code counts only where it belongs."""
    by_heading: dict[str, set[str]] = {}
    for heading, body in sections(doc):
        for span in code_spans(heading):
            by_heading.setdefault(span, set()).update(code_spans(heading + "\n" + body))
    missing = []
    for method, path, op in operations(openapi):
        label = f"{method} {path}"
        if label not in by_heading:
            missing.append(f"a heading naming `{label}`  (paths.{path}.{method.lower()})")
            continue
        missing += _missing(list(operation_names(op, label)), by_heading[label])
    assert not missing, _report(missing, "of the operations (each in its own section)")


def test_the_checks_can_fail():
    """The matching is by whole code spans, not substrings, and fenced code does not count."""
    text = "Use `h_norm` and `{\"h\": 1}`.\n\n```json\n`h`\n```\n\n## `GET /x`\n`200`\n## Next\n"
    assert "h" not in code_spans(text)
    assert {"h_norm", '{"h": 1}', "GET /x", "200"} <= code_spans(text)
    assert sections(text)[0] == ("`GET /x`", "\n`200`\n")
    names = list(schema_names({"properties": {"a": {"anyOf": [
        {"items": {"properties": {"b": {"enum": ["x"]}}}}]}}}, "S"))
    assert [n for n, _ in names] == ["a", "b", "x"]


def test_the_docs_links_stay_in_the_repository(doc):
    """The contract lives in the repository: every relative link names a file in it (no
    tracked file names a path outside it: tests/test_repository.py)."""
    assert "file://" not in doc
    links = re.findall(r"\]\(([^)\s]+)", doc)
    for link in links:
        if re.match(r"^[a-z]+://", link) or link.startswith("#"):
            continue
        target = (DOC.parent / link.split("#")[0]).resolve()
        root = DOC.parents[1].resolve()
        assert target.is_relative_to(root), f"link {link!r} leaves the repository"
        assert target.exists(), f"link {link!r} names no file in the repository"


def test_the_connectivity_cap_is_stated_as_the_code_checks_it(doc):
    """Every statement of connectivity's cost cap names the product runner/prepare.py checks,
    T²·H²·L, and its number (an older T²·H·L cap outlived its code in three places once)."""
    from gatescope.contract.limits import MAX_CONNECTIVITY_COST, MAX_CONNECTIVITY_STEPS

    caps = re.findall(r"T ≤ (\d+),? and T²·(H²?)·L ≤ ([\d,]+)|T ≤ (\d+), T²·(H²?)·L ≤ ([\d,]+)",
                      doc)
    stated = [tuple(part for part in cap if part) for cap in caps]
    assert len(stated) >= 4, "the doc states connectivity's cap in its table, text and checks"
    want = (str(MAX_CONNECTIVITY_STEPS), "H²", f"{MAX_CONNECTIVITY_COST:,}")
    assert all(cap == want for cap in stated), stated


def test_every_setting_is_in_the_doc_with_its_default(doc):
    """docs/API.md's table of GATESCOPE_* variables names every Settings field, with the
    default the code has (paths, which depend on the machine, are described, not quoted)."""
    from gatescope.settings import Settings

    rows = dict(re.findall(r"^\| `GATESCOPE_(\w+)` \| ([^|]+) \|", doc, re.M))
    defaults = Settings()
    missing = [name for name in Settings.model_fields if name.upper() not in rows]
    assert not missing, f"settings not in docs/API.md's table: {missing}"
    for name in Settings.model_fields:
        quoted = re.match(r"`([^`]*)`", rows[name.upper()].strip())
        if quoted is None or name.endswith("_dir"):
            continue
        value = getattr(defaults, name)
        stated = type(value)(quoted.group(1)) if isinstance(value, (int, float)) else value
        if isinstance(value, list):
            stated = [] if quoted.group(1) == "[]" else quoted.group(1)
        assert stated == value, (f"GATESCOPE_{name.upper()}: the doc says {quoted.group(1)}, "
                                 f"the code {value}")
