"""Decode and map input messages in one step: Debezium envelopes and our plain format.

Debezium (``format: debezium``), as the JSON converter writes it, with or without the
``{"schema": ..., "payload": ...}`` wrapper (``schemas.enable``)::

    {"before": {...} | null, "after": {...} | null, "op": "c"|"u"|"d"|"r",
     "source": {"ts_ms": ..., "lsn": ... | "file"/"pos" | "change_lsn"/"commit_lsn" | "scn"},
     "ts_ms": ...}

- ``c``/``u``/``r`` (``r`` = snapshot read) carry the row in ``after``; ``d`` carries the
  before-image in ``before`` (when ``before`` is null, the Kafka key's fields stand in).
- A null Kafka value is the tombstone Debezium writes after a delete: decoding it gives
  None. So does a wrapper whose ``payload`` is null.
- The version is ``source.ts_ms`` plus the connector's log position (see ``Version``).
- With the schema wrapper, ``org.apache.kafka.connect.data.Decimal`` (base64 big-endian
  two's complement, ``scale`` parameter) and ``io.debezium.data.VariableScaleDecimal``
  columns are decoded into JSON numbers (int when whole, else float). Without a schema the
  scale is unknown, so such columns stay as Debezium wrote them; use
  ``decimal.handling.mode=double|string`` or the ``decimal:<scale>`` conversion.
- Other logical types (dates, timestamps) stay raw; mapping conversions read them.

Avro (a ``debezium`` or ``debezium-flat`` binding with ``schema_registry``): values and
keys in the Confluent wire format, read by ``agents.imports.avro`` against the writer
schemas the projector fetched for the batch (``agents.imports.registry``) into the same
dicts the JSON converter's messages parse to; everything after that is shared.

Plain (``format: plain``), the project's own format::

    {"key": "A-100|STD|1", "op": "upsert" | "delete", "version": 42, "ts_ms": 1714000000000,
     "data": {"part_no": "A-100", ...}}

- ``version`` (int >= 0, required) orders changes of one key: higher is newer. ``ts_ms``
  (int, optional) is the change time.
- ``data`` is the full row for ``upsert``; for ``delete`` it is optional.
- ``key`` is the source key; optional when the binding's ``key_columns`` are all in
  ``data``. A delete without ``data`` gets its key columns back from ``key`` split on ``|``.

The source key is the binding's ``key_columns`` values joined by ``|``; without
``key_columns`` (Debezium only) it is the Kafka message key's field values (Debezium puts
the primary key there), joined the same way.

Everything malformed raises ``CdcError`` with stage ``decode`` (not JSON, not an object)
or ``validate`` (missing or mistyped fields, unknown op, missing key).

The batch hot path: ``decode_mapped(value, key, binding) -> Mapped | None`` decodes and
maps (``agents.config.mapping.map_for_import``) in one step, raising ``CdcError`` as above,
then ``MappingError`` with stage ``map``, and giving None for tombstones. It builds no
pydantic record: ``Mapped`` is a NamedTuple of

- ``state_key``: ``source|kind|<Norce key>``;
- ``version_key``: the sort key of the version (``streams.records.version_key``): compare
  two with ``version_key_newer(new, held)``, or with ``>`` when ``key[0]`` is equal;
- ``version``: ``[ts_ms, position]``, the stored form;
- ``row``: the Norce row (with ``IsActive``), ``deleted``: whether it is a delete.

Each binding is compiled once (``compile_decoder``; ``decoder_for`` caches per binding
object): call ``decoder_for(binding)`` once per batch and then ``decoder(value, key)`` per
record to skip even the cache look-up. A mapping hook still gets the ``ChangeEvent`` as its
context, built only for bindings with a hook.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from agents.config.flat_fields import flat_roles
from agents.config.mapping import (
    MappingError,
    decimal_to_number,
    decode_decimal_bytes,
    decode_variable_scale_decimal,
    key_function,
    map_for_import,
)
from agents.imports import avro
from streams.records import ChangeEvent, Mapped, PipelineError, Version, version_key

if TYPE_CHECKING:
    from agents.config.sync_config import InputBinding

__all__ = [
    "CdcError",
    "Decoder",
    "compile_decoder",
    "decode_mapped",
    "decoder_for",
    "source_version",
]

_DECIMAL = "org.apache.kafka.connect.data.Decimal"
_VARIABLE_DECIMAL = "io.debezium.data.VariableScaleDecimal"
# Cheap byte-level test before walking the schema: most topics have no decimal column.
_DECIMAL_MARKERS = (_DECIMAL.encode(), _VARIABLE_DECIMAL.encode())
_DEBEZIUM_OPS = frozenset(("c", "u", "d", "r"))
_PLAIN_OPS = {"upsert": "u", "delete": "d"}


class CdcError(PipelineError):
    """A message could not be decoded (``decode``) or is not a valid change (``validate``)."""


def _invalid(reason: str) -> CdcError:
    return CdcError("validate", reason)


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is a subclass of int and not wanted here


def _load_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CdcError("decode", f"{what} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CdcError("decode", f"{what} is not a JSON object but {_json_type(doc)}")
    return doc


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# (op, ts_ms, position, row, deleted, source_key, history): a decoded change before any
# record; ``history`` marks the log the position belongs to (``_history``), or None.
Position = tuple[int, ...]
_Parts = tuple[str, int, Position, dict[str, Any], bool, str, "str | None"]
_Parser = Callable[[bytes, bytes | None], "_Parts | None"]


_Load = Callable[[bytes], dict[str, Any]]
_KeyStruct = Callable[[bytes], Any]


def _load_message(value: bytes) -> dict[str, Any]:
    return _load_object(value, "message")


def _parser(binding: InputBinding) -> _Parser:
    """The format's parse function for ``binding``, its options bound."""
    key_columns = tuple(binding.key_columns)
    if binding.format == "plain":
        return lambda value, key: _parse_plain(value, key_columns)
    load, key_struct = _load_message, _key_struct
    if binding.schema_registry is not None:
        load, key_struct = _avro_readers(binding)
    if binding.format == "debezium-flat":
        roles = flat_roles(binding.flat_fields)
        return lambda value, key: _parse_flat(value, key, key_columns, roles, load, key_struct)
    return lambda value, key: _parse_debezium(value, key, key_columns, load, key_struct)


def _avro_readers(binding: InputBinding) -> tuple[_Load, _KeyStruct]:
    """Value and key readers of an Avro binding: wire format, schemas from the cache of
    its registry (``agents.imports.registry``; the projector fetches a batch's ids first)."""
    from agents.imports.registry import registry_for

    assert binding.schema_registry is not None
    registry = registry_for(binding.schema_registry)
    schemas, missing = registry.schemas, registry.missing_reason

    def load(value: bytes) -> dict[str, Any]:
        doc = avro.read(value, schemas, missing, "message")
        if type(doc) is not dict:
            raise CdcError("decode", f"message is {_json_type(doc)} in Avro, not a record")
        return doc

    def key_struct(key: bytes) -> Any:
        return avro.read(key, schemas, missing, "Kafka key")

    return load, key_struct


# --- the fused hot path ------------------------------------------------------------------

Decoder = Callable[[bytes | None, bytes | None], Mapped | None]


def compile_decoder(binding: InputBinding) -> Decoder:
    """``decode_mapped`` for one binding, everything per binding looked up once."""
    parse = _parser(binding)
    mapper = binding.mapper
    key_of = key_function(binding)
    prefix = f"{binding.source}|{binding.kind}|"
    source, kind, with_context = binding.source, binding.kind, mapper.has_hook
    fast = _fast_debezium(binding, prefix)

    def decoder(value: bytes | None, key: bytes | None) -> Mapped | None:
        if value is None:
            return None
        if fast is not None:
            mapped = fast(value, key)
            if mapped is not None:
                return mapped
        parts = parse(value, key)
        if parts is None:
            return None
        op, ts_ms, position, row, deleted, source_key, history = parts
        context = None
        if with_context:  # hooks get the ChangeEvent, as on the record path
            context = ChangeEvent.trusted(
                source=source,
                kind=kind,
                source_key=source_key,
                op=op,
                version=Version.of([ts_ms, *position]),
                row=row,
                deleted=deleted,
            )
        norce_key, mapped = map_for_import(mapper, key_of, row, deleted, context)
        return _new_mapped(
            Mapped,
            (
                prefix + norce_key,
                version_key(ts_ms, *position),
                [ts_ms, *position],
                mapped,
                deleted,
                history,
                op == "r",
            ),
        )

    return decoder


_new_mapped = tuple.__new__  # skips NamedTuple's Python-level __new__
_UPSERT_OPS = frozenset(("c", "u", "r"))


def _fast_debezium(binding: InputBinding, prefix: str) -> Decoder | None:
    """The common change in one function: a Debezium JSON insert, update or snapshot read
    without the schema wrapper, from Postgres (an integer ``lsn``), with ``key_columns``
    and a generated mapping without a hook. It returns what the general path returns for
    such a message, and None for any other message (or any fault in it), which then
    takes the general path: its checks and its errors. Why: each step of the general path
    is a function call per event (about a third of the fold's Python time)."""
    mapper = binding.mapper
    full_map = mapper.generated
    if (
        binding.format != "debezium"
        or binding.schema_registry is not None
        or mapper.has_hook
        or full_map is None
        or not binding.key_columns
    ):
        return None
    key_columns = tuple(binding.key_columns)
    key_of = key_function(binding)
    loads, decode_error, upserts = orjson.loads, orjson.JSONDecodeError, _UPSERT_OPS

    def fast(value: bytes, key: bytes | None) -> Mapped | None:
        try:
            doc = loads(value)
        except decode_error:
            return None
        if type(doc) is not dict or "payload" in doc:
            return None
        op = doc.get("op")
        source = doc.get("source")
        row = doc.get("after")
        if op not in upserts or type(source) is not dict or type(row) is not dict:
            return None
        ts_ms = source.get("ts_ms")
        lsn = source.get("lsn")
        if (
            type(ts_ms) is not int
            or type(lsn) is not int
            or lsn < 0
            or "commit_lsn" in source
            or "server_id" in source
            or "gtid" in source
        ):
            return None
        for column in key_columns:  # the source key's checks (_key_from_columns)
            part = row.get(column)
            if not ((type(part) is str and part) or type(part) is int):
                return None
        try:
            mapped = full_map(row)
            norce_key = key_of(mapped)
        except MappingError:
            return None  # the general path raises it again, with its context
        mapped.setdefault("IsActive", True)
        return _new_mapped(
            Mapped,
            (
                prefix + norce_key,
                (1, (lsn,), ts_ms) if lsn else (0, (), ts_ms),  # version_key(ts_ms, lsn)
                [ts_ms, lsn],
                mapped,
                False,
                None,
                op == "r",
            ),
        )

    return fast


_DECODERS: dict[int, tuple[InputBinding, Decoder]] = {}


def decoder_for(binding: InputBinding) -> Decoder:
    """The compiled decoder of ``binding``, compiled on first use and then cached."""
    entry = _DECODERS.get(id(binding))
    if entry is not None and entry[0] is binding:
        return entry[1]
    if len(_DECODERS) >= 1024:  # bindings are few; only tests make many
        _DECODERS.clear()
    decoder = compile_decoder(binding)
    _DECODERS[id(binding)] = (binding, decoder)
    return decoder


def decode_mapped(value: bytes | None, key: bytes | None, binding: InputBinding) -> Mapped | None:
    """One message of ``binding``'s topic, decoded and mapped, as a ``Mapped`` tuple.

    None for a tombstone; raises ``CdcError`` / ``MappingError``.
    """
    return decoder_for(binding)(value, key)


# --- Debezium ----------------------------------------------------------------------------


def _parse_debezium(
    value: bytes,
    key: bytes | None,
    key_columns: Sequence[str],
    load: _Load,
    key_struct: _KeyStruct,
) -> _Parts | None:
    doc = load(value)
    schema: Any = None
    if "payload" in doc and "schema" in doc:
        schema, payload = doc["schema"], doc["payload"]
        if payload is None:
            return None
        if not isinstance(payload, dict):
            raise _invalid(f"payload is {_json_type(payload)}, not an object")
    else:
        payload = doc

    op = payload.get("op")
    if op not in _DEBEZIUM_OPS:
        if op is None:
            kind = _non_row_kind(payload, schema)
            if kind is None:
                raise _invalid("missing 'op'")
            raise NotAChange(kind)
        if op in _MARKER_OPS:
            raise NotAChange(_MARKER_OPS[op])
        raise _invalid(f"unknown op {op!r} (expected c, u, d or r)")
    source = payload.get("source")
    if type(source) is not dict:
        raise _invalid("missing 'source' block")

    deleted = op == "d"
    image = "before" if deleted else "after"
    row = payload.get(image)
    if type(row) is str and source.get("connector") == "mongodb":
        row = _load_object(row.encode(), f"'{image}'")  # extended JSON text
    if row is None and deleted and key is not None:
        row = key_struct(key)  # no before-image (REPLICA IDENTITY NOTHING): the key remains
    if type(row) is not dict:
        raise _invalid(f"'{image}' is {_json_type(row)}, not an object, for op {op!r}")
    if schema is not None and (_DECIMAL_MARKERS[0] in value or _DECIMAL_MARKERS[1] in value):
        row = _decode_decimals(row, schema, image)

    ts_ms = source.get("ts_ms")
    if type(ts_ms) is not int:
        ts_ms = _fallback_ts_ms(ts_ms, payload.get("ts_ms"))
    lsn = source.get("lsn")
    if type(lsn) is int and lsn >= 0 and "commit_lsn" not in source:
        position: Position = (lsn,)  # PostgreSQL, the common case: no dispatch
    else:
        position = _position(source, payload)
    history = _history(source) if "server_id" in source or "gtid" in source else None
    source_key = _source_key(row, key, key_columns, key_struct)
    return op, ts_ms, position, row, deleted, source_key, history


def _source_key(
    row: dict[str, Any],
    key: bytes | None,
    key_columns: Sequence[str],
    key_struct: _KeyStruct,
) -> str:
    if key_columns:
        return _key_from_columns(row, key_columns)
    if key is None:
        raise _invalid("message has no Kafka key and the binding sets no key_columns")
    return _join_key(key_struct(key), "Kafka key")


def source_version(source: dict[str, Any], envelope_ts_ms: Any = None) -> Version:
    """``Version`` from a Debezium ``source`` block (``ts_ms`` and the log position)."""
    ts_ms = source.get("ts_ms")
    if not _is_int(ts_ms):
        ts_ms = _fallback_ts_ms(ts_ms, envelope_ts_ms)
    return Version.of([ts_ms, *_position(source, {})])


def _fallback_ts_ms(ts_ms: Any, envelope_ts_ms: Any) -> int:
    """The envelope's ``ts_ms`` stands in for a missing ``source.ts_ms``."""
    if ts_ms is None and _is_int(envelope_ts_ms):
        return envelope_ts_ms
    raise _invalid("source.ts_ms is missing or not an integer")


# --- messages that are Debezium output but not row changes --------------------------------


class NotAChange(Exception):
    """Valid Debezium output that is not a row change: skipped and counted, not dead-lettered.

    ``kind`` is ``heartbeat``, ``transaction`` (BEGIN/END metadata), ``schema_change``,
    ``message`` (a Postgres logical decoding message, ``op: m``) or ``truncate``
    (``op: t``, which the projector reports to operators and never turns into deletes).
    """

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


_MARKER_OPS = {"t": "truncate", "m": "message"}
_TX_STATUSES = frozenset(("BEGIN", "END"))
_HEARTBEAT_SCHEMA = "io.debezium.connector.common.Heartbeat"


def _non_row_kind(payload: dict[str, Any], schema: Any) -> str | None:
    """Which non-row Debezium message ``payload`` is, or None when it is none of them.

    - heartbeat (``__debezium-heartbeat.<prefix>``): ``{"ts_ms": ...}`` only;
    - transaction metadata (``<prefix>.transaction``): ``status`` BEGIN or END with ``id``;
    - schema change (``<prefix>`` topic): ``ddl`` / ``tableChanges`` with ``databaseName``.
    """
    if payload.get("status") in _TX_STATUSES and "id" in payload:
        return "transaction"
    if "ddl" in payload or "tableChanges" in payload:
        return "schema_change"
    if "ts_ms" in payload and len(payload) == 1:
        return "heartbeat"
    if isinstance(schema, dict) and schema.get("name") == _HEARTBEAT_SCHEMA:
        return "heartbeat"
    return None


# --- log positions, per connector -----------------------------------------------------------
#
# Each connector's position is a fixed-length tuple of ints (each < 2**63, so orjson stores
# it), compared lexicographically; per key it follows the order in which Debezium emits the
# key's changes, snapshot records included. Sources, the ``source`` block field tables of
# https://debezium.io/documentation/reference/stable/connectors/<connector>.html:
#
# - postgresql (#postgresql-create-events): ``(lsn,)``. A key's changes are serialised by
#   its row lock, so their LSNs rise in commit order; snapshot records carry the LSN the
#   snapshot was taken at. ``sequence`` (``["<last commit lsn>", "<lsn>"]``) supplies the
#   LSN when ``lsn`` is absent; its first element is null on snapshot records and after a
#   restart, so it cannot put a later re-snapshot above older streamed changes.
# - mysql / mariadb (#mysql-create-events): ``(binlog file number, pos, row)``: ``row``
#   numbers the rows of one multi-row binlog event. ``gtid`` does not order (one per server).
# - sqlserver (#sqlserver-create-events): ``(commit_lsn, change_lsn, event_serial_no)``,
#   each LSN as two ints; snapshot records have a null ``change_lsn`` (lowest). A change of
#   a transaction in flight during the snapshot has a lower ``change_lsn`` but a higher
#   ``commit_lsn`` than the snapshot, and is newer.
# - oracle (#oracle-create-events): ``(commit_scn, scn, transaction.total_order)``:
#   LogMiner emits transactions in commit order; snapshot records have no ``commit_scn``
#   and stand at their ``scn`` (the flashback SCN the snapshot read AS OF).
# - mongodb (#mongodb-change-events): ``(ts_ms // 1000, ord)``: the oplog timestamp
#   (seconds, ordinal within the second).
# - anything else: ``(0,)``, the change time decides (``streams.records.Version``).

_LOW_63 = (1 << 63) - 1
_NO_POSITION = (0,)  # stored [ts_ms, 0], as before per-connector positions


def _lsn_int(source: dict[str, Any], name: str) -> int:
    text = source.get(name)
    if text is None:
        return 0
    try:
        return int(text.replace(":", ""), 16)
    except (AttributeError, ValueError):
        raise _invalid(f"source.{name} {text!r} is not an LSN") from None


def _decimal(source: dict[str, Any], name: str) -> int:
    value = source.get(name)
    if value is None:
        return 0
    if _is_int(value) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        if len(value) <= 19 and int(value) <= _LOW_63:  # stored as a 64-bit version part
            return int(value)
        raise _invalid(f"source.{name} {value[:40]!r} is beyond 64 bits")
    raise _invalid(f"source.{name} {value!r} is not a non-negative number")


def _postgres(source: dict[str, Any], payload: dict[str, Any]) -> Position:
    lsn = source.get("lsn")
    if lsn is None and isinstance(source.get("sequence"), str):
        try:
            lsn = orjson.loads(source["sequence"])[-1]
            lsn = int(lsn) if lsn is not None else None
        except (orjson.JSONDecodeError, TypeError, ValueError, IndexError):
            raise _invalid(f"source.sequence {source['sequence']!r} is not a list") from None
    if lsn is None:
        return _NO_POSITION
    if not _is_int(lsn) or lsn < 0:
        raise _invalid(f"source.lsn {lsn!r} is not a non-negative integer")
    return (lsn,)


def _mysql(source: dict[str, Any], payload: dict[str, Any]) -> Position:
    file, pos, row = source.get("file"), source.get("pos"), source.get("row", 0)
    if row is None:
        row = 0
    if not _is_int(pos) or pos < 0 or not isinstance(file, str) or not _is_int(row):
        raise _invalid(f"source.file/pos/row {file!r}/{pos!r}/{row!r} are not a binlog position")
    suffix = file.rpartition(".")[2]
    if not suffix.isdigit():
        raise _invalid(f"source.file {file!r} has no sequence number")
    return (int(suffix), pos, row)


def _sqlserver(source: dict[str, Any], payload: dict[str, Any]) -> Position:
    commit, change = _lsn_int(source, "commit_lsn"), _lsn_int(source, "change_lsn")
    serial = _decimal(source, "event_serial_no")  # the docs' example writes it as text
    return (commit >> 63, commit & _LOW_63, change >> 63, change & _LOW_63, serial)


def _oracle(source: dict[str, Any], payload: dict[str, Any]) -> Position:
    scn = _decimal(source, "scn")
    commit = _decimal(source, "commit_scn") or scn
    transaction = payload.get("transaction")
    order = transaction.get("total_order") if type(transaction) is dict else None
    return (commit, scn, order if _is_int(order) else 0)


def _mongodb(source: dict[str, Any], payload: dict[str, Any]) -> Position:
    ts_ms, ord_ = source.get("ts_ms"), source.get("ord")
    if not _is_int(ord_) or not _is_int(ts_ms):
        return _NO_POSITION
    return (ts_ms // 1000, ord_)


def _history(source: dict[str, Any]) -> str | None:
    """The log a MySQL/MariaDB position belongs to: ``server_id`` and the GTID's source
    (MySQL ``uuid:n``, MariaDB ``domain-server-seq``). Binlog positions are comparable
    only within one server's log: after a failover the new primary's files may be
    numbered lower (docs/design-notes.md, "New histories"). None: no mark in the record
    (every other connector; see the README's table)."""
    server_id, gtid = source.get("server_id"), source.get("gtid")
    origin = ""
    if isinstance(gtid, str) and gtid:
        origin = gtid.rpartition(":")[0] if ":" in gtid else gtid.rpartition("-")[0]
    if not _is_int(server_id) and not origin:
        return None
    return f"{server_id if _is_int(server_id) else ''}/{origin[:64]}"


_POSITIONS: dict[str, Callable[[dict[str, Any], dict[str, Any]], Position]] = {
    "postgresql": _postgres,
    "mysql": _mysql,
    "mariadb": _mysql,
    "sqlserver": _sqlserver,
    "oracle": _oracle,
    "mongodb": _mongodb,
}


def _position(source: dict[str, Any], payload: dict[str, Any]) -> Position:
    """The connector's log position (see above); by the fields present when ``connector``
    is missing or unknown (a flattened record's ``add.fields``)."""
    connector = source.get("connector")
    position = _POSITIONS.get(connector) if isinstance(connector, str) else None
    if position is None:
        if "commit_lsn" in source or "change_lsn" in source:
            position = _sqlserver
        elif "lsn" in source or "sequence" in source:
            position = _postgres
        elif "pos" in source and "file" in source:
            position = _mysql
        elif "scn" in source:
            position = _oracle
        else:
            return _NO_POSITION
    return position(source, payload)


def _decode_decimals(row: dict[str, Any], schema: Any, image: str) -> dict[str, Any]:
    """Turn Decimal / VariableScaleDecimal columns of ``row`` into numbers, per the schema."""
    columns = _decimal_columns(schema, image)
    if not columns:
        return row
    row = dict(row)
    for column, scale in columns.items():
        raw = row.get(column)
        if raw is None:
            continue
        try:
            if scale is None:
                if not isinstance(raw, dict):
                    raise ValueError(f"not a VariableScaleDecimal: {raw!r}")
                number: Decimal = decode_variable_scale_decimal(raw)
            else:
                if not isinstance(raw, str):
                    raise ValueError(f"not a base64 decimal: {raw!r}")
                number = decode_decimal_bytes(raw, scale)
            row[column] = decimal_to_number(number)
        except ValueError as exc:
            raise _invalid(f"column {column!r}: {exc}") from None
    return row


def _decimal_columns(schema: Any, image: str) -> dict[str, int | None]:
    """Column -> scale (None: variable scale) of the decimal columns of ``image``."""
    if not isinstance(schema, dict):
        raise _invalid("schema is not an object")
    struct = None
    for field in schema.get("fields") or ():
        if isinstance(field, dict) and field.get("field") == image:
            struct = field
            break
    if struct is None:
        return {}
    out: dict[str, int | None] = {}
    for column in struct.get("fields") or ():
        if not isinstance(column, dict):
            continue
        name = column.get("name")
        if name == _DECIMAL:
            try:
                out[column["field"]] = int(column["parameters"]["scale"])
            except (KeyError, TypeError, ValueError):
                raise _invalid(
                    f"schema of column {column.get('field')!r}: Decimal without a scale"
                ) from None
        elif name == _VARIABLE_DECIMAL:
            out[column["field"]] = None
    return out


def _key_struct(key: bytes) -> Any:
    """The Kafka key as Debezium writes it: the key columns, with or without a wrapper."""
    try:
        doc = orjson.loads(key)
    except orjson.JSONDecodeError as exc:
        raise CdcError("decode", f"Kafka key is not valid JSON: {exc}") from None
    if isinstance(doc, dict) and "payload" in doc and "schema" in doc:
        doc = doc["payload"]
    return doc


# --- keys --------------------------------------------------------------------------------


def _key_part(value: Any, what: str) -> str:
    if isinstance(value, str):
        if value == "":
            raise _invalid(f"{what} is empty")
        return value
    if value is None:
        raise _invalid(f"{what} is missing or null")
    if _is_int(value):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise _invalid(f"{what} is {_json_type(value)}, not a string or number")


def _key_from_columns(row: dict[str, Any], columns: Sequence[str]) -> str:
    parts = []
    for column in columns:
        value = row.get(column)
        if type(value) is int:  # as _key_part does, without building its message
            value = str(value)
        elif type(value) is not str or not value:
            value = _key_part(value, f"key column {column!r}")
        parts.append(value)
    return parts[0] if len(parts) == 1 else "|".join(parts)


def _join_key(struct: Any, what: str) -> str:
    if isinstance(struct, dict):
        if not struct:
            raise _invalid(f"{what} has no fields")
        return "|".join(_key_part(v, f"{what} field {k!r}") for k, v in struct.items())
    return _key_part(struct, what)


# --- flattened Debezium (ExtractNewRecordState) --------------------------------------------
#
# https://debezium.io/documentation/reference/stable/transformations/event-flattening.html:
# the row's fields at the top level; ``add.fields`` adds source / envelope fields named
# ``<prefix><field>`` (``source.ts_ms`` -> ``__source_ts_ms``, ``lsn`` -> ``__lsn``);
# ``delete.handling.mode=rewrite`` (``delete.tombstone.handling.mode=rewrite`` since 2.5)
# writes a delete as its before-image with ``__deleted: "true"``. The binding's
# ``flat_fields`` names the added fields; their roles (the ``source`` field each carries)
# build a ``source`` block that orders exactly like the envelope's.

_DELETED_FIELD = "__deleted"


def _parse_flat(
    value: bytes,
    key: bytes | None,
    key_columns: Sequence[str],
    roles: dict[str, str],
    load: _Load,
    key_struct: _KeyStruct,
) -> _Parts | None:
    doc = load(value)
    if "payload" in doc and "schema" in doc:
        doc = doc["payload"]
        if doc is None:
            return None
        if not isinstance(doc, dict):
            raise _invalid(f"payload is {_json_type(doc)}, not an object")
    source: dict[str, Any] = {}
    for name, role in roles.items():
        if name in doc:
            source[role] = doc.pop(name)
    if not source:
        kind = _non_row_kind(doc, None)
        if kind is not None:
            raise NotAChange(kind)
        raise _invalid(f"none of the flat fields {', '.join(roles)} is present")
    op = source.pop("op", None)
    deleted = doc.pop(_DELETED_FIELD, None) in ("true", True)
    if op in _MARKER_OPS:
        raise NotAChange(_MARKER_OPS[op])
    if op is None:
        op = "d" if deleted else "u"
    elif op not in _DEBEZIUM_OPS:
        raise _invalid(f"unknown {'/'.join(n for n, r in roles.items() if r == 'op')} {op!r}")
    deleted = deleted or op == "d"
    ts_ms = source.get("ts_ms", 0)
    if ts_ms is None:
        ts_ms = 0
    elif not _is_int(ts_ms):
        raise _invalid(f"flat ts_ms {ts_ms!r} is not an integer")
    position = _position(source, {})
    source_key = _source_key(doc, key, key_columns, key_struct)
    return op, ts_ms, position, doc, deleted, source_key, None


# --- plain format ------------------------------------------------------------------------


def _parse_plain(value: bytes, columns: Sequence[str]) -> _Parts:
    doc = _load_object(value, "message")
    op_text = doc.get("op")
    op = _PLAIN_OPS.get(op_text) if isinstance(op_text, str) else None
    if op is None:
        if op_text is None:
            raise _invalid("missing 'op'")
        raise _invalid(f"unknown op {op_text!r} (expected 'upsert' or 'delete')")
    version = doc.get("version")
    if not _is_int(version) or version < 0:
        raise _invalid(f"'version' must be a non-negative integer, got {version!r}")
    ts_ms = doc.get("ts_ms", 0)
    if ts_ms is None:
        ts_ms = 0
    elif not _is_int(ts_ms):
        raise _invalid(f"'ts_ms' must be an integer, got {ts_ms!r}")

    deleted = op == "d"
    data = doc.get("data")
    if data is None and deleted:
        data = {}
    if not isinstance(data, dict):
        raise _invalid(f"'data' is {_json_type(data)}, not an object")

    key = doc.get("key")
    if key is None:
        if not columns:
            raise _invalid("missing 'key' and the binding sets no key_columns")
        source_key = _key_from_columns(data, columns)
    else:
        source_key = _key_part(key, "'key'")
        if columns and any(c not in data for c in columns):
            parts = source_key.split("|")
            if len(parts) != len(columns):
                raise _invalid(
                    f"'key' {source_key!r} has {len(parts)} parts, key_columns {len(columns)}"
                )
            data = {**dict(zip(columns, parts, strict=True)), **data}
    return op, ts_ms, (version,), data, deleted, source_key, None
