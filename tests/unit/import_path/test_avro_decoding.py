"""Avro in the Confluent wire format: the decoder against schemas in the registry cache,
and the registry client's answers (found, not found, outage) over an HTTP transport.

The decoding runs end to end against a real registry and broker in
``tests/integration/import_path/test_avro_input.py``; here the cache is filled by hand
(``SchemaRegistry.add``, the same call a fetch makes) so each rule has its own check."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import yaml

from agents.config.secrets import config_secret_values
from agents.config.sync_config import ConfigError, InputBinding, SchemaRegistryConfig, parse_config
from agents.imports import registry as registry_module
from agents.imports.avro import parse, read
from agents.imports.cdc import NotAChange, decode_mapped
from agents.imports.registry import SchemaRegistry, registry_for
from streams.records import PipelineError
from streams.settings import Settings
from tests.support.avro import (
    HEARTBEAT_SCHEMA,
    envelope_datum,
    key_datum,
    price_datum,
    price_schemas,
    wire,
)
from tests.support.connector_messages import PRICES
from tests.support.reference_path import decode
from tests.support.sync_config import with_changes

TOPIC = "erp.public.prices"
KEY_SCHEMA, VALUE_SCHEMA = price_schemas(TOPIC)
KEY_ID, VALUE_ID, HEARTBEAT_ID = 11, 12, 13


@pytest.fixture
def binding() -> Iterator[InputBinding]:
    """The example's price binding reading Avro, keyed by the (Avro) Kafka key."""
    config = {"url": "http://registry.invalid:8081/apis/ccompat/v7"}
    bound = with_changes(PRICES, schema_registry=config, key_columns=[])
    assert bound.schema_registry is not None
    cache = registry_for(bound.schema_registry)
    cache.add(KEY_ID, orjson.dumps(KEY_SCHEMA).decode())
    cache.add(VALUE_ID, orjson.dumps(VALUE_SCHEMA).decode())
    cache.add(HEARTBEAT_ID, orjson.dumps(HEARTBEAT_SCHEMA).decode())
    yield bound
    registry_module._REGISTRIES.clear()


def message(op: str, row: dict[str, Any] | None, *, lsn: int = 5000, **kw: Any) -> bytes:
    return wire(VALUE_ID, VALUE_SCHEMA, envelope_datum(op, row, lsn=lsn, ts_ms=1_714_000_000, **kw))


def key_of(row: dict[str, Any]) -> bytes:
    return wire(KEY_ID, KEY_SCHEMA, key_datum(row))


def test_an_avro_envelope_decodes_as_its_json_twin(binding: InputBinding) -> None:
    row = price_datum("A-100", "149.90", valid_from=19_800)
    event = decode(message("u", row), key_of(row), binding)
    assert event is not None
    # Decimals become numbers, the nullable union its value, a date stays days since epoch.
    assert event.row["price_sale"] == 149.9
    assert event.row["cost_unit"] == 92.94
    assert event.row["valid_from"] == 19_800
    assert event.source_key == "A-100|STD|1"  # from the Avro key's fields, in order
    assert (event.version.ts_ms, event.version.position) == (1_714_000_000, 5000)
    mapped = decode_mapped(message("u", row), key_of(row), binding)
    assert mapped is not None
    assert mapped.state_key == "erp|price|A-100|STD|1"
    assert mapped.row["PriceSale"] == 149.9 and mapped.row["CurrencyCode"] == "SEK"
    assert not mapped.deleted


def test_a_delete_takes_the_before_image(binding: InputBinding) -> None:
    row = price_datum("A-100", "150.00")
    mapped = decode_mapped(message("d", None, before=row), key_of(row), binding)
    assert mapped is not None and mapped.deleted
    assert mapped.row["PriceSale"] == 150.0
    assert mapped.row["IsActive"] is False


def test_a_newer_lsn_orders_after_an_older_one(binding: InputBinding) -> None:
    row = price_datum("A-100", "1.00")
    old = decode_mapped(message("u", row, lsn=10), key_of(row), binding)
    new = decode_mapped(message("u", row, lsn=11), key_of(row), binding)
    assert old is not None and new is not None
    assert new.version_key > old.version_key


def test_an_unknown_schema_id_is_a_decode_error_naming_it(binding: InputBinding) -> None:
    row = price_datum("A-100", "1.00")
    value = wire(777, VALUE_SCHEMA, envelope_datum("u", row, lsn=1, ts_ms=1))
    with pytest.raises(PipelineError) as caught:
        decode_mapped(value, key_of(row), binding)
    assert caught.value.stage == "decode"
    assert "schema id 777" in caught.value.reason


def test_a_key_with_an_unknown_schema_id_is_a_decode_error(binding: InputBinding) -> None:
    row = price_datum("A-100", "1.00")
    with pytest.raises(PipelineError, match="Kafka key: schema id 778"):
        decode_mapped(message("u", row), wire(778, KEY_SCHEMA, key_datum(row)), binding)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b'{"op": "u"}', "not Avro in the Confluent wire format"),
        (b"\0\0\0", "not Avro in the Confluent wire format"),
        (b"\0" + VALUE_ID.to_bytes(4, "big") + b"\x02", "does not match its schema id 12"),
    ],
)
def test_bytes_that_are_not_wire_format_avro_are_decode_errors(
    binding: InputBinding, value: bytes, reason: str
) -> None:
    with pytest.raises(PipelineError) as caught:
        decode_mapped(value, b"k", binding)
    assert caught.value.stage == "decode" and reason in caught.value.reason


def test_trailing_bytes_after_the_datum_are_a_decode_error(binding: InputBinding) -> None:
    row = price_datum("A-100", "1.00")
    with pytest.raises(PipelineError, match="left over"):
        decode_mapped(message("u", row) + b"\0", key_of(row), binding)


def test_an_avro_heartbeat_is_not_a_change(binding: InputBinding) -> None:
    with pytest.raises(NotAChange) as caught:
        decode_mapped(wire(HEARTBEAT_ID, HEARTBEAT_SCHEMA, {"ts_ms": 1}), b"", binding)
    assert caught.value.kind == "heartbeat"


def test_a_tombstone_is_skipped(binding: InputBinding) -> None:
    row = price_datum("A-100", "1.00")
    assert decode_mapped(None, key_of(row), binding) is None


# --- config ------------------------------------------------------------------------------


def _config(registry: dict[str, Any], fmt: str = "debezium") -> dict[str, Any]:
    data = PRICES.model_dump(by_alias=True)
    data.update(schema_registry=registry, format=fmt)
    data["delta_schedule"] = "30s"
    data["full_schedule"] = "0 3 * * 0"
    source = {"account_id": 1, "credentials": {"client_id": "c", "client_secret_env": "S"}}
    return {"sources": {"erp": source}, "inputs": [data]}


@pytest.mark.parametrize(
    ("registry", "fmt", "message_part"),
    [
        ({"url": "http://u:p@r:8081"}, "debezium", "without credentials"),
        ({"url": "r:8081"}, "debezium", "not an http\\(s\\) URL"),
        ({"url": "http://r", "username": "u", "password": "p"}, "debezium", "password must not"),
        ({"url": "http://r", "username": "u"}, "debezium", "exactly one of password_env"),
        ({"url": "http://r", "password_env": "P"}, "debezium", "a password needs a username"),
        ({"url": "http://r"}, "plain", "debezium formats only"),
    ],
)
def test_registry_settings_are_checked(
    registry: dict[str, Any], fmt: str, message_part: str
) -> None:
    with pytest.raises(ConfigError, match=message_part):
        parse_config(_config(registry, fmt))


def test_a_registry_setting_loads() -> None:
    registry = {"url": "https://r.example/apis/ccompat/v7/", "username": "u", "password_env": "P"}
    config = parse_config(_config(registry))
    setting = config.inputs[0].schema_registry
    assert setting is not None and setting.base_url == "https://r.example/apis/ccompat/v7"
    assert setting.resolve_password({"P": "s3cret"}) == "s3cret"


# --- the registry client -----------------------------------------------------------------


def _client(handler: Any, **config: Any) -> SchemaRegistry:
    setting = SchemaRegistryConfig(url="http://registry.test/ccompat", **config)
    return SchemaRegistry(setting, transport=httpx.MockTransport(handler))


async def test_fetch_caches_found_schemas_and_remembers_missing_ids() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("/12"):
            return httpx.Response(200, json={"schema": orjson.dumps(VALUE_SCHEMA).decode()})
        if request.url.path.endswith("/14"):
            return httpx.Response(200, json={"schema": "{}", "schemaType": "PROTOBUF"})
        return httpx.Response(404, json={"error_code": 40403, "message": "Schema not found"})

    client = _client(handler)
    assert await client.resolve({12, 13, 14}, lambda: False)
    assert set(client.schemas) == {12}
    assert "not in the schema registry http://registry.test/ccompat (404)" in (
        client.missing_reason(13)
    )
    assert "PROTOBUF schema, not Avro" in client.missing_reason(14)
    assert sorted(calls) == [f"/ccompat/schemas/ids/{i}" for i in (12, 13, 14)]
    assert await client.resolve({12, 13, 14}, lambda: False)  # all answered: no new call
    assert len(calls) == 3
    await client.aclose()


async def test_an_outage_is_waited_out_with_one_warning_and_basic_auth_is_sent(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_module, "BACKOFF_MIN_S", 0.01)
    monkeypatch.setenv("REGISTRY_PASSWORD", "hunter22")
    failures = 5
    seen_auth: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal failures
        seen_auth.append(request.headers.get("authorization"))
        if failures:
            failures -= 1
            if failures % 2:
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(503)
        return httpx.Response(200, json={"schema": orjson.dumps(KEY_SCHEMA).decode()})

    client = _client(handler, username="sync", password_env="REGISTRY_PASSWORD")
    with caplog.at_level(logging.INFO, logger="agents.imports.registry"):
        assert await client.resolve({11}, lambda: False)
    assert 11 in client.schemas
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # "unavailable" once, "answers again" once
    assert "unavailable" in lines[0] and "answers again" in lines[1]
    assert all("hunter22" not in line for line in lines)
    assert seen_auth[0] is not None and seen_auth[0].startswith("Basic ")
    await client.aclose()


async def test_stopping_during_an_outage_gives_up_without_marking_ids_missing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500)

    client = _client(handler)
    assert not await client.resolve({11}, lambda: True)
    assert client.unknown({11}) == {11}  # asked again next time, never dead-lettered
    await client.aclose()


def test_a_password_file_that_is_missing_is_a_config_error(tmp_path: Any) -> None:
    setting = SchemaRegistryConfig(
        url="http://r", username="u", password_file=tmp_path / "nope.txt"
    )
    with pytest.raises(ConfigError, match="cannot read secret file"):
        setting.resolve_password()


def test_the_registry_password_is_a_secret_the_logs_scrub(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVRO_TEST_REGISTRY_PASSWORD", "registry-canary-5071")
    registry = {"url": "http://r", "username": "u", "password_env": "AVRO_TEST_REGISTRY_PASSWORD"}
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump(_config(registry)))
    assert "registry-canary-5071" in config_secret_values(Settings(config_file=path))


def test_variable_scale_decimals_and_bytes_read_as_the_json_converter_writes_them() -> None:
    schema = {
        "type": "record",
        "name": "Row",
        "fields": [
            {
                "name": "amount",
                "type": {
                    "type": "record",
                    "name": "VariableScaleDecimal",
                    "namespace": "io.debezium.data",
                    "fields": [
                        {"name": "scale", "type": "int"},
                        {"name": "value", "type": "bytes"},
                    ],
                    "connect.name": "io.debezium.data.VariableScaleDecimal",
                },
            },
            {"name": "blob", "type": ["null", "bytes"]},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        ],
    }
    parsed = parse(schema)
    assert parsed.convert
    datum = {"amount": {"scale": 3, "value": (-12345).to_bytes(2, "big", signed=True)}}
    datum |= {"blob": b"\x01\x02", "at": 1_714_000_000_123}
    assert read(wire(5, schema, datum), {5: parsed}, str, "message") == {
        "amount": -12.345,
        "blob": "AQI=",
        "at": 1_714_000_000_123,  # epoch millis, as Debezium's JSON carries it
    }


def test_a_flattened_avro_record_decodes_with_its_added_fields(binding: InputBinding) -> None:
    fields = price_schemas(TOPIC)[1]["fields"][0]["type"][1]["fields"]
    schema = {
        "type": "record",
        "name": "Value",
        "namespace": TOPIC,
        "fields": [
            *fields,
            {"name": "__source_ts_ms", "type": ["null", "long"], "default": None},
            {"name": "__lsn", "type": ["null", "long"], "default": None},
            {"name": "__deleted", "type": ["null", "string"], "default": None},
        ],
    }
    assert binding.schema_registry is not None
    registry_for(binding.schema_registry).add(21, orjson.dumps(schema).decode())
    flat = with_changes(binding, format="debezium-flat", flat_fields=["__source_ts_ms", "__lsn"])
    row = price_datum("A-100", "12.00")
    value = wire(21, schema, {**row, "__source_ts_ms": 7, "__lsn": 99, "__deleted": "true"})
    mapped = decode_mapped(value, key_of(row), flat)
    assert mapped is not None and mapped.deleted and mapped.version == [7, 99]
    assert mapped.row["PriceSale"] == 12.0


def test_conversions_follow_arrays_maps_and_named_references() -> None:
    money = {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 1}
    schema = {
        "type": "record",
        "name": "Doc",
        "namespace": "n",
        "fields": [
            {"name": "first", "type": {"type": "record", "name": "Item", "fields": [
                {"name": "price", "type": money}, {"name": "label", "type": "string"}]}},
            {"name": "more", "type": {"type": "array", "items": "Item"}},
            {"name": "by_code", "type": {"type": "map", "values": ["null", "n.Item"]}},
            {"name": "plain", "type": "long"},
        ],
    }  # fmt: skip
    item = {"price": Decimal("2.5"), "label": "x"}
    datum = {"first": item, "more": [item, item], "by_code": {"a": item, "b": None}, "plain": 3}
    converted = {"price": 2.5, "label": "x"}
    assert read(wire(6, schema, datum), {6: parse(schema)}, str, "message") == {
        "first": converted,
        "more": [converted, converted],
        "by_code": {"a": converted, "b": None},
        "plain": 3,
    }
    assert (
        parse({"type": "record", "name": "P", "fields": [{"name": "n", "type": "long"}]})[1] is None
    )  # nothing to convert: the datum is used as read


def test_a_delete_without_a_before_image_takes_its_columns_from_the_avro_key(
    binding: InputBinding,
) -> None:
    keyed = with_changes(binding, key_columns=["part_no", "price_list_code", "quantity_break"])
    row = price_datum("B-200", "1.00")
    mapped = decode_mapped(message("d", None, before=None), key_of(row), keyed)
    assert mapped is not None and mapped.deleted
    assert mapped.state_key == "erp|price|B-200|STD|1"
