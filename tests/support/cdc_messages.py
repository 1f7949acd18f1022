"""Change messages as Debezium and our plain format write them, for the decoding tests.

Shared by the tests of the decoding (``tests/unit/import_path/test_cdc.py``) and of the
fused hot path against the reference path (``test_decode_mapped.py``): the malformed-message
lists below are the ``parametrize`` cases of the former and the inputs of the latter, so a
case added here is checked by both.
"""

from __future__ import annotations

from typing import Any

import orjson

# --- a Postgres connector event (Debezium 2.x), with and without the schema wrapper ------

PG_SOURCE = {
    "version": "2.5.0.Final",
    "connector": "postgresql",
    "name": "erp",
    "ts_ms": 1714000000123,
    "snapshot": "false",
    "db": "erp",
    "sequence": '["24023800","24023928"]',
    "schema": "public",
    "table": "prices",
    "txId": 565,
    "lsn": 24023928,
    "xmin": None,
}

ROW = {
    "part_no": "A-100",
    "price_list_code": "std",
    "quantity_break": 1,
    "price_sale": 199.9,
    "cost_purchase": 120.0,
    "cost_unit": 121.5,
    "price_recommended": 249.0,
    "is_discountable": True,
    "currency_code": "SEK",
    "updated_at": 1714000000123456,
}


def decimal_field(name: str, scale: int) -> dict[str, Any]:
    return {
        "type": "bytes",
        "optional": True,
        "name": "org.apache.kafka.connect.data.Decimal",
        "version": 1,
        "parameters": {"scale": str(scale), "connect.decimal.precision": "12"},
        "field": name,
    }


VALUE_FIELDS = [
    {"type": "string", "optional": False, "field": "part_no"},
    {"type": "string", "optional": False, "field": "price_list_code"},
    {"type": "int32", "optional": False, "field": "quantity_break"},
    decimal_field("price_sale", 2),
    decimal_field("cost_purchase", 2),
    decimal_field("cost_unit", 2),
    decimal_field("price_recommended", 2),
    {"type": "boolean", "optional": True, "field": "is_discountable"},
    {"type": "string", "optional": True, "field": "currency_code"},
    {
        "type": "int64",
        "optional": True,
        "name": "io.debezium.time.MicroTimestamp",
        "version": 1,
        "field": "updated_at",
    },
    {
        "type": "struct",
        "fields": [
            {"type": "int32", "optional": False, "field": "scale"},
            {"type": "bytes", "optional": False, "field": "value"},
        ],
        "optional": True,
        "name": "io.debezium.data.VariableScaleDecimal",
        "version": 1,
        "doc": "Variable scaled decimal",
        "field": "weight",
    },
]

ENVELOPE_SCHEMA = {
    "type": "struct",
    "fields": [
        {
            "type": "struct",
            "fields": VALUE_FIELDS,
            "optional": True,
            "name": "erp.public.prices.Value",
            "field": "before",
        },
        {
            "type": "struct",
            "fields": VALUE_FIELDS,
            "optional": True,
            "name": "erp.public.prices.Value",
            "field": "after",
        },
        {
            "type": "struct",
            "fields": [
                {"type": "string", "optional": False, "field": "version"},
                {"type": "string", "optional": False, "field": "connector"},
                {"type": "int64", "optional": False, "field": "ts_ms"},
                {"type": "int64", "optional": True, "field": "lsn"},
            ],
            "optional": False,
            "name": "io.debezium.connector.postgresql.Source",
            "field": "source",
        },
        {"type": "string", "optional": False, "field": "op"},
        {"type": "int64", "optional": True, "field": "ts_ms"},
    ],
    "optional": False,
    "name": "erp.public.prices.Envelope",
    "version": 1,
}

# Base64 big-endian two's complement unscaled values, as Kafka Connect writes them.
PRECISE = {
    "price_sale": "ThY=",  # 19990 -> 199.90
    "cost_purchase": "/2o=",  # -150 -> -1.50
    "cost_unit": "AIA=",  # 128 -> 1.28 (leading zero byte keeps it positive)
    "price_recommended": "AA==",  # 0 -> 0.00
}

KEY = {"part_no": "A-100", "price_list_code": "std", "quantity_break": 1}


def envelope(
    op: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    lsn: int = 24023928,
    ts_ms: int = 1714000000123,
) -> dict[str, Any]:
    return {
        "before": before,
        "after": after,
        "source": {**PG_SOURCE, "lsn": lsn, "ts_ms": ts_ms, "snapshot": op == "r" and "true"},
        "op": op,
        "ts_ms": ts_ms + 333,
        "transaction": None,
    }


def wrapped(payload: dict[str, Any] | None) -> bytes:
    return orjson.dumps({"schema": ENVELOPE_SCHEMA, "payload": payload})


def key_bytes(**overrides: Any) -> bytes:
    return orjson.dumps({**KEY, **overrides})


def plain_msg(**fields: Any) -> bytes:
    doc = {"key": "A-100|std|1", "op": "upsert", "version": 42, "ts_ms": 1714000000000}
    doc["data"] = ROW
    doc.update(fields)
    return orjson.dumps({k: v for k, v in doc.items() if v is not ...})


# --- malformed messages: (input, a piece of the expected reason) --------------------------

# Debezium values that are not a JSON object: stage ``decode``.
DEBEZIUM_NOT_DECODABLE: list[tuple[bytes, str]] = [
    (b'{"op": "c", "after": {', "not valid JSON"),
    (b"", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[1, 2]", "not a JSON object but an array"),
    (b'"c"', "not a JSON object but a string"),
    (b"null", "not a JSON object but null"),
]

# Fields laid over a valid ``envelope("u", None, ROW)`` (``op: None`` drops ``op``):
# stage ``validate``.
DEBEZIUM_INVALID: list[tuple[dict[str, Any], str]] = [
    ({"op": None}, "missing 'op'"),
    ({"op": "x"}, "unknown op 'x'"),
    ({"op": 3}, "unknown op 3"),
    ({"after": "A-100"}, "'after' is a string, not an object"),
    ({"after": None}, "'after' is null"),
    ({"source": None}, "missing 'source' block"),
    ({"source": {**PG_SOURCE, "ts_ms": "1714000000123"}}, "source.ts_ms"),
    ({"source": {**PG_SOURCE, "lsn": "0/16B3748"}}, "source.lsn"),
    ({"after": {**ROW, "part_no": None}}, "key column 'part_no' is missing or null"),
    ({"after": {k: v for k, v in ROW.items() if k != "quantity_break"}}, "quantity_break"),
    ({"after": {**ROW, "part_no": ""}}, "key column 'part_no' is empty"),
    ({"after": {**ROW, "part_no": {"x": 1}}}, "not a string or number"),
]


def invalid_debezium(change: dict[str, Any]) -> bytes:
    """A ``DEBEZIUM_INVALID`` case as a message."""
    msg = {**envelope("u", None, ROW), **change}
    if msg["op"] is None:
        del msg["op"]
    return orjson.dumps(msg)


# ``plain_msg`` fields (``...`` drops a field): stage ``validate``.
PLAIN_INVALID: list[tuple[dict[str, Any], str]] = [
    ({"op": "merge"}, "unknown op 'merge'"),
    ({"op": ...}, "missing 'op'"),
    ({"op": "c"}, "unknown op 'c'"),
    ({"version": ...}, "'version' must be a non-negative integer"),
    ({"version": "42"}, "'version' must be a non-negative integer"),
    ({"version": True}, "'version' must be a non-negative integer"),
    ({"version": -1}, "'version' must be a non-negative integer"),
    ({"version": 4.2}, "'version' must be a non-negative integer"),
    ({"ts_ms": "yesterday"}, "'ts_ms' must be an integer"),
    ({"data": [1, 2]}, "'data' is an array, not an object"),
    ({"data": ...}, "'data' is null"),
    ({"key": ["A"]}, "'key' is an array"),
    ({"key": ""}, "'key' is empty"),
    ({"key": ..., "data": {"part_no": "A"}}, "key column 'price_list_code'"),
    ({"key": "A-100|std", "data": {"price_sale": 1}}, "has 2 parts, key_columns 3"),
]

# Plain-format values that are not a JSON object: stage ``decode``.
PLAIN_NOT_OBJECTS: list[bytes] = [b"{", b"[]", b"42"]
