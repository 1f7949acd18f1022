"""The intake's quick check (agents.export.quick_body, events.stored_event): the record it
stores is byte for byte the one the full models build, and bodies off the usual shape
get the models' own rejections and coercions."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from agents.export.events import (
    ROUTES,
    EventRejected,
    NorceEvent,
    parse_event,
    stored_event,
)
from agents.export.quick_body import plan_of, quick_body

BASE = {"ClientId": 1, "ApplicationId": 2}

# (event type, body): usual shapes (taken quickly) and unusual ones (the models decide)
BODIES: list[tuple[str, dict[str, Any]]] = [
    ("SkuChangedNotification", {**BASE, "PartNo": "1001", "EntityChanged": "tClientProductSku"}),
    ("SkuChangedNotification", {"PartNo": "1001", "ClientId": 1, "NewField": {"a": [1, 2.5]}}),
    ("SkuChangedNotification", {**BASE, "PartNo": "10 01", "EntityChanged": None}),
    ("SkuPriceChangedNotification",
     {**BASE, "PartNo": "A-1", "PricelistId": 7, "PricelistCode": "STD", "PriceSaleValue": 99.5,
      "QuantityBreak": 1}),
    ("SkuPriceChangedNotification", {**BASE, "PartNo": "A-1", "PriceSaleValue": 99}),
    ("SkuPriceChangedNotification", {**BASE, "PartNo": "A-1", "PricelistId": "7"}),
    ("SkuOnHandBreakPointNotification", {**BASE, "PartNo": " 1001 ", "WarehouseCode": "W"}),
    ("SkuOnHandBreakPointNotification", {**BASE, "PartNo": "1001\u00a0"}),
    ("SupplierSkuChangedNotification", {**BASE, "PartNo": "1001", "SupplierId": 3}),
    ("SupplierSkuPriceChangedNotification", {**BASE, "PartNo": "x" * 200}),
    ("SupplierSkuOnHandChangedNotification", {"ClientId": "1", "PartNo": "1001"}),
    ("CustomerChangedNotification", {**BASE, "CustomerId": 42}),
    ("CustomerChangedNotification", {**BASE, "CustomerId": True}),
    ("CompanyChangedNotification", {**BASE, "CompanyId": 7, "ApplicationId": None}),
    ("JobCompletedEvent", {**BASE, "JobId": 12345, "StatusId": 2}),
]  # fmt: skip


@pytest.mark.parametrize(("event_type", "body"), BODIES)
def test_the_stored_record_is_the_models_record(event_type: str, body: dict[str, Any]) -> None:
    raw = orjson.dumps(body)
    event = parse_event(event_type, raw, received_at=1234.5)
    stored = stored_event(event_type, raw, received_at=1234.5)
    assert stored.key == event.key
    assert stored.value == event.to_bytes()
    assert stored.job == (ROUTES[event_type].kind == "job")


@pytest.mark.parametrize(
    "body",
    [
        {**BASE, "PartNo": "1001"},
        {"ClientId": 1, "PartNo": "W0-17", "PricelistId": None, "Extra": "kept"},
    ],
)
def test_the_usual_body_skips_the_models(body: dict[str, Any]) -> None:
    assert quick_body(ROUTES["SkuPriceChangedNotification"].schema, body) == body


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({**BASE, "PartNo": " 1001"}, "whitespace to strip"),
        ({**BASE, "PartNo": "x" * 201}, "too long"),
        ({**BASE, "PartNo": ""}, "empty"),
        ({"PartNo": "1001"}, "ClientId missing"),
        ({**BASE, "PartNo": "1001", "PriceSaleValue": 5}, "an int the model makes a float"),
        ({**BASE, "PartNo": 1001}, "a number the model refuses"),
        ({"ClientId": True, "PartNo": "1001"}, "a bool for an int"),
    ],
)
def test_other_bodies_go_to_the_models(body: dict[str, Any], why: str) -> None:
    assert quick_body(ROUTES["SkuPriceChangedNotification"].schema, body) is None, why


@pytest.mark.parametrize(
    ("event_type", "raw", "status", "fragment"),
    [
        ("OrderConfirmedEvent", b"{}", 404, "unknown event type"),
        ("SkuChangedNotification", b"{not json", 400, "not JSON"),
        ("SkuChangedNotification", b"[1]", 400, "JSON object"),
        ("SkuChangedNotification", orjson.dumps({**BASE, "PartNo": "  "}), 400, "PartNo"),
        ("SkuChangedNotification", orjson.dumps({"PartNo": "1"}), 400, "ClientId"),
        ("CustomerChangedNotification", orjson.dumps({**BASE, "CustomerId": "x"}), 400,
         "CustomerId"),
    ],
)  # fmt: skip
def test_rejections_are_the_models(event_type: str, raw: bytes, status: int, fragment: str) -> None:
    with pytest.raises(EventRejected) as quick:
        stored_event(event_type, raw, received_at=1.0)
    with pytest.raises(EventRejected) as full:
        parse_event(event_type, raw, received_at=1.0)
    assert (quick.value.status, quick.value.message) == (full.value.status, full.value.message)
    assert quick.value.status == status and fragment in quick.value.message


def test_every_route_has_a_quick_plan() -> None:
    # A schema field of a new kind would silently send every body of its type through
    # the models: cheaper to notice here.
    for name, route in ROUTES.items():
        assert plan_of(route.schema) is not None, name
    assert NorceEvent.model_fields.keys() == {
        "event_type", "kind", "entity_id", "received_at", "body"
    }  # fmt: skip
