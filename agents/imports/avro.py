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

Those conversions follow a plan built once per schema (``AvroSchema.convert``) that walks
only the fields holding such a type (in a Debezium envelope: the decimal columns of
``before``/``after``, never ``source``); a schema without any has no plan, and the datum
is used as fastavro returns it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from decimal import Decimal
from io import BytesIO
from typing import Any, NamedTuple

from fastavro import parse_schema, schemaless_reader

from agents.config import numbers
from agents.config.mapping import decimal_to_number
from streams.records import PipelineError

__all__ = ["AvroSchema", "WireFormatError", "parse", "read", "schema_id"]

MAGIC = 0
HEADER = 5
_KEEP_LOGICAL = frozenset(("decimal",))
_CONVERTED = frozenset(("bytes", "fixed"))
_VARIABLE_DECIMAL = "io.debezium.data.VariableScaleDecimal"
_PRIMITIVES = frozenset(
    ("null", "boolean", "int", "long", "float", "double", "bytes", "string", "fixed", "enum")
)


class WireFormatError(PipelineError):
    """Not wire-format Avro, or a body its schema cannot read (stage ``decode``)."""

    def __init__(self, reason: str) -> None:
        super().__init__("decode", reason)


class AvroSchema(NamedTuple):
    parsed: Any  # fastavro's parsed schema
    convert: Callable[[Any], Any] | None  # the bytes/decimal conversions, None: none needed


def _strip(node: Any) -> Any:
    """``node`` without the logical types that are read raw."""
    if isinstance(node, list):
        return [_strip(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for name, value in node.items():
        if name == "logicalType" and value not in _KEEP_LOGICAL:
            continue
        if name in ("type", "items", "values"):
            value = _strip(value)
        elif name == "fields" and isinstance(value, list):
            value = [_strip(f) for f in value]
        out[name] = value
    return out


# --- conversion plans ----------------------------------------------------------------------
#
# Built once per schema: a function per type that needs a conversion, None where nothing
# does, so a datum is walked only along the fields that hold bytes or decimals (a Debezium
# envelope: the decimal columns of before/after, never the source block). Every plan
# checks the value's Python type first, so a union branch it does not apply to passes.

_Plan = Callable[[Any], Any] | None


def _b64(value: Any) -> Any:
    return base64.b64encode(value).decode("ascii") if type(value) is bytes else value


def _number(value: Any) -> Any:
    return decimal_to_number(value) if type(value) is Decimal else value


def _variable_decimal(value: Any) -> Any:
    if type(value) is not dict or type(value.get("value")) is not bytes:
        return value
    unscaled = int.from_bytes(numbers.check_unscaled(value["value"]), "big", signed=True)
    return decimal_to_number(Decimal(unscaled).scaleb(-int(value["scale"])))


def _plan(node: Any, named: dict[str, _Plan], namespace: str) -> _Plan:
    if isinstance(node, str):
        if node in _CONVERTED:
            return _b64
        # A named type defined earlier (in this namespace, or a full name).
        full = node if "." in node or not namespace else f"{namespace}.{node}"
        return named.get(full, named.get(node))
    if isinstance(node, list):  # a union
        plans = [p for p in (_plan(n, named, namespace) for n in node) if p is not None]
        if not plans:
            return None
        if len(plans) == 1:
            return plans[0]
        return lambda v: _apply_first(plans, v)
    if not isinstance(node, dict):
        return None
    kind = node.get("type")
    if node.get("logicalType") == "decimal" and kind in _CONVERTED:
        return _number
    if kind in _CONVERTED:
        return _b64
    if kind == "array":
        items = _plan(node.get("items"), named, namespace)
        if items is None:
            return None
        return lambda v: [items(x) for x in v] if type(v) is list else v
    if kind == "map":
        values = _plan(node.get("values"), named, namespace)
        if values is None:
            return None
        return lambda v: {k: values(x) for k, x in v.items()} if type(v) is dict else v
    if kind in ("record", "error"):
        space = node.get("namespace", namespace)
        name = node.get("name", "")
        full = name if "." in name else f"{space}.{name}" if space else name
        named[full] = None  # recursive references see "nothing to convert" (rare)
        if full == _VARIABLE_DECIMAL:
            named[full] = _variable_decimal
            return _variable_decimal
        fields = []
        for field in node.get("fields") or ():
            plan = _plan(field.get("type"), named, space)
            if plan is not None:
                fields.append((field["name"], plan))
        if not fields:
            return None
        converted = tuple(fields)

        def record(value: Any) -> Any:
            if type(value) is dict:  # a fresh datum: converted in place
                for field_name, field_plan in converted:
                    item = value.get(field_name)
                    if item is not None:
                        value[field_name] = field_plan(item)
            return value

        named[full] = record
        return record
    if isinstance(kind, dict | list):
        return _plan(kind, named, namespace)
    if isinstance(kind, str) and kind not in _PRIMITIVES:
        return _plan(kind, named, namespace)
    return None


def _apply_first(plans: list[Callable[[Any], Any]], value: Any) -> Any:
    for plan in plans:
        converted = plan(value)
        if converted is not value:
            return converted
    return value


def parse(schema: Any) -> AvroSchema:
    """Parse a writer schema (the registry's JSON); raises ``ValueError`` when invalid."""
    stripped = _strip(schema)
    try:
        parsed = parse_schema(stripped)
    except Exception as exc:  # fastavro raises SchemaParseException, KeyError, ...
        raise ValueError(f"is not a valid Avro schema: {type(exc).__name__}: {exc}") from None
    return AvroSchema(parsed, _plan(stripped, {}, ""))


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
    return datum if schema.convert is None else schema.convert(datum)
