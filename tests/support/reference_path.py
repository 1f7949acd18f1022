"""The reference record path the fused hot path is checked against (tests only).

Production decodes and maps in one step (``agents.imports.cdc.decode_mapped`` /
``decoder_for``) into ``Mapped`` tuples. This module keeps the slower two-step path with
pydantic records, written plainly, so tests can compare the two on every case:

- ``decode(value, key, binding) -> ChangeEvent | None``: one message, decoded;
- ``to_mapped(change, binding) -> MappedChange``: that change as a Norce row;
- ``reference_mapped(value, key, binding) -> Mapped | None``: both, as a ``Mapped``.

It imports the private format parser of ``agents.imports.cdc`` (``_parser``): the
reference shares the parsing, and checks what the fused path adds on top (one compiled
closure per binding, no records, the hook context, version keys).
"""

from __future__ import annotations

from typing import Any

from agents.config.mapping import key_function, map_for_import
from agents.config.sync_config import InputBinding
from agents.imports.cdc import _parser
from streams.records import ChangeEvent, Kind, Mapped, Record, Version


class MappedChange(Record):
    """A change as a Norce row. ``key`` is the Norce match key, values joined by ``|``."""

    source: str
    kind: Kind
    key: str
    state_key: str
    version: Version
    row: dict[str, Any]
    deleted: bool = False

    @staticmethod
    def make_state_key(source: str, kind: str, key: str) -> str:
        return f"{source}|{kind}|{key}"


def decode(value: bytes | None, key: bytes | None, binding: InputBinding) -> ChangeEvent | None:
    """Decode one Kafka message of ``binding``'s topic; None for a tombstone."""
    if value is None:
        return None
    parts = _parser(binding)(value, key)
    if parts is None:
        return None
    op, ts_ms, position, row, deleted, source_key, _history = parts
    return ChangeEvent.trusted(
        source=binding.source,
        kind=binding.kind,
        source_key=source_key,
        op=op,
        version=Version.of([ts_ms, *position]),
        row=row,
        deleted=deleted,
    )


def to_mapped(change: ChangeEvent, binding: InputBinding) -> MappedChange:
    """Map a decoded change with its binding's compiled mapping. Raises ``MappingError``."""
    key, row = map_for_import(
        binding.mapper, key_function(binding), change.row, change.deleted, change
    )
    return MappedChange.trusted(
        source=change.source,
        kind=change.kind,
        key=key,
        state_key=MappedChange.make_state_key(change.source, change.kind, key),
        version=change.version,
        row=row,
        deleted=change.deleted,
    )


def reference_mapped(
    value: bytes | None, key: bytes | None, binding: InputBinding
) -> Mapped | None:
    """``to_mapped(decode(value, key, binding), binding)`` in the fused path's shape."""
    change = decode(value, key, binding)
    if change is None:
        return None
    mapped = to_mapped(change, binding)
    version = mapped.version
    return Mapped(mapped.state_key, version.sort_key, version.as_list(), mapped.row, mapped.deleted)
