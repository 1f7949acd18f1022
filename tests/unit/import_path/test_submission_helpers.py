"""Pure helpers of submission: the Connect header per binding and rejected-row parsing."""

from __future__ import annotations

from pathlib import Path

import orjson

from agents.config.sync_config import load_config
from agents.imports.headers import connect_header
from norce.jobs import ValidationSummary

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "example.yaml"


def test_headers_carry_the_account_full_flag_and_owned_field_codes() -> None:
    config = load_config(EXAMPLE)
    prices = config.binding_for("erp", "price")
    header = orjson.loads(connect_header(prices, 1001, full=True).to_json())
    assert header == {
        "AccountId": 1001,
        "FullFile": True,
        "SerializationType": 0,
        "SkuPriceListFieldsThatAreSet": [3, 4, 5, 6, 9, 10],
    }
    pim = orjson.loads(
        connect_header(config.binding_for("pim", "product"), 1002, full=False).to_json()
    )
    assert pim["FullFile"] is False
    assert pim["SkuCultureFieldsThatAreSet"] == [2]  # Comment


def test_rejected_rows_are_read_from_validation_messages() -> None:
    messages = [
        "Item [1] (PartNo 'B', PriceListCode 'STD'): PriceSale: field required",
        "Item [4] (PartNo 'E', PriceListCode 'STD'): OnhandValue: not a number",
        "Item [1] (PartNo 'B'): a second complaint about the same row",
        "3 more rows failed.",
    ]
    summary = ValidationSummary(nr_of_validation_failures=2, messages=messages)
    assert summary.rejected_rows() == {1: messages[0], 4: messages[1]}
