"""Sync-config helpers the unit tests share: the example config, a binding with some
settings changed, and one conversion of the mapping language applied to a value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.config.mapping import Mapper
from agents.config.sync_config import InputBinding

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"


def with_changes(binding: InputBinding, **changes: Any) -> InputBinding:
    data = binding.model_dump(by_alias=True)
    data.update(changes)
    return InputBinding.model_validate(data)


def convert(conversion: str | list[str], value: Any) -> Any:
    return Mapper({"Out": {"from": "col", "convert": conversion}})({"col": value})["Out"]
