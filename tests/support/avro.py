"""Debezium change events as Avro in the Confluent wire format, shaped as Debezium's
Postgres connector with ``io.confluent.connect.avro.AvroConverter`` writes them: an
``Envelope`` record whose ``before``/``after`` are nullable unions of the table's
``Value`` record, a ``Source`` record, ``op``, ``ts_ms`` and ``transaction``; numeric
columns as Kafka Connect ``Decimal`` (``bytes`` with ``logicalType: decimal``), a
``date`` column as Connect ``Date`` (``int`` with ``logicalType: date``). The key is the
table's ``Key`` record (its primary key columns)."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import httpx
import orjson
from fastavro import parse_schema, schemaless_writer


def _decimal(scale: int, precision: int) -> dict[str, Any]:
    return {
        "type": "bytes",
        "scale": scale,
        "precision": precision,
        "connect.version": 1,
        "connect.parameters": {"scale": str(scale), "connect.decimal.precision": str(precision)},
        "connect.name": "org.apache.kafka.connect.data.Decimal",
        "logicalType": "decimal",
    }


def _optional(schema: Any) -> list[Any]:
    return ["null", schema]


def price_value_fields() -> list[dict[str, Any]]:
    return [
        {"name": "part_no", "type": "string"},
        {"name": "price_list_code", "type": "string"},
        {"name": "quantity_break", "type": "int"},
        {"name": "price_sale", "type": _optional(_decimal(2, 12)), "default": None},
        {"name": "cost_purchase", "type": _optional(_decimal(2, 12)), "default": None},
        {"name": "cost_unit", "type": _optional(_decimal(2, 12)), "default": None},
        {"name": "price_recommended", "type": _optional("double"), "default": None},
        {"name": "is_discountable", "type": _optional("boolean"), "default": None},
        {"name": "currency_code", "type": _optional("string"), "default": None},
        {
            "name": "valid_from",
            "type": _optional(
                {
                    "type": "int",
                    "connect.version": 1,
                    "connect.name": "org.apache.kafka.connect.data.Date",
                    "logicalType": "date",
                }
            ),
            "default": None,
        },
    ]


PRICE_KEY = ["part_no", "price_list_code", "quantity_break"]


def price_schemas(topic: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(key schema, value schema) of the prices table on ``topic``."""
    fields = price_value_fields()
    key = {
        "type": "record",
        "name": "Key",
        "namespace": topic,
        "fields": [f for f in fields if f["name"] in PRICE_KEY],
        "connect.name": f"{topic}.Key",
    }
    value = {
        "type": "record",
        "name": "Envelope",
        "namespace": topic,
        "fields": [
            {
                "name": "before",
                "type": [
                    "null",
                    {
                        "type": "record",
                        "name": "Value",
                        "fields": fields,
                        "connect.name": f"{topic}.Value",
                    },
                ],
                "default": None,
            },
            {"name": "after", "type": ["null", "Value"], "default": None},
            {"name": "source", "type": _source_schema()},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": ["null", "long"], "default": None},
            {
                "name": "transaction",
                "type": [
                    "null",
                    {
                        "type": "record",
                        "name": "block",
                        "namespace": "event",
                        "fields": [
                            {"name": "id", "type": "string"},
                            {"name": "total_order", "type": "long"},
                            {"name": "data_collection_order", "type": "long"},
                        ],
                    },
                ],
                "default": None,
            },
        ],
        "connect.version": 1,
        "connect.name": f"{topic}.Envelope",
    }
    return key, value


def _source_schema() -> dict[str, Any]:
    def opt(t: str) -> dict[str, Any]:
        return {"name": t, "type": ["null", "long"], "default": None}

    return {
        "type": "record",
        "name": "Source",
        "namespace": "io.debezium.connector.postgresql",
        "fields": [
            {"name": "version", "type": "string"},
            {"name": "connector", "type": "string"},
            {"name": "name", "type": "string"},
            {"name": "ts_ms", "type": "long"},
            {
                "name": "snapshot",
                "type": [
                    {
                        "type": "string",
                        "connect.version": 1,
                        "connect.parameters": {"allowed": "true,last,false,incremental"},
                        "connect.default": "false",
                        "connect.name": "io.debezium.data.Enum",
                    },
                    "null",
                ],
                "default": "false",
            },
            {"name": "db", "type": "string"},
            {"name": "sequence", "type": ["null", "string"], "default": None},
            {"name": "schema", "type": "string"},
            {"name": "table", "type": "string"},
            opt("txId"),
            opt("lsn"),
            opt("xmin"),
        ],
        "connect.name": "io.debezium.connector.postgresql.Source",
    }


HEARTBEAT_SCHEMA = {
    "type": "record",
    "name": "Heartbeat",
    "namespace": "io.debezium.connector.common",
    "fields": [{"name": "ts_ms", "type": "long"}],
    "connect.name": "io.debezium.connector.common.Heartbeat",
}


def price_datum(part_no: str, price: str, *, valid_from: int = 19_700) -> dict[str, Any]:
    """A prices row for the Avro writer (decimals as ``Decimal`` with scale 2)."""
    amount = Decimal(price)
    return {
        "part_no": part_no,
        "price_list_code": "STD",
        "quantity_break": 1,
        "price_sale": amount,
        "cost_purchase": (amount * Decimal("0.6")).quantize(Decimal("0.01")),
        "cost_unit": (amount * Decimal("0.62")).quantize(Decimal("0.01")),
        "price_recommended": float(amount) * 1.2,
        "is_discountable": True,
        "currency_code": "SEK",
        "valid_from": valid_from,
    }


def envelope_datum(
    op: str, row: dict[str, Any] | None, *, lsn: int, ts_ms: int, before: Any = None
) -> dict[str, Any]:
    return {
        "before": before,
        "after": row,
        "source": {
            "version": "2.7.0.Final",
            "connector": "postgresql",
            "name": "erp",
            "ts_ms": ts_ms,
            "snapshot": "true" if op == "r" else "false",
            "db": "erp",
            "sequence": None,
            "schema": "public",
            "table": "prices",
            "txId": 7,
            "lsn": lsn,
            "xmin": None,
        },
        "op": op,
        "ts_ms": ts_ms + 5,
        "transaction": None,
    }


def wire(schema_id: int, schema: dict[str, Any], datum: Any) -> bytes:
    """``datum`` in the Confluent wire format: magic byte 0, the id (4 bytes big-endian),
    the Avro binary body."""
    out = io.BytesIO()
    out.write(b"\0" + schema_id.to_bytes(4, "big"))
    schemaless_writer(out, parse_schema(schema), datum)
    return out.getvalue()


def key_datum(row: dict[str, Any]) -> dict[str, Any]:
    return {c: row[c] for c in PRICE_KEY}


async def register(url: str, subject: str, schema: dict[str, Any]) -> int:
    """Register ``schema`` under ``subject`` through the registry's Confluent API."""
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{url}/subjects/{subject}/versions",
            content=orjson.dumps({"schema": orjson.dumps(schema).decode()}),
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        )
        response.raise_for_status()
        return int(response.json()["id"])
