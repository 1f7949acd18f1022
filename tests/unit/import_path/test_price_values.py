"""Owned price values Norce will not write (null or 0), and mandatory_price_fields."""

from __future__ import annotations

import logging

import pytest

from agents.config.sync_config import load_config
from agents.imports import price_values
from norce.imports import connect_header
from streams import metrics
from tests.support.sync_config import EXAMPLE, with_changes

PRICES = load_config(EXAMPLE).binding_for_topic("erp.public.prices")


def test_null_or_zero_owned_price_is_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    row = {"PartNo": "Z-1", "PriceListCode": "STD", "QuantityBreak": 1, "PriceSale": 0}
    row |= {"CostPurchase": None, "CostUnit": 3, "PriceRecommended": 4, "IsActive": True}
    before = metrics.unwritable_prices.get(source="erp", kind="price", field="PriceSale")
    unwritable = price_values.UnwritablePrices()
    with caplog.at_level(logging.WARNING, logger=price_values.__name__):
        assert unwritable.note(PRICES, [row, row]) == 4
    after = metrics.unwritable_prices.get(source="erp", kind="price", field="PriceSale")
    assert after - before == 2
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("Norce keeps its current value" in m for m in lines)
    # A deactivation's prices do not matter.
    assert unwritable.note(PRICES, [{**row, "IsActive": False}]) == 0
    # Each sender remembers what it logged, not the process: a new one logs again.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=price_values.__name__):
        assert price_values.UnwritablePrices().note(PRICES, [row]) == 2
    assert len(caplog.records) == 2


def test_mandatory_price_fields_go_to_the_header_and_must_be_owned() -> None:
    binding = with_changes(PRICES, mandatory_price_fields=["PriceSale"])
    header = connect_header(binding, 1, full=False).to_dict()
    assert header["IgnoreSkuPriceListFieldsWhenEmpty"] == [3]
    with pytest.raises(ValueError, match="are not in owned_fields"):
        with_changes(PRICES, mandatory_price_fields=["PriceCatalog"])
    with pytest.raises(ValueError, match="ignore_empty_price_fields is gone"):
        with_changes(PRICES, ignore_empty_price_fields=True)
