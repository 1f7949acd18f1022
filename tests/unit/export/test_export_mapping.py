"""Query documents -> target records with the example config (agents.export.targets, hooks)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from agents.config.sync_config import parse_config
from agents.export.targets import (
    HEADER_DELETED,
    HEADER_EVENT_COUNT,
    HEADER_EVENT_TYPE,
    HEADER_RECEIVED_AT,
    EntityLookup,
    build_records,
    target_specs,
)
from norce.odata import ODataQuery
from tests.support.export_specs import SPECS

# What the simulator's Query answers for Products/ProductSkus('1001')?$expand=...
SKU: dict[str, Any] = {
    "PartNo": "1001",
    "IsActive": True,
    "ProductCode": "P-1",
    "EanCode": "7310000000017",
    "IsBuyable": True,
    "Cultures": [{"CultureCode": "sv-SE", "ErpName": "Kaffe 500 g"}],
    "PriceLists": [
        {"PartNo": "1001", "PriceListCode": "STD", "PriceListId": 1, "QuantityBreak": 1,
         "PriceSale": 49.9, "CurrencyCode": None, "IsActive": True,
         "PriceList": {"Agreement": "STD", "Id": 1, "CurrencyCode": "SEK"}},
    ],
    "OnHands": [
        {"PartNo": "1001", "WarehouseCode": "W1", "LocationCode": "", "OnhandValue": 3.0},
        {"PartNo": "1001", "WarehouseCode": "W2", "LocationCode": "", "OnhandValue": 4.5},
    ],
}  # fmt: skip


def records_by_topic(document: dict[str, Any] | None, kind: str = "sku") -> dict[str, Any]:
    result = build_records(
        kind,
        "1001",
        document,
        SPECS[kind],
        event_types=["SkuChangedNotification", "SkuPriceChangedNotification",
                     "SkuChangedNotification"],
        received_at=1700000000.1234,
        count=3,
    )  # fmt: skip
    assert result.errors == []
    return {r.topic: r for r in result.records}


def test_the_example_targets_map_a_sku_differently() -> None:
    out = records_by_topic(SKU)
    assert set(out) == {"t1.out.search.sku", "t1.out.marketplace.sku"}
    search = orjson.loads(out["t1.out.search.sku"].value)
    assert search == {
        "id": "1001",
        "product": "P-1",
        "name": "Kaffe 500 g",
        "ean": "7310000000017",
        "active": True,
        "price": 49.9,
        "stock": 7.5,
        "in_stock": True,
    }
    market = orjson.loads(out["t1.out.marketplace.sku"].value)
    assert market == {
        "sku": "1001",
        "title": "Kaffe 500 g",
        "gtin": "7310000000017",
        "buyable": True,
        # the row has no currency: the hook takes the price list head's
        "price": {"amount": 49.9, "currency": "SEK", "list": "STD"},
        "quantity": 7,
    }


def test_records_are_keyed_by_part_no_with_event_headers() -> None:
    record = records_by_topic(SKU)["t1.out.search.sku"]
    assert record.key == b"1001"
    headers = dict(record.headers)
    assert headers[HEADER_EVENT_TYPE] == b"SkuChangedNotification,SkuPriceChangedNotification"
    assert headers[HEADER_RECEIVED_AT] == b"1700000000.123"
    assert headers[HEADER_EVENT_COUNT] == b"3"
    assert HEADER_DELETED not in headers


def test_a_sku_without_price_or_stock_maps_to_nulls_and_zero() -> None:
    bare = {"PartNo": "1001", "IsActive": False, "PriceLists": [], "OnHands": []}
    out = records_by_topic(bare)
    search = orjson.loads(out["t1.out.search.sku"].value)
    assert search["price"] is None and search["name"] is None
    assert (search["stock"], search["in_stock"], search["active"]) == (0, False, False)
    market = orjson.loads(out["t1.out.marketplace.sku"].value)
    assert market["price"] == {"amount": None, "currency": None, "list": None}
    assert market["quantity"] == 0


def test_a_missing_entity_becomes_a_tombstone_on_every_target() -> None:
    out = records_by_topic(None)
    assert len(out) == 2
    for record in out.values():
        assert record.value is None
        assert dict(record.headers)[HEADER_DELETED] == b"true"
        assert record.key == b"1001"


def test_digest_follows_content_not_headers() -> None:
    a = records_by_topic(SKU)["t1.out.search.sku"]
    changed = {**SKU, "EanCode": "0"}
    b = records_by_topic(changed)["t1.out.search.sku"]
    again = build_records(
        "sku", "1001", SKU, SPECS["sku"], event_types=["X"], received_at=1.0
    ).records[0]
    assert a.digest == again.digest
    assert a.digest != b.digest
    assert records_by_topic(None)["t1.out.search.sku"].digest != a.digest


def test_a_failing_target_mapping_is_reported_and_the_others_still_map() -> None:
    config = parse_config(
        {
            "sources": {},
            "targets": {
                "strict": {"sku": {"mapping": {"weight": {"from": "ActualWeight"}}}},
                "loose": {"sku": {"mapping": {"id": "PartNo"}}},
            },
        }
    )
    specs = target_specs(config)["sku"]
    result = build_records("sku", "1001", SKU, specs, event_types=["X"], received_at=1.0)
    assert [r.topic for r in result.records] == ["out.loose.sku"]
    [(spec, error)] = result.errors
    assert spec.target == "strict"
    assert "ActualWeight" in error.reason


def test_customers_map_by_id() -> None:
    customer = {"Id": 42, "Code": "C42", "EmailAddress": "a@b.se", "FirstName": "Ada",
                "LastName": "L", "IsActive": True}  # fmt: skip
    [record] = build_records(
        "customer", "42", customer, SPECS["customer"], event_types=["X"], received_at=1.0
    ).records
    assert record.topic == "t1.out.marketplace.customer"
    assert record.key == b"42"
    assert orjson.loads(record.value) == {
        "id": 42, "code": "C42", "email": "a@b.se", "first_name": "Ada", "last_name": "L",
        "active": True,
    }  # fmt: skip


class FakeQuery:
    """Answers like QueryClient: entities by key (None = 404), price list heads."""

    def __init__(self) -> None:
        self.entities: dict[tuple[str, Any], dict[str, Any]] = {}
        self.heads = [{"Agreement": "STD", "Id": 1, "CurrencyCode": "SEK"}]
        self.calls: list[tuple[str, Any, str | None]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def get_entity(
        self, entity_set: str, key: Any, query: ODataQuery | None = None
    ) -> dict[str, Any] | None:
        self.calls.append((entity_set, key, query.to_odata() if query else None))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        found = self.entities.get((entity_set, key))
        return None if found is None else orjson.loads(orjson.dumps(found))

    async def iterate(self, entity_set: str, query: ODataQuery | None = None) -> Any:
        self.calls.append((entity_set, None, None))
        for head in self.heads:
            yield head


async def test_lookup_expands_active_rows_and_attaches_cached_price_list_heads() -> None:
    query = FakeQuery()
    raw = {k: v for k, v in SKU.items()}
    raw["PriceLists"] = [{k: v for k, v in SKU["PriceLists"][0].items() if k != "PriceList"}]
    query.entities[("Products/ProductSkus", "1001")] = raw
    lookup = EntityLookup(query, concurrency=2, reference_ttl=60)  # type: ignore[arg-type]
    first = await lookup.fetch("sku", "1001")
    second = await lookup.fetch("sku", "1001")
    assert first is not None and second is not None
    assert first["PriceLists"][0]["PriceList"]["CurrencyCode"] == "SEK"
    sku_calls = [c for c in query.calls if c[0] == "Products/ProductSkus"]
    assert len(sku_calls) == 2  # entities are not cached ...
    assert len([c for c in query.calls if c[0] == "Application/ClientPriceLists"]) == 1  # heads are
    assert sku_calls[0][2] == (
        "$expand=PriceLists($filter=IsActive eq true),OnHands($filter=IsActive eq true)"
    )


async def test_lookup_answers_none_when_gone_and_bounds_concurrency() -> None:
    query = FakeQuery()
    query.entities[("Customers/Customers", 7)] = {"Id": 7, "Code": "C7"}
    lookup = EntityLookup(query, concurrency=2)  # type: ignore[arg-type]
    results = await asyncio.gather(*(lookup.fetch("sku", f"P{i}") for i in range(10)))
    assert results == [None] * 10
    assert query.max_in_flight == 2
    assert await lookup.fetch("customer", "7") == {"Id": 7, "Code": "C7"}
    with pytest.raises(ValueError):
        await lookup.fetch("order", "1")  # no such entity kind
