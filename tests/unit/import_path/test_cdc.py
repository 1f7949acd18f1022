"""Decoding Debezium and plain change messages, shaped exactly as Debezium writes them.

The decoding is checked through the reference path (``tests/support/reference_path.py``);
``test_decode_mapped.py`` checks the fused hot path against it on these same messages.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from agents.config.sync_config import InputBinding, load_config
from agents.imports.cdc import CdcError
from tests.support.cdc_messages import (
    DEBEZIUM_INVALID,
    DEBEZIUM_NOT_DECODABLE,
    ENVELOPE_SCHEMA,
    KEY,
    PLAIN_INVALID,
    PLAIN_NOT_OBJECTS,
    PRECISE,
    ROW,
    decimal_field,
    envelope,
    invalid_debezium,
    key_bytes,
    plain_msg,
    wrapped,
)
from tests.support.reference_path import decode
from tests.support.sync_config import EXAMPLE, with_changes


@pytest.fixture(scope="module")
def prices() -> InputBinding:
    return load_config(EXAMPLE).binding_for_topic("erp.public.prices")


class TestDebeziumWithoutSchema:
    @pytest.mark.parametrize("op", ["c", "u", "r"])
    def test_row_changes(self, prices: InputBinding, op: str) -> None:
        before = None if op in "cr" else {**ROW, "price_sale": 189.9}
        change = decode(orjson.dumps(envelope(op, before, ROW)), key_bytes(), prices)
        assert change is not None
        assert change.op == op
        assert not change.deleted
        assert change.row == ROW
        assert change.source == "erp" and change.kind == "price"
        assert change.source_key == "A-100|std|1"
        assert change.version.as_tuple() == (1714000000123, 24023928)

    def test_delete_uses_the_before_image(self, prices: InputBinding) -> None:
        # REPLICA IDENTITY DEFAULT: only the key columns are filled in.
        before = {k: (ROW[k] if k in KEY else None) for k in ROW}
        change = decode(orjson.dumps(envelope("d", before, None)), key_bytes(), prices)
        assert change is not None
        assert change.deleted and change.op == "d"
        assert change.row == before
        assert change.source_key == "A-100|std|1"

    def test_delete_without_before_image_falls_back_to_the_kafka_key(
        self, prices: InputBinding
    ) -> None:
        change = decode(orjson.dumps(envelope("d", None, None)), key_bytes(), prices)
        assert change is not None and change.deleted
        assert change.row == KEY
        assert change.source_key == "A-100|std|1"

    def test_tombstone_is_none(self, prices: InputBinding) -> None:
        assert decode(None, key_bytes(), prices) is None

    def test_source_key_from_the_kafka_key_when_no_key_columns(self, prices: InputBinding) -> None:
        binding = with_changes(prices, key_columns=[])
        change = decode(orjson.dumps(envelope("u", None, ROW)), key_bytes(), binding)
        assert change is not None and change.source_key == "A-100|std|1"
        wrapped_key = orjson.dumps({"schema": {"type": "struct"}, "payload": {"id": 77}})
        change = decode(orjson.dumps(envelope("u", None, ROW)), wrapped_key, binding)
        assert change is not None and change.source_key == "77"

    def test_decimals_stay_raw_without_a_schema(self, prices: InputBinding) -> None:
        row = {**ROW, "price_sale": PRECISE["price_sale"]}
        change = decode(orjson.dumps(envelope("u", None, row)), key_bytes(), prices)
        assert change is not None and change.row["price_sale"] == "ThY="


class TestDebeziumWithSchema:
    def test_update_decodes_decimals_from_the_schema(self, prices: InputBinding) -> None:
        after = {**ROW, **PRECISE, "weight": {"scale": 3, "value": "MDk="}}
        change = decode(wrapped(envelope("u", None, after)), key_bytes(), prices)
        assert change is not None
        assert change.row["price_sale"] == 199.9
        assert change.row["cost_purchase"] == -1.5
        assert change.row["cost_unit"] == 1.28
        assert change.row["price_recommended"] == 0.0
        assert change.row["weight"] == 12.345  # VariableScaleDecimal 12345e-3
        assert change.row["part_no"] == "A-100" and change.row["updated_at"] == ROW["updated_at"]
        assert change.version.position == 24023928

    def test_zero_scale_decimal_is_an_int(self, prices: InputBinding) -> None:
        schema = copy.deepcopy(ENVELOPE_SCHEMA)
        schema["fields"][1]["fields"][3] = decimal_field("price_sale", 0)
        msg = {"schema": schema, "payload": envelope("c", None, {**ROW, **PRECISE})}
        change = decode(orjson.dumps(msg), key_bytes(), prices)
        assert change is not None and change.row["price_sale"] == 19990
        assert isinstance(change.row["price_sale"], int)

    def test_delete_decodes_the_before_image(self, prices: InputBinding) -> None:
        before = {**ROW, **PRECISE}
        change = decode(wrapped(envelope("d", before, None)), key_bytes(), prices)
        assert change is not None and change.deleted
        assert change.row["price_sale"] == 199.9

    def test_null_decimal_stays_null(self, prices: InputBinding) -> None:
        change = decode(
            wrapped(envelope("c", None, {**ROW, **PRECISE, "price_recommended": None})),
            key_bytes(),
            prices,
        )
        assert change is not None and change.row["price_recommended"] is None

    def test_null_payload_is_a_tombstone(self, prices: InputBinding) -> None:
        assert decode(wrapped(None), key_bytes(), prices) is None

    def test_snapshot_read(self, prices: InputBinding) -> None:
        change = decode(wrapped(envelope("r", None, {**ROW, **PRECISE})), key_bytes(), prices)
        assert change is not None and change.op == "r" and not change.deleted


class TestVersions:
    def decode_source(self, prices: InputBinding, source: dict[str, Any]) -> Any:
        msg = {"before": None, "after": ROW, "source": source, "op": "u", "ts_ms": 5}
        change = decode(orjson.dumps(msg), key_bytes(), prices)
        assert change is not None
        return change.version

    def test_mysql_binlog_position(self, prices: InputBinding) -> None:
        source = {
            "version": "2.5.0.Final",
            "connector": "mysql",
            "name": "erp",
            "ts_ms": 1714000000000,
            "snapshot": "false",
            "db": "erp",
            "table": "prices",
            "server_id": 223344,
            "gtid": None,
            "file": "mysql-bin.000003",
            "pos": 154,
            "row": 0,
            "thread": 7,
            "query": None,
        }
        version = self.decode_source(prices, source)
        assert version.as_tuple() == (1714000000000, 3, 154, 0)
        later_file = self.decode_source(prices, {**source, "file": "mysql-bin.000004", "pos": 4})
        assert later_file > version

    def test_sqlserver_lsn(self, prices: InputBinding) -> None:
        source = {
            "connector": "sqlserver",
            "ts_ms": 1714000000000,
            "change_lsn": "00000025:00000d78:0003",
            "commit_lsn": "00000025:00000d78:0005",
            "event_serial_no": 1,
        }
        commit, change = 0x0000002500000D780005, 0x0000002500000D780003
        assert self.decode_source(prices, source).as_tuple()[1:] == (0, commit, 0, change, 1)
        snapshot = {**source, "change_lsn": None, "event_serial_no": None}
        assert self.decode_source(prices, snapshot).as_tuple()[1:] == (0, commit, 0, 0, 0)

    def test_unknown_connector_has_position_zero(self, prices: InputBinding) -> None:
        version = self.decode_source(prices, {"connector": "x", "ts_ms": 99})
        assert version.as_tuple() == (99, 0)

    def test_envelope_ts_ms_stands_in_for_a_missing_source_ts_ms(
        self, prices: InputBinding
    ) -> None:
        assert self.decode_source(prices, {"lsn": 10}).as_tuple() == (5, 10)


class TestDebeziumMalformed:
    @pytest.mark.parametrize(("value", "reason"), DEBEZIUM_NOT_DECODABLE)
    def test_decode_stage(self, prices: InputBinding, value: bytes, reason: str) -> None:
        with pytest.raises(CdcError) as info:
            decode(value, key_bytes(), prices)
        assert info.value.stage == "decode"
        assert reason in info.value.reason

    @pytest.mark.parametrize(("change", "reason"), DEBEZIUM_INVALID)
    def test_validate_stage(
        self, prices: InputBinding, change: dict[str, Any], reason: str
    ) -> None:
        with pytest.raises(CdcError) as info:
            decode(invalid_debezium(change), key_bytes(), prices)
        assert info.value.stage == "validate"
        assert reason in info.value.reason
        assert "\n" not in info.value.reason

    def test_delete_without_before_or_key(self, prices: InputBinding) -> None:
        with pytest.raises(CdcError, match="'before' is null") as info:
            decode(orjson.dumps(envelope("d", None, None)), None, prices)
        assert info.value.stage == "validate"

    def test_no_key_at_all(self, prices: InputBinding) -> None:
        binding = with_changes(prices, key_columns=[])
        with pytest.raises(CdcError, match="no Kafka key") as info:
            decode(orjson.dumps(envelope("c", None, ROW)), None, binding)
        assert info.value.stage == "validate"

    def test_kafka_key_not_json(self, prices: InputBinding) -> None:
        binding = with_changes(prices, key_columns=[])
        with pytest.raises(CdcError, match="Kafka key is not valid JSON") as info:
            decode(orjson.dumps(envelope("c", None, ROW)), b"A-100", binding)
        assert info.value.stage == "decode"

    def test_payload_not_an_object(self, prices: InputBinding) -> None:
        msg = orjson.dumps({"schema": ENVELOPE_SCHEMA, "payload": [1]})
        with pytest.raises(CdcError, match="payload is an array") as info:
            decode(msg, key_bytes(), prices)
        assert info.value.stage == "validate"

    def test_bad_decimal_bytes(self, prices: InputBinding) -> None:
        msg = wrapped(envelope("u", None, {**ROW, **PRECISE, "price_sale": "@@not base64"}))
        with pytest.raises(CdcError, match="column 'price_sale': not a base64 decimal") as info:
            decode(msg, key_bytes(), prices)
        assert info.value.stage == "validate"

    def test_decimal_of_wrong_type(self, prices: InputBinding) -> None:
        msg = wrapped(envelope("u", None, {**ROW, **PRECISE, "cost_unit": 1.28}))
        with pytest.raises(CdcError, match="column 'cost_unit'"):
            decode(msg, key_bytes(), prices)


# --- the plain format --------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain(prices: InputBinding) -> InputBinding:
    return with_changes(prices, format="plain", topic="erp.plain.prices")


class TestPlain:
    def test_upsert(self, plain: InputBinding) -> None:
        change = decode(plain_msg(), None, plain)
        assert change is not None
        assert (change.op, change.deleted, change.source_key) == ("u", False, "A-100|std|1")
        assert change.version.as_tuple() == (1714000000000, 42)
        assert change.row == ROW

    def test_version_orders_plain_changes(self, plain: InputBinding) -> None:
        first = decode(plain_msg(version=41, ts_ms=...), None, plain)
        second = decode(plain_msg(version=42, ts_ms=...), None, plain)
        assert first is not None and second is not None
        assert first.version.ts_ms == 0
        assert first.version < second.version

    def test_delete_without_data_gets_key_columns_from_the_key(self, plain: InputBinding) -> None:
        change = decode(plain_msg(op="delete", data=...), None, plain)
        assert change is not None and change.deleted and change.op == "d"
        assert change.row == {"part_no": "A-100", "price_list_code": "std", "quantity_break": "1"}

    def test_key_from_key_columns_when_absent(self, plain: InputBinding) -> None:
        change = decode(plain_msg(key=...), None, plain)
        assert change is not None and change.source_key == "A-100|std|1"

    def test_tombstone(self, plain: InputBinding) -> None:
        assert decode(None, b"k", plain) is None

    @pytest.mark.parametrize(("fields", "reason"), PLAIN_INVALID)
    def test_malformed(self, plain: InputBinding, fields: dict[str, Any], reason: str) -> None:
        with pytest.raises(CdcError) as info:
            decode(plain_msg(**fields), None, plain)
        assert info.value.stage == "validate"
        assert reason in info.value.reason

    def test_missing_key_without_key_columns(self, plain: InputBinding) -> None:
        binding = with_changes(plain, key_columns=[])
        with pytest.raises(CdcError, match="missing 'key'"):
            decode(plain_msg(key=...), None, binding)

    @pytest.mark.parametrize("value", PLAIN_NOT_OBJECTS)
    def test_not_an_object(self, plain: InputBinding, value: bytes) -> None:
        with pytest.raises(CdcError) as info:
            decode(value, None, plain)
        assert info.value.stage == "decode"
