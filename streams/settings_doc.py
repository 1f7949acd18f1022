"""The settings table of the README, generated from :class:`streams.settings.Settings`:
one row per field with its environment variable, type, default and description."""

from __future__ import annotations

import contextlib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from streams.settings import ENV_PREFIX, PROJECT_ROOT, Settings

START = "<!-- settings-table:start (tools/settings_table.py) -->"
END = "<!-- settings-table:end -->"


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(annotation) if a is not type(None))
    if annotation is SecretStr:
        return "secret"
    return getattr(annotation, "__name__", str(annotation))


def default_text(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        # never print a secret
        return "(empty)" if not value.get_secret_value() else "(hidden)"
    if isinstance(value, Path) and value.is_absolute():
        with contextlib.suppress(ValueError):  # outside the project: shown as it is
            value = value.relative_to(PROJECT_ROOT)
    if value == "":
        return '`""`'
    return f"`{value}`"


def settings_rows(model: type[BaseModel] = Settings) -> list[tuple[str, str, str, str]]:
    return [
        (
            f"`{ENV_PREFIX}{name.upper()}`",
            type_name(field.annotation),
            default_text(field),
            (field.description or "").replace("|", "\\|").replace("\n", " "),
        )
        for name, field in model.model_fields.items()
    ]


def settings_table(model: type[BaseModel] = Settings) -> str:
    lines = ["| variable | type | default | description |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in settings_rows(model)]
    return "\n".join(lines)


def replace_table(text: str, table: str) -> str:
    """``text`` with the table between the markers replaced (ValueError without them)."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"markers {START!r} ... {END!r} not found")
    return text[: start + len(START)] + "\n" + table + "\n" + text[end:]
