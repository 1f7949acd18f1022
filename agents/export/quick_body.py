"""The usual webhook body checked without building its pydantic model.

Building the schema's model, dumping it and building the stored envelope was a tenth of
the intake's per-request CPU. Almost every body Norce sends is already in the schema's
exact shape: each field of the type it is declared with, no whitespace to strip. For such
a body, :func:`quick_body` returns what ``schema.model_validate(data).model_dump(
mode="json", exclude_unset=True)`` would (declared fields in declaration order, then the
unknown ones as given). For anything else (a missing field, an int sent as a string, a
float field sent as an int, a PartNo with spaces around it) it returns ``None`` and the
caller runs the full model, so rejections and their messages, and coercions, stay the
model's own. A schema with a field of another kind is never taken quickly.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel, StringConstraints

_INT, _OPT_INT, _OPT_STR, _OPT_FLOAT, _ID_STR = range(5)

# Field plans: (name, kind, required)
Plan = tuple[tuple[str, int, bool], ...]


def _kind(annotation: Any, metadata: list[Any]) -> int | None:
    if metadata:
        # Only the PartNo shape: stripped, 1..max chars.
        if annotation is str and len(metadata) == 1:
            c = metadata[0]
            if (
                isinstance(c, StringConstraints)
                and c.strip_whitespace
                and c.min_length == 1
                and c.max_length is not None
                and not (c.to_upper or c.to_lower or c.strict or c.pattern or c.ascii_only)
            ):
                return _ID_STR
        return None
    return {int: _INT, int | None: _OPT_INT, str | None: _OPT_STR, float | None: _OPT_FLOAT}.get(
        annotation
    )


@functools.cache
def plan_of(schema: type[BaseModel]) -> tuple[Plan, int] | None:
    """The schema's fields as quick checks, and the longest id string; ``None`` when a
    field is of a kind the quick check does not know."""
    plan = []
    max_len = 0
    for name, field in schema.model_fields.items():
        kind = _kind(field.annotation, field.metadata)
        if kind is None or (not field.is_required() and field.default is not None):
            return None
        if kind == _ID_STR:
            max_len = field.metadata[0].max_length
        plan.append((name, kind, field.is_required()))
    return tuple(plan), max_len


def _edge_ok(c: str) -> bool:
    # Printable ASCII but space: nothing any whitespace rule would strip.
    return "!" <= c <= "~"


def quick_body(schema: type[BaseModel], data: dict[str, Any]) -> dict[str, Any] | None:
    """The body as the model would dump it, or ``None``: run the model."""
    planned = plan_of(schema)
    if planned is None:
        return None
    plan, max_len = planned
    out: dict[str, Any] = {}
    for name, kind, required in plan:
        if name not in data:
            if required:
                return None
            continue
        value = data[name]
        kind_of = type(value)
        if kind == _INT:
            ok = kind_of is int
        elif kind == _ID_STR:
            ok = (
                kind_of is str
                and 0 < len(value) <= max_len
                and _edge_ok(value[0])
                and _edge_ok(value[-1])
            )
        elif value is None:
            ok = True
        elif kind == _OPT_INT:
            ok = kind_of is int
        elif kind == _OPT_STR:
            ok = kind_of is str
        else:  # _OPT_FLOAT: an int would become a float in the model's dump
            ok = kind_of is float
        if not ok:
            return None
        out[name] = value
    fields = schema.model_fields
    for name, value in data.items():
        if name not in fields:
            out[name] = value  # unknown fields are kept as given (extra="allow")
    return out
