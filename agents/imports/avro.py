"""Avro in the Confluent wire format: parse writer schemas, read values and keys.

The wire format (https://docs.confluent.io/platform/current/schema-registry/fundamentals/serdes-develop/index.html#wire-format),
as Debezium's ``io.confluent.connect.avro.AvroConverter`` and Apicurio's ccompat converter
write it::

    byte 0      magic byte 0
    bytes 1-4   schema id, big-endian unsigned
    bytes 5-    the Avro binary encoding of the datum (no container, no header)

The body is read with fastavro's ``schemaless_reader`` against the writer schema (no
reader schema: no resolution step). Values come out as the JSON converter writes them,
so everything after the decode is the JSON path's code:

- nullable unions (``["null", {...}]``) are the value or None;
- logical types other than ``decimal`` are read as their underlying type (dates as days,
  timestamps as epoch numbers, uuids as text), as Debezium's JSON carries them;
- ``decimal`` (Kafka Connect ``Decimal``) becomes a JSON number (int when whole, else
  float), as the JSON path decodes it with the schema wrapper; so does Debezium's
  ``VariableScaleDecimal`` record ``{scale, value}``; other ``bytes``/``fixed`` values
  become base64 text, as the JSON converter writes them.

Those conversions walk the datum only for schemas that have such a type (``AvroSchema.
convert``); most have none, and then the datum is used as fastavro returns it.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from io import BytesIO
from typing import Any, NamedTuple

from fastavro import parse_schema, schemaless_reader

from agents.config.mapping import decimal_to_number
from streams.records import PipelineError

__all__ = ["AvroSchema", "WireFormatError", "parse", "read", "schema_id"]

MAGIC = 0
HEADER = 5
_KEEP_LOGICAL = frozenset(("decimal",))
_CONVERTED = frozenset(("bytes", "fixed"))
_VARIABLE_DECIMAL_FIELDS = frozenset(("scale", "value"))


class WireFormatError(PipelineError):
    """Not wire-format Avro, or a body its schema cannot read (stage ``decode``)."""

    def __init__(self, reason: str) -> None:
        super().__init__("decode", reason)


class AvroSchema(NamedTuple):
    parsed: Any  # fastavro's parsed schema
    convert: bool  # whether read datums need the bytes/decimal walk


def _strip(node: Any) -> tuple[Any, bool]:
    """``node`` without the logical types kept raw, and whether it has a converted type."""
    if isinstance(node, list):
        parts = [_strip(n) for n in node]
        return [p[0] for p in parts], any(p[1] for p in parts)
    if isinstance(node, str):
        return node, node in _CONVERTED
    if not isinstance(node, dict):
        return node, False
    out: dict[str, Any] = {}
    convert = False
    for name, value in node.items():
        if name == "logicalType" and value not in _KEEP_LOGICAL:
            continue
        if name in ("type", "items", "values", "fields"):
            value, inner = _strip(value)
            convert = convert or inner
        out[name] = value
    return out, convert


def parse(schema: Any) -> AvroSchema:
    """Parse a writer schema (the registry's JSON); raises ``ValueError`` when invalid."""
    stripped, convert = _strip(schema)
    try:
        parsed = parse_schema(stripped, _write_hint=False)
    except Exception as exc:  # fastavro raises SchemaParseException, KeyError, ...
        raise ValueError(f"is not a valid Avro schema: {type(exc).__name__}: {exc}") from None
    return AvroSchema(parsed, convert)


def schema_id(data: bytes | None) -> int | None:
    """The schema id of a wire-format message; None when ``data`` is not one."""
    if data is None or len(data) < HEADER or data[0] != MAGIC:
        return None
    return int.from_bytes(data[1:HEADER], "big")


def read(data: bytes, schemas: dict[int, AvroSchema], missing: Any, what: str) -> Any:
    """The datum of one wire-format message. ``schemas``: the cache by id;
    ``missing(id)``: the reason an id is not in it. Raises ``WireFormatError``."""
    if len(data) < HEADER or data[0] != MAGIC:
        raise WireFormatError(
            f"{what} is not Avro in the Confluent wire format (magic byte 0, 4-byte schema id)"
        )
    sid = int.from_bytes(data[1:HEADER], "big")
    schema = schemas.get(sid)
    if schema is None:
        raise WireFormatError(f"{what}: {missing(sid)}")
    stream = BytesIO(data)
    stream.seek(HEADER)
    try:
        datum = schemaless_reader(stream, schema.parsed, None)
    except Exception as exc:  # EOFError, IndexError, UnicodeDecodeError, ...
        raise WireFormatError(
            f"{what} does not match its schema id {sid}: {type(exc).__name__}: {exc}"
        ) from None
    if stream.tell() != len(data):
        raise WireFormatError(
            f"{what} has {len(data) - stream.tell()} bytes left over after schema id {sid}"
        )
    return _convert(datum) if schema.convert else datum


def _convert(value: Any) -> Any:
    if isinstance(value, dict):
        if (
            value.keys() == _VARIABLE_DECIMAL_FIELDS
            and isinstance(value["value"], bytes)
            and type(value["scale"]) is int
        ):  # io.debezium.data.VariableScaleDecimal
            unscaled = int.from_bytes(value["value"], "big", signed=True)
            return decimal_to_number(Decimal(unscaled).scaleb(-value["scale"]))
        return {k: _convert(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return decimal_to_number(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_convert(v) for v in value]
    return value
