"""The mapping dry-run (``norce-sync map``) shows what the worker's decoder makes of each
record: the state key, the version with each connector's position named, the Norce row,
or the dead-letter stage and reason; and the header a delta is sent with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.config.sync_config import load_config
from agents.imports.dry_run import Sample, delta_header, dry_run, samples_from_lines
from tests.support.debezium_sources import SOURCES

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "example.yaml"
PRICES = load_config(EXAMPLE).binding_for_topic("erp.public.prices")
ROW = {
    "part_no": "A-100", "price_list_code": " std ", "quantity_break": 1, "price_sale": 99.5,
    "cost_purchase": 50, "cost_unit": 51, "price_recommended": 120, "is_discountable": True,
    "currency_code": "sek",
}  # fmt: skip
KEY = orjson.dumps({"part_no": "A-100", "price_list_code": "STD", "quantity_break": 1})


def change(connector: str, op: str = "u", **row: Any) -> bytes:
    image: Any = {**ROW, **row}
    if connector == "mongodb":
        image = orjson.dumps(image).decode()  # the document as extended JSON text
    before, after = (image, None) if op == "d" else (None, image)
    source = SOURCES[connector]
    return orjson.dumps({"before": before, "after": after, "source": source, "op": op})


@pytest.mark.parametrize(
    ("connector", "position"),
    [
        ("postgresql", {"lsn": 24023128}),
        ("mysql", {"binlog file number": 3, "pos": 484, "row": 0}),
        ("sqlserver", {"commit_lsn": "00000027:00000ac0:0007",
                       "change_lsn": "00000027:00000ac0:0002", "event_serial_no": 2}),
        ("oracle", {"commit_scn": 2125544, "scn": 2125544, "transaction.total_order": 0}),
        ("mongodb", {"oplog second": 1558965508, "ord": 6}),
    ],
)  # fmt: skip
def test_each_connector_shows_the_mapped_row_and_its_named_position(
    connector: str, position: dict[str, int]
) -> None:
    outcome = dry_run(PRICES, Sample(change(connector), KEY)).as_dict()

    assert outcome["state_key"] == "erp|price|A-100|STD|1"
    version = dict(outcome["version"])
    assert version.pop("source_time").startswith("20")
    assert version == {"ts_ms": SOURCES[connector]["ts_ms"], **position}
    assert outcome["row"]["PriceListCode"] == "STD"  # the mapping's conversions ran
    assert outcome["row"]["PriceSale"] == 99.5
    assert outcome["row"]["IsActive"] is True


def test_a_delete_becomes_an_inactive_row() -> None:
    outcome = dry_run(PRICES, Sample(change("postgresql", op="d"), KEY)).as_dict()
    assert outcome["deleted"] is True
    assert outcome["row"]["IsActive"] is False


@pytest.mark.parametrize(
    ("value", "stage", "reason"),
    [
        (b"not json", "decode", "not valid JSON"),
        (orjson.dumps({"op": "x", "after": ROW, "source": SOURCES["mysql"]}), "validate",
         "unknown op 'x'"),
        (change("mysql", price_sale="12,5"), "map", "PriceSale"),
        (orjson.dumps({"op": "u", "after": ROW, "source": {**SOURCES["mysql"], "pos": "x"}}),
         "validate", "not a binlog position"),
    ],
    ids=["not-json", "unknown-op", "bad-decimal", "bad-position"],
)  # fmt: skip
def test_a_bad_record_shows_its_dead_letter_stage_and_reason(
    value: bytes, stage: str, reason: str
) -> None:
    outcome = dry_run(PRICES, Sample(value, KEY)).as_dict()
    assert outcome["dead_letter"]["stage"] == stage
    assert reason in outcome["dead_letter"]["reason"]


def test_non_rows_and_tombstones_are_skipped_not_dead_lettered() -> None:
    heartbeat = orjson.dumps({"ts_ms": 1})
    assert "skipped" in dry_run(PRICES, Sample(None, KEY)).as_dict()
    assert "heartbeat" in dry_run(PRICES, Sample(heartbeat, KEY)).as_dict().get("skipped", "")


def test_samples_read_values_and_key_value_pairs() -> None:
    lines = [
        b"# a comment",
        b"",
        b'{"op": "u"}',
        b'{"key": {"id": 1}, "value": {"op": "c"}}',
        b'{"key": {"id": 1}, "value": null}',
    ]
    samples = list(samples_from_lines(lines))
    assert samples == [
        Sample(b'{"op": "u"}'),
        Sample(b'{"op":"c"}', b'{"id":1}'),
        Sample(None, b'{"id":1}'),
    ]


def test_the_delta_header_is_the_one_a_delta_sends() -> None:
    header = delta_header(PRICES, 1001)
    assert header["path"] == "Product/ImportSkuPriceLists"
    assert header["X-StormConnect-Header"]["FullFile"] is False
    assert header["X-StormConnect-Header"]["AccountId"] == 1001
    assert header["X-StormConnect-Header"]["SkuPriceListFieldsThatAreSet"] == [3, 4, 5, 6, 9, 10]
