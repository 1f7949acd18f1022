"""Webhook body schemas and routing (agents.export.events)."""

from __future__ import annotations

import orjson
import pytest

from agents.export.events import (
    ROUTES,
    EventRejected,
    JobCompleted,
    NorceEvent,
    parse_event,
    split_entity_key,
)


def body(**fields: object) -> bytes:
    return orjson.dumps({"ClientId": 1, "ApplicationId": 2, **fields})


@pytest.mark.parametrize(
    ("event_type", "fields", "key"),
    [
        ("SkuChangedNotification", {"PartNo": "1001", "EntityChanged": "tClientProductSku"},
         "sku:1001"),
        (
            "SkuPriceChangedNotification",
            {"PartNo": "1001", "PricelistId": 7, "PricelistCode": "STD", "PriceSaleValue": 99.0,
             "QuantityBreak": 1},
            "sku:1001",
        ),
        ("SkuOnHandBreakPointNotification", {"PartNo": " 1001 ", "WarehouseCode": "W"}, "sku:1001"),
        ("SupplierSkuChangedNotification", {"PartNo": "1001", "SupplierId": 3}, "sku:1001"),
        ("CustomerChangedNotification", {"CustomerId": 42}, "customer:42"),
    ],
)  # fmt: skip
def test_entity_events_are_keyed_by_their_entity(
    event_type: str, fields: dict[str, object], key: str
) -> None:
    event = parse_event(event_type, body(**fields), received_at=123.5)
    assert isinstance(event, NorceEvent)
    assert event.key == key
    assert event.event_type == event_type
    assert event.received_at == 123.5
    assert NorceEvent.model_validate_json(event.to_bytes()) == event


def test_unknown_body_fields_are_kept_and_defaults_not_invented() -> None:
    event = parse_event("SkuChangedNotification", body(PartNo="1", NewField="x"))
    assert isinstance(event, NorceEvent)
    assert event.body == {"ClientId": 1, "ApplicationId": 2, "PartNo": "1", "NewField": "x"}


def test_job_completed_goes_to_the_job_tracker_shape() -> None:
    event = parse_event("JobCompletedEvent", body(JobId=12345, StatusId=2), received_at=9.0)
    assert isinstance(event, JobCompleted)
    assert event.key == "job:12345"
    assert orjson.loads(event.to_bytes()) == {
        "type": "job_completed",
        "job_id": 12345,
        "status_id": 2,
        "received_at": 9.0,
    }


@pytest.mark.parametrize(
    ("event_type", "raw", "status", "fragment"),
    [
        ("OrderConfirmedEvent", body(OrderId=1), 404, "unknown event type"),
        ("SkuChangedNotification", b"{not json", 400, "not JSON"),
        ("SkuChangedNotification", b"[1, 2]", 400, "JSON object"),
        ("SkuChangedNotification", body(), 400, "PartNo"),
        ("SkuChangedNotification", body(PartNo="  "), 400, "PartNo"),
        ("SkuChangedNotification", orjson.dumps({"PartNo": "1"}), 400, "ClientId"),
        ("CustomerChangedNotification", body(CustomerId="abc"), 400, "CustomerId"),
        ("JobCompletedEvent", body(JobId=1), 400, "StatusId"),
    ],
)
def test_bad_calls_are_rejected_with_status_and_reason(
    event_type: str, raw: bytes, status: int, fragment: str
) -> None:
    with pytest.raises(EventRejected) as info:
        parse_event(event_type, raw)
    assert info.value.status == status
    assert fragment in info.value.message


def test_every_route_names_an_id_field_of_its_schema() -> None:
    for name, route in ROUTES.items():
        assert route.id_field in route.schema.model_fields, name


def test_entity_keys_split_back() -> None:
    assert split_entity_key("sku:10:01") == ("sku", "10:01")
    with pytest.raises(ValueError):
        split_entity_key("sku")
